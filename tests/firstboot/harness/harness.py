"""Two AN!Cluster nodes side by side, for the firstboot steps, in one test process.

What is real: the firstboot runner and steps (bash), ping between two network namespaces joined by
veth pairs on test addresses (198.18.0.0/15, never the example's), the rendered files from
isobuild.render, drbdadm 8.3 parsing them (in a UTS namespace with the node's hostname), drbdmeta
writing DRBD metadata on each node's backing loop device, blkid/wipefs, LVM on the shared "DRBD" loop
device with a private LVM_SYSTEM_DIR, mkfs.gfs2 -p lock_dlm. What is emulated (fbshim.py): what needs
a kernel module or a cluster daemon (drbdsetup's kernel side, cman_tool, clustat, service, chkconfig,
the lock_dlm mount, device-mapper activation).

Layout of a harness directory H:
  H/build/                render output (nodes/<node>/... = the stage)
  H/nodes/<node>/root/    the node's scratch root (AN_ROOT)
  H/nodes/<node>/lvm/     LVM_SYSTEM_DIR of the node
  H/img/                  loop images: <node>-backing.img (each node's DRBD backing), drbd.img (shared)
  H/run/<node>/           runtime state of a node (services, DRBD roles): removed by reboot()
  H/disks/, H/cluster/, H/gfs2/   state that survives reboots (DRBD disk states, cman config, GFS2 data)
  H/drbd.sync             the DRBD resync in progress (survives reboots, as the bitmap does)
  H/calls.log             every shim call, "node<TAB>command<TAB>args"
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import loops

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
OVERLAY = REPO / "overlay" / "firstboot"
FIXTURE_ROOT = REPO / "tests" / "firstboot" / "fixtures" / "root"
PY_SHIMS = ("service", "cman_tool", "clustat", "drbdmeta", "pvcreate", "vgcreate", "lvcreate", "pvs",
            "vgs", "lvs", "vgchange", "lvchange", "blkid", "wipefs", "mkfs.gfs2", "mount", "hostname", "modprobe", "rpm", "yum", "lvmconf",
            "mdadm", "chkconfig", "network-bridge", "ccs_config_validate", "fence_node",
            "fbh-write-drbd")
SH_SHIMS = ("drbdsetup", "drbdadm")
VM_SHIMS = ("virt-install", "virsh", "xm", "clusvcadm")  # vmshim.py (imports fbshim.py beside it)


def install_shims(shimbin: Path) -> None:
    """All shims into one directory that goes first in the nodes' PATH."""
    shimbin.mkdir(parents=True, exist_ok=True)
    # the interpreter running the tests, without site-packages: shims start fast (hundreds of calls)
    code = (HERE / "fbshim.py").read_text().split("\n", 1)[1]
    (shimbin / "fbshim.py").write_text(f"#!{sys.executable} -S\n{code}")
    (shimbin / "fbshim.py").chmod(0o755)
    for name in PY_SHIMS:
        (shimbin / name).symlink_to("fbshim.py")
    # lib/rendezvous runs with the node's python (2.6 on Fedora 13); here the interpreter of the tests
    (shimbin / "python").symlink_to(sys.executable)
    _install_vm_shims(shimbin)
    for name in (*SH_SHIMS, "shim-lib.sh"):
        shutil.copy(HERE / name, shimbin / name)


def cman_schema() -> Path:
    """cluster 3.0.12's cluster.rng (the cman Fedora 13 installs) once vendored in schemas/; until
    then the only schema the repository has."""
    vendored = REPO / "schemas" / "cluster-3.0.12.rng"
    return vendored if vendored.exists() else REPO / "schemas" / "cluster.rng"


def _install_vm_shims(shimbin: Path) -> None:
    code = (HERE / "vmshim.py").read_text().split("\n", 1)[1]
    (shimbin / "vmshim.py").write_text(f"#!{sys.executable} -S\n{code}")
    (shimbin / "vmshim.py").chmod(0o755)
    shutil.copy(REPO / "isobuild" / "f13virt.py", shimbin / "f13virt.py")
    for name in VM_SHIMS:
        (shimbin / name).symlink_to("vmshim.py")


def write_node_info(hdir: Path, node: str, peer: str, root: Path, drbd_device: str, drbd_loop: str,
                    fqdn: str = "", netns: str = "", sn_if: str = "") -> None:
    """What the bash shims need to know about a node (sourced). NETNS/SN_IF: where the drbdsetup
    stand-in looks whether the storage link still carries DRBD's connection."""
    import shlex

    d = hdir / "nodes" / node
    d.mkdir(parents=True, exist_ok=True)
    (d / "info.sh").write_text("".join(f"{k}={shlex.quote(str(v))}\n" for k, v in (
        ("PEER", peer), ("ROOT", root), ("DRBD_DEVICE", drbd_device), ("DRBD_LOOP", drbd_loop), ("FQDN", fqdn),
        ("NETNS", netns), ("SN_IF", sn_if))))
# cluster.conf's seconds (post_join_delay) in test time
TIME_SCALE = 0.2
# Test networks (RFC 2544 benchmarking range): bcn, sn, ifn.
TEST_NETS = {"bcn": "198.18.1", "sn": "198.18.2", "ifn": "198.18.3"}
DESTRUCTIVE = {
    "create-md": lambda cmd, args: cmd == "drbdmeta" and "create-md" in args,
    "overwrite-data-of-peer": lambda cmd, args: cmd == "drbdadm" and "--overwrite-data-of-peer" in args,
    "pvcreate": lambda cmd, args: cmd == "pvcreate",
    "vgcreate": lambda cmd, args: cmd == "vgcreate",
    "lvcreate": lambda cmd, args: cmd == "lvcreate",
    "mkfs.gfs2": lambda cmd, args: cmd == "mkfs.gfs2",
}


def sh(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, **kw)


def make_definition(src_yaml: Path, dst_dir: Path, managed_by: str | None = "init") -> Path:
    """A cluster definition moved onto test addresses (198.18.0.0/15, inside the test's network
    namespaces) and sizes that fit loop devices; everything else as the source says.
    managed_by=None keeps the source's storage mode. Secret files are copied beside it."""
    from ruamel.yaml import YAML

    yaml = YAML()
    data = yaml.load(src_yaml.read_text())
    for net, prefix in TEST_NETS.items():
        nw = data["networks"][net]
        nw["subnet"] = f"{prefix}.0/24"
        if "gateway" in nw:
            nw["gateway"] = f"{prefix}.1"
        if "dns" in nw:
            nw["dns"] = [f"{prefix}.1"]
    for i, node in enumerate(sorted(data["nodes"], key=lambda n: n["nodeid"])):
        for net, prefix in TEST_NETS.items():
            node["ip"][net] = f"{prefix}.{71 + i}"
    for i, dev in enumerate(data["fence_devices"]):
        if re.match(r"^[0-9.]+$", str(dev["ipaddr"])):
            dev["ipaddr"] = f"{TEST_NETS['bcn']}.{201 + i}"
    storage = data["storage"]
    storage["gfs2"]["size"] = "96M"
    if "size" in storage:
        storage["size"] = "1G"
    for vm in data.get("vms") or []:
        vm["disk"] = "16M"
        if isinstance(vm.get("install"), dict) and vm["install"].pop("kickstart", None):
            vm["install"].pop("kickstart_url", None)  # a guest kickstart's layout needs GBs, not 16M
    if managed_by is not None:
        storage["managed_by"] = managed_by
    dst_dir.mkdir(parents=True, exist_ok=True)
    out = dst_dir / src_yaml.name
    with open(out, "w") as fh:
        yaml.dump(data, fh)
    # the *_file keys are relative to the definition: copy the files they name
    for key_holder, key in [(data["install"], "root_password_hash_file"), (data["install"], "ssh_authorized_keys_file"),
                            *[(d, "password_file") for d in data["fence_devices"]]]:
        rel = key_holder.get(key)
        if rel:
            (dst_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src_yaml.parent / rel, dst_dir / rel)
            if (src_yaml.parent / rel).parent.joinpath("DEMO").exists():
                shutil.copy((src_yaml.parent / rel).parent / "DEMO", (dst_dir / rel).parent / "DEMO")
    return out


@dataclass
class Node:
    name: str
    nodeid: int
    fqdn: str
    ips: dict[str, str]
    root: Path
    netns: str
    proc: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)


def drbd_init_start() -> list[list[str]]:
    """What `/etc/init.d/drbd start` runs (LINBIT/drbd-8.3 drbd-8.3.7 scripts/drbd): adjust_with_progress
    (each command of `drbdadm -d adjust all`, going on past a failed one: a missing metadata leaves the
    resource Diskless and connecting), then `drbdadm sh-b-pri all` (become-primary-on, five tries).
    wait-con-int is left out: the harness boots one node at a time."""
    adjust = 'IFS=\'\n\'; for c in $(drbdadm -d adjust all); do sh -c "$c" || echo "cmd $c failed - continuing!"; done'
    return [["sh", "-c", adjust], ["drbdadm", "sh-b-pri", "all"]]


class TeardownError(RuntimeError):
    """Pair.cleanup() could not undo something the pair set up (a loop device stays attached)."""


class Pair:
    """Two nodes, their scratch roots, networks and disks. Use as a context manager (cleans up)."""

    def __init__(self, hdir: Path, definition: Path, timeout: int = 40, raid_partitions: bool = False):
        from isobuild.loader import load_definition
        from isobuild.render import render

        self.h = hdir
        self.cluster = load_definition(definition)
        self.rendered = render(self.cluster, hdir / "build")
        self.timeout = timeout
        # raid_partitions: no backing md yet, but each disk's partitions (in /sys/block and /dev of the
        # scratch root), so 60-drbd has to pick the unused ones and create the RAID1 itself
        self.raid_partitions = raid_partitions
        self.tag = f"fb{os.getpid() % 100000}"
        self.nodes: dict[str, Node] = {}
        self.netns: list[str] = []
        self.writers: list[subprocess.Popen] = []
        for i, n in enumerate(sorted(self.cluster.nodes, key=lambda n: n.nodeid)):
            self.nodes[n.name] = Node(n.name, n.nodeid, n.fqdn, {k: str(v) for k, v in n.ip.items()},
                                      hdir / "nodes" / n.name / "root", f"{self.tag}-n{i + 1}")
        self.lowest = self.cluster.lowest_node.name
        self.other = next(n for n in self.nodes if n != self.lowest)

    # ---------------------------------------------------------------------------------------- setup
    def __enter__(self) -> "Pair":
        try:
            self._setup()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def _loop(self, image: Path, size_mib: int) -> str:
        with open(image, "wb") as fh:
            fh.truncate(size_mib * 1024 * 1024)
        return sh("losetup", "-f", "--show", str(image)).stdout.strip()  # cleanup() finds it by its file

    def _setup(self) -> None:
        h = self.h
        (h / "img").mkdir(parents=True, exist_ok=True)
        shimbin = h / "shimbin"
        install_shims(shimbin)
        storage = self.cluster.storage
        need_mib = storage.gfs2.size_mib + sum(v.disk_mib for v in self.cluster.vms) + 16
        self.drbd_loop = self._loop(h / "img" / "drbd.img", max(need_mib, 64))
        info = {}
        for node in self.nodes.values():
            shutil.copytree(FIXTURE_ROOT, node.root, symlinks=True)
            (node.root / "tmp").mkdir(mode=0o1777)
            stage = node.root / "var/lib/an-cluster/stage"
            shutil.copytree(self.rendered.nodes_dir / node.name, stage)
            # what cman installs as /usr/share/cluster/cluster.rng: the 3.0.12 schema (F13's cman)
            (node.root / "usr/share/cluster").mkdir(parents=True, exist_ok=True)
            shutil.copy(cman_schema(), node.root / "usr/share/cluster/cluster.rng")
            # what the kickstart %post installed (before xend ever started)
            for rel, mode in (("etc/xen/xend-config.sxp", 0o644), ("etc/xen/scripts/an-network-script", 0o755)):
                shutil.copy(stage / rel, node.root / rel)
                (node.root / rel).chmod(mode)
            # what the RPM installs
            shutil.copy(OVERLAY / "init.d" / "an-cluster-firstboot", node.root / "etc/rc.d/init.d/an-cluster-firstboot")
            # the DRBD fence-peer handler r0.res names (the RPM's %{_sbindir}); drbdadm runs it from there
            (node.root / "usr/sbin").mkdir(parents=True, exist_ok=True)
            shutil.copy(OVERLAY / "an-drbd-fence-peer", node.root / "usr/sbin/an-drbd-fence-peer")
            if self.raid_partitions:
                self._partitions(node)
            else:
                backing = self._loop(h / "img" / f"{node.name}-backing.img", 64)
                dev = node.root / storage.backing_device.lstrip("/")
                dev.parent.mkdir(parents=True, exist_ok=True)
                dev.symlink_to(backing)
                node.backing_loop = backing  # type: ignore[attr-defined]
            lvm = h / "nodes" / node.name / "lvm"
            lvm.mkdir(parents=True)
            (lvm / "lvm.conf").write_text(
                "devices {\n"
                f'    filter = [ "a|^{self.drbd_loop}$|", "r|.*|" ]\n'
                "    obtain_device_list_from_udev = 0\n    use_devicesfile = 0\n}\n"
                "global {\n    activation = 0\n}\n"
                "activation {\n    udev_sync = 0\n    udev_rules = 0\n}\n")
            info[node.name] = {"root": str(node.root), "fqdn": node.fqdn, "nodeid": node.nodeid,
                               "cluster": self.cluster.name, "drbd_device": storage.drbd.device,
                               "drbd_loop": self.drbd_loop}
        (h / "nodes.json").write_text(json.dumps(info))
        for name, node in self.nodes.items():
            peer = next(n for n in self.nodes if n != name)
            write_node_info(h, name, peer, node.root, storage.drbd.device, self.drbd_loop, node.fqdn,
                            node.netns, self.cluster.networks["sn"].interface)
        self._network()
        self.firewall()
        for node in self.nodes.values():
            node.env = {
                "PATH": f"{shimbin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": str(node.root / "root"),
                "TMPDIR": str(node.root / "tmp"),  # the node's own /tmp (a power cut leaves files there)
                "LANG": "C",
                "AN_ROOT": str(node.root),
                "AN_FIRSTBOOT_LIBEXEC": str(OVERLAY),
                "AN_FIRSTBOOT_TIMEOUT": str(self.timeout),
                "AN_FIRSTBOOT_POLL": "0.2",
                "AN_FIRSTBOOT_SYNC_TIMEOUT": str(self.timeout),
                "AN_VGCREATE_OPTS": "",  # LVM 2.03 here has no clvmd/clustered VGs
                "LVM_SYSTEM_DIR": str(h / "nodes" / node.name / "lvm"),
                "LVM_SUPPRESS_FD_WARNINGS": "1",
                "FBH_DIR": str(h),
                "FBH_NODE": node.name,
                "FBH_TIME_SCALE": str(TIME_SCALE),
            }

    def _partitions(self, node: Node) -> None:
        """Per disk: partition 3 (in use: ext4), 4 (extended: tiny), 5 (the unused backing space).
        Partition sizes are in 512-byte sectors, as in /sys/block/<disk>/<part>/size."""
        node.parts = {}  # type: ignore[attr-defined]
        for disk in self.cluster.install.disks:
            for num, mib, fs in ((3, 32, "ext4"), (4, 0, None), (5, 48, None)):
                part = f"{disk}{num}"
                sysd = node.root / "sys/block" / disk / part
                sysd.mkdir(parents=True)
                (sysd / "size").write_text(f"{max(mib * 2048, 2)}\n")
                if not mib:
                    continue
                loop = self._loop(self.h / "img" / f"{node.name}-{part}.img", mib)
                if fs:
                    sh(f"mkfs.{fs}", "-q", "-F", loop)
                (node.root / "dev").mkdir(exist_ok=True)
                (node.root / "dev" / part).symlink_to(loop)
                node.parts[part] = loop  # type: ignore[attr-defined]

    def _network(self) -> None:
        """One netns per node; a veth pair per network, named like the node's NICs (eth0/eth1/eth2)."""
        a, b = list(self.nodes.values())
        for node in (a, b):
            sh("ip", "netns", "add", node.netns)
            self.netns.append(node.netns)
            sh("ip", "-n", node.netns, "link", "set", "lo", "up")
        for net, nw in self.cluster.networks.items():
            tmp_a, tmp_b = f"{self.tag}{net}a", f"{self.tag}{net}b"
            sh("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
            sh("ip", "link", "set", tmp_a, "netns", a.netns)
            sh("ip", "link", "set", tmp_b, "netns", b.netns)
            for node, tmp in ((a, tmp_a), (b, tmp_b)):
                sh("ip", "-n", node.netns, "link", "set", tmp, "name", nw.interface)
                sh("ip", "-n", node.netns, "addr", "add", f"{node.ips[net]}/{nw.subnet.prefixlen}", "dev", nw.interface)
                sh("ip", "-n", node.netns, "link", "set", nw.interface, "up")

    def firewall(self) -> None:
        """The rendered firewall in force in each node's namespace (firewall: cluster)."""
        for node in self.nodes.values():
            rules = node.root / "var/lib/an-cluster/stage/etc/sysconfig/iptables"
            if rules.is_file():
                with open(rules) as fh:
                    subprocess.run(["ip", "netns", "exec", node.netns, "iptables-restore"], stdin=fh, check=True,
                                   capture_output=True)

    def cleanup(self) -> None:
        """Stop the nodes, detach every loop device of the pair (those on its images, and the LV and md
        loops fbshim stacked on them), remove the namespaces. Raises TeardownError naming each loop
        device that stays attached (after everything else is cleaned up)."""
        procs = [n.proc for n in self.nodes.values() if n.proc is not None] + self.writers
        for proc in procs:  # each its own session: the whole group, as a power cut would
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        left = loops.detach_owned(self.h)
        for ns in self.netns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(self.h / "run", ignore_errors=True)  # daemons a boot() started see their node down
        self.netns, self.writers = [], []
        if left:
            raise TeardownError(f"{self.h}: loop devices not detached:\n  " + "\n  ".join(left))

    # ------------------------------------------------------------------------------------ running
    def start(self, name: str, kill: str | None = None, stop_after: str | None = None, cmd: str = "run") -> None:
        node = self.nodes[name]
        env = dict(node.env)
        if kill:
            env["FBH_KILL"] = kill
        if stop_after:
            env["AN_FIRSTBOOT_STOP_AFTER"] = stop_after
        log = open(self.h / f"{name}.console", "a")
        node.proc = subprocess.Popen(
            ["ip", "netns", "exec", node.netns, str(OVERLAY / "an-cluster-firstboot"), cmd],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        # the process group a fence (fbshim.fence) power-cycles
        (self.h / "nodes" / name / "pgid").write_text(f"{node.proc.pid}\n")

    def wait(self, name: str, timeout: float = 120) -> int:
        proc = self.nodes[name].proc
        assert proc is not None
        return proc.wait(timeout=timeout)

    def reboot(self, name: str) -> None:
        """A power cycle: processes, services, DRBD runtime state, mounts and device nodes are gone;
        disks (loop images, DRBD metadata, LVM, GFS2) and files in the scratch root stay."""
        node = self.nodes[name]
        if node.proc is not None and node.proc.poll() is None:
            os.killpg(node.proc.pid, signal.SIGKILL)
            node.proc.wait()
        shutil.rmtree(self.h / "run" / name, ignore_errors=True)
        (self.h / "killed" / name).unlink(missing_ok=True)
        (node.root / "proc/mounts").write_text("")
        drbd = node.root / self.cluster.storage.drbd.device.lstrip("/")
        if drbd.is_symlink():
            drbd.unlink()
        vgdir = node.root / "dev" / self.cluster.storage.clvm.vg
        shutil.rmtree(vgdir, ignore_errors=True)
        mnt = node.root / self.cluster.storage.gfs2.mount.lstrip("/")
        if mnt.is_symlink():
            mnt.unlink()
            mnt.mkdir()

    def boot(self, name: str) -> list[str]:
        """What Fedora 13's rc3.d does before firstboot (S98) runs: start the services whose start
        links exist, in S-number order, as their init scripts would (cman; drbd: up, then primary when
        the disk is UpToDate, like become-primary-on; clvmd + VG activation; gfs2: mount from fstab).
        Failures are ignored, as at boot. Returns what was started."""
        node = self.nodes[name]
        st = self.cluster.storage
        rc3 = node.root / "etc/rc.d/rc3.d"
        links = sorted(p.name for p in rc3.iterdir() if p.name.startswith("S")) if rc3.is_dir() else []
        actions = {
            "xend": [["service", "xend", "start"]],
            "cman": [["service", "cman", "start"]],
            "drbd": drbd_init_start(),
            "clvmd": [["service", "clvmd", "start"], ["vgchange", "-a", "y", st.clvm.vg]],
            "gfs2": [["service", "gfs2", "start"]],
        }
        started = []
        for link in links:
            svc = re.sub(r"^S\d\d", "", link)
            for argv in actions.get(svc, []):
                subprocess.run(["ip", "netns", "exec", node.netns, *argv], env=node.env, capture_output=True)
            if svc in actions:
                started.append(svc)
        return started

    def cut_link(self, name: str, net: str) -> None:
        """Take node NAME's NIC of network NET down (its veth peer loses carrier): that network fails
        between the two nodes, nothing else does. Recorded in calls.log as "#link-down"."""
        iface = self.cluster.networks[net].interface
        sh("ip", "-n", self.nodes[name].netns, "link", "set", iface, "down")
        with open(self.h / "calls.log", "a") as fh:
            fh.write(f"{name}\t#link-down\t{net}\x1f{iface}\n")

    def write_drbd(self, name: str, offset: int, data: bytes) -> subprocess.Popen:
        """Start a writer on node NAME: DATA at byte OFFSET of its DRBD device, through the 8.3.7 block
        path (fbshim.cmd_fbh_write_drbd). It is that node's process group now: a fence kills it."""
        node = self.nodes[name]
        proc = subprocess.Popen(["ip", "netns", "exec", node.netns, str(self.h / "shimbin" / "fbh-write-drbd"),
                                 str(offset), data.hex()], env=node.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        (self.h / "nodes" / name / "pgid").write_text(f"{proc.pid}\n")
        self.writers.append(proc)  # it holds the DRBD loop open: cleanup() ends it before detaching
        return proc

    def wait_log(self, name: str, text: str, timeout: float = 180) -> None:
        """Until the node's firstboot log contains text (e.g. that it is waiting for its peer). The
        timeout is a hang guard: a bring-up to step 90 took some 40 s here under load, so not 60 s."""
        end = time.monotonic() + timeout
        while text not in self.log(name):
            if time.monotonic() > end:
                raise AssertionError(f"{name} never logged {text!r}:\n{self.log(name)[-3000:]}")
            time.sleep(0.1)

    def gate(self, name: str, service: str, closed: bool = True) -> None:
        """Hold (closed) or release `service SERVICE start` on node NAME (see fbshim.wait_gate)."""
        self._gate(f"{name}.{service}", closed)

    def hold_drbd(self, phase: str, held: bool = True) -> None:
        """Hold (held) or release the end of a phase of the emulated initial DRBD sync (see
        harness/drbdsetup): "handshake" (WFBitMapS/T, every role change refused) or "sync" (the
        SyncTarget stays Inconsistent), however long FBH_DRBD_SYNC_START_MS / _SYNC_MS have run."""
        assert phase in ("handshake", "sync"), phase
        self._gate(f"drbd.{phase}", held)

    def _gate(self, file: str, closed: bool) -> None:
        g = self.h / "gate" / file
        g.parent.mkdir(parents=True, exist_ok=True)
        if closed:
            g.touch()
        else:
            g.unlink(missing_ok=True)

    def all_done(self, name: str) -> bool:
        return (self.nodes[name].root / "var/lib/an-cluster/firstboot/all.done").is_file()

    def run_both(self, kill: dict[str, str] | None = None, stop_after: dict[str, str] | None = None,
                 max_rounds: int = 6, deadline_s: float = 240) -> list[str]:
        """Start both nodes (with an optional power cut / stop on one); every node that ends without
        finishing is rebooted and started again, until both are done. Returns a journal of events."""
        kill, stop_after = kill or {}, stop_after or {}
        journal: list[str] = []
        self.journal = journal
        for name in self.nodes:
            self.start(name, kill=kill.get(name), stop_after=stop_after.get(name))
        rounds = {name: 1 for name in self.nodes}
        end = time.monotonic() + deadline_s
        while True:
            running = False
            for name, node in self.nodes.items():
                rc = node.proc.poll() if node.proc else 0
                if rc is None:
                    running = True
                    continue
                if self.all_done(name):
                    continue
                journal.append(f"{name}: run {rounds[name]} ended rc={rc}")
                fenced = self.h / "fenced" / name
                if fenced.exists():
                    journal.append(f"{name}: fenced {fenced.read_text().strip()}")
                    fenced.unlink()
                if rounds[name] >= max_rounds:
                    raise AssertionError(f"{name} did not finish in {max_rounds} runs:\n" + self.console(name))
                self.reboot(name)
                booted = self.boot(name)
                journal.append(f"{name}: booted, init started {' '.join(booted) or 'nothing'}")
                rounds[name] += 1
                self.start(name)
                running = True
            if not running:
                return journal
            if time.monotonic() > end:
                raise AssertionError("the pair did not finish in time:\n" + "\n".join(
                    f"--- {n}\n{self.console(n)}" for n in self.nodes))
            time.sleep(0.1)

    # ------------------------------------------------------------------------------------ inspection
    def console(self, name: str) -> str:
        p = self.h / f"{name}.console"
        return p.read_text()[-6000:] if p.exists() else ""

    def log(self, name: str) -> str:
        p = self.nodes[name].root / "var/log/an-cluster-firstboot.log"
        return p.read_text() if p.exists() else ""

    def calls(self) -> list[tuple[str, str, list[str]]]:
        """Every shim call: (node, command, arguments); power cuts appear as command "#power-cut"."""
        p = self.h / "calls.log"
        out = []
        for line in (p.read_text().splitlines() if p.exists() else []):
            node, cmd, args = line.split("\t", 2)
            out.append((node, cmd, args.split("\x1f") if args else []))
        return out

    def fenced(self) -> list[tuple[str, list[str]]]:
        """Fencing the emulated fenced did: [(fencing node, [victim, why])]."""
        return [(n, args) for n, cmd, args in self.calls() if cmd == "#fenced"]

    def destructive(self) -> dict[str, list[tuple[str, list[str]]]]:
        """Executed destructive commands by kind: [(node, args)]."""
        out: dict[str, list[tuple[str, list[str]]]] = {k: [] for k in DESTRUCTIVE}
        for node, cmd, args in self.calls():
            for kind, match in DESTRUCTIVE.items():
                if match(cmd, args):
                    out[kind].append((node, args))
        return out

    def status(self, name: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(OVERLAY / "an-cluster-firstboot"), "status"], env=self.nodes[name].env,
                              capture_output=True, text=True)
