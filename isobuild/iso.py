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
adapts a Cluster to it. The parts: isobuild.isomd5 (the checksum format and the streaming writer),
isobuild.basedisc (opening and checking the base DVD), isobuild.disctree (the files we add),
isobuild.pycdlib_internals (what pycdlib's public API cannot do).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from . import isolinux, log
from .basedisc import (F13_DVD_NAME, F13_DVD_SHA256, F13_DVD_URL, BaseInfo, base_fingerprint, base_sha256,
                       ini_values, open_base, read_iso_file, report_base)
from .disctree import add_tree, stage_tree, tree_digest
from .errors import IsobuildError
from .isomd5 import (APPDATA_OFFSET, APPDATA_SIZE, MIN_SECTORS, PVD_OFFSET, SECTOR, HashingWriter,
                     appdata_record, implant_isomd5, isomd5_of_file, write_record)
from .outputs import make_dir, os_error, sweep, temp_files, work_dir
from .pycdlib_internals import (allow_lowercase_names, blank_application_use, boot_catalog_sector,
                                descriptor_sectors, pinned_clock, set_volume_dates, sort_inodes_by_extent)
from .stamps import Stamps, code_digest as stage_code_digest, sha256_bytes, sha256_file

# Names other modules and tests import from here (they live in the modules above).
__all__ = ["APPDATA_OFFSET", "APPDATA_SIZE", "F13_DVD_NAME", "F13_DVD_SHA256", "F13_DVD_URL", "MIN_SECTORS",
           "PVD_OFFSET", "SECTOR", "BaseInfo", "IsoInputs", "IsoResult", "REPRO_ENVIRONMENTS",
           "appdata_record", "build_environment", "build_iso", "describe_difference", "implant_isomd5",
           "ini_values", "isomd5_of_file", "open_base", "pinned_clock", "stage_tree"]

STAGE = "iso"
# The image carries the root password hash (kickstarts) and the fence passwords (cluster.conf).
ISO_MODE = 0o600
WORK = "iso-work"  # build/.iso-work.tmp-<pid>-*: the staged tree of one run


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
# Inputs: checks and digests
# --------------------------------------------------------------------------------------------


def check_inputs(inputs: IsoInputs) -> None:
    """Clear errors for inputs the build cannot use, before any work."""
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


def code_digest() -> str:
    return stage_code_digest(__name__)  # the rule every stage uses (stamps.code_digest)


def input_digests(inputs: IsoInputs, repo_dir: Path | None) -> dict[str, str]:
    d = {
        "code": code_digest(),
        "kickstarts": sha256_bytes("".join(
            f"{n}:{stat.S_IMODE(Path(p).stat().st_mode) & ~0o022:o}:{sha256_file(Path(p))}\n"
            for n, p in sorted(inputs.kickstarts.items()))),
        "menu": sha256_bytes(json.dumps([inputs.cluster, sorted(inputs.fqdns.items()), inputs.console])),
        "repo": tree_digest(repo_dir, git_modes=True) if repo_dir else "empty",
        "nodes": tree_digest(inputs.nodes_dir, git_modes=False) if inputs.nodes_dir else "none",
        "overlay": tree_digest(inputs.overlay_dir, git_modes=True) if inputs.overlay_dir else "none",
        "base": base_fingerprint(inputs.base) if inputs.base else "none (add-on disc)",
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
        for line in check_packages(texts, lambda rel: read_iso_file(iso, "/" + rel), repo_dir,
                                   allow_missing=inputs.allow_missing_packages, base_label=f"the base {inputs.base}"):
            log.warn(f"the install will stop at a Missing Package dialog: {line}")
    finally:
        fh.close()


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------


def build_iso(inputs: IsoInputs, build_dir: Path, *, force: bool = False, base_cache: Path | None = None
              ) -> IsoResult:
    """Write DIR/out/<name>.iso + .sha256 + manifest.json atomically; skip if the stamp matches.

    The base's sha256 is cached in base_cache (default DIR/.stamps) by its path, size, mtime and inode."""
    build_dir = Path(build_dir)
    out_dir = Path(inputs.out_dir)
    check_inputs(inputs)
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


@dataclass(frozen=True)
class _Disc:
    """What writing the image produced (the image itself is the temp file)."""

    info: BaseInfo | None  # the base; None: the add-on disc
    volume_id: str
    md5hex: str  # the implanted isomd5sum
    files: list[dict]  # manifest entries of the files we added
    t_write: float  # seconds spent writing + checksumming


def _build(inputs: IsoInputs, build_dir: Path, digests: dict[str, str], epoch: int, stamps: Stamps,
           stage_name: str, reason: str, base_cache: Path) -> IsoResult:
    iso_path, sha_path, manifest_path = _outputs(inputs)
    with work_dir(build_dir, WORK) as work:
        make_dir(Path(inputs.out_dir))
        with temp_files(iso_path, sha_path, manifest_path) as (tmp_iso, tmp_sha, tmp_manifest):
            disc = _write_disc(inputs, work, epoch, tmp_iso)
            iso_sha, base_sha, t_sha = _checksums(tmp_iso, inputs.base, base_cache)
            manifest = _manifest(inputs, disc, tmp_iso, iso_sha, base_sha, epoch, digests)
            # All three are complete beside their targets before any is renamed into place; the stamp
            # is dropped first and saved last, so an interrupted swap is never taken as up to date.
            tmp_sha.write_text(f"{iso_sha}  {iso_path.name}\n")
            tmp_manifest.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
            with stamps.publishing(stage_name, digests) as pub:
                pub.file(tmp_iso, iso_path, ISO_MODE, iso_sha)
                pub.file(tmp_sha, sha_path, 0o644)
                pub.file(tmp_manifest, manifest_path, 0o644)
            _retire_other_disc(inputs, disc.info is not None, stamps)
            _report_built(inputs, disc, iso_path, manifest["size"], iso_sha, base_sha, t_sha)
    return IsoResult(iso_path, iso_sha, manifest_path, True, reason, {"write_isomd5sum": disc.t_write, "sha256": t_sha})


def _write_disc(inputs: IsoInputs, work: Path, epoch: int, dest: Path) -> _Disc:
    """Stage our files in `work`, open the base (or start the add-on disc), add them, write `dest`."""
    repo_dir = Path(inputs.repo_dir) if inputs.repo_dir else None
    if repo_dir is None:
        from .repo import make_repo

        repo_dir = make_repo([], work / "repo", revision=epoch, allow_empty=True)
    stage = work / "stage"
    stage_tree(inputs, stage, repo_dir)
    base_fh = info = None
    try:
        if inputs.base is not None:
            iso, base_fh, info = open_base(Path(inputs.base))
            allow_lowercase_names(iso)
            _stage_menu(iso, inputs, stage)
            volume_id = info.volume_id
        else:
            iso, volume_id = _new_addon_disc(inputs, epoch)
        files: list[dict] = []
        with pinned_clock(epoch):
            add_tree(iso, stage, iso.has_joliet(), files)
            if info is not None:
                _add_isohybrid(iso, inputs, epoch)
            set_volume_dates(iso, epoch)
            blank_application_use(iso, APPDATA_SIZE)  # the new isomd5sum goes here
            t0 = time.monotonic()
            md5hex = write_image(iso, dest, f"iso: writing {inputs.iso_name}")
            t_write = time.monotonic() - t0
        iso.close()
    finally:
        if base_fh is not None:
            base_fh.close()
    log.info(f"iso: implanted isomd5sum {md5hex}")
    return _Disc(info, volume_id, md5hex, files, t_write)


def _stage_menu(iso, inputs: IsoInputs, stage: Path) -> None:
    """The base's isolinux.cfg with our node entries, staged to replace it."""
    node_entries = [isolinux.NodeEntry(n, inputs.fqdns[n], inputs.cluster) for n in sorted(inputs.kickstarts)]
    cfg_text = read_iso_file(iso, "/isolinux/isolinux.cfg").decode("utf-8", "replace")
    new_cfg = isolinux.add_node_entries(cfg_text, node_entries, inputs.console)
    (stage / "isolinux").mkdir(exist_ok=True)  # exists on the base: its mode is kept
    (stage / "isolinux" / "isolinux.cfg").write_text(new_cfg)
    os.chmod(stage / "isolinux" / "isolinux.cfg", 0o644)


def _new_addon_disc(inputs: IsoInputs, epoch: int):
    """(a new empty PyCdlib, its volume id) for the add-on disc."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    # d-characters only, and 16 at most: pycdlib also puts it in the (UCS-2) Joliet descriptor
    volume_id = re.sub(r"[^A-Z0-9_]", "_", inputs.cluster.upper())[:10] + "_ADDON"
    with pinned_clock(epoch):
        iso.new(interchange_level=4, joliet=3, rock_ridge="1.09", vol_ident=volume_id,
                app_ident_str="AN!Cluster isobuild add-on disc")
    return iso, volume_id


def _add_isohybrid(iso, inputs: IsoInputs, epoch: int) -> None:
    import pycdlib

    try:
        iso.add_isohybrid(mbr_id=_mbr_id(epoch, inputs.cluster))
    except pycdlib.pycdlibexception.PyCdlibException as err:
        raise IsobuildError(f"cannot make {inputs.iso_name} bootable from USB: {err}",
                            hint="the base's isolinux.bin must be isolinux 3.72 or newer") from None


def _mbr_id(epoch: int, cluster: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{cluster}:{epoch}".encode()).digest()[:4], "little")


def _checksums(image: Path, base: Path | None, base_cache: Path) -> tuple[str, str | None, float]:
    """(sha256 of the image, of the base (cached per base; None without one), seconds for the image's)."""
    base_sha: dict[str, str] = {}
    hasher = None
    if base is not None:
        # The base's sha256 (manifest) is read alongside the image's below: the write phase already
        # keeps both cores busy (copy + MD5), this one keeps one.
        hasher = threading.Thread(target=lambda: base_sha.update(sha256=base_sha256(Path(base), base_cache)),
                                  daemon=True)
        hasher.start()
    t0 = time.monotonic()
    iso_sha = sha256_file(image)  # a second read (page cache): the checksum above is inside the image
    t_sha = time.monotonic() - t0
    if hasher is not None:
        hasher.join()
    return iso_sha, base_sha.get("sha256"), t_sha


def _manifest(inputs: IsoInputs, disc: _Disc, image: Path, iso_sha: str, base_sha: str | None, epoch: int,
              digests: dict[str, str]) -> dict:
    info = disc.info
    return {
        "iso": inputs.iso_name,
        "kind": "remastered install DVD" if info else "add-on disc (not bootable)",
        "sha256": iso_sha,
        "size": image.stat().st_size,
        "volume_id": disc.volume_id,
        "isomd5sum": disc.md5hex,
        "source_date_epoch": epoch,
        "base": None if info is None else {
            "file": info.path.name, "sha256": base_sha, "size": info.size,
            "volume_id": info.volume_id,
            "official_f13_sha256": F13_DVD_SHA256 or "unknown to the project",
        },
        "inputs": {k: v for k, v in sorted(digests.items()) if k != "base"},
        "files": disc.files,
    }


def _retire_other_disc(inputs: IsoInputs, bootable: bool, stamps: Stamps) -> None:
    """DIR/out holds one disc: building the DVD retires the add-on disc and vice versa."""
    other = f"{inputs.cluster}-addon.iso" if bootable else f"{inputs.cluster}.iso"
    out_dir = Path(inputs.out_dir)
    for stale in (out_dir / other, out_dir / (other + ".sha256")):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    stamps.forget(f"{STAGE}-{other}")


def _report_built(inputs: IsoInputs, disc: _Disc, iso_path: Path, size: int, iso_sha: str,
                  base_sha: str | None, t_sha: float) -> None:
    if disc.info is not None:
        report_base(disc.info, base_sha)
    else:
        log.info(f"iso: {iso_path} is an ADD-ON disc (ks/, an-cluster/, overlay); it does not boot.\n"
                 f"  To build the install DVD, download {F13_DVD_NAME} from\n  {F13_DVD_URL}\n"
                 f"  and rerun with --base /path/to/{F13_DVD_NAME}")
    log.info(f"iso: wrote {iso_path} ({size / 2**20:.1f} MiB, sha256 {iso_sha}); "
             f"write + isomd5sum {disc.t_write:.2f} s, sha256 {t_sha:.2f} s")


# --------------------------------------------------------------------------------------------
# Writing the image
# --------------------------------------------------------------------------------------------


def write_image(iso, dest: Path, what: str) -> str:
    """Write the open PyCdlib to `dest` with the isomd5sum implanted; returns the md5."""
    sort_inodes_by_extent(iso, MIN_SECTORS)
    with open(dest, "wb", buffering=0) as raw:
        writer = HashingWriter(raw)
        progress = Progress(what)
        try:
            iso.write_fp(writer, blocksize=1 << 20, progress_cb=lambda done, total: progress(done, total))
        except BaseException:
            writer.abort()
            raise
        finally:
            progress.close()
        result = writer.finish()
    if result is None:
        log.info(f"{what}: writes were not in image order; checksumming the finished image")
        return implant_isomd5(dest)
    md5hex, frags = result
    write_record(dest, md5hex, frags)
    return md5hex


class Progress:
    """pycdlib's progress callback as a tqdm bar (MiB written, ETA) on a terminal; nothing when the
    stream is not a terminal or with --quiet."""

    FORMAT = "{desc} [{bar}] {n:.1f}/{total:.1f} MiB {percentage:3.0f}% ETA {remaining}"
    WIDTH = 100  # at most; the bar takes what the text leaves

    def __init__(self, what: str, stream=None) -> None:
        self.what = what
        self.stream = stream or sys.stderr
        self.bar = None

    def __call__(self, done: int, total: int, _opaque=None) -> None:
        if total <= 0:
            return
        if self.bar is None:
            from tqdm import tqdm

            # disable=None: tqdm draws only when the stream is a terminal. The size is shutil's
            # (80x24 when a terminal reports 0x0, where tqdm would draw nothing)
            size = shutil.get_terminal_size()
            self.bar = tqdm(desc=self.what, total=total, file=self.stream, disable=True if log.is_quiet() else None,
                            unit_scale=1 / 2**20, bar_format=self.FORMAT, ascii=" #", mininterval=0.2,
                            ncols=min(size.columns, self.WIDTH), nrows=size.lines)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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
        if sector == 16:
            return "primary volume descriptor (dates, application data = isomd5sum)"
        names = {16: "primary volume descriptor", **descriptor_sectors(iso)}
        if sector in names:
            return names[sector]
        if sector == boot_catalog_sector(iso):
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
