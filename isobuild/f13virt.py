"""What Fedora 13's VM tools accept, read from their sources (one home for the model, the validator
and the firstboot harness's shims, which run it without site-packages: standard library only).

- VIRTINST_OS_VARIANTS: --os-type / --os-variant of python-virtinst 0.500.3 (virtinst/osdict.py);
- virt_install_parser(): virt-install 0.500.3's options (virt-install parse_args(), virtinst/cli.py
  graphics_option_group(), check_before_store/append), as optparse, which virt-install itself uses;
- XM_CONFIG_VARS: the names an `xm create` config may set in Xen 4.0.1 (tools/python/xen/xm/create.py,
  every gopts.var).
"""
from __future__ import annotations

import optparse

# --os-variant values python-virtinst 0.500.3 (Fedora 13) knows, by --os-type: OS_TYPES in
# virtinst/osdict.py at virtinst-0_500_3 (solaris9/10 are also filed under unix there: solaris_compat).
VIRTINST_OS_VARIANTS: dict[str, tuple[str, ...]] = {
    "linux": ("rhel2.1", "rhel3", "rhel4", "rhel5", "rhel5.4", "rhel6", "fedora5", "fedora6", "fedora7",
              "fedora8", "fedora9", "fedora10", "fedora11", "fedora12", "fedora13", "sles10", "sles11",
              "mandriva2009", "mandriva2010", "mes5", "mes5.1", "debianetch", "debianlenny", "debiansqueeze",
              "ubuntuhardy", "ubuntuintrepid", "ubuntujaunty", "ubuntukarmic", "generic24", "generic26",
              "virtio26"),
    "windows": ("winxp", "winxp64", "win2k", "win2k3", "win2k8", "vista", "win7"),
    "solaris": ("solaris9", "solaris10", "opensolaris"),
    "unix": ("freebsd6", "freebsd7", "openbsd4", "solaris9", "solaris10"),
    "other": ("msdos", "netware4", "netware5", "netware6", "generic"),
}

XM_CONFIG_VARS = frozenset({
    "vncpasswd", "vncviewer", "vncconsole", "name", "bootloader", "bootargs", "bootentry", "kernel",
    "ramdisk", "loader", "features", "builder", "memory", "maxmem", "shadow_memory", "memory_sharing",
    "cpu", "cpus", "rtc_timeoffset", "pae", "hpet", "timer_mode", "tsc_mode", "nomigrate", "vpt_align",
    "viridian", "acpi", "apic", "vcpus", "vcpu_avail", "vhpt", "cpu_cap", "cpu_weight", "restart",
    "on_poweroff", "on_reboot", "on_crash", "blkif", "netif", "tpmif", "disk", "pci", "vscsi", "vusb",
    "ioports", "irq", "vfb", "vif", "vif2", "vtpm", "access_control", "nics", "root", "extra", "ip",
    "gateway", "netmask", "hostname", "interface", "dhcp", "nfs_server", "nfs_root", "device_model", "fda",
    "fdb", "parallel", "serial", "monitor", "monitor_path", "localtime", "keymap", "usb", "usbdevice",
    "description", "guest_os_type", "stdvga", "isa", "boot", "nographic", "soundhw", "vnc", "vncdisplay",
    "vnclisten", "vncunused", "videoram", "sdl", "gfx_passthru", "opengl", "display", "xauthority", "uuid",
    "on_xend_start", "on_xend_stop", "target", "hap", "s3_integrity", "oos", "cpuid", "cpuid_check",
    "machine_address_size", "suppress_spurious_page_faults", "pci_msitranslate", "pci_power_mgmt",
    "xen_platform_pci", "superpages",
})


class VirtInstallUsage(Exception):
    """What virt-install's optparse would print before exiting 2."""


class _Parser(optparse.OptionParser):
    def error(self, msg):
        raise VirtInstallUsage(msg)


def _store(option, opt_str, value, parser):  # cli.check_before_store
    if len(value) == 0:
        raise optparse.OptionValueError(f"{opt_str} option requires an argument")
    setattr(parser.values, option.dest, value)


def _append(option, opt_str, value, parser):  # cli.check_before_append
    if len(value) == 0:
        raise optparse.OptionValueError(f"{opt_str} option requires an argument")
    parser.values.ensure_value(option.dest, []).append(value)


def virt_install_parser() -> optparse.OptionParser:
    p = _Parser(usage="%prog --name NAME --ram RAM STORAGE INSTALL [options]")
    s = dict(type="string", action="callback", callback=_store)
    a = dict(type="string", action="callback", callback=_append)
    p.add_option("", "--connect", dest="connect", **s)
    p.add_option("-n", "--name", dest="name", **s)
    p.add_option("-r", "--ram", type="int", dest="memory")
    p.add_option("", "--vcpus", type="int", dest="vcpus")
    p.add_option("", "--cpuset", dest="cpuset", **s)
    p.add_option("", "--description", dest="description", **s)
    p.add_option("", "--security", dest="security", **s)
    p.add_option("-c", "--cdrom", dest="cdrom", **s)
    p.add_option("-l", "--location", dest="location", **s)
    p.add_option("", "--pxe", action="store_true", dest="pxe")
    p.add_option("", "--import", action="store_true", dest="import_install")
    p.add_option("", "--livecd", action="store_true", dest="livecd")
    p.add_option("-x", "--extra-args", type="string", dest="extra", default="")
    p.add_option("", "--os-type", dest="distro_type", **s)
    p.add_option("", "--os-variant", dest="distro_variant", **s)
    p.add_option("", "--disk", dest="diskopts", **a)
    p.add_option("", "--nodisks", action="store_true")
    p.add_option("-f", "--file", dest="file_path", **a)
    p.add_option("-s", "--file-size", type="float", action="append", dest="disksize")
    p.add_option("", "--nonsparse", action="store_false", default=True, dest="sparse")
    p.add_option("-w", "--network", dest="network", **a)
    p.add_option("", "--nonetworks", action="store_true")
    p.add_option("-b", "--bridge", dest="bridge", **a)
    p.add_option("-m", "--mac", dest="mac", **a)
    p.add_option("", "--vnc", action="store_true", dest="vnc")
    p.add_option("", "--vncport", type="int", dest="vncport")
    p.add_option("", "--vnclisten", type="string", dest="vnclisten")
    p.add_option("-k", "--keymap", dest="keymap", **s)
    p.add_option("", "--sdl", action="store_true", dest="sdl")
    p.add_option("", "--nographics", action="store_true")
    p.add_option("", "--noautoconsole", action="store_false", dest="autoconsole")
    for opt in ("--serial", "--parallel", "--host-device", "--soundhw", "--watchdog", "--video"):
        p.add_option("", opt, dest=opt[2:].replace("-", "_"), **a)
    p.add_option("", "--sound", action="store_true", dest="sound", default=False)
    p.add_option("-v", "--hvm", action="store_true", dest="fullvirt")
    p.add_option("-p", "--paravirt", action="store_true", dest="paravirt")
    p.add_option("", "--virt-type", type="string", dest="hv_type", default="")
    p.add_option("", "--accelerate", action="store_true", dest="accelerate", default=False)
    p.add_option("", "--arch", dest="arch", **s)
    p.add_option("", "--noapic", action="store_true", dest="noapic", default=False)
    p.add_option("", "--noacpi", action="store_true", dest="noacpi", default=False)
    p.add_option("-u", "--uuid", dest="uuid", **s)
    p.add_option("", "--autostart", action="store_true", default=False, dest="autostart")
    p.add_option("", "--noreboot", action="store_true", dest="noreboot")
    p.add_option("", "--wait", type="int", dest="wait")
    p.add_option("", "--force", action="store_true", dest="force", default=False)
    p.add_option("", "--prompt", action="store_true", dest="prompt", default=False)
    p.add_option("", "--check-cpu", action="store_true", dest="check_cpu")
    p.add_option("-d", "--debug", action="store_true", dest="debug")
    return p


def parse_optstr(text: str) -> dict[str, str | None]:
    """cli.parse_optstr: 'a,b=c' -> {a: None, b: c}, keys and values lower-cased."""
    out: dict[str, str | None] = {}
    for opt in text.split(","):
        if opt:
            k, eq, v = opt.partition("=")
            out[k.lower()] = v.lower() if eq else None
    return out


DISK_OPTIONS = ("perms", "cache", "bus", "device", "size", "sparse", "format")  # parse_disk_option whitelist
NETWORK_OPTIONS = ("model", "mac")  # cli.parse_network_opts whitelist


def check_virt_install_args(args: list[str]) -> list[tuple[str, str | None]]:
    """What virt-install 0.500.3 would refuse in these arguments before touching the host, as
    (reason, the argument at fault or None); empty when it would accept them."""
    try:
        opts, rest = virt_install_parser().parse_args(list(args))
    except VirtInstallUsage as err:
        words = [w for w in str(err).replace(":", " ").split() if w.startswith("-")]
        return [(str(err), words[0] if words else None)]
    problems: list[tuple[str, str | None]] = [(f"unexpected argument {r!r}", r) for r in rest]
    variants = [v for vs in VIRTINST_OS_VARIANTS.values() for v in vs]
    if opts.distro_type and opts.distro_type.lower() not in VIRTINST_OS_VARIANTS:
        problems.append((f"OS type {opts.distro_type!r} does not exist in our dictionary", opts.distro_type))
    elif opts.distro_variant and opts.distro_variant.lower() not in (
            VIRTINST_OS_VARIANTS[opts.distro_type.lower()] if opts.distro_type else variants):
        problems.append((f"OS variant {opts.distro_variant!r} does not exist in our dictionary", opts.distro_variant))
    for d in opts.diskopts or []:
        problems += [(f"Unknown --disk option {k!r}", d) for k in parse_optstr(d.partition(",")[2])
                     if k not in DISK_OPTIONS]
    for n in opts.network or []:
        problems += [(f"Unknown network option {k!r}", n) for k in parse_optstr(n.partition(",")[2])
                     if k not in NETWORK_OPTIONS]
    if opts.paravirt and opts.fullvirt:
        problems.append(("Can't do both --hvm and --paravirt", "--hvm"))
    if not opts.name or not opts.memory:
        problems.append(("--name and --ram are required", None))
    return problems
