"""an-vm-start, the last resource of each storage_<node> service (issue 17.5: VMs wait for the storage).

Run for real on the rendered cluster.conf of examples/ipmi-cluster.yaml (web01 prefers node-b2,
db01 node-b1), as node-b1, with clustat/clusvcadm/logger shims that accept exactly the option strings
of rgmanager 3.0.12 (src/utils/clustat.c, clusvcadm.c) and util-linux-ng's logger
(tests/fixtures/shims). rgmanager runs the script through script.sh and waits for it (restree.c
res_exec waitpid), so `start` must return while the enables are still pending.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from isobuild.loader import load_definition
from isobuild.render import render

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "overlay" / "firstboot" / "an-vm-start"
SHIMS = REPO / "tests" / "fixtures" / "shims"
B1, B2 = "node-b1.lab.example.org", "node-b2.lab.example.org"


@pytest.fixture(scope="module")
def conf(tmp_path_factory):
    c = load_definition(REPO / "examples" / "ipmi-cluster.yaml")
    assert [(vm.name, c.node(vm.prefer).fqdn) for vm in c.vms] == [("web01", B2), ("db01", B1)]
    build = tmp_path_factory.mktemp("render")
    render(c, build)
    return (build / "nodes" / "node-b1" / "etc" / "cluster" / "cluster.conf").read_text()


class Node:
    def __init__(self, tmp_path: Path, conf: str):
        self.dir = tmp_path
        self.domu = tmp_path / "domU_config"
        self.domu.mkdir()
        assert 'path="/vmconfigs/domU_config"' in conf
        (tmp_path / "cluster.conf").write_text(conf.replace('path="/vmconfigs/domU_config"', f'path="{self.domu}"'))
        self.env = {"PATH": f"{SHIMS}:/usr/bin:/bin", "AN_CLUSTER_CONF": str(tmp_path / "cluster.conf"),
                    "CLUSTAT_STATE": str(tmp_path / "state.json"), "CLUSVCADM_LOG": str(tmp_path / "calls"),
                    "LOGGER_LOG": str(tmp_path / "log")}

    def state(self, members=(B1, B2), **groups):
        groups = {f"vm:{k}": v for k, v in groups.items()}
        nodes = {n: int(n in members) for n in (B1, B2)}
        (self.dir / "state.json").write_text(json.dumps({"local": B1, "nodes": nodes, "groups": groups}))

    def run(self, action: str):
        # the node runs it with its /usr/bin/python (2.6); here the test's interpreter
        return subprocess.run([sys.executable, str(SCRIPT), action], env=self.env, capture_output=True, text=True, timeout=60)

    def read(self, name: str) -> list[str]:
        p = self.dir / name
        return p.read_text().splitlines() if p.exists() else []

    def wait_done(self) -> list[str]:
        """The background enabler's log once it said done (a hang guard, not a timing assertion: a
        deadline, not a count of polls; a broken clustat alone takes the script 3 x 2 s)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            log = self.read("log")
            if any(line.endswith(": done") or "VMs not enabled" in line for line in log):
                return log
            time.sleep(0.05)
        raise AssertionError(f"an-vm-start never finished: {self.read('log')}")

    def start(self) -> list[str]:
        proc = self.run("start")
        assert proc.returncode == 0, proc.stderr
        self.wait_done()
        return self.read("calls")


NEW = ["disabled", "none", "none"]  # autostart="0", never run in this cluster's life (consider_start)


@pytest.fixture
def node(tmp_path, conf):
    return Node(tmp_path, conf)


def test_only_the_vm_preferring_this_node_with_a_config_is_enabled_here(node):
    for vm in ("web01", "db01"):
        (node.domu / vm).write_text(f'name = "{vm}"\n')
    node.state(web01=NEW, db01=NEW)
    assert node.start() == [f"-e vm:db01 -m {B1}"]  # web01 is node-b2's: it is a member


def test_a_vm_without_its_domu_config_is_not_enabled(node):
    node.state(web01=NEW, db01=NEW)
    assert node.start() == []
    assert any("not enabling vm:db01: no domU config db01" in line for line in node.read("log"))


def test_a_vm_rgmanager_has_not_evaluated_yet_is_enabled_too(node):
    (node.domu / "db01").write_text('name = "db01"\n')
    node.state(web01=NEW, db01=["uninitialized", "none", "none"])
    assert node.start() == [f"-e vm:db01 -m {B1}"]


def test_a_vm_whose_preferred_node_is_not_a_member_starts_here(node):
    for vm in ("web01", "db01"):
        (node.domu / vm).write_text(f'name = "{vm}"\n')
    node.state(members=(B1,), web01=NEW, db01=NEW)
    assert sorted(node.start()) == [f"-e vm:db01 -m {B1}", f"-e vm:web01 -m {B1}"]


@pytest.mark.parametrize("group", [
    ["started", B2, "none"],  # recovered to the peer while this node was away: nofailback
    ["disabled", "none", B1],  # an admin's `clusvcadm -d`: it keeps its last owner
    ["failed", "none", B1],
])
def test_a_vm_that_already_ran_is_left_alone(node, group):
    (node.domu / "db01").write_text('name = "db01"\n')
    node.state(members=(B1,), web01=NEW, db01=group)
    assert node.start() == []


def test_start_returns_while_the_enable_is_still_pending(node):
    """clusvcadm waits for rgmanager's reply without a timeout; rgmanager waits for the script."""
    (node.domu / "db01").write_text('name = "db01"\n')
    node.state(web01=NEW, db01=NEW)
    release = node.dir / "release"
    node.env["CLUSVCADM_RELEASE"] = str(release)
    proc = node.run("start")  # capture_output: returns only once no process holds its stdout/stderr
    assert proc.returncode == 0, proc.stderr
    assert not release.exists()
    release.write_text("")
    log = node.wait_done()
    assert node.read("calls") == [f"-e vm:db01 -m {B1}"]
    assert any("clusvcadm -e vm:db01 exited 0" in line for line in log)


@pytest.mark.parametrize("action", ["stop", "status", "monitor"])
def test_stop_and_status_own_nothing(node, action):
    node.state(web01=NEW, db01=NEW)
    proc = node.run(action)
    assert proc.returncode == 0 and node.read("calls") == [] and node.read("log") == []


def test_a_broken_clustat_is_logged_not_fatal_to_the_storage_service(node):
    node.env["CLUSTAT_STATE"] = str(node.dir / "missing.json")
    proc = node.run("start")
    assert proc.returncode == 0
    assert any("VMs not enabled: clustat -x failed" in line for line in node.wait_done())


@pytest.mark.parametrize("tool,argv,rc", [
    ("clusvcadm", ["-e", "vm:db01", "-m", B1], 0),
    ("clusvcadm", ["-m", B1, "-e", "vm:db01"], 0),
    ("clusvcadm", ["--enable", "vm:db01"], 1),  # no long options in 3.0.12
    ("clusvcadm", ["-e"], 1),
    ("clusvcadm", ["-F", "-m", B1, "-e", "vm:db01"], 1),
    ("clusvcadm", ["-e", "vm:db01", "-m", "node-b9"], 1),
    ("clustat", ["-x"], 0),
    ("clustat", ["-x", "-i", "2"], 1),
])
def test_shims_accept_what_rgmanager_3_0_12_accepts(node, tool, argv, rc):
    node.state(web01=NEW, db01=NEW)
    proc = subprocess.run([str(SHIMS / tool), *argv], env=node.env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == rc, proc.stdout + proc.stderr


def test_the_script_uses_nothing_python_2_6_lacks():
    """Fedora 13's /usr/bin/python is 2.6: no f-strings, argparse, check_output, subprocess.run,
    DEVNULL or Element.iter (all 2.7/3 only)."""
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/python\n") and os.access(SCRIPT, os.X_OK)
    tree = ast.parse(text)
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    used |= {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    assert not any(isinstance(n, ast.JoinedStr) for n in ast.walk(tree))
    assert not used & {"argparse", "check_output", "run", "DEVNULL", "iter"}
