"""The base install tree (the Fedora 13 DVD image or a directory holding its contents), read-only.

Stages that read the base (pxe, serve, validate's cman schema, cobbler) go through InstallTree, so a
DVD image is never extracted: IsoTree maps a tree path to a byte range inside the image.
"""
from __future__ import annotations

import threading
from pathlib import Path

from .errors import IsobuildError
from .basedisc import ini_values, open_base

PXEBOOT = ("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img")


class InstallTree:
    """Read-only access to the base's files by tree path ("images/pxeboot/vmlinuz")."""

    kind = ""
    path: Path

    def locate(self, rel: str) -> tuple[str, int, int] | None:  # (file, offset, length)
        raise NotImplementedError

    def read(self, rel: str) -> bytes | None:
        loc = self.locate(rel)
        if loc is None:
            return None
        name, offset, length = loc
        with open(name, "rb") as fh:
            fh.seek(offset)
            return fh.read(length)

    def close(self) -> None:
        pass


class DirTree(InstallTree):
    kind = "dir"

    def __init__(self, path: Path):
        self.path = Path(path).resolve()

    def locate(self, rel: str) -> tuple[str, int, int] | None:
        p = (self.path / rel).resolve()
        if not p.is_relative_to(self.path) or not p.is_file():
            return None
        return str(p), 0, p.stat().st_size


class IsoTree(InstallTree):
    """Files of an ISO9660 image by Rock Ridge (else Joliet, else on-disc ISO9660) name.

    pycdlib parses the directory tree once; a lookup gives the file's byte range in the image, which
    callers then read with their own file handle, so many threads can stream from one image.
    """

    kind = "iso"

    def __init__(self, path: Path, iso=None, fh=None):
        self.path = Path(path).resolve()
        if iso is None:
            iso, fh, _info = open_base(self.path)  # the base-DVD checks live there
        self._iso, self._fh = iso, fh
        self._lock = threading.Lock()
        if iso.has_rock_ridge():
            self._facet = "rr_path"
        elif iso.has_joliet():
            self._facet = "joliet_path"
        else:
            self._facet = "iso_path"

    def locate(self, rel: str) -> tuple[str, int, int] | None:
        rel = rel.strip("/")
        if not rel or any(part in ("", ".", "..") for part in rel.split("/")):
            return None
        with self._lock:
            try:
                rec = self._iso.get_record(**{self._facet: "/" + rel})
                if not rec.is_file():
                    return None
                with self._iso.open_file_from_iso(**{self._facet: "/" + rel}) as fio:
                    start, length = fio._startpos, fio._length  # noqa: SLF001 (pycdlib has no public accessor)
            except Exception:  # pycdlib raises PyCdlibInvalidInput for a missing path
                return None
        return str(self.path), start, length

    def close(self) -> None:
        self._fh.close()


def open_install_tree(base: Path) -> InstallTree:
    """The base as an InstallTree, checked: Fedora 13 x86_64 with images/pxeboot/ kernel + initrd."""
    base = Path(base)
    hint = "pass the Fedora 13 x86_64 DVD image or a directory with its contents (e.g. a loop mount) with --base"
    if not base.exists():
        raise IsobuildError(f"base {base} does not exist", hint=hint)
    tree: InstallTree = DirTree(base) if base.is_dir() else IsoTree(base)
    try:
        problems = []
        treeinfo = (tree.read(".treeinfo") or b"").decode("utf-8", "replace")
        general = ini_values(treeinfo, "general")
        if not general:
            problems.append(".treeinfo is missing or has no [general] section")
        elif (general.get("family"), general.get("version"), general.get("arch")) != ("Fedora", "13", "x86_64"):
            problems.append(f".treeinfo says {general.get('family')} {general.get('version')} "
                            f"{general.get('arch')}, not Fedora 13 x86_64")
        for rel in PXEBOOT:
            if tree.locate(rel) is None:
                problems.append(f"{rel} is missing")
        if problems:
            raise IsobuildError(f"base {base} is not a Fedora 13 x86_64 install tree: " + "; ".join(problems),
                                hint=hint)
    except BaseException:
        tree.close()
        raise
    return tree
