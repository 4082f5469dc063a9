"""xen: the hypervisor, its bridges and relocation (live migration)."""
from __future__ import annotations

import re

from .checker import Checker, Values, suggest
from .model import NETWORK_NAMES, Relocation, Xen
from .settings import default, fill, given_or_default
from .values import CLUSTER_PORTS, parse_size_mib


def load_xen(ck: Checker, top) -> Xen | None:
    m = ck.section(top, "xen", "xen")
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
