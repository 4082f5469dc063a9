#!/usr/bin/env python3
"""PATH shims for the firstboot harness: stand-ins only for what cannot run in a test container.

One file, installed under many names (symlinks in <harness>/shimbin). Which command it plays is its
argv[0]. Every call is appended to <harness>/calls.log as "node<TAB>command<TAB>args" so the tests can
check what the steps did (and that no destructive command ran twice or on both nodes).

Environment (set by harness.py for each node's runner):
  FBH_DIR   the harness directory (shared state of the emulated cluster: cman membership, DRBD, GFS2)
  FBH_NODE  the node this process belongs to
  AN_ROOT   that node's scratch root
  FBH_KILL  "before:<pattern>", "after:<pattern>" or "during:<pattern>": SIGKILL the runner's process
            group (a power cut) right before / right after / in the middle of the first call whose
            "command args" contains <pattern>; "during" exists for the commands that write a device in
            stages (mkfs.gfs2, drbdmeta create-md) and leaves it partially written

Fakes (kernel or daemons needed): service, hostname, modprobe, cman_tool, clustat, lvmconf, mount, rpm,
yum, virsh, mdadm. The two hottest fakes are bash scripts beside this file: drbdsetup (the DRBD kernel
side, also called by drbdadm-83 via -s) and chkconfig.
Wrappers that run the REAL tool after mapping node paths ($AN_ROOT/dev/...) to the loop devices:
drbdmeta (real; the bash drbdadm beside this file runs the real drbdadm-83 with -m pointing here),
pvcreate/vgcreate/lvcreate/lvchange/pvs/vgs/lvs/vgchange (real LVM, private LVM_SYSTEM_DIR;
vgchange -ay emulates device-mapper activation with a loop device over the LV's extents),
mkfs.gfs2 (real, its output written to the device in the order gfs2-utils writes it), blkid and
wipefs (real). Every wrapper refuses to open the node's DRBD device while it is not Primary, as the
DRBD 8.3.7 module does (drbd_open_refused).
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

FBH = Path(os.environ["FBH_DIR"])
NODE = os.environ["FBH_NODE"]
ROOT = Path(os.environ.get("AN_ROOT", "/"))
CMD = Path(sys.argv[0]).name
ARGS = sys.argv[1:]
REAL = {"drbdmeta": "/usr/sbin/drbdmeta"}
US = "\x1f"


# --------------------------------------------------------------------------------------------------
# recording, state, power cuts


def _locked_append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(line + "\n")


def record(cmd: str = CMD, args: list[str] | None = None) -> None:
    """calls.log line: node TAB command TAB arguments separated by \\x1f (unit separator)."""
    _locked_append(FBH / "calls.log", f"{NODE}\t{cmd}\t{US.join(ARGS if args is None else args)}")


def maybe_kill(when: str, cmd: str = CMD, args: list[str] | None = None) -> None:
    spec = os.environ.get("FBH_KILL", "")
    if not spec.startswith(when + ":"):
        return
    pattern = spec.split(":", 1)[1]
    text = f"{cmd} {' '.join(ARGS if args is None else args)}"
    flag = FBH / "killed" / NODE
    if pattern in text and not flag.exists():
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.write_text(f"{when} {text}\n")
        _locked_append(FBH / "calls.log", f"{NODE}\t#power-cut\t{when} {text}")
        os.killpg(os.getpgrp(), signal.SIGKILL)


def state(*parts: str) -> Path:
    p = FBH.joinpath(*parts)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def run_dir(node: str = NODE) -> Path:
    """Runtime state of a node: gone after a (harness) reboot."""
    d = FBH / "run" / node
    d.mkdir(parents=True, exist_ok=True)
    return d


def nodes() -> dict[str, dict]:
    return json.loads((FBH / "nodes.json").read_text())


def me() -> dict:
    return nodes()[NODE]


def peer_name() -> str:
    return next(n for n in nodes() if n != NODE)


def fail(msg: str, rc: int = 1) -> None:
    print(f"{CMD}: {msg}", file=sys.stderr)
    sys.exit(rc)


def node_path(p: str, write: bool = False) -> str:
    """A path as the node sees it -> the real device/file here (follows the scratch root's symlinks).
    The node's DRBD device opens only while it is Primary (drbd_open_refused)."""
    if p.startswith("/dev/") or p.startswith("/etc/"):
        p = str(ROOT) + p
    if p.startswith(str(ROOT) + "/dev/") and os.path.islink(p):
        why = drbd_open_refused(p, write)
        if why:
            fail(f"{p[len(str(ROOT)):]}: open failed: {why}", 5)
        return os.path.realpath(p)
    return p


def drbd_open_refused(path: str, write: bool) -> str:
    """Why opening PATH fails on this node, "" if it does not: LINBIT/drbd-8.3 drbd-8.3.7
    drbd/drbd_main.c drbd_open: a device whose role is not Primary refuses a writer with EROFS and a
    reader with EMEDIUMTYPE (allow_oos, the module parameter, is off by default)."""
    if not (FBH / "nodes.json").exists() or os.path.normpath(path) != os.path.normpath(str(ROOT) + me()["drbd_device"]):
        return ""
    role = run_dir() / "drbd.role"
    if role.exists() and role.read_text().strip() == "Primary":
        return ""
    return os.strerror(30 if write else 124)  # EROFS "Read-only file system", EMEDIUMTYPE "Wrong medium type"


# --------------------------------------------------------------------------------------------------
# services, chkconfig


def svc_running(name: str, node: str = NODE) -> bool:
    return (run_dir(node) / f"svc.{name}").exists()


def cmd_service() -> None:
    record()
    if len(ARGS) < 2:
        fail("usage: service NAME start|stop|status|restart", 2)
    name, action = ARGS[0], ARGS[1]
    flag = run_dir() / f"svc.{name}"
    if action == "status":
        sys.exit(0 if flag.exists() else 3)
    if action in ("start", "restart"):
        if name in ("clvmd", "rgmanager", "gfs2") and not svc_running("cman"):
            fail(f"{name}: cman is not running")
        if name == "cman":
            conf = ROOT / "etc/cluster/cluster.conf"
            if not conf.is_file():
                fail("cman: /etc/cluster/cluster.conf is missing")
            version = _conf_version(conf)
            vfile = state("cluster", "config_version")
            if not vfile.exists() or not any(svc_running("cman", n) for n in nodes() if n != NODE):
                vfile.write_text(str(version))
            elif int(vfile.read_text()) != version:
                fail(f"cman: config_version {version} differs from the cluster's {vfile.read_text()}")
        if name == "gfs2":
            for line in (ROOT / "etc/fstab").read_text().splitlines():
                f = line.split()
                if len(f) >= 3 and f[2] == "gfs2" and not line.startswith("#"):
                    _mount(f[1])
        if name == "rgmanager":
            _rgmanager_starts_vms()
        flag.write_text("running\n")
        sys.exit(0)
    if action == "stop":
        flag.unlink(missing_ok=True)
        sys.exit(0)
    fail(f"unknown action {action}", 2)


def _rgmanager_starts_vms() -> None:
    """rgmanager starting on a node starts the VMs of its failover domain there: record in calls.log
    ("#vm-start") the DRBD disk state they start on (the kernel stand-in's own answer)."""
    dev = me()["drbd_device"]
    ds = subprocess.run([str(Path(sys.argv[0]).parent / "drbdsetup"), dev, "dstate"], capture_output=True,
                        text=True).stdout.strip()
    _locked_append(FBH / "calls.log", f"{NODE}\t#vm-start\t{ds or 'Unconfigured'}")


# --------------------------------------------------------------------------------------------------
# cman


def _conf_version(path: Path) -> int:
    m = re.search(r'<cluster[^>]*config_version="(\d+)"', path.read_text())
    return int(m.group(1)) if m else 0


def members() -> list[str]:
    return [n for n in nodes() if svc_running("cman", n)]


def cmd_cman_tool() -> None:
    record()
    if not svc_running("cman"):
        fail("Cannot open connection to cman, is it running ?")
    sub = ARGS[0] if ARGS else ""
    ms = members()
    version = int(state("cluster", "config_version").read_text())
    if sub == "status":
        quorate = len(ms) >= 1  # two_node="1" expected_votes="1"
        print(f"Version: 6.2.0\nConfig Version: {version}\nCluster Name: {nodes()[NODE]['cluster']}\n"
              f"Membership state: Cluster-Member\nNodes: {len(ms)}\nExpected votes: 1\nTotal votes: {len(ms)}\n"
              f"Quorum: 1{'' if quorate else '  Activity blocked'}\nFlags: 2node\n"
              f"Node name: {me()['fqdn']}\nNode ID: {me()['nodeid']}")
    elif sub == "nodes":
        print("Node  Sts   Inc   Joined               Name")
        for n, info in sorted(nodes().items(), key=lambda kv: kv[1]["nodeid"]):
            sts = "M" if n in ms else "X"
            print(f"{info['nodeid']:>4}   {sts}    100   2010-10-13 12:00:00  {info['fqdn']}")
    elif sub == "version" and ARGS[1:2] == ["-r"]:
        want = {n: _conf_version(Path(nodes()[n]["root"]) / "etc/cluster/cluster.conf") for n in ms}
        if len(set(want.values())) != 1:
            fail(f"cluster.conf differs between members: {want}")
        new = next(iter(want.values()))
        if new <= version:
            fail(f"config version {new} is not newer than the running {version}")
        state("cluster", "config_version").write_text(str(new))
    elif sub == "version":
        print(f"6.2.0 config {version}")
    else:
        fail(f"unsupported: {' '.join(ARGS)}", 2)


def cmd_clustat() -> None:
    record()
    if not svc_running("cman"):
        fail("Could not connect to CMAN: connection refused")
    ms = members()
    print(f"Cluster Status for {me()['cluster']} @ Wed Oct 20 23:48:14 2010")
    print(f"Member Status: {'Quorate' if ms else 'Inquorate'}\n")
    print(" Member Name                             ID   Status")
    print(" ------ ----                             ---- ------")
    for n, info in sorted(nodes().items(), key=lambda kv: kv[1]["nodeid"]):
        if n in ms:
            extra = ", Local" if n == NODE else ""
            rg = ", rgmanager" if svc_running("rgmanager", n) else ""
            print(f" {info['fqdn']:<39} {info['nodeid']:>4} Online{extra}{rg}")
        else:
            print(f" {info['fqdn']:<39} {info['nodeid']:>4} Offline")


# --------------------------------------------------------------------------------------------------
# DRBD: the real drbdadm-83 drives our drbdsetup (kernel stand-in) and the real drbdmeta


def set_disk_state(node: str, value: str) -> None:
    """What the metadata says (shared with the bash drbdsetup): Inconsistent right after create-md."""
    state("disks", f"{node}.dstate").write_text(value + "\n")


def cmd_drbdmeta() -> None:
    """Real drbdmeta on the node's backing device (the path in the config is the node's /dev/...)."""
    args = [node_path(a) if a.startswith("/dev/") else a for a in ARGS]
    if "create-md" in args:
        maybe_kill("before", "drbdmeta", args)
        record("drbdmeta", args)
        rc = subprocess.run([REAL["drbdmeta"], "--force", *args], stdin=subprocess.DEVNULL).returncode
        if rc == 0 and _cut_wanted("drbdmeta", args):
            _unwrite_drbd_superblock(next(a for a in args if a.startswith("/dev/loop")))
            maybe_kill("during", "drbdmeta", args)
        if rc == 0:
            set_disk_state(NODE, "Inconsistent")
        maybe_kill("after", "drbdmeta", args)
        sys.exit(rc)
    record("drbdmeta", args)
    os.execv(REAL["drbdmeta"], [REAL["drbdmeta"], *args])


# --------------------------------------------------------------------------------------------------
# LVM: real tools, node paths mapped; activation emulated with a loop device shared by both nodes


def _lvm(tool: str, args: list[str], capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([f"/usr/sbin/{tool}", *args], capture_output=capture, text=True)


def _activate(vg: str) -> None:
    out = _lvm("lvs", ["--noheadings", "--nosuffix", "--units", "b", "-o",
                       "lv_name,seg_pe_ranges,vg_extent_size", vg], capture=True)
    if out.returncode != 0:
        fail(out.stderr.strip())
    for line in out.stdout.splitlines():
        if not line.strip():
            continue
        lv, ranges, extent = line.split()
        pvdev, span = ranges.rsplit(":", 1)
        first, last = (int(x) for x in span.split("-"))
        pe_start = int(_lvm("pvs", ["--noheadings", "--nosuffix", "--units", "b", "-o", "pe_start", pvdev],
                            capture=True).stdout.strip())
        offset = pe_start + first * int(extent)
        size = (last - first + 1) * int(extent)
        key = FBH / "lvloops" / f"{vg}-{lv}"
        key.parent.mkdir(parents=True, exist_ok=True)
        with open(FBH / "lvloops.lock", "w") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            loop = key.read_text().strip() if key.exists() else ""
            if not loop:
                loop = subprocess.run(["losetup", "-f", "--show", "-o", str(offset), "--sizelimit", str(size), pvdev],
                                      capture_output=True, text=True, check=True).stdout.strip()
                key.write_text(loop + "\n")
                _locked_append(FBH / "loops", loop)
        link = ROOT / "dev" / vg / lv
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(loop)


def _unwrite_drbd_superblock(dev: str) -> None:
    """The device as a power cut inside create-md leaves it: LINBIT/drbd-8.3 drbd-8.3.7
    user/drbdmeta.c meta_create_md writes the activity log and the bitmap (md_initialize_common) and
    only then the meta-data superblock (md_cpu_to_disk): that last 4 KiB block is not on disk yet."""
    out = subprocess.run(["wipefs", "-n", "-p", dev], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split(",")
        if not line.startswith("#") and f[-1] == "drbd":
            with open(dev, "r+b") as fh:
                fh.seek(int(f[0], 16) // 4096 * 4096)
                fh.write(bytes(4096))
                os.fsync(fh.fileno())


def _cut_wanted(cmd: str, args: list[str]) -> bool:
    """Will maybe_kill("during", cmd, args) cut this call (and the device be left half written)?"""
    spec = os.environ.get("FBH_KILL", "")
    return (spec.startswith("during:") and spec.split(":", 1)[1] in f"{cmd} {' '.join(args)}"
            and not (FBH / "killed" / NODE).exists())


def _lvm_args(args: list[str]) -> list[str]:
    """While this node's DRBD device is not Primary, LVM cannot open it: it sees no PV (the harness
    lvm.conf accepts the device's loop, so that filter is narrowed here)."""
    if drbd_open_refused(str(ROOT) + me()["drbd_device"], False):
        return ["--config", 'devices { filter = [ "r|.*|" ] }', *args]
    return args


def cmd_lvm() -> None:
    writes = CMD in ("pvcreate", "vgcreate", "lvcreate", "lvchange")
    args = _lvm_args([node_path(a, write=writes) for a in ARGS])
    if writes:
        maybe_kill("before", CMD, args)
        record(CMD, args)
        rc = _lvm(CMD, args).returncode
        maybe_kill("after", CMD, args)
        sys.exit(rc)
    if CMD == "vgchange":
        record(CMD, args)
        rc = _lvm(CMD, args).returncode
        if rc == 0 and ("-ay" in args or ("-a" in args and args[args.index("-a") + 1] == "y")):
            _activate(args[-1])
        sys.exit(rc)
    os.execv(f"/usr/sbin/{CMD}", [CMD, *args])


# mkfs.gfs2 (gfs2-utils 3.0.x, gfs2/mkfs/main_mkfs.c main_mkfs): build_rgrps, build_root,
# build_master, then build_sb (the superblock with the lock table, at 64 KiB), then build_jindex,
# build_per_node, build_inum, build_statfs, build_rindex, build_quota. Emulated in that order at the
# device: the real mkfs.gfs2 writes a scratch image, the superblock reaches the device first, the rest
# FBH_MKFS_GFS2_MS later. A peer that trusts the superblock alone sees a filesystem that will not mount.
GFS2_SB_END = 68 << 10  # the superblock block (64 KiB, 4 KiB blocks) and everything before it


def cmd_mkfs_gfs2() -> None:
    args = [node_path(a, write=True) for a in ARGS]
    maybe_kill("before", CMD, args)
    record(CMD, args)
    dev = args[-1]
    with open(dev, "rb") as fh:
        size = fh.seek(0, 2)
    image = run_dir() / "mkfs.gfs2.img"
    with open(image, "wb") as fh:
        fh.truncate(size)
    rc = subprocess.run(["/usr/sbin/mkfs.gfs2", *args[:-1], str(image)], stdin=subprocess.DEVNULL).returncode
    if rc == 0:
        _copy_range(image, dev, GFS2_SB_END - (4 << 10), GFS2_SB_END)
        maybe_kill("during", CMD, args)
        time.sleep(int(os.environ.get("FBH_MKFS_GFS2_MS", "1000")) / 1000)
        _copy_range(image, dev, GFS2_SB_END, size)
        _copy_range(image, dev, 0, GFS2_SB_END - (4 << 10))
    image.unlink()
    maybe_kill("after", CMD, args)
    sys.exit(rc)


def _copy_range(src: Path, dst: str, start: int, end: int) -> None:
    with open(src, "rb") as i, open(dst, "r+b") as o:
        i.seek(start)
        o.seek(start)
        while start < end:
            chunk = i.read(min(4 << 20, end - start))
            o.write(chunk)
            start += len(chunk)
        o.flush()
        os.fsync(o.fileno())


def cmd_probe() -> None:
    """blkid and wipefs: the real ones, but the node's DRBD device is not readable while Secondary. The
    messages are util-linux-ng 2.17.2's (misc-utils/blkid.c lowprobe_device: exit 2; wipefs.c
    read_offsets: blkid_new_probe_from_filename fails, exit 1)."""
    for a in ARGS:
        if not a.startswith("/"):
            continue
        why = drbd_open_refused(a, False)
        if why and CMD == "blkid":
            print(f"error: {a}: {why}", file=sys.stderr)
            sys.exit(2)
        if why:
            fail(f"error: {a}: probing initialization failed", 1)
    os.execv(f"/usr/sbin/{CMD}", [CMD, *ARGS])


# --------------------------------------------------------------------------------------------------
# mount: GFS2 with lock_dlm needs the kernel's dlm; emulated as one directory shared by both nodes


def _mount(mnt: str) -> None:
    fstab = (ROOT / "etc/fstab").read_text().splitlines()
    entry = next((ln.split() for ln in fstab if len(ln.split()) >= 3 and ln.split()[1] == mnt
                  and not ln.lstrip().startswith("#")), None)
    if entry is None:
        fail(f"can't find {mnt} in /etc/fstab", 1)
    spec, fstype = entry[0], entry[2]
    if fstype != "gfs2":
        fail(f"{mnt}: only gfs2 is emulated here", 32)
    if not svc_running("cman"):
        fail("gfs_controld join connect error: Connection refused (is cman running?)", 32)
    if not spec.startswith("UUID="):
        fail(f"{mnt}: fstab entry is not by UUID", 32)
    uuid = spec[5:]
    dev = None
    for link in ROOT.glob("dev/*/*"):
        got = subprocess.run(["blkid", "-p", "-o", "value", "-s", "UUID", str(link)],
                             capture_output=True, text=True).stdout.strip()
        if got and got == uuid:
            dev = link
            break
    if dev is None:
        fail(f"special device {spec} does not exist", 32)
    if subprocess.run(["fsck.gfs2", "-n", str(dev)], capture_output=True).returncode != 0:
        # what util-linux mount says when the kernel refuses the superblock (the rest is not there)
        fail(f"wrong fs type, bad option, bad superblock on /dev/mapper/{dev.parent.name}-{dev.name},\n"
             "       missing codepage or helper program, or other error", 32)
    shared = FBH / "gfs2" / uuid
    shared.mkdir(parents=True, exist_ok=True)
    target = ROOT / mnt.lstrip("/")
    if target.is_symlink():
        target.unlink()
    elif target.is_dir():
        if any(target.iterdir()):
            fail(f"{mnt}: mount point not empty in this emulation", 32)
        target.rmdir()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(shared)
    _locked_append(ROOT / "proc/mounts", f"/dev/mapper/{dev.parent.name}-{dev.name} {mnt} gfs2 rw,relatime 0 0")


def cmd_mount() -> None:
    record()
    if len(ARGS) != 1:
        fail("this emulation mounts by mount point only (mount MOUNTPOINT)", 2)
    _mount(ARGS[0])


# --------------------------------------------------------------------------------------------------
# small ones


def cmd_hostname() -> None:
    p = run_dir() / "hostname"
    if ARGS:
        record()
        p.write_text(ARGS[0] + "\n")
    else:
        print(p.read_text().strip() if p.exists() else "localhost.localdomain")


def cmd_simple() -> None:
    record()
    if CMD == "rpm":
        sys.exit(1)  # rpm -q: nothing from the host's rpm database is "installed" on the node
    sys.exit(0)


def cmd_mdadm() -> None:
    """No md driver here: --create makes the array a fresh loop device and remembers its members."""
    record()
    members_file = FBH / "md" / f"{NODE}.members"
    if "--examine" in ARGS:
        known = members_file.read_text().split() if members_file.exists() else []
        sys.exit(0 if os.path.realpath(ARGS[-1]) in known else 1)
    if "--assemble" in ARGS:
        sys.exit(1)  # nothing to assemble: the harness starts without the array
    if "--create" in ARGS:
        maybe_kill("before")
        md = ARGS[ARGS.index("--create") + 1]
        members = [a for a in ARGS[ARGS.index("--create") + 2:] if not a.startswith("-")]
        for m in members:
            if not os.path.exists(m):
                fail(f"cannot open {m}: No such file or directory")
        image = FBH / "img" / f"{NODE}-md.img"
        with open(image, "wb") as fh:
            fh.truncate(64 << 20)
        loop = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True, text=True,
                              check=True).stdout.strip()
        _locked_append(FBH / "loops", loop)
        members_file.parent.mkdir(parents=True, exist_ok=True)
        members_file.write_text("\n".join(os.path.realpath(m) for m in members) + "\n")
        Path(md).parent.mkdir(parents=True, exist_ok=True)
        Path(md).symlink_to(loop)
        maybe_kill("after")
        sys.exit(0)
    if "--detail" in ARGS:
        print(f"ARRAY {ARGS[-1][len(str(ROOT)):]} metadata=1.2 name=localhost.localdomain:3 "
              "UUID=f0b6d0c1:490d47e7:91c7e63a:f8dacc21")
        sys.exit(0)
    fail(f"unsupported: {' '.join(ARGS)}", 2)


def cmd_lvmconf() -> None:
    record()
    sys.exit(0)


DISPATCH = {
    "service": cmd_service, "cman_tool": cmd_cman_tool, "clustat": cmd_clustat,
    "drbdmeta": cmd_drbdmeta,
    "pvcreate": cmd_lvm, "vgcreate": cmd_lvm, "lvcreate": cmd_lvm, "pvs": cmd_lvm, "vgs": cmd_lvm, "lvs": cmd_lvm,
    "vgchange": cmd_lvm, "lvchange": cmd_lvm, "mkfs.gfs2": cmd_mkfs_gfs2, "blkid": cmd_probe, "wipefs": cmd_probe, "mount": cmd_mount, "hostname": cmd_hostname,
    "modprobe": cmd_simple, "rpm": cmd_simple, "yum": cmd_simple, "virsh": cmd_simple, "lvmconf": cmd_lvmconf,
    "mdadm": cmd_mdadm,
}

if __name__ == "__main__":
    DISPATCH[CMD]()
