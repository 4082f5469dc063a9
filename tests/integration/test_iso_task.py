"""`invoke iso` end to end on the project's own cluster.yaml: render + validate, then the disc."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, need_tool
from tests.fixtures import f13base


def invoke(*args, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def extract(image: Path, path: str) -> bytes:
    return subprocess.run(["isoinfo", "-R", "-i", str(image), "-x", path], check=True,
                          capture_output=True).stdout


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    need_tool("genisoimage", "isoinfo", "implantisomd5", "checkisomd5", "createrepo_c", "rpmbuild",
              "shellcheck")
    return f13base.build_base(tmp_path_factory.mktemp("taskbase"))


def our_rpms(build: Path) -> list[Path]:
    """Stand-ins for what `invoke rpms` puts in BUILD/rpms (the kickstart's kernel, xen, drbd-km, ...)."""
    return f13base.build_rpms(build / "rpms", f13base.our_packages())


def test_invoke_iso_remaster_then_up_to_date(tmp_path, base):
    build = tmp_path / "build"
    our_rpms(build)
    first = invoke("iso", "--build-dir", build, "--base", base)
    assert first.returncode == 0, first.stdout + first.stderr
    iso = build / "out" / "an-cluster.iso"
    assert f"iso: {iso} built" in first.stdout
    for node in ("an-node01", "an-node02"):
        assert extract(iso, f"/ks/{node}.ks") == (build / "kickstart" / f"{node}.ks").read_bytes()
        assert extract(iso, f"/an-cluster/nodes/{node}/etc/hosts") == \
            (build / "nodes" / node / "etc" / "hosts").read_bytes()
    cfg = extract(iso, "/isolinux/isolinux.cfg").decode()
    assert "Install an-node01.alteeve.com (an-cluster): ERASES ALL DISKS" in cfg
    firstboot = extract(iso, "/firstboot/an-cluster-firstboot")
    assert firstboot == (REPO / "overlay" / "firstboot" / "an-cluster-firstboot").read_bytes()
    assert subprocess.run(["checkisomd5", str(iso)], capture_output=True).returncode == 0
    manifest = json.loads((build / "out" / "manifest.json").read_text())
    assert "definition" in manifest["inputs"]

    again = invoke("iso", "--build-dir", build, "--base", base)
    assert again.returncode == 0 and "up to date" in again.stdout
    console = invoke("iso", "--build-dir", build, "--base", base, "--console", "ttyS1,57600")
    assert console.returncode == 0 and "input changed: menu" in console.stderr
    assert "console=ttyS1,57600" in extract(iso, "/isolinux/isolinux.cfg").decode()


def test_invoke_iso_addon_and_bad_base(tmp_path):
    build = tmp_path / "build"
    addon = invoke("iso", "--build-dir", build)
    assert addon.returncode == 0, addon.stdout + addon.stderr
    assert (build / "out" / "an-cluster-addon.iso").is_file()
    assert "does not boot" in addon.stderr and "--base" in addon.stderr

    junk = tmp_path / "junk.iso"
    junk.write_bytes(b"\0" * 100_000)
    bad = invoke("iso", "--build-dir", build, "--base", junk)
    assert bad.returncode == 2
    assert "error: base" in bad.stderr and "not an ISO9660 image" in bad.stderr
    assert "Traceback" not in bad.stderr
    # the earlier add-on disc is untouched, nothing else appeared
    assert sorted(p.name for p in (build / "out").iterdir()) == [
        "an-cluster-addon.iso", "an-cluster-addon.iso.sha256", "manifest.json"]


def test_invoke_verify_repro(tmp_path, base):
    our_rpms(tmp_path / "build")
    res = invoke("verify-repro", "--build-dir", tmp_path / "build", "--base", base)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "byte-identical" in res.stdout


def test_invoke_iso_indexes_build_rpms_when_there_is_no_repo(tmp_path, base):
    build = tmp_path / "build"
    rpms = f13base.build_rpms(build / "rpms")
    res = invoke("iso", "--build-dir", build, "--base", base)
    assert res.returncode == 2 and "package an-cluster-firstboot: our package" in res.stderr
    assert not (build / "out").exists()  # stopped before writing the disc
    res = invoke("iso", "--build-dir", build, "--base", base, "--allow-missing-packages")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "has no an-cluster-firstboot package" in res.stderr
    assert "warning: the install will stop at a Missing Package dialog: package an-cluster-firstboot" in res.stderr
    listing = subprocess.run(["isoinfo", "-R", "-f", "-i", str(build / "out" / "an-cluster.iso")],
                             check=True, capture_output=True, text=True).stdout.split()
    for p in rpms:
        assert f"/an-cluster/{p.name}" in listing


def test_iso_is_the_same_under_another_umask_time_zone_and_locale(tmp_path, base):
    import hashlib
    import os

    import shutil

    rpms = our_rpms(tmp_path / "shared")  # the same packages for both (the stand-ins are not reproducible)

    def build(name, umask, env):
        shutil.copytree(rpms[0].parent, tmp_path / name / "rpms")
        res = subprocess.run([sys.executable, "-m", "invoke", "iso", "--build-dir", str(tmp_path / name), "--base",
                              str(base)], cwd=REPO, capture_output=True, text=True, timeout=600,
                             env={**os.environ, **env}, preexec_fn=lambda: os.umask(umask))
        assert res.returncode == 0, res.stderr
        return hashlib.sha256((tmp_path / name / "out" / "an-cluster.iso").read_bytes()).hexdigest()

    assert build("a", 0o022, {"TZ": "UTC", "LC_ALL": "C.UTF-8"}) == \
        build("b", 0o077, {"TZ": "Pacific/Chatham", "LC_ALL": "C"})
