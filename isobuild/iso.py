"""The ISO stage: remaster the Fedora 13 DVD with pycdlib (or write the add-on disc without a base).

With a base, every file of the base stays where it is and is copied from the base image while the
new image is written (nothing is extracted, nothing big is held in memory); we add
  /ks/<node>.ks, /an-cluster/ (yum repo + nodes/<node>/ per-node files), the overlay tree,
and replace isolinux/isolinux.cfg with the edited one (isobuild.isolinux). The image gets an
isohybrid MBR (boots from a USB stick), keeps El Torito (with its boot-info-table), Joliet, Rock
Ridge and the volume id, and a fresh implanted isomd5sum (anaconda's media check) computed while
the image is written, not in a second pass.

Reproducible: every date pycdlib would take from the clock is SOURCE_DATE_EPOCH, the MBR id is
derived from the inputs, files are added in sorted order and written in extent order.

The API takes explicit inputs (IsoInputs) so this module does not depend on the model; tasks.py
adapts a Cluster to it.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import queue
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from . import isolinux, log
from .errors import IsobuildError
from .outputs import make_dir, os_error, sweep, temp_file, temp_prefix, write_file
from .stamps import Stamps, code_digest as stage_code_digest, sha256_bytes, sha256_file

SECTOR = 2048
PVD_OFFSET = 16 * SECTOR
APPDATA_OFFSET = 883  # ECMA-119 application use field inside the PVD; isomd5sum lives here
APPDATA_SIZE = 512
SKIPSECTORS = 15
FRAGMENT_COUNT = 20
MD5_CHUNK = 16 * SECTOR  # implantisomd5 reads 32 KiB at a time; fragment sums are taken per read
# checkisomd5 expects one new fragment per read at most: a fragment (1/21 of the image) must be at
# least one read long, so tiny images (the add-on disc) are padded to this many sectors.
MIN_SECTORS = SKIPSECTORS + (FRAGMENT_COUNT + 1) * MD5_CHUNK // SECTOR

F13_DVD_NAME = "Fedora-13-x86_64-DVD.iso"
F13_DVD_URL = "https://archives.fedoraproject.org/pub/archive/fedora/linux/releases/13/Fedora/x86_64/iso/" + F13_DVD_NAME
# The official sha256 of Fedora-13-x86_64-DVD.iso is not known to the project (it is in the
# Fedora-13-x86_64-CHECKSUM file beside the ISO in the archive). Set it here once verified.
F13_DVD_SHA256: str | None = None

STAGE = "iso"
# The image carries the root password hash (kickstarts) and the fence passwords (cluster.conf).
ISO_MODE = 0o600


# --------------------------------------------------------------------------------------------
# Inputs and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IsoInputs:
    """Everything the ISO stage needs, as plain files (no model objects)."""

    cluster: str  # cluster name: the ISO is <cluster>.iso (or <cluster>-addon.iso)
    kickstarts: dict[str, Path]  # node name -> kickstart file
    fqdns: dict[str, str]  # node name -> fully qualified name, for the menu labels
    out_dir: Path  # DIR/out
    base: Path | None = None  # Fedora 13 DVD; None = add-on disc
    repo_dir: Path | None = None  # a yum repo (repodata/ + RPMs) copied to /an-cluster/
    nodes_dir: Path | None = None  # build/nodes: <node>/<path> copied to /an-cluster/nodes/<node>/
    overlay_dir: Path | None = None  # copied to the disc root, modes kept
    console: str | None = None  # e.g. "ttyS0,115200"
    source_date_epoch: int | None = None  # None: derived from the inputs
    extra_digests: dict[str, str] = field(default_factory=dict)  # e.g. the definition's digest
    allow_missing_packages: bool = False  # %packages the base + repo lack: warn instead of stopping

    @property
    def iso_name(self) -> str:
        return f"{self.cluster}.iso" if self.base else f"{self.cluster}-addon.iso"


@dataclass(frozen=True)
class IsoResult:
    iso: Path
    sha256: str
    manifest: Path
    built: bool  # False: up to date, nothing done
    reason: str
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase (built only)


# --------------------------------------------------------------------------------------------
# isomd5sum (the format of rhinstaller/isomd5sum, as checkisomd5 and anaconda read it)
# --------------------------------------------------------------------------------------------


class IsoMd5:
    """implantisomd5's checksum of an image fed in order from byte 0.

    MD5 over the image minus its last SKIPSECTORS sectors, with the PVD application-use field read
    as spaces; after each 32 KiB read that starts a new fragment (1/21 of the size), the first hex
    digit of each of the first 3 digest bytes is appended to the fragment sums. The data goes to
    MD5 in as large slices as possible (split only where a fragment sum is taken), which keeps the
    hashing thread out of the GIL.
    """

    def __init__(self) -> None:
        self.md5 = hashlib.md5()
        self.head: bytearray | None = bytearray()  # held until the PVD (sector 16) is seen
        self.pos = 0
        self.limit = 0
        self.fragment_size = 1
        self.prev_fragment = 0
        self.snap: tuple[int, int] | None = None  # (end of the read to snapshot after, its start)
        self.fragment_sums = ""

    def update(self, data: bytes | memoryview) -> None:
        if self.head is not None:
            self.head += data
            if len(self.head) >= PVD_OFFSET + SECTOR:
                self._start()
            return
        self._feed(memoryview(data))

    def _start(self) -> None:
        head, self.head = self.head, None
        pvd = head[PVD_OFFSET:PVD_OFFSET + SECTOR]
        if len(pvd) < SECTOR or pvd[0] != 1 or pvd[1:6] != b"CD001":
            raise IsobuildError("isomd5sum: no primary volume descriptor at sector 16")
        size = int.from_bytes(pvd[84:88], "big") * SECTOR
        self.limit = size - SKIPSECTORS * SECTOR
        self.fragment_size = max(1, self.limit // (FRAGMENT_COUNT + 1))
        self.snap = self._next_snap()
        a = PVD_OFFSET + APPDATA_OFFSET
        head[a:a + APPDATA_SIZE] = b" " * APPDATA_SIZE
        self._feed(memoryview(head))

    def _next_snap(self) -> tuple[int, int] | None:
        """The first 32 KiB read whose start lies in a later fragment than the last one summed."""
        start = -(-((self.prev_fragment + 1) * self.fragment_size) // MD5_CHUNK) * MD5_CHUNK
        if start >= self.limit:
            return None
        return min(start + MD5_CHUNK, self.limit), start

    def _feed(self, mv: memoryview) -> None:
        while len(mv) and self.pos < self.limit:
            target = self.snap[0] if self.snap else self.limit
            n = min(len(mv), target - self.pos)
            self.md5.update(mv[:n])
            self.pos += n
            mv = mv[n:]
            if self.snap and self.pos == self.snap[0]:
                digest = self.md5.copy().digest()
                self.fragment_sums += "".join(format(b, "x")[0] for b in digest[:3])
                self.prev_fragment = self.snap[1] // self.fragment_size
                self.snap = self._next_snap()

    def finish(self) -> tuple[str, str]:
        if self.head is not None:
            self._start()
        if self.pos < self.limit:
            raise IsobuildError(f"isomd5sum: image ends at {self.pos} bytes, the PVD says {self.limit}")
        return self.md5.hexdigest(), self.fragment_sums


def appdata_record(md5hex: str, fragment_sums: str, supported: bool = False) -> bytes:
    text = (
        f"ISO MD5SUM = {md5hex};SKIPSECTORS = {SKIPSECTORS};RHLISOSTATUS={int(supported)};"
        f"FRAGMENT SUMS = {fragment_sums};FRAGMENT COUNT = {FRAGMENT_COUNT};"
        "THIS IS NOT THE SAME AS RUNNING MD5SUM ON THIS ISO!!"
    ).encode()
    return text.ljust(APPDATA_SIZE, b" ")


def isomd5_of_file(path: Path) -> tuple[str, str]:
    h = IsoMd5()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.finish()


def implant_isomd5(path: Path) -> str:
    """Implant the checksum into an existing image (second pass; the writer below avoids it)."""
    md5hex, frags = isomd5_of_file(path)
    with open(path, "r+b") as fh:
        fh.seek(PVD_OFFSET + APPDATA_OFFSET)
        fh.write(appdata_record(md5hex, frags))
    return md5hex


class _HashingWriter(io.RawIOBase):
    """The file object pycdlib writes to: writes go to the file and, in image order, to IsoMd5.

    pycdlib writes mostly in ascending order but patches small things just behind itself
    (directory records, the boot-info-table). The most recent writes stay pending (as the very
    bytes objects pycdlib handed us: no copies) and absorb those patches; older ones go to a
    hashing thread (hashlib releases the GIL, so hashing overlaps the copying). A write behind the
    pending window makes streaming impossible: then `ok` is False and the caller hashes the
    finished file instead.
    """

    HIGH = 8 << 20  # pending bytes that trigger a hand-over to the hasher
    KEEP = 2 << 20  # bytes kept pending for patches
    MAX_HOLE = 64 << 20  # a larger hole that later gets patched is not worth materialising

    def __init__(self, fh) -> None:
        super().__init__()
        self.fh = fh
        self.off = 0
        self.base = 0  # image offset up to which bytes went to the hasher
        self.pending: list[list] = []  # [offset, bytes | bytearray | int (that many zeros)], in order
        self.pending_bytes = 0
        self.ok = True
        self.md5 = IsoMd5()
        self.q: queue.Queue = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._worker, name="isomd5", daemon=True)
        self.thread.start()

    # --- hashing thread ---
    def _worker(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is not None:
                continue
            try:
                if isinstance(item, int):  # a run of zeros (a hole pycdlib seeked over)
                    zeros = bytes(min(item, 1 << 20))
                    while item > 0:
                        self.md5.update(zeros[: min(item, len(zeros))])
                        item -= len(zeros)
                else:
                    self.md5.update(item)
            except BaseException as err:  # reported by finish()
                self.error = err

    @staticmethod
    def _size(data) -> int:
        return data if isinstance(data, int) else len(data)

    def _hand_over(self, keep: int) -> None:
        while self.pending and self.pending_bytes > keep:
            off, data = self.pending.pop(0)
            n = self._size(data)
            self.pending_bytes -= n
            self.base = off + n
            self.q.put(data)

    # --- file object API used by pycdlib ---
    mode = "wb"

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.off = self.fh.seek(offset, whence)
        return self.off

    def tell(self) -> int:
        return self.off

    def write(self, data) -> int:
        n = len(data)
        self.fh.write(data)
        if self.ok:
            self._track(self.off, data if isinstance(data, bytes) else bytes(data))
        self.off += n
        return n

    def _track(self, off: int, data: bytes) -> None:
        if off < self.base:
            self.ok = False  # patch of bytes already hashed: fall back to hashing the file
            return
        tail = self.pending[-1][0] + self._size(self.pending[-1][1]) if self.pending else self.base
        if off >= tail:
            if off > tail:
                self.pending.append([tail, off - tail])
                self.pending_bytes += off - tail
            self.pending.append([off, data])
            self.pending_bytes += len(data)
        else:
            self._patch(off, data, tail)
        if self.pending_bytes > self.HIGH:
            self._hand_over(self.KEEP)

    def _patch(self, off: int, data: bytes, tail: int) -> None:
        end = off + len(data)
        for piece in self.pending:
            p_off, p_data = piece
            p_end = p_off + self._size(p_data)
            if p_end <= off or p_off >= end:
                continue
            if isinstance(p_data, int):
                if p_data > self.MAX_HOLE:
                    self.ok = False
                    return
                p_data = bytearray(p_data)
            elif isinstance(p_data, bytes):
                p_data = bytearray(p_data)
            lo, hi = max(off, p_off), min(end, p_end)
            p_data[lo - p_off:hi - p_off] = data[lo - off:hi - off]
            piece[1] = p_data
        if end > tail:
            rest = data[tail - off:]
            self.pending.append([tail, rest])
            self.pending_bytes += len(rest)

    def abort(self) -> None:
        self.ok = False
        self.q.put(None)
        self.thread.join()

    def finish(self) -> tuple[str, str] | None:
        """(md5, fragment sums) of what was written, or None when the writes were not streamable."""
        if self.ok:
            self._hand_over(0)
        self.q.put(None)
        self.thread.join()
        if not self.ok:
            return None
        if self.error is not None:
            raise self.error
        return self.md5.finish()


# --------------------------------------------------------------------------------------------
# Base checks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseInfo:
    path: Path
    size: int
    volume_id: str
    discinfo: str
    treeinfo: str


def _read_iso_file(iso, path: str) -> bytes | None:
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
    hint = f"pass the Fedora 13 x86_64 DVD ({F13_DVD_NAME}) with --base"
    try:
        fh = open(path, "rb")
        size = os.fstat(fh.fileno()).st_size
    except IsADirectoryError:
        raise IsobuildError(f"base ISO {path} is a directory, not an image file", hint=hint) from None
    except OSError as err:
        raise IsobuildError(f"cannot read the base ISO {path}: {err.strerror}", hint=hint) from None
    try:
        fh.seek(PVD_OFFSET)
        pvd = fh.read(SECTOR)
        if len(pvd) < SECTOR or pvd[1:6] != b"CD001":
            raise IsobuildError(
                f"base {path} is not an ISO9660 image (no CD001 volume descriptor at sector 16)", hint=hint)
        if pvd[0] == 1:
            want = int.from_bytes(pvd[84:88], "big") * SECTOR
            if size < want:
                raise IsobuildError(
                    f"base {path} is truncated: the volume descriptor says {want} bytes, the file has {size}",
                    hint="the download or copy did not finish; fetch it again and compare its sha256")
        iso = pycdlib.PyCdlib()
        try:
            iso.open_fp(fh)
        except pycdlib.pycdlibexception.PyCdlibException as err:
            raise IsobuildError(f"base {path} is not a readable ISO9660 image: {err}", hint=hint) from None
        if iso.eltorito_boot_catalog is None:
            raise IsobuildError(f"base {path} has no El Torito boot record: it is not a bootable DVD", hint=hint)
        discinfo = (_read_iso_file(iso, "/.discinfo") or b"").decode("utf-8", "replace")
        treeinfo = (_read_iso_file(iso, "/.treeinfo") or b"").decode("utf-8", "replace")
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
        if _read_iso_file(iso, "/isolinux/isolinux.cfg") is None:
            problems.append("/isolinux/isolinux.cfg is missing")
        if problems:
            raise IsobuildError(
                f"base {path} is not a Fedora 13 x86_64 install DVD: " + "; ".join(problems), hint=hint)
        volume_id = iso.pvd.volume_identifier.decode("ascii", "replace").rstrip()
        return iso, fh, BaseInfo(path, size, volume_id, discinfo, treeinfo)
    except BaseException:
        fh.close()
        raise


# --------------------------------------------------------------------------------------------
# Staging: the files we add, laid out as on the disc
# --------------------------------------------------------------------------------------------


def _git_mode(mode: int, is_dir: bool) -> int:
    """The modes git can express: 0755 for dirs and executables, 0644 for other files.
    The repo and overlay/ come from createrepo_c and a checkout, whose other bits only reflect
    the umask of the machine; normalising them keeps the disc reproducible."""
    return 0o755 if is_dir or mode & 0o100 else 0o644


def _copy_tree(src: Path, dst: Path, *, git_modes: bool) -> None:
    """Copy a tree; modes kept (rendered node files: 0600 secrets stay 0600) or git-normalised.
    Symlinks are refused (the disc must carry real files)."""
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = Path(dirpath).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(os.stat(dirpath).st_mode)
        os.chmod(dst / rel, _git_mode(mode, True) if git_modes else mode)
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_symlink():
                raise IsobuildError(f"symlinks are not supported on the disc: {p}",
                                    hint="replace it with the file it points to")
            shutil.copyfile(p, dst / rel / name)
            mode = stat.S_IMODE(p.stat().st_mode)
            os.chmod(dst / rel / name, _git_mode(mode, False) if git_modes else mode)


def stage_tree(inputs: IsoInputs, stage: Path, repo_dir: Path) -> None:
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


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def pinned_clock(epoch: int) -> Iterator[None]:
    """pycdlib takes dates from time.time()/localtime(): give it SOURCE_DATE_EPOCH, in UTC."""
    import pycdlib.dates
    import pycdlib.headervd
    import pycdlib.pycdlib
    import pycdlib.utils

    fake = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("__")})
    fake.time = lambda: float(epoch)
    fake.localtime = lambda t=None: time.gmtime(epoch if t is None else t)
    mods = [pycdlib.pycdlib, pycdlib.headervd, pycdlib.dates, pycdlib.utils]
    saved = [m.time for m in mods]
    for m in mods:
        m.time = fake
    try:
        yield
    finally:
        for m, t in zip(mods, saved):
            m.time = t


class Progress:
    """Bytes written and ETA on a TTY; a plain line every 25% otherwise; nothing with --quiet."""

    def __init__(self, what: str, stream=None) -> None:
        self.what = what
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.last_step = -1
        self.last_draw = 0.0

    def __call__(self, done: int, total: int, _opaque=None) -> None:
        if log.is_quiet() or total <= 0:
            return
        frac = done / total
        if self.tty:
            now = time.monotonic()
            if now - self.last_draw < 0.2 and done < total:
                return
            self.last_draw = now
            elapsed = now - self.start
            eta = (elapsed / frac - elapsed) if frac > 0 else 0
            bar = "#" * int(frac * 30)
            self.stream.write(f"\r{self.what} [{bar:<30}] {done / 2**20:8.1f}/{total / 2**20:.1f} MiB"
                              f" {frac:4.0%} ETA {int(eta) // 60}:{int(eta) % 60:02d} ")
            if done >= total:
                self.stream.write("\n")
            self.stream.flush()
        else:
            step = int(frac * 4)
            if step > self.last_step:
                self.last_step = step
                log.info(f"{self.what}: {done / 2**20:.1f}/{total / 2**20:.1f} MiB ({frac:.0%})")


def _mbr_id(epoch: int, cluster: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{cluster}:{epoch}".encode()).digest()[:4], "little")


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


def _add_tree(iso, stage: Path, joliet: bool, manifest_files: list[dict]) -> None:
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


def _sort_inodes_by_extent(iso) -> None:
    """Let pycdlib assign extents now and write file data in extent order, so the image streams
    front to back and the checksum can follow it (pycdlib otherwise writes added files last)."""
    reshuffle = getattr(iso, "_reshuffle_extents", None)
    if reshuffle is None or not hasattr(iso, "inodes"):
        return  # another pycdlib: the writer falls back to hashing the finished file
    reshuffle()
    iso._needs_reshuffle = False
    iso.inodes.sort(key=lambda ino: ino.extent_location())
    if iso.pvd.space_size < MIN_SECTORS:  # pycdlib pads the file to space_size when writing
        for vd in iso.pvds + iso.svds:
            vd.space_size = MIN_SECTORS


def write_image(iso, dest: Path, what: str) -> str:
    """Write the open PyCdlib to `dest` with the isomd5sum implanted; returns the md5."""
    _sort_inodes_by_extent(iso)
    with open(dest, "wb", buffering=0) as raw:
        writer = _HashingWriter(raw)
        progress = Progress(what)
        try:
            iso.write_fp(writer, blocksize=1 << 20, progress_cb=lambda done, total: progress(done, total))
        except BaseException:
            writer.abort()
            raise
        result = writer.finish()
    if result is None:
        log.info(f"{what}: writes were not in image order; checksumming the finished image")
        md5hex = implant_isomd5(dest)
    else:
        md5hex, frags = result
        with open(dest, "r+b") as fh:
            fh.seek(PVD_OFFSET + APPDATA_OFFSET)
            fh.write(appdata_record(md5hex, frags))
    return md5hex


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------


def _base_fingerprint(path: Path) -> str:
    st = os.stat(path)
    return f"{Path(path).resolve()}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def _base_sha256(path: Path, cache_dir: Path) -> str:
    """sha256 of the base, cached by its stat fingerprint (hashing a 3.4 GB DVD takes seconds)."""
    cache = cache_dir / "base-sha256.json"
    key = _base_fingerprint(path)
    try:
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            return data["sha256"]
    except (OSError, ValueError):
        pass
    digest = sha256_file(path)
    write_file(cache, json.dumps({"key": key, "sha256": digest}) + "\n")
    return digest


def code_digest() -> str:
    return stage_code_digest(__name__)  # the rule every stage uses (stamps.code_digest)


def _tree_digest(root: Path, *, git_modes: bool) -> str:
    """Digest of a tree as it will be on the disc: relative paths, disc modes, contents."""
    h = hashlib.sha256()
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            p = Path(dirpath) / name
            mode = stat.S_IMODE(p.lstat().st_mode)
            mode = _git_mode(mode, p.is_dir()) if git_modes else mode & ~0o022
            h.update(f"{p.relative_to(root).as_posix()}\0{mode:o}\0".encode())
            if p.is_file() and not p.is_symlink():
                h.update(sha256_file(p).encode())
            h.update(b"\n")
    return h.hexdigest()


def input_digests(inputs: IsoInputs, repo_dir: Path | None) -> dict[str, str]:
    d = {
        "code": code_digest(),
        "kickstarts": sha256_bytes("".join(
            f"{n}:{stat.S_IMODE(Path(p).stat().st_mode) & ~0o022:o}:{sha256_file(Path(p))}\n"
            for n, p in sorted(inputs.kickstarts.items()))),
        "menu": sha256_bytes(json.dumps([inputs.cluster, sorted(inputs.fqdns.items()), inputs.console])),
        "repo": _tree_digest(repo_dir, git_modes=True) if repo_dir else "empty",
        "nodes": _tree_digest(inputs.nodes_dir, git_modes=False) if inputs.nodes_dir else "none",
        "overlay": _tree_digest(inputs.overlay_dir, git_modes=True) if inputs.overlay_dir else "none",
        "base": _base_fingerprint(inputs.base) if inputs.base else "none (add-on disc)",
    }
    d.update(inputs.extra_digests)
    return d


def default_epoch(digests: dict[str, str]) -> int:
    """SOURCE_DATE_EPOCH from the environment, else a date derived from the inputs.

    Derived = 2010-05-25 (Fedora 13's release) + (hash of the inputs mod one year): stable for the
    same inputs, different when they change, and always a plausible date for an F13 disc.
    """
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        try:
            return int(env)
        except ValueError:
            raise IsobuildError(f"SOURCE_DATE_EPOCH is not an integer: {env!r}") from None
    h = int(sha256_bytes(json.dumps({k: v for k, v in digests.items() if k not in ("base", "code")},
                                    sort_keys=True))[:8], 16)
    return 1274745600 + h % (365 * 86400)


def check_base_packages(inputs: IsoInputs, repo_dir: Path | None) -> None:
    """Every package and group the kickstarts' %packages name is on the base DVD or in our repo
    (isobuild.pkgresolve); checked before anything is written."""
    from .pkgresolve import check_packages

    iso, fh, _info = open_base(Path(inputs.base))
    try:
        texts = {n: Path(ks).read_text() for n, ks in inputs.kickstarts.items()}
        for line in check_packages(texts, lambda rel: _read_iso_file(iso, "/" + rel), repo_dir,
                                   allow_missing=inputs.allow_missing_packages, base_label=f"the base {inputs.base}"):
            log.warn(f"the install will stop at a Missing Package dialog: {line}")
    finally:
        fh.close()


def build_iso(inputs: IsoInputs, build_dir: Path, *, force: bool = False, base_cache: Path | None = None
              ) -> IsoResult:
    """Write DIR/out/<name>.iso + .sha256 + manifest.json atomically; skip if the stamp matches.

    The base's sha256 is cached in base_cache (default DIR/.stamps) by its path, size, mtime and inode."""
    build_dir = Path(build_dir)
    out_dir = Path(inputs.out_dir)
    if not inputs.kickstarts:
        raise IsobuildError("no kickstarts to put on the disc", hint="the definition has no nodes?")
    missing = [n for n in inputs.kickstarts if n not in inputs.fqdns]
    if missing:
        raise IsobuildError(f"no FQDN given for node(s): {', '.join(missing)}")
    if inputs.base is not None and not Path(inputs.base).exists():
        raise IsobuildError(f"base ISO not found: {inputs.base}",
                            hint=f"download {F13_DVD_NAME} from {F13_DVD_URL} or drop --base")
    isolinux.console_args(inputs.console)  # reject a bad console before any work
    for node, ks in sorted(inputs.kickstarts.items()):
        if not Path(ks).is_file():
            raise IsobuildError(f"kickstart for {node} not found: {ks}", hint="run `invoke render` first")
    if inputs.repo_dir is not None and not (Path(inputs.repo_dir) / "repodata" / "repomd.xml").is_file():
        raise IsobuildError(f"not a yum repository (no repodata/repomd.xml): {inputs.repo_dir}",
                            hint="run `invoke rpms` (it indexes BUILD/repo), or leave the repo out")
    for what, d in (("node files", inputs.nodes_dir), ("overlay", inputs.overlay_dir)):
        if d is not None and not Path(d).is_dir():
            raise IsobuildError(f"{what} directory not found: {d}")

    repo_dir = Path(inputs.repo_dir) if inputs.repo_dir else None
    if inputs.base is not None:
        check_base_packages(inputs, repo_dir)
    digests = input_digests(inputs, repo_dir)
    epoch = inputs.source_date_epoch if inputs.source_date_epoch is not None else default_epoch(digests)
    digests["source_date_epoch"] = str(epoch)
    outputs = iso_path, sha_path, manifest_path = _outputs(inputs)
    stamps = Stamps(build_dir)
    stage_name = f"{STAGE}-{inputs.iso_name}"
    try:
        _sweep_leftovers(build_dir, out_dir, outputs)
    except OSError as err:
        raise os_error(err, "iso: cannot remove the leftovers of an interrupted build", out_dir) from None
    check = stamps.check(stage_name, digests, outputs)
    if check.up_to_date and not force:
        return IsoResult(iso_path, sha_path.read_text().split()[0], manifest_path, False, "up to date")
    log.info(f"iso: building {iso_path} ({check.reason})")
    try:
        return _build(inputs, build_dir, digests, epoch, stamps, stage_name, check.reason,
                      Path(base_cache) if base_cache else stamps.dir)
    except OSError as err:
        raise os_error(err, f"iso: cannot build {iso_path}", out_dir) from None


def _outputs(inputs: IsoInputs) -> tuple[Path, Path, Path]:
    """DIR/out/<name>.iso, its .sha256 and manifest.json."""
    out_dir = Path(inputs.out_dir)
    return out_dir / inputs.iso_name, out_dir / (inputs.iso_name + ".sha256"), out_dir / "manifest.json"


def _sweep_leftovers(build_dir: Path, out_dir: Path, outputs) -> None:
    """Remove what killed runs of this stage left: temp images (they hold secrets) and work dirs."""
    sweep(out_dir, [p.name for p in outputs])
    sweep(build_dir, [WORK])


WORK = "iso-work"  # build/.iso-work.tmp-<pid>-*: the staged tree of one run


def _build(inputs: IsoInputs, build_dir: Path, digests: dict[str, str], epoch: int, stamps: Stamps,
           stage_name: str, reason: str, base_cache: Path) -> IsoResult:
    out_dir = Path(inputs.out_dir)
    iso_path, sha_path, manifest_path = _outputs(inputs)
    repo_dir = Path(inputs.repo_dir) if inputs.repo_dir else None
    make_dir(build_dir)
    work = Path(tempfile.mkdtemp(prefix=temp_prefix(build_dir / WORK), dir=build_dir))
    make_dir(out_dir)
    tmp_iso, tmp_sha, tmp_manifest = (temp_file(p) for p in (iso_path, sha_path, manifest_path))
    base_fh = None
    try:
        if repo_dir is None:
            from .repo import make_repo

            repo_dir = make_repo([], work / "repo", revision=epoch, allow_empty=True)
        stage = work / "stage"
        stage_tree(inputs, stage, repo_dir)
        node_entries = [isolinux.NodeEntry(n, inputs.fqdns[n], inputs.cluster) for n in sorted(inputs.kickstarts)]

        import pycdlib

        base_sha = {}
        hasher = None
        if inputs.base is not None:
            iso, base_fh, info = open_base(Path(inputs.base))
            iso.interchange_level = 4  # F13 is `mkisofs -U`: lowercase names without ;1
            cfg_text = _read_iso_file(iso, "/isolinux/isolinux.cfg").decode("utf-8", "replace")
            new_cfg = isolinux.add_node_entries(cfg_text, node_entries, inputs.console)
            (stage / "isolinux").mkdir(exist_ok=True)  # exists on the base: its mode is kept
            (stage / "isolinux" / "isolinux.cfg").write_text(new_cfg)
            os.chmod(stage / "isolinux" / "isolinux.cfg", 0o644)
            volume_id = info.volume_id
        else:
            info = None
            iso = pycdlib.PyCdlib()
            # d-characters only, and 16 at most: pycdlib also puts it in the (UCS-2) Joliet descriptor
            volume_id = re.sub(r"[^A-Z0-9_]", "_", inputs.cluster.upper())[:10] + "_ADDON"
            with pinned_clock(epoch):
                iso.new(interchange_level=4, joliet=3, rock_ridge="1.09", vol_ident=volume_id,
                        app_ident_str="AN!Cluster isobuild add-on disc")
        files: list[dict] = []
        with pinned_clock(epoch):
            _add_tree(iso, stage, iso.has_joliet(), files)
            if info is not None:
                try:
                    iso.add_isohybrid(mbr_id=_mbr_id(epoch, inputs.cluster))
                except pycdlib.pycdlibexception.PyCdlibException as err:
                    raise IsobuildError(f"cannot make {iso_path.name} bootable from USB: {err}",
                                        hint="the base's isolinux.bin must be isolinux 3.72 or newer") from None
            for vd in [iso.pvd] + ([iso.joliet_vd] if iso.joliet_vd is not None else []):
                vd.volume_modification_date = pycdlib.dates.VolumeDescriptorDate()
                vd.volume_modification_date.new(float(epoch))
            iso.pvd.application_use = b" " * APPDATA_SIZE  # the new isomd5sum goes here
            t0 = time.monotonic()
            md5hex = write_image(iso, tmp_iso, f"iso: writing {iso_path.name}")
            t_write = time.monotonic() - t0
        iso.close()
        log.info(f"iso: implanted isomd5sum {md5hex}")
        if info is not None:
            # The base's sha256 (manifest; cached per base) is read alongside the image's below:
            # the write phase already keeps both cores busy (copy + MD5), this one keeps one.
            hasher = threading.Thread(target=lambda: base_sha.update(
                sha256=_base_sha256(Path(inputs.base), base_cache)), daemon=True)
            hasher.start()
        t0 = time.monotonic()
        iso_sha = sha256_file(tmp_iso)  # a second read (page cache): the checksum above is inside the image
        t_sha = time.monotonic() - t0
        if hasher is not None:
            hasher.join()
        manifest = {
            "iso": iso_path.name,
            "kind": "remastered install DVD" if info else "add-on disc (not bootable)",
            "sha256": iso_sha,
            "size": tmp_iso.stat().st_size,
            "volume_id": volume_id,
            "isomd5sum": md5hex,
            "source_date_epoch": epoch,
            "base": None if info is None else {
                "file": info.path.name, "sha256": base_sha.get("sha256"), "size": info.size,
                "volume_id": info.volume_id,
                "official_f13_sha256": F13_DVD_SHA256 or "unknown to the project",
            },
            "inputs": {k: v for k, v in sorted(digests.items()) if k != "base"},
            "files": files,
        }
        # All three are complete beside their targets before any is renamed into place; the stamp
        # is dropped first and saved last, so an interrupted swap is never taken as up to date.
        tmp_sha.write_text(f"{iso_sha}  {iso_path.name}\n")
        tmp_manifest.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        with stamps.publishing(stage_name, digests) as pub:
            pub.file(tmp_iso, iso_path, ISO_MODE, iso_sha)
            pub.file(tmp_sha, sha_path, 0o644)
            pub.file(tmp_manifest, manifest_path, 0o644)
        # DIR/out holds one disc: building the DVD retires the add-on disc and vice versa.
        other = f"{inputs.cluster}-addon.iso" if info else f"{inputs.cluster}.iso"
        for stale in (out_dir / other, out_dir / (other + ".sha256")):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        stamps.forget(f"{STAGE}-{other}")
        if info is not None:
            _report_base(info, base_sha.get("sha256"))
        else:
            log.info(f"iso: {iso_path} is an ADD-ON disc (ks/, an-cluster/, overlay); it does not boot.\n"
                     f"  To build the install DVD, download {F13_DVD_NAME} from\n  {F13_DVD_URL}\n"
                     f"  and rerun with --base /path/to/{F13_DVD_NAME}")
        log.info(f"iso: wrote {iso_path} ({manifest['size'] / 2**20:.1f} MiB, sha256 {iso_sha}); "
                 f"write + isomd5sum {t_write:.2f} s, sha256 {t_sha:.2f} s")
        return IsoResult(iso_path, iso_sha, manifest_path, True, reason,
                         {"write_isomd5sum": t_write, "sha256": t_sha})
    except BaseException:
        for t in (tmp_iso, tmp_sha, tmp_manifest):
            with contextlib.suppress(FileNotFoundError):
                t.unlink()
        raise
    finally:
        if base_fh is not None:
            base_fh.close()
        shutil.rmtree(work, ignore_errors=True)


def _report_base(info: BaseInfo, sha: str | None) -> None:
    if F13_DVD_SHA256 is None:
        log.info(f"iso: base {info.path.name} sha256 {sha}; the official {F13_DVD_NAME} sha256 is unknown "
                 "to the project (compare with Fedora-13-x86_64-CHECKSUM from the Fedora archive)")
    elif sha == F13_DVD_SHA256:
        log.info(f"iso: base matches the official {F13_DVD_NAME} (sha256 {sha})")
    else:
        log.warn(f"base {info.path.name} is not the official {F13_DVD_NAME} (sha256 {sha})")


# `invoke verify-repro` builds its two copies in these: nothing of the host's may reach the image.
REPRO_ENVIRONMENTS = (
    {"umask": 0o022, "env": {"TZ": "UTC", "LC_ALL": "C.UTF-8"}},
    {"umask": 0o077, "env": {"TZ": "Pacific/Chatham", "LC_ALL": "C"}},  # UTC+12:45, ASCII
)


@contextlib.contextmanager
def build_environment(umask: int, env: dict[str, str]) -> Iterator[None]:
    """Run the block under `umask` with `env` set (tools we run inherit both); restored afterwards."""
    old_umask = os.umask(umask)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    time.tzset()
    try:
        yield
    finally:
        os.umask(old_umask)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        time.tzset()


def describe_difference(a: Path, b: Path) -> str:
    """Where two images first differ, named by ISO structure (for `invoke verify-repro`)."""
    import pycdlib

    with open(a, "rb") as fa, open(b, "rb") as fb:
        off = 0
        while True:
            ca, cb = fa.read(1 << 20), fb.read(1 << 20)
            if ca != cb:
                for i in range(min(len(ca), len(cb))):
                    if ca[i] != cb[i]:
                        break
                else:
                    i = min(len(ca), len(cb))
                off += i
                break
            if not ca:
                return "identical"
            off += len(ca)
    sizes = f" (sizes {a.stat().st_size} and {b.stat().st_size})" if a.stat().st_size != b.stat().st_size else ""
    sector = off // SECTOR
    where = _structure_at(a, sector, pycdlib)
    return f"first difference at byte {off} (sector {sector}): {where}{sizes}"


def _structure_at(path: Path, sector: int, pycdlib) -> str:
    if sector == 0:
        return "system area (isohybrid MBR)"
    if sector < 16:
        return "system area"
    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(path))
    except Exception as err:
        return f"unreadable image ({err})"
    try:
        names = {16: "primary volume descriptor"}
        if sector == 16:
            return "primary volume descriptor (dates, application data = isomd5sum)"
        for vd in iso.svds:
            names[vd.extent_location()] = "Joliet supplementary volume descriptor"
        for br in iso.brs:
            names[br.extent_location()] = "El Torito boot record"
        if sector in names:
            return names[sector]
        if iso.eltorito_boot_catalog is not None and sector == iso.eltorito_boot_catalog.extent_location():
            return "El Torito boot catalog"
        kind = "rr_path" if iso.has_rock_ridge() else "iso_path"  # name files by their real names
        for dirpath, _dirs, filenames in iso.walk(**{kind: "/"}):
            rec = iso.get_record(**{kind: dirpath})
            if rec.extent_location() <= sector < rec.extent_location() + max(1, -(-rec.data_length // SECTOR)):
                return f"directory records of {dirpath}"
            for f in filenames:
                p = dirpath.rstrip("/") + "/" + f
                r = iso.get_record(**{kind: p})
                start, n = r.extent_location(), -(-r.data_length // SECTOR)
                if start <= sector < start + n:
                    return f"data of file {p}"
        return "metadata (path tables, Joliet or Rock Ridge continuation areas) or padding"
    finally:
        iso.close()
