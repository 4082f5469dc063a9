"""Our isomd5sum (computed while the image is written) against the real implantisomd5/checkisomd5.

The images here are raw byte files with just a primary volume descriptor at sector 16: all the
checksum needs. Sizes cover a non-multiple of the 32 KiB read size and the smallest image whose
fragments checkisomd5 can verify.
"""
from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from isobuild import iso as isomod
from isobuild import isomd5
from tests.conftest import need_tool


@pytest.fixture(autouse=True)
def _tools():
    need_tool("implantisomd5", "checkisomd5")


def fake_image(path: Path, sectors: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    data = bytearray(rnd.randbytes(sectors * isomod.SECTOR))
    pvd = isomod.PVD_OFFSET
    data[pvd:pvd + 6] = b"\x01CD001"
    data[pvd + 80:pvd + 84] = sectors.to_bytes(4, "little")
    data[pvd + 84:pvd + 88] = sectors.to_bytes(4, "big")
    a = pvd + isomod.APPDATA_OFFSET
    data[a:a + isomod.APPDATA_SIZE] = b" " * isomod.APPDATA_SIZE
    path.write_bytes(bytes(data))
    return bytes(data)


def appdata(path: Path) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(isomod.PVD_OFFSET + isomod.APPDATA_OFFSET)
        return fh.read(isomod.APPDATA_SIZE)


@pytest.mark.parametrize("sectors", [100, isomod.MIN_SECTORS, 1000, 4097, 20011])
def test_same_record_as_implantisomd5(tmp_path, sectors):
    ours, theirs = tmp_path / "ours.img", tmp_path / "theirs.img"
    fake_image(ours, sectors, seed=sectors)
    shutil.copy(ours, theirs)
    subprocess.run(["implantisomd5", str(theirs)], check=True, capture_output=True)
    md5hex = isomod.implant_isomd5(ours)
    assert appdata(ours) == appdata(theirs)
    assert md5hex.encode() in appdata(ours)
    # below MIN_SECTORS a fragment is shorter than one read: checkisomd5 rejects what implantisomd5
    # writes (why the add-on disc is padded)
    want = 0 if sectors >= isomod.MIN_SECTORS else 1
    assert subprocess.run(["checkisomd5", str(ours)], capture_output=True).returncode == want


def test_checkisomd5_fails_on_a_flipped_byte(tmp_path):
    p = tmp_path / "img"
    fake_image(p, 2000, seed=1)
    isomod.implant_isomd5(p)
    with open(p, "r+b") as fh:
        fh.seek(1500 * isomod.SECTOR)
        b = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([b[0] ^ 1]))
    assert subprocess.run(["checkisomd5", str(p)], capture_output=True).returncode == 1


def _write_like_pycdlib(writer, data: bytes, patches: list[tuple[int, bytes]], order_seed: int) -> None:
    """Write `data` front to back in uneven pieces with holes, then apply `patches` (offset, bytes)."""
    rnd = random.Random(order_seed)
    off = 0
    while off < len(data):
        n = rnd.choice([37, 2048, 4096, 65536, 1 << 20])
        piece = data[off:off + n]
        if any(piece) or rnd.random() < 0.5:  # sometimes seek over zero runs, as pycdlib does
            writer.seek(off)
            writer.write(piece)
        off += n
    for p_off, p_data in patches:
        writer.seek(p_off)
        writer.write(p_data)


def test_streaming_writer_with_patches_matches_second_pass(tmp_path):
    src = tmp_path / "src.img"
    data = bytearray(fake_image(src, 6000, seed=7))
    data[100 * 2048:400 * 2048] = bytes(300 * 2048)  # a zero run the writer may seek over
    final = bytearray(data)
    patches = [(len(data) - 3000, b"late patch"), (len(data) - 100, b"x" * 60)]
    for off, p in patches:
        final[off:off + len(p)] = p
    out = tmp_path / "out.img"
    with open(out, "wb", buffering=0) as raw:
        w = isomd5.HashingWriter(raw)
        _write_like_pycdlib(w, bytes(data), patches, order_seed=3)
        result = w.finish()
    assert out.read_bytes() == bytes(final)
    assert result is not None, "patches inside the window must not force a second pass"
    assert result == isomod.isomd5_of_file(out)


def test_streaming_writer_detects_far_back_writes(tmp_path):
    src = tmp_path / "src.img"
    data = fake_image(src, 9000, seed=9)  # 18 MiB: more than the window
    out = tmp_path / "out.img"
    with open(out, "wb", buffering=0) as raw:
        w = isomd5.HashingWriter(raw)
        _write_like_pycdlib(w, data, [(40 * 2048, b"rewrite of an early sector")], order_seed=5)
        assert w.finish() is None  # caller then checksums the finished file
    isomod.implant_isomd5(out)
    assert subprocess.run(["checkisomd5", str(out)], capture_output=True).returncode == 0


def test_appdata_record_layout():
    rec = isomod.appdata_record("0" * 32, "abc" * 20)
    assert len(rec) == isomod.APPDATA_SIZE
    assert rec.startswith(b"ISO MD5SUM = " + b"0" * 32 + b";SKIPSECTORS = 15;RHLISOSTATUS=0;FRAGMENT SUMS = ")
    assert b";FRAGMENT COUNT = 20;" in rec
    assert rec.rstrip(b" ").endswith(b"THIS IS NOT THE SAME AS RUNNING MD5SUM ON THIS ISO!!")
