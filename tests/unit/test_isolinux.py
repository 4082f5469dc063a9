"""isolinux.cfg editing: golden files (tests/golden/isolinux/<case>.cfg + .json -> .result) and the rules.

Regenerate the .result files after a deliberate change with UPDATE_GOLDEN=1 and review the diff.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from isobuild import isolinux
from isobuild.errors import IsobuildError

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "isolinux"
CASES = sorted(p.stem for p in GOLDEN.glob("*.cfg"))


def _edit(case: str) -> str:
    params = json.loads((GOLDEN / f"{case}.json").read_text())
    nodes = [isolinux.NodeEntry(n, fqdn, params["cluster"]) for n, fqdn in params["nodes"]]
    return isolinux.add_node_entries((GOLDEN / f"{case}.cfg").read_text(), nodes, params["console"])


@pytest.mark.parametrize("case", CASES)
def test_golden(case):
    got = _edit(case)
    result = GOLDEN / f"{case}.result"
    if os.environ.get("UPDATE_GOLDEN"):
        result.write_text(got)
    assert got == result.read_text()


def test_cases_exist():
    assert len(CASES) >= 3


@pytest.mark.parametrize("case", CASES)
def test_round_trip_is_exact(case):
    text = (GOLDEN / f"{case}.cfg").read_text()
    assert isolinux.parse(text).render() == text


@pytest.mark.parametrize("case", CASES)
def test_base_lines_kept_and_timeout_default_unchanged(case):
    base = (GOLDEN / f"{case}.cfg").read_text()
    new = _edit(case)
    new_lines = new.splitlines()
    kept = [line for line in base.splitlines() if isolinux._keyword(line)[0] != "serial"]
    # every base line survives, in order
    it = iter(new_lines)
    assert all(any(line == n for n in it) for line in kept)
    before, after = isolinux.parse(base).timeout_entry(), isolinux.parse(new).timeout_entry()
    assert before.name == after.name
    params = json.loads((GOLDEN / f"{case}.json").read_text())
    for node, fqdn in params["nodes"]:
        entry = next(e for e in isolinux.parse(new).entries if f"ks=cdrom:/ks/{node}.ks" in (e.get("append") or ""))
        assert entry.menu("label") == f"Install {fqdn} ({params['cluster']}): ERASES ALL DISKS"
        assert not entry.is_menu_default
        assert entry.name != after.name


def test_serial_directive_first_and_console_args():
    new = _edit("f13-serial")
    assert new.splitlines()[0] == "serial 0 115200"
    cfg = isolinux.parse(new)
    node = cfg.entry("an-node01")
    assert node.get("append").split() == [
        "initrd=initrd.img", "ks=cdrom:/ks/an-node01.ks", "console=tty0", "console=ttyS0,115200"]
    assert node.get("kernel") == "vmlinuz"


def test_template_ks_and_console_args_replaced():
    cfg = isolinux.parse(_edit("custom-default"))
    args = cfg.entry("n2").get("append").split()
    assert "ks=http://old.example.invalid/ks.cfg" not in args
    assert args.count("console=tty0") == 1 and "console=ttyS1,57600" in args
    assert "ip=dhcp" in args
    # a node called like a base label gets a distinct label; the base's `linux` is untouched
    assert cfg.entry("install-linux") is not None
    assert cfg.entry("linux").get("append") == "initrd=initrd.img ks=http://old.example.invalid/ks.cfg console=tty0 ip=dhcp"
    assert [line for line in cfg.head if line.lower().startswith("serial")] == ["serial 1 57600"]


def test_no_margin_change_when_labels_fit():
    text = (GOLDEN / "f13-plain.cfg").read_text()
    new = isolinux.add_node_entries(text, [isolinux.NodeEntry("n1", "n1.x.org", "c")])
    assert "menu margin" not in new


@pytest.mark.parametrize("console", ["ttyS0,abc", "/dev/ttyS0", "ttyS12,115200", "hvc0", "ttyS0 115200"])
def test_bad_console_rejected(console):
    with pytest.raises(IsobuildError, match="console"):
        isolinux.console_args(console)


@pytest.mark.parametrize("console,args,serial", [
    ("ttyS1,57600n8", ["console=tty0", "console=ttyS1,57600n8"], "serial 1 57600"),
    ("ttyS0", ["console=tty0", "console=ttyS0"], "serial 0 9600"),
    ("tty1", ["console=tty1"], None),
])
def test_console_settings(console, args, serial):
    assert isolinux.console_args(console) == (args, serial)
    new = isolinux.add_node_entries((GOLDEN / "f13-plain.cfg").read_text(),
                                    [isolinux.NodeEntry("n1", "n1.x.org", "c")], console)
    first = new.splitlines()[0]
    assert first == serial if serial else not first.startswith("serial")
    assert isolinux.parse(new).entry("n1").get("append").endswith(" ".join(args))


def test_base_without_install_entry():
    text = "default local\nlabel local\n  localboot 0xffff\n"
    with pytest.raises(IsobuildError, match="no install entry"):
        isolinux.add_node_entries(text, [isolinux.NodeEntry("n1", "n1.x", "c")])


def test_default_naming_a_future_node_entry_is_refused():
    # `default n1` names no base entry; adding node n1 would make the timeout install it
    text = "default n1\ntimeout 50\nlabel linux\n  kernel vmlinuz\n  append initrd=initrd.img\n"
    with pytest.raises(IsobuildError, match="timeout default"):
        isolinux.add_node_entries(text, [isolinux.NodeEntry("n1", "n1.x", "c")])


def test_remastering_a_remastered_disc_is_refused():
    once = _edit("f13-plain")
    with pytest.raises(IsobuildError, match="already has node install entries"):
        isolinux.add_node_entries(once, [isolinux.NodeEntry("n1", "n1.x", "c")])
