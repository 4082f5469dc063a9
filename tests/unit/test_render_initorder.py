"""The one table of SysV start order (isobuild/initorder.py) and the vendored cluster.conf schema."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from isobuild import initorder

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("mode", initorder.MODES)
def test_start_order_follows_dependencies(mode):
    table = initorder.services(mode)
    assert initorder.check_order(table) == []
    start = {s.name: s.start for s in table}
    # the seed's chain: xend < cman < drbd < clvmd < gfs2 < rgmanager/xendomains
    chain = ["xend", "cman", "drbd", "clvmd", "gfs2", "rgmanager", "xendomains"]
    assert [start[n] for n in chain] == sorted(start[n] for n in chain)
    assert start["xend"] == 12
    assert (start["drbd"], start["clvmd"], start["gfs2"], start["xendomains"]) == (20, 24, 26, 99)
    assert "xend" in next(s for s in table if s.name == "cman").required_start
    assert "cman" in next(s for s in table if s.name == "drbd").required_start


@pytest.mark.parametrize("mode", initorder.MODES)
def test_only_init_scripts_the_xen_401_package_installs(mode):
    # Xen 4.0.1 lays down init.d/xend and init.d/xendomains only (tools/hotplug/Linux/Makefile);
    # `xend start` runs xenstored and xenconsoled itself, so the table must not want their scripts
    names = {s.name for s in initorder.services(mode)}
    assert names >= {"xend", "xendomains"} and not names & {"xenstored", "xenconsoled", "xencommons"}


def test_storage_modes():
    init = {s.name: s for s in initorder.services("init")}
    rgm = {s.name: s for s in initorder.services("rgmanager")}
    for name in ("drbd", "clvmd", "gfs2"):
        assert init[name].enabled and init[name].levels == "2345"
        assert not rgm[name].enabled and rgm[name].levels == "-"
    assert init["rgmanager"].enabled and rgm["rgmanager"].enabled
    assert "gfs2" in init["rgmanager"].required_start
    assert "gfs2" not in rgm["rgmanager"].required_start
    with pytest.raises(ValueError):
        initorder.services("systemd")


def test_stop_order_is_the_start_order_backwards():
    table = [s for s in initorder.services("init") if s.enabled]
    by_start = [s.name for s in sorted(table, key=lambda s: s.start)]
    by_stop = [s.name for s in sorted(table, key=lambda s: s.stop)]
    assert by_stop == list(reversed(by_start))


def test_check_order_catches_a_bad_table():
    table = list(initorder.services("init"))
    i = next(i for i, s in enumerate(table) if s.name == "cman")
    table[i] = initorder.InitService("cman", True, "2345", 9, 79, ("$network", "xend"), ())
    problems = initorder.check_order(tuple(table))
    assert problems and "cman (S09) requires xend" in problems[0]
    # the seed's drbd stop priority (K08) would stop DRBD under a mounted GFS2
    table = list(initorder.services("init"))
    i = next(i for i, s in enumerate(table) if s.name == "drbd")
    d = table[i]
    table[i] = initorder.InitService("drbd", True, d.levels, d.start, 8, d.required_start, d.required_stop)
    assert any("clvmd (K76) requires drbd which stops first, at K08" in p
               for p in initorder.check_order(tuple(table)))


def test_init_order_file_lines():
    text = initorder.init_order_file("rgmanager")
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert "drbd off - 20 78 $local_fs,$network,$syslog,cman $local_fs,$network,$syslog" in lines
    assert all(len(ln.split()) == 7 for ln in lines)


def test_init_mode_leaves_drbd_to_60_drbd():
    """A boot-time `drbd start` before 60-drbd made the metadata leaves the resource Diskless: in init
    mode step 40 keeps drbd off (state later) and 60-drbd switches it on."""
    lines = [ln for ln in initorder.init_order_file("init").splitlines() if not ln.startswith("#")]
    assert "drbd later 2345 20 78 $local_fs,$network,$syslog,cman $local_fs,$network,$syslog" in lines
    assert [ln.split()[0] for ln in lines if ln.split()[1] == "later"] == ["drbd"]
    step60 = (REPO / "overlay/firstboot/steps/60-drbd.sh").read_text()
    assert "chkconfig drbd on" in step60


@pytest.mark.parametrize("name,sha", [
    ("cluster.rng", "ed401bdf48eefda71e5cdca7baeb084d22368e6a82484b0f3a1b2f3fca4bde35"),
    ("cluster-3.0.12.rng", "36881e582f4b686d176ea133791663c3d6f86dbb235e95ff02b0d8f7ca9886ed"),
])
def test_vendored_schema_is_the_upstream_file(name, sha):
    digest = hashlib.sha256((REPO / "schemas" / name).read_bytes()).hexdigest()
    assert digest == sha
    assert f"| `{name}` |" in (REPO / "schemas" / "README.md").read_text()
    assert sha in (REPO / "schemas" / "README.md").read_text()
