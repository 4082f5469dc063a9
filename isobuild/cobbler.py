"""`invoke cobbler`: register one cluster with a running Cobbler 3 server through its XML-RPC API.

What is registered (docs/pxe.md "Cobbler"):

    distro   <release>             the F13 pxeboot kernel + initrd; one per site, shared by every cluster
    profile  <cluster>             ksdevice=bootif + the console arguments (pxe.cluster_args)
    system   <cluster>.<node>      bcn MAC, bcn address/netmask, FQDN, ks=<url>/ks/<node>.ks (pxe.node_args)

Cobbler owns DHCP/TFTP/pxelinux; the kickstarts, the install tree, the an-cluster repo and the nodes'
private files (cluster.conf, fence passwords) stay on the HTTP server `invoke pxe` wrote them for
(`invoke serve` or nginx.conf), behind its per-node access list. Cobbler is given no autoinstall
template, so it serves nothing of ours over its own HTTP.

Every object we create carries a comment that names MARK, the cluster and the node; an object of our
name without exactly that comment is not ours and is never changed. Idempotent: only fields that differ are modified; a second run changes
nothing. Systems of the cluster's profile that the definition no longer has are reported, never removed.
New systems start with netboot disabled (Cobbler then writes a `localboot` pxelinux file for the MAC),
so nothing installs until the operator enables netboot for a node; that flag is never touched again.
"""
from __future__ import annotations

import json
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import log
from .errors import IsobuildError
from .installtree import PXEBOOT
from .model import Cluster, Node
from .pxe import SERVE_CONFIG, boot_mac, cluster_args, node_args
from .stamps import Stamps

MARK = "an-cluster"
# Cobbler 3.3 writes `ks=` only for these os_versions and `inst.ks=` (unknown to anaconda 13) for all
# others (tftpgen.build_kernel_options); it has no fedora13 signature. RHEL 6 runs anaconda 13.21,
# the same generation as F13's 13.42. We pass ks= ourselves, but keep the distro right for operators
# who attach a Cobbler autoinstall to it.
DISTRO_OS_VERSION = "rhel6"
# System interface fields we own (Cobbler 3.3 System.to_dict names -> modify_interface keys).
IFACE_FIELDS = {"mac_address": "macaddress", "ip_address": "ipaddress", "netmask": "netmask",
                "static": "static", "management": "management"}


@dataclass
class Wanted:
    kind: str  # distro | profile | system
    name: str
    fields: dict[str, Any]
    interfaces: dict[str, dict[str, Any]] | None = None  # systems only


@dataclass
class CobblerResult:
    changes: list[str] = field(default_factory=list)  # "system an-cluster.an-node01: created"
    unchanged: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # systems of our profile not in the definition
    warnings: list[str] = field(default_factory=list)
    synced: bool = False


def distro_name(cluster: Cluster) -> str:
    return cluster.release


def profile_name(cluster: Cluster) -> str:
    return cluster.name


def system_name(cluster: Cluster, node: Node) -> str:
    # cluster names are [A-Za-z0-9_-] and node names host labels: neither has a dot, so this is unique
    return f"{cluster.name}.{node.name}"


def kopts(args: list[str]) -> dict[str, Any]:
    """key=value arguments as the dict Cobbler stores (repeated keys become a list, in order), cf.
    cobbler 3.3 utils.input_string_or_dict_no_inherit."""
    out: dict[str, Any] = {}
    for arg in args:
        key, _, value = arg.partition("=")
        if key in out:
            out[key] = (out[key] if isinstance(out[key], list) else [out[key]]) + [value]
        else:
            out[key] = value
    return out


def pxe_url(cluster: Cluster, build_dir: Path) -> str:
    """The HTTP base URL of BUILD/pxe, checked to be this definition's, unchanged since `invoke pxe`."""
    pxe_dir = Path(build_dir) / "pxe"
    hint = "run `invoke pxe` for this definition first (same --build-dir)"
    try:
        cfg = json.loads((pxe_dir / SERVE_CONFIG).read_text())
    except (OSError, ValueError) as err:
        raise IsobuildError(f"no usable {pxe_dir / SERVE_CONFIG}: {err}", hint=hint) from None
    if cfg.get("cluster") != cluster.name:
        raise IsobuildError(f"{pxe_dir} is for cluster {cfg.get('cluster')!r}, not {cluster.name!r}", hint=hint)
    stamp = Stamps(build_dir).load("pxe") or {}
    if stamp.get("definition") != cluster.digest:
        raise IsobuildError(f"the definition changed since {pxe_dir} was written", hint=hint)
    return cfg["url"]


def wanted(cluster: Cluster, url: str, distro_dir: Path) -> list[Wanted]:
    """The Cobbler objects of one cluster, in creation order."""
    bcn = cluster.networks["bcn"]
    out = [
        Wanted("distro", distro_name(cluster), {
            "arch": "x86_64", "breed": "redhat", "os_version": DISTRO_OS_VERSION,
            "kernel": str(distro_dir / Path(PXEBOOT[0]).name), "initrd": str(distro_dir / Path(PXEBOOT[1]).name),
            "comment": f"{MARK}: {cluster.release} installer, shared by every cluster"}),
        Wanted("profile", profile_name(cluster), {
            "distro": distro_name(cluster), "autoinstall": "", "enable_menu": False,
            "kernel_options": kopts(cluster_args(cluster)), "comment": f"{MARK}: cluster {cluster.name}"}),
    ]
    for n in sorted(cluster.nodes, key=lambda n: n.nodeid):
        iface = {"ip_address": str(n.ip["bcn"]), "netmask": bcn.netmask, "static": True, "management": True,
                 "mac_address": boot_mac(cluster, n) or ""}
        out.append(Wanted("system", system_name(cluster, n), {
            "profile": profile_name(cluster), "hostname": n.fqdn,
            "kernel_options": kopts(node_args(cluster, n, url)),
            "comment": f"{MARK}: cluster {cluster.name} node {n.name}"}, {bcn.interface: iface}))
    return out


class Session:
    """A logged-in XML-RPC connection; every failure becomes an IsobuildError (password scrubbed)."""

    def __init__(self, api_url: str, user: str, password: str, timeout: float = 120):
        self._url, self._secret = api_url, password
        self._proxy = xmlrpc.client.ServerProxy(api_url, allow_none=True, transport=_Transport(timeout))
        self.token = ""
        self.token = self.call("login", user, password, hint=f"check the Cobbler user ({user}) and password")

    def call(self, method: str, *args, hint: str = "see cobblerd's log (/var/log/cobbler/cobbler.log)"):
        try:
            return getattr(self._proxy, method)(*args)
        except xmlrpc.client.Fault as err:
            msg = err.faultString.replace(self._secret, "***") if self._secret else err.faultString
            raise IsobuildError(f"cobbler {method} failed: {msg}", hint=hint) from None
        except (OSError, xmlrpc.client.ProtocolError) as err:
            raise IsobuildError(f"cannot reach the Cobbler API at {self._url}: {err}",
                                hint="is cobblerd running (and Apache proxying /cobbler_api)? see --api") from None

    def modify(self, kind: str, handle: str, attr: str, value, **hint) -> None:
        self.call("modify_item", kind, handle, attr, value, self.token, **hint)

    def get(self, kind: str, name: str) -> dict | None:
        got = self.call("get_item", kind, name)  # read-only: no token
        return got if isinstance(got, dict) and got else None


class _Transport(xmlrpc.client.Transport):
    def __init__(self, timeout: float):
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


def _differs(stored: dict, want: Wanted) -> list[str]:
    names = [k for k, v in want.fields.items() if stored.get(k) != v]
    if want.interfaces is not None:
        have = stored.get("interfaces") or {}
        if set(have) != set(want.interfaces) or any(
                {k: have[i].get(k) for k in IFACE_FIELDS} != w for i, w in want.interfaces.items()):
            names.append("interfaces")
    return names


def _check_owned(stored: dict, want: Wanted) -> None:
    """Ours only if its comment is exactly the one we give it (names the cluster and node)."""
    if stored.get("comment") != want.fields["comment"]:
        raise IsobuildError(
            f"Cobbler already has a {want.kind} named {want.name} that `invoke cobbler` did not create for "
            f"this definition (its comment is {stored.get('comment')!r}, not {want.fields['comment']!r}); "
            "it is left alone",
            hint="rename or remove it in Cobbler, or rename the cluster/node in the definition "
                 "(cluster names must be unique per Cobbler server)")


def _apply(s: Session, want: Wanted, stored: dict | None, fields: list[str], **hint) -> None:
    """Create or edit one object: only `fields` are sent; nothing is saved if Cobbler refuses one."""
    kind = want.kind
    if stored is None:
        handle = s.call("new_item", kind, s.token)
        s.modify(kind, handle, "name", want.name)
        if kind == "system":
            s.modify(kind, handle, "netboot_enabled", False)  # nothing installs by accident
    else:
        handle = s.call("get_item_handle", kind, want.name, s.token)
    for f in fields:
        if f != "interfaces":
            s.modify(kind, handle, f, want.fields[f], **hint)
    if "interfaces" in fields:
        for old in sorted(set((stored or {}).get("interfaces") or {}) - set(want.interfaces)):
            s.modify(kind, handle, "delete_interface", old)
        for iface, values in want.interfaces.items():
            s.modify(kind, handle, "modify_interface", {f"{IFACE_FIELDS[k]}-{iface}": v for k, v in values.items()})
    s.call("save_item", kind, handle, s.token, "new" if stored is None else "bypass")


def _distro(s: Session, want: Wanted, res: CobblerResult) -> None:
    """Create the shared distro once; an existing one is reused as it is (other clusters boot from it)."""
    stored = s.get("distro", want.name)
    if stored is None:  # Cobbler checks that kernel and initrd exist on its side
        _apply(s, want, None, list(want.fields), hint="--distro-dir must name a directory on the Cobbler server "
               "that holds vmlinuz and initrd.img (default BUILD/pxe/tftp/<release>)")
        res.changes.append(f"distro {want.name}: created from {want.fields['kernel']}")
        return
    _check_owned(stored, want)
    fixed = [k for k in ("arch", "breed", "os_version") if stored.get(k) != want.fields[k]]
    if fixed:
        raise IsobuildError(f"the shared distro {want.name} has " + ", ".join(
            f"{k}={stored.get(k)!r} (want {want.fields[k]!r})" for k in fixed),
            hint="fix it with `cobbler distro edit`; it is shared, so `invoke cobbler` does not change it")
    moved = [k for k in ("kernel", "initrd") if stored.get(k) != want.fields[k]]
    if moved:
        res.warnings.append(f"distro {want.name} is shared and kept as it is: its " + ", ".join(
            f"{k} is {stored.get(k)}" for k in moved) + f" (this run would have used {want.fields['kernel']})")
    res.unchanged.append(f"distro {want.name}")


def _identity(want_or_stored: dict) -> set[str]:
    """What Cobbler refuses to have twice (allow_duplicate_hostnames/ips/macs default to false)."""
    ids = {f"hostname {want_or_stored.get('hostname')}"}
    for iface in (want_or_stored.get("interfaces") or {}).values():
        ids |= {f"{k.replace('_', ' ')} {iface[k]}" for k in ("ip_address", "mac_address") if iface.get(k)}
    return ids - {"hostname None", "hostname "}


def _check_stale_conflicts(items: list[Wanted], stale: dict[str, dict]) -> None:
    """A system the definition dropped that still holds a new one's address: the operator removes it."""
    for want in items:
        if want.kind != "system":
            continue
        mine = _identity({"hostname": want.fields["hostname"], "interfaces": want.interfaces})
        for name, stored in stale.items():
            clash = sorted(mine & _identity(stored))
            if clash:
                raise IsobuildError(
                    f"system {want.name} needs the {', '.join(clash)} that Cobbler's system {name} holds; {name} "
                    f"is no longer in the definition, and `invoke cobbler` never removes a system",
                    hint=f"if {name} is gone for good: cobbler system remove --name {name}; then run again")


def _converge(s: Session, want: Wanted, res: CobblerResult) -> None:
    """Create a missing profile/system, or send exactly the fields that differ from the definition."""
    stored = s.get(want.kind, want.name)
    if stored is None:
        fields = list(want.fields) + (["interfaces"] if want.interfaces else [])
    else:
        _check_owned(stored, want)
        fields = _differs(stored, want)
    if not fields:
        res.unchanged.append(f"{want.kind} {want.name}")
        return
    _apply(s, want, stored, fields)
    res.changes.append(f"{want.kind} {want.name}: " + ("created" if stored is None else "updated " + ", ".join(fields)))


def _warnings(cluster: Cluster, stale: list[str]) -> list[str]:
    out = [f"system {name} (profile {profile_name(cluster)}) is not in the definition: left in Cobbler; "
           f"remove it with `cobbler system remove --name {name}`" for name in stale]
    bcn_if = cluster.networks["bcn"].interface
    return out + [f"system {system_name(cluster, n)} has no MAC for its bcn interface {bcn_if}: Cobbler cannot "
                  f"reserve its address in DHCP and names its pxelinux file by the address in hex, found only if "
                  f"DHCP leases it that address; add nodes[].mac.{bcn_if} to the definition"
                  for n in cluster.nodes if boot_mac(cluster, n) is None]


def register(cluster: Cluster, build_dir: Path, *, api_url: str, user: str, password: str,
             distro_dir: Path | None = None, sync: bool = True) -> CobblerResult:
    """Bring Cobbler's objects for `cluster` in line with the definition (see the module doc)."""
    url = pxe_url(cluster, build_dir)
    # build/pxe is a symlink to the current generation (pxe.py): name it, not the generation, which
    # a later `invoke pxe` removes
    distro_dir = Path(distro_dir).resolve() if distro_dir else \
        Path(build_dir).resolve() / "pxe" / "tftp" / cluster.release
    items = wanted(cluster, url, distro_dir)
    res = CobblerResult()
    s = Session(api_url, user, password)
    _distro(s, items[0], res)
    ours = {w.name for w in items if w.kind == "system"}
    res.stale = sorted(set(s.call("find_system", {"profile": profile_name(cluster)}, False)) - ours)
    _check_stale_conflicts(items, {name: s.get("system", name) or {} for name in res.stale})
    for want in items[1:]:
        _converge(s, want, res)
    res.warnings += _warnings(cluster, res.stale)
    if res.changes and sync:
        s.call("sync", s.token)
        res.synced = True
    for w in res.warnings:
        log.warn(w)
    return res


DEFAULT_API = "http://127.0.0.1/cobbler_api"  # what Cobbler's own CLI uses (Apache proxies it to cobblerd)
