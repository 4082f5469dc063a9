"""nodes: each node's addresses, MACs and fence methods (what failed items said goes to Checker.seen)."""
from __future__ import annotations

import ipaddress

from .checker import Checker, FenceRef, Values, key_path, suggest, unknown
from .model import NETWORK_NAMES, FenceMethod, Network, Node
from .settings import fill
from .values import MAC_RE


def load_nodes(ck: Checker, top, cluster, networks) -> dict[str, Node]:
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
            nodes[path] = fill(Node, m, fqdn=f"{name}.{cluster['domain']}".lower(), ip=ips, mac=macs, fence=methods)
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
        ip = ck.ipv4(ipmap[net], npath, nline)
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
        methods.append(fill(FenceMethod, fm, port=None if port is None else str(port)))
    return tuple(methods)
