"""Two nodes side by side (harness/harness.py): the full bring-up, power cuts at every step boundary
and inside every destructive step, and refusal to touch existing data.

Needs root (loop devices, network namespaces, LVM); CI runs as root.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

OVERLAY = REPO / "overlay" / "firstboot"
STEPS = sorted(p.stem for p in OVERLAY.glob("steps/[0-9][0-9]-*.sh"))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def blkid(dev: Path, tag: str) -> str:
    return subprocess.run(["blkid", "-p", "-o", "value", "-s", tag, str(dev)], capture_output=True,
                          text=True).stdout.strip()


def story(p) -> str:
    """What happened, for an assertion message: the pair's journal, the power cut, each node's log."""
    cut = [c for c in p.calls() if c[1] == "#power-cut"]
    return (f"\njournal: {getattr(p, 'journal', None)}\npower cut: {cut}\n"
            + "".join(f"--- {n} log (tail)\n{p.log(n)[-4000:]}\n" for n in p.nodes))


def assert_destructive_once(p, redone: tuple[str, str] | None = None) -> None:
    """No destructive command twice, none of the one-node-only ones on both nodes. redone=(kind, node):
    a power cut inside that command left its device half written, so it ran once more there."""
    d = p.destructive()
    again = [redone[1]] if redone and redone[0] == "create-md" else []
    assert sorted(n for n, _ in d["create-md"]) == sorted([*p.nodes, *again]), f"{d['create-md']}{story(p)}"
    for kind in ("overwrite-data-of-peer", "pvcreate", "vgcreate", "mkfs.gfs2"):
        want = [p.lowest, p.lowest] if redone and redone[0] == kind else [p.lowest]
        assert [n for n, _ in d[kind]] == want, f"{kind}: {d[kind]}{story(p)}"
    lvs = [args[args.index("-n") + 1] for _, args in d["lvcreate"]]
    wanted = [p.cluster.storage.gfs2.lv] + [vm.name for vm in p.cluster.vms]
    assert sorted(lvs) == sorted(wanted), d["lvcreate"]
    assert {n for n, _ in d["lvcreate"]} == {p.lowest}


def drbdadm(p, name: str, *args: str) -> subprocess.CompletedProcess:
    """drbdadm (the real drbdadm-83 on the harness's kernel stand-in) as the node runs it."""
    node = p.nodes[name]
    return subprocess.run(["ip", "netns", "exec", node.netns, "drbdadm", *args], env=node.env,
                          capture_output=True, text=True)


def assert_cluster_up(p, redone: tuple[str, str] | None = None) -> None:
    c = p.cluster
    s = c.storage
    for name, node in p.nodes.items():
        st = p.status(name)
        assert st.returncode == 0, st.stdout
        assert all(re.search(rf"^{step}\s+done", st.stdout, re.M) for step in STEPS), st.stdout
        root = node.root
        # the service disabled itself
        assert list((root / "etc/rc.d/rc3.d").glob("K??an-cluster-firstboot"))
        assert not list((root / "etc/rc.d/rc3.d").glob("S??an-cluster-firstboot"))
        # GFS2 by UUID in fstab, mounted, domU_config on the shared filesystem
        lv = root / "dev" / s.clvm.vg / s.gfs2.lv
        assert blkid(lv, "TYPE") == "gfs2" and blkid(lv, "LABEL") == c.lock_table
        fsck = subprocess.run(["fsck.gfs2", "-n", str(lv)], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stdout[-2000:] + story(p)
        # DRBD: both Primary, connected; the VMs (rgmanager) started on an UpToDate disk only
        assert drbdadm(p, name, "role", s.drbd.resource).stdout.strip() == "Primary/Primary"
        fstab = [ln for ln in (root / "etc/fstab").read_text().splitlines() if f" {s.gfs2.mount} " in ln]
        assert fstab == [f"UUID={blkid(lv, 'UUID').lower()} {s.gfs2.mount} gfs2 rw,suid,dev,exec,nouser,async,noatime,nodiratime 0 0"]
        assert (root / s.gfs2.mount.lstrip("/") / "domU_config").is_dir()
        # cluster.conf with <rm>, one version above the definition's, 0640
        conf = root / "etc/cluster/cluster.conf"
        assert oct(conf.stat().st_mode & 0o777) == "0o640"
        text = conf.read_text()
        assert f'config_version="{c.config_version + 1}"' in text and "<rm" in text
        for vm in c.vms:
            assert f'<vm name="{vm.name}"' in text
        # ssh: each node trusts the other's key
        peer = p.nodes[next(n for n in p.nodes if n != name)]
        assert (peer.root / "root/.ssh/id_rsa.pub").read_text().strip() in (root / "root/.ssh/authorized_keys").read_text()
        host_key = " ".join((peer.root / "etc/ssh/ssh_host_rsa_key.pub").read_text().split()[:2])
        known = (root / "root/.ssh/known_hosts").read_text().splitlines()
        assert [k for k in known if k.startswith(f"{peer.name},{peer.fqdn},")] == [
            f"{peer.name},{peer.fqdn},{peer.ips['bcn']},{peer.ips['sn']} {host_key}"]
        assert "StrictHostKeyChecking yes" in (root / "root/.ssh/config").read_text()
        assert (root / "etc/sysconfig/network-scripts/ifcfg-eth1").is_file()
    vm_starts = [(n, a) for n, cmd, a in p.calls() if cmd == "#vm-start"]
    assert vm_starts and all(a[0].startswith("UpToDate/") for _, a in vm_starts), f"{vm_starts}{story(p)}"
    assert_destructive_once(p, redone)


def assert_xend_up_before_cman(p) -> None:
    """On each node xend started (with our files: what its network script built the bridges from)
    before the first cman start, and nothing restarted the network under its bridges."""
    import json

    calls = p.calls()
    for name in p.nodes:
        mine = [(cmd, args[:2]) for n, cmd, args in calls if n == name]
        assert mine.index(("service", ["xend", "start"])) < mine.index(("service", ["cman", "start"])), story(p)
        st = json.loads((p.h / "run" / name / "xend.json").read_text())
        stage = p.nodes[name].root / "var/lib/an-cluster/stage"
        assert st["config_sha256"] == sha256(stage / "etc/xen/xend-config.sxp")
        assert st["script_sha256"] == sha256(stage / "etc/xen/scripts/an-network-script")
    assert not [c for c in calls if c[1] in ("#broken", "#fenced")], story(p)


def test_full_two_node_bring_up(make_pair):
    p = make_pair("init")
    journal = p.run_both(max_rounds=1)
    assert journal == []
    assert_cluster_up(p)
    assert_xend_up_before_cman(p)
    calls = p.calls()
    # the real drbdadm 8.3 parsed the rendered config on both nodes
    assert {n for n, cmd, args in calls if cmd == "drbdadm" and args[:1] == ["dump"]} == set(p.nodes)
    # init mode: drbd, clvmd and gfs2 start from init, after cman
    rc3 = sorted(x.name for x in (p.nodes[p.lowest].root / "etc/rc.d/rc3.d").iterdir() if x.name.startswith("S"))
    cluster_svcs = ["xend", "cman", "drbd", "clvmd", "gfs2", "rgmanager"]
    assert [n for n in (re.sub(r"^S\d\d", "", x) for x in rc3) if n in cluster_svcs] == cluster_svcs
    # a rerun after completion is a no-op: no step runs again
    before = len(p.calls())
    p.start(p.lowest)
    assert p.wait(p.lowest) == 0
    assert [c for c in p.calls()[before:] if c[1] not in ("chkconfig",)] == []
    # an operator resets the storage steps on the lowest node and runs again: they check the disks,
    # find what they made, and issue no destructive command
    for step in ("60-drbd", "70-clvm", "80-gfs2"):
        r = subprocess.run([str(OVERLAY / "an-cluster-firstboot"), "reset", step], env=p.nodes[p.lowest].env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    p.start(p.lowest)
    assert p.wait(p.lowest) == 0, p.console(p.lowest)
    assert_cluster_up(p)
    # no secret in anything the run wrote or printed
    secrets = [d.password.reveal().strip() for d in p.cluster.fence_devices]
    for name in p.nodes:
        for text in (p.log(name), p.console(name), (p.h / "calls.log").read_text()):
            assert not [x for x in secrets if x in text]


def test_rgmanager_mode_leaves_storage_to_rgmanager(make_pair):
    p = make_pair("rgmanager")
    p.run_both(max_rounds=1)
    assert_cluster_up(p)
    rc3 = p.nodes[p.lowest].root / "etc/rc.d/rc3.d"
    for svc in ("drbd", "clvmd", "gfs2", "xendomains"):
        assert not list(rc3.glob(f"S??{svc}")) and list(rc3.glob(f"K??{svc}")), svc
    assert list(rc3.glob("S??rgmanager"))
    assert "storage_an-node01" in (p.nodes[p.lowest].root / "etc/cluster/cluster.conf").read_text()


def test_another_cluster_definition(make_pair, tmp_path):
    """The IPMI example: other names, NIC order, one disk (no RAID), resource 'shared' on /dev/drbd1,
    its own VG/LV names, two VMs, storage run by rgmanager. Nothing in the scripts is the seed's."""
    from harness import make_definition

    p = make_pair(definition=make_definition(REPO / "examples" / "ipmi-cluster.yaml", tmp_path / "ipmi", None))
    assert p.cluster.storage.managed_by == "rgmanager" and not p.cluster.install.raid
    p.run_both(max_rounds=1)
    assert_cluster_up(p)
    d = p.destructive()
    assert [a[-1] for _, a in d["vgcreate"]] == [p.drbd_loop]
    assert sorted(a[a.index("-n") + 1] for _, a in d["lvcreate"]) == sorted(
        [p.cluster.storage.gfs2.lv] + [vm.name for vm in p.cluster.vms])


def test_a_shipped_domu_config_lands_on_the_shared_filesystem(make_pair, tmp_path):
    """vms[].config_file: rendered into the stage, put on the GFS2 mount by 80-gfs2 (issue 16.11)."""
    from harness import make_definition

    d = make_definition(REPO / "cluster.yaml", tmp_path / "domu")
    cfg = 'name = "vm0001_ws1"\nmemory = 1024\nvcpus = 1\n'
    (d.parent / "vm0001_ws1.cfg").write_text(cfg)
    d.write_text(d.read_text().replace("  migrate: live\n", "  migrate: live\n  config_file: vm0001_ws1.cfg\n", 1))
    p = make_pair(definition=d)
    assert p.cluster.vms[0].autostart
    p.run_both(max_rounds=1)
    assert_cluster_up(p)
    mount = p.cluster.storage.gfs2.mount.lstrip("/")
    for node in p.nodes.values():
        assert (node.root / mount / "domU_config" / "vm0001_ws1").read_text() == cfg
        assert 'autostart="1"' in (node.root / "etc/cluster/cluster.conf").read_text()


@pytest.mark.parametrize("index", range(len(STEPS) - 1), ids=lambda i: f"after-{STEPS[i]}")
def test_power_cut_at_every_step_boundary(make_pair, index):
    p = make_pair("init")
    victim = p.lowest if index % 2 == 0 else p.other
    journal = p.run_both(stop_after={victim: STEPS[index]})
    assert journal[0] == f"{victim}: run 1 ended rc=0" and len(journal) == 2, story(p)
    # after the cut, init started what the finished steps had enabled (then firstboot resumed)
    if STEPS[index] >= "50-cman":
        assert "cman" in journal[1], journal
    assert_cluster_up(p)
    # the victim resumed at the next step: nothing before the cut ran twice
    log = p.log(victim)
    for step in STEPS:
        assert log.count(f"=== step {step}: starting") == 1, step


# Power cuts inside the destructive steps: right before and right after the command itself.
MID_STEP = [
    ("before", "create-md", "lowest"), ("after", "create-md", "other"),
    ("before", "--overwrite-data-of-peer", "lowest"), ("after", "--overwrite-data-of-peer", "lowest"),
    ("before", "pvcreate", "lowest"), ("after", "pvcreate", "lowest"),
    ("before", "vgcreate", "lowest"), ("after", "vgcreate", "lowest"),
    ("before", "lvcreate", "lowest"), ("after", "-n vm0001_ws1", "lowest"),
    ("before", "mkfs.gfs2", "lowest"), ("after", "mkfs.gfs2", "lowest"), ("after", "--addtag", "lowest"),
    # in the middle: the device half written (drbdmeta: no superblock yet; mkfs.gfs2: only the superblock)
    ("during", "create-md", "lowest"), ("during", "create-md", "other"), ("during", "mkfs.gfs2", "lowest"),
]
# Cuts after which the command runs once more on the same device: it was half written, or (mkfs.gfs2
# returned but its completion tag is not set yet) nothing says it finished; the LV holds nothing else.
REDONE = {("during", "create-md"), ("during", "mkfs.gfs2"), ("after", "mkfs.gfs2")}


@pytest.mark.parametrize("when,pattern,who", MID_STEP, ids=lambda v: str(v).strip("-"))
def test_power_cut_inside_destructive_steps(make_pair, when, pattern, who):
    p = make_pair("init")
    victim = p.lowest if who == "lowest" else p.other
    journal = p.run_both(kill={victim: f"{when}:{pattern}"})
    cut = [c for c in p.calls() if c[1] == "#power-cut"]
    assert len(cut) == 1 and cut[0][0] == victim and cut[0][2][0].startswith(when), cut
    # only the victim needed a second run: the other node waited through the cut without failing
    assert journal[0] == f"{victim}: run 1 ended rc=-9" and len(journal) == 2, story(p)
    # a half-written device is not taken as done: the command runs again, on that device only
    assert_cluster_up(p, redone=(pattern, victim) if (when, pattern) in REDONE else None)


# ------------------------------------------------------------------------------------------------
# DRBD and GFS2 over time: the sync takes a while, the module refuses, mkfs writes in stages


def until(check, what: str, timeout: float = 60):
    """Poll check() until it returns something true (bounded); no wall-clock assertion."""
    end = time.monotonic() + timeout
    while not (got := check()):
        if time.monotonic() > end:
            raise AssertionError(f"never: {what}")
        time.sleep(0.1)
    return got


def set_env(p, **env: str) -> None:
    for node in p.nodes.values():
        node.env.update(env)


def test_harness_drbd_refuses_what_the_8_3_7_module_refuses(make_pair):
    """The kernel stand-in itself: a Secondary cannot be opened, primary needs an UpToDate disk and is
    refused during the sync handshake, the sync moves through SyncSource/SyncTarget over time."""
    p = make_pair("init")
    # each phase outlasts the drbdadm calls the test makes in it, a second or more each on a loaded
    # machine: the refused primary in the handshake (3 s), four calls in the sync (9 s of the 12)
    set_env(p, FBH_DRBD_SYNC_MS="12000", FBH_DRBD_SYNC_START_MS="3000")
    res = p.cluster.storage.drbd.resource
    for name in p.nodes:
        (p.nodes[name].root / "etc/drbd.d").mkdir(parents=True, exist_ok=True)
        for rel in ("etc/drbd.conf", "etc/drbd.d/global_common.conf", f"etc/drbd.d/{res}.res"):
            src = p.nodes[name].root / "var/lib/an-cluster/stage" / rel
            if src.exists():
                (p.nodes[name].root / rel).write_text(src.read_text())
        r = drbdadm(p, name, "create-md", res)
        assert r.returncode == 0, r.stderr
        assert drbdadm(p, name, "adjust", res).returncode == 0
    a, b = p.lowest, p.other
    until(lambda: drbdadm(p, a, "cstate", res).stdout.strip() == "Connected", "connected")
    dev = str(p.nodes[a].root / p.cluster.storage.drbd.device.lstrip("/"))
    env = p.nodes[a].env
    r = subprocess.run(["blkid", "-p", dev], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "Wrong medium type" in r.stderr, r
    r = subprocess.run(["pvcreate", dev], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "Read-only file system" in r.stderr, r
    r = drbdadm(p, a, "primary", res)
    assert r.returncode == 17 and "(-2) Refusing to be Primary without at least one UpToDate disk" in r.stderr, r
    assert drbdadm(p, a, "--", "--overwrite-data-of-peer", "primary", res).returncode == 0
    r = drbdadm(p, b, "primary", res)
    assert r.returncode == 11 and "(-19) Concurrent state changes detected and aborted" in r.stderr, r
    until(lambda: drbdadm(p, b, "cstate", res).stdout.strip() == "SyncTarget", "SyncTarget")
    assert drbdadm(p, a, "cstate", res).stdout.strip() == "SyncSource"
    assert drbdadm(p, b, "dstate", res).stdout.strip() == "Inconsistent/UpToDate"
    assert drbdadm(p, b, "primary", res).returncode == 0
    until(lambda: drbdadm(p, b, "dstate", res).stdout.strip() == "UpToDate/UpToDate", "sync done")
    assert drbdadm(p, a, "cstate", res).stdout.strip() == "Connected"
    # and adjust, with everything as configured, changes nothing
    before = len(p.calls())
    assert drbdadm(p, a, "adjust", res).returncode == 0
    changes = {"disk", "net", "syncer", "disconnect", "detach", "primary", "secondary", "down"}
    assert [c for c in p.calls()[before:] if c[1] == "drbdsetup" and c[2][1] in changes] == []


def test_a_refused_primary_is_tried_again(make_pair):
    """While the initial sync starts, the peer's `drbdadm primary` is refused (SS_CONCURRENT_ST_CHG):
    it tries again (as DRBD's sh-b-pri does) instead of failing the step."""
    p = make_pair("init")
    set_env(p, FBH_DRBD_SYNC_START_MS="3000")
    # the handshake lasts until the other node's first try was refused: 3 s alone would need that
    # node's primary inside them, which a loaded machine need not give; released at once, the
    # tries left (1 s apart) find it over
    refused = "'drbdadm primary r0' was refused (try 1 of 5): /dev/drbd0: State change failed: (-19)"
    p.hold_drbd("handshake")
    for n in p.nodes:
        p.start(n)
    p.wait_log(p.other, refused)
    p.hold_drbd("handshake", False)
    for n in p.nodes:  # as run_both(max_rounds=1) == []: each finished in its first run
        assert p.wait(n, timeout=180) == 0 and p.all_done(n), story(p)
    assert refused in p.log(p.other)
    assert_cluster_up(p)


def test_a_resumed_run_attaches_a_resource_that_boot_left_diskless(make_pair):
    """drbd started at boot before the metadata existed (its adjust goes on past the failed attach):
    the resource is Diskless but connected. The resumed 60-drbd attaches it."""
    from harness import drbd_init_start

    p = make_pair("init")
    res = p.cluster.storage.drbd.resource
    p.start(p.other)
    p.start(p.lowest, kill="before:create-md")
    assert p.wait(p.lowest) == -9
    p.reboot(p.lowest)
    node = p.nodes[p.lowest]
    for argv in drbd_init_start():
        subprocess.run(["ip", "netns", "exec", node.netns, *argv], env=node.env, capture_output=True)
    assert drbdadm(p, p.lowest, "dstate", res).stdout.strip().startswith("Diskless/")
    p.start(p.lowest)
    assert p.wait(p.lowest, timeout=180) == 0, story(p)
    assert p.wait(p.other, timeout=180) == 0, story(p)
    assert_cluster_up(p)


def test_the_peer_mounts_gfs2_only_once_mkfs_finished(make_pair):
    """mkfs.gfs2 puts the superblock (and the lock table) on the device before the rest: the peer waits
    for the completion tag the lowest node sets after mkfs returned 0, not for the signature."""
    p = make_pair("init")
    set_env(p, FBH_MKFS_GFS2_MS="3000")
    assert p.run_both(max_rounds=1) == []
    calls = p.calls()
    tag = next(i for i, (n, cmd, a) in enumerate(calls) if cmd == "lvchange" and "--addtag" in a)
    assert calls[tag][0] == p.lowest
    mounts = [i for i, (n, cmd, _) in enumerate(calls) if n == p.other and cmd == "mount"]
    assert mounts and min(mounts) > tag, story(p)
    assert_cluster_up(p)


def test_vms_start_only_on_an_uptodate_disk(make_pair):
    """The initial sync outlasts the rest of the bring-up: rgmanager (which starts the VMs) waits on the
    SyncTarget until its disk is UpToDate; the log says what it waits for."""
    p = make_pair("init", timeout=90)
    set_env(p, FBH_DRBD_SYNC_MS="20000")
    # the sync ends only once the other node's rgmanager step was seen waiting for it: 20 s alone
    # outlasted the bring-up here, not on a loaded machine (the sync was over before step 90)
    waiting = "waiting for this node's DRBD disk to be UpToDate (initial sync from"
    p.hold_drbd("sync")
    for n in p.nodes:
        p.start(n)
    p.wait_log(p.other, waiting, timeout=180)
    p.hold_drbd("sync", False)
    for n in p.nodes:  # as run_both(max_rounds=1) == []: each finished in its first run
        assert p.wait(n, timeout=180) == 0 and p.all_done(n), story(p)
    starts = [a[0] for n, cmd, a in p.calls() if cmd == "#vm-start" and n == p.other]
    assert starts == ["UpToDate/UpToDate"], story(p)
    assert waiting in p.log(p.other)
    assert_cluster_up(p)


# ------------------------------------------------------------------------------------------------
# existing data: refuse, explain, change nothing


def run_until_failed(p, name: str, timeout: float = 120):
    for n in p.nodes:
        p.start(n)
    rc = p.wait(name, timeout=timeout)
    return rc


def assert_the_refusal_stopped(p, name: str, step: str) -> None:
    """The destructive-step guard's die stopped STEP in the step's own shell: its ERROR lines are the
    refusal and what to do, and nothing else (a die in a $(...) subshell ends only the subshell: the
    step then stopped only because `set -e` took the failed assignment for a failed command)."""
    errors = [ln.split(" ERROR: ", 1)[1] for ln in p.log(name).splitlines() if f" {step} ERROR: " in ln]
    assert len(errors) == 2 and errors[0].startswith("refusing to run ") and errors[1].startswith("how to proceed: "), \
        errors


def test_refuses_a_backing_device_with_a_filesystem(make_pair):
    p = make_pair("init", timeout=10)
    node = p.nodes[p.lowest]
    subprocess.run(["mkfs.ext4", "-q", "-F", node.backing_loop], check=True, capture_output=True)
    image = p.h / "img" / f"{p.lowest}-backing.img"
    subprocess.run(["sync"])
    before = sha256(image)
    assert run_until_failed(p, p.lowest) != 0
    st = p.status(p.lowest)
    assert st.returncode == 2
    assert re.search(r"^60-drbd\s+failed: refusing to run drbdadm create-md r0: .* already carries data \(signature: ext4",
                     st.stdout, re.M), st.stdout
    assert_the_refusal_stopped(p, p.lowest, "60-drbd")
    console = p.console(p.lowest)
    assert "step 60-drbd FAILED" in console and "wipefs -a" in console
    assert [n for n, _ in p.destructive()["create-md"]] in ([], [p.other])
    p.reboot(p.other)  # stop the peer (it waits for us) before reading the image
    subprocess.run(["sync"])
    assert sha256(image) == before


def test_refuses_drbd_metadata_from_an_earlier_install_until_adopted(make_pair):
    p = make_pair("init", timeout=15)
    node = p.nodes[p.other]
    # drbdmeta records the device in /var/lib/drbd: give it a private one (mount namespace)
    varlib = p.h / "earlier-install-varlibdrbd"
    varlib.mkdir()
    subprocess.run(["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /var/lib/drbd && exec "$@"', str(varlib),
                    "drbdmeta", "--force", "0", "v08", node.backing_loop, "internal", "create-md"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    image = p.h / "img" / f"{p.other}-backing.img"
    before = sha256(image)
    assert run_until_failed(p, p.other) != 0
    assert re.search(r"^60-drbd\s+failed: refusing .*signature: drbd", p.status(p.other).stdout, re.M)
    assert_the_refusal_stopped(p, p.other, "60-drbd")
    assert p.other not in [n for n, _ in p.destructive()["create-md"]]
    assert sha256(image) == before
    assert "adopt it with 'echo" in p.log(p.other)
    # the operator adopts it, as the message says; the run then completes without a new create-md
    intent = node.root / "var/lib/an-cluster/firstboot/intent"
    intent.mkdir(parents=True, exist_ok=True)
    (intent / "drbd-create-md").write_text("/dev/md3\n")
    (p.h / "disks").mkdir(exist_ok=True)
    (p.h / "disks" / f"{p.other}.dstate").write_text("Inconsistent\n")  # what that metadata says (emulated kernel)
    # the lowest node is waiting for its peer by now (not inside create-md, which a reboot would cut)
    p.wait_log(p.lowest, "waiting for DRBD")
    p.reboot(p.lowest)
    p.reboot(p.other)
    p.run_both()
    assert [n for n, _ in p.destructive()["create-md"]] == [p.lowest]
    assert [n for n, _ in p.destructive()["mkfs.gfs2"]] == [p.lowest]


def _premake_lvm(p, vg: str, lv: str | None = None, fs: str | None = None) -> None:
    env = dict(p.nodes[p.lowest].env)
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    for argv in (["pvcreate", "-q", p.drbd_loop], ["vgcreate", "-q", vg, p.drbd_loop]):
        subprocess.run(argv, env=env, check=True, capture_output=True)
    if lv:
        subprocess.run(["lvcreate", "-q", "-L", f"{p.cluster.storage.gfs2.size_mib}M", "-n", lv, vg], env=env,
                       check=True, capture_output=True)
        shim_env = dict(p.nodes[p.lowest].env)
        # harness activation; the earlier install's DRBD was Primary (a Secondary cannot be opened)
        role = p.h / "run" / p.lowest / "drbd.role"
        role.parent.mkdir(parents=True, exist_ok=True)
        role.write_text("Primary\n")
        subprocess.run(["vgchange", "-a", "y", vg], env=shim_env, check=True, capture_output=True)
        role.unlink()
        dev = p.nodes[p.lowest].root / "dev" / vg / lv
        if fs:
            subprocess.run([f"mkfs.{fs}", "-q", "-F", str(dev)], check=True, capture_output=True)
            subprocess.run(["sync"])


def test_refuses_a_drbd_device_that_holds_another_volume_group(make_pair):
    p = make_pair("init", timeout=10)
    _premake_lvm(p, "oldvg")
    image = p.h / "img" / "drbd.img"
    before = sha256(image)
    assert run_until_failed(p, p.lowest) != 0
    assert re.search(r"^70-clvm\s+failed: refusing to run pvcreate /dev/drbd0: .*signature: LVM2_member",
                     p.status(p.lowest).stdout, re.M), p.status(p.lowest).stdout
    assert_the_refusal_stopped(p, p.lowest, "70-clvm")
    d = p.destructive()
    assert d["pvcreate"] == [] and d["vgcreate"] == [] and d["lvcreate"] == []
    p.reboot(p.other)
    subprocess.run(["sync"])
    assert sha256(image) == before


def test_refuses_a_volume_group_it_did_not_create_and_an_lv_with_a_filesystem(make_pair):
    c_vg = "drbd0_vg0"
    p = make_pair("init", timeout=10)
    lv = p.cluster.storage.gfs2.lv
    _premake_lvm(p, c_vg, lv, fs="ext4")
    lv_dev = Path(os.path.realpath(p.nodes[p.lowest].root / "dev" / c_vg / lv))
    before = sha256(lv_dev)
    assert run_until_failed(p, p.lowest) != 0
    assert re.search(rf"^70-clvm\s+failed: refusing to use volume group {c_vg}: it exists already",
                     p.status(p.lowest).stdout, re.M), p.status(p.lowest).stdout
    # adopt the VG as the message explains; the GFS2 step then refuses the LV's ext4
    intent = p.nodes[p.lowest].root / "var/lib/an-cluster/firstboot/intent"
    (intent / "lvm-vgcreate").write_text(c_vg + "\n")
    p.reboot(p.lowest)
    p.start(p.lowest)
    assert p.wait(p.lowest) != 0
    assert re.search(rf"^80-gfs2\s+failed: refusing to run mkfs.gfs2 on /dev/{c_vg}/{lv}: .*signature: ext4",
                     p.status(p.lowest).stdout, re.M), p.status(p.lowest).stdout
    assert_the_refusal_stopped(p, p.lowest, "80-gfs2")
    d = p.destructive()
    assert d["mkfs.gfs2"] == [] and d["pvcreate"] == [] and d["vgcreate"] == []
    assert [args[args.index("-n") + 1] for _, args in d["lvcreate"]] == ["vm0001_ws1"]  # only the missing LV
    assert blkid(p.nodes[p.lowest].root / "dev" / c_vg / lv, "TYPE") == "ext4"
    p.reboot(p.other)
    subprocess.run(["sync"])
    # the LV's contents are untouched (only the VG metadata changed, for the missing VM LV)
    assert sha256(lv_dev) == before
    assert subprocess.run(["fsck.ext4", "-n", str(lv_dev)], capture_output=True).returncode == 0


# ------------------------------------------------------------------------------------------------
# the backing RAID1 when the kickstart could not make it


def test_creates_the_backing_raid1_from_the_unused_partitions(make_pair):
    p = make_pair("init", raid_partitions=True)
    in_use = {n: sha256(p.h / "img" / f"{n}-sda3.img") for n in p.nodes}
    p.run_both(max_rounds=1)
    assert_cluster_up(p)
    creates = [(n, args) for n, cmd, args in p.calls() if cmd == "mdadm" and "--create" in args]
    assert sorted(n for n, _ in creates) == sorted(p.nodes)
    for name, args in creates:
        node = p.nodes[name]
        # the unformatted partition of each disk, not the ext4 one, not the extended one
        assert args[-2:] == [str(node.root / "dev/sda5"), str(node.root / "dev/sdb5")], args
        assert "--level=1" in args and "--raid-devices=2" in args
        assert "ARRAY /dev/md3 " in (node.root / "etc/mdadm.conf").read_text()
        assert sha256(p.h / "img" / f"{name}-sda3.img") == in_use[name]


def test_no_unused_partition_no_raid(make_pair):
    p = make_pair("init", timeout=10, raid_partitions=True)
    node = p.nodes[p.lowest]
    subprocess.run(["mkfs.ext4", "-q", "-F", node.parts["sdb5"]], check=True, capture_output=True)
    assert run_until_failed(p, p.lowest) != 0
    assert re.search(r"^60-drbd\s+failed: no unused partition on sdb for the RAID1 /dev/md3", p.status(p.lowest).stdout,
                     re.M), p.status(p.lowest).stdout
    assert not [c for c in p.calls() if c[0] == p.lowest and c[1] == "mdadm" and "--create" in c[2]]
    assert blkid(Path(node.parts["sdb5"]), "TYPE") == "ext4"


def test_rgmanager_readiness_waits_for_rgmanager_on_the_peer(make_pair):
    """clustat shows the peer Online as soon as cman runs there; the lowest node must not call the
    cluster ready before the peer's rgmanager is up too (clustat's ", rgmanager" flag)."""
    p = make_pair("init")
    p.gate(p.other, "rgmanager")
    for n in p.nodes:
        p.start(n)
    p.wait_log(p.lowest, "waiting for clustat to show both nodes online with rgmanager")
    assert not p.all_done(p.lowest), story(p)
    p.gate(p.other, "rgmanager", closed=False)
    for n in p.nodes:
        assert p.wait(n) == 0, story(p)
    assert_cluster_up(p)


# ------------------------------------------------------------------------------------------------
# cman start: the first node must not fence a peer that is still installing itself


def test_a_late_peer_is_not_fenced(make_pair):
    """The peer answers ping (its network is up, as in anaconda) but its firstboot starts only after
    more than post_join_delay. Starting cman alone would have fenced(8) power-cycle it."""
    import time

    # the lowest node waits at the rendezvous through the test's 14 s pause and the peer's steps 10-40
    # (several seconds, more on a loaded machine): a wait bound well beyond both, not the default 40 s
    p = make_pair("init", timeout=120)
    p.start(p.lowest)
    p.wait_log(p.lowest, "=== step 50-cman: starting")
    from harness import TIME_SCALE

    end = time.monotonic() + 2 * 30 * TIME_SCALE + 2  # twice the rendered post_join_delay="30"
    while time.monotonic() < end and not p.fenced():
        time.sleep(0.2)
    p.start(p.other)
    for n in p.nodes:
        assert p.wait(n) == 0, story(p)
    assert p.fenced() == [], story(p)
    assert_cluster_up(p)
    for n in p.nodes:
        # both met first; cman never with clean_start (it would skip fencing a node in doubt)
        assert "is at the rendezvous: starting cman" in p.log(n)
        assert "clean_start" not in (p.nodes[n].root / "etc/cluster/cluster.conf").read_text()


def test_a_peer_that_never_comes_leaves_cman_stopped_with_a_clear_status(make_pair):
    p = make_pair("init", timeout=2)
    p.start(p.lowest)
    assert p.wait(p.lowest) == 75, story(p)
    st = p.status(p.lowest).stdout
    assert re.search(rf"^50-cman\s+failed: {p.other} did not come to the cman rendezvous within 2s: cman not started",
                     st, re.M), st
    assert not [c for c in p.calls() if c[0] == p.lowest and c[1] == "service" and c[2][:2] == ["cman", "start"]]
    assert p.fenced() == []


def test_xend_running_at_the_first_boot_is_stopped_before_the_network_restart(make_pair):
    """Should xend run when firstboot starts (xend's own header says 2345 98: the kickstart turns it
    off, an older install did not), its bridges are up while 10-network restarts the network. The
    step stops xend and its bridges first; 50-cman starts it again before cman."""
    p = make_pair("init")
    for node in p.nodes.values():
        r = subprocess.run(["ip", "netns", "exec", node.netns, "service", "xend", "start"], env=node.env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    journal = p.run_both(max_rounds=1)
    assert journal == [], story(p)
    assert_cluster_up(p)
    assert_xend_up_before_cman(p)
    for name in p.nodes:
        assert "xend is running: stopping it and its network script (an-network-script)" in p.log(name)


def test_a_firewall_that_blocks_the_dlm_is_visible(make_pair):
    """With redundant rings the DLM talks SCTP (port 21064). The harness runs each node's rendered
    firewall in its namespace; one without the SCTP rule (what the kickstart's tcp/udp-only
    `firewall --port=` gives) makes clvmd's start fail here as it times out on the node."""
    p = make_pair("init")
    assert p.cluster.totem.rrp_mode != "none"
    for node in p.nodes.values():
        rules = node.root / "var/lib/an-cluster/stage/etc/sysconfig/iptables"
        rules.write_text("".join(ln for ln in rules.read_text().splitlines(True) if "-p sctp" not in ln))
    p.firewall()
    for n in p.nodes:
        p.start(n)
    assert p.wait(p.lowest) != 0
    assert re.search(r"^70-clvm\s+failed: 'service clvmd start' failed", p.status(p.lowest).stdout, re.M), story(p)
    assert "clvmd startup timed out: the DLM cannot reach" in p.console(p.lowest) + p.log(p.lowest), story(p)
