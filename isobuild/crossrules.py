"""Rules that relate several parts of the definition, written against the loaded model.

Nodes, fence devices and VMs come keyed by their dotted path (nodes[1]); what items that did not load
still said (a node without a name still uses its fence device) is in Checker.seen. Each rule finds the
line of a path with Checker.line, never by walking the YAML.
"""
from __future__ import annotations

import ipaddress

from .checker import Checker, suggest
from .model import NETWORK_NAMES, FenceDevice, Install, Network, Node, Storage, Vm, Xen
from .values import DISK_RE, HOST_LABEL_RE, valid_dns_name


def cross_checks(ck: Checker, networks, nodes, devices, storage, xen, vms, install) -> None:
    """Rules that relate several parts of the definition, over what loaded (nodes, devices and vms by
    path) and what ck.seen recorded of the parts that did not."""
    _unique_addresses(ck, networks)
    _unique_node_macs(ck, nodes)
    _fence_references(ck, devices)
    _unique_fence_ports(ck, nodes)
    if storage is not None:
        _storage_fits_nodes(ck, nodes, storage, xen)
        _backing_device_matches_install(ck, storage, install)
        _storage_holds_vms(ck, storage, vms)
    _vms_fit_cluster(ck, nodes, storage, xen, vms)


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


def _unique_addresses(ck: Checker, networks: dict[str, Network]) -> None:
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
    for path, ipaddr, address in ck.seen.device_addresses:  # also of devices that did not load
        if _is_ipv4(ipaddr):
            claim(ipaddr, f"{path}.ipaddr", ck.line(f"{path}.ipaddr"))
        elif not valid_dns_name(ipaddr) and not HOST_LABEL_RE.match(ipaddr):
            ck.at(f"{path}.ipaddr", f"{ipaddr!r} is neither an IPv4 address nor a host name")
        elif address is not None:
            claim(address, f"{path}.address", ck.line(f"{path}.address"))


def _unique_node_macs(ck: Checker, nodes: dict[str, Node]) -> None:
    owners: dict[str, str] = {}
    for path, n in nodes.items():
        for iface, mac in n.mac.items():
            if mac in owners:
                mpath = f"{path}.mac.{iface}"
                ck.at(mpath, f"{mac} is already used by {owners[mac]}")
            else:
                owners[mac] = f"{n.name}.mac.{iface}"


def _fence_references(ck: Checker, devices: dict[str, FenceDevice]) -> None:
    """Methods name defined devices, agent-specific port rules, every device used."""
    by_name = {d.name: d for d in devices.values()}
    defined = {name for _, name in ck.seen.device_names}
    used: set[str] = set()
    for ref in ck.seen.fence_refs:
        used.add(ref.device)
        if ref.device not in defined:
            ck.at(f"{ref.path}.device",
                  f"{ref.device!r} is not defined in fence_devices",
                  suggest(str(ref.device), [n for n in defined if n], "devices are"))
            continue
        dev = by_name.get(ref.device)
        if dev is None:
            continue
        if dev.agent == "fence_na" and (not ref.port_given or ref.port == ""):
            ck.add(f"{ref.path}.port", f"fence_na device {ref.device!r} needs a port", ck.line(f"{ref.path}.device"),
                   "the Node Assassin port this node's power/reset leads are wired to")
        if dev.agent == "fence_ipmilan" and ref.port_given:
            ck.at(f"{ref.path}.port",
                  f"fence_ipmilan device {ref.device!r} takes no port",
                  "an IPMI BMC controls only its own node: define one device per node and drop the port")
    for path, name in ck.seen.device_names:
        if name and name not in used:
            ck.at(path,
                  f"fence device {name!r} is not used by any node",
                  "reference it from a node's fence list or remove it")


def _unique_fence_ports(ck: Checker, nodes: dict[str, Node]) -> None:
    """Two nodes on one port of a device (fence_na: port 01 is port 1) would fence each other."""
    owners: dict[tuple[str, str], str] = {}
    for path, n in nodes.items():
        for f in n.fence:
            if f.port is not None:
                key = (f.device, f.port.lstrip("0") or "0")
                if key in owners and owners[key] != n.name:
                    ck.at(f"{path}.fence", f"port {f.port} of {f.device} is already used by {owners[key]}")
                owners[key] = n.name


def _storage_fits_nodes(ck: Checker, nodes: dict[str, Node], storage: Storage, xen: Xen | None) -> None:
    """Storage rules that need the nodes or xen (the cluster name's length is cluster.name's own rule)."""
    if nodes and storage.gfs2.journals < ck.seen.node_count:
        ck.at("storage.gfs2.journals",
              f"{storage.gfs2.journals} journals for {ck.seen.node_count} nodes",
              "GFS2 needs one journal per node that mounts it")
    if storage.drbd.become_primary_on not in ("both", *[n.name for n in nodes.values()]):
        ck.at("storage.drbd.become_primary_on", f"{storage.drbd.become_primary_on!r} is not 'both' or a node name")
    if xen is not None and xen.relocation.enabled and xen.relocation.port == storage.drbd.port:
        ck.at("xen.relocation.port", f"{xen.relocation.port} is already used by storage.drbd.port")


def _backing_device_matches_install(ck: Checker, storage: Storage, install: Install) -> None:
    """storage.backing_device is what the kickstart's partitioning leaves for DRBD."""
    if install.raid and install.partitions:
        want = f"/dev/md{len(install.partitions)}"
        if storage.backing_device != want:
            ck.at("storage.backing_device",
                  f"{storage.backing_device} is not the RAID1 device the kickstart creates",
                  f"with two disks the partitions become md0..md{len(install.partitions) - 1} and the DRBD "
                  f"backing device is {want}")
    elif install.disks and install.partitions and DISK_RE.match(install.disks[0]):  # a bad disk is reported already
        # one disk, msdos label: partitions 1-3 primary, 4 extended, 5.. logical once there are more than 4
        count = len(install.partitions) + 1
        disk = install.disks[0]
        want = f"/dev/{disk}{'p' if disk[-1].isdigit() else ''}{count if count <= 4 else count + 1}"
        if storage.backing_device != want:
            ck.at("storage.backing_device",
                  f"{storage.backing_device} is not the partition the kickstart leaves "
                  "for DRBD",
                  f"with one disk and {len(install.partitions)} partitions the DRBD backing partition is {want}")


def _storage_holds_vms(ck: Checker, storage: Storage, vms: dict[str, Vm]) -> None:
    if storage.size_mib is not None:
        total = storage.gfs2.size_mib + sum(v.disk_mib for v in vms.values())
        if total > storage.size_mib:
            ck.at("storage.size",
                  f"{storage.size} cannot hold the GFS2 LV ({storage.gfs2.size}) plus all VM disks "
                  f"({', '.join(v.disk for v in vms.values()) or 'none'}): {total} MiB needed",
                  "grow storage.size or shrink the disks")


def _vms_fit_cluster(ck: Checker, nodes: dict[str, Node], storage: Storage | None, xen: Xen | None,
                     vms: dict[str, Vm]) -> None:
    """Each VM's bridge is a bridged network, it prefers a node, and its LV does not clash with GFS2's."""
    node_names = [n.name for n in nodes.values()] or ck.seen.node_names
    for path, m in ck.seen.vms:  # every VM item, also one that did not load for another reason
        bridge, prefer = m.get("bridge"), m.get("prefer")
        if bridge is None:
            pass
        elif bridge not in NETWORK_NAMES:
            ck.at(f"{path}.bridge",
                  f"{bridge!r} is not a defined network",
                  suggest(bridge, NETWORK_NAMES, "networks are"))
        elif xen is not None and bridge not in xen.bridges:
            ck.at(f"{path}.bridge", f"network {bridge!r} has no Xen bridge", f"add {bridge} to xen.bridges")
        if prefer is not None and prefer not in node_names:
            ck.at(f"{path}.prefer",
                  f"{prefer!r} is not a node",
                  suggest(prefer, [n for n in node_names if n], "nodes are"))
        if storage is not None and m.get("name") == storage.gfs2.lv:
            ck.at(f"{path}.name", f"{m['name']!r} clashes with the GFS2 LV name")
