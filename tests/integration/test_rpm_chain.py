"""The RPM pipeline for real with the rpmbuild backend: fixture specs and the firstboot package go
through SRPM -> rpmbuild --rebuild -> build/rpms -> createrepo_c, with the content-hash cache,
chain invalidation, failure handling, the rpm 4.8 checks and the double-build comparison."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, need_tool
from repo_query import repoquery
from isobuild.errors import IsobuildError
from isobuild.rpmbackends import BuildFailed
from isobuild.rpmheader import normalise_rpm_header
from isobuild.rpminspect import check_drbd_km, compare_rpms, rpm48_problems, rpm_info
from isobuild.rpmplan import BuildConfig
from isobuild.rpms import build_chain, verify_rebuild

FIXTURES = REPO / "tests" / "fixtures" / "rpm"
CHAIN = ("an-fixture-hello", "drbd-km", "an-fixture-needs")
DOM0 = "2.6.32.23-170.dom0_an1.fc13.x86_64"


@pytest.fixture
def specs(tmp_path) -> Path:
    need_tool("rpmbuild", "rpmspec", "createrepo_c")
    dst = tmp_path / "specs"
    shutil.copytree(FIXTURES, dst)
    return dst


def cfg_for(tmp_path: Path, specs: Path, chain=CHAIN, **kw) -> BuildConfig:
    return BuildConfig(build_dir=tmp_path / "build", backend="rpmbuild", specs_dir=specs, chain=chain, **kw)


def test_chain_builds_then_caches_then_rebuilds_what_changed(tmp_path, specs, capsys):
    cfg = cfg_for(tmp_path, specs)
    first = build_chain(cfg)
    assert first.built == list(CHAIN)
    assert set(first.reasons.values()) == {"no previous build"}
    assert sorted(p.name for p in cfg.rpms_dir.glob("*.rpm")) == [
        "an-fixture-hello-1.0-1.fc13.noarch.rpm",
        "an-fixture-needs-2.0-1.fc13.noarch.rpm",
        f"drbd-km-{DOM0.replace('-', '_')}-8.3.7-12.fc13.noarch.rpm",
    ]
    assert len(list(cfg.srpms_dir.glob("*.src.rpm"))) == 3
    assert repoquery(cfg.repo_dir, tmp_path) == [
        "an-fixture-hello-1.0-1.fc13.noarch",
        "an-fixture-needs-2.0-1.fc13.noarch",
        f"drbd-km-{DOM0.replace('-', '_')}-8.3.7-12.fc13.noarch",
    ]
    for p in [*cfg.rpms_dir.glob("*.rpm"), *cfg.srpms_dir.glob("*.rpm")]:
        assert rpm48_problems(p) == [], p
        info = rpm_info(p)
        assert info.payload_compressor == "gzip" and info.buildhost == "build.an-cluster"
        assert check_drbd_km(info) == []

    capsys.readouterr()
    again = build_chain(cfg)
    assert again.built == [] and again.up_to_date == list(CHAIN)
    assert "nothing to build" in capsys.readouterr().err

    # A source of the first package changes: it and everything after it rebuild, saying why.
    (specs / "an-fixture-hello" / "hello.txt").write_text("Hello again.\n")
    third = build_chain(cfg)
    assert third.built == list(CHAIN)
    assert third.reasons["an-fixture-hello"] == "input changed: file:hello.txt"
    assert third.reasons["drbd-km"] == "input changed: earlier:an-fixture-hello"
    assert third.reasons["an-fixture-needs"] == "input changed: earlier:drbd-km"

    # Only the last spec changes: only it rebuilds.
    spec = specs / "an-fixture-needs" / "an-fixture-needs.spec"
    spec.write_text(spec.read_text().replace("echo \"needs an-fixture-hello\"", "echo \"needs hello v2\""))
    fourth = build_chain(cfg)
    assert fourth.built == ["an-fixture-needs"]
    assert fourth.reasons["an-fixture-needs"] == "input changed: spec"
    assert fourth.up_to_date == ["an-fixture-hello", "drbd-km"]


def test_failure_stops_the_chain_and_keeps_the_old_repo(tmp_path, specs):
    good = cfg_for(tmp_path, specs, chain=("an-fixture-hello", "an-fixture-needs"))
    build_chain(good)
    repomd = (good.repo_dir / "repodata" / "repomd.xml").read_bytes()
    bad = cfg_for(tmp_path, specs, chain=("an-fixture-hello", "an-fixture-broken", "an-fixture-needs"))
    (specs / "an-fixture-hello" / "hello.txt").write_text("changed, so the chain rebuilds\n")
    with pytest.raises(BuildFailed) as exc:
        build_chain(bad)
    text = str(exc.value)
    log = good.build_dir / "logs" / "rpms" / "an-fixture-broken.log"
    assert "an-fixture-broken: rpmbuild --rebuild failed" in text
    assert f"log: {log}" in text and "deliberate failure in %build" in text  # the tail of the log
    assert "deliberate failure" in log.read_text()
    chain_log = (good.build_dir / "logs" / "rpms" / "chain.log").read_text()  # the stage's steps, timed
    assert "rpms: an-fixture-broken: rpmbuild: failed after" in chain_log and "DEBUG rpms: failed after" in chain_log
    # needs (after the failure) was not rebuilt; the repo is exactly the previous one.
    assert (good.repo_dir / "repodata" / "repomd.xml").read_bytes() == repomd
    assert not list(good.build_dir.glob(".repo.tmp*"))
    assert "an-fixture-broken" not in " ".join(p.name for p in good.rpms_dir.iterdir())


def test_double_build_is_identical_and_differences_are_named(tmp_path, specs):
    cfg = cfg_for(tmp_path, specs)
    report = verify_rebuild(cfg)
    assert report.ok, report.different
    assert len(report.identical) == 6  # 3 RPMs + 3 SRPMs
    for name in report.identical:
        a = next(cfg.build_dir.glob(f"*rpms/{name}"))
        b = next((cfg.build_dir / "verify").glob(f"*rpms/{name}"))
        assert a.read_bytes() == b.read_bytes()  # byte-for-byte, not only "equal enough"

    # A real difference is named: the changed file and the header fields that carry it.
    old = tmp_path / "old.rpm"
    shutil.copy(cfg.rpms_dir / "an-fixture-hello-1.0-1.fc13.noarch.rpm", old)
    (specs / "an-fixture-hello" / "hello.txt").write_text("different content\n")
    build_chain(cfg, ["an-fixture-hello"], repo=False)
    diffs = compare_rpms(old, cfg.rpms_dir / "an-fixture-hello-1.0-1.fc13.noarch.rpm")
    text = "\n".join(diffs)
    assert "payload files differ: ./usr/share/an-fixture-hello/hello.txt" in text
    assert "header filesizes" in text or "header filemd5s" in text


def test_firstboot_package_follows_the_overlay_layout(tmp_path):
    need_tool("rpmbuild", "rpmspec", "createrepo_c", "rpm")
    overlay = tmp_path / "firstboot"
    (overlay / "init.d").mkdir(parents=True)
    (overlay / "lib").mkdir()
    (overlay / "steps").mkdir()
    (overlay / "VERSION").write_text("1.2.3\n")
    (overlay / "an-cluster-firstboot").write_text("#!/bin/bash\necho runner\n")
    (overlay / "init.d" / "an-cluster-firstboot").write_text("#!/bin/bash\n# chkconfig: 345 99 01\n")
    (overlay / "lib" / "common.sh").write_text("log() { echo \"$@\"; }\n")
    (overlay / "steps" / "10-network.sh").write_text("#!/bin/bash\n: network\n")
    (overlay / "steps" / "notes.txt").write_text("not a step\n")
    cfg = BuildConfig(build_dir=tmp_path / "build", backend="rpmbuild", chain=("an-cluster-firstboot",), firstboot_dir=overlay)
    res = build_chain(cfg)
    (rpm,) = res.rpms
    assert rpm.name == "an-cluster-firstboot-1.2.3-1.fc13.noarch.rpm"
    listing = subprocess.run(["rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]", str(rpm)],
                             check=True, capture_output=True, text=True).stdout.splitlines()
    files = dict(reversed(line.split(" ", 1)) for line in listing)
    assert files["/usr/sbin/an-cluster-firstboot"] == "-rwxr-xr-x"
    assert files["/etc/rc.d/init.d/an-cluster-firstboot"] == "-rwxr-xr-x"
    assert files["/usr/libexec/an-cluster-firstboot/lib/common.sh"] == "-rw-r--r--"
    assert files["/usr/libexec/an-cluster-firstboot/steps/10-network.sh"] == "-rwxr-xr-x"
    assert files["/var/lib/an-cluster/stage"].startswith("d")
    assert not any("notes.txt" in f for f in files)
    # The SRPM carries the version and the overlay: it rebuilds without this checkout.
    spec = subprocess.run(["rpm", "-qp", "--qf", "%{NAME}-%{VERSION}", str(res.srpms[0])],
                          check=True, capture_output=True, text=True).stdout
    assert spec == "an-cluster-firstboot-1.2.3"
    # The tree grows: a new step is a changed input and lands in the package.
    (overlay / "steps" / "20-drbd.sh").write_text("#!/bin/bash\n: drbd\n")
    res = build_chain(cfg)
    assert res.reasons["an-cluster-firstboot"] == "input changed: overlay"
    assert "/usr/libexec/an-cluster-firstboot/steps/20-drbd.sh" in rpm_info(res.rpms[0]).files


def test_firstboot_builds_from_an_empty_overlay(tmp_path):
    need_tool("rpmbuild", "rpmspec", "createrepo_c")
    cfg = BuildConfig(build_dir=tmp_path / "build", backend="rpmbuild", chain=("an-cluster-firstboot",),
                      firstboot_dir=tmp_path / "nothing-yet")
    res = build_chain(cfg)
    assert [p.name for p in res.rpms] == ["an-cluster-firstboot-0.0.0-1.fc13.noarch.rpm"]


def test_rpmbuild_backend_refuses_arch_packages(tmp_path):
    need_tool("rpmbuild", "rpmspec")
    if Path("/etc/fedora-release").exists():
        pytest.skip("a Fedora host may build them")
    cfg = BuildConfig(build_dir=tmp_path / "build", backend="rpmbuild")
    for name in ("kernel", "xen", "drbd-km"):
        with pytest.raises(IsobuildError, match=f"cannot build {name} on this host") as exc:
            build_chain(cfg, [name])
        assert "--backend mock" in exc.value.hint
    assert not (tmp_path / "build" / "rpms").exists()


def test_drbd_km_built_for_another_kernel_and_a_lying_one(tmp_path, specs):
    other = "2.6.32.21-170.xendom0.fc12"
    cfg = cfg_for(tmp_path, specs, chain=("drbd-km",), kernel_version=other)
    (rpm,) = build_chain(cfg).rpms
    info = rpm_info(rpm)
    assert info.name == "drbd-km-2.6.32.21_170.xendom0.fc12.x86_64"
    assert check_drbd_km(info) == []
    spec = specs / "drbd-km" / "drbd-km.spec"
    spec.write_text(spec.read_text().replace("Requires:       kernel-uname-r = %{kernelversion}",
                                             "Requires:       kernel-uname-r = 2.6.33.3-85.fc13.x86_64"))
    (rpm,) = build_chain(cfg).rpms
    problems = check_drbd_km(rpm_info(rpm))
    assert problems and "requires 2.6.33.3-85.fc13.x86_64" in problems[0]


def test_rpm48_header_normalisation_keeps_digests_valid(tmp_path):
    """What the mock backend does to rpm 4.8's time()-stamped headers, tested on a host build."""
    tools = need_tool("rpmbuild", "rpm")
    top = tmp_path / "top"
    subprocess.run([tools["rpmbuild"], "-bb", "--define", f"_topdir {top}", "--define",
                    f"_sourcedir {FIXTURES / 'an-fixture-hello'}", "--define", "_binary_payload w9.gzdio",
                    str(FIXTURES / "an-fixture-hello" / "an-fixture-hello.spec")], check=True, capture_output=True)
    (rpm,) = (top / "RPMS" / "noarch").glob("*.rpm")
    host = subprocess.run([tools["rpm"], "-qp", "--qf", "%{BUILDHOST}", str(rpm)], check=True,
                          capture_output=True, text=True).stdout
    assert normalise_rpm_header(rpm, 1262347200, buildhost=host) is True
    assert normalise_rpm_header(rpm, 1262347200, buildhost=host) is False  # idempotent
    assert rpm_info(rpm).buildtime == 1262347200
    check = subprocess.run([tools["rpm"], "-Kv", str(rpm)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "MD5 digest: OK" in check.stdout and "Header SHA1 digest: OK" in check.stdout


def test_missing_or_bad_locked_source_stops_before_building(tmp_path, specs):
    """A locked source that cannot be fetched or does not match: clear error, nothing built, repo kept."""
    import functools
    import hashlib
    import http.server
    import threading

    www = tmp_path / "www"
    www.mkdir()
    (www / "upstream-1.0.tar.gz").write_bytes(b"tampered upstream")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        good = cfg_for(tmp_path, specs, chain=("an-fixture-hello",), sources_cache=tmp_path / "cache")
        build_chain(good)
        repomd = (good.repo_dir / "repodata" / "repomd.xml").read_bytes()
        spec = specs / "an-fixture-hello" / "an-fixture-hello.spec"
        spec.write_text(spec.read_text().replace("Source0:        hello.txt",
                                                 f"Source0:        hello.txt\nSource1:        {url}/upstream-1.0.tar.gz\n"
                                                 f"Source2:        {url}/gone-2.0.tar.gz"))
        expected = hashlib.sha256(b"real upstream").hexdigest()
        (specs / "an-fixture-hello" / "sources.lock").write_text(
            f"upstream-1.0.tar.gz sha256:{expected} {url}/upstream-1.0.tar.gz\n"
            f"gone-2.0.tar.gz sha256:{'0' * 64} {url}/gone-2.0.tar.gz\n")
        with pytest.raises(IsobuildError) as exc:
            build_chain(good)
        text = str(exc.value)
        assert "sha256 mismatch for upstream-1.0.tar.gz" in text
        assert "gone-2.0.tar.gz" in text and "download failed" in text
        assert not (tmp_path / "cache" / "upstream-1.0.tar.gz").exists()
        assert (good.repo_dir / "repodata" / "repomd.xml").read_bytes() == repomd
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_mock_path(monkeypatch):
    """PATH with tests/fixtures/fake-mock/mock first: mock's CLI contract over a real rpmbuild, rpm-4.8 style."""
    need_tool("rpmbuild", "rpmspec", "createrepo_c")
    monkeypatch.setenv("PATH", f"{FIXTURES.parent / 'fake-mock'}:{__import__('os').environ['PATH']}")


def test_mock_backend_normalises_and_rebuilds_identically(tmp_path, fake_mock_path):
    overlay = tmp_path / "firstboot"
    (overlay / "steps").mkdir(parents=True)
    (overlay / "VERSION").write_text("2.0.0\n")
    (overlay / "an-cluster-firstboot").write_text("#!/bin/bash\necho runner\n")
    (overlay / "steps" / "10-network.sh").write_text("#!/bin/bash\n: network\n")
    cfg = BuildConfig(build_dir=tmp_path / "build", backend="mock", chain=("an-cluster-firstboot",), firstboot_dir=overlay)
    res = build_chain(cfg)
    (rpm,) = res.rpms
    info = rpm_info(rpm)
    assert info.buildtime == 1286884800  # rewritten from time() to the changelog date
    assert info.buildhost == "build.an-cluster"  # from the mock config's hostname
    mtimes = subprocess.run(["rpm", "-qp", "--qf", "[%{FILEMTIMES}\n]", str(rpm)], check=True,
                            capture_output=True, text=True).stdout.split()
    assert set(mtimes) == {"1286884800"}  # clamped by the spec itself: rpm 4.8 would not do it
    assert subprocess.run(["rpm", "-K", str(rpm)], capture_output=True).returncode == 0
    assert (cfg.build_dir / "mock" / "localrepo" / "repodata" / "repomd.xml").is_file()
    assert (cfg.build_dir / "mock" / "an-cluster-firstboot" / "build.log").is_file()
    report = verify_rebuild(cfg)
    assert report.ok, report.different


def test_mock_backend_failure_shows_the_build_log(tmp_path, specs, fake_mock_path):
    cfg = BuildConfig(build_dir=tmp_path / "build", backend="mock", specs_dir=specs,
                      chain=("an-fixture-hello", "an-fixture-broken", "an-fixture-needs"))
    with pytest.raises(BuildFailed) as exc:
        build_chain(cfg)
    log = cfg.build_dir / "mock" / "an-fixture-broken" / "build.log"
    assert f"an-fixture-broken: mock failed (exit 1); log: {log}" in str(exc.value)
    assert "deliberate failure in %build" in str(exc.value)
    assert [p.name for p in cfg.rpms_dir.glob("*.rpm")] == ["an-fixture-hello-1.0-1.fc13.noarch.rpm"]
    assert not cfg.repo_dir.exists()


def test_srpms_come_first_and_rpm48_incompatible_ones_stop_the_chain(tmp_path, specs):
    """A later package whose SRPM rpm 4.8 could not read (rich dependency) fails before anything compiles."""
    d = specs / "an-fixture-rich"
    d.mkdir()
    (d / "an-fixture-rich.spec").write_text(
        (specs / "an-fixture-needs" / "an-fixture-needs.spec").read_text()
        .replace("an-fixture-needs", "an-fixture-rich")
        .replace("Requires:       an-fixture-hello >= 1.0", "BuildRequires:  (bash or dash)"))
    cfg = cfg_for(tmp_path, specs, chain=("an-fixture-hello", "an-fixture-rich"))
    with pytest.raises(IsobuildError) as exc:
        build_chain(cfg)
    assert "an-fixture-rich-2.0-1.fc13.src.rpm would not install with Fedora 13's rpm 4.8" in str(exc.value)
    assert "rich dependency (bash or dash)" in str(exc.value)
    assert not cfg.rpms_dir.exists()  # an-fixture-hello, first in the chain, was not compiled either


def test_rpm48_check_catches_a_modern_package(tmp_path):
    """The rpm 4.8 check is real: a default-style zstd package is flagged."""
    tools = need_tool("rpmbuild")
    top = tmp_path / "top"
    proc = subprocess.run([tools["rpmbuild"], "-bb", "--define", f"_topdir {top}", "--define",
                           f"_sourcedir {FIXTURES / 'an-fixture-hello'}", "--define", "_binary_payload w19.zstdio",
                           str(FIXTURES / "an-fixture-hello" / "an-fixture-hello.spec")], capture_output=True, text=True)
    if proc.returncode != 0 and "zstd" in proc.stderr:
        pytest.skip("this rpm has no zstd support")
    assert proc.returncode == 0, proc.stderr
    (rpm,) = (top / "RPMS" / "noarch").glob("*.rpm")
    problems = rpm48_problems(rpm)
    assert any("payload compressor zstd" in p for p in problems), problems
    assert any("rpmlib(PayloadIsZstd)" in p for p in problems), problems
