"""Every use of pycdlib beyond its documented API, in one place (verified on pycdlib 1.14, 1.21, 1.22).

pycdlib's public API cannot: pin the dates it takes from the clock, set the volume descriptors'
dates, application-use field or size, allow lower-case ISO9660 names on an opened image, name
the descriptors' sectors, or write file data in extent order (the fast path: the image streams
front to back, so its isomd5sum is computed while it is written instead of in a second read).
tests/integration/test_pycdlib_internals.py fails if a pycdlib upgrade loses any of them; the
version range in pyproject.toml is the one verified.
"""
from __future__ import annotations

import contextlib
import time
import types
from typing import Iterator

# The PyCdlib attributes used below (write_fp's reshuffle, the descriptor lists, the file data).
PYCDLIB_ATTRIBUTES = ("_reshuffle_extents", "_needs_reshuffle", "inodes", "pvd", "pvds", "svds",
                      "joliet_vd", "brs", "eltorito_boot_catalog", "interchange_level")
# The pycdlib modules that read the clock through their module-level `time`.
CLOCK_MODULES = ("pycdlib.pycdlib", "pycdlib.headervd", "pycdlib.dates", "pycdlib.utils")


@contextlib.contextmanager
def pinned_clock(epoch: int) -> Iterator[None]:
    """pycdlib takes dates from time.time()/localtime(): give it SOURCE_DATE_EPOCH, in UTC."""
    import importlib

    fake = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("__")})
    fake.time = lambda: float(epoch)
    fake.localtime = lambda t=None: time.gmtime(epoch if t is None else t)
    mods = [importlib.import_module(m) for m in CLOCK_MODULES]
    saved = [m.time for m in mods]
    for m in mods:
        m.time = fake
    try:
        yield
    finally:
        for m, t in zip(mods, saved):
            m.time = t


def sort_inodes_by_extent(iso, min_sectors: int) -> bool:
    """Let pycdlib assign extents now and write file data in extent order, so the image streams
    front to back (pycdlib otherwise writes added files last); pad the volume to `min_sectors`.
    False: another pycdlib without these internals (the writer then hashes the finished file)."""
    reshuffle = getattr(iso, "_reshuffle_extents", None)
    if reshuffle is None or not hasattr(iso, "inodes"):
        return False
    reshuffle()
    iso._needs_reshuffle = False
    iso.inodes.sort(key=lambda ino: ino.extent_location())
    if iso.pvd.space_size < min_sectors:  # pycdlib pads the file to space_size when writing
        for vd in iso.pvds + iso.svds:
            vd.space_size = min_sectors
    return True


def allow_lowercase_names(iso) -> None:
    """F13 is `mkisofs -U`: lowercase ISO9660 names without ;1 (interchange level 4)."""
    iso.interchange_level = 4


def set_volume_dates(iso, epoch: int) -> None:
    """The modification date of the primary and Joliet descriptors (pycdlib keeps the base's)."""
    import pycdlib.dates

    for vd in [iso.pvd] + ([iso.joliet_vd] if iso.joliet_vd is not None else []):
        vd.volume_modification_date = pycdlib.dates.VolumeDescriptorDate()
        vd.volume_modification_date.new(float(epoch))


def blank_application_use(iso, size: int) -> None:
    """Spaces in the primary descriptor's application-use field (the isomd5sum is written there)."""
    iso.pvd.application_use = b" " * size


def volume_id(iso) -> str:
    return iso.pvd.volume_identifier.decode("ascii", "replace").rstrip()


def has_boot_catalog(iso) -> bool:
    return iso.eltorito_boot_catalog is not None


def descriptor_sectors(iso) -> dict[int, str]:
    """Sector -> name of the volume descriptors after the primary one, and the boot catalog."""
    names = {}
    for vd in iso.svds:
        names[vd.extent_location()] = "Joliet supplementary volume descriptor"
    for br in iso.brs:
        names[br.extent_location()] = "El Torito boot record"
    return names


def boot_catalog_sector(iso) -> int | None:
    return None if iso.eltorito_boot_catalog is None else iso.eltorito_boot_catalog.extent_location()
