"""Content-hash stamps: a stage reruns only when one of its named inputs changed, and says which.

A stamp is build/.stamps/<stage>.json holding {input name: digest}. Like osbuild's stage ids and
mkosi's have_cache, the stage key is the hash of its inputs; unlike a bare hash we keep the names so
a miss can say why.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from .outputs import write_file

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def sha256_tree(root: Path, exclude: Iterable[str] = ()) -> str:
    """Digest of a directory: relative paths, modes and contents, in sorted order."""
    root = Path(root)
    skip = set(exclude)
    h = hashlib.sha256()
    if not root.exists():
        return h.hexdigest()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        for name in sorted(filenames):
            if name in skip:
                continue
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            st = p.lstat()
            h.update(f"{rel}\0{st.st_mode & 0o7777:o}\0".encode())
            h.update(os.readlink(p).encode() if p.is_symlink() else sha256_file(p).encode())
            h.update(b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class StampCheck:
    up_to_date: bool
    reason: str  # "up to date", "no previous build", or "input changed: definition, overlay"


class Stamps:
    def __init__(self, build_dir: Path):
        self.dir = Path(build_dir) / ".stamps"

    def _path(self, stage: str) -> Path:
        return self.dir / f"{stage}.json"

    def load(self, stage: str) -> dict[str, str] | None:
        try:
            return json.loads(self._path(stage).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def check(self, stage: str, inputs: Mapping[str, str], outputs: Iterable[Path] = ()) -> StampCheck:
        old = self.load(stage)
        if old is None:
            return StampCheck(False, "no previous build")
        missing = [str(p) for p in outputs if not Path(p).exists()]
        if missing:
            return StampCheck(False, f"output missing: {', '.join(missing)}")
        changed = sorted(k for k in set(old) | set(inputs) if old.get(k) != inputs.get(k))
        if changed:
            return StampCheck(False, f"input changed: {', '.join(changed)}")
        return StampCheck(True, "up to date")

    def save(self, stage: str, inputs: Mapping[str, str]) -> None:
        write_file(self._path(stage), json.dumps(dict(inputs), sort_keys=True, indent=1) + "\n")

    def forget(self, stage: str) -> None:
        try:
            self._path(stage).unlink()
        except FileNotFoundError:
            pass
