"""The specs against what the upstream trees at their tags require, from `rpmspec -P` alone:
configure switches, scriptlets, build order, the kernel config fragment, the dom0 kernel's Epoch."""
from __future__ import annotations

import re
import subprocess

import pytest

from conftest import REPO, need_tool
from isobuild.rpmfiles import spec_sections
from isobuild.rpmplan import F13_DEFINES

SPECS = REPO / "rpmspecs"
DOM0 = "2.6.32.23-170.dom0_an1.fc13.x86_64"
# DRBD 8.3.7 configure.ac:44-95: the --with-<feature> switches that decide what is built and
# installed, and their defaults (WITH_KM no, WITH_RGMANAGER no, everything else yes).
DRBD_SWITCHES = ("utils", "km", "udev", "xen", "pacemaker", "heartbeat", "rgmanager", "bashcompletion")


def rpmspec(*args: str) -> str:
    tool = need_tool("rpmspec")["rpmspec"]
    defines = [a for k, v in F13_DEFINES.items() for a in ("--define", f"{k} {v}")]
    proc = subprocess.run([tool, *args[:-1], *defines, str(args[-1])], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def build_script(text: str) -> str:
    """%prep and %build of an `rpmspec -P` text (rpm 4.18 prints no `%build` line: %prep runs on)."""
    (prep,) = spec_sections(text, "prep")
    return prep


def configure_switches(text: str) -> dict[str, str]:
    """{feature: 'with'|'without'} from the ./configure command of a parsed %build."""
    build = build_script(text)
    cmd = build[build.index("./configure"):]
    cmd = cmd[:re.search(r"[^\\]\n", cmd).end()]
    found: dict[str, str] = {}
    for how, feature in re.findall(r"--(with|without)-([a-z]+)\b", cmd):
        assert feature not in found, f"--with/--without-{feature} given twice"
        found[feature] = how
    return found


def bconds(name: str) -> dict[str, str]:
    """{feature: default 'with'|'without'} declared by %bcond_with/%bcond_without."""
    text = (SPECS / name / f"{name}.spec").read_text()
    return {f: ("without" if kind == "with" else "with") for kind, f in re.findall(r"^%bcond_(with|without)\s+(\S+)", text, re.M)}


@pytest.mark.parametrize("name", ["drbd", "drbd-km"])
def test_configure_gets_every_drbd_switch_explicitly(name):
    switches = configure_switches(rpmspec("-P", SPECS / name / f"{name}.spec"))
    assert set(DRBD_SWITCHES) <= set(switches), f"configure would fall back to configure.ac defaults for {set(DRBD_SWITCHES) - set(switches)}"


def test_drbd_switches_follow_the_bconds_both_ways():
    spec = SPECS / "drbd" / "drbd.spec"
    defaults = bconds("drbd")
    assert set(defaults) == set(DRBD_SWITCHES) - {"utils", "km"}
    assert configure_switches(rpmspec("-P", spec)) == {"utils": "with", "km": "without", **defaults, "distro": "with", "initdir": "with"}
    for feature, default in defaults.items():
        flipped = "without" if default == "with" else "with"
        switches = configure_switches(rpmspec("-P", f"--{flipped}", feature, spec))
        assert switches[feature] == flipped, f"rpmbuild --{flipped} {feature} does not reach configure"


def test_drbd_refuses_the_switches_it_does_not_package():
    for feature in ("pacemaker", "heartbeat", "rgmanager"):
        prep = build_script(rpmspec("-P", "--with", feature, SPECS / "drbd" / "drbd.spec"))
        assert "is not packaged here" in prep and "exit 1" in prep
    prep = build_script(rpmspec("-P", SPECS / "drbd" / "drbd.spec"))
    assert "is not packaged here" not in prep


def test_drbd_ships_no_rgmanager_agent():
    """F13's resource-agents owns /usr/share/cluster/drbd.sh; drbd-rgmanager would conflict."""
    names = rpmspec("-q", "--qf", "%{NAME}\\n", SPECS / "drbd" / "drbd.spec").split()
    assert names == ["drbd", "drbd-utils", "drbd-udev", "drbd-xen", "drbd-bash-completion"]
    assert "/usr/share/cluster" not in rpmspec("-P", SPECS / "drbd" / "drbd.spec")


def test_drbd_mknod_only_without_udev():
    """drbd.spec.in (8.3.7) %post utils: mknod /dev/drbdN only `%if %{without udev}`."""
    def post_utils(*flags):
        text = rpmspec("-P", *flags, SPECS / "drbd" / "drbd.spec")
        return text[text.index("%post utils"):text.index("%preun utils")]
    assert "mknod" not in post_utils()
    assert "mknod -m 0660 /dev/drbd$i b 147 $i" in post_utils("--without", "udev")


def test_kernel_prepares_before_it_asks_for_kernelrelease():
    """2.6.32 Makefile: `kernelrelease:` errors unless include/config/kernel.release exists,
    which `make prepare` (prepare3) writes; oldconfig alone does not."""
    build = build_script(rpmspec("-P", SPECS / "kernel" / "kernel.spec"))
    lines = [ln.strip() for ln in build.splitlines()]
    prepare = lines.index("make -s ARCH=x86_64 prepare")
    release = next(i for i, ln in enumerate(lines) if "make -s ARCH=x86_64 kernelrelease" in ln)
    assert lines.index("make -s ARCH=x86_64 oldconfig < /dev/null") < prepare < release


def test_kernel_scriptlets_are_fedora_12s():
    """Fedora 12 kernel.spec (2.6.32.23-170): %post new-kernel-pkg --mkinitrd --dracut --depmod
    --install, %posttrans --rpmposttrans, %preun --rminitrd --rmmoddep --remove."""
    text = rpmspec("-P", SPECS / "kernel" / "kernel.spec")
    (post,) = spec_sections(text, "post")[:1]
    assert f"/sbin/new-kernel-pkg --package kernel --mkinitrd --dracut --depmod --install {DOM0} || exit $?" in post
    (posttrans,) = spec_sections(text, "posttrans")
    assert f"/sbin/new-kernel-pkg --package kernel --rpmposttrans {DOM0} || exit $?" in posttrans
    (preun,) = spec_sections(text, "preun")
    assert f"/sbin/new-kernel-pkg --rminitrd --rmmoddep --remove {DOM0} || exit $?" in preun


# Direct dependencies of what the fragment sets, as the 2.6.32 Kconfig files declare them
# (mainline 2.6.32: security/selinux/Kconfig:3, security/Kconfig:65, lib/Kconfig.debug:79,
# drivers/video/Kconfig:2077, drivers/input/Kconfig:163, drivers/md/Kconfig:262, net/Kconfig:170-171,
# net/netfilter/Kconfig:750-751, fs/gfs2/Kconfig:32, drivers/scsi/mpt2sas/Kconfig:45,
# drivers/scsi/megaraid/Kconfig.megaraid:80; the pvops tree: arch/x86/xen/Kconfig XEN_DEBUG_FS,
# XEN_DOM0, XEN_SAVE_RESTORE, drivers/xen/Kconfig XEN_BACKEND, XEN_BLKDEV_BACKEND, XEN_SCRUB_PAGES,
# XEN_COMPAT_XENFS, XEN_SYS_HYPERVISOR). A symbol whose dependency is unset is dropped by oldconfig.
KCONFIG_DEPS = {
    "SECURITY_SELINUX": ["SECURITY_NETWORK", "AUDIT", "NET", "INET"],
    "SECURITY_NETWORK": ["SECURITY"],
    "DEBUG_FS": ["SYSFS"],
    "XEN_DEBUG_FS": ["XEN", "DEBUG_FS"],
    "XEN_FBDEV_FRONTEND": ["FB", "XEN"],
    "XEN_KBDDEV_FRONTEND": ["XEN_FBDEV_FRONTEND"],
    "XEN_DOM0": ["XEN", "X86_IO_APIC", "ACPI"],
    "XEN_SAVE_RESTORE": ["XEN", "PM"],
    "XEN_BACKEND": ["XEN_DOM0"],
    "XEN_BLKDEV_BACKEND": ["XEN_BACKEND", "BLOCK"],
    "XEN_BLKDEV_TAP": ["XEN_BACKEND", "BLOCK"],
    "XEN_SCRUB_PAGES": ["XEN_BALLOON"],
    "XEN_COMPAT_XENFS": ["XENFS"],
    "XEN_SYS_HYPERVISOR": ["XEN", "SYSFS"],
    "XEN_PCI_PASSTHROUGH": ["XEN", "PCI"],
    "DM_LOG_USERSPACE": ["DM_MIRROR", "EXPERIMENTAL", "NET"],
    "BRIDGE_NETFILTER": ["BRIDGE", "NETFILTER", "INET", "NETFILTER_ADVANCED"],
    "NETFILTER_XT_MATCH_PHYSDEV": ["BRIDGE", "BRIDGE_NETFILTER", "NETFILTER_ADVANCED"],
    "GFS2_FS_LOCKING_DLM": ["GFS2_FS", "NET", "INET", "HOTPLUG"],
    "SCSI_MPT2SAS": ["PCI", "SCSI"],
    "MEGARAID_SAS": ["PCI", "SCSI"],
}


def fragment_settings() -> dict[str, str]:
    text = (SPECS / "kernel" / "config-x86_64-dom0").read_text()
    return dict(re.findall(r"^CONFIG_([A-Z0-9_]+)=(\S+)$", text, re.M))


def test_kernel_config_fragment_sets_what_its_options_depend_on():
    settings = fragment_settings()
    unmet = {opt: [d for d in deps if settings.get(d) not in ("y", "m")]
             for opt, deps in KCONFIG_DEPS.items() if settings.get(opt) in ("y", "m")}
    assert {k: v for k, v in unmet.items() if v} == {}


def test_kernel_config_fragment_names_only_2_6_32_symbols():
    # HYPERVISOR_GUEST is 3.10's menu; 2.6.32's is PARAVIRT_GUEST (arch/x86/Kconfig)
    assert "HYPERVISOR_GUEST" not in fragment_settings()
    assert fragment_settings()["PARAVIRT_GUEST"] == "y"


def test_dom0_kernel_is_the_kernel_anaconda_13_selects():
    """anaconda-13.42 yuminstall.py selectBestKernel adds ayum.pkgSack.returnNewestByName('kernel')
    (installonlypkgs = []); yum's returnNewestByName keeps the highest EVR (verGT -> compareEVR).
    Against the DVD's kernel-2.6.33.3-85.fc13 (and any F13 update), ours must win on EVR."""
    tool = need_tool("rpm")["rpm"]
    evr = rpmspec("-q", "--qf", "%{EPOCH}:%{VERSION}-%{RELEASE}\\n", SPECS / "kernel" / "kernel.spec").split()[0]
    assert evr == "1:2.6.32.23-170.dom0_an1.fc13"
    for stock in ("0:2.6.33.3-85.fc13", "0:2.6.34.9-69.fc13"):  # GA DVD, last F13 update
        cmp = subprocess.run([tool, "--eval", f'%{{lua: print(rpm.vercmp("{evr}", "{stock}"))}}'],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert cmp == "1", f"anaconda would install kernel-{stock} instead of ours"


def test_everything_that_names_the_dom0_kernel_agrees_with_its_epoch():
    kernel = SPECS / "kernel" / "kernel.spec"
    provides = rpmspec("-q", "--provides", kernel).splitlines()
    assert f"kernel-uname-r = {DOM0}" in provides  # no epoch: what drbd-km requires
    assert "kernel-xen-dom0 = 1:2.6.32.23-170.dom0_an1.fc13" in provides
    km = rpmspec("-q", "--requires", SPECS / "drbd-km" / "drbd-km.spec").splitlines()
    assert f"kernel-uname-r = {DOM0}" in km
    xen = rpmspec("-q", "--requires", SPECS / "xen" / "xen.spec").splitlines()
    assert "kernel-xen-dom0" in xen


def test_xen_scriptlets_never_restart_xend():
    """A xend restart under a running cman gets the node fenced (the seed's "Make xend play nice
    with clustering"); an upgrade of the xen package must not do one."""
    text = rpmspec("-P", SPECS / "xen" / "xen.spec")
    for section in ("post", "preun", "postun"):
        for body in spec_sections(text, section):
            commands = [ln for ln in body.splitlines() if not ln.lstrip().startswith("#")]
            assert not [ln for ln in commands if "restart" in ln], f"%{section} restarts a service"
