"""Load and validate a cluster definition into frozen dataclasses.

Every rule of the definition format (docs/definition.md) is checked here. Problems are collected, not
raised one by one: the user sees all of them at once, each as `<file>:<line>: <dotted.path>: <reason>`
with a hint where one helps (the mkksiso/mkosi style). Secrets are read from the *_file paths into
`Secret` objects whose str() is "<redacted>", so they cannot leak through logs or model.json by accident.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import ipaddress
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import log
from .errors import Problem, ProblemsError
from .f13virt import VIRTINST_OS_VARIANTS
from .settings import (BOOL, INT, LIST, MAP, SCALAR, STR, STR_OR_LIST, Setting, default, fill, given_or_default, setting,
                       settings_of)
from .values import (AT_LEAST_ONE, CLUSTER_PORTS, CONSOLE_RE, CRYPT_RE, DISK_RE, FENCE_AGENT_RE, HOST_LABEL_RE,
                     IFACE_RE, INSTALL_URL_RE, KERNEL_VR_RE, MAC_RE, NAME_RE, PKG_RE, PORT, RATE_RE, SUPPORTED_RELEASE,
                     XEN_OUI, cpuset, drbd_port, lvm_name, lvm_name_problem, one_of, parse_size_mib, rule, size,
                     unless_empty, valid_dns_name, valid_timezone, vm_mac, vm_name)
from .values import RENDEZVOUS_PORT  # noqa: F401 -- imported from here by render and the tests
from .yamlsource import Lines, item_line, key_line, read_yaml

NETWORK_NAMES = ("bcn", "sn", "ifn")
REDACTED = "<redacted>"

# A file named DEMO inside a secrets directory marks its contents as demo values (tasks warn).
DEMO_MARKER = "DEMO"


class Secret:
    """A secret read from a *_file. str()/repr() never show it; templates call .reveal()."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: Path):
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return REDACTED

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Network:
    name: str
    interface: str = setting(STR, "the node NIC on this network (`eth0`, `em1`, a VLAN `eth3.100`); unique per node",
                             required=True,
        rule=unless_empty(IFACE_RE, "{0!r} is not a valid interface name"))
    subnet: ipaddress.IPv4Network = setting(STR, "an IPv4 network in CIDR form; every node address lies inside it",
                                            required=True)
    mtu: int | None = setting(INT, "optional MTU written to ifcfg (anaconda 13 drops `network --mtu`)", default=None,
        rule=rule(lambda v: 576 <= v <= 9216, "{0} is outside 576-9216"))
    gateway: ipaddress.IPv4Address | None = setting(STR, "the default route; only on the ifn, inside its subnet",
                                                    default=None)
    dns: tuple[ipaddress.IPv4Address, ...] = setting(LIST, "name servers (IPv4 addresses), only on the ifn", default=())

    @property
    def netmask(self) -> str:
        return str(self.subnet.netmask)

    @property
    def vlan_parent(self) -> str | None:
        """eth3.100 is VLAN 100 on eth3: its ifcfg says VLAN=yes, eth3 gets a bare ifcfg, and the
        kickstart leaves it out (anaconda 13 cannot create VLANs; first boot installs the ifcfg)."""
        base, dot, vid = self.interface.partition(".")
        return base if dot and vid.isdigit() else None


@dataclass(frozen=True)
class FenceMethod:
    method: str = setting(STR, "the method's name in cluster.conf", required=True)
    device: str = setting(STR, "a `fence_devices[].name`", required=True)
    port: str | None = setting(SCALAR, "the outlet/port on the device: needed by fence_na and other multi-port "
                                       "devices, refused by fence_ipmilan", default=None)


@dataclass(frozen=True)
class Node:
    name: str = setting(STR, "short host name, a valid DNS label, unique", required=True,
        rule=unless_empty(HOST_LABEL_RE, "{0!r} is not a valid host name",
                          "letters, digits and '-', no dots (the domain comes from cluster.domain)"))
    nodeid: int = setting(INT, "cman nodeid >= 1, unique; the lowest nodeid runs the one-node first-boot steps",
                          required=True,
        rule=AT_LEAST_ONE)
    fqdn: str
    ip: dict[str, ipaddress.IPv4Address] = setting(
        MAP, "`{bcn: ..., sn: ..., ifn: ...}`: one address per network, inside its subnet, none used twice",
        required=True)
    mac: dict[str, str] = setting(MAP, "optional `{<nic>: <MAC>}`: pins HWADDR in ifcfg; unicast, unique in the "
                                  "cluster; without it the HWADDR anaconda saw is kept")
    fence: tuple[FenceMethod, ...] = setting(LIST, "at least one method, tried in order", required=True)


@dataclass(frozen=True)
class FenceDevice:
    name: str = setting(STR, "unique device name, referenced by `nodes[].fence[].device`", required=True)
    agent: str = setting(STR, "`fence_na` (Node Assassin, our `fence-na` package), `fence_ipmilan`, or another "
                               "`fence_*` agent of F13's fence-agents", required=True,
        rule=unless_empty(FENCE_AGENT_RE, "{0!r} is not a fence agent name",
                          "fence_na, fence_ipmilan or another fence_* agent"))
    ipaddr: str = setting(STR, "the device's address as cluster.conf passes it to the agent: an IPv4 address, "
                                "or a host name that `address` resolves", required=True)
    login: str = setting(STR, "the device login (fence_na: the same on every Node Assassin)", required=True)
    password_file: Path = setting(STR, "file holding the password (one line, <= 4 KiB, no control characters; "
                                        "never printed; warned about when group/other-readable)", required=True)
    password: Secret = field(repr=False)
    # where ipaddr resolves on the node: ipaddr itself, or the `address` given for a host name
    # (rendered into /etc/hosts); fenced passes ipaddr to the agent as written.
    address: str | None = setting(STR, "IPv4 address of a host-name `ipaddr`, written to the nodes' /etc/hosts "
                                        "(fencing must not depend on DNS); an error when ipaddr is already an address",
                                  default=None)
    options: dict[str, str] = setting(  # extra <fencedevice> attributes (lanplus, auth, ...)
        MAP, "extra `<fencedevice>` attributes (`lanplus: true`, `auth: md5`, ...), each accepted for the agent by "
             "every cman schema a node may run; `false` is refused", default_factory=dict)


@dataclass(frozen=True)
class Partition:
    mount: str = setting(STR, "mount point (`/boot`, `/`, ...) or `swap`; unique", required=True)
    size: str = setting(STR, "a size like `256M` or `40G`", required=True)
    size_mib: int


@dataclass(frozen=True)
class Install:
    disks: tuple[str, ...] = setting(LIST, "one disk (plain partitions) or two (software RAID1 for every partition)",
                                     required=True)
    partitions: tuple[Partition, ...] = setting(
        LIST, "partitions in order; the last, DRBD's backing, takes the rest of the disk", required=True)
    root_password_hash_file: Path = setting(
        STR, "file holding root's crypt(3) hash (SHA-512 `$6$`), never a plain password", required=True)
    root_password_hash: Secret = field(repr=False)
    ssh_authorized_keys_file: Path | None = setting(
        STR, "optional file of root's authorized keys (the admins' keys)", default=None)
    ssh_authorized_keys: Secret | None = field(default=None, repr=False)
    selinux: str = setting(STR, "`permissive` (the seed), `enforcing` or `disabled`", default="permissive",
        rule=one_of(("enforcing", "permissive", "disabled"), "{0!r} is not enforcing, permissive or disabled"))
    firewall: str = setting(STR, "`cluster` (open only this cluster's ports) or `off` (the seed)", default="cluster",
        rule=one_of(("cluster", "off"), "{0!r} is not 'cluster' or 'off'",
                    "cluster opens only the ports this cluster uses; off disables the firewall (the seed's way)"))
    runlevel: int = setting(INT, "default runlevel, 3 or 5", default=3,
        rule=one_of((3, 5), "{0} is not 3 or 5"))
    packages: tuple[str, ...] = setting(
        LIST, "extra packages on top of the cluster set; each must be on the DVD or in our repo", default=())
    console: str | None = setting(STR, "optional serial console for installer, Xen and dom0 (`ttyS0,115200`)",
                                  default=None,
        rule=rule(CONSOLE_RE.match, "{0!r} is not a console setting",
                  "e.g. ttyS0,115200 for IPMI serial-over-LAN, or tty0"))

    @property
    def raid(self) -> bool:
        return len(self.disks) == 2


@dataclass(frozen=True, kw_only=True)  # keyword-only: optional keys sit between required ones
class Drbd:
    resource: str = setting(STR, "DRBD resource name (`r0`)", required=True,
        rule=unless_empty(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", "{0!r} is not a valid DRBD resource name"))
    device: str = setting(STR, "DRBD device (`/dev/drbd0`)", required=True,
        rule=unless_empty(r"^/dev/drbd\d+$", "{0!r} is not a DRBD device", "e.g. /dev/drbd0"))
    port: int = setting(INT, "TCP port on the sn, 1-65535, not a port the cluster already uses", required=True,
        rule=drbd_port)
    protocol: str = setting(STR, "`C` (dual-primary needs it), `B` or `A`", default="C",
        rule=one_of(("A", "B", "C"), "{0!r} is not A, B or C", "dual-primary with GFS2 needs protocol C"))
    sync_rate: str = setting(STR, "`syncer { rate }`, like `40M`", required=True,
        rule=unless_empty(RATE_RE, "{0!r} is not a DRBD rate", "a number with K, M or G (bytes per second), e.g. 40M"))
    allow_two_primaries: bool = setting(BOOL, "dual-primary for GFS2", default=True)
    become_primary_on: str = setting(STR, "`both` or a node name", default="both")
    wfc_timeout: int = setting(INT, "seconds DRBD's start-up waits for the peer, 1-300000 (DRBD's own default 0 "
                                      "waits forever and hangs the boot)", default=300)
    degr_wfc_timeout: int = setting(INT, "the same wait after a degraded shutdown (and for an outdated peer); at "
                                           "most wfc_timeout", default=120)


@dataclass(frozen=True)
class Clvm:
    vg: str = setting(STR, "volume group name, a valid LVM name", required=True,
        rule=lvm_name)
    filter: str = setting(STR, "`drbd-only`: lvm.conf `filter = [ \"a|/dev/drbd*|\", \"r/.*/\" ]`", default="drbd-only",
        rule=one_of(("drbd-only",), "{0!r} is not supported",
                    "only drbd-only (LVM sees DRBD devices only) is safe on top of DRBD"))


@dataclass(frozen=True)
class Gfs2:
    lv: str = setting(STR, "logical volume name; lock table `<cluster.name>:<lv>` within GFS2's 16:30 limits",
                      required=True)
    size: str = setting(STR, "LV size like `20G`", required=True,
        rule=size("e.g. 20G"))
    size_mib: int
    mount: str = setting(STR, "mount point on both nodes (`/xen_shared`; VM configs live in `domU_config/` there)",
                         required=True,
        rule=unless_empty(r"^/[A-Za-z0-9._/-]+$", "{0!r} is not an absolute path"))
    journals: int = setting(INT, "journals, at least the number of nodes", required=True,
        rule=AT_LEAST_ONE)


@dataclass(frozen=True)
class Storage:
    backing_device: str = setting(
        STR, "DRBD's backing device: `/dev/md<N>` over the last partitions (two disks) or the partition the kickstart "
             "leaves for DRBD (one disk)", required=True,
        rule=unless_empty(r"^/dev/[A-Za-z0-9/_.-]+$", "{0!r} is not a /dev path"))
    drbd: Drbd = setting(MAP, "the DRBD 8.3.7 resource", required=True)
    clvm: Clvm = setting(MAP, "the clustered volume group on the DRBD device", required=True)
    gfs2: Gfs2 = setting(MAP, "the GFS2 file system on its LV", required=True)
    managed_by: str = setting(STR, "`rgmanager` (storage as per-node rgmanager services, the seed's last word) "
                                      "or `init` (SysV start order)", default="rgmanager",
        rule=one_of(("init", "rgmanager"), "{0!r} is not 'init' or 'rgmanager'"))
    size: str | None = setting(
        STR, "optional size of the DRBD device; when given the GFS2 LV and every VM disk must fit", default=None,
        rule=size("e.g. 400G"))
    size_mib: int | None = None


@dataclass(frozen=True)
class Relocation:
    enabled: bool = setting(BOOL, "xend relocation server on", default=False)
    port: int = setting(INT, "relocation port", default=8002,
        rule=PORT)
    hosts_allow: tuple[str, ...] | str = setting(  # "peers" or explicit list
        STR_OR_LIST, "`peers` (only the other node's bcn address) or a list of regexes; never empty (empty allows "
                     "everyone)", default="peers")


@dataclass(frozen=True, kw_only=True)
class Xen:
    version: str = setting(STR, "`4.0.1`", required=True)
    hypervisor_rpm: str = setting(STR, "the xen NVR the kickstart installs; must name xen.version "
                                        "(`xen-4.0.1-1.an1.fc13`, what rpmspecs/xen builds)", required=True)
    dom0_kernel: str = setting(
        STR, "the dom0 kernel's version-release (`2.6.32.23-170.dom0_an1.fc13`, rpmspecs/kernel)", required=True,
        rule=unless_empty(KERNEL_VR_RE, "{0!r} is not a kernel version-release", "e.g. 2.6.32.23-170.dom0_an1.fc13"))
    dom0_mem: str = setting(STR, "dom0 memory like `1024M` (`dom0_mem=` on the Xen line)", required=True,
        rule=size("e.g. 1024M"))
    dom0_mem_mib: int
    bridges: tuple[str, ...] = setting(
        LIST, "networks that get a Xen bridge (the seed: never the storage network); bridging `sn` is allowed but "
              "warned about (a xend restart would drop DRBD)", default=("bcn", "ifn"))
    relocation: Relocation = setting(MAP, "xend live-migration settings")


@dataclass(frozen=True)
class VmInstall:
    """How the VM is provisioned: pv = virt-install --paravirt from an install tree URL (optionally with
    a guest kickstart the pipeline renders); hvm = an xm config booting an ISO on the shared GFS2."""
    method: str = setting(  # pv | hvm
        STR, "`pv` (virt-install --paravirt from an install tree) or `hvm` (an xm config booting an ISO on the shared "
             "file system)", required=True)
    location: str | None = setting(  # pv: install tree URL (http://, ftp://, nfs:)
        STR, "pv: the install tree, an http://, ftp:// or nfs: URL (virt-install 0.500.3 takes no https)", default=None)
    kickstart: bool = setting(BOOL, "pv: render a guest kickstart (mode 0600: it holds the root hash)", default=False)
    kickstart_url: str | None = setting(  # ks= on the installer's command line
        STR, "pv: where you publish that kickstart for the guest installer to fetch (needs kickstart: true)",
        default=None)
    iso: str | None = setting(STR, "hvm: the installer ISO, a path on the GFS2 mount", default=None)




# The guest kickstart's partitions (kickstart/files/vm-guest.ks.j2): /boot, swap, / (grows): the LV
# must hold at least their sum plus the partition table.
GUEST_BOOT_MIB = 256
GUEST_ROOT_MIN_MIB = 2048
GUEST_SWAP_MAX_MIB = 2048


@dataclass(frozen=True)
class Vm:
    name: str = setting(STR, "VM name: a valid libvirt and LVM name, unique", required=True,
        rule=vm_name)
    memory: str = setting(STR, "guest memory like `1024M`", required=True,
        rule=size("e.g. 1024M or 50G"))
    memory_mib: int
    vcpus: int = setting(INT, "virtual CPUs, >= 1", required=True,
        rule=AT_LEAST_ONE)
    disk: str = setting(STR, "size of the VM's LV on the clustered VG, like `50G`", required=True,
        rule=size("e.g. 1024M or 50G"))
    disk_mib: int
    bridge: str = setting(STR, "the network whose Xen bridge the VM's NIC joins; must be in xen.bridges",
                          required=True)
    prefer: str = setting(STR, "the node the VM's failover domain prefers", required=True)
    migrate: str = setting(STR, "`live` or `pause`: how rgmanager moves the VM", default="live",
        rule=one_of(("live", "pause"), "{0!r} is not 'live' or 'pause'"))
    config_file: Path | None = setting(  # an xm domU config shipped with the definition
        STR, "optional xm domain config (Python assignments whose `name` is the VM's) shipped to "
             "`<gfs2 mount>/domU_config/<vm>`; only then does the VM autostart", default=None)
    config: str | None = field(default=None, repr=False)
    mac: str = setting(STR, "optional unicast MAC of the VM's NIC, unique in the cluster (node NICs included); "
                            "default: stable, derived from the cluster and VM name in Xen's 00:16:3e range",
                       default="",
        rule=vm_mac)
    mac_derived: bool = True
    cpuset: str | None = setting(SCALAR, "optional physical CPUs the VM may use (`1`, `1-3`, `0,2`)", default=None,
        rule=cpuset)
    os_variant: str | None = setting(STR, "optional `--os-variant` of Fedora 13's virt-install (python-virtinst "
                                             "0.500.3), e.g. `fedora13`", default=None)
    install: VmInstall | None = setting(
        MAP, "optional: how first boot provisions the VM (lowest nodeid, only while it has no config)", default=None)

    @property
    def autostart(self) -> bool:
        """rgmanager starts a VM only when its domU config is known to be there: one shipped here."""
        return self.config is not None

    @property
    def os_type(self) -> str | None:
        """The --os-type python-virtinst 0.500.3 files os_variant under (virtinst/osdict.py)."""
        return next((t for t, vs in VIRTINST_OS_VARIANTS.items() if self.os_variant in vs), None)

    @property
    def guest_swap_mib(self) -> int:
        return min(self.memory_mib, GUEST_SWAP_MAX_MIB)

    @property
    def min_disk_mib(self) -> int:
        """The smallest LV the guest installs on (0: nothing known about the guest's layout)."""
        if self.install is None or not self.install.kickstart:
            return 0
        return GUEST_BOOT_MIB + self.guest_swap_mib + GUEST_ROOT_MIN_MIB + 1


@dataclass(frozen=True)
class Totem:
    rrp_mode: str = setting(STR, "`none`, `active` or `passive`; not none adds ring 1 on the sn (`altname`) and makes "
                                  "dlm_controld use SCTP", default="none",
        rule=one_of(("none", "active", "passive"), "{0!r} is not one of none, active, passive"))
    secauth: bool = setting(BOOL, "corosync `secauth`", default=False)


@dataclass(frozen=True, kw_only=True)
class Cluster:
    name: str = setting(STR, "cman cluster name and GFS2 lock-table prefix: 1-15 characters `[A-Za-z0-9_-]`",
                      required=True, section="cluster",
        rule=rule(NAME_RE.match, "{0!r} is not 1-15 characters of [A-Za-z0-9_-]",
                  "cman limits cluster names to 15 characters"))
    config_version: int = setting(
        INT, "cluster.conf config_version, a positive integer; bump it to push a change", required=True,
        section="cluster",
        rule=rule(lambda v: v >= 1, "must be a positive integer, got {0}"))
    domain: str = setting(STR, "a valid DNS name; node FQDN = `<node name>.<domain>`", required=True, section="cluster",
        rule=rule(valid_dns_name, "{0!r} is not a valid DNS domain name", "for example example.com"))
    timezone: str = setting(STR, "an Olson time zone name (`America/Toronto`), for the kickstart's `timezone --utc`",
                          required=True, section="cluster",
        rule=rule(valid_timezone, "{0!r} is not a known time zone", "use an Olson name such as America/Toronto or UTC"))
    release: str = setting(STR, "the target; only `fedora-13-x86_64`", default=SUPPORTED_RELEASE, section="cluster",
        rule=rule(lambda v: v == SUPPORTED_RELEASE, "{0!r} is not supported",
                  f"the only supported release is {SUPPORTED_RELEASE}"))
    networks: dict[str, Network] = setting(
        MAP, "the three networks: bcn (back-channel, totem ring 0, fencing, migration), sn (storage: DRBD, ring 1 with "
             "rrp), ifn (internet-facing: VM bridge, default route)", required=True)
    totem: Totem = setting(MAP, "corosync ring settings")
    nodes: tuple[Node, ...] = setting(LIST, "the two nodes (a two_node cman cluster)", required=True)
    fence_devices: tuple[FenceDevice, ...] = setting(
        LIST, "every fence device the nodes' methods name; each must be used", required=True)
    install: Install = setting(MAP, "what the kickstart lays down on each node", required=True)
    storage: Storage = setting(MAP, "DRBD + clustered LVM + GFS2 on the backing device", required=True)
    xen: Xen = setting(MAP, "the Xen 4.0.1 dom0", required=True)
    vms: tuple[Vm, ...] = setting(LIST, "rgmanager `<vm>` services; default none")
    source: Path
    digest: str
    demo_secrets: bool = False
    warnings: tuple[str, ...] = ()  # allowed but risky choices, "file:line: path: reason" (tasks print them)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def peer(self, node: Node) -> Node:
        return next(n for n in self.nodes if n.name != node.name)

    @property
    def lowest_node(self) -> Node:
        return min(self.nodes, key=lambda n: n.nodeid)

    def fence_device(self, name: str) -> FenceDevice:
        return next(d for d in self.fence_devices if d.name == name)

    @property
    def lock_table(self) -> str:
        return f"{self.name}:{self.storage.gfs2.lv}"

    def relocation_hosts(self, node: Node) -> tuple[str, ...]:
        """Hosts allowed to migrate VMs into `node`: the peer's bcn address unless listed explicitly."""
        allow = self.xen.relocation.hosts_allow
        if allow == "peers":
            return (str(self.peer(node).ip["bcn"]),)
        return tuple(allow)

    def ports_in_use(self) -> dict[int, str]:
        ports = dict(CLUSTER_PORTS)
        ports[self.storage.drbd.port] = f"drbd {self.storage.drbd.resource}"
        if self.xen.relocation.enabled:
            ports[self.xen.relocation.port] = "xend relocation"
        return ports


def to_jsonable(obj: Any) -> Any:
    """The model as plain JSON data, secrets redacted (model.json)."""
    if isinstance(obj, Secret):
        return REDACTED
    if dataclasses.is_dataclass(obj):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (Path, ipaddress.IPv4Address, ipaddress.IPv4Network)):
        return str(obj)
    return obj


def model_json(cluster: Cluster) -> str:
    data = to_jsonable(cluster)
    data["source"] = Path(cluster.source).name  # no absolute host paths in outputs
    del data["warnings"]
    for vm in data["vms"]:
        vm["config_file"] = vm["config_file"] and Path(vm["config_file"]).name
        vm["config"] = vm["config"] is not None
    for dev in data["fence_devices"]:
        dev["password_file"] = REDACTED
    data["install"]["root_password_hash_file"] = REDACTED
    data["install"]["ssh_authorized_keys_file"] = REDACTED
    return json.dumps(data, sort_keys=True, indent=2) + "\n"


# ---------------------------------------------------------------------------------------------
# Parsing helpers
# ---------------------------------------------------------------------------------------------

def _key_path(path: str, key: Any) -> str:
    """`path.key`; a key that cannot be a path segment (not a string, empty, spaces or brackets in it) is
    reported at its mapping instead, and the reason names it (see _unknown)."""
    if _plain_key(key):
        return f"{path}.{key}" if path else key
    return path or "(top level)"


def _plain_key(key: Any) -> bool:
    return isinstance(key, str) and re.match(r"^[^\s\[\]]+$", key) is not None


def _unknown(what: str, key: Any) -> str:
    return f"unknown {what}" if _plain_key(key) else f"unknown {what} {key!r}"


def _suggest(word: str, choices, listed: str = "allowed keys") -> str | None:
    """The closest choice, else all of them after `listed` ("networks are", ...)."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else f"{listed}: {', '.join(sorted(choices))}"


# The keys each kind of mapping takes, from the settings declared on the model's fields (isobuild/settings.py).
Spec = dict[str, Setting]
CLUSTER_KEY = Setting(MAP, "the cluster's identity", required=True)  # `cluster:` holds Cluster's identity keys

SPECS: dict[str, Spec] = {
    "": {"cluster": CLUSTER_KEY, **settings_of(Cluster)},
    "cluster": settings_of(Cluster, "cluster"),
    "network": settings_of(Network),
    "totem": settings_of(Totem),
    "node": settings_of(Node),
    "fence_method": settings_of(FenceMethod),
    "fence_device": settings_of(FenceDevice),
    "install": settings_of(Install),
    "partition": settings_of(Partition),
    "storage": settings_of(Storage),
    "drbd": settings_of(Drbd),
    "clvm": settings_of(Clvm),
    "gfs2": settings_of(Gfs2),
    "xen": settings_of(Xen),
    "relocation": settings_of(Relocation),
    "vm": settings_of(Vm),
    "vm_install": settings_of(VmInstall),
}


@dataclass(frozen=True)
class FenceRef:
    """A nodes[].fence[] entry that names a device, also when its node did not load."""
    path: str
    device: str
    port: str | None  # as cluster.conf gets it; None when absent or of the wrong type
    port_given: bool  # a non-null port is written, even one of the wrong type


@dataclass
class _Seen:
    """What the parts of the definition said, also where they did not load (a node without a name still
    uses its fence device and its addresses): the cross rules read this and the model, not the YAML."""
    node_count: int = 0  # items under nodes, loaded or not
    node_names: list[str] = field(default_factory=list)
    node_addresses: list[tuple[str, str, int | None]] = field(default_factory=list)  # (address, path, line)
    node_macs: list[tuple[str, str]] = field(default_factory=list)  # (mac as written, lower case; path)
    fence_refs: list[FenceRef] = field(default_factory=list)
    device_names: list[tuple[str, str]] = field(default_factory=list)  # (path of the item, name)
    gfs2_mount: str = ""  # storage.gfs2.mount as written, without a trailing /


class Values(dict):
    """A mapping's well-typed values; `bad` holds the keys whose value broke its rule (reported already)."""

    def __init__(self) -> None:
        super().__init__()
        self.bad: set[str] = set()


class _Checker:
    """Walks the YAML tree, collecting Problems with file:line and dotted paths."""

    def __init__(self, file: Path, lines: Lines):
        self.file = file
        self.lines = lines
        self.seen = _Seen()
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def line(self, path: str) -> int | None:
        """The line of a dotted path (see yamlsource.Lines.at)."""
        return self.lines.at(path)

    def add(self, path: str, reason: str, line: int | None, hint: str | None = None) -> None:
        self.problems.append(Problem(str(self.file), line, path, reason, hint))

    def warn(self, path: str, reason: str, line: int | None, hint: str | None = None) -> None:
        self.warnings.append(Problem(str(self.file), line, path, reason, hint))

    # Line numbers of raw nodes still being walked (rules over the model use self.line(path)).
    key_line = staticmethod(key_line)
    item_line = staticmethod(item_line)

    @staticmethod
    def own_line(node: Any) -> int | None:
        lc = getattr(node, "lc", None)
        return lc.line + 1 if lc is not None else None

    def mapping(self, m: Any, path: str, spec_name: str, line: int | None) -> Values | None:
        """Check a mapping's keys, value types and each value's rule (model.SPECS, from the settings on
        the model's fields); return the well-typed values."""
        if not isinstance(m, dict):
            self.add(path or "(top level)", f"must be a mapping, got {_typename(m)}", line)
            return None
        spec = SPECS[spec_name]
        out = Values()
        for key in m:
            kpath = _key_path(path, key)
            kline = self.key_line(m, key)
            if key not in spec:
                self.add(kpath, _unknown("key", key), kline, _suggest(str(key), spec))
                continue
            value = m[key]
            if value is None and not spec[key].required:
                continue
            if not _isinstance(value, spec[key].types):
                self.add(kpath, f"must be {spec[key].kind.name}, got {_typename(value)}", kline)
                continue
            out[key] = value
        for key, s in spec.items():
            if s.required and key not in m:
                self.add(f"{path}.{key}" if path else key, "required key is missing", line)
        for key, s in spec.items():
            problem = s.rule(out[key]) if s.rule is not None and key in out else None
            if problem:
                self.add(f"{path}.{key}", problem[0], self.key_line(m, key), problem[1])
                out.bad.add(key)
        return out

    def line_of(self, m: Any, key: str) -> int | None:
        return self.key_line(m, key) if isinstance(m, dict) and key in m else self.own_line(m)


def _isinstance(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False  # YAML `yes` is not an integer here
    return isinstance(value, types)


def _typename(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# The loader: every rule of cluster-definition.md
# ---------------------------------------------------------------------------------------------


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
    ck = _Checker(path, Lines(raw))
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

    cluster = _load_cluster(ck, raw, top)
    networks = _load_networks(ck, raw, top)
    totem = _load_totem(ck, raw, top)
    devices = _load_fence_devices(ck, raw, top, read_secret)
    nodes = _load_nodes(ck, raw, top, cluster, networks)
    install = _load_install(ck, raw, top, read_secret)
    storage = _load_storage(ck, raw, top)
    xen = _load_xen(ck, raw, top)
    vms = _load_vms(ck, raw, top, cluster, base_dir, secret_digests)

    _cross_checks(ck, cluster, networks, nodes, devices, storage, xen, vms, install)

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


def _sub(ck: _Checker, raw: Any, top: dict, key: str, spec: str, path: str | None = None) -> dict[str, Any]:
    if key not in top:
        return {}
    return ck.mapping(top[key], path or key, spec, ck.line_of(raw, key)) or {}


def _load_cluster(ck: _Checker, raw, top) -> dict[str, Any]:
    """cluster: its keys' rules are the settings' (Cluster); placeholders where one is missing."""
    m = _sub(ck, raw, top, "cluster", "cluster")
    out = {"name": "", "config_version": 1, "domain": "", "timezone": "", **m, "release": SUPPORTED_RELEASE}
    out["domain"] = out["domain"].lower()
    return out


def _load_networks(ck: _Checker, raw, top) -> dict[str, Network]:
    networks: dict[str, Network] = {}
    if "networks" not in top:
        return networks
    nets = top["networks"]
    for name in nets:
        if name not in NETWORK_NAMES:
            ck.add(_key_path("networks", name), _unknown("network", name), ck.key_line(nets, name),
                   _suggest(str(name), NETWORK_NAMES, "networks are"))
    for name in NETWORK_NAMES:
        path = f"networks.{name}"
        if name not in nets:
            ck.add(path, "required network is missing", ck.own_line(nets), "bcn, sn and ifn must all be defined")
            continue
        line = ck.key_line(nets, name)
        m = ck.mapping(nets[name], path, "network", line)
        if m is None:
            continue
        node = nets[name]
        iface = m.get("interface", "")
        subnet = None
        if "subnet" in m:
            try:
                subnet = ipaddress.IPv4Network(m["subnet"], strict=True)
                if subnet.prefixlen > 30:
                    ck.add(f"{path}.subnet", f"{subnet} is too small for two nodes", ck.line_of(node, "subnet"))
            except ValueError as err:
                ck.add(f"{path}.subnet", f"{m['subnet']!r} is not an IPv4 network: {err}", ck.line_of(node, "subnet"),
                       "write it as address/prefix with host bits zero, e.g. 192.168.1.0/24")
        mtu = m.get("mtu")
        gateway = None
        if "gateway" in m:
            if name != "ifn":
                ck.add(f"{path}.gateway", "only the ifn carries the default gateway", ck.line_of(node, "gateway"),
                       "remove it; the bcn and sn are not routed")
            gateway = _ip(ck, m["gateway"], f"{path}.gateway", ck.line_of(node, "gateway"))
            if gateway and subnet and gateway not in subnet:
                ck.add(f"{path}.gateway", f"{gateway} is not inside networks.{name}.subnet {subnet}",
                       ck.line_of(node, "gateway"))
        dns = []
        for i, d in enumerate(m.get("dns", []) or []):
            ip = _ip(ck, d, f"{path}.dns[{i}]", ck.item_line(node["dns"], i))
            if ip:
                dns.append(ip)
        if subnet is not None and iface:
            networks[name] = Network(name, iface, subnet, mtu, gateway, tuple(dns))
    if len(networks) == len(NETWORK_NAMES) and all(n.vlan_parent for n in networks.values()):
        ck.add("networks.bcn.interface", "every network is a VLAN: the kickstart needs one plain NIC",
               ck.line_of(nets["bcn"], "interface"), "put at least one network (e.g. the bcn) on an untagged NIC")
    # interfaces unique (per node: every node uses the same interface for a network)
    seen: dict[str, str] = {}
    for name, net in networks.items():
        if net.interface in seen:
            ck.add(f"networks.{name}.interface", f"{net.interface} is already used by networks.{seen[net.interface]}",
                   ck.line_of(nets[name], "interface"), "each network needs its own interface")
        seen[net.interface] = name
    return networks


def _ip(ck: _Checker, value: Any, path: str, line: int | None) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(str(value))
    except ValueError:
        ck.add(path, f"{value!r} is not an IPv4 address", line)
        return None


def _load_totem(ck: _Checker, raw, top) -> Totem:
    return fill(Totem, _sub(ck, raw, top, "totem", "totem"))


def _load_fence_devices(ck: _Checker, raw, top, read_secret) -> dict[str, FenceDevice]:
    """The devices that loaded, by their path (fence_devices[i])."""
    devices: dict[str, FenceDevice] = {}
    seq = top.get("fence_devices", [])
    names: set[str] = set()
    for i, item in enumerate(seq):
        path = f"fence_devices[{i}]"
        line = ck.item_line(seq, i)
        m = ck.mapping(item, path, "fence_device", line)
        if m is None:
            continue
        name = m.get("name", "")
        if "name" in m:
            ck.seen.device_names.append((path, name))
        if name:
            if name in names:
                ck.add(f"{path}.name", f"fence device {name!r} is defined twice", ck.line_of(item, "name"))
            names.add(name)
        agent = m.get("agent", "")
        pw_file, secret = (Path(""), None)
        if "password_file" in m:
            pw_file, secret = read_secret(m["password_file"], f"{path}.password_file",
                                          ck.line_of(item, "password_file"), "password")
            if secret is not None and not secret.reveal():
                ck.add(f"{path}.password_file", f"password file {m['password_file']} is empty",
                       ck.line_of(item, "password_file"))
        address = _fence_address(ck, item, m, path)
        options = _fence_options(ck, item, m, path, agent)
        if name and agent and secret is not None and "ipaddr" in m and "login" in m:
            devices[path] = FenceDevice(name, agent, m["ipaddr"].strip(), m["login"], pw_file, secret, address,
                                        options)
    _check_fence_na_credentials(ck, devices)
    return devices


def _fence_address(ck: _Checker, item: Any, m: dict[str, Any], path: str) -> str | None:
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
            ck.add(f"{path}.address", f"ipaddr {ipaddr} is already an address", ck.line_of(item, "address"),
                   "drop address, or set ipaddr to the device's host name")
            return ipaddr
        addr = _ip(ck, m["address"].strip(), f"{path}.address", ck.line_of(item, "address"))
        return None if addr is None else str(addr)
    if is_ip:
        return ipaddr
    if valid_dns_name(ipaddr) or HOST_LABEL_RE.match(ipaddr):
        ck.add(f"{path}.ipaddr", f"host name {ipaddr!r} does not resolve on the node", ck.line_of(item, "ipaddr"),
               f"add `address: <its IPv4 address>` to this device (written to /etc/hosts as {ipaddr}), "
               "or give the address as ipaddr")
    return None


def _check_fence_na_credentials(ck: _Checker, devices: dict[str, FenceDevice]) -> None:
    """fence_na.conf has one system::username/system::password, which fence_na compares with every
    device's login/passwd (fence-agents v3.1.0 fence/agents/node_assassin/fence_na.pl)."""
    na = [(path, d) for path, d in devices.items() if d.agent == "fence_na"]
    first = na[0][1] if na else None
    for path, d in na[1:]:
        if (d.login, d.password.reveal()) != (first.login, first.password.reveal()):
            ck.add(f"{path}.login", f"fence_na device {d.name!r} has another login or password than "
                   f"{first.name!r}", ck.line(f"{path}.login"),
                   "fence_na.conf holds one login and password for all Node Assassins: use the same on each")


# <fencedevice> attributes every device gets from its own keys; options may not set them again.
FENCE_FIXED_ATTRS = {"name": "name", "agent": "agent", "ipaddr": "ipaddr", "login": "login",
                     "passwd": "password_file"}


def _fence_options(ck: _Checker, item, m: dict, path: str, agent: str) -> dict[str, str]:
    """fence_devices[].options: extra <fencedevice> attributes, each one the agent's group in every
    cman schema a node may run accepts (isobuild/cmanschema.py), so ccs_config_validate passes."""
    from .cmanschema import fence_device_problem, fence_options_allowed

    raw_opts = m.get("options") or {}
    opath, oline = f"{path}.options", ck.line_of(item, "options")
    fixed = {"ipaddr", "login", "passwd"}
    out: dict[str, str] = {}
    for key, value in raw_opts.items():
        kpath, kline = _key_path(opath, key), ck.key_line(raw_opts, key)
        if not _plain_key(key) or not re.match(r"^[a-z_][a-z0-9_]*$", str(key)):
            ck.add(kpath, _unknown("fence agent option", key), kline, "option names are agent attributes such as lanplus")
        elif key in FENCE_FIXED_ATTRS:
            ck.add(kpath, f"{key} is set by {path}.{FENCE_FIXED_ATTRS[key]}", kline, "remove it from options")
        elif value is False:
            ck.add(kpath, "false is not a value: fence_ipmilan 3.0.12 turns a flag on whenever it is present "
                   "(lanplus=\"0\" means lanplus); the Python agents take only 1 or yes", kline,
                   "remove the option to leave it off")
        elif isinstance(value, bool) or (isinstance(value, (str, int)) and str(value).strip()):
            out[key] = "1" if value is True else str(value).strip()
        else:
            ck.add(kpath, f"must be a string, number or true, got {_typename(value)}", kline)
    if out and agent and FENCE_AGENT_RE.match(agent):
        refused = fence_device_problem(agent, fixed, set(out))
        if refused:
            schema, _ = refused
            allowed = fence_options_allowed(agent, fixed)
            for key in sorted(set(out) - set(allowed)):
                ck.add(_key_path(opath, key), f"{agent} takes no option {key!r} in the {schema} schema, so "
                       "ccs_config_validate on the node would refuse cluster.conf", ck.key_line(raw_opts, key),
                       f"{agent} options every supported cman accepts: {', '.join(allowed) or 'none'}")
            if set(out) <= set(allowed):  # each is known, the combination is not
                ck.add(opath, f"the {schema} schema refuses this combination of {agent} options", oline,
                       "use fewer options")
    return out


def _load_nodes(ck: _Checker, raw, top, cluster, networks) -> dict[str, Node]:
    """The nodes that loaded, by their path (nodes[i])."""
    nodes: dict[str, Node] = {}
    seq = top.get("nodes", [])
    ck.seen.node_count = len(seq)
    if "nodes" in top and len(seq) != 2:
        ck.add("nodes", f"a two_node cluster needs exactly two nodes, got {len(seq)}", ck.line_of(raw, "nodes"))
    names: dict[str, int] = {}
    ids: dict[int, int] = {}
    for i, item in enumerate(seq):
        path = f"nodes[{i}]"
        m = ck.mapping(item, path, "node", ck.item_line(seq, i))
        if m is None:
            continue
        name = m.get("name", "")
        ck.seen.node_names.append(m.get("name"))
        if name:
            if "name" not in m.bad and name.lower() in names:
                ck.add(f"{path}.name", f"{name!r} is already used by nodes[{names[name.lower()]}]",
                       ck.line_of(item, "name"))
            names.setdefault(name.lower(), i)
        nodeid = m.get("nodeid")
        if nodeid is not None:
            if "nodeid" not in m.bad and nodeid in ids:
                ck.add(f"{path}.nodeid", f"{nodeid} is already used by nodes[{ids[nodeid]}]", ck.line_of(item, "nodeid"))
            ids.setdefault(nodeid, i)
        ips = _node_ips(ck, item, m, path, networks)
        macs = _node_macs(ck, m, path, networks)
        methods = _node_fence(ck, item, m, path)
        if name and nodeid is not None and len(ips) == 3 and cluster.get("domain"):
            nodes[path] = Node(name, nodeid, f"{name}.{cluster['domain']}".lower(), ips, macs, tuple(methods))
    return nodes


def _node_ips(ck: _Checker, item, m: Values, path: str,
              networks: dict[str, Network]) -> dict[str, ipaddress.IPv4Address]:
    """nodes[].ip: one address per network, inside its subnet, not its network or broadcast address."""
    ips: dict[str, ipaddress.IPv4Address] = {}
    if "ip" not in m:
        return ips
    ipmap = m["ip"]
    for net in ipmap:
        npath = _key_path(f"{path}.ip", net)
        nline = ck.key_line(ipmap, net)
        ck.seen.node_addresses.append((str(ipmap[net]).strip(), npath, nline))
        if net not in NETWORK_NAMES:
            ck.add(npath, _unknown("network", net), nline, _suggest(str(net), NETWORK_NAMES))
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
            ck.add(f"{path}.ip.{net}", "address on this network is missing", ck.line_of(item, "ip"))
    return ips


def _node_macs(ck: _Checker, m: Values, path: str, networks: dict[str, Network]) -> dict[str, str]:
    """nodes[].mac: {interface of a network: unicast MAC}, written as HWADDR."""
    macs: dict[str, str] = {}
    for iface, mac in (m.get("mac") or {}).items():
        mpath = _key_path(f"{path}.mac", iface)
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


def _node_fence(ck: _Checker, item, m: Values, path: str) -> tuple[FenceMethod, ...]:
    """nodes[].fence: the methods in order; every one that names a device is recorded for the cross rules."""
    methods: list[FenceMethod] = []
    fseq = m.get("fence", [])
    if "fence" in m and not fseq:
        ck.add(f"{path}.fence", "every node needs at least one fence method", ck.line_of(item, "fence"),
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
            ck.add(f"{fpath}.method", f"method {fm['method']!r} is listed twice", ck.line_of(f, "method"))
        mnames.add(fm["method"])
        port = fm.get("port")
        methods.append(FenceMethod(fm["method"], fm["device"], None if port is None else str(port)))
    return tuple(methods)


def _load_install(ck: _Checker, raw, top, read_secret) -> Install:
    m = _sub(ck, raw, top, "install", "install")
    node = raw.get("install") if isinstance(raw, dict) else None
    disks = _install_disks(ck, m, node)
    parts = _install_partitions(ck, m, node)
    hash_file, root_hash = _root_password_hash(ck, m, node, read_secret)
    keys_file, keys = _authorized_keys(ck, m, node, read_secret)
    packages = []
    for i, p in enumerate(m.get("packages", []) or []):
        if not isinstance(p, str) or not PKG_RE.match(p):
            ck.add(f"install.packages[{i}]", f"{p!r} is not a package or @group name", ck.item_line(m["packages"], i))
        else:
            packages.append(p)
    return fill(Install, m, disks=tuple(disks), partitions=tuple(parts), root_password_hash_file=hash_file,
                root_password_hash=root_hash, ssh_authorized_keys_file=keys_file, ssh_authorized_keys=keys,
                packages=tuple(packages))


def _install_disks(ck: _Checker, m: Values, node) -> list[str]:
    disks = [str(d) for d in m.get("disks", [])]
    if "disks" in m:
        if len(disks) not in (1, 2):
            ck.add("install.disks", f"one or two disks are supported, got {len(disks)}", ck.line_of(node, "disks"),
                   "two disks give software RAID1")
        for i, d in enumerate(disks):
            if not DISK_RE.match(d):
                ck.add(f"install.disks[{i}]", f"{d!r} is not a disk name", ck.item_line(m["disks"], i),
                       "a kernel disk name without /dev/, e.g. sda")
        if len(set(disks)) != len(disks):
            ck.add("install.disks", "a disk is listed twice", ck.line_of(node, "disks"))
    return disks


def _install_partitions(ck: _Checker, m: Values, node) -> list[Partition]:
    """install.partitions: mount points unique, one at /, sizes that parse."""
    parts: list[Partition] = []
    mounts: dict[str, int] = {}
    pseq = m.get("partitions", [])
    if "partitions" in m and not pseq:
        ck.add("install.partitions", "at least one partition (/) is needed", ck.line_of(node, "partitions"))
    for i, item in enumerate(pseq):
        path = f"install.partitions[{i}]"
        pm = ck.mapping(item, path, "partition", ck.item_line(pseq, i))
        if pm is None or "mount" not in pm or "size" not in pm:
            continue
        mount, size = pm["mount"], str(pm["size"])
        if mount != "swap" and not re.match(r"^/[A-Za-z0-9._/-]*$", mount):
            ck.add(f"{path}.mount", f"{mount!r} is not an absolute mount point or 'swap'", ck.line_of(item, "mount"))
        if mount in mounts:
            ck.add(f"{path}.mount", f"{mount} is already used by install.partitions[{mounts[mount]}]",
                   ck.line_of(item, "mount"))
        mounts.setdefault(mount, i)
        mib = parse_size_mib(size)
        if mib is None:
            ck.add(f"{path}.size", f"{size!r} is not a size", ck.line_of(item, "size"), "a number with K, M, G or T, e.g. 256M or 4G")
            continue
        parts.append(Partition(mount, size, mib))
    if pseq and "/" not in mounts:
        ck.add("install.partitions", "no partition is mounted at /", ck.line_of(node, "partitions"))
    return parts


def _root_password_hash(ck: _Checker, m: Values, node, read_secret) -> tuple[Path, Secret | None]:
    """The root hash file must hold a crypt(3) hash, never a plain password."""
    hash_file, root_hash = Path(""), None
    if "root_password_hash_file" in m:
        hash_file, root_hash = read_secret(m["root_password_hash_file"], "install.root_password_hash_file",
                                           ck.line_of(node, "root_password_hash_file"), "root password hash")
        if root_hash is not None and not CRYPT_RE.match(root_hash.reveal().strip()):
            ck.add("install.root_password_hash_file",
                   f"{m['root_password_hash_file']} does not hold a crypt(3) hash ($1$, $5$ or $6$)",
                   ck.line_of(node, "root_password_hash_file"),
                   "never store a plain password: create one with `openssl passwd -6` or "
                   "`python3 -c 'import crypt; print(crypt.crypt(input()))'`")
            root_hash = None
        elif root_hash is not None:
            root_hash = Secret(root_hash.reveal().strip(), root_hash.source)
    return hash_file, root_hash


def _authorized_keys(ck: _Checker, m: Values, node, read_secret) -> tuple[Path | None, Secret | None]:
    keys_file, keys = None, None
    if "ssh_authorized_keys_file" in m:
        keys_file, keys = read_secret(m["ssh_authorized_keys_file"], "install.ssh_authorized_keys_file",
                                      ck.line_of(node, "ssh_authorized_keys_file"), "authorized keys")
        if keys is not None:
            for n, ln in enumerate(keys.reveal().splitlines(), 1):
                ln = ln.strip()
                if ln and not ln.startswith("#") and not re.search(r"(^|\s)(ssh-(rsa|dss|ed25519)|ecdsa-sha2-\S+) \S+", ln):
                    ck.add("install.ssh_authorized_keys_file",
                           f"{m['ssh_authorized_keys_file']} line {n} is not an OpenSSH public key",
                           ck.line_of(node, "ssh_authorized_keys_file"), "one 'ssh-rsa AAAA... comment' per line")
                    keys = None
                    break
    return keys_file, keys


def _load_storage(ck: _Checker, raw, top) -> Storage | None:
    m = _sub(ck, raw, top, "storage", "storage")
    node = raw.get("storage") if isinstance(raw, dict) else None
    if not m:
        return None
    size = m.get("size")
    size_mib = parse_size_mib(size) if size is not None else None

    def part(key: str) -> tuple[Any, Values | None]:
        sub = node.get(key) if key in m else None
        return sub, (ck.mapping(sub, f"storage.{key}", key, ck.line_of(node, key)) if sub is not None else None)

    drbd = _load_drbd(ck, *part("drbd"))
    clvm = _load_clvm(part("clvm")[1])
    gfs2 = _load_gfs2(ck, *part("gfs2"))
    bd = m.get("backing_device", "")
    if drbd and clvm and gfs2 and bd:
        return fill(Storage, m, drbd=drbd, clvm=clvm, gfs2=gfs2, size_mib=size_mib)
    return None


def _load_drbd(ck: _Checker, dn, d: Values | None) -> Drbd | None:
    """storage.drbd: dual-primary needs protocol C, 'both' needs two primaries; bounded timeouts."""
    if d is None:
        return None
    proto = given_or_default(d, Drbd, "protocol")
    two = given_or_default(d, Drbd, "allow_two_primaries")
    if given_or_default(d, Drbd, "become_primary_on") == "both" and not two:
        ck.add("storage.drbd.become_primary_on", "'both' needs allow_two_primaries: true",
               ck.line_of(dn, "become_primary_on"))
    if two and proto != "C":
        ck.add("storage.drbd.protocol", "allow_two_primaries needs protocol C", ck.line_of(dn, "protocol"))
    wfc, degr = _drbd_timeouts(ck, dn, d)
    if all(k in d for k in ("resource", "device", "port", "sync_rate")):
        return fill(Drbd, d, wfc_timeout=wfc, degr_wfc_timeout=degr)
    return None


def _load_clvm(c: Values | None) -> Clvm | None:
    return fill(Clvm, c) if c is not None and c.get("vg") else None


def _load_gfs2(ck: _Checker, gn, g: Values | None) -> Gfs2 | None:
    if g is None:
        return None
    ck.seen.gfs2_mount = str(gn.get("mount", "")).rstrip("/")  # the hvm ISOs must be under it
    lv = g.get("lv", "")
    if lv:
        _check_lvm_name(ck, lv, "storage.gfs2.lv", ck.line_of(gn, "lv"))
        if len(lv) > 30:
            ck.add("storage.gfs2.lv", f"{lv!r} is longer than the lock table allows (<cluster>:<lv>, 16:30 characters)",
                   ck.line_of(gn, "lv"), "shorten the LV name to 30 characters or fewer")
    gmib = parse_size_mib(g["size"]) if g.get("size") else None
    if lv and gmib and g.get("mount") and g.get("journals") is not None:
        return fill(Gfs2, g, size_mib=gmib)
    return None


# drbd_limits.h (DRBD 8.3.7): DRBD_WFC_TIMEOUT_MAX, DRBD_DEGR_WFC_TIMEOUT_MAX
DRBD_WFC_MAX = 300000


def _drbd_timeouts(ck: _Checker, dn, d: dict) -> tuple[int, int]:
    """wfc-timeout / degr-wfc-timeout: bounded, never 0 (DRBD's default: wait forever, the boot hangs)."""
    out = {}
    for key in ("wfc_timeout", "degr_wfc_timeout"):
        value = given_or_default(d, Drbd, key)
        if not 1 <= value <= DRBD_WFC_MAX:
            ck.add(f"storage.drbd.{key}", f"{value} is not 1-{DRBD_WFC_MAX} seconds", ck.line_of(dn, key),
                   "0 means wait forever: a node whose peer is away would never finish booting")
            value = default(Drbd, key)
        out[key] = value
    if out["degr_wfc_timeout"] > out["wfc_timeout"]:
        ck.add("storage.drbd.degr_wfc_timeout", f"{out['degr_wfc_timeout']} is longer than wfc_timeout "
               f"({out['wfc_timeout']})", ck.line_of(dn, "degr_wfc_timeout"),
               "drbdsetup 8.3.7 silently shortens it to wfc_timeout; make it shorter or equal")
    return out["wfc_timeout"], out["degr_wfc_timeout"]


def _check_lvm_name(ck: _Checker, name: str, path: str, line: int | None) -> None:
    problem = lvm_name_problem(name)
    if problem:
        ck.add(path, problem[0], line, problem[1])


def _load_xen(ck: _Checker, raw, top) -> Xen | None:
    m = _sub(ck, raw, top, "xen", "xen")
    node = raw.get("xen") if isinstance(raw, dict) else None
    if not m:
        return None
    mem_mib = parse_size_mib(m["dom0_mem"]) if m.get("dom0_mem") else None
    hv, ver = m.get("hypervisor_rpm", ""), m.get("version", "")
    if hv and ver and not re.match(rf"^xen-{re.escape(ver)}-[A-Za-z0-9_.]+$", hv):
        ck.add("xen.hypervisor_rpm", f"{hv!r} is not the xen package of xen.version {ver}",
               ck.line_of(node, "hypervisor_rpm"),
               f"name-version-release of the xen package the kickstart installs, e.g. xen-{ver}-1.an1.fc13")
    bridges = _xen_bridges(ck, m)
    rn = node.get("relocation") if "relocation" in m else None
    relocation = _load_relocation(ck, rn)
    if mem_mib and m.get("dom0_kernel") and all(k in m for k in ("version", "hypervisor_rpm")):
        return fill(Xen, m, dom0_mem_mib=mem_mib, bridges=bridges, relocation=relocation)
    return None


def _xen_bridges(ck: _Checker, m: Values) -> tuple[str, ...]:
    bridges: list[str] = []
    bseq = given_or_default(m, Xen, "bridges")
    for i, b in enumerate(bseq or []):
        if b not in NETWORK_NAMES:
            ck.add(f"xen.bridges[{i}]", f"{b!r} is not a defined network", ck.item_line(m["bridges"], i),
                   _suggest(str(b), NETWORK_NAMES, "networks are"))
        elif b in bridges:
            ck.add(f"xen.bridges[{i}]", f"{b!r} is listed twice", ck.item_line(m["bridges"], i))
        else:
            bridges.append(b)
            if b == "sn":
                ck.warn(f"xen.bridges[{i}]", "the storage network is bridged: a xend restart takes its NIC down, "
                        "which drops DRBD (and, with redundant rings, totem ring 1 with it)", ck.item_line(bseq, i),
                        "the seed keeps the sn out of Xen: use bridges: [bcn, ifn] unless a VM needs the sn")
    return tuple(bridges)


def _load_relocation(ck: _Checker, rn) -> Relocation:
    """xen.relocation (absent: the defaults); hosts_allow is `peers` or a non-empty list."""
    r = (ck.mapping(rn, "xen.relocation", "relocation", ck.line("xen.relocation")) if rn is not None else None) \
        or Values()
    port = given_or_default(r, Relocation, "port")
    if "port" not in r.bad and given_or_default(r, Relocation, "enabled") and port in CLUSTER_PORTS:
        ck.add("xen.relocation.port", f"{port} is already used by {CLUSTER_PORTS[port]}", ck.line_of(rn, "port"))
    allow: tuple[str, ...] | str = default(Relocation, "hosts_allow")
    if "hosts_allow" in r:
        ha = r["hosts_allow"]
        if isinstance(ha, str):
            if ha != "peers":
                ck.add("xen.relocation.hosts_allow", f"{ha!r} is neither 'peers' nor a list",
                       ck.line_of(rn, "hosts_allow"), "use peers, or a list of host names/addresses (regexes)")
        else:
            items = [str(x) for x in ha if str(x).strip()]
            if not items:
                ck.add("xen.relocation.hosts_allow", "an empty list lets every host migrate VMs in",
                       ck.line_of(rn, "hosts_allow"), "use peers (only the other node) or list the hosts")
            allow = tuple(items)
    elif rn is not None and "hosts_allow" in rn:
        ck.add("xen.relocation.hosts_allow", "empty: that would let every host migrate VMs in",
               ck.line_of(rn, "hosts_allow"), "use peers (only the other node) or list the hosts")
    return fill(Relocation, r, hosts_allow=allow)


def _load_vms(ck: _Checker, raw, top, cluster, base_dir: Path, digests: list[str]) -> dict[str, Vm]:
    """The VMs that loaded, by their path (vms[i])."""
    vms: dict[str, Vm] = {}
    seq = top.get("vms", []) or []
    names: dict[str, int] = {}
    for i, item in enumerate(seq):
        path = f"vms[{i}]"
        m = ck.mapping(item, path, "vm", ck.item_line(seq, i))
        if m is None:
            continue
        name = m.get("name", "")
        if name:
            if name in names:
                ck.add(f"{path}.name", f"{name!r} is already used by vms[{names[name]}]", ck.line_of(item, "name"))
            names.setdefault(name, i)
        sizes = {key: parse_size_mib(m[key]) for key in ("memory", "disk") if key in m}
        cfile, config = _vm_config(ck, item, m, path, base_dir, digests)
        extra = _vm_extras(ck, item, m, path)
        if all(k in m for k in ("name", "memory", "vcpus", "disk", "bridge", "prefer")) and all(sizes.values()) \
                and extra is not None:
            vm = fill(Vm, m, memory_mib=sizes["memory"], disk_mib=sizes["disk"], config_file=cfile, config=config,
                      **extra)
            if vm.disk_mib < vm.min_disk_mib:
                ck.add(f"{path}.disk", f"{vm.disk} is too small for the guest: its kickstart lays out /boot "
                       f"{GUEST_BOOT_MIB} MiB, swap {vm.guest_swap_mib} MiB and / at least {GUEST_ROOT_MIN_MIB} MiB "
                       f"({vm.min_disk_mib} MiB)", ck.line_of(item, "disk"), f"make it at least {vm.min_disk_mib}M")
            vms[path] = vm
    _assign_macs(ck, vms, cluster["name"])
    return vms


def _vm_config(ck: _Checker, item, m: dict, path: str, base_dir: Path,
               digests: list[str]) -> tuple[Path | None, str | None]:
    """vms[].config_file: the xm config rgmanager's vm.sh starts (`xm create --path=<mount>/domU_config
    <name>`). Without one the VM is defined but not started (autostart="0")."""
    if "config_file" not in m:
        return None, None
    rel, kpath, line = m["config_file"], f"{path}.config_file", ck.line_of(item, "config_file")
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


def domu_config_problem(text: str, vm_name: str) -> str | None:
    """Why an xm domU config would not start VM_NAME, or None. xm (Xen 4.0.1) executes the file as
    Python and takes the domain name from `name`; vm.sh then looks the domain up by the VM's name."""
    import ast

    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        return f"line {err.lineno}: not a Python assignment file ({err.msg})"
    names = [n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
             and any(isinstance(t, ast.Name) and t.id == "name" for t in n.targets)]
    if not names:
        return "sets no name = \"...\""
    if names[-1] != vm_name:
        return f"name = {names[-1]!r}, but the VM is {vm_name!r} (rgmanager looks the domain up by the VM's name)"
    return None


def _vm_extras(ck: _Checker, item, m: dict, path: str) -> dict | None:
    """mac, cpuset, os_variant and install of one VM (None when one of them is bad)."""
    ok = not {"mac", "cpuset"} & m.bad
    mac = str(m.get("mac", "")).lower()
    cpuset = str(m["cpuset"]) if "cpuset" in m else None
    variant = m.get("os_variant")
    known = [v for vs in VIRTINST_OS_VARIANTS.values() for v in vs]
    if variant is not None and variant not in known:
        ck.add(f"{path}.os_variant", f"{variant!r} is not an --os-variant of Fedora 13's virt-install "
               "(python-virtinst 0.500.3)", ck.line_of(item, "os_variant"),
               _suggest(variant, known, "variants are"))
        ok = False
    install = _vm_install(ck, item, path)
    if install is False:
        return None
    return {"mac": mac, "mac_derived": "mac" not in m, "cpuset": cpuset, "os_variant": variant,
            "install": install} if ok else None


def _vm_install(ck: _Checker, item, path: str) -> VmInstall | None | bool:
    """vms[].install; None when absent (the VM is provisioned by hand), False when bad."""
    if "install" not in item:
        return None
    node = item["install"]
    m = ck.mapping(node, f"{path}.install", "vm_install", ck.line_of(item, "install"))
    if m is None or "method" not in m:
        return False
    ipath = f"{path}.install"
    method = m["method"]
    allowed = {"pv": ("location", "kickstart", "kickstart_url"), "hvm": ("iso",)}
    if method not in allowed:
        ck.add(f"{ipath}.method", f"{method!r} is not pv or hvm", ck.line_of(node, "method"),
               "pv: virt-install --paravirt from an install tree URL; hvm: an xm config booting an ISO")
        return False
    bad = False
    for key in sorted(set(m) - {"method"} - set(allowed[method])):
        ck.add(f"{ipath}.{key}", f"does not apply to method {method}", ck.line_of(node, key))
        bad = True
    need = "location" if method == "pv" else "iso"
    if need not in m:
        ck.add(f"{ipath}.{need}", f"method {method} needs {need}", ck.line_of(item, "install"))
        return False
    for key in ("location", "kickstart_url"):
        if key in m and not INSTALL_URL_RE.match(m[key]):
            ck.add(f"{ipath}.{key}", f"{m[key]!r} is not an http://, ftp:// or nfs: URL (virt-install 0.500.3 takes no other)", ck.line_of(node, key),
                   "virt-install --location takes http://host/path, ftp://host/path or nfs:host:/path")
            bad = True
    if "kickstart_url" in m and not m.get("kickstart"):
        ck.add(f"{ipath}.kickstart_url", "set without kickstart: true", ck.line_of(node, "kickstart_url"),
               "set kickstart: true so the pipeline renders the kickstart to publish there")
        bad = True
    if method == "hvm":
        mount = ck.seen.gfs2_mount
        iso = m["iso"]
        if not mount or not iso.startswith(mount + "/") or ".." in iso.split("/") or any(c in iso for c in "',\" \n"):
            ck.add(f"{ipath}.iso", f"{iso!r} is not a file on the shared GFS2 mount {mount or '(unset)'}",
                   ck.line_of(node, "iso"), f"put the ISO on the shared filesystem, e.g. {mount}/iso/<name>.iso, "
                   "so both nodes can boot the VM")
            bad = True
    if bad:
        return False
    return fill(VmInstall, m)


def derived_mac(cluster_name: str, vm_name: str, attempt: int = 0) -> str:
    """A stable MAC in Xen's range from the cluster and VM name (attempt > 0 after a collision)."""
    seed = f"{cluster_name}/{vm_name}" + (f"/{attempt}" if attempt else "")
    b = hashlib.sha256(seed.encode()).digest()
    return f"{XEN_OUI}:{b[0] & 0x7f:02x}:{b[1]:02x}:{b[2]:02x}"


def _assign_macs(ck: _Checker, vms: dict[str, Vm], cname: str) -> None:
    """Explicit MACs must be unique; derived ones skip every MAC already taken (so never collide)."""
    taken: dict[str, str] = {}
    for mac, path in ck.seen.node_macs:  # the nodes' own NICs (nodes[].mac)
        taken.setdefault(mac, path)
    for path, vm in vms.items():
        if vm.mac_derived:
            continue
        if vm.mac in taken:
            ck.add(f"{path}.mac", f"{vm.mac} is already used by {taken[vm.mac]}", ck.line(f"{path}.mac"),
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


def _cross_checks(ck: _Checker, cluster, networks, nodes, devices, storage, xen, vms, install) -> None:
    """Rules that relate several parts of the definition, over what loaded (nodes, devices and vms by
    path) and what ck.seen recorded of the parts that did not."""
    _unique_addresses(ck, networks, devices)
    _unique_node_macs(ck, nodes)
    _fence_references(ck, devices)
    _unique_fence_ports(ck, nodes)
    if storage is not None:
        _storage_fits_nodes(ck, cluster, nodes, storage, xen)
        _backing_device_matches_install(ck, storage, install)
        _storage_holds_vms(ck, storage, vms)
    _vms_fit_cluster(ck, nodes, storage, xen, vms)


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


def _unique_addresses(ck: _Checker, networks: dict[str, Network], devices: dict[str, FenceDevice]) -> None:
    """No address used twice anywhere (nodes, gateway, fence devices; dns excepted)."""
    owners: dict[str, str] = {}

    def claim(addr: str, path: str, line: int | None) -> None:
        if addr in owners:
            ck.add(path, f"{addr} is already used by {owners[addr]}", line, "every address must be unique")
        else:
            owners[addr] = path

    for addr, path, line in ck.seen.node_addresses:
        claim(addr, path, line)
    for name, net in networks.items():
        if net.gateway is not None:
            claim(str(net.gateway), f"networks.{name}.gateway", ck.line(f"networks.{name}.gateway"))
    if "ifn" in networks and networks["ifn"].gateway is None:
        ck.add("networks.ifn.gateway", "the ifn needs a default gateway", ck.line("networks.ifn"))
    for path, dev in devices.items():
        if _is_ipv4(dev.ipaddr):
            claim(dev.ipaddr, f"{path}.ipaddr", ck.line(f"{path}.ipaddr"))
        elif not valid_dns_name(dev.ipaddr) and not HOST_LABEL_RE.match(dev.ipaddr):
            ck.add(f"{path}.ipaddr", f"{dev.ipaddr!r} is neither an IPv4 address nor a host name",
                   ck.line(f"{path}.ipaddr"))
        elif dev.address is not None:
            claim(dev.address, f"{path}.address", ck.line(f"{path}.address"))


def _unique_node_macs(ck: _Checker, nodes: dict[str, Node]) -> None:
    owners: dict[str, str] = {}
    for path, n in nodes.items():
        for iface, mac in n.mac.items():
            if mac in owners:
                mpath = f"{path}.mac.{iface}"
                ck.add(mpath, f"{mac} is already used by {owners[mac]}", ck.line(mpath))
            else:
                owners[mac] = f"{n.name}.mac.{iface}"


def _fence_references(ck: _Checker, devices: dict[str, FenceDevice]) -> None:
    """Methods name defined devices, agent-specific port rules, every device used."""
    by_name = {d.name: d for d in devices.values()}
    defined = {name for _, name in ck.seen.device_names}
    used: set[str] = set()
    for ref in ck.seen.fence_refs:
        used.add(ref.device)
        if ref.device not in defined:
            ck.add(f"{ref.path}.device", f"{ref.device!r} is not defined in fence_devices", ck.line(f"{ref.path}.device"),
                   _suggest(str(ref.device), [n for n in defined if n], "devices are"))
            continue
        dev = by_name.get(ref.device)
        if dev is None:
            continue
        if dev.agent == "fence_na" and (not ref.port_given or ref.port == ""):
            ck.add(f"{ref.path}.port", f"fence_na device {ref.device!r} needs a port", ck.line(f"{ref.path}.device"),
                   "the Node Assassin port this node's power/reset leads are wired to")
        if dev.agent == "fence_ipmilan" and ref.port_given:
            ck.add(f"{ref.path}.port", f"fence_ipmilan device {ref.device!r} takes no port", ck.line(f"{ref.path}.port"),
                   "an IPMI BMC controls only its own node: define one device per node and drop the port")
    for path, name in ck.seen.device_names:
        if name and name not in used:
            ck.add(path, f"fence device {name!r} is not used by any node", ck.line(path),
                   "reference it from a node's fence list or remove it")


def _unique_fence_ports(ck: _Checker, nodes: dict[str, Node]) -> None:
    """Two nodes on one port of a device (fence_na: port 01 is port 1) would fence each other."""
    owners: dict[tuple[str, str], str] = {}
    for path, n in nodes.items():
        for f in n.fence:
            if f.port is not None:
                key = (f.device, f.port.lstrip("0") or "0")
                if key in owners and owners[key] != n.name:
                    ck.add(f"{path}.fence", f"port {f.port} of {f.device} is already used by {owners[key]}",
                           ck.line(f"{path}.fence"))
                owners[key] = n.name


def _storage_fits_nodes(ck: _Checker, cluster: dict, nodes: dict[str, Node], storage: Storage, xen: Xen | None) -> None:
    """Storage rules that need the nodes, the cluster name or xen."""
    if nodes and storage.gfs2.journals < ck.seen.node_count:
        ck.add("storage.gfs2.journals", f"{storage.gfs2.journals} journals for {ck.seen.node_count} nodes",
               ck.line("storage.gfs2.journals"), "GFS2 needs one journal per node that mounts it")
    if len(cluster.get("name", "")) > 16:
        ck.add("cluster.name", "the GFS2 lock table allows 16 characters for the cluster name", None)
    if storage.drbd.become_primary_on not in ("both", *[n.name for n in nodes.values()]):
        ck.add("storage.drbd.become_primary_on", f"{storage.drbd.become_primary_on!r} is not 'both' or a node name",
               ck.line("storage.drbd.become_primary_on"))
    if xen is not None and xen.relocation.enabled and xen.relocation.port == storage.drbd.port:
        ck.add("xen.relocation.port", f"{xen.relocation.port} is already used by storage.drbd.port",
               ck.line("xen.relocation.port"))


def _backing_device_matches_install(ck: _Checker, storage: Storage, install: Install) -> None:
    """storage.backing_device is what the kickstart's partitioning leaves for DRBD."""
    if install.raid and install.partitions:
        want = f"/dev/md{len(install.partitions)}"
        if storage.backing_device != want:
            ck.add("storage.backing_device", f"{storage.backing_device} is not the RAID1 device the kickstart creates",
                   ck.line("storage.backing_device"),
                   f"with two disks the partitions become md0..md{len(install.partitions) - 1} and the DRBD "
                   f"backing device is {want}")
    elif install.disks and install.partitions and DISK_RE.match(install.disks[0]):  # a bad disk is reported already
        # one disk, msdos label: partitions 1-3 primary, 4 extended, 5.. logical once there are more than 4
        count = len(install.partitions) + 1
        disk = install.disks[0]
        want = f"/dev/{disk}{'p' if disk[-1].isdigit() else ''}{count if count <= 4 else count + 1}"
        if storage.backing_device != want:
            ck.add("storage.backing_device", f"{storage.backing_device} is not the partition the kickstart leaves "
                   "for DRBD", ck.line("storage.backing_device"),
                   f"with one disk and {len(install.partitions)} partitions the DRBD backing partition is {want}")


def _storage_holds_vms(ck: _Checker, storage: Storage, vms: dict[str, Vm]) -> None:
    if storage.size_mib is not None:
        total = storage.gfs2.size_mib + sum(v.disk_mib for v in vms.values())
        if total > storage.size_mib:
            ck.add("storage.size", f"{storage.size} cannot hold the GFS2 LV ({storage.gfs2.size}) plus all VM disks "
                   f"({', '.join(v.disk for v in vms.values()) or 'none'}): {total} MiB needed",
                   ck.line("storage.size"), "grow storage.size or shrink the disks")


def _vms_fit_cluster(ck: _Checker, nodes: dict[str, Node], storage: Storage | None, xen: Xen | None,
                     vms: dict[str, Vm]) -> None:
    """Each VM's bridge is a bridged network, it prefers a node, and its LV does not clash with GFS2's."""
    node_names = [n.name for n in nodes.values()] or ck.seen.node_names
    for path, vm in vms.items():
        if vm.bridge not in NETWORK_NAMES:
            ck.add(f"{path}.bridge", f"{vm.bridge!r} is not a defined network", ck.line(f"{path}.bridge"),
                   _suggest(vm.bridge, NETWORK_NAMES, "networks are"))
        elif xen is not None and vm.bridge not in xen.bridges:
            ck.add(f"{path}.bridge", f"network {vm.bridge!r} has no Xen bridge", ck.line(f"{path}.bridge"),
                   f"add {vm.bridge} to xen.bridges")
        if vm.prefer not in node_names:
            ck.add(f"{path}.prefer", f"{vm.prefer!r} is not a node", ck.line(f"{path}.prefer"),
                   _suggest(vm.prefer, [n for n in node_names if n], "nodes are"))
        if storage is not None and vm.name == storage.gfs2.lv:
            ck.add(f"{path}.name", f"{vm.name!r} clashes with the GFS2 LV name", ck.line(f"{path}.name"))
