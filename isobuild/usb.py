"""The USB stick stage: a raw disk image that, written to a stick with dd, really installs a node.

Fedora 13's installer (anaconda 13.42) cannot install from the isohybrid DVD written to a stick:
`ks=cdrom:` and the kickstart's `cdrom` line only look at CD drives. It can install from an
ordinary filesystem holding the DVD image as a file (docs/usb.md has the source citations):

    ks=hd:LABEL=<stick>:/ks/<node>.ks                      the loader mounts the stick, reads the file
    stage2=hd:LABEL=<stick>:/iso/images/install.img        ... copies this real file into RAM
    repo=hd:LABEL=<stick>:/iso                             anaconda loop-mounts the *.iso in /iso on
                                                           /mnt/source (findIsoImages, mountImage)

BUILD/out/<cluster>-usb.img is an MBR disk (syslinux's mbr.bin) with one active FAT32 partition at
1 MiB, labelled `stick_label(cluster)`:

    /syslinux/               ldlinux.sys + ldlinux.c32 (`syslinux --install`), syslinux.cfg (the DVD's
                             menu with the same node entries, isobuild.isolinux), the DVD's isolinux
                             files (vmlinuz, initrd.img, boot.msg, ...), this host's .c32 modules
    /ks/<node>.ks            the stick's kickstarts: the same templates, Media.hd (no `cdrom` line)
    /iso/<cluster>.iso       the remastered DVD (`invoke iso`), as a file
    /iso/images/install.img  the DVD's stage2 image as a real file

Built without root: sfdisk, mkfs.fat --offset and mtools work on the image file, and the syslinux
installer is the mtools one. Reproducible: mtools and mkfs.fat take their dates from
SOURCE_DATE_EPOCH (the ISO's), the disk id and the FAT serial are derived from it, files are
copied one by one in a fixed order. FAT32 holds files below 4 GiB: a larger ISO is refused.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import isolinux, log
from .basedisc import file_names, open_base, read_iso_file
from .errors import IsobuildError
from .iso import IsoInputs, build_iso
from .model import Cluster
from .outputs import os_error, sweep, temp_files, work_dir
from .render import Media, render_kickstart
from .run import run, which
from .stamps import Stamps, code_digest, sha256_bytes, sha256_file

ISO_DIR = "iso"  # /iso on the stick: the ISO file and images/install.img (repo=hd:...:/iso)
CFG_DIR = "syslinux"
PART_START = 2048  # sectors: the partition starts at 1 MiB
SECTOR = 512
FAT32_MAX_FILE = 2**32 - 1
MIN_PART = 64 << 20  # FAT32 needs at least 65525 clusters
MBR_BIN = (Path("/usr/lib/syslinux/mbr/mbr.bin"), Path("/usr/share/syslinux/mbr.bin"))
# Files of the DVD's isolinux/ that are not the stick's: the CD boot loader, and the modules, which
# must match the syslinux that installs the stick (this host's), not the DVD's isolinux 3.x.
NOT_COPIED = ("isolinux.bin", "boot.cat", "isolinux.cfg", "TRANS.TBL")
TOOLS = {"sfdisk": "fdisk", "mkfs.fat": "dosfstools", "mmd": "mtools", "mcopy": "mtools", "syslinux": "syslinux"}
STAGE = "usb"
WORK = "usb-work"  # BUILD/.usb-work.tmp-<pid>-*: the staged files of one run (kickstarts: 0700)


@dataclass(frozen=True)
class UsbResult:
    image: Path
    sha256: str
    label: str
    built: bool
    reason: str


def stick_label(cluster: str) -> str:
    """The FAT label the boot entries name (LABEL=...): upper-case letters and digits, 11 at most."""
    return re.sub(r"[^A-Z0-9]", "", cluster.upper())[:11] or "ANCLUSTER"


def iso_path_on_stick(iso_name: str) -> str:
    return f"/{ISO_DIR}/{iso_name}"


def source_args(label: str, node: str) -> tuple[str, ...]:
    """Kernel arguments of a node's stick entry, as anaconda 13.42's loader parses them: the path
    after the second ':' is mandatory for hd: (setStage2LocFromCmdline, kickstartFromHD)."""
    dev = f"hd:LABEL={label}"
    return (f"ks={dev}:/ks/{node}.ks", f"stage2={dev}:/{ISO_DIR}/images/install.img", f"repo={dev}:/{ISO_DIR}")


def _tool(name: str) -> str:
    path = which(name)
    if path is None:
        raise IsobuildError(f"{name} not found: the USB stick image needs it",
                            hint=f"install it: apt-get install {TOOLS[name]} (scripts/setup.sh does)")
    return path


def _mbr_bin() -> Path:
    for p in MBR_BIN:
        if p.is_file():
            return p
    raise IsobuildError("syslinux's mbr.bin not found (looked in " + ", ".join(map(str, MBR_BIN)) + ")",
                        hint="install it: apt-get install syslinux-common")


# --------------------------------------------------------------------------------------------
# What goes on the stick
# --------------------------------------------------------------------------------------------


def render_stick_kickstarts(model: Cluster, iso_name: str, dest: Path) -> dict[str, Path]:
    """The stick's kickstarts (0600: they hold the root password hash), checked like the DVD's."""
    from .validate import check_kickstarts

    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    media = Media.hd(iso_path_on_stick(iso_name))
    for n in sorted(model.nodes, key=lambda n: n.name):
        p = dest / f"{n.name}.ks"
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(render_kickstart(model, n, media))
        out[n.name] = p
    check_kickstarts(model, list(out.values()), "the USB stick's kickstarts do not validate")
    return out


def stage_boot(base: Path, inputs: IsoInputs, label: str, dest: Path) -> None:
    """/syslinux and /iso/images of the stick, from the base DVD: its isolinux files and menu (with
    the node entries pointing at the stick), this host's modules for its .c32 names, install.img."""
    iso, fh, _info = open_base(base)
    try:
        names = file_names(iso, "/isolinux")
        _stage_syslinux(iso, names, inputs, label, dest / CFG_DIR)
        (dest / ISO_DIR / "images").mkdir(parents=True)
        with open(dest / ISO_DIR / "images" / "install.img", "wb") as out:
            iso.get_file_from_iso_fp(out, rr_path="/images/install.img")
    except (IsobuildError, OSError):  # an OSError is the work dir's (a full disk), not the base's
        raise
    except Exception as err:  # pycdlib's errors for a missing or unreadable file
        raise IsobuildError(f"cannot read the boot files from the base {base}: {err}",
                            hint="is it the Fedora 13 x86_64 DVD (isolinux/, images/install.img)?") from None
    finally:
        iso.close()
        fh.close()


def _stage_syslinux(iso, names: list[str], inputs: IsoInputs, label: str, cfg: Path) -> None:
    from .pxe import syslinux_modules

    cfg.mkdir(parents=True)
    for name in names:
        if name not in NOT_COPIED and not name.endswith(".c32"):
            with open(cfg / name, "wb") as out:
                iso.get_file_from_iso_fp(out, rr_path=f"/isolinux/{name}")
    nodes = [isolinux.NodeEntry(n, inputs.fqdns[n], inputs.cluster, source_args(label, n))
             for n in sorted(inputs.kickstarts)]
    cfg_text = read_iso_file(iso, "/isolinux/isolinux.cfg").decode("utf-8", "replace")  # open_base checked it
    menu = isolinux.add_node_entries(cfg_text, nodes, inputs.console)
    (cfg / "syslinux.cfg").write_text(menu)
    for name, src in syslinux_modules([n for n in names if n.endswith(".c32")]).items():
        if name != "ldlinux.c32":  # `syslinux --install` writes its own
            shutil.copyfile(src, cfg / name)


# --------------------------------------------------------------------------------------------
# The disk image
# --------------------------------------------------------------------------------------------


def _files(stage: Path, ks: dict[str, Path], iso: Path, iso_name: str) -> list[tuple[str, Path]]:
    """(path on the stick, source) in the order they are written."""
    files = [(f"/{p.relative_to(stage).as_posix()}", p) for p in sorted(stage.rglob("*")) if p.is_file()]
    files += [(f"/ks/{n}.ks", p) for n, p in sorted(ks.items())]
    files.append((iso_path_on_stick(iso_name), iso))
    return files


def partition_bytes(sizes: list[int]) -> int:
    """Room for the files at 32 KiB clusters (the largest mkfs.fat picks below 32 GiB), two FATs,
    and slack; whole MiB, at least MIN_PART."""
    data = sum(-(-s // 32768) * 32768 for s in sizes)
    fats = 2 * 4 * (data // 4096 + 1)  # worst case: 4 KiB clusters, 4 bytes per FAT entry
    total = data + fats + (16 << 20)
    return max(MIN_PART, -(-total // (1 << 20)) << 20)


def _ids(cluster: str, epoch: int) -> tuple[str, str]:
    """(MBR disk id, FAT volume serial), 8 hex digits each, fixed by the inputs."""
    h = hashlib.sha256(f"usb:{cluster}:{epoch}".encode()).hexdigest()
    return h[:8], h[8:16]


def write_disk(dest: Path, files: list[tuple[str, Path]], label: str, cluster: str, epoch: int) -> None:
    """MBR + one FAT32 partition holding `files`, with syslinux installed in /syslinux."""
    too_big = [(p, src.stat().st_size) for p, src in files if src.stat().st_size > FAT32_MAX_FILE]
    if too_big:
        p, size = too_big[0]
        raise IsobuildError(
            f"{p} is {size} bytes: FAT32 cannot hold a file of 4 GiB or more",
            hint="keep the ISO below 4 GiB (leave large files out of overlay/ and the repo); an ext3 "
                 "stick would need root here (extlinux installs only into a mounted filesystem)")
    part = partition_bytes([src.stat().st_size for _p, src in files])
    disk_id, serial = _ids(cluster, epoch)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "TZ": "UTC", "MTOOLS_SKIP_CHECK": "1",
           "MTOOLSRC": os.devnull}
    with open(dest, "wb") as fh:  # allocated now: a full disk fails here, not inside mcopy
        os.posix_fallocate(fh.fileno(), 0, PART_START * SECTOR + part)
    table = f"label: dos\nlabel-id: 0x{disk_id}\nunit: sectors\nstart={PART_START}, type=c, bootable\n"
    run([_tool("sfdisk"), "--no-reread", "--no-tell-kernel", "-q", str(dest)], input=table, env=env)
    run([_tool("mkfs.fat"), "-F", "32", "-n", label, "-i", serial, "-h", str(PART_START),
         "--offset", str(PART_START), "--invariant", str(dest), str(part // 1024)], env=env)
    img = f"{dest}@@{PART_START * SECTOR}"
    dirs = sorted({str(Path(p).parent) for p, _src in files} - {"/"}, key=lambda d: (d.count("/"), d))
    for d in dirs:
        run([_tool("mmd"), "-i", img, f"::{d}"], env=env)
    for p, src in files:
        run([_tool("mcopy"), "-i", img, str(src), f"::{p}"], env=env)
    run([_tool("syslinux"), "--offset", str(PART_START * SECTOR), "--install", "--directory", f"/{CFG_DIR}",
         str(dest)], env=env)
    with open(dest, "r+b") as fh:
        fh.write(_mbr_bin().read_bytes()[:440])  # boot code only: the partition table stays


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------


def _epoch(manifest: Path) -> int:
    import json

    return int(json.loads(manifest.read_text())["source_date_epoch"])


def _digests(inputs: IsoInputs, iso_sha: str, ks: dict[str, Path], label: str, epoch: int) -> dict[str, str]:
    tools = [Path(_tool("syslinux")), _mbr_bin()]
    base = Path(inputs.base)
    return {
        "iso": iso_sha,
        "base": f"{base.resolve()}:{base.stat().st_size}:{base.stat().st_mtime_ns}",
        "kickstarts": sha256_bytes("".join(f"{n}:{sha256_file(p)}\n" for n, p in sorted(ks.items()))),
        "menu": sha256_bytes(f"{label}\0{inputs.console}\0{sorted(inputs.fqdns.items())}"),
        "code": code_digest(__name__),
        "syslinux": sha256_bytes("".join(f"{p}:{sha256_file(p)}\n" for p in tools)),
        "source_date_epoch": str(epoch),
    }


def _outputs(inputs: IsoInputs) -> tuple[Path, Path]:
    """DIR/out/<cluster>-usb.img and its .sha256."""
    image = Path(inputs.out_dir) / f"{inputs.cluster}-usb.img"
    return image, image.parent / f"{image.name}.sha256"


def build_usb(model: Cluster, inputs: IsoInputs, build_dir: Path, *, force: bool = False) -> UsbResult:
    """Build the DVD (cached, `invoke iso`), then DIR/out/<cluster>-usb.img + .sha256 atomically.

    Like every stage: dead runs' temps are swept first, the stamp records both outputs (a changed
    image is rebuilt, saying why), an OSError is a clean error and the previous image stays."""
    if inputs.base is None:
        raise IsobuildError(
            "the USB stick needs the Fedora 13 DVD: it carries the remastered DVD image, and boots the "
            "DVD's kernel, initrd and install.img",
            hint="pass --base Fedora-13-x86_64-DVD.iso (or set isobuild.base_iso in invoke.yaml)")
    for t in TOOLS:
        _tool(t)
    build_dir = Path(build_dir)
    iso_res = build_iso(inputs, build_dir, force=force)
    image, sha_path = _outputs(inputs)
    try:
        sweep(image.parent, [image.name, sha_path.name])
        sweep(build_dir, [WORK])
    except OSError as err:
        raise os_error(err, "usb: cannot remove the leftovers of an interrupted build", image.parent) from None
    try:
        with work_dir(build_dir, WORK) as work:
            return _build(model, inputs, build_dir, iso_res, work, force)
    except OSError as err:
        raise os_error(err, f"usb: cannot build {image}", image.parent) from None


def _build(model: Cluster, inputs: IsoInputs, build_dir: Path, iso_res, work: Path, force: bool) -> UsbResult:
    epoch = _epoch(iso_res.manifest)
    label = stick_label(inputs.cluster)
    image, sha_path = _outputs(inputs)
    ks = render_stick_kickstarts(model, inputs.iso_name, work / "ks")
    digests = _digests(inputs, iso_res.sha256, ks, label, epoch)
    stamps = Stamps(build_dir)
    check = stamps.check(STAGE, digests, [image, sha_path])
    if check.up_to_date and not force:
        log.info(f"usb: {image} is up to date")
        return UsbResult(image, sha_path.read_text().split()[0], label, False, check.reason)
    log.info(f"usb: building {image} ({check.reason})")
    stage = work / "stage"
    stage_boot(Path(inputs.base), inputs, label, stage)
    # 0600: the kickstarts hold the root hash
    with stamps.publishing(STAGE, digests) as pub, temp_files(image, sha_path) as (tmp_img, tmp_sha):
        write_disk(tmp_img, _files(stage, ks, iso_res.iso, inputs.iso_name), label, inputs.cluster, epoch)
        sha = sha256_file(tmp_img)
        tmp_sha.write_text(f"{sha}  {image.name}\n")
        pub.file(tmp_img, image, 0o600, sha)
        pub.file(tmp_sha, sha_path, 0o644)
    log.info(f"usb: wrote {image} ({image.stat().st_size / 2**20:.1f} MiB, FAT32 label {label}, sha256 {sha})")
    return UsbResult(image, sha, label, True, check.reason)
