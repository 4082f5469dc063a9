"""The registry of per-node files: one row per file a node gets from the render.

render reads it for what to render and each file's mode, validate for the checker of each file,
pxe (and the network kickstart's %post) for which files are served only from private/<node>/, and
the kickstart for what %post installs before the first boot. Adding a node file = its template plus
one row here; render refuses a template under kickstart/node/ that has no row.

A row with `names` stands for the files whose name comes from the definition (ifcfg-<nic>,
<drbd resource>.res, the per-VM files): `names(cluster)` gives (path, extra template context) per file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import IsobuildError
from .model import GUEST_BOOT_MIB, GUEST_ROOT_MIN_MIB, NETWORK_NAMES, Cluster

NODE_TEMPLATES = "node"  # kickstart/node/<path>.j2 -> nodes/<node>/<path> (rows without `names`)
VM_DIR = "etc/an-cluster/vms"


def _always(cluster: Cluster) -> bool:
    return True


def _firewall(cluster: Cluster) -> bool:
    return cluster.install.firewall == "cluster"


def _fence_na(cluster: Cluster) -> bool:
    return any(d.agent == "fence_na" for d in cluster.fence_devices)


@dataclass(frozen=True)
class NodeFile:
    """One row: a node file (or, with `names`, a family of them)."""

    path: str  # under the node root, no leading '/' (a family: what its names look like)
    check: str  # the validate.NODE_CHECKERS entry that checks it
    template: str = ""  # under kickstart/; "" = node/<path>.j2
    secret: bool = False  # 0600 in the build; PXE serves it only from private/<node>/ to that node
    executable: bool = False
    when: Callable[[Cluster], bool] = _always  # rendered only when this holds for the cluster
    post_install: bool = False  # %post installs it (0600) so it is in force from the first boot
    names: Callable[[Cluster], list[tuple[str, dict]]] | None = None

    @property
    def mode(self) -> int:
        return 0o600 if self.secret else 0o755 if self.executable else 0o644


@dataclass(frozen=True)
class Planned:
    """One file of one render: its path, the row it comes from, the extra template context."""

    rel: str
    row: NodeFile
    context: dict = field(default_factory=dict)

    @property
    def template(self) -> str:
        return self.row.template or f"{NODE_TEMPLATES}/{self.rel}.j2"


def domu_config_path(cluster: Cluster, vm_name: str) -> str:
    """Where vm.sh's `xm create --path=<mount>/domU_config <name>` finds a VM's config (relative to /)."""
    return f"{cluster.storage.gfs2.mount.strip('/')}/domU_config/{vm_name}"


def _nic_files(cluster: Cluster) -> list[tuple[str, dict]]:
    return [(f"etc/sysconfig/network-scripts/ifcfg-{cluster.networks[net].interface}",
             {"net": net, "nw": cluster.networks[net]}) for net in NETWORK_NAMES]


def _vlan_parent_files(cluster: Cluster) -> list[tuple[str, dict]]:
    """A VLAN's physical NIC needs its own (address-less) ifcfg unless a network already uses it."""
    out = []
    ifaces = {cluster.networks[net].interface for net in NETWORK_NAMES}
    for net in NETWORK_NAMES:
        nw = cluster.networks[net]
        parent = nw.vlan_parent
        if parent and parent not in ifaces:
            ifaces.add(parent)
            out.append((f"etc/sysconfig/network-scripts/ifcfg-{parent}", {"net": net, "nw": nw, "parent": parent}))
    return out


def _domu_configs(cluster: Cluster) -> list[tuple[str, dict]]:
    """Shipped xm configs: staged; first boot puts them on the GFS2 mount (80-gfs2)."""
    return [(domu_config_path(cluster, vm.name), {"vm": vm}) for vm in cluster.vms if vm.config is not None]


def _vm_files(suffix: str, method: str, kickstart: bool = False) -> Callable[[Cluster], list[tuple[str, dict]]]:
    """Per VM with vms[].install of `method`: staged on both nodes, used by the lowest nodeid's 95-vms."""
    def names(cluster: Cluster) -> list[tuple[str, dict]]:
        sizes = {"guest_boot_mib": GUEST_BOOT_MIB, "guest_root_min_mib": GUEST_ROOT_MIN_MIB} if kickstart else {}
        return [(f"{VM_DIR}/{vm.name}{suffix}", {"vm": vm, **sizes}) for vm in cluster.vms
                if vm.install is not None and vm.install.method == method and (vm.install.kickstart or not kickstart)]
    return names


# The order is the one %post installs the post_install files in (firewall first, fence_na.conf last).
NODE_FILES: tuple[NodeFile, ...] = (
    NodeFile("etc/cluster/cluster.conf", "cluster.conf", secret=True),  # fence passwords
    NodeFile("etc/drbd.conf", "drbd.conf"),
    NodeFile("etc/drbd.d/global_common.conf", "drbd include"),
    NodeFile("etc/drbd.d/<resource>.res", "drbd include", "files/drbd-resource.res.j2",
             names=lambda c: [(f"etc/drbd.d/{c.storage.drbd.resource}.res", {})]),
    NodeFile("etc/lvm/lvm.conf", "lvm.conf"),
    NodeFile("etc/an-cluster/init-order", "init-order"),
    NodeFile("etc/an-cluster/firstboot.env", "sourced shell"),
    NodeFile("etc/xen/xend-config.sxp", "sxp"),
    NodeFile("etc/xen/scripts/an-network-script", "script", executable=True),
    NodeFile("etc/hosts", "hosts"),
    NodeFile("etc/sysconfig/network", "sourced shell"),
    NodeFile("etc/sysconfig/network-scripts/ifcfg-<nic>", "sourced shell", "files/ifcfg-nic.j2", names=_nic_files),
    NodeFile("etc/sysconfig/network-scripts/ifcfg-<vlan parent>", "sourced shell", "files/ifcfg-vlan-parent.j2",
             names=_vlan_parent_files),
    NodeFile("etc/sysconfig/iptables", "iptables", when=_firewall, post_install=True),
    NodeFile("etc/sysconfig/iptables.an-cluster", "iptables fragment", when=_firewall, post_install=True),
    NodeFile("etc/sysconfig/system-config-firewall", "lokkit", when=_firewall, post_install=True),
    NodeFile("etc/cluster/fence_na.conf", "fence_na.conf", secret=True, when=_fence_na, post_install=True),
    NodeFile("<gfs2 mount>/domU_config/<vm>", "domU config", "files/domU-config.j2", names=_domu_configs),
    NodeFile(f"{VM_DIR}/<vm>.cfg", "xm config", "files/vm-xm.cfg.j2", names=_vm_files(".cfg", "hvm")),
    NodeFile(f"{VM_DIR}/<vm>.virt-install", "virt-install", "files/vm-virt-install.j2",
             names=_vm_files(".virt-install", "pv")),
    NodeFile(f"{VM_DIR}/<vm>.ks", "guest kickstart", "files/vm-guest.ks.j2", secret=True,  # rootpw --iscrypted
             names=_vm_files(".ks", "pv", kickstart=True)),
)


def planned(cluster: Cluster) -> list[Planned]:
    """Every node file of this cluster, in registry order (each node gets the same paths)."""
    out: list[Planned] = []
    seen: set[str] = set()
    for row in NODE_FILES:
        if not row.when(cluster):
            continue
        for rel, extra in (row.names(cluster) if row.names else [(row.path, {})]):
            if rel in seen:
                raise IsobuildError(f"{rel} is rendered twice (kickstart/node/ and the named-file table)")
            seen.add(rel)
            out.append(Planned(rel, row, extra))
    return out


def secret_paths(cluster: Cluster) -> set[str]:
    return {f.rel for f in planned(cluster) if f.row.secret}




def unregistered_templates(template_dir: Path) -> list[str]:
    """Templates under kickstart/node/ that no row names (render refuses them)."""
    root = Path(template_dir) / NODE_TEMPLATES
    known = {f"{row.path}.j2" for row in NODE_FILES if not row.names and not row.template}
    return sorted(rel for rel in (t.relative_to(root).as_posix() for t in root.rglob("*.j2")) if rel not in known)
