"""`invoke release` + `invoke verify-release`: build a release from real artifacts (an ISO made with
genisoimage, RPM + SRPM made with rpmbuild), verify it, tamper with it in each way, and sign it with a
throwaway GPG key generated in the test."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, need_tool

from isobuild import release
from isobuild.errors import IsobuildError, ProblemsError
from isobuild.loader import load_definition
from isobuild.render import render
from isobuild.stamps import Stamps

IPMI = REPO / "examples" / "ipmi-cluster.yaml"
FIXTURE_SPEC = REPO / "tests" / "fixtures" / "rpm" / "an-fixture-hello"


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    """A build dir with out/<cluster>.iso, rpms/ and srpms/, all made by the real tools."""
    tools = need_tool("rpmbuild", "genisoimage")
    build = tmp_path_factory.mktemp("build")
    top = tmp_path_factory.mktemp("rpmtop")
    shutil.copy(FIXTURE_SPEC / "hello.txt", top / "hello.txt")
    subprocess.run([tools["rpmbuild"], "-ba", "--quiet", "--define", f"_topdir {top}",
                    "--define", f"_sourcedir {top}", "--define", f"_rpmdir {build / 'rpms'}",
                    "--define", f"_srcrpmdir {build / 'srpms'}",
                    "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
                    str(FIXTURE_SPEC / "an-fixture-hello.spec")], check=True, capture_output=True)
    content = tmp_path_factory.mktemp("isocontent")
    (content / "README").write_text("release test image\n")
    (build / "out").mkdir()
    subprocess.run([tools["genisoimage"], "-quiet", "-r", "-V", "TEST", "-o", str(build / "out" / "vmcl-b.iso"),
                    str(content)], check=True, capture_output=True)
    _record(build)
    return build


def _record(build: Path) -> None:
    """What `invoke iso` and `invoke rpms` record of their outputs (identity and sha256)."""
    Stamps(build).save("iso-vmcl-b.iso", {}, [build / "out" / "vmcl-b.iso"])
    Stamps(build).save("rpm-an-fixture-hello", {}, sorted((build / "rpms").glob("*.rpm"))
                       + sorted((build / "srpms").glob("*.rpm")))


@pytest.fixture
def own_build(build_dir, tmp_path):
    """A copy of the build dir a test may damage."""
    copy = tmp_path / "build"
    shutil.copytree(build_dir, copy)
    _record(copy)
    return copy


@pytest.fixture(scope="module")
def cluster():
    return load_definition(IPMI)


@pytest.fixture(scope="module")
def gpg_home(tmp_path_factory):
    need_tool("gpg")
    home = Path(tmp_path_factory.mktemp("gnupg"))
    os.chmod(home, 0o700)
    subprocess.run(["gpg", "--homedir", str(home), "--batch", "--passphrase", "", "--quick-gen-key",
                    "AN Release Test <release-test@example.invalid>", "ed25519", "sign", "1d"],
                   check=True, capture_output=True)
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)


def _make(cluster, build_dir, tmp_path, include_secrets=False, **kw):
    """What `invoke release` does (pipeline.build_release): plan (nothing written yet), render into
    build_dir, then write the release (under tmp_path/release)."""
    plan = release.plan_release(cluster, build_dir, out_dir=tmp_path / "release", **kw)
    return release.build_release(cluster, render(cluster, build_dir), plan, include_secrets=include_secrets)


def _problems(root, home=None) -> str:
    return "\n".join(str(p) for p in release.check_release(root, home))


def test_release_layout_manifest_and_sums(cluster, build_dir, tmp_path):
    res = _make(cluster, build_dir, tmp_path, version="1.2.3")
    root = res.path
    assert root.name == "vmcl-b-1.2.3" and root.parent == tmp_path / "release"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert "iso/vmcl-b.iso" in files and "SHA256SUMS" in files and "manifest.json" in files
    assert any(f.startswith("rpms/an-fixture-hello-1.0-1") for f in files)
    assert any(f.endswith(".src.rpm") and f.startswith("srpms/") for f in files)
    assert {"kickstarts/node-b1.ks", "kickstarts/node-b2.ks"} <= set(files)
    m = json.loads((root / "manifest.json").read_text())
    listed = {a["path"]: a for a in m["artifacts"]}
    assert set(listed) == set(files) - {"SHA256SUMS", "manifest.json"}
    for rel, a in listed.items():
        assert a["size"] == (root / rel).stat().st_size
    assert m["git"]["commit"] and isinstance(m["git"]["dirty"], bool)
    assert m["inputs"]["definition"] == cluster.digest
    assert "rpmbuild" in m["tools"] and "python" in m["tools"]
    assert m["version"] == "1.2.3" and m["signing_key"] is None
    # SHA256SUMS is in sha256sum's own format
    subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=root, check=True)
    assert release.verify_release(root)["cluster"] == "vmcl-b"
    assert not list((tmp_path / "release").glob(".*"))  # no temp dirs left


def test_kickstart_secrets_redacted_unless_asked(cluster, build_dir, tmp_path):
    root_hash = cluster.install.root_password_hash.reveal().strip()
    fence = [d.password.reveal().strip() for d in cluster.fence_devices]
    res = _make(cluster, build_dir, tmp_path, version="r")
    for ks in (res.path / "kickstarts").iterdir():
        text = ks.read_text()
        assert root_hash not in text and not any(pw in text for pw in fence)
        assert "rootpw" in text and "<redacted>" in text
    m = json.loads((res.path / "manifest.json").read_text())
    # the authorized keys are redacted like the hash (release used to redact the hash alone)
    keys = [ln.strip() for ln in cluster.install.ssh_authorized_keys.reveal().splitlines() if ln.strip()]
    assert keys and not any(k in (res.path / "kickstarts" / "node-b1.ks").read_text() for k in keys)
    assert m["redacted"]["kickstarts/node-b1.ks"] == ["root password hash"] + [
        f"ssh authorized key {i}" for i in range(1, len(keys) + 1)]
    assert all(root_hash not in (res.path / f).read_text(errors="replace")
               for f in ("manifest.json", "SHA256SUMS"))
    full = _make(cluster, build_dir, tmp_path, version="s", include_secrets=True)
    text = (full.path / "kickstarts" / "node-b1.ks").read_text()
    assert root_hash in text and not any(pw in text for pw in fence)
    assert (full.path / "kickstarts" / "node-b1.ks").stat().st_mode & 0o077 == 0


def test_tampering_is_named(cluster, build_dir, tmp_path):
    res = _make(cluster, build_dir, tmp_path, version="t")
    root = res.path
    iso = root / "iso" / "vmcl-b.iso"
    _flip_byte(iso)
    out = _problems(root)
    assert "iso/vmcl-b.iso" in out and "content changed" in out
    with pytest.raises(ProblemsError, match="does NOT verify"):
        release.verify_release(root)

    res2 = _make(cluster, build_dir, tmp_path, version="t2")
    rpm = next((res2.path / "rpms").iterdir())
    rpm.unlink()
    assert f"rpms/{rpm.name}" in _problems(res2.path) and "missing" in _problems(res2.path)

    res3 = _make(cluster, build_dir, tmp_path, version="t3")
    mpath = res3.path / "manifest.json"
    m = json.loads(mpath.read_text())
    m["artifacts"][0]["sha256"] = "0" * 64
    mpath.write_text(json.dumps(m))
    out = _problems(res3.path)
    assert "manifest.json was edited" in out and "differs from manifest.json" in out

    res4 = _make(cluster, build_dir, tmp_path, version="t4")
    (res4.path / "rpms" / "trojan.rpm").write_bytes(b"not really")
    assert "rpms/trojan.rpm" in _problems(res4.path) and "extra file" in _problems(res4.path)

    res5 = _make(cluster, build_dir, tmp_path, version="t5")
    assert _problems(res5.path) == ""  # an untouched release passes (so the checks above can fail)


def test_signed_release_verifies_and_catches_consistent_edits(cluster, build_dir, tmp_path, gpg_home):
    res = _make(cluster, build_dir, tmp_path, version="signed", sign_key="release-test@example.invalid",
                gpg_homedir=gpg_home)
    root = res.path
    for name in ("SHA256SUMS.asc", "manifest.json.asc"):
        assert (root / name).read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    m = release.verify_release(root, gpg_home)
    assert m["signing_key"] == res.signed_by and len(res.signed_by) == 40
    # an attacker swaps an RPM and rewrites SHA256SUMS and the manifest consistently: only GPG catches it
    rpm = next((root / "rpms").iterdir())
    rpm.unlink()
    rpm.write_bytes(b"evil")
    digest = release.sha256_file(rpm)
    mm = json.loads((root / "manifest.json").read_text())
    for a in mm["artifacts"]:
        if a["path"] == f"rpms/{rpm.name}":
            a["sha256"], a["size"] = digest, 4
    (root / "manifest.json").write_text(json.dumps(mm, indent=1, sort_keys=True) + "\n")
    lines = [f"{release.sha256_file(root / rel)}  {rel}" for rel in
             sorted(line.split("  ", 1)[1] for line in (root / "SHA256SUMS").read_text().splitlines())]
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    out = _problems(root, gpg_home)
    assert "SHA256SUMS: GPG signature does not verify" in out
    assert "manifest.json: GPG signature does not verify" in out
    # a deleted signature is named too
    res2 = _make(cluster, build_dir, tmp_path, version="signed2", sign_key=res.signed_by, gpg_homedir=gpg_home)
    (res2.path / "SHA256SUMS.asc").unlink()
    assert "SHA256SUMS.asc" in _problems(res2.path, gpg_home) and "signature missing" in _problems(res2.path, gpg_home)


def test_bad_inputs(cluster, build_dir, tmp_path, gpg_home):
    _make(cluster, build_dir, tmp_path, version="dup")
    with pytest.raises(IsobuildError, match="already exists"):
        _make(cluster, build_dir, tmp_path, version="dup")
    with pytest.raises(IsobuildError, match="not usable in a directory name"):
        _make(cluster, build_dir, tmp_path, version="../x")
    with pytest.raises(IsobuildError, match="no GPG secret key matches"):
        _make(cluster, build_dir, tmp_path, version="k", sign_key="nobody@example.invalid", gpg_homedir=gpg_home)
    empty = tmp_path / "empty-build"
    empty.mkdir()
    with pytest.raises(IsobuildError, match="invoke iso"):
        _make(cluster, empty, tmp_path, version="e")
    assert not (tmp_path / "release" / "vmcl-b-k").exists() and not (tmp_path / "release" / "vmcl-b-e").exists()
    assert "not a directory" in _problems(tmp_path / "nope")


def test_invoke_verify_release_exit_codes(cluster, build_dir, tmp_path):
    """The task prints OK / names the problem and exits 2, without a traceback."""
    res = _make(cluster, build_dir, tmp_path, version="cli")
    ok = subprocess.run([sys.executable, "-m", "invoke", "verify-release", "--dir", str(res.path)],
                        cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stderr
    (res.path / "kickstarts" / "node-b1.ks").write_text("tampered\n")
    bad = subprocess.run([sys.executable, "-m", "invoke", "verify-release", "--dir", str(res.path)],
                         cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and "kickstarts/node-b1.ks" in bad.stderr and "Traceback" not in bad.stderr


def _flip_byte(path: Path, keep_mtime: bool = False) -> None:
    """Flip one byte in place (as a bad disk or a stray dd would), optionally keeping the mtime."""
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.seek(st.st_size // 2)
        b = fh.read(1)
        fh.seek(st.st_size // 2)
        fh.write(bytes([b[0] ^ 0x01]))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_build_output_is_refused_not_released(cluster, own_build, tmp_path, damage):
    iso = own_build / "out" / "vmcl-b.iso"
    if damage == "truncate":
        os.truncate(iso, iso.stat().st_size // 2)
    else:
        _flip_byte(iso, keep_mtime=True)  # identity unchanged: only the content check can see it
    with pytest.raises(IsobuildError, match="vmcl-b.iso is not what its stage built"):
        _make(cluster, own_build, tmp_path, version="bad")
    assert not (tmp_path / "release").exists() or not list((tmp_path / "release").iterdir())


def test_damaged_rpm_is_refused(cluster, own_build, tmp_path):
    _flip_byte(next((own_build / "rpms").glob("*.rpm")), keep_mtime=True)
    with pytest.raises(IsobuildError, match="is not what its stage built"):
        _make(cluster, own_build, tmp_path, version="bad")


def test_release_shares_no_inode_and_keeps_secrets_private(cluster, own_build, tmp_path):
    res = _make(cluster, own_build, tmp_path, version="ino")
    src, dst = own_build / "out" / "vmcl-b.iso", res.path / "iso" / "vmcl-b.iso"
    assert src.stat().st_ino != dst.stat().st_ino
    _flip_byte(src)  # a later in-place write into build/ ...
    assert _problems(res.path) == ""  # ... does not change the release
    assert dst.stat().st_mode & 0o777 == 0o600 and (res.path / "iso").stat().st_mode & 0o777 == 0o700
    assert all((res.path / f).stat().st_mode & 0o777 == 0o644 for f in ("SHA256SUMS", "manifest.json"))


def test_artifact_nobody_recorded_is_refused(cluster, own_build, tmp_path):
    (own_build / ".stamps" / "iso-vmcl-b.iso.json").unlink()
    with pytest.raises(IsobuildError, match="no stage recorded its sha256"):
        _make(cluster, own_build, tmp_path, version="x")
    iso = own_build / "out" / "vmcl-b.iso"
    (own_build / "out" / "vmcl-b.iso.sha256").write_text(f"{release.sha256_file(iso)}  vmcl-b.iso\n")
    assert _make(cluster, own_build, tmp_path, version="y").artifacts > 0  # an ISO with its sha256sum line


def test_invoke_release_prints_its_line_once(own_build, tmp_path):
    res = subprocess.run([sys.executable, "-m", "invoke", "release", "--cluster", str(IPMI), "--build-dir",
                          str(own_build), "--version", "once"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (res.stdout + res.stderr).count("release: ") == 1
    ok = subprocess.run([sys.executable, "-m", "invoke", "verify-release", "-d",
                         str(own_build / "release" / "vmcl-b-once")], cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stderr


def _stick(build: Path) -> Path:
    """out/<cluster>-usb.img as `invoke usb` leaves it: the image and its stamp with its sha256."""
    img = build / "out" / "vmcl-b-usb.img"
    img.write_bytes(os.urandom(1 << 16))
    Stamps(build).save("usb", {}, [img])
    return img


def test_the_stick_image_is_released_private_and_checked(cluster, own_build, tmp_path):
    img = _stick(own_build)
    res = _make(cluster, own_build, tmp_path, version="usb")
    dst = res.path / "usb" / "vmcl-b-usb.img"
    assert dst.read_bytes() == img.read_bytes() and _problems(res.path) == ""
    assert dst.stat().st_mode & 0o777 == 0o600 and dst.parent.stat().st_mode & 0o777 == 0o700
    m = {a["path"]: a for a in json.loads((res.path / "manifest.json").read_text())["artifacts"]}
    assert m["usb/vmcl-b-usb.img"]["kind"] == "usb" and m["usb/vmcl-b-usb.img"]["contains_secrets"]
    os.truncate(img, 1 << 15)
    with pytest.raises(IsobuildError, match="vmcl-b-usb.img is not what its stage built"):
        _make(cluster, own_build, tmp_path, version="usb-bad")


def test_the_stick_is_left_out_with_an_iso_from_elsewhere(cluster, own_build, tmp_path):
    _stick(own_build)
    iso = own_build / "out" / "vmcl-b.iso"
    res = _make(cluster, own_build, tmp_path, version="other", iso=iso)
    assert not (res.path / "usb").exists()


def test_the_secrets_warning_names_only_what_was_built(cluster, own_build, tmp_path):
    (dvd_only,) = [w for w in _make(cluster, own_build, tmp_path, version="w1").warnings if "treat the release" in w]
    assert dvd_only.startswith("the ISO carries the root password hash") and "USB" not in dvd_only
    _stick(own_build)
    (both,) = [w for w in _make(cluster, own_build, tmp_path, version="w2").warnings if "treat the release" in w]
    assert both.startswith("the ISO and the USB stick image carry the root password hash")
