"""The ISO stage against a synthetic Fedora 13 DVD, read back with independent tools.

xorriso, isoinfo, checkisomd5/implantisomd5, dnf and createrepo_c are the real ones. The base is
built by tests/fixtures/f13base.py with genisoimage the way the F13 DVD was mastered.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from isobuild import iso as isomod
from isobuild import log
from isobuild.errors import IsobuildError
from isobuild.repo import make_repo
from tests.conftest import need_tool
from tests.fixtures import f13base

NODES = {"an-node01": "an-node01.alteeve.ca", "an-node02": "an-node02.alteeve.ca"}


def sh(*argv, **kw) -> str:
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True, **kw).stdout


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extract(image: Path, path: str) -> bytes:
    return subprocess.run(["isoinfo", "-R", "-i", str(image), "-x", path],
                          check=True, capture_output=True).stdout


@pytest.fixture(scope="session")
def tools():
    return need_tool("xorriso", "isoinfo", "genisoimage", "implantisomd5", "checkisomd5",
                     "createrepo_c", "rpmbuild", "cpio", "busybox")


@pytest.fixture(scope="session")
def base(tmp_path_factory, tools) -> Path:
    return f13base.build_base(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="session")
def inputs_dir(tmp_path_factory, tools) -> Path:
    """Kickstarts, per-node files, an overlay with modes, and a repo with one real RPM."""
    d = tmp_path_factory.mktemp("inputs")
    (d / "ks").mkdir()
    for node in NODES:
        (d / "ks" / f"{node}.ks").write_text(f"# kickstart for {node}\ncdrom\ntext\n")
        etc = d / "nodes" / node / "etc"
        etc.mkdir(parents=True)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n10.0.0.1 {node}\n")
        (d / "nodes" / node / "etc" / "an-cluster").mkdir()
        (d / "nodes" / node / "etc" / "an-cluster" / "firstboot.env").write_text(f"NODE={node}\n")
        os.chmod(d / "nodes" / node / "etc" / "an-cluster" / "firstboot.env", 0o600)
    fb = d / "overlay" / "firstboot"
    (fb / "steps").mkdir(parents=True)
    (fb / "an-cluster-firstboot").write_text("#!/bin/bash\necho firstboot\n")
    os.chmod(fb / "an-cluster-firstboot", 0o755)
    (fb / "steps" / "10-network.sh").write_text("#!/bin/bash\n:\n")
    os.chmod(fb / "steps" / "10-network.sh", 0o750)
    (fb / "VERSION").write_text("1.0.0\n")
    os.chmod(fb / "VERSION", 0o600)
    rpms = f13base.build_rpms(d / "rpms")
    assert rpms
    make_repo([d / "rpms"], d / "repo", revision=1274745600)
    return d


def make_inputs(d: Path, out: Path, base: Path | None, **kw) -> isomod.IsoInputs:
    return isomod.IsoInputs(
        cluster="an-cluster-01",
        kickstarts={n: d / "ks" / f"{n}.ks" for n in NODES},
        fqdns=dict(NODES),
        out_dir=out,
        base=base,
        repo_dir=d / "repo",
        nodes_dir=d / "nodes",
        overlay_dir=d / "overlay",
        console=kw.pop("console", "ttyS0,115200"),
        **kw,
    )


@pytest.fixture(scope="session")
def built(tmp_path_factory, base, inputs_dir):
    build = tmp_path_factory.mktemp("build")
    result = isomod.build_iso(make_inputs(inputs_dir, build / "out", base), build)
    return build, result


def iso_files(image: Path) -> list[str]:
    out = sh("isoinfo", "-R", "-f", "-i", image)
    return sorted(line for line in out.splitlines() if line)


# ---------------------------------------------------------------- remaster read-back


def test_outputs_next_to_each_other(built):
    build, r = built
    assert r.built and r.iso == build / "out" / "an-cluster-01.iso"
    assert sorted(p.name for p in (build / "out").iterdir()) == [
        "an-cluster-01.iso", "an-cluster-01.iso.sha256", "manifest.json"]
    assert (build / "out" / "an-cluster-01.iso.sha256").read_text() == \
        f"{sha(r.iso.read_bytes())}  an-cluster-01.iso\n"
    sh("sha256sum", "-c", "an-cluster-01.iso.sha256", cwd=build / "out")


def test_el_torito_hybrid_and_descriptors(built, base):
    _, r = built
    report = subprocess.run(
        ["xorriso", "-indev", str(r.iso), "-report_el_torito", "plain", "-report_system_area", "plain"],
        capture_output=True, text=True, check=True)
    text = report.stdout + report.stderr
    assert "El Torito img path :   1  /isolinux/isolinux.bin" in text
    assert "boot-info-table" in text
    assert "El Torito cat path : /isolinux/boot.cat" in text
    assert "MBR partition table" in text  # isohybrid: bootable when written to a USB stick
    info = sh("isoinfo", "-d", "-i", r.iso)
    assert "Volume id: Fedora 13 x86_64 DVD" in info
    assert "Joliet with UCS level 3 found" in info
    assert "Rock Ridge signatures version 1 found" in info
    assert "Eltorito defaultboot header" in info
    tree = subprocess.run(["xorriso", "-indev", str(r.iso), "-find", "/", "-exec", "lsdl"],
                          capture_output=True, text=True)
    assert tree.returncode == 0 and "FAILURE" not in tree.stderr, tree.stderr[-2000:]
    mbr = r.iso.read_bytes()[:512]
    assert mbr[510:512] == b"\x55\xaa"
    # Joliet names are there too
    joliet = sh("isoinfo", "-J", "-f", "-i", r.iso)
    assert "/ks/an-node01.ks" in joliet


def test_added_files_content_and_modes(built, inputs_dir):
    _, r = built
    files = iso_files(r.iso)
    for node in NODES:
        assert extract(r.iso, f"/ks/{node}.ks") == (inputs_dir / "ks" / f"{node}.ks").read_bytes()
        for rel in ("etc/hosts", "etc/an-cluster/firstboot.env"):
            assert extract(r.iso, f"/an-cluster/nodes/{node}/{rel}") == \
                (inputs_dir / "nodes" / node / rel).read_bytes()
    assert "/an-cluster/repodata/repomd.xml" in files
    listing = sh("isoinfo", "-R", "-l", "-i", r.iso)
    modes = {}
    current = ""
    for line in listing.splitlines():
        if line.startswith("Directory listing of "):
            current = line.split("of ", 1)[1].strip()
        elif line[:1] in "-d" and len(line.split()) > 5:
            modes[current + line.split()[-1]] = line.split()[0]
    assert modes["/firstboot/an-cluster-firstboot"] == "-rwxr-xr-x"
    # overlay/ is a git checkout: only the executable bit is real, the rest is the umask
    assert modes["/firstboot/steps/10-network.sh"] == "-rwxr-xr-x"
    assert modes["/firstboot/VERSION"] == "-rw-r--r--"
    assert modes["/ks/an-node01.ks"] == "-rw-r--r--"
    # rendered node files keep their modes (a secret stays 0600)
    assert modes["/an-cluster/nodes/an-node01/etc/an-cluster/firstboot.env"] == "-rw-------"


def test_boot_menu_on_disc(built):
    _, r = built
    cfg = extract(r.iso, "/isolinux/isolinux.cfg").decode()
    assert cfg.splitlines()[0] == "serial 0 115200"
    for node, fqdn in NODES.items():
        assert f"menu label Install {fqdn} (an-cluster-01): ERASES ALL DISKS" in cfg
        assert f"ks=cdrom:/ks/{node}.ks console=tty0 console=ttyS0,115200" in cfg
    from isobuild import isolinux

    assert isolinux.parse(cfg).timeout_entry().name == "linux"  # the base's default, not an install


def test_base_files_untouched(built, base):
    _, r = built
    base_files = iso_files(base)
    new_files = set(iso_files(r.iso))
    assert set(base_files) <= new_files
    listing = sh("isoinfo", "-R", "-l", "-i", base)
    regular = set()
    current = ""
    for line in listing.splitlines():
        if line.startswith("Directory listing of "):
            current = line.split("of ", 1)[1].strip()
        elif line.startswith("-"):
            regular.add(current + line.split()[-1])
    checked = 0
    for path in sorted(regular):
        old, new = extract(base, path), extract(r.iso, path)
        if path == "/isolinux/isolinux.cfg":
            assert old != new
            continue
        if path == "/isolinux/boot.cat":
            continue  # El Torito catalog: names the boot image's new LBA
        if path == "/isolinux/isolinux.bin":
            # bytes 8..63 are the boot-info-table (LBAs and checksum), rewritten for the new layout
            assert old[:8] == new[:8] and old[64:] == new[64:]
            check_boot_info_table(r.iso, new)
            continue
        assert sha(old) == sha(new), path
        checked += 1
    assert checked > 20


def check_boot_info_table(image: Path, boot: bytes) -> None:
    """isolinux finds itself through this table: PVD LBA, its own LBA, length, checksum (from byte 64)."""
    import struct

    pvd_lba, file_lba, length, csum = struct.unpack("<4I", boot[8:24])
    report = subprocess.run(["xorriso", "-indev", str(image), "-report_el_torito", "plain"],
                            capture_output=True, text=True, check=True).stdout
    lba = int(next(line for line in report.splitlines() if line.startswith("El Torito boot img :")).split()[-1])
    words = struct.unpack(f"<{(len(boot) - 64) // 4}I", boot[64:64 + (len(boot) - 64) // 4 * 4])
    assert (pvd_lba, file_lba, length, csum) == (16, lba, len(boot), sum(words) & 0xFFFFFFFF)


def test_isomd5sum_passes_and_matches_implantisomd5(built, tmp_path):
    _, r = built
    out = subprocess.run(["checkisomd5", "--verbose", str(r.iso)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    md5 = json.loads(r.manifest.read_text())["isomd5sum"]
    assert md5 in sh("checkisomd5", "--md5sumonly", r.iso)
    # our in-stream checksum is byte-for-byte what implantisomd5 writes in its second pass
    copy = tmp_path / "copy.iso"
    shutil.copy(r.iso, copy)
    sh("implantisomd5", "--force", copy)
    assert copy.read_bytes() == r.iso.read_bytes()


def test_isomd5sum_detects_corruption_and_diff_names_the_file(built, tmp_path):
    import pycdlib

    _, r = built
    iso = pycdlib.PyCdlib()
    iso.open(str(r.iso))
    extent = iso.get_record(rr_path="/images/install.img").extent_location()
    iso.close()
    bad = tmp_path / "bad.iso"
    shutil.copy(r.iso, bad)
    with open(bad, "r+b") as fh:
        fh.seek(extent * 2048 + 1000)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert subprocess.run(["checkisomd5", str(bad)], capture_output=True).returncode == 1
    where = isomod.describe_difference(r.iso, bad)
    assert where == f"first difference at byte {extent * 2048 + 1000} (sector {extent}): data of file /images/install.img"


def test_repo_readable_by_dnf(built, tmp_path):
    need_tool("dnf")
    _, r = built
    dest = tmp_path / "x"
    sh("xorriso", "-osirrox", "on", "-indev", r.iso, "-extract", "/an-cluster", dest)
    out = sh("dnf", "-q", "--setopt=reposdir=/dev/null", f"--setopt=cachedir={tmp_path / 'cache'}",
             f"--repofrompath=an,file://{dest}", "--repo=an", "repoquery", "--qf", "%{name}-%{version}")
    assert sorted(out.split()) == ["f13-fixture-alpha-1.0", "f13-fixture-beta-1.0", "f13-fixture-gamma-1.0"]
    repomd = (dest / "repodata" / "repomd.xml").read_text()
    assert 'type="sha256"' in repomd and ".xml.gz" in repomd


def test_manifest(built, base, inputs_dir):
    _, r = built
    m = json.loads(r.manifest.read_text())
    assert m["base"]["sha256"] == sha(base.read_bytes())
    assert m["base"]["volume_id"] == "Fedora 13 x86_64 DVD"
    assert m["volume_id"] == "Fedora 13 x86_64 DVD"
    assert m["sha256"] == r.sha256
    by_path = {f["path"]: f for f in m["files"]}
    assert by_path["/isolinux/isolinux.cfg"]["action"] == "replaced"
    ks = by_path["/ks/an-node01.ks"]
    assert ks["action"] == "added"
    assert ks["sha256"] == sha((inputs_dir / "ks" / "an-node01.ks").read_bytes())
    assert by_path["/firstboot/an-cluster-firstboot"]["mode"] == "0755"
    assert by_path["/an-cluster/nodes/an-node02/etc/an-cluster/firstboot.env"]["mode"] == "0600"
    for f in m["files"]:
        assert sha(extract(r.iso, f["path"])) == f["sha256"], f["path"]
    assert {"kickstarts", "repo", "nodes", "overlay", "menu"} <= set(m["inputs"])


# ---------------------------------------------------------------- reproducible, cached


def test_double_build_is_byte_identical(tmp_path, base, inputs_dir, built):
    _, first = built
    b2 = tmp_path / "b2"
    second = isomod.build_iso(make_inputs(inputs_dir, b2 / "out", base), b2)
    assert second.sha256 == first.sha256
    assert isomod.describe_difference(first.iso, second.iso) == "identical"


def test_umask_does_not_change_the_image(tmp_path, base, inputs_dir, built):
    """A checkout and build under umask 077 give the same bytes as under 022."""
    _, first = built
    d = tmp_path / "in"
    old = os.umask(0o077)
    try:
        shutil.copytree(inputs_dir, d, copy_function=shutil.copyfile)  # modes from the umask
        for node in NODES:  # rendered files have explicit modes (render sets them)
            for p in (d / "nodes" / node).rglob("*"):
                os.chmod(p, os.stat(inputs_dir / p.relative_to(d)).st_mode & 0o7777)
        exe = d / "overlay" / "firstboot" / "an-cluster-firstboot"
        os.chmod(exe, 0o700)
        os.chmod(d / "overlay" / "firstboot" / "steps" / "10-network.sh", 0o700)
        for k in (d / "ks").iterdir():
            os.chmod(k, 0o644)
        b = tmp_path / "b"
        other = isomod.build_iso(replace(make_inputs(d, b / "out", base), repo_dir=inputs_dir / "repo"), b)
    finally:
        os.umask(old)
    assert other.sha256 == first.sha256, isomod.describe_difference(first.iso, other.iso)


def test_epoch_changes_dates_only_where_dates_live(tmp_path, base, inputs_dir, built):
    _, first = built
    b3 = tmp_path / "b3"
    other = isomod.build_iso(make_inputs(inputs_dir, b3 / "out", base, source_date_epoch=1300000000), b3)
    assert other.sha256 != first.sha256
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(str(other.iso))
    mod = iso.pvd.volume_modification_date
    assert (mod.year, mod.month, mod.dayofmonth, mod.hour, mod.gmtoffset) == (2011, 3, 13, 7, 0)  # 1300000000 UTC
    ks = iso.get_record(rr_path="/ks/an-node01.ks").date
    assert (ks.years_since_1900, ks.month, ks.day_of_month, ks.gmtoffset) == (111, 3, 13, 0)
    iso.close()
    where = isomod.describe_difference(first.iso, other.iso)
    assert "isohybrid MBR" in where or "volume descriptor" in where or "directory records" in where, where


def test_up_to_date_then_changed_input_is_named(tmp_path, base, inputs_dir):
    d = tmp_path / "in"
    shutil.copytree(inputs_dir, d)
    build = tmp_path / "build"
    inputs = make_inputs(d, build / "out", base)
    assert isomod.build_iso(inputs, build).built
    mtime = (build / "out" / "an-cluster-01.iso").stat().st_mtime_ns
    again = isomod.build_iso(inputs, build)
    assert not again.built and again.reason == "up to date"
    assert (build / "out" / "an-cluster-01.iso").stat().st_mtime_ns == mtime
    (d / "ks" / "an-node02.ks").write_text("# changed\n")
    third = isomod.build_iso(inputs, build)
    assert third.built and "kickstarts" in third.reason
    assert extract(third.iso, "/ks/an-node02.ks") == b"# changed\n"
    fourth = isomod.build_iso(replace(inputs, console=None), build)
    assert fourth.built and "menu" in fourth.reason


def test_progress_silent_off_a_terminal_and_quiet(tmp_path, base, inputs_dir, capfd):
    build = tmp_path / "build"
    isomod.build_iso(make_inputs(inputs_dir, build / "out", base), build, force=True)
    err = capfd.readouterr().err
    assert "iso: wrote " in err  # the log lines stay; the bar is drawn on a terminal only
    assert "iso: writing" not in err and "MiB [" not in err and "\r" not in err
    log.set_quiet(True)
    try:
        isomod.build_iso(make_inputs(inputs_dir, build / "out", base), build, force=True)
    finally:
        log.set_quiet(False)
    assert capfd.readouterr().err == ""


# ---------------------------------------------------------------- add-on disc


def test_addon_disc_without_base(tmp_path, inputs_dir, capfd):
    build = tmp_path / "build"
    r = isomod.build_iso(make_inputs(inputs_dir, build / "out", None), build)
    assert r.iso.name == "an-cluster-01-addon.iso"
    err = capfd.readouterr().err
    assert "does not boot" in err and "Fedora-13-x86_64-DVD.iso" in err and "--base" in err
    assert subprocess.run(["checkisomd5", str(r.iso)], capture_output=True).returncode == 0
    info = sh("isoinfo", "-d", "-i", r.iso)
    assert "El Torito" not in info and "Rock Ridge" in info
    files = iso_files(r.iso)
    assert "/ks/an-node01.ks" in files and "/an-cluster/repodata/repomd.xml" in files
    assert "/firstboot/an-cluster-firstboot" in files
    m = json.loads(r.manifest.read_text())
    assert m["base"] is None and "not bootable" in m["kind"]


def test_empty_repo_when_no_rpms(tmp_path, inputs_dir, base):
    build = tmp_path / "build"
    r = isomod.build_iso(replace(make_inputs(inputs_dir, build / "out", base), repo_dir=None), build)
    repomd = extract(r.iso, "/an-cluster/repodata/repomd.xml").decode()
    assert "primary" in repomd
    assert not [f for f in iso_files(r.iso) if f.startswith("/an-cluster/") and f.endswith(".rpm")]


# ---------------------------------------------------------------- bad bases


def _bad_base(kind: str, tmp: Path, good: Path) -> Path:
    if kind == "not-an-iso":
        p = tmp / "random.iso"
        p.write_bytes(os.urandom(64 * 2048))
    elif kind == "no-el-torito":
        p = f13base.build_base(tmp, "noboot.iso", eltorito=False)
    elif kind == "not-fedora-13":
        tree = f13base.TREEINFO.replace("version = 13", "version = 14")
        p = f13base.build_base(tmp, "f14.iso", treeinfo=tree,
                               discinfo=f13base.DISCINFO.replace("\n13\n", "\n14\n"))
    elif kind == "not-x86_64":
        p = f13base.build_base(tmp, "i386.iso", treeinfo=f13base.TREEINFO.replace("arch = x86_64", "arch = i386"),
                               discinfo=f13base.DISCINFO.replace("x86_64", "i386"))
    elif kind == "truncated":
        p = tmp / "truncated.iso"
        with open(good, "rb") as src, open(p, "wb") as dst:
            dst.write(src.read(good.stat().st_size // 2))
    elif kind == "directory":
        p = tmp / "adir.iso"
        p.mkdir()
    elif kind == "missing":
        p = tmp / "nope.iso"
    else:
        raise AssertionError(kind)
    return p


@pytest.mark.parametrize("kind,message", [
    ("not-an-iso", "not an ISO9660 image"),
    ("no-el-torito", "no El Torito boot record"),
    ("not-fedora-13", "not a Fedora 13 x86_64 install DVD"),
    ("not-x86_64", "arch 'i386'"),
    ("truncated", "is truncated"),
    ("directory", "is a directory"),
    ("missing", "base ISO not found"),
])
def test_bad_base_clear_error_and_no_output(kind, message, tmp_path, base, inputs_dir):
    bad = _bad_base(kind, tmp_path, base)
    build = tmp_path / "build"
    with pytest.raises(IsobuildError) as exc:
        isomod.build_iso(make_inputs(inputs_dir, build / "out", bad), build)
    assert message in str(exc.value)
    assert exc.value.hint
    out = build / "out"
    assert not out.exists() or list(out.iterdir()) == []
    assert not [p for p in build.iterdir() if p.name.startswith(".iso-work")] if build.exists() else True


def test_failure_keeps_previous_good_output(tmp_path, base, inputs_dir):
    build = tmp_path / "build"
    good = isomod.build_iso(make_inputs(inputs_dir, build / "out", base), build)
    before = sorted((p.name, p.read_bytes()) for p in (build / "out").iterdir())
    bad = _bad_base("truncated", tmp_path, base)
    with pytest.raises(IsobuildError):
        isomod.build_iso(make_inputs(inputs_dir, build / "out", bad), build)
    assert sorted((p.name, p.read_bytes()) for p in (build / "out").iterdir()) == before
    assert good.iso.exists()


# ---------------------------------------------------------------- names


LONG = "drbd-km-2.6.32.23_170.dom0_an1.fc13.x86_64-8.3.7-12.fc13.x86_64.rpm-with-a-long-tail.rpm"


def test_long_names_full_in_rock_ridge_short_in_joliet(tmp_path, base, inputs_dir):
    d = tmp_path / "in"
    shutil.copytree(inputs_dir, d)
    (d / "overlay" / "extra").mkdir()
    (d / "overlay" / "extra" / LONG).write_text("long\n")
    (d / "overlay" / "extra" / (LONG + ".sig")).write_text("sig\n")
    build = tmp_path / "build"
    r = isomod.build_iso(make_inputs(d, build / "out", base), build)
    assert extract(r.iso, f"/extra/{LONG}") == b"long\n"
    joliet = sh("isoinfo", "-J", "-f", "-i", r.iso).splitlines()
    long_j = [p for p in joliet if p.startswith("/extra/")]
    assert len(long_j) == 2 and all(len(p.rsplit("/", 1)[1]) <= 64 for p in long_j)
    assert any(p.endswith(".rpm") for p in long_j)
    # the replaced isolinux.cfg is there once in each namespace, with the new content
    assert joliet.count("/isolinux/isolinux.cfg") == 1
    j_cfg = subprocess.run(["isoinfo", "-J", "-i", str(r.iso), "-x", "/isolinux/isolinux.cfg"],
                           check=True, capture_output=True).stdout
    assert j_cfg == extract(r.iso, "/isolinux/isolinux.cfg") and b"ERASES ALL DISKS" in j_cfg
    m = json.loads(r.manifest.read_text())
    assert {f["joliet_path"] for f in m["files"] if "joliet_path" in f} == set(long_j)
    # libisofs reads the whole Rock Ridge tree (it rejects damaged entries) and sees the full names
    tree = subprocess.run(["xorriso", "-indev", str(r.iso), "-find", "/", "-exec", "lsdl"],
                          capture_output=True, text=True)
    assert tree.returncode == 0 and "FAILURE" not in tree.stderr, tree.stderr[-2000:]
    assert f"/extra/{LONG}'" in tree.stdout


@pytest.mark.parametrize("name", ["bad;name", "x" * 101])
def test_unsupported_name_is_a_clear_error(tmp_path, base, inputs_dir, name):
    d = tmp_path / "in"
    shutil.copytree(inputs_dir, d)
    (d / "overlay" / name).write_text("x\n")
    build = tmp_path / "build"
    with pytest.raises(IsobuildError, match=f"file name not supported on the disc: /{name}"):
        isomod.build_iso(make_inputs(d, build / "out", base), build)
    assert not (build / "out").exists() or list((build / "out").iterdir()) == []


def test_progress_bar_on_a_tty():
    class TTY:
        def __init__(self):
            self.text = ""

        def isatty(self):
            return True

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    out = TTY()
    p = isomod.Progress("iso: writing x.iso", stream=out)
    p(0, 100 << 20)
    p(100 << 20, 100 << 20)
    assert out.text.startswith("\riso: writing x.iso [") and "ETA" in out.text
    assert "100.0/100.0 MiB" in out.text and out.text.endswith("\n")
    assert re.search(r"\[#+\] 100\.0/100\.0 MiB 100% ETA 00:00\n$", out.text)
    log.set_quiet(True)
    try:
        quiet = TTY()
        p = isomod.Progress("iso: writing x.iso", stream=quiet)
        p(0, 100 << 20)
        p(100 << 20, 100 << 20)
    finally:
        log.set_quiet(False)
    assert quiet.text == ""


@pytest.mark.parametrize("field,value,message", [
    ("kickstarts", {"an-node01": Path("/nonexistent/a.ks"), "an-node02": Path("/nonexistent/b.ks")},
     "kickstart for an-node01 not found"),
    ("repo_dir", Path("/"), "not a yum repository"),
    ("overlay_dir", Path("/nonexistent/overlay"), "overlay directory not found"),
    ("console", "hvc0", "unsupported console setting"),
    ("fqdns", {"an-node01": "a.example.com"}, "no FQDN given for node(s): an-node02"),
])
def test_bad_inputs_are_clear_errors(tmp_path, base, inputs_dir, field, value, message):
    build = tmp_path / "build"
    with pytest.raises(IsobuildError, match=message.replace("(", r"\(").replace(")", r"\)")):
        isomod.build_iso(replace(make_inputs(inputs_dir, build / "out", base), **{field: value}), build)
    assert not (build / "out").exists()
