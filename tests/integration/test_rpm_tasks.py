"""The invoke tasks end to end, as a user runs them: rpms, rpm-info, verify-rpms, sources."""
from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO, need_tool


def invoke(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, capture_output=True, text=True, env=env,
                          timeout=600)


def test_rpms_info_verify_for_the_firstboot_package(tmp_path):
    need_tool("rpmbuild", "rpmspec", "createrepo_c")
    build = str(tmp_path / "build")
    first = invoke("rpms", "--backend", "rpmbuild", "--only", "an-cluster-firstboot", "--build-dir", build)
    assert first.returncode == 0, first.stderr
    assert "built: an-cluster-firstboot (no previous build)" in first.stdout
    assert f"repo: {build}/repo" in first.stdout
    lint = subprocess.run([need_tool("rpmlint")["rpmlint"], "-c", str(REPO / "rpmspecs" / "rpmlint.toml"),
                           *map(str, (tmp_path / "build").glob("*rpms/*.rpm"))], capture_output=True, text=True)
    assert lint.returncode == 0 and "2 packages and 0 specfiles checked; 0 errors, 0 warnings" in lint.stdout, lint.stdout
    second = invoke("rpms", "--backend", "rpmbuild", "--only", "an-cluster-firstboot", "--build-dir", build)
    assert second.returncode == 0 and "up to date: an-cluster-firstboot" in second.stdout

    info = invoke("rpm-info", "--build-dir", build, "--files")
    assert info.returncode == 0, info.stdout + info.stderr
    assert "an-cluster-firstboot-" in info.stdout and ".fc13.noarch  payload=gzip  buildhost=build.an-cluster" in info.stdout
    assert "/var/lib/an-cluster/stage" in info.stdout

    verify = invoke("verify-rpms", "--backend", "rpmbuild", "--only", "an-cluster-firstboot", "--build-dir", build)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "identical: an-cluster-firstboot-" in verify.stdout
    assert "rebuilt byte-for-byte identical" in verify.stdout


def test_rpmbuild_refuses_the_kernel_with_a_hint(tmp_path):
    need_tool("rpmbuild", "rpmspec")
    res = invoke("rpms", "--backend", "rpmbuild", "--only", "kernel", "--build-dir", str(tmp_path / "b"))
    assert res.returncode == 2
    assert "cannot build kernel on this host" in res.stderr and "--backend mock" in res.stderr
    assert "Traceback" not in res.stderr


def test_sources_offline_lists_everything_missing(tmp_path):
    cache = tmp_path / "cache"
    res = invoke("sources", "--offline", env_extra={"AN_SOURCES_CACHE": str(cache)})
    assert res.returncode == 2
    err = res.stderr
    for name, url in [
        ("linux-2.6.32.tar.bz2", "https://www.kernel.org/pub/linux/kernel/v2.6/linux-2.6.32.tar.bz2"),
        ("xen-4.0.1.tar.gz", "https://downloads.xenproject.org/release/xen/4.0.1/xen-4.0.1.tar.gz"),
        ("drbd-8.3.7.tar.gz", "https://pkg.linbit.com/downloads/drbd/8.3/drbd-8.3.7.tar.gz"),
        ("grub-0.97.tar.gz", "https://xenbits.xen.org/xen-extfiles/grub-0.97.tar.gz"),
    ]:
        assert name in err and url in err and str(cache / name) in err
    assert "xen.pvops.patch" in err and "no known download URL" in err
    assert err.count("drbd-8.3.7.tar.gz: ") == 1  # shared by drbd and drbd-km, listed once
    assert "Traceback" not in err


def test_rpm_info_on_garbage_is_a_clear_error(tmp_path):
    bad = tmp_path / "junk-1-1.noarch.rpm"
    bad.write_bytes(b"\x00" * 200)
    res = invoke("rpm-info", "--path", str(bad))
    assert res.returncode == 2 and f"cannot read {bad} as an RPM" in res.stderr


def test_drbd_km_for_a_kernel_the_chain_does_not_build_is_refused(tmp_path):
    need_tool("rpmspec")
    res = invoke("rpms", "--backend", "mock", "--only", "drbd-km", "--kernel", "2.6.32.21-170.xendom0.fc12",
                 "--build-dir", str(tmp_path / "b"))
    assert res.returncode == 2
    assert "is not the kernel" in res.stderr and "2.6.32.23-170.dom0_an1.fc13" in res.stderr


def test_rpms_without_only_skips_what_cannot_be_built_here_and_says_why(tmp_path):
    """fence-na is noarch, but its tarball has no locked checksum: skipped with the lock line,
    not a failure of the whole run (which builds the firstboot package)."""
    need_tool("rpmbuild", "rpmspec", "createrepo_c")
    res = invoke("rpms", "--backend", "rpmbuild", "--build-dir", str(tmp_path / "b"),
                 env_extra={"AN_SOURCES_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "built: an-cluster-firstboot" in res.stdout
    out = res.stdout + res.stderr
    assert "not building fence-na: no checksum locked for fence-agents-3.1.0.tar.gz" in out
    assert "rpmspecs/fence-na/sources.lock:9" in out
