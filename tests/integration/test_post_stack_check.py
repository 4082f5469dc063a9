"""%post stops the install when our dom0 kernel, Xen or drbd-km is not installed (issue: anaconda 13
adds the newest `kernel` it sees, and carries on past a failed transaction check).

The check runs with bash against a real rpm database: tiny RPMs built with rpmbuild and recorded
with `rpm -i --justdb`, queried by the real rpm through a wrapper that adds --root. A kernel with
an Epoch (what the RPM stage may give ours) must satisfy the name-version-release query.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from isobuild.loader import load_definition
from isobuild.render import render_kickstart, stack_rpms
from tests.conftest import need_tool

REPO = Path(__file__).resolve().parents[2]

SPEC = """\
Name:           {name}
{epoch}Version:        {version}
Release:        {release}
Summary:        stand-in
License:        GPLv2+
BuildArch:      noarch
%description
stand-in
%files
"""


def _rpm(top: Path, name: str, version: str, release: str, epoch: int | None = None) -> Path:
    spec = top / f"{name}.spec"
    spec.write_text(SPEC.format(name=name, version=version, release=release,
                                epoch=f"Epoch:          {epoch}\n" if epoch is not None else ""))
    subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}", "--define", f"_rpmdir {top}/out",
                    "--define", "_build_name_fmt %%{NAME}.rpm", str(spec)],
                   check=True, capture_output=True)
    return top / "out" / f"{name}.rpm"


def _installed(tmp_path: Path, pkgs: list[tuple[str, str, str, int | None]]) -> Path:
    """A root holding an rpmdb with pkgs; returns a bin dir whose `rpm` queries that root."""
    root, top, bindir = tmp_path / "root", tmp_path / "build", tmp_path / "bin"
    for d in (root, top, bindir):
        d.mkdir()
    rpms = [str(_rpm(top, *p)) for p in pkgs]
    subprocess.run(["rpm", "--root", str(root), "--initdb"], check=True)
    if rpms:
        subprocess.run(["rpm", "--root", str(root), "-i", "--justdb", "--nodeps", "--noscripts", *rpms],
                       check=True, capture_output=True)
    real = need_tool("rpm")["rpm"]
    (bindir / "rpm").write_text(f'#!/bin/sh\nexec {real} --root {root} "$@"\n')
    os.chmod(bindir / "rpm", 0o755)
    return bindir


def _check_block(ks: str) -> str:
    return "#" + ks.split("# --- the node is useless", 1)[1].split("\nfi\n", 1)[0] + "\nfi\n"


@pytest.fixture(scope="module")
def cluster():
    return load_definition(REPO / "cluster.yaml")


def _stack(cluster, kernel_epoch=None, drop=None, kernel_vr=None):
    k = kernel_vr or cluster.xen.dom0_kernel
    kv, kr = k.split("-", 1)
    xv, xr = cluster.xen.hypervisor_rpm[len("xen-"):].split("-", 1)
    drbd_km = stack_rpms(cluster)[-1]
    pkgs = [("kernel", kv, kr, kernel_epoch), ("xen", xv, xr, None), ("xen-hypervisor", xv, xr, None),
            (drbd_km, "8.3.7", "12.fc13", None)]
    return [p for p in pkgs if p[0] != drop]


@pytest.mark.parametrize("epoch", [None, 1], ids=["no-epoch", "epoch-1"])
def test_check_passes_with_our_stack_installed(cluster, tmp_path, epoch):
    need_tool("rpmbuild", "rpm", "bash")
    bindir = _installed(tmp_path, _stack(cluster, kernel_epoch=epoch))
    proc = subprocess.run(["bash", "-c", _check_block(render_kickstart(cluster, cluster.nodes[0]))],
                          capture_output=True, text=True, env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("what", ["kernel", "xen-hypervisor", "drbd-km", "stock-kernel"])
def test_check_stops_the_install_naming_what_is_missing(cluster, tmp_path, what):
    need_tool("rpmbuild", "rpm", "bash")
    drbd_km = stack_rpms(cluster)[-1]
    if what == "stock-kernel":  # anaconda picked the DVD's newer kernel instead of ours
        pkgs, missing = _stack(cluster, kernel_vr="2.6.33.3-85.fc13"), f"kernel-{cluster.xen.dom0_kernel}"
    else:
        name = drbd_km if what == "drbd-km" else what
        pkgs = _stack(cluster, drop=name)
        missing = next(p for p in stack_rpms(cluster) if p.startswith(name))
    bindir = _installed(tmp_path, pkgs)
    ks = render_kickstart(cluster, cluster.nodes[0])
    assert "%post --interpreter=/bin/bash --log=/root/an-cluster-ks-post.log --erroronfail" in ks
    proc = subprocess.run(["bash", "-c", _check_block(ks)], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"})
    assert proc.returncode == 1
    assert f"not installed: {missing}" in proc.stderr and "stopping the install" in proc.stderr
    if what == "stock-kernel":
        assert "kernel-2.6.33.3-85.fc13" in proc.stderr  # says what anaconda installed instead
