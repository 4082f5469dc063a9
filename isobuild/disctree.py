"""The files the ISO stage adds, laid out as on the disc, and their entry into the image.

stage_tree() copies the kickstarts, the repo, the per-node files and the overlay into a work tree
(with the modes the disc gets); add_tree() adds that tree to an open PyCdlib, replacing files the
base has and giving new ones short unique ISO9660/Joliet names beside their Rock Ridge names.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path
from typing import Iterator, Mapping, Protocol

from .errors import IsobuildError
from .stamps import sha256_file, sha256_tree


class TreeInputs(Protocol):
    """What stage_tree reads of the stage's inputs (iso.IsoInputs has these fields)."""
    kickstarts: Mapping[str, str | os.PathLike]
    nodes_dir: str | os.PathLike | None
    overlay_dir: str | os.PathLike | None


def _git_mode(mode: int, is_dir: bool) -> int:
    """The modes git can express: 0755 for dirs and executables, 0644 for other files.
    The repo and overlay/ come from createrepo_c and a checkout, whose other bits only reflect
    the umask of the machine; normalising them keeps the disc reproducible."""
    return 0o755 if is_dir or mode & 0o100 else 0o644


def _copy_tree(src: Path, dst: Path, *, git_modes: bool) -> None:
    """Copy a tree; modes kept (rendered node files: 0600 secrets stay 0600) or git-normalised.
    Symlinks are refused (the disc must carry real files), to directories too: os.walk does not
    descend into those, so they would be left off the disc without a word."""
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = Path(dirpath).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(os.stat(dirpath).st_mode)
        os.chmod(dst / rel, _git_mode(mode, True) if git_modes else mode)
        for p in [Path(dirpath) / name for name in dirnames + sorted(filenames)]:
            if p.is_symlink():
                raise IsobuildError(f"symlinks are not supported on the disc: {p}",
                                    hint="replace it with the file or directory it points to")
        for name in sorted(filenames):
            p = Path(dirpath) / name
            shutil.copyfile(p, dst / rel / name)
            mode = stat.S_IMODE(p.stat().st_mode)
            os.chmod(dst / rel / name, _git_mode(mode, False) if git_modes else mode)


def stage_tree(inputs: TreeInputs, stage: Path, repo_dir: Path) -> None:
    """Lay out ks/, an-cluster/ (+ nodes/) and the overlay under `stage`."""
    ks = stage / "ks"
    ks.mkdir(parents=True)
    os.chmod(ks, 0o755)
    for node in sorted(inputs.kickstarts):
        src = Path(inputs.kickstarts[node])
        if not src.is_file():
            raise IsobuildError(f"kickstart for {node} not found: {src}", hint="run `invoke render` first")
        shutil.copyfile(src, ks / f"{node}.ks")
        os.chmod(ks / f"{node}.ks", stat.S_IMODE(src.stat().st_mode))  # render makes them 0600
    _copy_tree(repo_dir, stage / "an-cluster", git_modes=True)
    if inputs.nodes_dir is not None:
        for node in sorted(inputs.kickstarts):
            src = Path(inputs.nodes_dir) / node
            if src.is_dir():
                (stage / "an-cluster" / "nodes").mkdir(exist_ok=True)
                os.chmod(stage / "an-cluster" / "nodes", 0o755)
                _copy_tree(src, stage / "an-cluster" / "nodes" / node, git_modes=False)
    if inputs.overlay_dir is not None and Path(inputs.overlay_dir).is_dir():
        for top in sorted(Path(inputs.overlay_dir).iterdir()):
            if top.name in ("ks", "an-cluster"):
                raise IsobuildError(f"overlay/{top.name} would shadow a directory the build writes",
                                    hint="move it elsewhere in overlay/")
        _copy_tree(Path(inputs.overlay_dir), stage, git_modes=True)
    os.chmod(stage, 0o755)


def _walk_stage(stage: Path) -> Iterator[tuple[str, Path, bool]]:
    """('/an-cluster/repodata', path, is_dir) in sorted, parents-first order."""
    for dirpath, dirnames, filenames in os.walk(stage):
        dirnames.sort()
        rel = Path(dirpath).relative_to(stage)
        if str(rel) != ".":
            yield "/" + rel.as_posix(), Path(dirpath), True
        for name in sorted(filenames):
            yield "/" + (rel / name).as_posix().lstrip("./"), Path(dirpath) / name, False


JOLIET_MAX = 64  # pycdlib's limit for one Joliet name (mkisofs -joliet-long allows 103)
ISO9660_MAX = 30  # what mkisofs -U left of long names on the F13 DVD; Rock Ridge has the full name
# pycdlib 1.2x writes a damaged Rock Ridge continuation area for names that do not fit in the
# directory record (libisofs and isoinfo reject it); with <= 30-character ISO9660 names a Rock
# Ridge name of up to 100 characters always fits.
RR_MAX = 100


def _short_name(name: str, limit: int, taken: set[str]) -> str:
    """`name` if it fits and is free, else shortened to `limit` characters keeping the extension,
    with a ~N tag that makes it unique in its directory (as mkisofs and Windows do)."""
    if len(name) <= limit and name not in taken:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 8:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    for i in range(1, 10000):
        tag = f"~{i}"
        cand = stem[: max(1, limit - len(suffix) - len(tag))] + tag + suffix
        if cand not in taken:
            return cand
    raise IsobuildError(f"too many long file names alike in one directory: {name}")


def _check_name(path: str) -> None:
    name = path.rsplit("/", 1)[1]
    if ";" in name or len(name) > RR_MAX or not name.isprintable() or not name.isascii():
        raise IsobuildError(f"file name not supported on the disc: {path}",
                            hint=f"use printable ASCII names without ';', at most {RR_MAX} characters")


class _Names:
    """On-disc (ISO9660 and Joliet) directory paths and the names taken in each directory."""

    def __init__(self, iso, kind: str):
        self.iso, self.kind = iso, kind  # kind: "iso_path" or "joliet_path"
        self.dirs = {"": ""}  # real (Rock Ridge) dir path -> on-disc dir path
        self.taken: dict[str, set[str]] = {}

    def taken_in(self, disc_dir: str) -> set[str]:
        if disc_dir not in self.taken:
            names = set()
            with contextlib.suppress(Exception):  # a directory we are adding: nothing taken yet
                for child in self.iso.list_children(**{self.kind: disc_dir or "/"}):
                    ident = child.file_identifier()
                    if ident not in (b"\x00", b"\x01", b".", b".."):
                        names.add(ident.decode("utf-16-be" if self.kind == "joliet_path" else "ascii",
                                               "replace"))
            self.taken[disc_dir] = names
        return self.taken[disc_dir]

    def new_path(self, real_path: str, limit: int) -> str:
        parent, name = real_path.rsplit("/", 1)
        disc_parent = self.dirs[parent]
        short = _short_name(name, limit, self.taken_in(disc_parent))
        self.taken_in(disc_parent).add(short)
        return f"{disc_parent}/{short}"


def add_tree(iso, stage: Path, joliet: bool, manifest_files: list[dict]) -> None:
    """Add the staged tree to the open image; a file that exists in the base is replaced.

    Paths in `stage` are the real (Rock Ridge) names; existing base entries are found by those
    and keep their on-disc names, new ones get short unique ISO9660/Joliet names.
    """
    rock = iso.has_rock_ridge()
    isonames, jnames = _Names(iso, "iso_path"), _Names(iso, "joliet_path")
    for path, src, is_dir in _walk_stage(stage):
        _check_name(path)
        # Group/other write bits only say which umask the checkout had: drop them (reproducible).
        mode = stat.S_IMODE(src.stat().st_mode) & ~0o022
        name = path.rsplit("/", 1)[1]
        existing = _record(iso, rr_path=path) if rock else _record(iso, iso_path=path)
        old_joliet = None
        if existing is not None:
            iso_path = iso.full_path_from_dirrecord(existing)
            if joliet:
                jguess = jnames.dirs[path.rsplit("/", 1)[0]] + "/" + name
                old_joliet = jguess if _record(iso, joliet_path=jguess) is not None else None
        else:
            iso_path = isonames.new_path(path, ISO9660_MAX)
        kw = {"iso_path": iso_path}
        if rock:
            kw["rr_name"] = name
        jpath = None
        if joliet:
            jpath = old_joliet or jnames.new_path(path, JOLIET_MAX)
            kw["joliet_path"] = jpath
        if is_dir:
            if existing is None:
                iso.add_directory(file_mode=0o040000 | mode if rock else None, **kw)
            elif not existing.is_dir():
                raise IsobuildError(f"{path}: the base has a file there, the build a directory")
            isonames.dirs[path] = iso_path
            if jpath is not None:
                jnames.dirs[path] = jpath
            continue
        action = "added"
        if existing is not None:
            if existing.is_dir():
                raise IsobuildError(f"{path}: the base has a directory there, the build a file")
            iso.rm_hard_link(iso_path=iso_path)
            if old_joliet is not None:
                iso.rm_hard_link(joliet_path=old_joliet)
            action = "replaced"
        iso.add_file(str(src), file_mode=0o100000 | mode if rock else None, **kw)
        entry = {"path": path, "sha256": sha256_file(src), "size": src.stat().st_size,
                 "mode": f"{mode:04o}", "action": action}
        if iso_path != path:
            entry["iso9660_path"] = iso_path
        if jpath is not None and jpath != path:
            entry["joliet_path"] = jpath
        manifest_files.append(entry)


def _record(iso, **where):
    try:
        return iso.get_record(**where)
    except Exception:  # PyCdlibInvalidInput: not there
        return None


def _kept_mode(mode: int, is_dir: bool) -> int:
    """A kept mode (rendered node files) as the digest counts it: without group/other write."""
    return mode & ~0o022


def tree_digest(root: Path, *, git_modes: bool) -> str:
    """Digest of a tree as it will be on the disc: relative paths, disc modes (git-normalised or
    not), contents; its directories count too (stamps.sha256_tree)."""
    return sha256_tree(root, modes=_git_mode if git_modes else _kept_mode, dirs=True)
