"""Boot the USB stick image in QEMU (BIOS, TCG) as a USB mass-storage disk (xHCI: SeaBIOS reads it
fast; UHCI takes minutes) with no CD drive at all.

`-nodefaults` drops QEMU's default (empty) IDE CD-ROM, so nothing but the stick can answer. The
synthetic base's kernel + busybox initramfs prints /proc/cmdline on ttyS0 and powers off, as in
test_iso_boot.py, whose console driver this reuses. Three bounded boots: each node's entry (the
arguments anaconda 13.42 needs for a stick), and the timeout default (not an install).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import IN_CI, need_tool
from tests.fixtures import f13base
from tests.integration.test_iso import base, tools  # noqa: F401 (fixtures)
from tests.integration.test_iso_boot import boot_qemu, cmdline
from tests.integration.test_usb import our_repo, stick  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

NODES = {"an-node01": "an-node01.alteeve.com", "an-node02": "an-node02.alteeve.com"}


@pytest.fixture(scope="module")
def image(stick) -> Path:
    need_tool("qemu-system-x86_64")
    if f13base.find_kernel() is None:  # the base then has a placeholder kernel
        msg = "no kernel in /boot (scripts/setup.sh installs linux-image-cloud-amd64)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return stick[1].image


def boot_stick(image: Path, downs: int | None) -> str:
    # -nodefaults: no default CD-ROM (nor NIC, VGA); the stick is the only drive
    return boot_qemu(["-nodefaults", "-drive", f"file={image},format=raw,if=none,id=stick,snapshot=on",
                      "-device", "qemu-xhci", "-device", "usb-storage,drive=stick,bootindex=0"], downs)


@pytest.mark.parametrize("downs,node", [(1, "an-node01"), (2, "an-node02")])
def test_node_entry_boots_with_the_stick_arguments(image, downs, node):
    text = boot_stick(image, downs)
    for fqdn in NODES.values():
        assert f"Install {fqdn} (an-cluster): ERASES ALL DISKS" in text
    args = cmdline(text).split()
    assert f"ks=hd:LABEL=ANCLUSTER:/ks/{node}.ks" in args
    assert "stage2=hd:LABEL=ANCLUSTER:/iso/images/install.img" in args
    assert "repo=hd:LABEL=ANCLUSTER:/iso" in args
    assert "console=ttyS0,115200" in args
    assert not [a for a in args if "cdrom" in a]


def test_timeout_default_is_not_an_install(image):
    text = boot_stick(image, None)
    assert "Automatic boot in 1 second" in text
    assert "ks=" not in cmdline(text)
