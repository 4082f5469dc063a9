"""isobuild.repo: createrepo_c output that yum 3.2 reads (gzip, sha256), read back with dnf, atomic."""
from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, need_tool
from repo_query import repoquery
from isobuild.errors import IsobuildError
from isobuild.repo import indexed_locations, make_repo

FIXTURES = REPO / "tests" / "fixtures" / "rpm"


@pytest.fixture(scope="module")
def fixture_rpm(tmp_path_factory) -> Path:
    """One real noarch RPM built with rpmbuild from the hello fixture spec."""
    tools = need_tool("rpmbuild")
    top = tmp_path_factory.mktemp("rpmtop")
    spec = FIXTURES / "an-fixture-hello" / "an-fixture-hello.spec"
    subprocess.run(
        [tools["rpmbuild"], "-bb", "--define", f"_topdir {top}", "--define", f"_sourcedir {spec.parent}",
         "--define", "dist .fc13", "--define", "_binary_payload w9.gzdio", str(spec)],
        check=True, capture_output=True,
    )
    (rpm,) = (top / "RPMS" / "noarch").glob("*.rpm")
    return rpm


def test_repo_is_gzip_sha256_and_readable(fixture_rpm, tmp_path):
    need_tool("createrepo_c")
    out = make_repo([fixture_rpm.parent], tmp_path / "repo", revision=1262304000)
    repomd = (out / "repodata" / "repomd.xml").read_text()
    assert "<revision>1262304000</revision>" in repomd
    assert 'checksum type="sha256"' in repomd
    hrefs = re.findall(r'<location href="([^"]+)"', repomd)
    assert hrefs and all(h.endswith(".xml.gz") for h in hrefs), hrefs
    assert not any("sqlite" in h or "zst" in h for h in hrefs)
    for h in hrefs:
        with gzip.open(out / h) as fh:  # really gzip, not just named so
            assert fh.read(5) == b"<?xml"
    assert indexed_locations(out) == {fixture_rpm.name}
    assert repoquery(out, tmp_path) == ["an-fixture-hello-1.0-1.fc13.noarch"]


def test_repo_is_reproducible(fixture_rpm, tmp_path):
    need_tool("createrepo_c")
    a = make_repo([fixture_rpm.parent], tmp_path / "a", revision=1262304000)
    b = make_repo([fixture_rpm.parent], tmp_path / "b", revision=1262304000)
    for name in sorted(p.name for p in (a / "repodata").iterdir()):
        assert (a / "repodata" / name).read_bytes() == (b / "repodata" / name).read_bytes(), name


def test_corrupt_rpm_fails_and_keeps_old_repo(fixture_rpm, tmp_path):
    need_tool("createrepo_c")
    good = make_repo([fixture_rpm.parent], tmp_path / "repo")
    before = sorted(p.name for p in good.iterdir())
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    shutil.copy(fixture_rpm, bad_dir)
    (bad_dir / "junk-1-1.noarch.rpm").write_bytes(b"not an rpm")
    with pytest.raises(IsobuildError, match="could not read: .*junk-1-1.noarch.rpm"):
        make_repo([bad_dir], tmp_path / "repo")
    assert sorted(p.name for p in good.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".repo.tmp")]


def test_no_rpms_is_a_clear_error(tmp_path):
    need_tool("createrepo_c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IsobuildError, match="no binary RPMs found") as exc:
        make_repo([tmp_path / "empty"], tmp_path / "repo")
    assert "invoke rpms" in exc.value.hint
    with pytest.raises(IsobuildError, match="does not exist"):
        make_repo([tmp_path / "missing"], tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_conflicting_duplicates_are_refused(fixture_rpm, tmp_path):
    need_tool("createrepo_c")
    other = tmp_path / "other"
    other.mkdir()
    data = bytearray(fixture_rpm.read_bytes())
    data[-1] ^= 0xFF
    (other / fixture_rpm.name).write_bytes(bytes(data))
    with pytest.raises(IsobuildError, match="share the file name"):
        make_repo([fixture_rpm.parent, other], tmp_path / "repo")

