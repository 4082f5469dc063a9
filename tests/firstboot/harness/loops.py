"""The loop devices a harness directory owns, and detaching them, children before parents.

A loop device belongs to directory H when its backing file is under H, or when it is backed by a
loop device that belongs to H: fbshim's LV activation stacks loops (with an offset) on the shared
drbd.img loop. The kernel keeps a loop busy while anything has it open, another loop bound to it
included: `losetup -d` then only sets autoclear, succeeds, and the device stays attached until its
last user goes. So children go first, and a detach counts only once sysfs no longer shows the device.
Read from sysfs at the time of asking: loop numbers are reused at once, also by other test runs.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

SYS_BLOCK = Path("/sys/block")
# A loop bound to a loop: "/dev/loopN", or "/loopN" when it was set up in another mount namespace
# (`ip netns exec`): the kernel names the file relative to its devtmpfs then.
_LOOP_BACKING = re.compile(r"^(?:/dev)?/(loop\d+)$")


def backing_file(dev: str) -> str | None:
    """What loop device DEV (/dev/loopN) is bound to, or None when it is not bound."""
    try:
        backing = (SYS_BLOCK / Path(dev).name / "loop" / "backing_file").read_text().strip()
    except OSError:
        return None
    return backing.removesuffix(" (deleted)")


def attached() -> dict[str, str]:
    """Every attached loop device on the machine: /dev/loopN -> its backing file."""
    table = {f"/dev/{d.name}": backing_file(f"/dev/{d.name}") for d in SYS_BLOCK.glob("loop*")}
    return {dev: backing for dev, backing in table.items() if backing is not None}


def owned(hdir: Path, table: dict[str, str] | None = None) -> list[str]:
    """The loop devices that belong to HDIR, the most deeply stacked first."""
    table = attached() if table is None else table
    root = os.path.realpath(hdir)
    depth: dict[str, int] = {}
    for dev in table:
        hops, cur, seen = 0, dev, set()
        while (m := _LOOP_BACKING.match(table.get(cur, ""))) and cur not in seen:
            seen.add(cur)
            hops, cur = hops + 1, f"/dev/{m.group(1)}"
        backing = table.get(cur)
        if backing is not None and (backing == root or backing.startswith(root + "/")):
            depth[dev] = hops
    return sorted(depth, key=lambda d: (-depth[d], d))


def detach_owned(hdir: Path, settle_s: float = 5.0) -> list[str]:
    """Detach every loop device that belongs to HDIR, children first, with `losetup -d`. Returns what
    could not be detached ("/dev/loopN (backing): why"), empty when all are gone."""
    errors = []
    for dev in owned(hdir):
        backing = backing_file(dev)
        if backing is None:
            continue  # gone already: autoclear was set, and its last child went
        r = subprocess.run(["losetup", "-d", dev], capture_output=True, text=True)
        end = time.monotonic() + settle_s  # a prober (udev, blkid) may hold it an instant
        while backing_file(dev) == backing and time.monotonic() < end:
            time.sleep(0.05)
        if backing_file(dev) == backing:  # (a different backing: detached, and reused at once)
            why = r.stderr.strip() or "still attached after losetup -d (busy: only autoclear was set)"
            errors.append(f"{dev} ({backing}): {why}")
    # the final sweep: whatever still belongs to HDIR (bound meanwhile, or not detachable) is an error
    failed = {e.split(" ", 1)[0] for e in errors}
    return errors + [f"{d} ({backing_file(d)}): attached after teardown" for d in owned(hdir) if d not in failed]
