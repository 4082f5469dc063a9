"""The cluster model: frozen dataclasses, each definition key a setting on the field it fills.

load_definition() (isobuild/loader.py) reads a definition into this model, checking every rule of the
format (docs/definition.md, generated from the settings here) and collecting every problem, each as
`<file>:<line>: <dotted.path>: <reason>` with a hint where one helps (the mkksiso/mkosi style).
Secrets are read from the *_file paths into `Secret` objects whose str() is "<redacted>", so they
cannot leak through logs or model.json by accident.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .f13virt import VIRTINST_OS_VARIANTS
from .settings import BOOL, INT, LIST, MAP, SCALAR, STR, STR_OR_LIST, Setting, setting, settings_of
from .values import (AT_LEAST_ONE, CLUSTER_PORTS, CONSOLE_RE, FENCE_AGENT_RE, HOST_LABEL_RE, IFACE_RE, KERNEL_VR_RE,
                     NAME_RE, PORT, RATE_RE, SUPPORTED_RELEASE, cpuset, drbd_port, lvm_name, one_of, rule, size,
                     unless_empty, valid_dns_name, valid_timezone, vm_mac, vm_name)
# imported from here by render, runbook and the tests
from .values import RENDEZVOUS_PORT, derived_mac, domu_config_problem  # noqa: F401

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
    interface: str = setting(
        STR, required=True, rule=unless_empty(IFACE_RE, "{0!r} is not a valid interface name"),
        help="the node NIC on this network (`eth0`, `em1`, a VLAN `eth3.100`); unique per node")
    subnet: ipaddress.IPv4Network = setting(
        STR, required=True,
        help="an IPv4 network in CIDR form; every node address lies inside it")
    mtu: int | None = setting(
        INT, default=None, rule=rule(lambda v: 576 <= v <= 9216, "{0} is outside 576-9216"),
        help="optional MTU written to ifcfg (anaconda 13 drops `network --mtu`)")
    gateway: ipaddress.IPv4Address | None = setting(
        STR, default=None,
        help="the default route; only on the ifn, inside its subnet")
    dns: tuple[ipaddress.IPv4Address, ...] = setting(
        LIST, default=(),
        help="name servers (IPv4 addresses), only on the ifn")

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
    method: str = setting(STR, required=True, help="the method's name in cluster.conf")
    device: str = setting(STR, required=True, help="a `fence_devices[].name`")
    port: str | None = setting(
        SCALAR, default=None,
        help="the outlet/port on the device: needed by fence_na and other multi-port devices, refused by "
             "fence_ipmilan")


@dataclass(frozen=True)
class Node:
    name: str = setting(
        STR, required=True,
        rule=unless_empty(HOST_LABEL_RE, "{0!r} is not a valid host name",
                          "letters, digits and '-', no dots (the domain comes from cluster.domain)"),
        help="short host name, a valid DNS label, unique")
    nodeid: int = setting(
        INT, required=True, rule=AT_LEAST_ONE,
        help="cman nodeid >= 1, unique; the lowest nodeid runs the one-node first-boot steps")
    fqdn: str
    ip: dict[str, ipaddress.IPv4Address] = setting(
        MAP, required=True,
        help="`{bcn: ..., sn: ..., ifn: ...}`: one address per network, inside its subnet, none used twice")
    mac: dict[str, str] = setting(
        MAP,
        help="optional `{<nic>: <MAC>}`: pins HWADDR in ifcfg; unicast, unique in the cluster; without it the "
             "HWADDR anaconda saw is kept")
    fence: tuple[FenceMethod, ...] = setting(LIST, required=True, help="at least one method, tried in order")


@dataclass(frozen=True)
class FenceDevice:
    name: str = setting(STR, required=True, help="unique device name, referenced by `nodes[].fence[].device`")
    agent: str = setting(
        STR, required=True,
        rule=unless_empty(FENCE_AGENT_RE, "{0!r} is not a fence agent name",
                          "fence_na, fence_ipmilan or another fence_* agent"),
        help="`fence_na` (Node Assassin, our `fence-na` package), `fence_ipmilan`, or another `fence_*` agent of "
             "F13's fence-agents")
    ipaddr: str = setting(
        STR, required=True,
        help="the device's address as cluster.conf passes it to the agent: an IPv4 address, or a host name that "
             "`address` resolves")
    login: str = setting(STR, required=True, help="the device login (fence_na: the same on every Node Assassin)")
    password_file: Path = setting(
        STR, required=True,
        help="file holding the password (one line, <= 4 KiB, no control characters; never printed; warned about "
             "when group/other-readable)")
    password: Secret = field(repr=False)
    # where ipaddr resolves on the node: ipaddr itself, or the `address` given for a host name
    # (rendered into /etc/hosts); fenced passes ipaddr to the agent as written.
    address: str | None = setting(
        STR, default=None,
        help="IPv4 address of a host-name `ipaddr`, written to the nodes' /etc/hosts (fencing must not depend on "
             "DNS); an error when ipaddr is already an address")
    options: dict[str, str] = setting(  # extra <fencedevice> attributes (lanplus, auth, ...)
        MAP, default_factory=dict,
        help="extra `<fencedevice>` attributes (`lanplus: true`, `auth: md5`, ...), each accepted for the agent by "
             "every cman schema a node may run; `false` is refused")


@dataclass(frozen=True)
class Partition:
    mount: str = setting(STR, required=True, help="mount point (`/boot`, `/`, ...) or `swap`; unique")
    size: str = setting(STR, required=True, help="a size like `256M` or `40G`")
    size_mib: int


@dataclass(frozen=True)
class Install:
    disks: tuple[str, ...] = setting(
        LIST, required=True,
        help="one disk (plain partitions) or two (software RAID1 for every partition)")
    partitions: tuple[Partition, ...] = setting(
        LIST, required=True,
        help="partitions in order; the last, DRBD's backing, takes the rest of the disk")
    root_password_hash_file: Path = setting(
        STR, required=True,
        help="file holding root's crypt(3) hash (SHA-512 `$6$`), never a plain password")
    root_password_hash: Secret = field(repr=False)
    ssh_authorized_keys_file: Path | None = setting(
        STR, default=None,
        help="optional file of root's authorized keys (the admins' keys)")
    ssh_authorized_keys: Secret | None = field(default=None, repr=False)
    selinux: str = setting(
        STR, default="permissive",
        rule=one_of(("enforcing", "permissive", "disabled"), "{0!r} is not enforcing, permissive or disabled"),
        help="`permissive` (the seed), `enforcing` or `disabled`")
    firewall: str = setting(
        STR, default="cluster",
        rule=one_of(("cluster", "off"), "{0!r} is not 'cluster' or 'off'",
                    "cluster opens only the ports this cluster uses; off disables the firewall (the seed's way)"),
        help="`cluster` (open only this cluster's ports) or `off` (the seed)")
    runlevel: int = setting(
        INT, default=3, rule=one_of((3, 5), "{0} is not 3 or 5"),
        help="default runlevel: 3 (text consoles, no X: `skipx`) or 5 (a graphical login: `xconfig --startxonboot`, "
             "the groups `@base-x @gnome-desktop @fonts`)")
    packages: tuple[str, ...] = setting(
        LIST, default=(),
        help="extra packages on top of the cluster set; each must be on the DVD or in our repo")
    console: str | None = setting(
        STR, default=None,
        rule=rule(CONSOLE_RE.match, "{0!r} is not a console setting",
                  "e.g. ttyS0,115200 for IPMI serial-over-LAN, or tty0"),
        help="optional serial console for installer, Xen and dom0 (`ttyS0,115200`)")

    @property
    def raid(self) -> bool:
        return len(self.disks) == 2


@dataclass(frozen=True, kw_only=True)  # keyword-only: optional keys sit between required ones
class Drbd:
    resource: str = setting(
        STR, required=True,
        rule=unless_empty(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", "{0!r} is not a valid DRBD resource name"),
        help="DRBD resource name (`r0`)")
    device: str = setting(
        STR, required=True, rule=unless_empty(r"^/dev/drbd\d+$", "{0!r} is not a DRBD device", "e.g. /dev/drbd0"),
        help="DRBD device (`/dev/drbd0`)")
    port: int = setting(
        INT, required=True, rule=drbd_port,
        help="TCP port on the sn, 1-65535, not a port the cluster already uses")
    protocol: str = setting(
        STR, default="C",
        rule=one_of(("A", "B", "C"), "{0!r} is not A, B or C", "dual-primary with GFS2 needs protocol C"),
        help="`C` (dual-primary needs it), `B` or `A`")
    sync_rate: str = setting(
        STR, required=True,
        rule=unless_empty(RATE_RE, "{0!r} is not a DRBD rate",
                          "a number with K, M or G (bytes per second), e.g. 40M"),
        help="`syncer { rate }`, like `40M`")
    allow_two_primaries: bool = setting(BOOL, default=True, help="dual-primary for GFS2")
    become_primary_on: str = setting(STR, default="both", help="`both` or a node name")
    wfc_timeout: int = setting(
        INT, default=300,
        help="seconds DRBD's start-up waits for the peer, 1-300000 (DRBD's own default 0 waits forever and hangs "
             "the boot)")
    degr_wfc_timeout: int = setting(
        INT, default=120,
        help="the same wait after a degraded shutdown (and for an outdated peer); at most wfc_timeout")


@dataclass(frozen=True)
class Clvm:
    vg: str = setting(STR, required=True, rule=lvm_name, help="volume group name, a valid LVM name")
    filter: str = setting(
        STR, default="drbd-only",
        rule=one_of(("drbd-only",), "{0!r} is not supported",
                    "only drbd-only (LVM sees DRBD devices only) is safe on top of DRBD"),
        help="`drbd-only`: lvm.conf `filter = [ \"a|/dev/drbd*|\", \"r/.*/\" ]`")


@dataclass(frozen=True)
class Gfs2:
    lv: str = setting(
        STR, required=True,
        help="logical volume name, at most 16 characters: it is the file system name in the lock table "
             "`<cluster.name>:<lv>`, which Fedora 13's mkfs.gfs2 limits to 16")
    size: str = setting(STR, required=True, rule=size("e.g. 20G"), help="LV size like `20G`")
    size_mib: int
    mount: str = setting(
        STR, required=True, rule=unless_empty(r"^/[A-Za-z0-9._/-]+$", "{0!r} is not an absolute path"),
        help="mount point on both nodes (`/xen_shared`; VM configs live in `domU_config/` there)")
    journals: int = setting(INT, required=True, rule=AT_LEAST_ONE, help="journals, at least the number of nodes")


@dataclass(frozen=True)
class Storage:
    backing_device: str = setting(
        STR, required=True, rule=unless_empty(r"^/dev/[A-Za-z0-9/_.-]+$", "{0!r} is not a /dev path"),
        help="DRBD's backing device: `/dev/md<N>` over the last partitions (two disks) or the partition the "
             "kickstart leaves for DRBD (one disk)")
    drbd: Drbd = setting(MAP, required=True, help="the DRBD 8.3.7 resource")
    clvm: Clvm = setting(MAP, required=True, help="the clustered volume group on the DRBD device")
    gfs2: Gfs2 = setting(MAP, required=True, help="the GFS2 file system on its LV")
    managed_by: str = setting(
        STR, default="rgmanager", rule=one_of(("init", "rgmanager"), "{0!r} is not 'init' or 'rgmanager'"),
        help="`rgmanager` (storage as per-node rgmanager services, the seed's last word) or `init` (SysV start "
             "order)")
    size: str | None = setting(
        STR, default=None, rule=size("e.g. 400G"),
        help="optional size of the DRBD device; when given the GFS2 LV and every VM disk must fit")
    size_mib: int | None = None


@dataclass(frozen=True)
class Relocation:
    enabled: bool = setting(BOOL, default=False, help="xend relocation server on")
    port: int = setting(INT, default=8002, rule=PORT, help="relocation port")
    hosts_allow: tuple[str, ...] | str = setting(  # "peers" or explicit list
        STR_OR_LIST, default="peers",
        help="`peers` (only the other node's bcn address) or a list of regexes; never empty (empty allows everyone)")


@dataclass(frozen=True, kw_only=True)
class Xen:
    version: str = setting(STR, required=True, help="`4.0.1`")
    hypervisor_rpm: str = setting(
        STR, required=True,
        help="the xen NVR the kickstart installs; must name xen.version (`xen-4.0.1-1.an1.fc13`, what rpmspecs/xen "
             "builds)")
    dom0_kernel: str = setting(
        STR, required=True,
        rule=unless_empty(KERNEL_VR_RE, "{0!r} is not a kernel version-release", "e.g. 2.6.32.23-170.dom0_an1.fc13"),
        help="the dom0 kernel's version-release (`2.6.32.23-170.dom0_an1.fc13`, rpmspecs/kernel)")
    dom0_mem: str = setting(
        STR, required=True, rule=size("e.g. 1024M"),
        help="dom0 memory like `1024M` (`dom0_mem=` on the Xen line)")
    dom0_mem_mib: int
    bridges: tuple[str, ...] = setting(
        LIST, default=("bcn", "ifn"),
        help="networks that get a Xen bridge (the seed: never the storage network); bridging `sn` is allowed but "
             "warned about (a xend restart would drop DRBD)")
    relocation: Relocation = setting(MAP, help="xend live-migration settings")


@dataclass(frozen=True)
class VmInstall:
    """How the VM is provisioned: pv = virt-install --paravirt from an install tree URL (optionally with
    a guest kickstart the pipeline renders); hvm = an xm config booting an ISO on the shared GFS2."""
    method: str = setting(  # pv | hvm
        STR, required=True,
        help="`pv` (virt-install --paravirt from an install tree) or `hvm` (an xm config booting an ISO on the "
             "shared file system)")
    location: str | None = setting(  # pv: install tree URL (http://, ftp://, nfs:)
        STR, default=None,
        help="pv: the install tree, an http://, ftp:// or nfs: URL (virt-install 0.500.3 takes no https)")
    kickstart: bool = setting(
        BOOL, default=False,
        help="pv: render a guest kickstart (mode 0600: it holds the root hash)")
    kickstart_url: str | None = setting(  # ks= on the installer's command line
        STR, default=None,
        help="pv: where you publish that kickstart for the guest installer to fetch (needs kickstart: true)")
    iso: str | None = setting(STR, default=None, help="hvm: the installer ISO, a path on the GFS2 mount")




# The guest kickstart's partitions (kickstart/files/vm-guest.ks.j2): /boot, swap, / (grows): the LV
# must hold at least their sum plus the partition table.
GUEST_BOOT_MIB = 256
GUEST_ROOT_MIN_MIB = 2048
GUEST_SWAP_MAX_MIB = 2048


@dataclass(frozen=True)
class Vm:
    name: str = setting(STR, required=True, rule=vm_name, help="VM name: a valid libvirt and LVM name, unique")
    memory: str = setting(STR, required=True, rule=size("e.g. 1024M or 50G"), help="guest memory like `1024M`")
    memory_mib: int
    vcpus: int = setting(INT, required=True, rule=AT_LEAST_ONE, help="virtual CPUs, >= 1")
    disk: str = setting(
        STR, required=True, rule=size("e.g. 1024M or 50G"),
        help="size of the VM's LV on the clustered VG, like `50G`")
    disk_mib: int
    bridge: str = setting(
        STR, required=True,
        help="the network whose Xen bridge the VM's NIC joins; must be in xen.bridges")
    prefer: str = setting(STR, required=True, help="the node the VM's failover domain prefers")
    migrate: str = setting(
        STR, default="live", rule=one_of(("live", "pause"), "{0!r} is not 'live' or 'pause'"),
        help="`live` or `pause`: how rgmanager moves the VM")
    config_file: Path | None = setting(  # an xm domU config shipped with the definition
        STR, default=None,
        help="optional xm domain config (Python assignments whose `name` is the VM's) shipped to `<gfs2 "
             "mount>/domU_config/<vm>`; only then does the VM autostart")
    config: str | None = field(default=None, repr=False)
    mac: str = setting(
        STR, default="", rule=vm_mac,
        help="optional unicast MAC of the VM's NIC, unique in the cluster (node NICs included); default: stable, "
             "derived from the cluster and VM name in Xen's 00:16:3e range")
    mac_derived: bool = True
    cpuset: str | None = setting(
        SCALAR, default=None, rule=cpuset,
        help="optional physical CPUs the VM may use (`1`, `1-3`, `0,2`)")
    os_variant: str | None = setting(
        STR, default=None,
        help="optional `--os-variant` of Fedora 13's virt-install (python-virtinst 0.500.3), e.g. `fedora13`")
    install: VmInstall | None = setting(
        MAP, default=None,
        help="optional: how first boot provisions the VM (lowest nodeid, only while it has no config)")

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
    rrp_mode: str = setting(
        STR, default="none", rule=one_of(("none", "active", "passive"), "{0!r} is not one of none, active, passive"),
        help="`none`, `active` or `passive`; not none adds ring 1 on the sn (`altname`) and makes dlm_controld use "
             "SCTP")
    secauth: bool = setting(BOOL, default=False, help="corosync `secauth`")


@dataclass(frozen=True, kw_only=True)
class Cluster:
    name: str = setting(
        STR, required=True, section="cluster",
        rule=rule(NAME_RE.match, "{0!r} is not 1-15 characters of [A-Za-z0-9_-]",
                  "cluster.conf(5) of cman 3.0 allows 15 characters (16 with the terminating null)"),
        help="cman cluster name and GFS2 lock-table prefix: 1-15 characters `[A-Za-z0-9_-]`")
    config_version: int = setting(
        INT, required=True, section="cluster", rule=rule(lambda v: v >= 1, "must be a positive integer, got {0}"),
        help="cluster.conf config_version, a positive integer; bump it to push a change")
    domain: str = setting(
        STR, required=True, section="cluster",
        rule=rule(valid_dns_name, "{0!r} is not a valid DNS domain name", "for example example.com"),
        help="a valid DNS name; node FQDN = `<node name>.<domain>`")
    timezone: str = setting(
        STR, required=True, section="cluster",
        rule=rule(valid_timezone, "{0!r} is not a known time zone",
                  "use an Olson name such as America/Toronto or UTC"),
        help="an Olson time zone name (`America/Toronto`), for the kickstart's `timezone --utc`")
    release: str = setting(
        STR, default=SUPPORTED_RELEASE, section="cluster",
        rule=rule(lambda v: v == SUPPORTED_RELEASE, "{0!r} is not supported",
                  f"the only supported release is {SUPPORTED_RELEASE}"),
        help="the target; only `fedora-13-x86_64`")
    networks: dict[str, Network] = setting(
        MAP, required=True,
        help="the three networks: bcn (back-channel, totem ring 0, fencing, migration), sn (storage: DRBD, ring 1 "
             "with rrp), ifn (internet-facing: VM bridge, default route)")
    totem: Totem = setting(MAP, help="corosync ring settings")
    nodes: tuple[Node, ...] = setting(LIST, required=True, help="the two nodes (a two_node cman cluster)")
    fence_devices: tuple[FenceDevice, ...] = setting(
        LIST, required=True,
        help="every fence device the nodes' methods name; each must be used")
    install: Install = setting(MAP, required=True, help="what the kickstart lays down on each node")
    storage: Storage = setting(MAP, required=True, help="DRBD + clustered LVM + GFS2 on the backing device")
    xen: Xen = setting(MAP, required=True, help="the Xen 4.0.1 dom0")
    vms: tuple[Vm, ...] = setting(LIST, help="rgmanager `<vm>` services; default none")
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

    def secrets(self) -> dict[str, str]:
        """{what: value} of every secret of the definition (fence passwords, the root password hash,
        each line of the authorized keys), stripped, empty ones left out: the one list every
        redaction and leak check uses. Never print the values."""
        out = {f"fence device {d.name} password": d.password.reveal() for d in self.fence_devices}
        out["root password hash"] = self.install.root_password_hash.reveal()
        if self.install.ssh_authorized_keys is not None:
            for n, line in enumerate(self.install.ssh_authorized_keys.reveal().splitlines(), 1):
                out[f"ssh authorized key {n}"] = line
        return {what: v.strip() for what, v in out.items() if v.strip()}


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
