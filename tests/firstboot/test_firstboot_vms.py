"""Step 95-vms in the two-node harness: every VM provisioned once from the definition, its config on
the shared GFS2, started by rgmanager (clusvcadm), live-migrated between the nodes; power cuts inside
provisioning never lead to a second virt-install.

The pv install tree is served over HTTP on the lowest node's loopback (inside its network namespace):
the step checks it with the real curl, the virt-install shim fetches images/xen/vmlinuz from it.
Needs root (loop devices, network namespaces, LVM); CI runs as root.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO

sys.path.insert(0, str(Path(__file__).resolve().parent / "harness"))
from harness import make_definition  # noqa: E402

OVERLAY = REPO / "overlay" / "firstboot"
PORT = 8089


def _definition(src: Path, dst: Path, managed_by: str = "init") -> Path:
    """The example on harness addresses, its pv VMs installing from the local tree server."""
    path = make_definition(src, dst, managed_by)
    yaml = YAML()
    data = yaml.load(path.read_text())
    for vm in data["vms"]:
        if vm.get("install", {}).get("method") == "pv":
            vm["install"]["location"] = f"http://127.0.0.1:{PORT}/tree/"
    with open(path, "w") as fh:
        yaml.dump(data, fh)
    return path


def _serve_tree(p, tmp_path: Path) -> subprocess.Popen:
    tree = tmp_path / "www" / "tree" / "images" / "xen"
    tree.mkdir(parents=True, exist_ok=True)
    (tree / "vmlinuz").write_bytes(b"\x7fELF pv kernel")
    (tree / "initrd.img").write_bytes(b"initrd")
    proc = subprocess.Popen(["ip", "netns", "exec", p.nodes[p.lowest].netns, sys.executable, "-m", "http.server",
                             str(PORT), "--bind", "127.0.0.1", "--directory", str(tmp_path / "www")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    probe = ["ip", "netns", "exec", p.nodes[p.lowest].netns, "curl", "-sf", "-o", "/dev/null",
             f"http://127.0.0.1:{PORT}/tree/images/xen/vmlinuz"]
    deadline = time.monotonic() + 60  # a deadline, not a count of probes (each a curl of its own)
    while time.monotonic() < deadline:
        if subprocess.run(probe).returncode == 0:
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the tree server did not come up")


@pytest.fixture
def tree_pair(make_pair, tmp_path):
    servers: list[subprocess.Popen] = []

    def _make(example: str = "cluster.yaml"):
        p = make_pair(definition=_definition(REPO / example, tmp_path / f"def{len(servers)}"))
        servers.append(_serve_tree(p, tmp_path))
        return p

    yield _make
    for s in servers:
        s.kill()
        s.wait()


def shared(p) -> Path:
    return p.nodes[p.lowest].root / p.cluster.storage.gfs2.mount.lstrip("/")


def vm_status(p, vm: str) -> str:
    f = shared(p) / ".an-cluster" / "vms" / vm
    return f.read_text().strip() if f.exists() else ""


def installs(p, vm: str) -> list[str]:
    return [n for n, cmd, args in p.calls() if cmd == "virt-install" and vm in args]


def owner(p, vm: str) -> list[str]:
    return [n for n in p.nodes if (p.h / "run" / n / f"dom.{vm}").exists()]


def run_as(p, node: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", p.nodes[node].netns, *argv], env=p.nodes[node].env,
                          capture_output=True, text=True)


def story(p) -> str:
    return "".join(f"\n--- {n} log (tail)\n{p.log(n)[-3000:]}" for n in p.nodes)


def live_migrate(p, vm: str) -> None:
    """clusvcadm -M to the other node and back, as the runbook says; the domain runs on exactly one node."""
    for _ in range(2):
        (src,) = owner(p, vm)
        dst = next(n for n in p.nodes if n != src)
        r = run_as(p, src, "clusvcadm", "-M", f"vm:{vm}", "-m", p.nodes[dst].fqdn)
        assert r.returncode == 0, r.stdout + r.stderr
        assert owner(p, vm) == [dst]


@pytest.mark.parametrize("example", ["cluster.yaml", "examples/ipmi-cluster.yaml"])
def test_every_vm_provisioned_once_and_live_migrates(tree_pair, example):
    p = tree_pair(example)
    p.run_both(max_rounds=1)
    hvm = [vm for vm in p.cluster.vms if vm.install and vm.install.method == "hvm"]
    for vm in hvm:  # the ISO is not on the shared filesystem yet: a status, and the cluster is up anyway
        assert vm_status(p, vm.name).startswith("unreachable: ISO"), story(p)
        iso = p.nodes[p.lowest].root / vm.install.iso.lstrip("/")
        iso.parent.mkdir(parents=True, exist_ok=True)
        iso.write_bytes(b"CD001")
    if hvm:  # what the status's hint says: reset the step and run again (on the lowest nodeid)
        for argv in (("reset", "95-vms"), ("run",)):
            r = run_as(p, p.lowest, str(OVERLAY / "an-cluster-firstboot"), *argv)
            assert r.returncode == 0, r.stdout + r.stderr + story(p)
    for vm in p.cluster.vms:
        assert vm_status(p, vm.name).endswith(f"rgmanager runs vm:{vm.name}"), vm_status(p, vm.name) + story(p)
        conf = shared(p) / "domU_config" / (vm.name if vm.install.method == "hvm" else f"{vm.name}.xml")
        assert conf.is_file()
        if vm.install.method == "pv":
            assert installs(p, vm.name) == [p.lowest]
            xml = conf.read_text()
            assert f"<mac address='{vm.mac}'/>" in xml and f"/dev/{p.cluster.storage.clvm.vg}/{vm.name}" in xml
        else:
            assert f"mac={vm.mac}" in conf.read_text()
        assert len(owner(p, vm.name)) == 1, "rgmanager (clusvcadm -e) runs the VM on one node"
        live_migrate(p, vm.name)
    # the peer never provisions; each node logged every VM's status
    assert {n for n, cmd, _ in p.calls() if cmd == "virt-install"} <= {p.lowest}
    for vm in p.cluster.vms:
        assert f"VM {vm.name}: provisioned" in p.log(p.lowest)


@pytest.mark.parametrize("kill", ["before:virt-install", "during:virt-install", "after:virt-install",
                                  "before:virsh -c xen:/// dumpxml", "before:clusvcadm -e"])
def test_power_cut_in_provisioning_never_installs_twice(tree_pair, kill):
    p = tree_pair()
    (vm,) = p.cluster.vms
    journal = p.run_both(kill={p.lowest: kill})
    assert any(c[1] == "#power-cut" for c in p.calls()), f"the cut never happened: {journal}"
    assert installs(p, vm.name) == [p.lowest], story(p)
    conf = shared(p) / "domU_config" / f"{vm.name}.xml"
    if kill == "during:virt-install":
        # the LV holds a partial install: no second virt-install, a status that says so, no config
        assert vm_status(p, vm.name).startswith("interrupted"), vm_status(p, vm.name) + story(p)
        assert not conf.exists()
        assert "Reprovision" in p.log(p.lowest)
    else:
        assert vm_status(p, vm.name).endswith(f"rgmanager runs vm:{vm.name}"), vm_status(p, vm.name) + story(p)
        assert conf.is_file() and len(owner(p, vm.name)) == 1


def test_unreachable_source_then_an_lv_with_data_is_never_installed_over(make_pair, tmp_path):
    """No tree server: the VM gets a clear status and the cluster comes up. Then the LV gets a
    filesystem (someone else's data), the tree becomes reachable and the step is run again: the
    guard refuses, virt-install never runs, the data stays."""
    p = make_pair(definition=_definition(REPO / "cluster.yaml", tmp_path / "def"))
    (vm,) = p.cluster.vms
    p.run_both(max_rounds=1)
    assert vm_status(p, vm.name).startswith("unreachable: install source"), story(p)
    assert p.all_done(p.lowest) and p.all_done(p.other)
    lv = p.nodes[p.lowest].root / "dev" / p.cluster.storage.clvm.vg / vm.name
    subprocess.run(["mkfs.ext4", "-q", "-F", str(lv.resolve())], check=True, capture_output=True)
    server = _serve_tree(p, tmp_path)
    try:
        for argv in (("reset", "95-vms"), ("run",)):
            r = run_as(p, p.lowest, str(OVERLAY / "an-cluster-firstboot"), *argv)
            assert r.returncode == 0, r.stdout + r.stderr + story(p)
    finally:
        server.kill()
        server.wait()
    assert vm_status(p, vm.name).startswith("refused"), vm_status(p, vm.name) + story(p)
    assert installs(p, vm.name) == []
    assert subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", str(lv.resolve())], capture_output=True,
                          text=True).stdout.strip() == "ext4"
    assert "refusing to run the install of VM" in p.log(p.lowest)


def test_shims_refuse_what_f13s_tools_refuse(tmp_path):
    """Options the F13 versions do not have fail here as they would there (no root needed)."""
    from harness import install_shims

    shimbin = tmp_path / "shimbin"
    install_shims(shimbin)
    h = tmp_path / "h"
    (h / "run" / "n1").mkdir(parents=True)
    (h / "run" / "n1" / "svc.xend").write_text("running\n")
    env = {"PATH": f"{shimbin}:/usr/bin:/bin", "FBH_DIR": str(h), "FBH_NODE": "n1", "AN_ROOT": str(tmp_path / "root")}

    def run(*argv):
        return subprocess.run(list(argv), env=env, capture_output=True, text=True)

    r = run("virt-install", "--connect", "xen:///", "--name", "v", "--ram", "512", "--initrd-inject=/ks.cfg")
    assert r.returncode == 2 and "no such option: --initrd-inject" in r.stderr  # added after 0.500.3
    r = run("virt-install", "--connect", "xen:///", "--name", "v", "--ram", "512", "--graphics", "vnc")
    assert r.returncode == 2 and "no such option: --graphics" in r.stderr
    r = run("virt-install", "--connect", "xen:///", "--name", "v", "--ram", "512", "--paravirt", "--location",
            "http://x/", "--os-variant", "fedora14", "--disk", "path=/dev/null", "--network", "bridge=eth0,mac=00:16:3e:00:00:01",
            "--noautoconsole", "--wait", "-1")
    assert r.returncode == 1 and "OS variant 'fedora14'" in r.stderr
    r = run("virsh", "migrate", "--live", "--copy-storage-all", "v", "xen:///", "xenmigr://peer/")
    assert r.returncode == 1 and "doesn't support option --copy-storage-all" in r.stderr
    r = run("xm", "create", "--bogus", "v")
    assert r.returncode == 1 and "not recognized" in r.stderr
