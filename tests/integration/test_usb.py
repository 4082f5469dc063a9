"""The USB stick image from the synthetic F13 base, read back with independent tools.

sfdisk, 7z (partition table and FAT), fsck.fat, blkid (the label udev gives anaconda: LABEL= is
resolved against it) and isoinfo on the contained ISO; pykickstart F13 on the stick's kickstarts.
The checks follow what anaconda 13.42 does with the boot entry's arguments (docs/usb.md).
"""
from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from isobuild import usb
from isobuild.errors import IsobuildError
from isobuild.iso import IsoInputs
from isobuild.loader import load_definition
from isobuild.pipeline import prepare
from tests.conftest import REPO, need_tool
from tests.fixtures import f13base
from tests.integration.test_iso import base, tools  # noqa: F401 (fixtures)

ARCH = "x86_64"


def sh(*argv, **kw) -> str:
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True, **kw).stdout


def make(build: Path, base: Path | None, repo: Path) -> tuple[object, IsoInputs]:
    """The project's cluster.yaml rendered + validated into `build`, as `invoke usb` does."""
    model = load_definition(REPO / "cluster.yaml")
    rendered = prepare(model, build)
    return model, IsoInputs(
        cluster=model.name, kickstarts=dict(rendered.kickstarts), fqdns={n.name: n.fqdn for n in model.nodes},
        out_dir=build / "out", base=base, repo_dir=repo, nodes_dir=rendered.nodes_dir,
        overlay_dir=REPO / "overlay", console="ttyS0,115200")


def build_stick(build: Path, base: Path, repo: Path, **kw):
    model, inputs = make(build, base, repo)
    return usb.build_usb(model, inputs, build, **kw)


@pytest.fixture(scope="session")
def our_repo(tmp_path_factory) -> Path:
    """The an-cluster repo `invoke rpms` would make, from stand-ins for our packages: the disc's
    %packages check (isobuild/pkgresolve.py) must find every package the kickstarts name."""
    from isobuild.repo import make_repo

    root = tmp_path_factory.mktemp("usbrepo")
    f13base.build_rpms(root / "rpms", f13base.our_packages())
    return make_repo([root / "rpms"], root / "repo")


@pytest.fixture(scope="session")
def stick(tmp_path_factory, base, our_repo):
    need_tool("sfdisk", "mkfs.fat", "mcopy", "syslinux", "7z", "fsck.fat", "blkid", "shellcheck")
    build = tmp_path_factory.mktemp("usbbuild")
    return build, build_stick(build, base, our_repo)


@pytest.fixture(scope="session")
def unpacked(stick, tmp_path_factory):
    """The FAT partition (cut out by 7z from the MBR disk) and its files (unpacked by 7z)."""
    _, res = stick
    d = tmp_path_factory.mktemp("usbread")
    sh("7z", "x", "-tMBR", "-y", f"-o{d}", res.image, "0.fat")
    part = d / "0.fat"
    sh("7z", "x", "-tFAT", "-y", f"-o{d / 'files'}", part)
    return part, d / "files"


def node_args(cfg: str) -> dict[str, list[str]]:
    """node -> kernel arguments of its entry, read with a regex (not with isobuild.isolinux)."""
    out = {}
    for m in re.finditer(r"^label (\S+)\n(?:  .*\n)*?  append (.*)$", cfg, re.M):
        args = m.group(2).split()
        ks = [a for a in args if a.startswith("ks=")]
        if ks:
            out[re.search(r"/ks/(.+)\.ks$", ks[0]).group(1)] = args
    return out


def hd_spec(arg: str) -> tuple[str, str]:
    """'ks=hd:LABEL=X:/ks/n.ks' -> ('X', '/ks/n.ks'), split as loader/hdinstall.c and method.c do
    (device up to the second ':', path after it; 13.42 needs the path)."""
    value = arg.split("=", 1)[1]
    assert value.startswith("hd:LABEL="), arg
    dev, _, path = value[len("hd:"):].partition(":")
    assert path.startswith("/"), arg
    return dev[len("LABEL="):], path


def is_iso(p: Path) -> bool:
    """isys/isofs.c fileIsIso: 'CD001' at byte 1 of any 2 KiB block from 16 to 99 (a directory's
    read fails: not an image)."""
    if not p.is_file():
        return False
    with open(p, "rb") as fh:
        for blk in range(16, 100):
            fh.seek(blk * 2048 + 1)
            if fh.read(5) == b"CD001":
                return True
    return False


# ---------------------------------------------------------------- the disk and its filesystem


def test_disk_is_mbr_with_one_active_fat32_partition(stick):
    _, res = stick
    table = sh("sfdisk", "--dump", res.image)
    parts = [line for line in table.splitlines() if "start=" in line]
    assert len(parts) == 1, table
    assert re.search(r"start=\s*2048,.*type=c, bootable", parts[0]), table
    listing = sh("7z", "l", res.image)
    assert "Type = MBR" in listing and "File System = FAT32-LBA" in listing
    mbr = res.image.read_bytes()[:512]
    assert mbr[510:] == b"\x55\xaa"
    assert mbr[:440] == Path(usb._mbr_bin()).read_bytes()[:440]  # the BIOS runs syslinux's MBR code


def test_filesystem_checks_clean_and_has_the_label_the_entries_name(unpacked, stick):
    part, _ = unpacked
    _, res = stick
    sh("fsck.fat", "-n", part)  # exit 0: no errors
    assert sh("blkid", "-o", "value", "-s", "TYPE", part).strip() == "vfat"
    assert sh("blkid", "-o", "value", "-s", "LABEL", part).strip() == res.label == "ANCLUSTER"


# ---------------------------------------------------------------- what the arguments point at


def test_every_node_entry_points_at_files_on_the_stick(unpacked, stick, base):
    part, files = unpacked
    _, res = stick
    label = sh("blkid", "-o", "value", "-s", "LABEL", part).strip()
    entries = node_args((files / "syslinux" / "syslinux.cfg").read_text())
    assert sorted(entries) == ["an-node01", "an-node02"]
    for node, args in entries.items():
        by = {a.split("=", 1)[0]: a for a in args if "=" in a}
        ks_label, ks_path = hd_spec(by["ks"])
        s2_label, s2_path = hd_spec(by["stage2"])
        repo_label, repo_path = hd_spec(by["repo"])
        assert ks_label == s2_label == repo_label == label
        assert ks_path == f"/ks/{node}.ks" and (files / ks_path.lstrip("/")).is_file()
        # the loader copies stage2 from this path: a real file, the DVD's install.img
        stage2 = files / s2_path.lstrip("/")
        assert stage2.read_bytes() == subprocess.run(
            ["isoinfo", "-R", "-i", str(base), "-x", "/images/install.img"], check=True,
            capture_output=True).stdout
        # anaconda takes the *.iso images in the repo= directory that are disc 1 of this arch
        isos = [p for p in (files / repo_path.lstrip("/")).iterdir() if is_iso(p)]
        assert [p.name for p in isos] == ["an-cluster.iso"]
        assert hashlib.sha256(isos[0].read_bytes()).hexdigest() == \
            hashlib.sha256((res.image.parent / "an-cluster.iso").read_bytes()).hexdigest()


def test_the_iso_on_the_stick_is_what_findIsoImages_accepts(unpacked):
    _, files = unpacked
    iso = files / "iso" / "an-cluster.iso"
    names = set(sh("isoinfo", "-R", "-f", "-i", iso).split())
    discinfo = sh("isoinfo", "-R", "-i", iso, "-x", "/.discinfo").splitlines()
    assert discinfo[2] == ARCH and discinfo[3] in ("ALL", "1")  # image.py getDiscNums: ALL = disc 1
    assert "/images/install.img" in names  # disc 1 must carry it
    assert any(n.startswith("/Packages/") for n in names)  # productPath
    for node in ("an-node01", "an-node02"):  # what %post --nochroot copies after re-mounting it
        assert f"/an-cluster/nodes/{node}/etc/cluster/cluster.conf" in names
    assert "/an-cluster/repodata/repomd.xml" in names  # the kickstart's repo line


def test_boot_files_are_the_dvds_and_syslinux_is_installed(unpacked, base):
    _, files = unpacked
    for name in ("vmlinuz", "initrd.img"):
        assert (files / "syslinux" / name).read_bytes() == subprocess.run(
            ["isoinfo", "-R", "-i", str(base), "-x", f"/isolinux/{name}"], check=True, capture_output=True).stdout
    assert (files / "syslinux" / "ldlinux.sys").is_file() and (files / "syslinux" / "ldlinux.c32").is_file()
    assert not (files / "syslinux" / "isolinux.bin").exists()


def test_timeout_default_is_the_dvds_own_entry(unpacked):
    _, files = unpacked
    cfg = (files / "syslinux" / "syslinux.cfg").read_text()
    assert cfg.startswith("serial 0 115200\n")
    default = re.search(r"^label (\S+)\n  menu label .*\n  menu default$", cfg, re.M)
    assert default and default.group(1) == "linux"
    assert "ks=" not in re.search(r"^label linux\n(?:  .*\n)*?  append (.*)$", cfg, re.M).group(1)


# ---------------------------------------------------------------- the stick's kickstarts


def test_stick_kickstarts_differ_from_the_dvds_only_in_the_source(unpacked, stick):
    build, _ = stick
    _, files = unpacked
    for node in ("an-node01", "an-node02"):
        dvd = (build / "kickstart" / f"{node}.ks").read_text().splitlines()
        stick_ks = (files / "ks" / f"{node}.ks").read_text().splitlines()
        removed = [line[1:] for line in difflib.unified_diff(dvd, stick_ks, lineterm="", n=0)
                   if line.startswith("-") and not line.startswith("---")]
        added = [line[1:] for line in difflib.unified_diff(dvd, stick_ks, lineterm="", n=0)
                 if line.startswith("+") and not line.startswith("+++")]
        assert removed == ["cdrom"]
        assert added[0].startswith("# install source: repo=hd:")
        # the rest: re-mounting the ISO in %post --nochroot, which must name the ISO on the stick
        iso_line = next(a for a in added if a.startswith("iso="))
        assert iso_line == "iso=/mnt/isodir/iso/an-cluster.iso"
        assert (files / iso_line[len("iso=/mnt/isodir/"):]).is_file()
        assert all(a.startswith(("#", "iso=", "if ", "fi", "    ")) for a in added[1:]), added


def test_stick_kickstarts_parse_under_f13_without_a_method(unpacked):
    from pykickstart.parser import KickstartParser
    from pykickstart.version import F13, makeVersion

    _, files = unpacked
    for node in ("an-node01", "an-node02"):
        handler = makeVersion(F13)
        KickstartParser(handler).readKickstart(str(files / "ks" / f"{node}.ks"))
        assert handler.method.method is None  # no cdrom: the loader keeps stage2=/repo= of the entry
        assert [r.baseurl for r in handler.repo.repoList] == ["file:///mnt/source/an-cluster"]


def test_bad_stick_kickstart_is_refused(monkeypatch, tmp_path):
    """The stick's kickstarts go through the real validators: a broken %post stops the build."""
    from isobuild import render

    model = load_definition(REPO / "cluster.yaml")
    real = render.render_kickstart
    monkeypatch.setattr(usb, "render_kickstart",
                        lambda *a, **k: real(*a, **k).replace("set -u\n", "set -u\nif then\n", 1))
    with pytest.raises(IsobuildError, match="USB stick's kickstarts do not validate"):
        usb.render_stick_kickstarts(model, "an-cluster.iso", tmp_path / "ks")


# ---------------------------------------------------------------- build behaviour


def test_rebuild_is_a_noop_and_a_fresh_build_is_identical(stick, tmp_path, base, our_repo):
    build, res = stick
    again = build_stick(build, base, our_repo)
    assert not again.built and again.sha256 == res.sha256
    fresh = build_stick(tmp_path / "b", base, our_repo)
    assert fresh.built
    assert fresh.image.read_bytes() == res.image.read_bytes()
    assert (fresh.image.parent / f"{fresh.image.name}.sha256").read_text() == f"{res.sha256}  an-cluster-usb.img\n"
    assert fresh.image.stat().st_mode & 0o077 == 0  # it holds the root password hash


def test_failed_build_leaves_nothing_behind(monkeypatch, tmp_path, base, our_repo):
    def broken(dest, *a, **k):
        Path(dest).write_bytes(b"half")
        raise IsobuildError("mcopy failed")

    monkeypatch.setattr(usb, "write_disk", broken)
    with pytest.raises(IsobuildError, match="mcopy failed"):
        build_stick(tmp_path, base, our_repo)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "an-cluster.iso", "an-cluster.iso.sha256", "manifest.json"]


def test_truncated_image_is_rebuilt_saying_why(stick, base, our_repo, caplog):
    build, res = stick
    os.truncate(res.image, res.image.stat().st_size // 2)
    again = build_stick(build, base, our_repo)
    assert again.built and again.reason.startswith("output changed: out/an-cluster-usb.img (size")
    assert again.sha256 == res.sha256 == hashlib.sha256(res.image.read_bytes()).hexdigest()


def test_a_dead_runs_temps_are_swept_a_live_runs_kept(stick, base, our_repo):
    build, res = stick
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "600"])
    try:
        out = res.image.parent
        gone = [out / f".an-cluster-usb.img.tmp-{dead.pid}-x", out / f".an-cluster-usb.img.sha256.tmp-{dead.pid}-y",
                build / f".usb-work.tmp-{dead.pid}-z"]
        kept = [out / f".an-cluster-usb.img.tmp-{live.pid}-x", build / f".usb-work.tmp-{live.pid}-z"]
        for p in gone + kept:
            p.mkdir() if "work" in p.name else p.write_bytes(b"half")
        assert not build_stick(build, base, our_repo).built  # swept even when up to date
        assert [p for p in gone if p.exists()] == [] and all(p.exists() for p in kept)
    finally:
        live.kill()
        live.wait()
        for p in kept:
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def test_full_disk_is_a_clean_error_and_keeps_the_image(tmp_path, base, our_repo, monkeypatch):
    from tests.integration.test_crash import _fill, leftovers, tmpfs

    digests = usb._digests
    with tmpfs(tmp_path / "fs", "400m") as fs:
        good = build_stick(fs / "build", base, our_repo)
        filler = _fill(fs, 1 << 20)  # room for the stamps, not for a new image
        # an input only the stick has changes: the DVD stays up to date, the stick is rebuilt
        monkeypatch.setattr(usb, "_digests", lambda *a: {**digests(*a), "menu": "changed"})
        with pytest.raises(IsobuildError) as err:
            build_stick(fs / "build", base, our_repo)
        monkeypatch.undo()
        msg = str(err.value)
        assert msg.startswith(f"usb: cannot build {good.image}") and "No space left on device" in msg, msg
        assert err.value.hint.startswith("free space") and "previous output is unchanged" in err.value.hint
        assert hashlib.sha256(good.image.read_bytes()).hexdigest() == good.sha256
        assert leftovers(fs / "build") == []
        filler.unlink()
        assert not build_stick(fs / "build", base, our_repo).built  # the previous build still stands


def test_without_a_base_the_error_says_the_stick_needs_it(tmp_path, our_repo):
    with pytest.raises(IsobuildError, match="USB stick needs the Fedora 13 DVD") as err:
        build_stick(tmp_path, None, our_repo)
    assert "--base" in err.value.hint
    assert not (tmp_path / "out").exists()


def test_an_iso_of_4_gib_is_refused_before_writing(tmp_path):
    big = tmp_path / "big.iso"
    with open(big, "wb") as fh:
        fh.truncate(2**32)  # sparse
    dest = tmp_path / "disk.img"
    with pytest.raises(IsobuildError, match="FAT32 cannot hold a file of 4 GiB"):
        usb.write_disk(dest, [("/iso/big.iso", big)], "ANCLUSTER", "an-cluster", 1274745600)
    assert not dest.exists()


def test_label_and_arguments():
    assert usb.stick_label("an-cluster-01") == "ANCLUSTER01"
    assert usb.stick_label("a-very-long-cluster") == "AVERYLONGCL"
    assert usb.stick_label("---") == "ANCLUSTER"
    assert usb.source_args("X1", "n1") == (
        "ks=hd:LABEL=X1:/ks/n1.ks", "stage2=hd:LABEL=X1:/iso/images/install.img", "repo=hd:LABEL=X1:/iso")
    assert f13base.VOLUME_ID != "ANCLUSTER"  # the stick's label is not the DVD's: LABEL= finds the stick


def test_invoke_usb_without_a_base_exits_2_with_the_reason(tmp_path):
    from tests.integration.test_iso_task import invoke

    res = invoke("usb", "--build-dir", tmp_path / "build")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "error: the USB stick needs the Fedora 13 DVD" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "build" / "out").exists()


def test_stick_entries_replace_the_templates_source_arguments():
    from isobuild import isolinux

    cfg = ("default linux\ntimeout 50\nlabel linux\n  kernel vmlinuz\n"
           "  append initrd=initrd.img stage2=cdrom: repo=cdrom: method=x ks=cdrom:/old.ks quiet\n")
    out = isolinux.add_node_entries(cfg, [isolinux.NodeEntry("n1", "n1.example", "c", usb.source_args("C", "n1"))])
    entry = re.search(r"^label n1\n(?:  .*\n)*?  append (.*)$", out, re.M).group(1).split()
    assert entry == ["initrd=initrd.img", "quiet", *usb.source_args("C", "n1")]
    with pytest.raises(IsobuildError, match="already has node install entries"):
        isolinux.add_node_entries(out, [isolinux.NodeEntry("n2", "n2.example", "c", usb.source_args("C", "n2"))])


@pytest.mark.parametrize("path", ["iso/x.iso", "/iso/a:b.iso"])
def test_media_hd_needs_an_absolute_path_without_colons(path):
    from isobuild.render import Media

    with pytest.raises(IsobuildError, match="must be absolute and have no ':'"):
        Media.hd(path)


def nochroot_script(ks: Path) -> str:
    from pykickstart.parser import KickstartParser
    from pykickstart.version import F13, makeVersion

    handler = makeVersion(F13)
    KickstartParser(handler).readKickstart(str(ks))
    (script,) = [s for s in handler.scripts if not s.inChroot]
    return script.script


# `mount` for the %post --nochroot runs below: the test host's kernel may have no iso9660 (a
# container), so this stands in for util-linux-ng 2.17's mount (F13's install.img) in the one form
# the stick's kickstart uses, `mount -o loop,ro -t iso9660 FILE DIR` (mount(8): -o loop, ro; -t),
# and anything else fails. It "mounts" by extracting the image with xorriso (Rock Ridge modes kept).
MOUNT_SHIM = """#!/bin/bash
set -eu
[ "$#" -eq 6 ] && [ "$1" = -o ] && [ "$3" = -t ] || { echo "mount shim: unsupported: $*" >&2; exit 1; }
case ",$2," in *,loop,*) ;; *) echo "mount shim: $5 is a file: needs -o loop" >&2; exit 32;; esac
[ "$4" = iso9660 ] && [ -f "$5" ] && [ -d "$6" ] || { echo "mount shim: bad arguments: $*" >&2; exit 32; }
xorriso -osirrox on -indev "$5" -extract / "$6" > /dev/null 2>&1 || exit 32
"""


def run_as_installer(script: str, stick_files: Path, mnt: Path) -> subprocess.CompletedProcess:
    """`script` as anaconda 13.42 runs %post --nochroot after a hard-drive install: the stick mounted
    on /mnt/isodir, /mnt/source already unmounted (YumBackend.complete), the new system on
    /mnt/sysimage. In a private mount namespace with `mnt` bound on /mnt."""
    (mnt / "isodir").mkdir(parents=True)
    (mnt / "sysimage" / "root").mkdir(parents=True)
    (mnt / "bin").mkdir()
    (mnt / "bin" / "mount").write_text(MOUNT_SHIM)
    (mnt / "bin" / "mount").chmod(0o755)
    (mnt / "post.sh").write_text(script)
    setup = ('mount --bind "$0" /mnt && mount --bind "$1" /mnt/isodir && PATH=/mnt/bin:$PATH '
             'exec bash /mnt/post.sh')
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", setup, mnt, stick_files],
                          capture_output=True, text=True, timeout=120)


def test_stick_post_nochroot_stages_the_node_files_from_the_iso(unpacked, stick, tmp_path):
    from tests.conftest import need_root

    need_root("a private mount namespace")
    need_tool("unshare", "xorriso")
    build, _ = stick
    _, files = unpacked
    node = "an-node01"
    res = run_as_installer(nochroot_script(files / "ks" / f"{node}.ks"), files, tmp_path / "mnt")
    assert res.returncode == 0, res.stdout + res.stderr
    stage = tmp_path / "mnt" / "sysimage" / "var" / "lib" / "an-cluster" / "stage"
    src = build / "nodes" / node
    for p in sorted(src.rglob("*")):
        if p.is_file():
            rel = p.relative_to(src)
            assert (stage / rel).read_bytes() == p.read_bytes(), rel
            assert (stage / rel).stat().st_mode & 0o777 == p.stat().st_mode & 0o777, rel
    assert stage.stat().st_mode & 0o777 == 0o700
    conf = tmp_path / "mnt" / "sysimage" / "etc" / "cluster" / "cluster.conf"
    assert conf.read_bytes() == (src / "etc" / "cluster" / "cluster.conf").read_bytes()
    assert conf.stat().st_mode & 0o777 == 0o640


def test_the_dvds_post_nochroot_would_find_nothing_on_a_stick(unpacked, stick, tmp_path):
    """Why the stick's kickstart re-mounts the ISO: the DVD's script, run the same way, fails."""
    from tests.conftest import need_root

    need_root("a private mount namespace")
    build, _ = stick
    _, files = unpacked
    res = run_as_installer(nochroot_script(build / "kickstart" / "an-node01.ks"), files, tmp_path / "mnt")
    assert res.returncode == 1
    assert "an-cluster: /mnt/source/an-cluster/nodes/an-node01 missing from the install media" in res.stderr
