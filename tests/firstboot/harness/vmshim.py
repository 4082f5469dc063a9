#!/usr/bin/env python3
"""PATH shims for the VM tools of a Fedora 13 node: virt-install, virsh, xm and rgmanager's clusvcadm.

Installed beside fbshim.py (whose recording, power cuts and node state it reuses). Each accepts the
options of the version the node runs and refuses anything else, so a call that would fail there
fails here:
  virt-install  python-virtinst 0.500.3 as isobuild/f13virt.py has it from the source: the optparse
                options of parse_args() and cli.graphics_option_group(), the --disk and --network
                sub-option whitelists, --os-type/--os-variant from virtinst/osdict.py
  virsh         libvirt 0.7 tools/virsh.c: the opts_<command> tables of the commands used here
  xm            Xen 4.0.1 tools/python/xen/xm/create.py (--path, -f) and migrate.py (-l/--live, -p, -n, -s, -c)
  clusvcadm     rgmanager 3.0.12: -e/-M with -m; a <vm> service is started and migrated as its vm.sh
                does: <path>/<name>.xml -> virsh create / virsh migrate --live; <path>/<name> -> xm
What is emulated: the hypervisor. A domain defined by virt-install or virsh define is
<root>/var/lib/xend/domains/<name>.xml (it survives a reboot, like xend's store); a running domain is
<harness>/run/<node>/dom.<name> (gone at a reboot). The guest install writes an msdos label on the
LV (what anaconda leaves) and reads the kernel from --location over HTTP (as virtinst does).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from fbshim import (ARGS, CMD, NODE, ROOT, fail, maybe_kill, node_path, nodes, record,  # noqa: E402
                    run_dir, svc_running)
from f13virt import (DISK_OPTIONS, NETWORK_OPTIONS, VIRTINST_OS_VARIANTS, VirtInstallUsage,  # noqa: E402
                     parse_optstr, virt_install_parser)  # isobuild/f13virt.py, copied beside it

MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


def domains_dir(root: Path = ROOT) -> Path:
    d = root / "var/lib/xend/domains"
    d.mkdir(parents=True, exist_ok=True)
    return d


def running(name: str, node: str = NODE) -> bool:
    return (run_dir(node) / f"dom.{name}").exists()


def set_running(name: str, node: str, on: bool) -> None:
    flag = run_dir(node) / f"dom.{name}"
    if on:
        flag.write_text("running\n")
    else:
        flag.unlink(missing_ok=True)


def need_xend() -> None:
    if not svc_running("xend"):
        fail("error: unable to connect to 'xen:///': xend is not running", 1)


# --------------------------------------------------------------------------------------------------
# virt-install (python-virtinst 0.500.3)


def _vi_disk(spec: str) -> str:
    path, _, rest = spec.partition(",")
    for prefix in ("path=", "vol=", "pool="):
        if path.startswith(prefix):
            if prefix != "path=":
                fail(f"ERROR    --disk {prefix[:-1]}= needs a storage pool (not emulated)")
            path = path[len(prefix):]
    for key in parse_optstr(rest):
        if key not in DISK_OPTIONS:
            fail(f"ERROR    Unknown --disk option '{key}'.")
    real = node_path(path)
    if not os.path.exists(real):
        fail(f"ERROR    Size must be specified for non existent volume path '{path}'")
    return real


def _vi_network(spec: str) -> tuple[str, str]:
    typ, _, rest = spec.partition(",")
    kind, _, data = typ.partition("=") if "=" in typ else typ.partition(":")
    if kind != "bridge":
        fail(f"ERROR    only bridged networks are emulated, got {typ!r}")
    opts = parse_optstr(rest)
    for key in opts:
        if key not in NETWORK_OPTIONS:
            fail(f"ERROR    Unknown network option '{key}'")
    mac = opts.get("mac") or ""
    if not MAC_RE.match(mac):
        fail(f"ERROR    MAC address must be of the format AA:BB:CC:DD:EE:FF, was {mac!r}")
    return data, mac


def _vi_check_variant(os_type: str | None, variant: str | None) -> None:
    if os_type and os_type.lower() not in VIRTINST_OS_VARIANTS:
        fail(f"ERROR    OS type '{os_type}' does not exist in our dictionary")
    if variant:
        pool = VIRTINST_OS_VARIANTS[os_type.lower()] if os_type else [v for vs in VIRTINST_OS_VARIANTS.values() for v in vs]
        if variant.lower() not in pool:
            fail(f"ERROR    OS variant '{variant}' does not exist in our dictionary for OS type '{os_type}'")


def _vi_fetch_kernel(location: str) -> None:
    """virtinst's OSDistro fetches images/xen/vmlinuz (Fedora/RHEL PV trees) from the tree."""
    if not location.startswith(("http://", "ftp://", "nfs:")):
        fail(f"ERROR    Invalid install location: {location}")
    if location.startswith("nfs:"):
        fail("ERROR    nfs: locations are not emulated here")
    try:
        urllib.request.urlopen(location.rstrip("/") + "/images/xen/vmlinuz", timeout=10).read(1)
    except OSError as err:
        fail(f"ERROR    Could not find an installable distribution at '{location}' ({err})")


def _domain_xml(name: str, mem_mib: int, vcpus: int, cpuset: str | None, disk: str, bridge: str, mac: str) -> str:
    cpus = f" cpuset='{cpuset}'" if cpuset else ""
    return (f"<domain type='xen'>\n  <name>{name}</name>\n  <memory>{mem_mib * 1024}</memory>\n"
            f"  <currentMemory>{mem_mib * 1024}</currentMemory>\n  <vcpu{cpus}>{vcpus}</vcpu>\n"
            "  <bootloader>/usr/bin/pygrub</bootloader>\n  <os>\n    <type>linux</type>\n  </os>\n"
            "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>restart</on_crash>\n"
            f"  <devices>\n    <disk type='block' device='disk'>\n      <driver name='phy'/>\n"
            f"      <source dev='{disk}'/>\n      <target dev='xvda' bus='xen'/>\n    </disk>\n"
            f"    <interface type='bridge'>\n      <mac address='{mac}'/>\n      <source bridge='{bridge}'/>\n"
            "      <script path='/etc/xen/scripts/vif-bridge'/>\n    </interface>\n"
            "    <console type='pty'>\n      <target port='0'/>\n    </console>\n"
            "    <graphics type='vnc' port='-1' autoport='yes' keymap='en-us'/>\n  </devices>\n</domain>\n")


def _write_msdos_label(dev: str) -> None:
    """What anaconda leaves first on the guest's disk: an msdos partition table (one Linux partition)."""
    mbr = bytearray(512)
    entry = bytes([0x80, 0, 0, 0, 0x83, 0, 0, 0]) + (2048).to_bytes(4, "little") + (4096).to_bytes(4, "little")
    mbr[446:462] = entry
    mbr[510:512] = b"\x55\xaa"
    with open(dev, "r+b") as fh:
        fh.write(mbr)
        fh.flush()
        os.fsync(fh.fileno())


def cmd_virt_install() -> None:
    try:
        opts, rest = virt_install_parser().parse_args(ARGS)
    except VirtInstallUsage as err:  # optparse prints usage and exits 2, as virt-install's does
        fail(f"error: {err}", 2)
    if rest:
        fail(f"error: unexpected arguments {rest}", 2)
    if not opts.connect or not opts.connect.startswith("xen"):
        fail("ERROR    this node's hypervisor is Xen: --connect xen:///")
    need_xend()
    if not opts.name or not opts.memory:
        fail("ERROR    --name and --ram are required (no --prompt)")
    if opts.paravirt and opts.fullvirt:
        fail("ERROR    Can't do both --hvm and --paravirt")
    if opts.paravirt and not opts.location:
        fail("ERROR    A --location is required for paravirt guests")
    if not opts.diskopts or len(opts.diskopts) != 1 or not opts.network or len(opts.network) != 1:
        fail("ERROR    this emulation installs one --disk and one --network")
    if opts.wait is None or opts.wait >= 0 or opts.autoconsole is not False:
        fail("ERROR    this emulation runs installs to the end only: --noautoconsole --wait -1")
    _vi_check_variant(opts.distro_type, opts.distro_variant)
    disk = _vi_disk(opts.diskopts[0])
    bridge, mac = _vi_network(opts.network[0])
    if (domains_dir() / f"{opts.name}.xml").exists() or running(opts.name):
        fail(f"ERROR    Domain named {opts.name} already exists!")
    maybe_kill("before")
    record()
    _vi_fetch_kernel(opts.location)
    print("\n\nStarting install...")
    # virtinst starts the install domain, then defines the final one (Guest._create_guest)
    set_running(opts.name, NODE, True)
    disk_path = opts.diskopts[0].partition(",")[0].replace("path=", "", 1)
    (domains_dir() / f"{opts.name}.xml").write_text(
        _domain_xml(opts.name, opts.memory, opts.vcpus or 1, opts.cpuset, disk_path, bridge, mac))
    _write_msdos_label(disk)
    maybe_kill("during")
    set_running(opts.name, NODE, False)  # the kickstart's poweroff
    print("Domain has shutdown. Continuing.")
    if opts.noreboot:
        print(f"Guest installation complete... you can restart your domain\nby running 'virsh start {opts.name}'")
    else:
        print("Guest installation complete... restarting guest.")
        set_running(opts.name, NODE, True)
    sys.stdout.flush()
    maybe_kill("after")


# --------------------------------------------------------------------------------------------------
# virsh (libvirt 0.7): [-c URI | --connect URI] COMMAND [--bool-opt] DATA...

VIRSH = {  # command: (bool options, data arguments (required first), data arguments required)
    "dumpxml": ({"inactive", "security-info"}, ("domain",), 1),
    "define": (set(), ("file",), 1),
    "create": ({"console", "paused"}, ("file",), 1),
    "start": ({"console", "paused"}, ("domain",), 1),
    "undefine": (set(), ("domain",), 1),
    "destroy": (set(), ("domain",), 1),
    "domstate": (set(), ("domain",), 1),
    "list": ({"inactive", "all"}, (), 0),
    "migrate": ({"live", "p2p", "direct", "tunnelled", "persistent", "undefinesource", "suspend"},
                ("domain", "desturi", "migrateuri", "dname"), 2),
    "net-destroy": (set(), ("network",), 1),
}


def _virsh_args() -> tuple[str, set[str], dict[str, str]]:
    args = list(ARGS)
    while args and args[0] in ("-c", "--connect", "-q", "--quiet", "-r", "--readonly"):
        flag = args.pop(0)
        if flag in ("-c", "--connect"):
            if not args:
                fail("error: option requires an argument -- 'c'")
            args.pop(0)
    if not args:
        fail("error: no command given (interactive virsh is not emulated)")
    cmd = args.pop(0)
    if cmd not in VIRSH:
        fail(f"error: unknown command: '{cmd}'")
    bools, datas, required = VIRSH[cmd]
    seen_b, seen_d = set(), {}
    for a in args:
        if a.startswith("--"):
            if a[2:] not in bools:
                fail(f"error: command '{cmd}' doesn't support option {a}")
            seen_b.add(a[2:])
        elif len(seen_d) < len(datas):
            seen_d[datas[len(seen_d)]] = a
        else:
            fail(f"error: unexpected data '{a}'")
    if len(seen_d) < required:
        fail(f"error: command '{cmd}' requires <{datas[len(seen_d)]}> option")
    return cmd, seen_b, seen_d


def _peer_by_host(host: str) -> str | None:
    for name, info in nodes().items():
        if host in (name, info["fqdn"]) and name != NODE:
            return name
    return None


def _start_from(xml_text: str, source: str) -> None:
    m = re.search(r"<name>([^<]+)</name>", xml_text)
    if not m:
        fail(f"error: Failed to create domain from {source}")
    name = m.group(1)
    if running(name) or any(running(name, n) for n in nodes() if n != NODE):
        fail(f"error: Failed to create domain from {source}\nerror: domain '{name}' is already running")
    set_running(name, NODE, True)
    print(f"Domain {name} created from {source}")


def cmd_virsh() -> None:
    cmd, bools, data = _virsh_args()
    maybe_kill("before")
    record()
    if cmd == "net-destroy":
        fail(f"error: failed to get network '{data['network']}'")
    need_xend()
    if not svc_running("libvirtd"):
        fail("error: unable to connect to '/var/run/libvirt/libvirt-sock': No such file or directory")
    dom = data.get("domain", "")
    defined = domains_dir() / f"{dom}.xml"
    if cmd == "list":
        print(" Id Name                 State\n----------------------------------")
        for p in sorted(domains_dir().glob("*.xml")):
            st = "running" if running(p.stem) else "shut off"
            if st == "running" or bools & {"all", "inactive"}:
                print(f"  - {p.stem:<20} {st}")
        return
    if cmd in ("define", "create"):
        src = Path(node_path(data["file"]) if not data["file"].startswith(str(ROOT)) else data["file"])
        if not src.is_absolute() or not src.exists():
            src = ROOT / data["file"].lstrip("/")
        if not src.is_file():
            fail(f"error: Failed to open file '{data['file']}': No such file or directory")
        text = src.read_text()
        if cmd == "create":
            _start_from(text, data["file"])
            return
        name = re.search(r"<name>([^<]+)</name>", text).group(1)
        (domains_dir() / f"{name}.xml").write_text(text)
        print(f"Domain {name} defined from {data['file']}")
        return
    if cmd == "migrate":
        if not running(dom):
            fail(f"error: failed to get domain '{dom}'" if not defined.exists() else "error: domain is not running")
        m = re.match(r"^xenmigr://([^/:]+)(:\d+)?/?$", data.get("migrateuri", ""))
        if not m:
            fail("error: xen migration needs a migrate URI xenmigr://<host>/")
        peer = _peer_by_host(m.group(1))
        if peer is None or not svc_running("xend", peer):
            fail(f"error: operation failed: xend_post: error from xen daemon: (xend.err 'can't connect: {m.group(1)}')")
        maybe_kill("before")
        set_running(dom, NODE, False)
        set_running(dom, peer, True)
        maybe_kill("after")
        return
    if not defined.exists() and not running(dom):
        fail(f"error: failed to get domain '{dom}'")
    if cmd == "dumpxml":
        sys.stdout.write(defined.read_text())
    elif cmd == "domstate":
        print("running" if running(dom) else "shut off")
    elif cmd == "start":
        _start_from(defined.read_text(), dom)
    elif cmd == "destroy":
        set_running(dom, NODE, False)
    elif cmd == "undefine":
        if running(dom):
            fail("error: Failed to undefine domain: domain is running")
        defined.unlink()


# --------------------------------------------------------------------------------------------------
# xm (Xen 4.0.1)


def cmd_xm() -> None:
    record()
    need_xend()
    sub, args = (ARGS[0], ARGS[1:]) if ARGS else ("", [])
    if sub == "create":
        path, conf, names = ".:/etc/xen", None, []
        it = iter(args)
        for a in it:
            if a.startswith("--path="):
                path = a.split("=", 1)[1]
            elif a in ("-f", "--defconfig"):
                conf = next(it, None)
            elif a.startswith("--defconfig="):
                conf = a.split("=", 1)[1]
            elif a.startswith("-"):
                fail(f"Error: option {a} not recognized")
            else:
                names.append(a)
        conf = conf or (names[0] if names else None)
        if conf is None:
            fail("Error: no domain configuration given")
        found = next((ROOT / d.lstrip("/") / conf for d in path.split(":") if (ROOT / d.lstrip("/") / conf).is_file()),
                     None) if not conf.startswith("/") else ROOT / conf.lstrip("/")
        if found is None or not found.is_file():
            fail(f"Error: Unable to open config file: {conf}")
        cfg: dict = {}
        exec(compile(found.read_text(), str(found), "exec"), {}, cfg)  # create.py execs it as Python
        set_running(cfg["name"], NODE, True)
        print(f"Started domain {cfg['name']} (id=1)")
    elif sub == "list":
        for p in sorted(run_dir().glob("dom.*")):
            print(p.name[4:])
    elif sub == "migrate":
        live = [a for a in args if a in ("-l", "--live")]
        rest = [a for a in args if a not in live]
        if len(rest) != 2 or any(a.startswith("-") for a in rest):
            fail("Error: 'xm migrate' requires between 2 and 3 arguments.")
        dom, host = rest
        peer = _peer_by_host(host)
        if not running(dom) or peer is None:
            fail(f"Error: can't migrate {dom} to {host}")
        set_running(dom, NODE, False)
        set_running(dom, peer, True)
    else:
        fail(f"Error: subcommand {sub!r} is not emulated")


# --------------------------------------------------------------------------------------------------
# clusvcadm (rgmanager 3.0.12) for vm: services, run as vm.sh would on the owning node


def _vm_service(svc: str) -> tuple[str, str]:
    if not svc.startswith("vm:"):
        fail(f"Unknown service {svc} (only vm: services are emulated)")
    name = svc[3:]
    conf = (ROOT / "etc/cluster/cluster.conf").read_text()
    m = re.search(rf'<vm name="{re.escape(name)}"[^>]*\bpath="([^"]+)"', conf)
    if not m:
        fail(f"Service {svc} does not exist in /etc/cluster/cluster.conf")
    return name, m.group(1)


def _member(host: str) -> str:
    for name, info in nodes().items():
        if host in (name, info["fqdn"]):
            if not svc_running("rgmanager", name):
                fail(f"Member {host} is not running rgmanager")
            return name
    fail(f"Member {host} not found")
    return ""


def _as_node(node: str, argv: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, FBH_NODE=node, AN_ROOT=nodes()[node]["root"])
    return subprocess.run(argv, env=env, capture_output=True, text=True)


def cmd_clusvcadm() -> None:
    maybe_kill("before")
    record()
    if not svc_running("rgmanager"):
        fail("Could not connect to resource group manager")
    op = ARGS[0] if ARGS else ""
    if op not in ("-e", "-M") or len(ARGS) < 2:
        fail(f"usage: clusvcadm -e <group> [-m <member>] | -M <group> -m <member> (got {' '.join(ARGS)})", 1)
    name, path = _vm_service(ARGS[1])
    target = _member(ARGS[ARGS.index("-m") + 1]) if "-m" in ARGS[2:] else None
    owner = next((n for n in nodes() if running(name, n)), None)
    xml = f"{path}/{name}.xml"
    if op == "-e":
        if owner is not None:
            print(f"Local machine trying to enable vm:{name}...Success\nvm:{name} is now running on {owner}")
            return
        node = target or NODE
        if (ROOT / xml.lstrip("/")).is_file():
            r = _as_node(node, ["virsh", "-c", "xen:///", "create", xml])
        elif (ROOT / path.lstrip("/") / name).is_file():
            r = _as_node(node, ["xm", "create", f"--path={path}", name])
        else:
            fail(f"Local machine trying to enable vm:{name}...Failure (no {name} or {name}.xml in {path})")
        if r.returncode != 0:
            fail(f"Local machine trying to enable vm:{name}...Failure\n{r.stderr}")
        print(f"Local machine trying to enable vm:{name}...Success\nvm:{name} is now running on {node}")
        return
    if target is None or owner is None:
        fail(f"Trying to migrate vm:{name}...Invalid operation for resource")
    host = nodes()[target]["fqdn"]
    if (ROOT / xml.lstrip("/")).is_file():
        r = _as_node(owner, ["virsh", "migrate", "--live", name, "xen:///", f"xenmigr://{host}/"])
    else:
        r = _as_node(owner, ["xm", "migrate", "-l", name, host])
    if r.returncode != 0:
        fail(f"Trying to migrate vm:{name} to {host}...Failure\n{r.stderr}")
    print(f"Trying to migrate vm:{name} to {host}...Success")


DISPATCH = {"virt-install": cmd_virt_install, "virsh": cmd_virsh, "xm": cmd_xm, "clusvcadm": cmd_clusvcadm}

if __name__ == "__main__":
    DISPATCH[CMD]()
