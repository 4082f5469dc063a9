"""Outputs appear atomically or not at all: write into a sibling temp path, then rename over the target.

Temp paths are `.<target name>.tmp-<pid>-<random>` (dirs and files) and `.<target name>.old-<pid>-<random>`
(a previous output moved aside): private while they are written (0600 files, 0700 dirs: they may
hold secrets), given their final mode only just before the rename. A run that is killed leaves them
behind; `sweep()` removes those whose pid is no longer alive, so a live run's temps are never touched.
Every stage sweeps its own targets when it starts, and each helper below sweeps before it creates.

`os_error()` turns an OSError (a full disk, a read-only or missing directory) into the clean
IsobuildError every stage reports: what failed, the path, and a hint.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

from .errors import IsobuildError

CHUNK = 1 << 20
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def temp_prefix(target: Path, kind: str = "tmp") -> str:
    return f".{Path(target).name}.{kind}-{os.getpid()}-"


def sweep(directory: Path, names: list[str] | tuple[str, ...] | None = None) -> list[Path]:
    """Remove the temp/aside leftovers of dead runs in `directory` (only those for `names`, if given).

    A leftover is ours by its name (see the module doc); its pid says whether its run is still going."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        m = _LEFTOVER.match(entry.name)
        if not m or (names is not None and m.group("name") not in names) or _pid_alive(int(m.group("pid"))):
            continue
        path = Path(entry.path)
        with contextlib.suppress(FileNotFoundError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        removed.append(path)
    return removed


def os_error(err: OSError, what: str, path: Path | str | None = None, kept: bool = True) -> IsobuildError:
    """A clean error for an OSError of a stage: `what` failed at the path, and what to do about it
    (`kept`: the stage publishes atomically, so its previous output is unchanged)."""
    where = err.filename if err.filename is not None else path
    reason = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = "free space on that file system (or pass another --build-dir) and rerun"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "fix the permissions of that path (or pass another --build-dir) and rerun"
    else:
        hint = "fix the cause named above and rerun"
    return IsobuildError(f"{what}: {reason}: {where}",
                         hint=f"{hint}; the previous output is unchanged" if kept else hint)


def make_dir(path: Path, mode: int = 0o755) -> Path:
    """mkdir -p with an explicit mode on every directory it creates (the umask never decides)."""
    path = Path(path)
    if path.is_dir():
        return path
    make_dir(path.parent, mode)
    with contextlib.suppress(FileExistsError):
        path.mkdir()
        os.chmod(path, mode)
    return path


@contextlib.contextmanager
def work_dir(build_dir: Path, name: str) -> Iterator[Path]:
    """A stage's private (0700) scratch dir `.<name>.tmp-<pid>-*` in `build_dir` (created if missing),
    removed when the block ends, however it ends. A killed run's is removed by `sweep(build_dir, [name])`."""
    build_dir = make_dir(build_dir)
    work = Path(tempfile.mkdtemp(prefix=temp_prefix(build_dir / name), dir=build_dir))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _private_dir(name_for: Path, parent: Path, mode: int) -> Iterator[Path]:
    """A new 0700 temp dir in `parent` named after `name_for`; `mode` once the block succeeded,
    removed when it failed."""
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(name_for), dir=parent))
    try:
        yield tmp
        os.chmod(tmp, mode)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_dir(target: Path, mode: int = 0o755) -> Iterator[Path]:
    """Yield an empty private temp dir beside `target`; on success it gets `mode` and replaces `target`,
    on failure it is removed. The previous `target` stays intact until the new one is complete."""
    target = Path(target)
    make_dir(target.parent)
    sweep(target.parent, [target.name])
    with _private_dir(target, target.parent, mode) as tmp:
        yield tmp
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=temp_prefix(target, "old"), dir=target.parent))
        os.rename(target, old / target.name)
    os.rename(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def swap_in(staged: Path, target_dir: Path, names: list[str] | tuple[str, ...], work: str) -> None:
    """Move the named entries of `staged` into `target_dir`, one rename each; nothing else in
    target_dir is touched. The previous entries are moved aside (into `.<work>.old-<pid>-*`) first and
    removed once every rename succeeded; if one fails, the previous ones are put back."""
    aside = Path(tempfile.mkdtemp(prefix=temp_prefix(target_dir / work, "old"), dir=target_dir))
    moved: list[str] = []
    try:
        for name in names:
            if (target_dir / name).exists():
                os.rename(target_dir / name, aside / name)
            moved.append(name)
            os.rename(staged / name, target_dir / name)
    except BaseException:
        for name in moved:  # put the previous entries back as they were
            if (aside / name).exists():
                if (target_dir / name).is_dir():
                    shutil.rmtree(target_dir / name)
                elif (target_dir / name).exists():
                    (target_dir / name).unlink()
                os.rename(aside / name, target_dir / name)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)

def generations(target: Path) -> Path:
    """Where the generations of a symlinked output live: `.<name>.generations/` beside it."""
    return Path(target).parent / f".{Path(target).name}.generations"


def sweep_generations(target: Path) -> None:
    """Remove dead runs' leftovers of an atomic_generation() output."""
    sweep(Path(target).parent, [Path(target).name])
    sweep(generations(target), ["g"])


@contextlib.contextmanager
def atomic_generation(target: Path, mode: int = 0o755) -> Iterator[Path]:
    """Like atomic_dir, for an output that is read while it is replaced (a served tree).

    `target` is a symlink to a complete generation directory; a new one is written privately, then
    a new symlink is renamed over `target`: every reader resolves either the old tree or the new
    one, never nothing. The previous generation is kept (requests that resolved it still finish);
    older ones are removed. A real directory at `target` (older builds) becomes a generation first."""
    target = Path(target)
    gens = make_dir(generations(target))
    sweep_generations(target)
    with _private_dir(gens / "g", gens, mode) as tmp:
        yield tmp
    final = gens / f"g{time.time_ns()}"
    os.rename(tmp, final)
    if target.is_dir() and not target.is_symlink():
        os.rename(target, gens / "g0")
        previous = os.path.realpath(gens / "g0")
    else:
        previous = os.path.realpath(target) if os.path.lexists(target) else None
    link = target.parent / f"{temp_prefix(target)}link"
    os.symlink(os.path.relpath(final, target.parent), link)
    os.replace(link, target)
    keep = {os.path.realpath(final), previous}
    for old in gens.iterdir():
        if os.path.realpath(old) not in keep and not _LEFTOVER.match(old.name):
            shutil.rmtree(old, ignore_errors=True)


def temp_file(target: Path) -> Path:
    """A new, empty 0600 temp file beside `target` (dead runs' temps for it are swept first)."""
    target = Path(target)
    make_dir(target.parent)
    sweep(target.parent, [target.name])
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target), dir=target.parent)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def temp_files(*targets: Path) -> Iterator[list[Path]]:
    """A temp_file() beside each target; those not yet published are removed if the block fails."""
    tmps: list[Path] = []
    try:
        for target in targets:
            tmps.append(temp_file(target))
        yield tmps
    except BaseException:
        for tmp in tmps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def publish(tmp: Path, target: Path, mode: int) -> None:
    """Give a finished temp file its final mode and rename it over `target`."""
    os.chmod(tmp, mode)
    os.replace(tmp, target)


@contextlib.contextmanager
def atomic_file(target: Path, mode: int = 0o644, binary: bool = True) -> Iterator:
    """Open a 0600 temp file beside `target`; it gets `mode` and is renamed into place only if the block succeeds."""
    target = Path(target)
    tmp = temp_file(target)
    try:
        with open(tmp, "wb" if binary else "w") as fh:
            yield fh
        publish(tmp, target, mode)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_file(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    with atomic_file(path, mode=mode) as fh:
        fh.write(data.encode() if isinstance(data, str) else data)


def copy_hashing(src: Path, dst: Path) -> str:
    """Copy `src` to a new file `dst` (0600, its own inode) and return the sha256 of the bytes written."""
    h = hashlib.sha256()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(src, "rb") as fi, os.fdopen(fd, "wb") as fo:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := fi.readinto(buf):
            h.update(view[:n])
            fo.write(view[:n])
    return h.hexdigest()
