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
side, also called by drbdadm-83 via -s) and drbdadm. chkconfig follows chkconfig 1.3.46 (override files,
its header parser, LSB dependencies).
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


def wait_gate(name: str, bound: float = 120) -> None:
    """A test holds `service NAME start` on this node while FBH_DIR/gate/<node>.<NAME> exists (a
    daemon that is slow to come up), so it can look at what the peer does meanwhile."""
    import time

    gate = FBH / "gate" / f"{NODE}.{name}"
    end = time.monotonic() + bound
    while gate.exists() and time.monotonic() < end:
        time.sleep(0.1)


def cman_join(conf: Path, alone: bool) -> None:
    """cman's init script (cluster 3.0.12 cman/init.d/cman.in start) takes a while: cman_tool join,
    the quorum wait, then fenced joins the fence domain. A node that forms the domain alone starts
    fenced's post_join_delay (fence/fenced/recover.c delay_fencing; default 6, config.h): whoever
    is not a member when it runs out is fenced (power-cycled). FBH_TIME_SCALE (harness.TIME_SCALE)
    scales cluster.conf's seconds to test time."""
    import time

    time.sleep(float(os.environ.get("FBH_CMAN_JOIN_S", "0.3")))
    if not alone or os.fork() != 0:
        return
    # the forked fenced: in the node's process group (a power cut of this node ends it), no
    # inherited pipes (a caller capturing `service cman start` output must not wait for it)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    m = re.search(r'<fence_daemon[^>]*post_join_delay="(\d+)"', conf.read_text())
    end = time.monotonic() + (int(m.group(1)) if m else 6) * float(os.environ["FBH_TIME_SCALE"])
    victims = {n for n in nodes() if n != NODE}
    while victims and time.monotonic() < end:
        victims = {n for n in victims if not svc_running("cman", n)}  # reduce_victims: a node that joined is no victim
        time.sleep(0.1)
    if (run_dir() / "svc.cman").exists():
        for n in sorted(victims):
            fence(n, "not a member after post_join_delay")
    os._exit(0)


def fence(victim: str, why: str) -> None:
    """Power-cycle VICTIM: its firstboot run dies (the harness reboots it); the tests see "#fenced"."""
    _locked_append(FBH / "calls.log", f"{NODE}\t#fenced\t{victim}{US}{why}")
    state("fenced", victim).write_text(f"by {NODE}: {why}\n")
    pgid = FBH / "nodes" / victim / "pgid"
    if pgid.exists():
        try:
            os.killpg(int(pgid.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError, PermissionError):
            pass
    import shutil

    shutil.rmtree(FBH / "run" / victim, ignore_errors=True)


def _xend_state() -> dict:
    f = run_dir() / "xend.json"
    return json.loads(f.read_text()) if f.exists() else {"bridges": []}


def _env_value(key: str) -> str:
    env = (ROOT / "var/lib/an-cluster/stage/etc/an-cluster/firstboot.env").read_text()
    m = re.search(rf"^{key}='?([^'\n]*)'?$", env, re.M)
    return m.group(1) if m else ""


def _bcn_if() -> str:
    return _env_value("AN_BCN_IF") or "eth0"


def xen_network(name: str, action: str) -> None:
    """xend and the network under each other (Xen 4.0.1 tools/hotplug/Linux/init.d/xend, tools/misc/xend,
    network-bridge; the seed): `xend start` runs the network script of the xend-config.sxp it reads
    then (network-bridge renames ethN to pethN, the bridge takes ethN's name and address; xend stop
    leaves that). Under a running cman, anything that takes the BCN link down (xend (re)starting its
    bridges, a network restart) loses totem: the peer fences this node. A network restart under the
    bridges breaks them: it fails here."""
    import hashlib

    cman = svc_running("cman")
    flag = run_dir() / f"svc.{name}"
    st = _xend_state()
    if name == "network":
        if cman:
            fence(NODE, f"network {action} under a running cman")
        if st["bridges"]:
            _locked_append(FBH / "calls.log", f"{NODE}\t#broken\tnetwork {action} under xend bridges {st['bridges']}")
            fail(f"network {action}: {', '.join(st['bridges'])} are Xen bridges now (their NICs renamed p<name>)")
        flag.write_text("running\n")
        sys.exit(0)
    if action == "status":
        sys.exit(0 if flag.exists() else 3)
    if action == "stop":
        if cman:
            fence(NODE, "xend stop under a running cman")
        flag.unlink(missing_ok=True)
        sys.exit(0)
    if action not in ("start", "restart"):
        fail(f"Usage: xend {{start|stop|status|restart|reload|force-reload}}", 1)
    if action == "start" and flag.exists():
        sys.exit(0)
    conf = ROOT / "etc/xen/xend-config.sxp"
    text = conf.read_text()
    m = re.search(r"^\(network-script\s+'?([^)' ]+)", text, re.M)
    script = ROOT / "etc/xen/scripts" / (m.group(1) if m else "")
    if m and script.name == "network-bridge":
        new = [_bcn_if()]  # netdev: the default-route NIC
    elif m and os.access(script, os.X_OK):
        new = re.findall(r"netdev=(\S+)", script.read_text())
    else:
        new = []
    if cman and (action == "restart" or _bcn_if() in new):
        fence(NODE, f"xend {action} under a running cman (its bridges took {_bcn_if()} down)")
    st = {"config_sha256": hashlib.sha256(text.encode()).hexdigest(),
          "script_sha256": hashlib.sha256(script.read_bytes()).hexdigest() if script.is_file() else "",
          "bridges": sorted(set(st["bridges"]) | set(new))}
    (run_dir() / "xend.json").write_text(json.dumps(st))
    flag.write_text("running\n")
    sys.exit(0)


def cmd_network_bridge() -> None:
    """/etc/xen/scripts/network-bridge start|stop netdev=... (what an-network-script calls)."""
    record()
    kv = dict(a.split("=", 1) for a in ARGS[1:] if "=" in a)
    st = _xend_state()
    dev = kv.get("netdev", _bcn_if())
    if ARGS[:1] == ["stop"]:
        st["bridges"] = [b for b in st["bridges"] if b != dev]
    elif ARGS[:1] == ["start"]:
        st["bridges"] = sorted(set(st["bridges"]) | {dev})
    else:
        fail(f"Unknown command: {' '.join(ARGS[:1])}")
    (run_dir() / "xend.json").write_text(json.dumps(st))


def cmd_service() -> None:
    record()
    if len(ARGS) < 2:
        fail("usage: service NAME start|stop|status|restart", 2)
    name, action = ARGS[0], ARGS[1]
    flag = run_dir() / f"svc.{name}"
    if action == "status":
        sys.exit(0 if flag.exists() else 3)
    if name == "xend" or (name == "network" and action != "status"):
        xen_network(name, action)  # exits when it decides
    if action in ("start", "restart"):
        wait_gate(name)
        if name in ("clvmd", "rgmanager", "gfs2") and not svc_running("cman"):
            fail(f"{name}: cman is not running")
        if name == "clvmd" and not svc_running("clvmd"):
            blocked = dlm_reaches_peer()
            if blocked:
                fail(f"clvmd startup timed out: the DLM cannot reach {peer_name()} ({blocked})")
        if name == "cman":
            conf = ROOT / "etc/cluster/cluster.conf"
            if not conf.is_file():
                fail("cman: /etc/cluster/cluster.conf is missing")
            version = _conf_version(conf)
            vfile = state("cluster", "config_version")
            alone = not any(svc_running("cman", n) for n in nodes() if n != NODE)
            if not vfile.exists() or alone:
                vfile.write_text(str(version))
            elif int(vfile.read_text()) != version:
                fail(f"cman: config_version {version} differs from the cluster's {vfile.read_text()}")
            if not svc_running("cman"):
                cman_join(conf, alone)
                flag.write_text("running\n")
                dlm_listener()
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


def gnu_getopt(args: list[str], optstring: str) -> tuple[list[tuple[str, str | None]], list[str]] | None:
    """glibc getopt(3) as a C tool calls it: options anywhere (argv is permuted), "x:" needs an
    argument (attached or next word), "x::" takes one only attached. None on an unknown option or a
    missing argument (the tool then prints its own complaint)."""
    spec: dict[str, int] = {}
    i = 0
    while i < len(optstring):
        c, n = optstring[i], 0
        while optstring[i + 1:i + 2] == ":" and n < 2:
            n, i = n + 1, i + 1
        spec[c] = n
        i += 1
    opts, operands, k = [], [], 0
    while k < len(args):
        a = args[k]
        k += 1
        if a == "--":
            operands += args[k:]
            break
        if not a.startswith("-") or a == "-":
            operands.append(a)
            continue
        j = 1
        while j < len(a):
            c = a[j]
            if c not in spec:
                return None
            if spec[c] == 0:
                opts.append((c, None))
                j += 1
                continue
            rest = a[j + 1:]
            if rest:
                opts.append((c, rest))
            elif spec[c] == 2:
                opts.append((c, None))
            elif k < len(args):
                opts.append((c, args[k]))
                k += 1
            else:
                return None
            break
    return opts, operands


# cluster 3.0.12 cman/cman_tool/main.c: OPTION_STRING and the operation words of decode_arguments()
CMAN_TOOL_OPTS = "m:n:v:e:2p:c:r:i:N:t:o:k:F:C:VAPwfqah?XD::Sd::"
CMAN_TOOL_OPS = ("join", "leave", "kill", "expected", "votes", "version", "wait", "status", "nodes", "services",
                 "debug")


def cmd_cman_tool() -> None:
    record()
    parsed = gnu_getopt(ARGS, CMAN_TOOL_OPTS)
    if parsed is None:
        fail("Please use '-h' for usage.")
    opts, words = parsed
    ops = [w for w in words if w in CMAN_TOOL_OPS]
    unknown = [w for w in words if w not in CMAN_TOOL_OPS and w not in ("remove", "force")]
    if unknown:
        fail(f"unknown option {unknown[0]}")
    if len(ops) != 1:
        fail("can't specify two operations" if ops else "no operation specified")
    o = dict(opts)
    if "r" in o and not re.fullmatch(r"\d+", o["r"] or ""):
        fail(f"argument to r ({o['r']}) is not an integer")
    if not svc_running("cman"):
        fail("Cannot open connection to cman, is it running ?")
    sub = ops[0]
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
    elif sub == "version" and "r" in o:
        # version(): without -S it runs /usr/bin/ccs_sync (package ricci, not installed on our nodes)
        if "S" not in o and not (ROOT / "usr/bin/ccs_sync").exists():
            print("sh: /usr/bin/ccs_sync: No such file or directory", file=sys.stderr)
            fail("ccs_sync failed.\nIf you have distributed the config file yourself, try re-running with -S")
        new = int(o["r"])
        want = {n: _conf_version(Path(nodes()[n]["root"]) / "etc/cluster/cluster.conf") for n in ms}
        if set(want.values()) != {new}:
            fail(f"can't set version: cluster.conf on the members has {want}, not {new}")
        if new <= version:
            fail(f"can't set version: {new} is not newer than the running {version}")
        state("cluster", "config_version").write_text(str(new))
    elif sub == "version":
        print(f"6.2.0 config {version}")
    else:
        fail(f"unsupported here: {' '.join(ARGS)}", 2)


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


# --------------------------------------------------------------------------------------------------
# chkconfig 1.3.46 (fedora-sysv/chkconfig tag chkconfig-1.3.46; F13 ships a 1.3.4x): leveldb.c
# parseServiceInfo/readServiceInfo, chkconfig.c addService/delService/setService/frobDependencies.


def _ck_parse(text: str, name: str, partial: bool) -> dict | None:
    """parseServiceInfo: note the loop stops as soon as it has levels and a description, so an
    LSB block after "# description:" (cman, drbd, xend as shipped) is never read: not LSB."""
    sv = {"levels": None, "s": None, "k": None, "desc": None, "start": None, "stop": None, "provides": None,
          "lsb": False}
    for raw in text.split("\n"):
        if sv["levels"] is not None and sv["desc"] is not None:
            break
        line = raw.lstrip()
        if not line.startswith("#"):
            continue
        line = line[1:]
        if line.startswith("## BEGIN INIT INFO"):
            sv["lsb"] = True
        line = line.lstrip()
        if line.startswith("chkconfig:"):
            f = line[10:].split()
            if len(f) < 3 or not f[1].isdigit() or not f[2].isdigit() or int(f[1]) > 99 or int(f[2]) > 99:
                return None
            sv["s"] = sv["s"] if sv["s"] is not None else int(f[1])
            sv["k"] = sv["k"] if sv["k"] is not None else int(f[2])
            if sv["levels"] is None:
                sv["levels"] = 0 if f[0] == "-" else sum(1 << int(c) for c in f[0] if c.isdigit())
        elif line.startswith("description") or line.startswith("Description:") or line.startswith("Short-Description:"):
            sv["desc"] = line
        elif line.startswith("Default-Start:"):
            sv["levels"] = (sv["levels"] or 0) | sum(1 << int(x) for x in line[14:].split() if x.isdigit())
        elif line.startswith("Default-Stop:"):
            for x in line[13:].split():
                if x.isdigit():
                    sv["levels"] = (sv["levels"] or 0) & ~(1 << int(x))
        elif line.startswith("Required-Start:"):
            sv["start"] = line[15:].split()
        elif line.startswith("Required-Stop:"):
            sv["stop"] = line[14:].split()
        elif line.startswith("Provides:"):
            sv["provides"] = line[9:].split()
    if not partial and (sv["levels"] is None or (not sv["lsb"] and (sv["s"] is None or sv["k"] is None))):
        return None
    sv["name"] = name
    sv["provides"] = sv["provides"] or [name]
    return sv


def _ck_read(name: str) -> dict | None:
    """readServiceInfo: the init script, then /etc/chkconfig.d/<name> merged over it."""
    script = ROOT / "etc/rc.d/init.d" / name
    if not script.is_file():
        return None
    sv = _ck_parse(script.read_text(errors="replace"), name, False)
    if sv is None:
        return None
    ov = ROOT / "etc/chkconfig.d" / name
    if ov.is_file():
        o = _ck_parse(ov.read_text(errors="replace"), name, True)
        if o is not None:
            sv["s"], sv["k"] = o["s"], o["k"]  # taken even when unset (-1 is not the "unset" -2 it checks)
            for key in ("levels", "start", "stop"):
                if o[key] is not None:
                    sv[key] = o[key]
            sv["provides"] = o["provides"]
            sv["lsb"] = sv["lsb"] or o["lsb"]
    sv["s"] = 50 if sv["s"] is None else sv["s"]  # frobOneDependencies: unset priorities are 50
    sv["k"] = 50 if sv["k"] is None else sv["k"]
    return sv


def _ck_links(name: str, level: int) -> list[Path]:
    d = ROOT / "etc/rc.d" / f"rc{level}.d"
    return sorted(d.glob(f"[SK][0-9][0-9]{name}")) if d.is_dir() else []


def _ck_set(sv: dict, level: int, on: bool) -> None:
    """doSetService"""
    for p in _ck_links(sv["name"], level):
        p.unlink()
    d = ROOT / "etc/rc.d" / f"rc{level}.d"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{'S' if on else 'K'}{sv['s' if on else 'k']:02d}{sv['name']}").symlink_to(f"../init.d/{sv['name']}")


def _ck_is_on(name: str, level: int) -> bool:
    links = _ck_links(name, level)
    return bool(links) and links[0].name.startswith("S")


def _ck_similar(a: dict, b: dict) -> bool:
    def st(sv, lv):
        return _ck_is_on(sv["name"], lv) if _ck_links(sv["name"], lv) else bool(sv["levels"] & (1 << lv))
    return all(st(a, lv) == st(b, lv) for lv in range(7))


def _ck_frob_one(sv: dict, servs: list[dict], target: bool) -> bool:
    s0, k0 = sv["s"], sv["k"]
    for other in servs:
        for deps, start in ((sv["start"], True), (sv["stop"], False)):
            for dep in deps or []:
                if (dep == other["name"] or dep in other["provides"]) and _ck_similar(sv, other):
                    if start and sv["s"] <= other["s"]:
                        sv["s"] = min(other["s"] + 1, 99)  # laterThan
                    if not start and sv["k"] >= other["k"]:
                        sv["k"] = max(other["k"] - 1, 0)  # earlierThan
    if target or (s0, k0) != (sv["s"], sv["k"]):
        for lv in range(7):
            if _ck_links(sv["name"], lv):
                _ck_set(sv, lv, _ck_is_on(sv["name"], lv))
            elif target:
                _ck_set(sv, lv, bool(sv["levels"] & (1 << lv)))
        return True
    return False


def _ck_frob(sv: dict) -> None:
    """frobDependencies: settle every other LSB service first, then place this one."""
    initd = ROOT / "etc/rc.d/init.d"
    servs = [x for x in (_ck_read(p.name) for p in sorted(initd.iterdir()) if p.is_file()) if x]
    while sum(_ck_frob_one(x, servs, False) for x in servs if x["lsb"] and x["name"] != sv["name"]):
        pass
    _ck_frob_one(sv, servs, True)


def cmd_chkconfig() -> None:
    record()
    args = list(ARGS)
    where = 0
    if args[:1] in (["--level"], ["--levels"]) and len(args) >= 2:
        where = sum(1 << int(c) for c in args[1] if c.isdigit())
        args = args[2:]
    if len(args) == 2 and args[0] in ("--add", "--del"):
        sv = _ck_read(args[1])
        if sv is None:
            fail(f"service {args[1]} does not support chkconfig")
        if args[0] == "--del":
            for lv in range(7):
                for p in _ck_links(sv["name"], lv):
                    p.unlink()
        elif sv["lsb"]:
            _ck_frob(sv)
        else:
            for lv in range(7):  # addService, not LSB: levels already configured keep their links
                if not _ck_links(sv["name"], lv):
                    _ck_set(sv, lv, bool(sv["levels"] & (1 << lv)))
        sys.exit(0)
    if len(args) == 1 and where:  # query: on in that runlevel?
        sys.exit(0 if _ck_read(args[0]) and _ck_is_on(args[0], where.bit_length() - 1) else 1)
    if len(args) == 2 and args[1] in ("on", "off", "reset"):
        sv = _ck_read(args[0])
        if sv is None:
            fail(f"error reading information on service {args[0]}: No such file or directory")
        if sv["lsb"]:
            _ck_frob(sv)
        for lv in range(7):  # setService
            if (where or (0b0111100 if args[1] != "reset" else 0b1111111)) & (1 << lv):
                on = args[1] == "on" if args[1] != "reset" else bool(sv["levels"] & (1 << lv))
                _ck_set(sv, lv, on)
        sys.exit(0)
    fail(f"unsupported here: {' '.join(ARGS)}", 2)


# --------------------------------------------------------------------------------------------------
# ccs_config_validate (cluster 3.0.12 config/tools/xml/ccs_config_validate.in) and fence_node
# (fence/fence_node/fence_node.c, OPTION_STRING "UvhV")


def cmd_ccs_config_validate() -> None:
    """getopt t:hVnC:f:l:rovq; -l, -f, -r, -C exclude each other (exit 255); the file (-f, -l) or
    the running configuration is checked with xmllint --relaxng @SHAREDIR@/cluster.rng, here the
    node root's /usr/share/cluster/cluster.rng (the harness puts the 3.0.12 schema there)."""
    record()
    parsed = gnu_getopt(ARGS, "t:hVnC:f:l:rovq")
    if parsed is None:
        fail("usage: ccs_config_validate [options]", 255)
    opts, _ = parsed
    given = [o for o, _ in opts if o in "lfrC"]
    if len(given) > 1:
        print(f"Error: invalid options. -{given[1]} can not be set together with -{given[0]}", file=sys.stderr)
        sys.exit(255)
    o = dict(opts)
    if "v" in o and "q" in o:
        print("Error: invalid options. -q can not be set together with -v", file=sys.stderr)
        sys.exit(255)
    path = Path(o.get("f") or o.get("l") or str(ROOT / "etc/cluster/cluster.conf"))
    if not path.is_file():
        print("Unable to get the configuration", file=sys.stderr)
        sys.exit(255)
    r = subprocess.run(["xmllint", "--noout", "--relaxng", str(ROOT / "usr/share/cluster/cluster.rng"), str(path)],
                       capture_output=True, text=True)
    if "q" not in o or r.returncode:
        print(r.stderr.replace(str(path), "tempfile").replace("tempfile validates", "Configuration validates")
              .replace("tempfile fails to validate", "Configuration fails to validate"), end="")
    sys.exit(r.returncode)


def cmd_fence_node() -> None:
    """fence_node [-U] [-v] NODE: fences NODE through cman (its clusternode name in cluster.conf)."""
    record()
    parsed = gnu_getopt(ARGS, "UvhV")
    if parsed is None:
        fail("Please use '-h' for usage.")
    opts, words = parsed
    if len(words) > 1:
        fail(f"unknown option {words[1]}")
    if not words and "U" not in dict(opts):
        fail("no node name specified")
    if not svc_running("cman"):
        fail("cannot connect to cman")
    victim = words[0] if words else me()["fqdn"]
    by_fqdn = {info["fqdn"]: n for n, info in nodes().items()}
    if victim not in by_fqdn:  # libfence looks the name up as /cluster/clusternodes/clusternode[@name]
        print(f"fence {victim} undefined", file=sys.stderr)
        sys.exit(2)
    if "U" in dict(opts):
        print(f"unfence {victim} success", file=sys.stderr)
        sys.exit(0)
    fence(by_fqdn[victim], "fence_node")
    print(f"fence {victim} success", file=sys.stderr)
    sys.exit(0)


# --------------------------------------------------------------------------------------------------
# an application writing to the DRBD device (harness only; what GFS2 on it would submit)


def cmd_fbh_write_drbd() -> None:
    """fbh-write-drbd OFFSET HEXDATA: one write to this node's DRBD device through the DRBD 8.3.7
    block path (LINBIT/drbd-8.3 tag drbd-8.3.7): drbd_open (drbd/drbd_main.c: only a Primary opens,
    node_path), then drbd_make_request -> inc_ap_bio (drbd/drbd_int.h), which waits as long as the
    device is suspended (__inc_ap_bio_cond: state.susp). Each wait round lets the kernel stand-in
    (drbdsetup's tick) notice a lost connection (drbd_disconnect) and run the fence-peer handler.
    A node power-cycled meanwhile (its runtime state gone) never completes the write.
    Records "#drbd-write OFFSET" in calls.log at the moment the write reaches the disk."""
    offset, data = int(ARGS[0]), bytes.fromhex(ARGS[1])
    dev = me()["drbd_device"]
    real = node_path(dev, write=True)
    drbdsetup = str(Path(sys.argv[0]).parent / "drbdsetup")
    rundir = FBH / "run" / NODE
    while True:
        subprocess.run([drbdsetup, dev, "cstate"], capture_output=True)
        with open(FBH / "drbd.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (rundir / "drbd.role").exists():
                fail(f"{dev}: the node went down before the write was submitted", 5)
            if not (rundir / "drbd.susp").exists():
                fd = os.open(real, os.O_WRONLY)
                try:
                    os.pwrite(fd, data, offset)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                record("#drbd-write", [str(offset)])
                return
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------------
# the DLM on the wire: dlm_controld talks to the peer over tcp 21064, or over sctp 21064 when totem
# runs redundant rings (cluster STABLE3 group/dlm_controld/action.c). The firewall the harness
# loads into each node's network namespace decides whether that gets through; the DLM itself is
# emulated: a listener per node (started with cman) and a probe at clvmd start.

DLM_PORT = 21064


def _dlm_sctp() -> bool:
    m = re.search(r'<totem[^>]*rrp_mode="([a-z]+)"', (ROOT / "etc/cluster/cluster.conf").read_text())
    return bool(m) and m.group(1) != "none"


def dlm_listener() -> None:
    """Forked at cman start: what reaches this node on tcp/sctp 21064 (a raw socket sees a packet
    only once the INPUT chain let it in) is written to FBH_DIR/dlm/<node>/<token>."""
    import select
    import socket
    import time

    if os.fork() != 0:
        return
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    got = FBH / "dlm" / NODE
    got.mkdir(parents=True, exist_ok=True)
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # the listener of this node before a reboot goes within a second or so (its next look at
    # svc.cman), later on a loaded machine: a deadline, not a count of tries
    end = time.monotonic() + 30
    while True:
        try:
            tcp.bind(("0.0.0.0", DLM_PORT))
            break
        except OSError:
            if time.monotonic() > end:
                os._exit(0)  # (it saw the new svc.cman first and serves on: the same tokens directory)
            time.sleep(0.1)
    tcp.listen(8)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 132)  # IPPROTO_SCTP: no sctp module needed
    while svc_running("cman"):
        ready, _, _ = select.select([tcp, raw], [], [], 1.0)
        for sock in ready:
            if sock is tcp:
                conn, _ = tcp.accept()
                conn.settimeout(2)
                try:
                    token = conn.recv(64).decode(errors="replace").strip()
                except OSError:
                    token = ""
                conn.close()
            else:
                pkt = raw.recv(2048)
                ihl = (pkt[0] & 0x0F) * 4
                if int.from_bytes(pkt[ihl + 2:ihl + 4], "big") != DLM_PORT:
                    continue
                token = pkt[-32:].decode(errors="replace")
            if re.fullmatch(r"[0-9a-f]{32}", token):
                (got / token).touch()
    os._exit(0)


def dlm_reaches_peer() -> str:
    """'' when the peer's DLM hears us on every address the DLM uses, else what it could not reach."""
    import socket
    import time

    peer = peer_name()
    if not svc_running("cman", peer):
        return ""  # the DLM talks to cluster members only
    addrs = [_env_value("AN_PEER_BCN_IP")] + ([_env_value("AN_PEER_SN_IP")] if _dlm_sctp() else [])
    proto = "sctp" if _dlm_sctp() else "tcp"
    missing = []
    for addr in addrs:
        token = os.urandom(16).hex()
        end = time.monotonic() + 3
        while not (FBH / "dlm" / peer / token).exists() and time.monotonic() < end:
            try:  # like the DLM, try again while the peer's side is coming up
                if proto == "tcp":
                    with socket.create_connection((addr, DLM_PORT), timeout=1) as c:
                        c.sendall(token.encode() + b"\n")
                else:
                    # SCTP common header (sport, dport, vtag, checksum) + an INIT chunk, then the token
                    init = bytes([1, 0, 0, 20]) + os.urandom(4) + (65535).to_bytes(4, "big") \
                        + bytes([0, 10, 0, 10]) + os.urandom(4)
                    pkt = DLM_PORT.to_bytes(2, "big") * 2 + bytes(8) + init + token.encode()
                    with socket.socket(socket.AF_INET, socket.SOCK_RAW, 132) as r:
                        r.sendto(pkt, (addr, 0))
            except OSError:
                pass
            time.sleep(0.3)
        if not (FBH / "dlm" / peer / token).exists():
            missing.append(f"{proto} {addr}:{DLM_PORT}")
    return ", ".join(missing)


DISPATCH = {
    "service": cmd_service, "cman_tool": cmd_cman_tool, "clustat": cmd_clustat,
    "drbdmeta": cmd_drbdmeta,
    "pvcreate": cmd_lvm, "vgcreate": cmd_lvm, "lvcreate": cmd_lvm, "pvs": cmd_lvm, "vgs": cmd_lvm, "lvs": cmd_lvm,
    "vgchange": cmd_lvm, "lvchange": cmd_lvm, "mkfs.gfs2": cmd_mkfs_gfs2, "blkid": cmd_probe, "wipefs": cmd_probe, "mount": cmd_mount, "hostname": cmd_hostname,
    "modprobe": cmd_simple, "rpm": cmd_simple, "yum": cmd_simple, "virsh": cmd_simple, "lvmconf": cmd_lvmconf,
    "mdadm": cmd_mdadm, "chkconfig": cmd_chkconfig, "network-bridge": cmd_network_bridge,
    "ccs_config_validate": cmd_ccs_config_validate, "fence_node": cmd_fence_node,
    "fbh-write-drbd": cmd_fbh_write_drbd,
}

if __name__ == "__main__":
    DISPATCH[CMD]()
