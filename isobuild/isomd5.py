"""isomd5sum: the checksum anaconda's media check verifies, in the format of rhinstaller/isomd5sum
(implantisomd5 writes it, checkisomd5 reads it), computed while an image is written or over a file.
"""
from __future__ import annotations

import hashlib
import io
import queue
import threading
from pathlib import Path

from .errors import IsobuildError

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
    write_record(path, md5hex, frags)
    return md5hex


def write_record(path: Path, md5hex: str, fragment_sums: str) -> None:
    """Write the checksum record into the PVD's application-use field of the image at `path`."""
    with open(path, "r+b") as fh:
        fh.seek(PVD_OFFSET + APPDATA_OFFSET)
        fh.write(appdata_record(md5hex, fragment_sums))


class HashingWriter(io.RawIOBase):
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
