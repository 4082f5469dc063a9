"""storage: DRBD, clustered LVM and GFS2."""
from __future__ import annotations

from typing import Any

from .checker import Checker, Values
from .model import Clvm, Drbd, Gfs2, Storage
from .settings import default, fill, given_or_default
from .values import lvm_name_problem, parse_size_mib


def load_storage(ck: Checker, top) -> Storage | None:
    m = ck.section(top, "storage", "storage")
    if not m:
        return None
    node = top["storage"]  # a mapping (m holds its well-typed keys)
    size = m.get("size")
    size_mib = parse_size_mib(size) if size is not None else None

    def part(key: str) -> tuple[Any, Values | None]:
        sub = node.get(key) if key in m else None
        return sub, (ck.mapping(sub, f"storage.{key}", key, ck.line(f"storage.{key}")) if sub is not None else None)

    drbd = _load_drbd(ck, part("drbd")[1])
    clvm = _load_clvm(part("clvm")[1])
    gfs2 = _load_gfs2(ck, *part("gfs2"))
    bd = m.get("backing_device", "")
    if drbd and clvm and gfs2 and bd:
        return fill(Storage, m, drbd=drbd, clvm=clvm, gfs2=gfs2, size_mib=size_mib)
    return None


def _load_drbd(ck: Checker, d: Values | None) -> Drbd | None:
    """storage.drbd: dual-primary needs protocol C, 'both' needs two primaries; bounded timeouts."""
    if d is None:
        return None
    proto = given_or_default(d, Drbd, "protocol")
    two = given_or_default(d, Drbd, "allow_two_primaries")
    if given_or_default(d, Drbd, "become_primary_on") == "both" and not two:
        ck.at("storage.drbd.become_primary_on", "'both' needs allow_two_primaries: true")
    if two and proto != "C":
        ck.at("storage.drbd.protocol", "allow_two_primaries needs protocol C")
    wfc, degr = _drbd_timeouts(ck, d)
    if all(k in d for k in ("resource", "device", "port", "sync_rate")):
        return fill(Drbd, d, wfc_timeout=wfc, degr_wfc_timeout=degr)
    return None


def _load_clvm(c: Values | None) -> Clvm | None:
    return fill(Clvm, c) if c is not None and c.get("vg") else None


# gfs2-utils 3.0 (cluster 3.0.12) gfs2/mkfs/main_mkfs.c test_locking: "filesystem name too long" past 16
# (the 30 of later releases came with gfs2-utils commit 335552bc, 2015)
GFS2_FSNAME_MAX = 16


def _load_gfs2(ck: Checker, gn, g: Values | None) -> Gfs2 | None:
    if g is None:
        return None
    ck.seen.gfs2_mount = str(gn.get("mount", "")).rstrip("/")  # the hvm ISOs must be under it
    lv = g.get("lv", "")
    if lv:
        _check_lvm_name(ck, lv, "storage.gfs2.lv", ck.line("storage.gfs2.lv"))
        if len(lv) > GFS2_FSNAME_MAX:
            ck.at("storage.gfs2.lv",
                  f"{lv!r} is {len(lv)} characters; mkfs.gfs2 of Fedora 13 (gfs2-utils 3.0) refuses a lock table "
                  f"<cluster>:<lv> whose file system name is longer than {GFS2_FSNAME_MAX}",
                  f"shorten the LV name to {GFS2_FSNAME_MAX} characters or fewer")
    gmib = parse_size_mib(g["size"]) if g.get("size") else None
    if lv and gmib and g.get("mount") and g.get("journals") is not None:
        return fill(Gfs2, g, size_mib=gmib)
    return None


# drbd_limits.h (DRBD 8.3.7): DRBD_WFC_TIMEOUT_MAX, DRBD_DEGR_WFC_TIMEOUT_MAX
DRBD_WFC_MAX = 300000


def _drbd_timeouts(ck: Checker, d: dict) -> tuple[int, int]:
    """wfc-timeout / degr-wfc-timeout: bounded, never 0 (DRBD's default: wait forever, the boot hangs)."""
    out = {}
    for key in ("wfc_timeout", "degr_wfc_timeout"):
        value = given_or_default(d, Drbd, key)
        if not 1 <= value <= DRBD_WFC_MAX:
            ck.at(f"storage.drbd.{key}",
                  f"{value} is not 1-{DRBD_WFC_MAX} seconds",
                  "0 means wait forever: a node whose peer is away would never finish booting")
            value = default(Drbd, key)
        out[key] = value
    if out["degr_wfc_timeout"] > out["wfc_timeout"]:
        ck.at("storage.drbd.degr_wfc_timeout",
              f"{out['degr_wfc_timeout']} is longer than wfc_timeout "
              f"({out['wfc_timeout']})",
              "drbdsetup 8.3.7 silently shortens it to wfc_timeout; make it shorter or equal")
    return out["wfc_timeout"], out["degr_wfc_timeout"]


def _check_lvm_name(ck: Checker, name: str, path: str, line: int | None) -> None:
    problem = lvm_name_problem(name)
    if problem:
        ck.add(path, problem[0], line, problem[1])
