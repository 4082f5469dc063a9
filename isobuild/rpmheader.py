"""BUILDTIME and COOKIE of an rpm 4.8 build (mock) rewritten in place, with the signature digests
recomputed, so two builds of the same inputs are byte-identical.
"""
from __future__ import annotations

from pathlib import Path

from .errors import IsobuildError
from .outputs import write_file
from .rpmplan import BUILDHOST

RPMTAG_BUILDTIME = 1006
RPMTAG_COOKIE = 1094
SIGTAG_SHA1 = 269
SIGTAG_SHA256 = 273
SIGTAG_MD5 = 1004
HEADER_MAGIC = b"\x8e\xad\xe8\x01\x00\x00\x00\x00"


def _read_header(data: bytes, off: int) -> tuple[int, int, dict[int, tuple[int, int, int]]]:
    """(start of data store, end of header, {tag: (type, offset, count)}) of the header at `off`."""
    import struct

    if data[off:off + 8] != HEADER_MAGIC:
        raise IsobuildError(f"not an RPM header at byte {off}")
    nindex, hsize = struct.unpack(">II", data[off + 8:off + 16])
    index = {}
    for i in range(nindex):
        tag, typ, offset, count = struct.unpack(">IIiI", data[off + 16 + 16 * i: off + 32 + 16 * i])
        index[tag] = (typ, offset, count)
    store = off + 16 + 16 * nindex
    return store, store + hsize, index


def normalise_rpm_header(path: Path, buildtime: int, buildhost: str = BUILDHOST) -> bool:
    """Set BUILDTIME and COOKIE of an unsigned RPM in place and recompute its signature digests.

    rpm 4.8 (inside the F13 mock root) stamps time() into BUILDTIME and "<host> <time>" into
    COOKIE. Both have fixed sizes once the host is fixed, so they can be rewritten without moving
    anything; then the signature header's SHA1/SHA256 (header) and MD5 (header + payload) are
    recomputed. Returns True if the file changed. Refuses signed packages.
    """
    data = bytearray(Path(path).read_bytes())
    sig_store, sig_end, sig_index = _read_header(bytes(data), 96)
    if set(sig_index) & {267, 268, 1002, 1005}:  # DSA, RSA, PGP, GPG
        raise IsobuildError(f"{path} is signed: normalise it before signing")
    hdr_off = sig_end + (-(sig_end - 96)) % 8  # the signature header is padded to 8 bytes
    hdr_store, hdr_end, hdr_index = _read_header(bytes(data), hdr_off)
    if not _set_buildtime_and_cookie(data, hdr_store, hdr_index, buildtime, buildhost, path):
        return False
    _update_signature_digests(data, sig_store, sig_index, hdr_off, hdr_end)
    write_file(path, bytes(data))  # atomically, 0644
    return True


def _set_buildtime_and_cookie(data: bytearray, hdr_store: int, hdr_index: dict, buildtime: int, buildhost: str,
                              path: Path) -> bool:
    """Rewrite the two fields in `data`; True if either changed."""
    import struct

    changed = False
    if RPMTAG_BUILDTIME in hdr_index:
        typ, off, count = hdr_index[RPMTAG_BUILDTIME]
        pos = hdr_store + off
        new = struct.pack(">I", buildtime)
        if data[pos:pos + 4] != new:
            data[pos:pos + 4] = new
            changed = True
    if RPMTAG_COOKIE in hdr_index:
        typ, off, count = hdr_index[RPMTAG_COOKIE]
        pos = hdr_store + off
        end = data.index(b"\0", pos)
        old = bytes(data[pos:end])
        new = f"{buildhost} {buildtime}".encode()
        if len(new) != len(old):
            raise IsobuildError(f"{path}: cookie {old.decode(errors='replace')!r} has a different length than {new.decode()!r}",
                                hint="the build host name differs from the one in the mock config")
        if old != new:
            data[pos:end] = new
            changed = True
    return changed


def _update_signature_digests(data: bytearray, sig_store: int, sig_index: dict, hdr_off: int, hdr_end: int) -> None:
    import hashlib

    header = bytes(data[hdr_off:hdr_end])
    payload = bytes(data[hdr_end:])
    updates = {
        SIGTAG_SHA1: hashlib.sha1(header).hexdigest().encode() + b"\0",
        SIGTAG_SHA256: hashlib.sha256(header).hexdigest().encode() + b"\0",
        SIGTAG_MD5: hashlib.md5(header + payload).digest(),
    }
    for tag, value in updates.items():
        if tag in sig_index:
            typ, off, count = sig_index[tag]
            pos = sig_store + off
            data[pos:pos + len(value)] = value
