"""The DRBD side of fencing and of the rgmanager storage service, run for real.

an-drbd-fence-peer is started by the REAL drbdadm 8.3 (`drbdadm-83 fence-peer <res>`, which is what
the kernel runs when a Primary loses its peer) on the rendered configuration, as the node (UTS +
network namespace holding its name and sn address), with a fence_node that accepts exactly what
cluster 3.0.12's does (tests/fixtures/shims/fence_node). DRBD 8.3.7 reads the helper's exit code in
drbd_nl.c drbd_try_outdate_peer: 7 = peer stonithed (I/O resumes), 3-6 other outcomes, anything else
"helper broken" (I/O stays frozen).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from isobuild.loader import load_definition
from isobuild.render import render
from isobuild.rpmplan import BuildConfig
from isobuild.rpms import build_chain
from isobuild.validate import _netns_argv
from tests.conftest import need_tool

REPO = Path(__file__).resolve().parents[2]
OVERLAY = REPO / "overlay" / "firstboot"
SHIMS = REPO / "tests" / "fixtures" / "shims"
HANDLER = OVERLAY / "an-drbd-fence-peer"
SERVICE = OVERLAY / "an-drbd-service"


@pytest.fixture(scope="module")
def node_etc(tmp_path_factory):
    """an-node01's rendered /etc, with drbd.conf's includes and the handler path pointing here."""
    c = load_definition(REPO / "cluster.yaml")
    build = tmp_path_factory.mktemp("render")
    render(c, build)
    etc = build / "nodes" / "an-node01" / "etc"
    conf = etc / "drbd.conf"
    conf.write_text(conf.read_text().replace('"drbd.d/', f'"{etc}/drbd.d/'))
    res = etc / "drbd.d" / "r0.res"
    text = res.read_text()
    assert '"/usr/sbin/an-drbd-fence-peer"' in text
    res.write_text(text.replace("/usr/sbin/an-drbd-fence-peer", str(HANDLER)))
    return c, etc


def drbdadm_fence_peer(c, etc: Path, tmp_path: Path, result: str) -> tuple[int, list[str], str]:
    tools = need_tool("drbdadm-83", "unshare", "ip", "hostname")
    n = c.node("an-node01")
    log = tmp_path / "fence_node.log"
    log.unlink(missing_ok=True)
    script = (f'set -e; {tools["hostname"]} "$1"; {tools["ip"]} link set lo up; {tools["ip"]} addr add "$2"/32 dev lo; '
              f'exec {tools["drbdadm-83"]} -c "$3" fence-peer {c.storage.drbd.resource}')
    env = {**os.environ, "PATH": f"{SHIMS}:{os.environ['PATH']}", "FENCE_NODE_RESULT": result,
           "FENCE_NODE_LOG": str(log)}
    proc = subprocess.run(_netns_argv(tools["unshare"], "sh", "-c", script, "sh", n.fqdn, str(n.ip["sn"]),
                                      str(etc / "drbd.conf")), env=env, capture_output=True, text=True, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return proc.returncode, calls, proc.stderr


def test_fence_peer_fences_the_peer_through_cman_and_returns_7(node_etc, tmp_path):
    c, etc = node_etc
    rc, calls, err = drbdadm_fence_peer(c, etc, tmp_path, "success")
    assert rc == 7, err  # "peer was stonithed": the peer's disk becomes Outdated, I/O resumes
    assert calls == ["-v an-node02.alteeve.com"]  # DRBD_PEER: the peer's `on` name = its clusternode name


@pytest.mark.parametrize("result", ["fail", "undefined", "nocman"])
def test_a_failed_fence_keeps_io_frozen(node_etc, tmp_path, result):
    c, etc = node_etc
    rc, calls, err = drbdadm_fence_peer(c, etc, tmp_path, result)
    assert calls == ["-v an-node02.alteeve.com"]
    assert rc not in range(3, 8), err  # 3-7 would let DRBD resume writing with the peer maybe alive
    assert "I/O stays frozen" in err


def test_the_higher_nodeid_passes_its_delay(tmp_path):
    """an-node02's config gives the handler a delay (so an-node01 fences first); a bad one fences nobody."""
    c = load_definition(REPO / "cluster.yaml")
    render(c, tmp_path / "b")
    res = (tmp_path / "b/nodes/an-node02/etc/drbd.d/r0.res").read_text()
    assert '"/usr/sbin/an-drbd-fence-peer 10"' in res
    log = tmp_path / "log"
    env = {"PATH": f"{SHIMS}:/usr/bin:/bin", "FENCE_NODE_LOG": str(log), "DRBD_PEER": "an-node01.alteeve.com"}
    proc = subprocess.run([str(HANDLER), "0"], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 7 and log.read_text() == "-v an-node01.alteeve.com\n"
    proc = subprocess.run([str(HANDLER), "ten"], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and log.read_text() == "-v an-node01.alteeve.com\n"


def test_fence_peer_without_a_peer_name_fences_nobody(tmp_path):
    log = tmp_path / "log"
    env = {"PATH": f"{SHIMS}:/usr/bin:/bin", "FENCE_NODE_LOG": str(log)}
    proc = subprocess.run([str(HANDLER)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and not log.exists()
    assert "DRBD_PEER is not set" in proc.stderr


@pytest.mark.parametrize("argv,rc,msg", [
    (["-v", "peer"], 0, "fence peer success"),
    (["peer", "-v"], 0, "fence peer success"),  # GNU getopt permutes
    (["-U"], 0, "unfence local-node success"),
    (["--force", "peer"], 1, "Please use '-h' for usage."),
    (["-a", "peer"], 1, "Please use '-h' for usage."),
    (["one", "two"], 1, "unknown option two"),
    ([], 1, "no node name specified"),
])
def test_fence_node_shim_accepts_exactly_what_3_0_12_does(argv, rc, msg):
    proc = subprocess.run([str(SHIMS / "fence_node"), *argv], capture_output=True, text=True, timeout=30)
    assert proc.returncode == rc and msg in proc.stderr + proc.stdout


# --- an-drbd-service: the storage service's DRBD script (rgmanager script.sh runs `<file> status`) ---

# drbdadm 8.3.7 subcommands the script uses (user/drbdadm_main.c cmds[]: sh-resources, role, dstate,
# cstate, primary); state from files so a test sets what DRBD reports.
FAKE_DRBDADM = """#!/bin/bash
d="$AN_TEST_DRBD"
echo "$*" >> "$d/calls"
case "$1" in
    sh-resources) echo r0 ;;
    role|dstate|cstate) [ "$2" = r0 ] || { echo "'$2' not defined in your config." >&2; exit 10; }
        [ -f "$d/$1" ] || { echo "Unconfigured" ; exit 10; }; cat "$d/$1" ;;
    primary) echo "Primary/${PEER_ROLE:-Secondary}" > "$d/role" ;;
    *) echo "drbdadm: Unknown command '$1'" >&2; exit 20 ;;
esac
"""


def run_service(tmp_path: Path, action: str, role: str | None, dstate: str | None, cstate: str = "Connected"):
    d = tmp_path / "drbd"
    d.mkdir(exist_ok=True)
    for name, value in (("role", role), ("dstate", dstate), ("cstate", cstate)):
        if value is not None:
            (d / name).write_text(value + "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "drbdadm").write_text(FAKE_DRBDADM)
    (bin_dir / "drbdadm").chmod(0o755)
    init = tmp_path / "init-drbd"
    init.write_text(f'#!/bin/bash\necho "init $1" >> {d}/calls\n')
    init.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "AN_TEST_DRBD": str(d), "AN_DRBD_INIT": str(init)}
    proc = subprocess.run([str(SERVICE), action], env=env, capture_output=True, text=True, timeout=30)
    return proc.returncode, proc.stderr, (d / "calls").read_text().splitlines()


@pytest.mark.parametrize("role,dstate,cstate,ok", [
    ("Primary/Primary", "UpToDate/UpToDate", "Connected", True),
    ("Primary/Unknown", "UpToDate/DUnknown", "WFConnection", True),  # peer fenced: we serve the data
    ("Primary/Primary", "Inconsistent/UpToDate", "SyncTarget", True),  # resync: reads go to the peer
    ("Secondary/Primary", "UpToDate/UpToDate", "Connected", False),  # the init script's status says 0
    ("Primary/Unknown", "Diskless/DUnknown", "StandAlone", False),
    ("Primary/Unknown", "Inconsistent/DUnknown", "WFConnection", False),
    (None, None, "Unconfigured", False),
])
def test_service_status_is_drbds_real_state(tmp_path, role, dstate, cstate, ok):
    rc, err, calls = run_service(tmp_path, "status", role, dstate, cstate)
    assert (rc == 0) is ok, err
    assert not any(c.startswith("init") for c in calls)  # never /etc/init.d/drbd status


def test_service_start_brings_drbd_up_and_makes_it_primary(tmp_path):
    rc, err, calls = run_service(tmp_path, "start", "Secondary/Primary", "UpToDate/UpToDate")
    assert rc == 0, err
    assert calls[0] == "init start" and "primary r0" in calls


def test_the_package_ships_what_the_config_names(tmp_path):
    """The rendered r0.res and cluster.conf name /usr/sbin/an-drbd-fence-peer, an-drbd-service and
    an-vm-start: the an-cluster-firstboot RPM built from this overlay installs them, executable."""
    need_tool("rpmbuild", "rpmspec", "createrepo_c", "rpm")
    cfg = BuildConfig(build_dir=tmp_path / "build", backend="rpmbuild", chain=("an-cluster-firstboot",),
                      firstboot_dir=OVERLAY)
    (rpm,) = build_chain(cfg).rpms
    listing = subprocess.run(["rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]", str(rpm)],
                             check=True, capture_output=True, text=True).stdout.splitlines()
    files = dict(reversed(line.split(" ", 1)) for line in listing)
    c = load_definition(REPO / "examples" / "ipmi-cluster.yaml")
    render(c, tmp_path / "r")
    node = tmp_path / "r" / "nodes" / c.nodes[0].name
    named = re.findall(r'"(/usr/sbin/[^"]+)"', (node / "etc/drbd.d/shared.res").read_text())
    named += re.findall(r'file="(/usr/sbin/[^"]+)"', (node / "etc/cluster/cluster.conf").read_text())
    assert sorted(named) == ["/usr/sbin/an-drbd-fence-peer", "/usr/sbin/an-drbd-service", "/usr/sbin/an-vm-start"]
    for path in named:
        assert files.get(path) == "-rwxr-xr-x", path
    shutil.rmtree(tmp_path / "build", ignore_errors=True)
