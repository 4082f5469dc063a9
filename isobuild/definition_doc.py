"""The definition reference, docs/definition.md, generated from model.SPECS and the help table below.

`invoke definition-doc` rewrites the file; tests/unit/test_definition_doc.py fails when a key of
SPECS has no help here, when help names a key SPECS lacks, or when the committed file differs from
what this module writes. So the format's documentation lives in the repository and cannot drift.
"""
from __future__ import annotations

from pathlib import Path

from .model import SPECS

# Where each spec of model.SPECS sits in a definition, in the order the reference lists them.
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("", "", "Top level"),
    ("cluster", "cluster", "cluster"),
    ("network", "networks.<bcn|sn|ifn>", "networks (exactly bcn, sn and ifn)"),
    ("totem", "totem", "totem"),
    ("node", "nodes[]", "nodes (exactly two)"),
    ("fence_method", "nodes[].fence[]", "nodes[].fence (ordered fence methods)"),
    ("fence_device", "fence_devices[]", "fence_devices"),
    ("install", "install", "install"),
    ("partition", "install.partitions[]", "install.partitions"),
    ("storage", "storage", "storage"),
    ("drbd", "storage.drbd", "storage.drbd"),
    ("clvm", "storage.clvm", "storage.clvm"),
    ("gfs2", "storage.gfs2", "storage.gfs2"),
    ("xen", "xen", "xen"),
    ("relocation", "xen.relocation", "xen.relocation"),
    ("vm", "vms[]", "vms"),
    ("vm_install", "vms[].install", "vms[].install (first-boot provisioning)"),
)

# One line of help per key: what it means, its default when optional, the rule it must pass.
HELP: dict[str, str] = {
    "cluster": "the cluster's identity",
    "networks": "the three networks: bcn (back-channel, totem ring 0, fencing, migration), sn (storage: "
                "DRBD, ring 1 with rrp), ifn (internet-facing: VM bridge, default route)",
    "totem": "corosync ring settings; default: rrp_mode none, secauth false",
    "nodes": "the two nodes (a two_node cman cluster)",
    "fence_devices": "every fence device the nodes' methods name; each must be used",
    "install": "what the kickstart lays down on each node",
    "storage": "DRBD + clustered LVM + GFS2 on the backing device",
    "xen": "the Xen 4.0.1 dom0",
    "vms": "rgmanager `<vm>` services; default none",
    "cluster.name": "cman cluster name and GFS2 lock-table prefix: 1-15 characters `[A-Za-z0-9_-]`",
    "cluster.config_version": "cluster.conf config_version, a positive integer; bump it to push a change",
    "cluster.domain": "a valid DNS name; node FQDN = `<node name>.<domain>`",
    "cluster.timezone": "an Olson time zone name (`America/Toronto`), for the kickstart's `timezone --utc`",
    "cluster.release": "the target; only `fedora-13-x86_64` (the default)",
    "networks.<bcn|sn|ifn>.interface": "the node NIC on this network (`eth0`, `em1`, a VLAN `eth3.100`); "
                                        "unique per node",
    "networks.<bcn|sn|ifn>.subnet": "an IPv4 network in CIDR form; every node address lies inside it",
    "networks.<bcn|sn|ifn>.mtu": "optional MTU written to ifcfg (anaconda 13 drops `network --mtu`)",
    "networks.<bcn|sn|ifn>.gateway": "the default route; only on the ifn, inside its subnet",
    "networks.<bcn|sn|ifn>.dns": "name servers (IPv4 addresses), only on the ifn",
    "totem.rrp_mode": "`none` (default), `active` or `passive`; not none adds ring 1 on the sn (`altname`) "
                      "and makes dlm_controld use SCTP",
    "totem.secauth": "corosync `secauth`; default false",
    "nodes[].name": "short host name, a valid DNS label, unique",
    "nodes[].nodeid": "cman nodeid >= 1, unique; the lowest nodeid runs the one-node first-boot steps",
    "nodes[].ip": "`{bcn: ..., sn: ..., ifn: ...}`: one address per network, inside its subnet, none used twice",
    "nodes[].mac": "optional `{<nic>: <MAC>}`: pins HWADDR in ifcfg; unicast, unique in the cluster; "
                   "without it the HWADDR anaconda saw is kept",
    "nodes[].fence": "at least one method, tried in order",
    "nodes[].fence[].method": "the method's name in cluster.conf",
    "nodes[].fence[].device": "a `fence_devices[].name`",
    "nodes[].fence[].port": "the outlet/port on the device: needed by fence_na and other multi-port devices, "
                            "refused by fence_ipmilan",
    "fence_devices[].name": "unique device name, referenced by `nodes[].fence[].device`",
    "fence_devices[].agent": "`fence_na` (Node Assassin, our `fence-na` package), `fence_ipmilan`, or another "
                             "`fence_*` agent of F13's fence-agents",
    "fence_devices[].ipaddr": "the device's address as cluster.conf passes it to the agent: an IPv4 address, "
                              "or a host name that `address` resolves",
    "fence_devices[].login": "the device login (fence_na: the same on every Node Assassin)",
    "fence_devices[].password_file": "file holding the password (one line, <= 4 KiB, no control characters; "
                                     "never printed; warned about when group/other-readable)",
    "fence_devices[].address": "IPv4 address of a host-name `ipaddr`, written to the nodes' /etc/hosts "
                               "(fencing must not depend on DNS); an error when ipaddr is already an address",
    "fence_devices[].options": "extra `<fencedevice>` attributes (`lanplus: true`, `auth: md5`, ...), each "
                               "accepted for the agent by every cman schema a node may run; `false` is refused",
    "install.disks": "one disk (plain partitions) or two (software RAID1 for every partition)",
    "install.partitions": "partitions in order; the last, DRBD's backing, takes the rest of the disk",
    "install.root_password_hash_file": "file holding root's crypt(3) hash (SHA-512 `$6$`), never a plain password",
    "install.ssh_authorized_keys_file": "optional file of root's authorized keys (the admins' keys)",
    "install.selinux": "`permissive` (default, the seed), `enforcing` or `disabled`",
    "install.firewall": "`cluster` (default: open only this cluster's ports) or `off` (the seed)",
    "install.runlevel": "default runlevel, 3 (default) or 5",
    "install.packages": "extra packages on top of the cluster set; each must be on the DVD or in our repo",
    "install.console": "optional serial console for installer, Xen and dom0 (`ttyS0,115200`)",
    "install.partitions[].mount": "mount point (`/boot`, `/`, ...) or `swap`; unique",
    "install.partitions[].size": "a size like `256M` or `40G`",
    "storage.backing_device": "DRBD's backing device: `/dev/md<N>` over the last partitions (two disks) or "
                              "the partition the kickstart leaves for DRBD (one disk)",
    "storage.drbd": "the DRBD 8.3.7 resource",
    "storage.clvm": "the clustered volume group on the DRBD device",
    "storage.gfs2": "the GFS2 file system on its LV",
    "storage.managed_by": "`rgmanager` (default: storage as per-node rgmanager services, the seed's last word) "
                          "or `init` (SysV start order)",
    "storage.size": "optional size of the DRBD device; when given the GFS2 LV and every VM disk must fit",
    "storage.drbd.resource": "DRBD resource name (`r0`)",
    "storage.drbd.device": "DRBD device (`/dev/drbd0`)",
    "storage.drbd.port": "TCP port on the sn, 1-65535, not a port the cluster already uses",
    "storage.drbd.protocol": "`C` (default; dual-primary needs it), `B` or `A`",
    "storage.drbd.sync_rate": "`syncer { rate }`, like `40M`",
    "storage.drbd.allow_two_primaries": "dual-primary for GFS2; default true",
    "storage.drbd.become_primary_on": "`both` (default) or a node name",
    "storage.drbd.wfc_timeout": "seconds DRBD's start-up waits for the peer; default 300, 1-300000 "
                                "(DRBD's own default 0 waits forever and hangs the boot)",
    "storage.drbd.degr_wfc_timeout": "the same wait after a degraded shutdown (and for an outdated peer); "
                                     "default 120, at most wfc_timeout",
    "storage.clvm.vg": "volume group name, a valid LVM name",
    "storage.clvm.filter": "`drbd-only` (default): lvm.conf `filter = [ \"a|/dev/drbd*|\", \"r/.*/\" ]`",
    "storage.gfs2.lv": "logical volume name; lock table `<cluster.name>:<lv>` within GFS2's 16:30 limits",
    "storage.gfs2.size": "LV size like `20G`",
    "storage.gfs2.mount": "mount point on both nodes (`/xen_shared`; VM configs live in `domU_config/` there)",
    "storage.gfs2.journals": "journals, at least the number of nodes",
    "xen.version": "`4.0.1`",
    "xen.hypervisor_rpm": "the xen NVR the kickstart installs; must name xen.version "
                          "(`xen-4.0.1-1.an1.fc13`, what rpmspecs/xen builds)",
    "xen.dom0_kernel": "the dom0 kernel's version-release (`2.6.32.23-170.dom0_an1.fc13`, rpmspecs/kernel)",
    "xen.dom0_mem": "dom0 memory like `1024M` (`dom0_mem=` on the Xen line)",
    "xen.bridges": "networks that get a Xen bridge; default `[bcn, ifn]`; bridging `sn` is allowed but "
                   "warned about (a xend restart would drop DRBD)",
    "xen.relocation": "xend live-migration settings",
    "xen.relocation.enabled": "xend relocation server on; default false",
    "xen.relocation.port": "relocation port; default 8002",
    "xen.relocation.hosts_allow": "`peers` (only the other node's bcn address) or a list of regexes; never empty "
                                  "(empty allows everyone)",
    "vms[].name": "VM name: a valid libvirt and LVM name, unique",
    "vms[].memory": "guest memory like `1024M`",
    "vms[].vcpus": "virtual CPUs, >= 1",
    "vms[].disk": "size of the VM's LV on the clustered VG, like `50G`",
    "vms[].bridge": "the network whose Xen bridge the VM's NIC joins; must be in xen.bridges",
    "vms[].prefer": "the node the VM's failover domain prefers",
    "vms[].migrate": "`live` (default) or `pause`: how rgmanager moves the VM",
    "vms[].mac": "optional unicast MAC of the VM's NIC, unique in the cluster (node NICs included); default: "
                 "stable, derived from the cluster and VM name in Xen's 00:16:3e range",
    "vms[].cpuset": "optional physical CPUs the VM may use (`1`, `1-3`, `0,2`)",
    "vms[].os_variant": "optional `--os-variant` of Fedora 13's virt-install (python-virtinst 0.500.3), e.g. "
                        "`fedora13`",
    "vms[].install": "optional: how first boot provisions the VM (lowest nodeid, only while it has no config)",
    "vms[].install.method": "`pv` (virt-install --paravirt from an install tree) or `hvm` (an xm config booting "
                            "an ISO on the shared file system)",
    "vms[].install.location": "pv: the install tree, an http://, ftp:// or nfs: URL (virt-install 0.500.3 "
                              "takes no https)",
    "vms[].install.kickstart": "pv: render a guest kickstart (mode 0600: it holds the root hash); default false",
    "vms[].install.kickstart_url": "pv: where you publish that kickstart for the guest installer to fetch "
                                   "(needs kickstart: true)",
    "vms[].install.iso": "hvm: the installer ISO, a path on the GFS2 mount",
    "vms[].config_file": "optional xm domain config (Python assignments whose `name` is the VM's) shipped "
                         "to `<gfs2 mount>/domU_config/<vm>`; only then does the VM autostart",
}


def dotted(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def documented_keys() -> list[str]:
    """Every dotted key SPECS defines, in reference order."""
    return [dotted(prefix, key) for spec, prefix, _ in SECTIONS for key in SPECS[spec]]


def render() -> str:
    lines = ["# The cluster definition: every key",
             "",
             "<!-- generated by `invoke definition-doc` from isobuild/model.py (SPECS) and "
             "isobuild/definition_doc.py (HELP); edit those, not this file -->",
             "",
             "A definition is one YAML file (`cluster.yaml` is the bundled example, the cluster of the manual "
             "procedure; `examples/ipmi-cluster.yaml` a second one). `invoke check` checks all of it before "
             "anything is written and reports every problem at once as `file:line: dotted.path: reason`, "
             "with a hint where one helps. Unknown keys are errors (with a \"did you mean\"). Secrets are "
             "never in the definition: `*_file` keys name files that hold them. What each key becomes on "
             "the nodes is in [render.md](render.md).",
             ""]
    for spec, prefix, title in SECTIONS:
        lines += [f"## {title}", "", "| key | type | required | meaning |", "|---|---|---|---|"]
        for key, (required, _types, typename) in SPECS[spec].items():
            path = dotted(prefix, key)
            lines.append(f"| `{path}` | {typename} | {'yes' if required else 'no'} | {HELP[path]} |")
        lines.append("")
    return "\n".join(lines)


def write(path: Path) -> bool:
    """Rewrite `path` when it differs; True when it changed."""
    text = render()
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True
