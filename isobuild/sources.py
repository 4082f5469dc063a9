"""Locked upstream sources: parse rpmspecs/<pkg>/sources.lock, download into a cache, verify.

A lock line is `<file> <checksum> <url>`:
- checksum `sha256:<hex>` is the normal case; `sha1:`/`md5:` are accepted but flagged as weak
  (history kept nothing better); `unknown` means no checksum was ever published, and such a
  file is refused until someone verifies it (upstream signature) and records its sha256;
- url `none` means there is no known download: the file must be put into the cache by hand.

A file in the cache is used only after its checksum matched; a mismatch deletes it.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from . import log
from .errors import Problem, ProblemsError
from .outputs import atomic_file

ALGOS = {"sha256": 64, "sha1": 40, "md5": 32}
WEAK = {"sha1", "md5"}
LOCK_NAME = "sources.lock"


def default_cache_dir() -> Path:
    env = os.environ.get("AN_SOURCES_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "an-cluster" / "sources"


@dataclass(frozen=True)
class LockedSource:
    package: str
    file: str
    algo: str | None  # None = "unknown"
    digest: str | None
    url: str | None  # None = "none"
    lock: Path
    line: int

    @property
    def weak(self) -> bool:
        return self.algo in WEAK

    @property
    def checksum(self) -> str:
        return f"{self.algo}:{self.digest}" if self.algo else "unknown"


def parse_lock(path: Path, package: str | None = None) -> list[LockedSource]:
    """Every entry of one sources.lock; all syntax problems are reported together."""
    path = Path(path)
    package = package or path.parent.name
    entries: list[LockedSource] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = "" if raw.lstrip().startswith("#") else raw.strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 3:
            problems.append(Problem(str(path), n, package, f"expected `<file> <checksum> <url>`, got {len(fields)} fields",
                                    "one source per line; comments start with #"))
            continue
        name, checksum, url = fields
        if "/" in name or name in (".", ".."):
            problems.append(Problem(str(path), n, package, f"file name must be a plain name: {name!r}"))
            continue
        if name in seen:
            problems.append(Problem(str(path), n, package, f"{name} is locked twice (first on line {seen[name]})"))
            continue
        seen[name] = n
        algo = digest = None
        if checksum != "unknown":
            m = re.fullmatch(r"(sha256|sha1|md5):([0-9a-f]+)", checksum)
            if not m or len(m.group(2)) != ALGOS[m.group(1)]:
                problems.append(Problem(str(path), n, f"{package}.{name}", f"bad checksum {checksum!r}",
                                        "use sha256:<64 hex digits> (or md5:/sha1: only if nothing better exists), or `unknown`"))
                continue
            algo, digest = m.group(1), m.group(2)
        if url != "none" and not re.match(r"(https?|ftp|file)://", url):
            problems.append(Problem(str(path), n, f"{package}.{name}", f"bad url {url!r}",
                                    "an http(s)/ftp/file URL, or `none` when the file must be supplied by hand"))
            continue
        entries.append(LockedSource(package, name, algo, digest, None if url == "none" else url, path, n))
    if problems:
        raise ProblemsError(f"{path}: invalid sources.lock", problems)
    return entries


def file_digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify(src: LockedSource, path: Path) -> str | None:
    """None when `path` matches the lock, else the reason it does not."""
    if src.algo is None:
        return (f"no checksum is locked for {src.file} (its sha256 is {file_digest(path, 'sha256')}); "
                f"verify it against the upstream signature, then record `sha256:<hex>` in {src.lock}:{src.line}")
    got = file_digest(path, src.algo)
    if got != src.digest:
        return f"{src.algo} mismatch for {src.file}: expected {src.digest}, got {got}"
    return None


@dataclass
class FetchResult:
    present: list[Path]
    downloaded: list[str]
    weak: list[str]


def _download(url: str, dest: Path, timeout: float) -> None:
    """Download url to dest via a temp file, so a partial download never looks like a source (0600, as
    the cache's files always were)."""
    with atomic_file(dest, mode=0o600) as out, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
        shutil.copyfileobj(resp, out)


def fetch_sources(
    sources: Iterable[LockedSource],
    cache_dir: Path | None = None,
    *,
    download: bool = True,
    timeout: float = 60.0,
) -> FetchResult:
    """Make every locked source present and verified in `cache_dir`.

    Files already cached are re-verified; a mismatch deletes the file. Missing files are
    downloaded (unless `download` is False). Anything still missing or unverified ends in one
    ProblemsError listing each file, its URL and where to put it by hand.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    problems: list[Problem] = []
    present: list[Path] = []
    downloaded: list[str] = []
    weak: list[str] = []
    for src in sources:
        dest = cache / src.file
        if dest.exists():
            problem = _check_cached(src, dest)
        else:
            problem = _fetch_missing(src, dest, download, timeout)
            if problem is None:
                downloaded.append(src.file)
        if problem is not None:
            problems.append(problem)
            continue
        present.append(dest)
        if src.weak:
            weak.append(src.file)
    for name in weak:
        log.warn(f"sources: {name} is verified only with a weak checksum (md5/sha1); record its sha256 once trusted")
    if problems:
        raise ProblemsError(f"sources missing or unverified (cache: {cache})", problems)
    return FetchResult(present, downloaded, weak)


def _check_cached(src: LockedSource, dest: Path) -> Problem | None:
    """None when the cached file matches the lock; a mismatch deletes it."""
    reason = verify(src, dest)
    if reason is None:
        return None
    if src.algo is not None:
        dest.unlink()  # a mismatch is never kept
        log.warn(f"deleted {dest}: {reason}")
    return Problem(str(src.lock), src.line, src.file, reason,
                   f"fetch it again from {src.url or '(no known URL)'} and put it at {dest} by hand")


def _fetch_missing(src: LockedSource, dest: Path, download: bool, timeout: float) -> Problem | None:
    """Download a source that is not in the cache and verify it; None when it is now present."""
    where = f"put it at {dest} by hand"
    if src.url is None or not download:
        why = "no known download URL" if src.url is None else "missing (downloads disabled)"
        hint = f"{where} (see the comment above it in {src.lock.name})"
        if src.algo is None:
            hint += "; no checksum is locked for it: verify it upstream, then record its sha256 in the lock"
        return Problem(str(src.lock), src.line, src.file, f"{why}; url: {src.url or 'none'}", hint)
    try:
        log.info(f"sources: downloading {src.url}")
        _download(src.url, dest, timeout)
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return Problem(str(src.lock), src.line, src.file, f"download failed: {src.url}: {reason}",
                       f"offline? download it elsewhere and {where}")
    reason = verify(src, dest)
    if reason is not None:
        if src.algo is not None:
            dest.unlink()
        return Problem(str(src.lock), src.line, src.file, reason,
                       "the download does not match the lock: check the URL or the lock entry")
    return None
