"""Boot the remastered DVD in QEMU (BIOS, TCG: KVM is not reliably usable in containers) and watch the serial console.

The synthetic base carries a real kernel (the host's Debian linux-image-cloud-amd64) and a busybox
initramfs whose /init prints /proc/cmdline to ttyS0 and powers off. Three bounded boots:
  1. CD-ROM, pick the first node entry -> the kernel gets ks=cdrom:/ks/an-node01.ks + the console;
  2. CD-ROM, press nothing -> the timeout default boots, and it is not a node install;
  3. the same image as a hard disk (isohybrid MBR), pick the second node entry.
"""
from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from isobuild import iso as isomod
from tests.conftest import IN_CI, need_tool
from tests.fixtures import f13base
from tests.integration.test_iso import NODES, inputs_dir, make_inputs, tools  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

BOOT_TIMEOUT = 120  # seconds per boot; TCG (KVM may be unusable in CI) boots the test kernel in ~20 s
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()%][0-9A-Za-z@]|\x1b.|[\x0e\x0f]")
DOWN = b"\x1b[B"


@pytest.fixture(scope="module")
def boot_iso(tmp_path_factory, inputs_dir) -> Path:
    need_tool("qemu-system-x86_64", "genisoimage", "busybox", "cpio")
    kernel = f13base.find_kernel()
    if kernel is None:
        msg = "no kernel in /boot (scripts/setup.sh installs linux-image-cloud-amd64)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    base = f13base.build_base(tmp_path_factory.mktemp("bootbase"), kernel=kernel)
    build = tmp_path_factory.mktemp("bootbuild")
    return isomod.build_iso(make_inputs(inputs_dir, build / "out", base, console="ttyS0,115200"), build).iso


class Serial:
    """QEMU with the serial port on stdin/stdout; collects output, sends keys."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.buf = b""
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while chunk := self.proc.stdout.read1(4096):
            with self.lock:
                self.buf += chunk

    def text(self) -> str:
        with self.lock:
            return ANSI.sub(b"", self.buf).replace(b"\r", b"").decode("utf-8", "replace")

    def wait_for(self, needle: str, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if needle in self.text():
                return True
            if self.proc.poll() is not None:
                return needle in self.text()
            time.sleep(0.2)
        return False

    def send(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def boot(image: Path, *, as_disk: bool, downs: int | None) -> str:
    """Boot `image`; with `downs` set, move that many entries down the menu and press Enter.
    Returns the console text (ANSI stripped)."""
    drive = (["-drive", f"file={image},format=raw,if=ide,media=disk,snapshot=on", "-boot", "c"] if as_disk
             else ["-cdrom", str(image), "-boot", "d"])
    return boot_qemu(drive, downs)


def boot_qemu(devices: list[str], downs: int | None) -> str:
    """QEMU (pc, TCG) with `devices`; pick the menu entry `downs` down (None: wait for the timeout)."""
    s = Serial(["qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "512", "-display", "none",
                "-serial", "stdio", "-monitor", "none", "-no-reboot", *devices])
    deadline = time.monotonic() + BOOT_TIMEOUT
    try:
        assert s.wait_for("Automatic boot in", deadline), "no boot menu on the serial console:\n" + s.text()[-3000:]
        if downs is not None:
            for _ in range(downs):
                s.send(DOWN)
                time.sleep(0.3)
            s.send(b"\r")
        assert s.wait_for("AN-TEST-DONE", deadline), "the kernel did not report its command line:\n" + s.text()[-3000:]
        return s.text()
    finally:
        s.stop()


def cmdline(text: str) -> str:
    m = re.search(r"AN-TEST-CMDLINE: (.*)", text)
    assert m, text[-2000:]
    return m.group(1).strip()


def menu_has_nodes(text: str) -> None:
    for fqdn in NODES.values():
        assert f"Install {fqdn} (an-cluster-01): ERASES ALL DISKS" in text


def test_cdrom_node_entry_boots_with_kickstart(boot_iso):
    text = boot(boot_iso, as_disk=False, downs=1)  # the first node entry follows the base's install entry
    menu_has_nodes(text)
    args = cmdline(text).split()
    assert "ks=cdrom:/ks/an-node01.ks" in args
    assert "console=ttyS0,115200" in args


def test_cdrom_timeout_default_is_not_an_install(boot_iso):
    text = boot(boot_iso, as_disk=False, downs=None)
    menu_has_nodes(text)
    assert "Automatic boot in 1 second" in text
    args = cmdline(text)
    assert "ks=" not in args  # the base's own default entry, no kickstart


def test_hard_disk_isohybrid_boot(boot_iso):
    text = boot(boot_iso, as_disk=True, downs=2)
    menu_has_nodes(text)
    assert "ks=cdrom:/ks/an-node02.ks" in cmdline(text).split()
