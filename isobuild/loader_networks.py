"""The cluster, networks and totem parts of the definition."""
from __future__ import annotations

import ipaddress
from typing import Any

from .checker import Checker, Values, key_path, suggest, unknown
from .model import NETWORK_NAMES, Network, Totem
from .settings import fill
from .values import SUPPORTED_RELEASE


def load_cluster(ck: Checker, top) -> dict[str, Any]:
    """cluster: its keys' rules are the settings' (Cluster); placeholders where one is missing."""
    m = ck.section(top, "cluster", "cluster")
    out = {"name": "", "config_version": 1, "domain": "", "timezone": "", **m, "release": SUPPORTED_RELEASE}
    out["domain"] = out["domain"].lower()
    return out


def load_networks(ck: Checker, top) -> dict[str, Network]:
    """networks: bcn, sn and ifn, each on its own interface, one of them on a plain NIC."""
    networks: dict[str, Network] = {}
    if "networks" not in top:
        return networks
    nets = top["networks"]
    for name in nets:
        if name not in NETWORK_NAMES:
            ck.add(key_path("networks", name), unknown("network", name), ck.key_line(nets, name),
                   suggest(str(name), NETWORK_NAMES, "networks are"))
    for name in NETWORK_NAMES:
        if name not in nets:
            ck.at(f"networks.{name}", "required network is missing", "bcn, sn and ifn must all be defined")
            continue
        m = ck.mapping(nets[name], f"networks.{name}", "network", ck.key_line(nets, name))
        net = _load_network(ck, name, m) if m is not None else None
        if net is not None:
            networks[name] = net
    _check_interfaces(ck, networks)
    return networks


def _load_network(ck: Checker, name: str, m: Values) -> Network | None:
    """One network: a subnet for two nodes; a gateway (the ifn's only) inside it; dns addresses."""
    path = f"networks.{name}"
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
    gateway = None
    if "gateway" in m:
        if name != "ifn":
            ck.at(f"{path}.gateway",
                  "only the ifn carries the default gateway",
                  "remove it; the bcn and sn are not routed")
        gateway = ck.ipv4(m["gateway"], f"{path}.gateway", ck.line(f"{path}.gateway"))
        if gateway and subnet and gateway not in subnet:
            ck.at(f"{path}.gateway", f"{gateway} is not inside networks.{name}.subnet {subnet}")
    dns = []
    for i, d in enumerate(m.get("dns", []) or []):
        ip = ck.ipv4(d, f"{path}.dns[{i}]", ck.line(f"{path}.dns[{i}]"))
        if ip:
            dns.append(ip)
    if subnet is None or not iface:
        return None
    return fill(Network, m, name=name, subnet=subnet, gateway=gateway, dns=tuple(dns))


def _check_interfaces(ck: Checker, networks: dict[str, Network]) -> None:
    """Not every network a VLAN; each its own interface (every node uses the same one for a network)."""
    if len(networks) == len(NETWORK_NAMES) and all(n.vlan_parent for n in networks.values()):
        ck.at("networks.bcn.interface",
              "every network is a VLAN: the kickstart needs one plain NIC",
              "put at least one network (e.g. the bcn) on an untagged NIC")
    seen: dict[str, str] = {}
    for name, net in networks.items():
        if net.interface in seen:
            ck.at(f"networks.{name}.interface",
                  f"{net.interface} is already used by networks.{seen[net.interface]}",
                  "each network needs its own interface")
        seen[net.interface] = name


def load_totem(ck: Checker, top) -> Totem:
    return fill(Totem, ck.section(top, "totem", "totem"))
