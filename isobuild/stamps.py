"""Content-hash stamps: a stage reruns only when one of its named inputs or its outputs changed, and says which.

A stamp is build/.stamps/<stage>.json holding {input name: digest} and its outputs. Like osbuild's stage ids and
mkosi's have_cache, the stage key is the hash of its inputs; unlike a bare hash we keep the names so
a miss can say why. Each output's size, mtime and inode are recorded too (and its sha256, which
`invoke release` checks): a truncated or replaced output is rebuilt, not called up to date. An output
that is a directory is recorded by its tree digest: an edited, added or removed file in it counts.

Every stage publishes the same way, through Stamps.publishing(): the stamp is dropped just before the
first output is replaced and saved, recording every output, once all are in place.

Every stage names its code the same way, as the input "code" = code_digest(<its module>): the module
plus every isobuild module it imports, at any depth (read with ast, so a new import needs no list to
be kept up to date). The data a stage reads (templates, overlay, specs) are inputs of their own.
"""
from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from . import paths
from .outputs import publish, write_file

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def sha256_tree(root: Path, *, modes: Callable[[int, bool], int] | None = None, dirs: bool = False) -> str:
    """Digest of a directory: relative paths, modes and contents (of a symlink: its target), in sorted
    order (in each directory its subdirectories, then its files). `modes(mode, is_dir)`: the mode that
    counts (default: the mode itself; the disc's rule: disctree.tree_digest); `dirs`: the directories
    count too (their paths and modes), not only the files."""
    root = Path(root)
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in (dirnames if dirs else []) + sorted(filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            mode = stat.S_IMODE(st.st_mode)
            mode = modes(mode, stat.S_ISDIR(st.st_mode)) if modes else mode
            h.update(f"{p.relative_to(root).as_posix()}\0{mode:o}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                h.update(sha256_file(p).encode())
            h.update(b"\n")
    return h.hexdigest()


CODE_DIR = paths.PACKAGE  # where code_digest reads the isobuild modules (a test points it at a copy)
PACKAGE = "isobuild"


def _module_file(name: str) -> Path | None:
    """isobuild/<a>/<b>.py or isobuild/<a>/<b>/__init__.py for module "a.b" (relative to the package)."""
    base = CODE_DIR.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


@functools.lru_cache(maxsize=None)
def _imports_of(path: Path, name: str, _stat: tuple[int, int]) -> tuple[str, ...]:
    """The isobuild modules (relative names) the file of module `name` imports anywhere in its body."""
    tree = ast.parse(path.read_bytes(), str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name[len(PACKAGE) + 1:] for a in node.names if a.name.startswith(PACKAGE + ".")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package[: len(package) - (node.level - 1)] + (node.module or "").split(".")
            elif node.module == PACKAGE or (node.module or "").startswith(PACKAGE + "."):
                parts = node.module.split(".")[1:]
            else:
                continue
            base = ".".join(p for p in parts if p)
            found += [base] + [f"{base}.{a.name}".lstrip(".") for a in node.names]  # a name may be a module
    return tuple(m for m in found if m and _module_file(m) is not None)


def code_modules(module: str) -> list[str]:
    """`module` ("isobuild.pxe" or "pxe") and every isobuild module it imports, transitively, sorted."""
    seen: set[str] = set()
    todo = [module[len(PACKAGE) + 1:] if module.startswith(PACKAGE + ".") else module]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        st = path.stat()
        todo += _imports_of(path, name, (st.st_mtime_ns, st.st_size))
    return sorted(seen)


def code_digest(module: str) -> str:
    """The stage input "code": a digest of code_modules(module)'s files (names and contents)."""
    return sha256_bytes("".join(f"{name}\0{sha256_file(_module_file(name))}\n" for name in code_modules(module)))


@dataclass(frozen=True)
class StampCheck:
    up_to_date: bool
    reason: str  # "up to date", "no previous build", "output changed: ...", "input changed: definition, overlay"


def identity(path: Path, sha256: str | None = None, by_content: bool = False) -> dict:
    """What a stamp records of an output: size, mtime and inode (cheap to compare), and its sha256;
    of a directory, its tree digest; `by_content`: the sha256 alone (a stamp that must be the same
    in two build dirs of the same inputs)."""
    if Path(path).is_dir():
        return {"tree": sha256_tree(path)}
    if by_content:
        return {"sha256": sha256 or sha256_file(path)}
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino,
            "sha256": sha256 or sha256_file(path)}


def _changed(key: str, path: Path, rec: dict) -> str | None:
    """Why the output at `path` is not the one the stamp recorded, or None when it is."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"output missing: {key}"
    if "tree" in rec or "size" not in rec:  # recorded by content
        now = sha256_tree(path) if path.is_dir() else None if "tree" in rec else sha256_file(path)
        return None if now == rec.get("tree", rec.get("sha256")) else f"output changed: {key} (modified since it was built)"
    if st.st_size != rec.get("size"):
        return f"output changed: {key} (size {rec.get('size')} -> {st.st_size})"
    if (st.st_mtime_ns, st.st_ino) != (rec.get("mtime_ns"), rec.get("ino")):
        return f"output changed: {key} (modified or replaced since it was built)"
    return None


# Stamps kept elsewhere than .stamps/<stage>.json: render's stays beside its outputs, where it always was.
STAMP_FILES = {"render": ".render-stamp"}


class Stamps:
    """build/.stamps/<stage>.json: {"inputs": {name: digest}, "outputs": {path: identity}}.

    Output paths are relative to the build dir when inside it. A stamp written before outputs were
    recorded (a flat {name: digest}) still checks its inputs; a stage that names outputs reruns once."""

    def __init__(self, build_dir: Path):
        self.build = Path(build_dir)
        self.dir = self.build / ".stamps"

    def _path(self, stage: str) -> Path:
        return self.build / STAMP_FILES[stage] if stage in STAMP_FILES else self.dir / f"{stage}.json"

    def key(self, path: Path) -> str:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(self.build))
        return os.path.abspath(path) if rel.startswith("..") else rel

    def _full(self, key: str) -> Path:
        return Path(key) if os.path.isabs(key) else self.build / key

    def _load_raw(self, stage: str) -> dict | None:
        try:
            data = json.loads(self._path(stage).read_text())
        except (OSError, ValueError):  # none, unreadable (the stage's write reports why), or another format
            return None
        if not isinstance(data, dict):
            return None
        if "inputs" not in data:
            return {"inputs": data, "outputs": None}  # written before outputs were recorded
        return data

    def load(self, stage: str) -> dict[str, str] | None:
        raw = self._load_raw(stage)
        return None if raw is None else raw["inputs"]

    def check(self, stage: str, inputs: Mapping[str, str], outputs: Iterable[Path] = ()) -> StampCheck:
        raw = self._load_raw(stage)
        if raw is None:
            return StampCheck(False, "no previous build")
        outputs = list(outputs)
        missing = [str(p) for p in outputs if not Path(p).exists()]
        if missing:
            return StampCheck(False, f"output missing: {', '.join(missing)}")
        recorded = raw["outputs"]
        if recorded is None:
            if outputs:
                return StampCheck(False, "the stamp records no outputs (written by an older version)")
            recorded = {}
        for key, rec in sorted(recorded.items()):
            why = _changed(key, self._full(key), rec)
            if why:
                return StampCheck(False, why)
        old = raw["inputs"]
        changed = sorted(k for k in set(old) | set(inputs) if old.get(k) != inputs.get(k))
        if changed:
            return StampCheck(False, f"input changed: {', '.join(changed)}")
        return StampCheck(True, "up to date")

    def save(self, stage: str, inputs: Mapping[str, str], outputs: Mapping[Path, str | None] | Iterable[Path] = (),
             by_content: bool = False) -> None:
        """Record the inputs and each output's identity (`outputs` may map a path to its known sha256)."""
        known = outputs if isinstance(outputs, Mapping) else {p: None for p in outputs}
        data = {"inputs": dict(inputs),
                "outputs": {self.key(p): identity(Path(p), sha, by_content) for p, sha in known.items()}}
        write_file(self._path(stage), json.dumps(data, sort_keys=True, indent=1) + "\n")

    def recorded(self, path: Path) -> tuple[str, dict] | None:
        """(stage, identity) of the stamp that recorded `path` as its output, or None."""
        key = self.key(path)
        for f in sorted(self.dir.glob("*.json")):
            raw = self._load_raw(f.stem)
            rec = ((raw or {}).get("outputs") or {}).get(key)
            if rec:
                return f.stem, rec
        return None

    def digest(self, stage: str) -> str | None:
        """The sha256 of a stage's stamp (inputs and outputs): a key for a stage that checks its outputs."""
        try:
            return sha256_file(self._path(stage))
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def publishing(self, stage: str, inputs: Mapping[str, str], by_content: bool = False
                   ) -> Iterator["Publication"]:
        """Publish a stage's outputs with its stamp: see Publication. The stamp is saved, recording
        every output published or recorded in the block (see identity()), only when the block completes."""
        pub = Publication(self, stage)
        yield pub
        self.save(stage, inputs, pub.outputs, by_content)

    def forget(self, stage: str) -> None:
        try:
            self._path(stage).unlink()
        except FileNotFoundError:
            pass


class Publication:
    """The outputs of one stage being published (Stamps.publishing). Until the first output is
    replaced the previous stamp stays, so a build that fails before that leaves its previous outputs
    up to date; from then on there is no stamp until all are in place, so a half-published state is
    never called up to date."""

    def __init__(self, stamps: Stamps, stage: str):
        self.stamps, self.stage = stamps, stage
        self.outputs: dict[Path, str | None] = {}
        self._started = False

    def replacing(self) -> None:
        """Call before replacing an output by other means than file() (a directory swap)."""
        if not self._started:
            self.stamps.forget(self.stage)
            self._started = True

    def file(self, tmp: Path, target: Path, mode: int, sha256: str | None = None) -> None:
        """Give a finished temp file its mode and rename it over `target` (outputs.publish); record it."""
        self.replacing()
        publish(tmp, target, mode)
        self.record(target, sha256)

    def record(self, path: Path, sha256: str | None = None) -> None:
        """Record an output already in place (its sha256, when known, saves reading it again)."""
        self.outputs[Path(path)] = sha256
