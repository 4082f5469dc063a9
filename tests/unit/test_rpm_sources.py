"""isobuild.sources: lock parsing, download from a loopback HTTP server, checksum refusal, offline report."""
from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from conftest import REPO
from isobuild.errors import IsobuildError, ProblemsError
from isobuild.sources import fetch_sources, parse_lock


@pytest.fixture
def http_dir(tmp_path):
    """Serve tmp_path/www on 127.0.0.1 (an ephemeral port) for the test's duration."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def write_lock(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# test lock\n" + "\n".join(lines) + "\n")
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_real_lock_parses():
    locks = sorted((REPO / "rpmspecs").glob("*/sources.lock"))
    assert {p.parent.name for p in locks} >= {"kernel", "xen", "drbd", "drbd-km"}
    entries = {e.file: e for p in locks for e in parse_lock(p)}
    assert entries["linux-2.6.32.tar.bz2"].checksum == (
        "sha256:5099786d80b8407d98a619df00209c2353517f22d804fdd9533b362adcb4504e")
    assert entries["drbd-8.3.7.tar.gz"].weak  # md5 only: flagged
    assert entries["xen-4.0.1.tar.gz"].algo is None  # no published checksum


def test_bad_lock_reports_every_problem(tmp_path):
    lock = write_lock(tmp_path / "pkg" / "sources.lock", [
        "a.tar.gz sha256:abc https://example.invalid/a.tar.gz",
        "b.tar.gz sha256:" + "0" * 64 + " ftp:/bad",
        "c.tar.gz only-two",
        "../d.tar.gz md5:" + "0" * 32 + " none",
    ])
    with pytest.raises(ProblemsError) as exc:
        parse_lock(lock)
    text = str(exc.value)
    assert "4 problems" in text
    assert f"{lock}:2" in text and "bad checksum" in text
    assert f"{lock}:3" in text and "bad url" in text
    assert f"{lock}:4" in text and "fields" in text
    assert f"{lock}:5" in text and "plain name" in text


def test_download_verify_and_cache_hit(tmp_path, http_dir):
    www, url = http_dir
    data = b"upstream tarball contents\n" * 100
    (www / "good-1.0.tar.gz").write_bytes(data)
    lock = write_lock(tmp_path / "pkg" / "sources.lock", [f"good-1.0.tar.gz sha256:{sha256(data)} {url}/good-1.0.tar.gz"])
    cache = tmp_path / "cache"
    res = fetch_sources(parse_lock(lock), cache)
    assert res.downloaded == ["good-1.0.tar.gz"]
    assert (cache / "good-1.0.tar.gz").read_bytes() == data
    (www / "good-1.0.tar.gz").unlink()  # a second run must not need the server
    res = fetch_sources(parse_lock(lock), cache)
    assert res.downloaded == [] and res.present == [cache / "good-1.0.tar.gz"]


def test_checksum_mismatch_is_refused_and_deleted(tmp_path, http_dir):
    www, url = http_dir
    (www / "evil.tar.gz").write_bytes(b"tampered")
    lock = write_lock(tmp_path / "pkg" / "sources.lock", [f"evil.tar.gz sha256:{sha256(b'original')} {url}/evil.tar.gz"])
    cache = tmp_path / "cache"
    with pytest.raises(ProblemsError, match="sha256 mismatch for evil.tar.gz") as exc:
        fetch_sources(parse_lock(lock), cache)
    assert sha256(b"tampered") in str(exc.value)
    assert not (cache / "evil.tar.gz").exists()
    assert not list(cache.glob(".*part*"))
    # A bad file already in the cache is deleted too.
    (cache / "evil.tar.gz").write_bytes(b"tampered")
    with pytest.raises(ProblemsError, match="mismatch"):
        fetch_sources(parse_lock(lock), cache, download=False)
    assert not (cache / "evil.tar.gz").exists()


def test_offline_lists_every_missing_file_with_url_and_place(tmp_path, http_dir):
    www, url = http_dir
    lock = write_lock(tmp_path / "pkg" / "sources.lock", [
        f"one.tar.gz sha256:{'1' * 64} {url}/one.tar.gz",  # 404 on the server
        f"two.tar.bz2 md5:{'2' * 32} {url}/two.tar.bz2",
        "three.patch unknown none",
    ])
    cache = tmp_path / "cache"
    with pytest.raises(ProblemsError) as exc:
        fetch_sources(parse_lock(lock), cache)
    text = str(exc.value)
    assert "3 problems" in text
    for name in ("one.tar.gz", "two.tar.bz2", "three.patch"):
        assert name in text
        assert str(cache / name) in text
    assert f"{url}/one.tar.gz" in text and "download failed" in text
    assert "no known download URL" in text
    with pytest.raises(ProblemsError) as exc:
        fetch_sources(parse_lock(lock), cache, download=False)
    assert "downloads disabled" in str(exc.value) and f"{url}/two.tar.bz2" in str(exc.value)


def test_unknown_checksum_is_refused_with_its_sha256(tmp_path):
    lock = write_lock(tmp_path / "pkg" / "sources.lock", ["hand.patch unknown none"])
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "hand.patch").write_bytes(b"diff --git a/x b/x\n")
    with pytest.raises(IsobuildError) as exc:
        fetch_sources(parse_lock(lock), cache)
    assert sha256(b"diff --git a/x b/x\n") in str(exc.value)
    assert (cache / "hand.patch").exists()  # supplied by hand: kept, but not used


def test_weak_checksum_is_accepted_but_flagged(tmp_path, capsys):
    data = b"old tarball"
    lock = write_lock(tmp_path / "pkg" / "sources.lock", [f"old.tar.gz md5:{hashlib.md5(data).hexdigest()} none"])
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "old.tar.gz").write_bytes(data)
    res = fetch_sources(parse_lock(lock), cache)
    assert res.weak == ["old.tar.gz"]
    assert "weak checksum" in capsys.readouterr().err
