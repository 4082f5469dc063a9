"""Reading a cluster definition into the model: load_definition() and one loader per part of the definition.

The walker (checker.Checker.mapping) checks each mapping's keys, types and single-value rules from the
settings on the model's fields, and settings.fill() builds the plain dataclasses; the loaders here
keep what is specific: rules across keys of one part, the secret files, derived values. Rules across
parts are in isobuild/crossrules.py.
"""
from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import re
import stat
from pathlib import Path
from typing import Any

from . import log
from .checker import Checker, FenceRef, Values, key_path, plain_key, suggest, typename, unknown
from .crossrules import cross_checks
from .errors import ProblemsError
from .f13virt import VIRTINST_OS_VARIANTS
from .model import (DEMO_MARKER, GUEST_BOOT_MIB, GUEST_ROOT_MIN_MIB, NETWORK_NAMES, Clvm, Cluster, Drbd, FenceDevice,
                    FenceMethod, Gfs2, Install, Network, Node, Partition, Relocation, Secret, Storage, Totem, Vm,
                    VmInstall, Xen)
from .settings import default, fill, given_or_default
from .values import (CLUSTER_PORTS, CRYPT_RE, DISK_RE, FENCE_AGENT_RE, HOST_LABEL_RE, INSTALL_URL_RE, MAC_RE,
                     PKG_RE, SUPPORTED_RELEASE, derived_mac, domu_config_problem, lvm_name_problem, parse_size_mib,
                     valid_dns_name)
from .yamlsource import Lines, read_yaml


SECRET_MAX = {False: 4096, True: 64 * 1024}  # bytes: a password/hash, an authorized_keys file
_WARNED: set = set()  # (file, warning) already printed by this process (`invoke all` loads the definition per stage)


def _read_secret_file(full: Path, rel: str, kind: str, multiline: bool) -> tuple[str | None, str, str | None]:
    """(value, problem, hint): value None with the problem when the file is unusable; else the value
    with one trailing newline stripped (single-line secrets), and a warning when group/others can read it.

    Symlinks are followed on purpose (secret stores such as /run/secrets link to their files), but
    what they reach must be a regular file: a FIFO, device or directory is refused before it is read.
    """
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        return None, f"{kind} file not found: {rel} (looked at {full})", \
            "create it (relative paths are relative to the definition file)"
    except OSError as err:
        return None, f"{kind} file cannot be read: {rel} ({err.strerror})", "check its permissions"
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return None, f"{kind} file {rel} is a directory", "name the file inside it"
        if not stat.S_ISREG(st.st_mode):
            return None, f"{kind} file {rel} is not a regular file", "name a plain file holding only the secret"
        limit = SECRET_MAX[multiline]
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        return None, f"{kind} file {rel} is larger than {limit} bytes", "it should hold the secret only"
    try:
        value = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, f"{kind} file {rel} is not UTF-8 text", "it should hold the secret only"
    if not multiline:
        value = value[:-1] if value.endswith("\n") else value  # `echo secret > file` adds one
    allowed = "\n\t" if multiline else ""
    bad = [c for c in value if (ord(c) < 0x20 or ord(c) == 0x7f) and c not in allowed]
    if bad:
        what = "a line break" if bad[0] in "\r\n" else f"the control character {bad[0]!r}"
        return None, f"{kind} file {rel} contains {what}", \
            "write the secret on one line, with at most one newline at the end" if not multiline else \
            "one key per line, Unix line ends (dos2unix)"
    if stat.S_IMODE(st.st_mode) & 0o077:
        return value, f"{kind} file {rel} is readable by group or others (mode {stat.S_IMODE(st.st_mode):04o})", \
            f"chmod 600 {full}"
    return value, "", None


def load_definition(path: str | os.PathLike) -> Cluster:
    """Load, check completely, and return the frozen model. Raises ProblemsError listing every problem."""
    path = Path(path)
    raw = read_yaml(path)
    ck = Checker(path, Lines(raw))
    base_dir = path.resolve().parent
    digest = hashlib.sha256(path.read_bytes())

    top = ck.mapping(raw, "", "", 1)
    if top is None:
        raise ProblemsError(f"{path}: invalid cluster definition", ck.problems)

    secret_digests: list[str] = []
    demo = [False]

    def read_secret(rel: str, kpath: str, line: int | None, kind: str) -> tuple[Path, Secret | None]:
        p = Path(rel)
        full = p if p.is_absolute() else base_dir / p
        if not rel.strip():
            ck.add(kpath, f"names no {kind} file", line, "the path of the file that holds it")
            return p, None
        multiline = kind == "authorized keys"
        value, why, hint = _read_secret_file(full, rel, kind, multiline)
        if value is None:
            ck.add(kpath, why, line, hint)
            return p, None
        secret_digests.append(hashlib.sha256(value.encode()).hexdigest())
        if (full.parent / DEMO_MARKER).exists():
            demo[0] = True
        elif why and (full, why) not in _WARNED:  # group/others can read it: warn (once) as ssh does
            _WARNED.add((full, why))  # for keys; demo secrets are public anyway
            log.warn(f"{path}:{line}: {kpath}: {why}\n  hint: {hint}")
        return p, Secret(value, full)

    cluster = _load_cluster(ck, top)
    networks = _load_networks(ck, top)
    totem = _load_totem(ck, top)
    devices = _load_fence_devices(ck, top, read_secret)
    nodes = _load_nodes(ck, top, cluster, networks)
    install = _load_install(ck, top, read_secret)
    storage = _load_storage(ck, top)
    xen = _load_xen(ck, top)
    vms = _load_vms(ck, top, cluster, base_dir, secret_digests)

    cross_checks(ck, cluster, networks, nodes, devices, storage, xen, vms, install)

    if ck.problems:
        ordered = sorted(ck.problems, key=lambda p: p.line or 0)  # stable: same-line problems keep rule order
        raise ProblemsError(f"{path}: invalid cluster definition", ordered)

    for d in sorted(secret_digests):
        digest.update(d.encode())
    return Cluster(
        name=cluster["name"], config_version=cluster["config_version"], domain=cluster["domain"],
        timezone=cluster["timezone"], release=cluster["release"], networks=networks, totem=totem,
        nodes=tuple(nodes.values()), fence_devices=tuple(devices.values()), install=install, storage=storage,
        xen=xen, vms=tuple(vms.values()), source=path, digest=digest.hexdigest(), demo_secrets=demo[0],
        warnings=tuple(str(w) for w in ck.warnings),
    )


def _sub(ck: Checker, top: dict, key: str, spec: str, path: str | None = None) -> dict[str, Any]:
    if key not in top:
        return {}
    return ck.mapping(top[key], path or key, spec, ck.line(key)) or {}


def _load_cluster(ck: Checker, top) -> dict[str, Any]:
    """cluster: its keys' rules are the settings' (Cluster); placeholders where one is missing."""
    m = _sub(ck, top, "cluster", "cluster")
    out = {"name": "", "config_version": 1, "domain": "", "timezone": "", **m, "release": SUPPORTED_RELEASE}
    out["domain"] = out["domain"].lower()
    return out


def _load_networks(ck: Checker, top) -> dict[str, Network]:
    networks: dict[str, Network] = {}
    if "networks" not in top:
        return networks
    nets = top["networks"]
    for name in nets:
        if name not in NETWORK_NAMES:
            ck.add(key_path("networks", name), unknown("network", name), ck.key_line(nets, name),
                   suggest(str(name), NETWORK_NAMES, "networks are"))
    for name in NETWORK_NAMES:
        path = f"networks.{name}"
        if name not in nets:
            ck.at(path, "required network is missing", "bcn, sn and ifn must all be defined")
            continue
        line = ck.key_line(nets, name)
        m = ck.mapping(nets[name], path, "network", line)
        if m is None:
            continue
        iface = m.get("interface", "")
        subnet = None
        if "subnet" in m:
            try:
                subnet = ipaddress.IPv4Network(m["subnet"], strict=True)
                if subnet.prefixlen > 30:
                    ck.at(f"{path}.subnet", f"{subnet} is too small for two nodes")
            except ValueError as err:
                ck.at(f"{path}.subnet",
                      f"{m['subnet']!r} is not an IPv4 network: {err}",
                      "write it as address/prefix with host bits zero, e.g. 192.168.1.0/24")
        mtu = m.get("mtu")
        gateway = None
        if "gateway" in m:
            if name != "ifn":
                ck.at(f"{path}.gateway",
                      "only the ifn carries the default gateway",
                      "remove it; the bcn and sn are not routed")
            gateway = _ip(ck, m["gateway"], f"{path}.gateway", ck.line(f"{path}.gateway"))
            if gateway and subnet and gateway not in subnet:
                ck.at(f"{path}.gateway", f"{gateway} is not inside networks.{name}.subnet {subnet}")
        dns = []
        for i, d in enumerate(m.get("dns", []) or []):
            ip = _ip(ck, d, f"{path}.dns[{i}]", ck.line(f"{path}.dns[{i}]"))
            if ip:
                dns.append(ip)
        if subnet is not None and iface:
            networks[name] = Network(name, iface, subnet, mtu, gateway, tuple(dns))
    if len(networks) == len(NETWORK_NAMES) and all(n.vlan_parent for n in networks.values()):
        ck.at("networks.bcn.interface",
              "every network is a VLAN: the kickstart needs one plain NIC",
              "put at least one network (e.g. the bcn) on an untagged NIC")
    # interfaces unique (per node: every node uses the same interface for a network)
    seen: dict[str, str] = {}
    for name, net in networks.items():
        if net.interface in seen:
            ck.at(f"networks.{name}.interface",
                  f"{net.interface} is already used by networks.{seen[net.interface]}",
                  "each network needs its own interface")
        seen[net.interface] = name
    return networks


def _ip(ck: Checker, value: Any, path: str, line: int | None) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(str(value))
    except ValueError:
        ck.add(path, f"{value!r} is not an IPv4 address", line)
        return None


def _load_totem(ck: Checker, top) -> Totem:
    return fill(Totem, _sub(ck, top, "totem", "totem"))


def _load_fence_devices(ck: Checker, top, read_secret) -> dict[str, FenceDevice]:
    """The devices that loaded, by their path (fence_devices[i])."""
    devices: dict[str, FenceDevice] = {}
    seq = top.get("fence_devices", [])
    names: set[str] = set()
    for _, path, item, m in ck.items(seq, "fence_devices", "fence_device"):
        name = m.get("name", "")
        if "name" in m:
            ck.seen.device_names.append((path, name))
        if name:
            if name in names:
                ck.at(f"{path}.name", f"fence device {name!r} is defined twice")
            names.add(name)
        if isinstance(m.get("ipaddr"), str):
            address = m.get("address")
            ck.seen.device_addresses.append((path, m["ipaddr"].strip(),
                                             address.strip() if isinstance(address, str) else None))
        agent = m.get("agent", "")
        pw_file, secret = (Path(""), None)
        if "password_file" in m:
            pw_file, secret = read_secret(m["password_file"], f"{path}.password_file",
                                          ck.line(f"{path}.password_file"), "password")
            if secret is not None and not secret.reveal():
                ck.at(f"{path}.password_file", f"password file {m['password_file']} is empty")
        address = _fence_address(ck, m, path)
        options = _fence_options(ck, m, path, agent)
        if name and agent and secret is not None and "ipaddr" in m and "login" in m:
            devices[path] = FenceDevice(name, agent, m["ipaddr"].strip(), m["login"], pw_file, secret, address,
                                        options)
    _check_fence_na_credentials(ck, devices)
    return devices


def _fence_address(ck: Checker, m: dict[str, Any], path: str) -> str | None:
    """The address a device's ipaddr resolves to on the node: the node has no DNS for fencing (a
    fence must work when the network's DNS is down), so a host name needs `address` (-> /etc/hosts)."""
    ipaddr = m.get("ipaddr")
    if not isinstance(ipaddr, str):
        return None
    ipaddr = ipaddr.strip()
    try:
        ipaddress.IPv4Address(ipaddr)
        is_ip = True
    except ValueError:
        is_ip = False
    if "address" in m:
        if is_ip:
            ck.at(f"{path}.address",
                  f"ipaddr {ipaddr} is already an address",
                  "drop address, or set ipaddr to the device's host name")
            return ipaddr
        addr = _ip(ck, m["address"].strip(), f"{path}.address", ck.line(f"{path}.address"))
        return None if addr is None else str(addr)
    if is_ip:
        return ipaddr
    if valid_dns_name(ipaddr) or HOST_LABEL_RE.match(ipaddr):
        ck.at(f"{path}.ipaddr",
              f"host name {ipaddr!r} does not resolve on the node",
              f"add `address: <its IPv4 address>` to this device (written to /etc/hosts as {ipaddr}), "
              "or give the address as ipaddr")
    return None


def _check_fence_na_credentials(ck: Checker, devices: dict[str, FenceDevice]) -> None:
    """fence_na.conf has one system::username/system::password, which fence_na compares with every
    device's login/passwd (fence-agents v3.1.0 fence/agents/node_assassin/fence_na.pl)."""
    na = [(path, d) for path, d in devices.items() if d.agent == "fence_na"]
    first = na[0][1] if na else None
    for path, d in na[1:]:
        if (d.login, d.password.reveal()) != (first.login, first.password.reveal()):
            ck.at(f"{path}.login",
                  f"fence_na device {d.name!r} has another login or password than "
                  f"{first.name!r}",
                  "fence_na.conf holds one login and password for all Node Assassins: use the same on each")


# <fencedevice> attributes every device gets from its own keys; options may not set them again.
FENCE_FIXED_ATTRS = {"name": "name", "agent": "agent", "ipaddr": "ipaddr", "login": "login",
                     "passwd": "password_file"}


def _fence_options(ck: Checker, m: dict, path: str, agent: str) -> dict[str, str]:
    """fence_devices[].options: extra <fencedevice> attributes, each one the agent's group in every
    cman schema a node may run accepts (isobuild/cmanschema.py), so ccs_config_validate passes."""
    from .cmanschema import fence_device_problem, fence_options_allowed

    raw_opts = m.get("options") or {}
    opath = f"{path}.options"
    fixed = {"ipaddr", "login", "passwd"}
    out: dict[str, str] = {}
    for key, value in raw_opts.items():
        kpath, kline = key_path(opath, key), ck.key_line(raw_opts, key)
        if not plain_key(key) or not re.match(r"^[a-z_][a-z0-9_]*$", str(key)):
            ck.add(kpath, unknown("fence agent option", key), kline, "option names are agent attributes such as lanplus")
        elif key in FENCE_FIXED_ATTRS:
            ck.add(kpath, f"{key} is set by {path}.{FENCE_FIXED_ATTRS[key]}", kline, "remove it from options")
        elif value is False:
            ck.add(kpath, "false is not a value: fence_ipmilan 3.0.12 turns a flag on whenever it is present "
                   "(lanplus=\"0\" means lanplus); the Python agents take only 1 or yes", kline,
                   "remove the option to leave it off")
        elif isinstance(value, bool) or (isinstance(value, (str, int)) and str(value).strip()):
            out[key] = "1" if value is True else str(value).strip()
        else:
            ck.add(kpath, f"must be a string, number or true, got {typename(value)}", kline)
    if out and agent and FENCE_AGENT_RE.match(agent):
        refused = fence_device_problem(agent, fixed, set(out))
        if refused:
            schema, _ = refused
            allowed = fence_options_allowed(agent, fixed)
            for key in sorted(set(out) - set(allowed)):
                ck.add(key_path(opath, key), f"{agent} takes no option {key!r} in the {schema} schema, so "
                       "ccs_config_validate on the node would refuse cluster.conf", ck.key_line(raw_opts, key),
                       f"{agent} options every supported cman accepts: {', '.join(allowed) or 'none'}")
            if set(out) <= set(allowed):  # each is known, the combination is not
                ck.add(opath, f"the {schema} schema refuses this combination of {agent} options", ck.line(opath),
                       "use fewer options")
    return out


def _load_nodes(ck: Checker, top, cluster, networks) -> dict[str, Node]:
    """The nodes that loaded, by their path (nodes[i])."""
    nodes: dict[str, Node] = {}
    seq = top.get("nodes", [])
    ck.seen.node_count = len(seq)
    if "nodes" in top and len(seq) != 2:
        ck.at("nodes", f"a two_node cluster needs exactly two nodes, got {len(seq)}")
    names: dict[str, int] = {}
    ids: dict[int, int] = {}
    for i, path, item, m in ck.items(seq, "nodes", "node"):
        name = m.get("name", "")
        ck.seen.node_names.append(m.get("name"))
        if name:
            if "name" not in m.bad and name.lower() in names:
                ck.at(f"{path}.name", f"{name!r} is already used by nodes[{names[name.lower()]}]")
            names.setdefault(name.lower(), i)
        nodeid = m.get("nodeid")
        if nodeid is not None:
            if "nodeid" not in m.bad and nodeid in ids:
                ck.at(f"{path}.nodeid", f"{nodeid} is already used by nodes[{ids[nodeid]}]")
            ids.setdefault(nodeid, i)
        ips = _node_ips(ck, m, path, networks)
        macs = _node_macs(ck, m, path, networks)
        methods = _node_fence(ck, m, path)
        if name and nodeid is not None and len(ips) == 3 and cluster.get("domain"):
            nodes[path] = Node(name, nodeid, f"{name}.{cluster['domain']}".lower(), ips, macs, tuple(methods))
    return nodes


def _node_ips(ck: Checker, m: Values, path: str,
              networks: dict[str, Network]) -> dict[str, ipaddress.IPv4Address]:
    """nodes[].ip: one address per network, inside its subnet, not its network or broadcast address."""
    ips: dict[str, ipaddress.IPv4Address] = {}
    if "ip" not in m:
        return ips
    ipmap = m["ip"]
    for net in ipmap:
        npath = key_path(f"{path}.ip", net)
        nline = ck.key_line(ipmap, net)
        ck.seen.node_addresses.append((str(ipmap[net]).strip(), npath, nline))
        if net not in NETWORK_NAMES:
            ck.add(npath, unknown("network", net), nline, suggest(str(net), NETWORK_NAMES))
            continue
        ip = _ip(ck, ipmap[net], npath, nline)
        if ip is None:
            continue
        ips[net] = ip
        subnet = networks.get(net).subnet if net in networks else None
        if subnet is not None:
            if ip not in subnet:
                ck.add(npath, f"{ip} is not inside networks.{net}.subnet {subnet}", nline)
            elif ip in (subnet.network_address, subnet.broadcast_address):
                what = "network" if ip == subnet.network_address else "broadcast"
                ck.add(npath, f"{ip} is the {what} address of {subnet}", nline)
    for net in NETWORK_NAMES:
        if net not in ipmap:
            ck.add(f"{path}.ip.{net}", "address on this network is missing", ck.line(f"{path}.ip"))
    return ips


def _node_macs(ck: Checker, m: Values, path: str, networks: dict[str, Network]) -> dict[str, str]:
    """nodes[].mac: {interface of a network: unicast MAC}, written as HWADDR."""
    macs: dict[str, str] = {}
    for iface, mac in (m.get("mac") or {}).items():
        mpath = key_path(f"{path}.mac", iface)
        mline = ck.key_line(m["mac"], iface)
        ck.seen.node_macs.append((str(mac).lower(), f"{path}.mac.{iface}"))
        known = [n.interface for n in networks.values()]
        if iface not in known:
            ck.add(mpath, f"{iface!r} is not the interface of any network", mline,
                   f"interfaces: {', '.join(known)}")
        mac_s = str(mac).strip().lower().replace("-", ":")
        if not MAC_RE.match(mac_s):
            ck.add(mpath, f"{mac!r} is not a MAC address", mline, "six hex octets, e.g. 00:1b:21:0a:0b:0c")
            continue
        if int(mac_s[:2], 16) & 1:
            ck.add(mpath, f"{mac_s} is a multicast MAC, not a NIC's address", mline)
            continue
        if mac_s == "00:00:00:00:00:00":
            ck.add(mpath, "the all-zero MAC is not a NIC's address", mline)
            continue
        macs[iface] = mac_s
    return macs


def _node_fence(ck: Checker, m: Values, path: str) -> tuple[FenceMethod, ...]:
    """nodes[].fence: the methods in order; every one that names a device is recorded for the cross rules."""
    methods: list[FenceMethod] = []
    fseq = m.get("fence", [])
    if "fence" in m and not fseq:
        ck.at(f"{path}.fence",
              "every node needs at least one fence method",
              "cman will not recover a failed node without fencing")
    mnames: set[str] = set()
    for j, f in enumerate(fseq):
        fpath = f"{path}.fence[{j}]"
        fm = ck.mapping(f, fpath, "fence_method", ck.item_line(fseq, j))
        if fm is not None and "device" in fm:
            port = fm.get("port")
            ck.seen.fence_refs.append(FenceRef(fpath, fm["device"], None if port is None else str(port),
                                               f.get("port") is not None))
        if fm is None or "method" not in fm or "device" not in fm:
            continue
        if fm["method"] in mnames:
            ck.at(f"{fpath}.method", f"method {fm['method']!r} is listed twice")
        mnames.add(fm["method"])
        port = fm.get("port")
        methods.append(FenceMethod(fm["method"], fm["device"], None if port is None else str(port)))
    return tuple(methods)


def _load_install(ck: Checker, top, read_secret) -> Install:
    m = _sub(ck, top, "install", "install")
    disks = _install_disks(ck, m)
    parts = _install_partitions(ck, m)
    hash_file, root_hash = _root_password_hash(ck, m, read_secret)
    keys_file, keys = _authorized_keys(ck, m, read_secret)
    packages = []
    for i, p in enumerate(m.get("packages", []) or []):
        if not isinstance(p, str) or not PKG_RE.match(p):
            ck.at(f"install.packages[{i}]", f"{p!r} is not a package or @group name")
        else:
            packages.append(p)
    return fill(Install, m, disks=tuple(disks), partitions=tuple(parts), root_password_hash_file=hash_file,
                root_password_hash=root_hash, ssh_authorized_keys_file=keys_file, ssh_authorized_keys=keys,
                packages=tuple(packages))


def _install_disks(ck: Checker, m: Values) -> list[str]:
    disks = [str(d) for d in m.get("disks", [])]
    if "disks" in m:
        if len(disks) not in (1, 2):
            ck.at("install.disks",
                  f"one or two disks are supported, got {len(disks)}",
                  "two disks give software RAID1")
        for i, d in enumerate(disks):
            if not DISK_RE.match(d):
                ck.add(f"install.disks[{i}]", f"{d!r} is not a disk name", ck.line(f"install.disks[{i}]"),
                       "a kernel disk name without /dev/, e.g. sda")
        if len(set(disks)) != len(disks):
            ck.at("install.disks", "a disk is listed twice")
    return disks


def _install_partitions(ck: Checker, m: Values) -> list[Partition]:
    """install.partitions: mount points unique, one at /, sizes that parse."""
    parts: list[Partition] = []
    mounts: dict[str, int] = {}
    pseq = m.get("partitions", [])
    if "partitions" in m and not pseq:
        ck.at("install.partitions", "at least one partition (/) is needed")
    for i, item in enumerate(pseq):
        path = f"install.partitions[{i}]"
        pm = ck.mapping(item, path, "partition", ck.item_line(pseq, i))
        if pm is None or "mount" not in pm or "size" not in pm:
            continue
        mount, size = pm["mount"], str(pm["size"])
        if mount != "swap" and not re.match(r"^/[A-Za-z0-9._/-]*$", mount):
            ck.at(f"{path}.mount", f"{mount!r} is not an absolute mount point or 'swap'")
        if mount in mounts:
            ck.at(f"{path}.mount", f"{mount} is already used by install.partitions[{mounts[mount]}]")
        mounts.setdefault(mount, i)
        mib = parse_size_mib(size)
        if mib is None:
            ck.at(f"{path}.size", f"{size!r} is not a size", "a number with K, M, G or T, e.g. 256M or 4G")
            continue
        parts.append(Partition(mount, size, mib))
    if pseq and "/" not in mounts:
        ck.at("install.partitions", "no partition is mounted at /")
    return parts


def _root_password_hash(ck: Checker, m: Values, read_secret) -> tuple[Path, Secret | None]:
    """The root hash file must hold a crypt(3) hash, never a plain password."""
    hash_file, root_hash = Path(""), None
    if "root_password_hash_file" in m:
        hash_file, root_hash = read_secret(m["root_password_hash_file"], "install.root_password_hash_file",
                                           ck.line("install.root_password_hash_file"), "root password hash")
        if root_hash is not None and not CRYPT_RE.match(root_hash.reveal().strip()):
            ck.at("install.root_password_hash_file",
                  f"{m['root_password_hash_file']} does not hold a crypt(3) hash ($1$, $5$ or $6$)",
                  "never store a plain password: create one with `openssl passwd -6` or "
                  "`python3 -c 'import crypt; print(crypt.crypt(input()))'`")
            root_hash = None
        elif root_hash is not None:
            root_hash = Secret(root_hash.reveal().strip(), root_hash.source)
    return hash_file, root_hash


def _authorized_keys(ck: Checker, m: Values, read_secret) -> tuple[Path | None, Secret | None]:
    keys_file, keys = None, None
    if "ssh_authorized_keys_file" in m:
        keys_file, keys = read_secret(m["ssh_authorized_keys_file"], "install.ssh_authorized_keys_file",
                                      ck.line("install.ssh_authorized_keys_file"), "authorized keys")
        if keys is not None:
            for n, ln in enumerate(keys.reveal().splitlines(), 1):
                ln = ln.strip()
                if ln and not ln.startswith("#") and not re.search(r"(^|\s)(ssh-(rsa|dss|ed25519)|ecdsa-sha2-\S+) \S+", ln):
                    ck.at("install.ssh_authorized_keys_file",
                          f"{m['ssh_authorized_keys_file']} line {n} is not an OpenSSH public key",
                          "one 'ssh-rsa AAAA... comment' per line")
                    keys = None
                    break
    return keys_file, keys


def _load_storage(ck: Checker, top) -> Storage | None:
    m = _sub(ck, top, "storage", "storage")
    if not m:
        return None
    node = top["storage"]  # a mapping (m holds its well-typed keys)
    size = m.get("size")
    size_mib = parse_size_mib(size) if size is not None else None

    def part(key: str) -> tuple[Any, Values | None]:
        sub = node.get(key) if key in m else None
        return sub, (ck.mapping(sub, f"storage.{key}", key, ck.line(f"storage.{key}")) if sub is not None else None)

    drbd = _load_drbd(ck, part("drbd")[1])
    clvm = _load_clvm(part("clvm")[1])
    gfs2 = _load_gfs2(ck, *part("gfs2"))
    bd = m.get("backing_device", "")
    if drbd and clvm and gfs2 and bd:
        return fill(Storage, m, drbd=drbd, clvm=clvm, gfs2=gfs2, size_mib=size_mib)
    return None


def _load_drbd(ck: Checker, d: Values | None) -> Drbd | None:
    """storage.drbd: dual-primary needs protocol C, 'both' needs two primaries; bounded timeouts."""
    if d is None:
        return None
    proto = given_or_default(d, Drbd, "protocol")
    two = given_or_default(d, Drbd, "allow_two_primaries")
    if given_or_default(d, Drbd, "become_primary_on") == "both" and not two:
        ck.at("storage.drbd.become_primary_on", "'both' needs allow_two_primaries: true")
    if two and proto != "C":
        ck.at("storage.drbd.protocol", "allow_two_primaries needs protocol C")
    wfc, degr = _drbd_timeouts(ck, d)
    if all(k in d for k in ("resource", "device", "port", "sync_rate")):
        return fill(Drbd, d, wfc_timeout=wfc, degr_wfc_timeout=degr)
    return None


def _load_clvm(c: Values | None) -> Clvm | None:
    return fill(Clvm, c) if c is not None and c.get("vg") else None


def _load_gfs2(ck: Checker, gn, g: Values | None) -> Gfs2 | None:
    if g is None:
        return None
    ck.seen.gfs2_mount = str(gn.get("mount", "")).rstrip("/")  # the hvm ISOs must be under it
    lv = g.get("lv", "")
    if lv:
        _check_lvm_name(ck, lv, "storage.gfs2.lv", ck.line("storage.gfs2.lv"))
        if len(lv) > 30:
            ck.at("storage.gfs2.lv",
                  f"{lv!r} is longer than the lock table allows (<cluster>:<lv>, 16:30 characters)",
                  "shorten the LV name to 30 characters or fewer")
    gmib = parse_size_mib(g["size"]) if g.get("size") else None
    if lv and gmib and g.get("mount") and g.get("journals") is not None:
        return fill(Gfs2, g, size_mib=gmib)
    return None


# drbd_limits.h (DRBD 8.3.7): DRBD_WFC_TIMEOUT_MAX, DRBD_DEGR_WFC_TIMEOUT_MAX
DRBD_WFC_MAX = 300000


def _drbd_timeouts(ck: Checker, d: dict) -> tuple[int, int]:
    """wfc-timeout / degr-wfc-timeout: bounded, never 0 (DRBD's default: wait forever, the boot hangs)."""
    out = {}
    for key in ("wfc_timeout", "degr_wfc_timeout"):
        value = given_or_default(d, Drbd, key)
        if not 1 <= value <= DRBD_WFC_MAX:
            ck.at(f"storage.drbd.{key}",
                  f"{value} is not 1-{DRBD_WFC_MAX} seconds",
                  "0 means wait forever: a node whose peer is away would never finish booting")
            value = default(Drbd, key)
        out[key] = value
    if out["degr_wfc_timeout"] > out["wfc_timeout"]:
        ck.at("storage.drbd.degr_wfc_timeout",
              f"{out['degr_wfc_timeout']} is longer than wfc_timeout "
              f"({out['wfc_timeout']})",
              "drbdsetup 8.3.7 silently shortens it to wfc_timeout; make it shorter or equal")
    return out["wfc_timeout"], out["degr_wfc_timeout"]


def _check_lvm_name(ck: Checker, name: str, path: str, line: int | None) -> None:
    problem = lvm_name_problem(name)
    if problem:
        ck.add(path, problem[0], line, problem[1])


def _load_xen(ck: Checker, top) -> Xen | None:
    m = _sub(ck, top, "xen", "xen")
    if not m:
        return None
    node = top["xen"]
    mem_mib = parse_size_mib(m["dom0_mem"]) if m.get("dom0_mem") else None
    hv, ver = m.get("hypervisor_rpm", ""), m.get("version", "")
    if hv and ver and not re.match(rf"^xen-{re.escape(ver)}-[A-Za-z0-9_.]+$", hv):
        ck.at("xen.hypervisor_rpm",
              f"{hv!r} is not the xen package of xen.version {ver}",
              f"name-version-release of the xen package the kickstart installs, e.g. xen-{ver}-1.an1.fc13")
    bridges = _xen_bridges(ck, m)
    rn = node.get("relocation") if "relocation" in m else None
    relocation = _load_relocation(ck, rn)
    if mem_mib and m.get("dom0_kernel") and all(k in m for k in ("version", "hypervisor_rpm")):
        return fill(Xen, m, dom0_mem_mib=mem_mib, bridges=bridges, relocation=relocation)
    return None


def _xen_bridges(ck: Checker, m: Values) -> tuple[str, ...]:
    bridges: list[str] = []
    bseq = given_or_default(m, Xen, "bridges")
    for i, b in enumerate(bseq or []):
        if b not in NETWORK_NAMES:
            ck.add(f"xen.bridges[{i}]", f"{b!r} is not a defined network", ck.line(f"xen.bridges[{i}]"),
                   suggest(str(b), NETWORK_NAMES, "networks are"))
        elif b in bridges:
            ck.at(f"xen.bridges[{i}]", f"{b!r} is listed twice")
        else:
            bridges.append(b)
            if b == "sn":
                ck.warn(f"xen.bridges[{i}]", "the storage network is bridged: a xend restart takes its NIC down, "
                        "which drops DRBD (and, with redundant rings, totem ring 1 with it)", ck.line(f"xen.bridges[{i}]"),
                        "the seed keeps the sn out of Xen: use bridges: [bcn, ifn] unless a VM needs the sn")
    return tuple(bridges)


def _load_relocation(ck: Checker, rn) -> Relocation:
    """xen.relocation (absent: the defaults); hosts_allow is `peers` or a non-empty list."""
    r = (ck.mapping(rn, "xen.relocation", "relocation", ck.line("xen.relocation")) if rn is not None else None) \
        or Values()
    port = given_or_default(r, Relocation, "port")
    if "port" not in r.bad and given_or_default(r, Relocation, "enabled") and port in CLUSTER_PORTS:
        ck.at("xen.relocation.port", f"{port} is already used by {CLUSTER_PORTS[port]}")
    allow: tuple[str, ...] | str = default(Relocation, "hosts_allow")
    if "hosts_allow" in r:
        ha = r["hosts_allow"]
        if isinstance(ha, str):
            if ha != "peers":
                ck.at("xen.relocation.hosts_allow",
                      f"{ha!r} is neither 'peers' nor a list",
                      "use peers, or a list of host names/addresses (regexes)")
        else:
            items = [str(x) for x in ha if str(x).strip()]
            if not items:
                ck.at("xen.relocation.hosts_allow",
                      "an empty list lets every host migrate VMs in",
                      "use peers (only the other node) or list the hosts")
            allow = tuple(items)
    elif rn is not None and "hosts_allow" in rn:
        ck.at("xen.relocation.hosts_allow",
              "empty: that would let every host migrate VMs in",
              "use peers (only the other node) or list the hosts")
    return fill(Relocation, r, hosts_allow=allow)


def _load_vms(ck: Checker, top, cluster, base_dir: Path, digests: list[str]) -> dict[str, Vm]:
    """The VMs that loaded, by their path (vms[i])."""
    vms: dict[str, Vm] = {}
    seq = top.get("vms", []) or []
    names: dict[str, int] = {}
    for i, path, item, m in ck.items(seq, "vms", "vm"):
        ck.seen.vms.append((path, m))
        name = m.get("name", "")
        if name:
            if name in names:
                ck.at(f"{path}.name", f"{name!r} is already used by vms[{names[name]}]")
            names.setdefault(name, i)
        sizes = {key: parse_size_mib(m[key]) for key in ("memory", "disk") if key in m}
        cfile, config = _vm_config(ck, m, path, base_dir, digests)
        extra = _vm_extras(ck, item, m, path)
        if all(k in m for k in ("name", "memory", "vcpus", "disk", "bridge", "prefer")) and all(sizes.values()) \
                and extra is not None:
            vm = fill(Vm, m, memory_mib=sizes["memory"], disk_mib=sizes["disk"], config_file=cfile, config=config,
                      **extra)
            if vm.disk_mib < vm.min_disk_mib:
                ck.at(f"{path}.disk",
                      f"{vm.disk} is too small for the guest: its kickstart lays out /boot "
                      f"{GUEST_BOOT_MIB} MiB, swap {vm.guest_swap_mib} MiB and / at least {GUEST_ROOT_MIN_MIB} MiB "
                      f"({vm.min_disk_mib} MiB)",
                      f"make it at least {vm.min_disk_mib}M")
            vms[path] = vm
    _assign_macs(ck, vms, cluster["name"])
    return vms


def _vm_config(ck: Checker, m: dict, path: str, base_dir: Path,
               digests: list[str]) -> tuple[Path | None, str | None]:
    """vms[].config_file: the xm config rgmanager's vm.sh starts (`xm create --path=<mount>/domU_config
    <name>`). Without one the VM is defined but not started (autostart="0")."""
    if "config_file" not in m:
        return None, None
    rel, kpath = m["config_file"], f"{path}.config_file"
    line = ck.line(kpath)
    full = Path(rel) if Path(rel).is_absolute() else base_dir / rel
    try:
        text = full.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        ck.add(kpath, f"cannot read domU config {rel} ({type(err).__name__}, looked at {full})", line,
               "relative paths are relative to the definition file")
        return Path(rel), None
    reason = domu_config_problem(text, m.get("name", ""))
    if reason:
        ck.add(kpath, f"{rel}: {reason}", line, "an xm config: Python assignments such as name = \"vm01\"")
        return Path(rel), None
    digests.append(hashlib.sha256(text.encode()).hexdigest())
    return Path(rel), text


def _vm_extras(ck: Checker, item, m: dict, path: str) -> dict | None:
    """mac, cpuset, os_variant and install of one VM (None when one of them is bad)."""
    ok = not {"mac", "cpuset"} & m.bad
    mac = str(m.get("mac", "")).lower()
    cpuset = str(m["cpuset"]) if "cpuset" in m else None
    variant = m.get("os_variant")
    known = [v for vs in VIRTINST_OS_VARIANTS.values() for v in vs]
    if variant is not None and variant not in known:
        ck.at(f"{path}.os_variant",
              f"{variant!r} is not an --os-variant of Fedora 13's virt-install "
              "(python-virtinst 0.500.3)",
              suggest(variant, known, "variants are"))
        ok = False
    install = _vm_install(ck, item, path)
    if install is False:
        return None
    return {"mac": mac, "mac_derived": "mac" not in m, "cpuset": cpuset, "os_variant": variant,
            "install": install} if ok else None


def _vm_install(ck: Checker, item, path: str) -> VmInstall | None | bool:
    """vms[].install; None when absent (the VM is provisioned by hand), False when bad."""
    if "install" not in item:
        return None
    node = item["install"]
    m = ck.mapping(node, f"{path}.install", "vm_install", ck.line(f"{path}.install"))
    if m is None or "method" not in m:
        return False
    ipath = f"{path}.install"
    method = m["method"]
    allowed = {"pv": ("location", "kickstart", "kickstart_url"), "hvm": ("iso",)}
    if method not in allowed:
        ck.at(f"{ipath}.method",
              f"{method!r} is not pv or hvm",
              "pv: virt-install --paravirt from an install tree URL; hvm: an xm config booting an ISO")
        return False
    bad = False
    for key in sorted(set(m) - {"method"} - set(allowed[method])):
        ck.at(f"{ipath}.{key}", f"does not apply to method {method}")
        bad = True
    need = "location" if method == "pv" else "iso"
    if need not in m:
        ck.add(f"{ipath}.{need}", f"method {method} needs {need}", ck.line(ipath))
        return False
    for key in ("location", "kickstart_url"):
        if key in m and not INSTALL_URL_RE.match(m[key]):
            ck.at(f"{ipath}.{key}",
                  f"{m[key]!r} is not an http://, ftp:// or nfs: URL (virt-install 0.500.3 takes no other)",
                  "virt-install --location takes http://host/path, ftp://host/path or nfs:host:/path")
            bad = True
    if "kickstart_url" in m and not m.get("kickstart"):
        ck.at(f"{ipath}.kickstart_url",
              "set without kickstart: true",
              "set kickstart: true so the pipeline renders the kickstart to publish there")
        bad = True
    if method == "hvm":
        mount = ck.seen.gfs2_mount
        iso = m["iso"]
        if not mount or not iso.startswith(mount + "/") or ".." in iso.split("/") or any(c in iso for c in "',\" \n"):
            ck.at(f"{ipath}.iso",
                  f"{iso!r} is not a file on the shared GFS2 mount {mount or '(unset)'}",
                  f"put the ISO on the shared filesystem, e.g. {mount}/iso/<name>.iso, "
                  "so both nodes can boot the VM")
            bad = True
    if bad:
        return False
    return fill(VmInstall, m)


def _assign_macs(ck: Checker, vms: dict[str, Vm], cname: str) -> None:
    """Explicit MACs must be unique; derived ones skip every MAC already taken (so never collide)."""
    taken: dict[str, str] = {}
    for mac, path in ck.seen.node_macs:  # the nodes' own NICs (nodes[].mac)
        taken.setdefault(mac, path)
    for path, vm in vms.items():
        if vm.mac_derived:
            continue
        if vm.mac in taken:
            ck.at(f"{path}.mac",
                  f"{vm.mac} is already used by {taken[vm.mac]}",
                  "every VM needs its own MAC (leave mac out for a derived one)")
        taken.setdefault(vm.mac, f"{path} ({vm.name})")
    for path, vm in vms.items():
        if not vm.mac_derived:
            continue
        attempt, mac = 0, derived_mac(cname, vm.name)
        while mac in taken:
            attempt += 1
            mac = derived_mac(cname, vm.name, attempt)
        taken[mac] = vm.name
        vms[path] = dataclasses.replace(vm, mac=mac)


