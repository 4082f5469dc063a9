"""The base DVD: open it, check it is the Fedora 13 x86_64 install DVD, read its files, hash it.

Used by the ISO stage (the image we remaster), the USB stage (its boot files) and pxe (its tree).
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import log
from .errors import IsobuildError
from .isomd5 import PVD_OFFSET, SECTOR
from .outputs import write_file
from .pycdlib_internals import has_boot_catalog, volume_id
from .stamps import sha256_file

F13_DVD_NAME = "Fedora-13-x86_64-DVD.iso"
F13_DVD_URL = "https://archives.fedoraproject.org/pub/archive/fedora/linux/releases/13/Fedora/x86_64/iso/" + F13_DVD_NAME
# The official sha256 of Fedora-13-x86_64-DVD.iso is not known to the project (it is in the
# Fedora-13-x86_64-CHECKSUM file beside the ISO in the archive). Set it here once verified.
F13_DVD_SHA256: str | None = None
HINT = f"pass the Fedora 13 x86_64 DVD ({F13_DVD_NAME}) with --base"


@dataclass(frozen=True)
class BaseInfo:
    path: Path
    size: int
    volume_id: str
    discinfo: str
    treeinfo: str


def read_iso_file(iso, path: str) -> bytes | None:
    """A file of the open image by its on-disc ISO9660 name, else by Rock Ridge name; None if absent."""
    buf = io.BytesIO()
    for kind in ("iso_path", "rr_path"):
        if kind == "rr_path" and not iso.has_rock_ridge():
            continue
        try:
            iso.get_file_from_iso_fp(buf, **{kind: path})
            return buf.getvalue()
        except Exception:  # pycdlib raises PyCdlibInvalidInput for a missing path
            buf = io.BytesIO()
    return None


def file_names(iso, directory: str) -> list[str]:
    """The Rock Ridge names of the files (not directories) in one directory of the open image, sorted."""
    _path, _dirs, files = next(iso.walk(rr_path=directory))
    return sorted(files)


def ini_values(text: str, section: str) -> dict[str, str]:
    """key -> value of one [section] of an ini-style file such as .treeinfo (keys lower-cased)."""
    values: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == section and "=" in line:
            k, v = line.split("=", 1)
            values[k.strip().lower()] = v.strip()
    return values


def open_base(path: Path):
    """Open and check the base DVD; returns (PyCdlib, file object, BaseInfo). Raises IsobuildError."""
    import pycdlib

    path = Path(path)
    fh, size = _open_file(path)
    try:
        _check_volume_size(fh, size, path)
        iso = pycdlib.PyCdlib()
        try:
            iso.open_fp(fh)
        except pycdlib.pycdlibexception.PyCdlibException as err:
            raise IsobuildError(f"base {path} is not a readable ISO9660 image: {err}", hint=HINT) from None
        if not has_boot_catalog(iso):
            raise IsobuildError(f"base {path} has no El Torito boot record: it is not a bootable DVD", hint=HINT)
        discinfo = (read_iso_file(iso, "/.discinfo") or b"").decode("utf-8", "replace")
        treeinfo = (read_iso_file(iso, "/.treeinfo") or b"").decode("utf-8", "replace")
        problems = _f13_problems(discinfo, treeinfo)
        if read_iso_file(iso, "/isolinux/isolinux.cfg") is None:
            problems.append("/isolinux/isolinux.cfg is missing")
        if problems:
            raise IsobuildError(
                f"base {path} is not a Fedora 13 x86_64 install DVD: " + "; ".join(problems), hint=HINT)
        return iso, fh, BaseInfo(path, size, volume_id(iso), discinfo, treeinfo)
    except BaseException:
        fh.close()
        raise


def _open_file(path: Path):
    """(open file, its size) of the base, or a clear error."""
    try:
        fh = open(path, "rb")
        return fh, os.fstat(fh.fileno()).st_size
    except IsADirectoryError:
        raise IsobuildError(f"base ISO {path} is a directory, not an image file", hint=HINT) from None
    except OSError as err:
        raise IsobuildError(f"cannot read the base ISO {path}: {err.strerror}", hint=HINT) from None


def _check_volume_size(fh, size: int, path: Path) -> None:
    """An ISO9660 volume descriptor at sector 16, and a file as long as the primary one says."""
    fh.seek(PVD_OFFSET)
    pvd = fh.read(SECTOR)
    if len(pvd) < SECTOR or pvd[1:6] != b"CD001":
        raise IsobuildError(
            f"base {path} is not an ISO9660 image (no CD001 volume descriptor at sector 16)", hint=HINT)
    if pvd[0] == 1:
        want = int.from_bytes(pvd[84:88], "big") * SECTOR
        if size < want:
            raise IsobuildError(
                f"base {path} is truncated: the volume descriptor says {want} bytes, the file has {size}",
                hint="the download or copy did not finish; fetch it again and compare its sha256")


def _f13_problems(discinfo: str, treeinfo: str) -> list[str]:
    """What in .discinfo and .treeinfo says this is not the Fedora 13 x86_64 DVD."""
    problems = []
    d = discinfo.splitlines()
    if len(d) < 3:
        problems.append("/.discinfo is missing or has fewer than 3 lines")
    else:
        if d[1].strip() not in ("13", "Fedora 13"):
            problems.append(f"/.discinfo names release {d[1].strip()!r}, not 13")
        if d[2].strip() != "x86_64":
            problems.append(f"/.discinfo names arch {d[2].strip()!r}, not x86_64")
    t = ini_values(treeinfo, "general")
    if not t:
        problems.append("/.treeinfo is missing or has no [general] section")
    else:
        if t.get("family") != "Fedora" or t.get("version") != "13":
            problems.append(f"/.treeinfo says {t.get('family')} {t.get('version')}, not Fedora 13")
        if t.get("arch") != "x86_64":
            problems.append(f"/.treeinfo says arch {t.get('arch')!r}, not x86_64")
    return problems


def base_fingerprint(path: Path) -> str:
    st = os.stat(path)
    return f"{Path(path).resolve()}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def base_sha256(path: Path, cache_dir: Path) -> str:
    """sha256 of the base, cached by its stat fingerprint (hashing a 3.4 GB DVD takes seconds)."""
    cache = cache_dir / "base-sha256.json"
    key = base_fingerprint(path)
    try:
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            return data["sha256"]
    except (OSError, ValueError):
        pass
    digest = sha256_file(path)
    write_file(cache, json.dumps({"key": key, "sha256": digest}) + "\n")
    return digest


def report_base(info: BaseInfo, sha: str | None) -> None:
    """Say whether the base is the official DVD (as far as the project knows its checksum)."""
    if F13_DVD_SHA256 is None:
        log.info(f"iso: base {info.path.name} sha256 {sha}; the official {F13_DVD_NAME} sha256 is unknown "
                 "to the project (compare with Fedora-13-x86_64-CHECKSUM from the Fedora archive)")
    elif sha == F13_DVD_SHA256:
        log.info(f"iso: base matches the official {F13_DVD_NAME} (sha256 {sha})")
    else:
        log.warn(f"base {info.path.name} is not the official {F13_DVD_NAME} (sha256 {sha})")
