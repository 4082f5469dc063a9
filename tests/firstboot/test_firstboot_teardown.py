"""The two-node harness leaves no loop device behind: not the ones on the pair's images, not the LV
loops fbshim stacks on the shared drbd.img loop (children keep a parent busy: `losetup -d` of the
parent then only sets autoclear). A loop that cannot be detached is a teardown error, not ignored.

Needs root (loop devices, network namespaces, LVM); CI runs as root.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import loops
from harness import TeardownError


def losetup_list() -> dict[str, str]:
    """Every attached loop device, as losetup reports it: name -> backing file."""
    out = subprocess.run(["losetup", "--list", "--json", "-O", "NAME,BACK-FILE"], capture_output=True,
                         text=True, check=True).stdout
    devices = json.loads(out)["loopdevices"] if out.strip() else []
    return {d["name"]: (d["back-file"] or "").removesuffix(" (deleted)") for d in devices}


def of_pair(hdir: Path, table: dict[str, str]) -> dict[str, str]:
    """The loops on files under HDIR, and those on one of them (by name, as /dev/loopN or /loopN)."""
    root = str(hdir.resolve()) + "/"
    mine = {dev: back for dev, back in table.items() if back.startswith(root)}
    names = {Path(dev).name for dev in mine}
    return mine | {dev: back for dev, back in table.items() if Path(back).name in names}


def test_teardown_detaches_every_loop_the_pair_made_children_first(make_pair):
    p = make_pair("init", timeout=20)
    for name in p.nodes:  # up to the LVs: 70-clvm activates them (fbshim: a loop on the drbd loop each)
        p.start(name, stop_after="70-clvm")
    for name in p.nodes:
        assert p.wait(name) == 0, p.console(name)
    before = of_pair(p.h, losetup_list())
    lv_loops = [f.read_text().strip() for f in (p.h / "lvloops").iterdir()]
    assert lv_loops and all(Path(before[d]).name == Path(p.drbd_loop).name for d in lv_loops), before
    assert p.drbd_loop in before and len(before) >= 3 + len(lv_loops), before  # drbd.img, two backings

    p.cleanup()
    now = losetup_list()
    assert of_pair(p.h, now) == {}
    assert {d: b for d, b in now.items() if before.get(d) == b} == {}


def test_a_loop_that_stays_attached_is_a_teardown_error(make_pair):
    p = make_pair("init", timeout=10)
    held = open(p.drbd_loop, "rb")  # an opener the harness does not know: losetup -d only sets autoclear
    try:
        with pytest.raises(TeardownError, match=f"{p.drbd_loop} .*drbd.img"):
            p.cleanup()
    finally:
        held.close()  # autoclear: the kernel detaches it now
    p.cleanup()
    assert of_pair(p.h, losetup_list()) == {}


def test_a_loop_on_a_loop_of_the_pair_is_the_pairs_and_goes_first(tmp_path):
    """By the backing chain sysfs shows (a loop set up in another mount namespace names its parent
    /loopN), deepest first; a sibling directory whose name only starts like the pair's is not it."""
    table = {"/dev/loop7": f"{tmp_path}/img/drbd.img",
             "/dev/loop9": "/loop7", "/dev/loop12": "/dev/loop9", "/dev/loop8": f"{tmp_path}/img/a.img",
             "/dev/loop3": "/tmp/elsewhere/drbd.img", "/dev/loop4": "/loop3", "/dev/loop5": f"{tmp_path}x/b.img"}
    assert loops.owned(tmp_path, table) == ["/dev/loop12", "/dev/loop9", "/dev/loop7", "/dev/loop8"]
