"""The pycdlib internals isobuild.pycdlib_internals relies on are still there and still work.

A pycdlib upgrade that renames them fails here (instead of the ISO stage silently falling back to a
second read for the isomd5sum, or losing the pinned dates). The base is the synthetic F13 DVD.
"""
from __future__ import annotations

import importlib
import time
import types

import pytest

from isobuild import iso as isomod
from isobuild import isomd5, pycdlib_internals
from isobuild.basedisc import open_base
from tests.conftest import need_tool
from tests.fixtures import f13base

EPOCH = 1274745600


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    need_tool("genisoimage", "implantisomd5", "checkisomd5", "createrepo_c", "rpmbuild", "cpio", "busybox")
    return f13base.build_base(tmp_path_factory.mktemp("base"))


def _opened_base_with_a_new_file(base, tmp_path):
    """The base opened as the stage opens it, with one file added (pycdlib places it last)."""
    extra = tmp_path / "extra.txt"
    extra.write_bytes(b"x" * 70000)
    iso, fh, _info = open_base(base)
    pycdlib_internals.allow_lowercase_names(iso)
    with pycdlib_internals.pinned_clock(EPOCH):
        iso.add_file(str(extra), iso_path="/extra.txt", rr_name="extra.txt", joliet_path="/extra.txt")
    return iso, fh


def test_the_attributes_exist(base):
    import pycdlib

    iso, fh, _info = open_base(base)
    try:
        for name in pycdlib_internals.PYCDLIB_ATTRIBUTES:
            assert hasattr(iso, name), f"pycdlib.PyCdlib has no {name}: update isobuild/pycdlib_internals.py"
        assert callable(iso._reshuffle_extents)
        assert all(callable(getattr(ino, "extent_location", None)) for ino in iso.inodes)
        for vd in iso.pvds + iso.svds:
            assert isinstance(vd.space_size, int) and hasattr(vd, "volume_modification_date")
        assert len(iso.pvd.application_use) == isomd5.APPDATA_SIZE
        assert pycdlib_internals.volume_id(iso) == f13base.VOLUME_ID
        assert pycdlib_internals.has_boot_catalog(iso)
        assert pycdlib_internals.boot_catalog_sector(iso) > 16
        assert "El Torito boot record" in pycdlib_internals.descriptor_sectors(iso).values()
        assert hasattr(pycdlib.dates, "VolumeDescriptorDate")
    finally:
        iso.close()
        fh.close()
    for name in pycdlib_internals.CLOCK_MODULES:
        assert getattr(importlib.import_module(name), "time", None) is time, f"{name} no longer reads time.*"


def test_pinned_clock_dates_the_image(tmp_path):
    import pycdlib

    iso = pycdlib.PyCdlib()
    with pycdlib_internals.pinned_clock(EPOCH):
        iso.new(interchange_level=4, joliet=3, rock_ridge="1.09", vol_ident="T")
        assert importlib.import_module("pycdlib.pycdlib").time.time() == EPOCH
    assert all(getattr(importlib.import_module(m), "time") is time for m in pycdlib_internals.CLOCK_MODULES)
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(EPOCH)).encode()
    assert iso.pvd.volume_creation_date.record().startswith(stamp)
    pycdlib_internals.set_volume_dates(iso, EPOCH + 60)
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(EPOCH + 60)).encode()
    assert iso.pvd.volume_modification_date.record().startswith(stamp)
    assert iso.joliet_vd.volume_modification_date.record().startswith(stamp)
    iso.close()


def test_extent_order_makes_the_image_stream(base, tmp_path):
    """With the inodes sorted the writes stream (the isomd5sum is taken on the way); without, the
    added file is written behind the hashed part and the writer has to give up."""
    results = {}
    for sort in (True, False):
        iso, fh = _opened_base_with_a_new_file(base, tmp_path)
        try:
            if sort:
                assert pycdlib_internals.sort_inodes_by_extent(iso, isomd5.MIN_SECTORS)
                extents = [ino.extent_location() for ino in iso.inodes]
                assert extents == sorted(extents)
            out = tmp_path / f"sorted-{sort}.iso"
            with open(out, "wb", buffering=0) as raw:
                writer = isomd5.HashingWriter(raw)
                iso.write_fp(writer, blocksize=1 << 20)
                results[sort] = writer.finish()
        finally:
            iso.close()
            fh.close()
    assert results[True] is not None, "the fast path was not taken: pycdlib's write order changed"
    assert results[True] == isomd5.isomd5_of_file(tmp_path / "sorted-True.iso")
    assert results[False] is None


def test_the_stage_takes_the_fast_path(base, tmp_path, capfd):
    iso, fh = _opened_base_with_a_new_file(base, tmp_path)
    try:
        pycdlib_internals.blank_application_use(iso, isomd5.APPDATA_SIZE)
        md5hex = isomod.write_image(iso, tmp_path / "out.iso", "iso: writing out.iso")
    finally:
        iso.close()
        fh.close()
    assert "not in image order" not in capfd.readouterr().err
    assert md5hex == isomd5.isomd5_of_file(tmp_path / "out.iso")[0]


def test_small_images_are_padded_for_checkisomd5():
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=4, joliet=3, rock_ridge="1.09", vol_ident="T")
    assert iso.pvd.space_size < isomd5.MIN_SECTORS
    assert pycdlib_internals.sort_inodes_by_extent(iso, isomd5.MIN_SECTORS)
    assert {vd.space_size for vd in iso.pvds + iso.svds} == {isomd5.MIN_SECTORS}
    iso.close()


def test_another_pycdlib_falls_back_instead_of_failing():
    assert pycdlib_internals.sort_inodes_by_extent(types.SimpleNamespace(), isomd5.MIN_SECTORS) is False
