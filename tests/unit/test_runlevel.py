"""install.runlevel: 3 is a text console (skipx, no X); 5 is a graphical login that needs no human at the
first boot. What anaconda 13, pykickstart F13, initscripts 9.12 and Fedora 13's comps do with each is in
docs/target.md ("Default runlevel: X, prefdm and Fedora's firstboot")."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from isobuild.loader import load_definition
from isobuild.render import render_kickstart

REPO = Path(__file__).resolve().parents[2]
X_GROUPS = ["base-x", "gnome-desktop", "fonts"]


def _ks(runlevel: int) -> str:
    c = load_definition(REPO / "cluster.yaml")
    if c.install.runlevel != runlevel:
        c = dataclasses.replace(c, install=dataclasses.replace(c.install, runlevel=runlevel))
    return render_kickstart(c, c.nodes[0])


def _parse(text: str):
    """The kickstart as anaconda 13 reads it: pykickstart's F13 handler, every warning an error."""
    import warnings

    from pykickstart.parser import KickstartParser
    from pykickstart.version import F13, makeVersion

    handler = makeVersion(F13)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KickstartParser(handler).readKickstartFromString(text)
    return handler


def test_runlevel_3_skips_x_and_disables_the_setup_agent():
    from pykickstart.constants import FIRSTBOOT_SKIP

    h = _parse(_ks(3))
    assert h.skipx.skipx is True
    assert h.xconfig.startX is False
    # install.packages could pull firstboot in at runlevel 3 too: anaconda writes RUN_FIRSTBOOT=NO
    assert h.firstboot.firstboot == FIRSTBOOT_SKIP
    assert not set(X_GROUPS) & {g.name for g in h.packages.groupList}


def test_runlevel_5_starts_x_with_a_display_manager_and_no_setup_agent():
    from pykickstart.constants import FIRSTBOOT_SKIP

    ks = _ks(5)
    h = _parse(ks)
    # anaconda 13 kickstart.py: SkipX sets runlevel 3, XConfig --startxonboot runlevel 5; never both
    assert h.skipx.skipx is False and "skipx" not in ks.split("%packages", 1)[0]
    assert h.xconfig.startX is True
    # firstboot --disable: anaconda's firstboot step writes RUN_FIRSTBOOT=NO (firstboot is a default of @base-x)
    assert h.firstboot.firstboot == FIRSTBOOT_SKIP
    assert [g for g in X_GROUPS if g in {g.name for g in h.packages.groupList}] == X_GROUPS
    # NetworkManager stays out (gnome-desktop's NetworkManager-gnome requires it)
    assert {"NetworkManager", "NetworkManager-gnome"} <= set(h.packages.excludedList)
    assert "sed -i 's/^id:[0-9]:initdefault:$/id:5:initdefault:/' /etc/inittab" in ks


def test_runlevel_5_changes_only_the_x_lines():
    """Runlevel 5 adds the X lines and nothing else moves: the rest of the kickstart is runlevel 3's."""
    three, five = _ks(3).splitlines(), _ks(5).splitlines()
    removed = [ln for ln in three if ln not in five]
    added = [ln for ln in five if ln not in three]
    assert removed == ["skipx", "sed -i 's/^id:[0-9]:initdefault:$/id:3:initdefault:/' /etc/inittab"]
    assert [ln for ln in added if not ln.startswith("#")] == [
        "xconfig --startxonboot", "@base-x", "@gnome-desktop", "@fonts",
        "-NetworkManager-gnome", "sed -i 's/^id:[0-9]:initdefault:$/id:5:initdefault:/' /etc/inittab"]
