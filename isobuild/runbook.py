"""`invoke runbook`: the operator's handbook for *this* cluster, as HTML and Markdown.

build/runbook/index.html   node and network tables, the storage map (inline SVG), service start order,
                           and the procedures with this cluster's real names
build/runbook/index.md     the same in Markdown (the SVG beside it as storage.svg)
build/runbook/storage.svg

Everything is derived from the definition (isobuild.model) and the start-order table
(isobuild.initorder); the templates live in isobuild/templates/runbook/ and hold no cluster names.
HTML goes through Jinja2 with autoescape, so names from the definition cannot inject markup. No
secrets are ever passed to the templates: the context is built from plain strings below, never from
Secret objects, and build_runbook() checks the output for every secret value before writing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import jinja2
from markupsafe import Markup

from . import initorder, log
from .errors import IsobuildError
from .model import NETWORK_NAMES, Cluster, Node
from .outputs import atomic_dir

TEMPLATES = Path(__file__).resolve().parent / "templates" / "runbook"
NET_ROLES = {
    "bcn": "back-channel: cluster traffic (totem ring 0), fencing, live migration",
    "sn": "storage: DRBD replication",
    "ifn": "internet-facing: the VMs' bridge, default route",
}


# ---------------------------------------------------------------------------------------------
# What the templates show (plain data only)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    where: str  # "node-a", "both nodes", "any node", "your workstation"
    commands: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class Procedure:
    key: str
    title: str
    intro: str
    steps: tuple[Step, ...]
    warning: str = ""


@dataclass
class StorageMap:
    disks: list[str]
    local: list[tuple[str, str, str]]  # (device, mount or role, size)
    backing: str
    drbd_device: str
    drbd_resource: str
    vg: str
    lvs: list[tuple[str, str, str]]  # (lv, size, use)
    gfs2_lv: str
    gfs2_mount: str
    raid: bool
    nodes: list[str] = field(default_factory=list)


def storage_map(cluster: Cluster) -> StorageMap:
    from .render import disk_layout

    inst, st = cluster.install, cluster.storage
    local = []
    for part in disk_layout(cluster):
        if not part.mount:
            continue
        dev = f"/dev/{part.md}" if part.md else ", ".join(d for _, d in part.members)
        size = next((p.size for p in inst.partitions if p.mount == part.mount), "")
        local.append((dev, part.mount, size))
    lvs = [(st.gfs2.lv, st.gfs2.size, f"GFS2 {st.gfs2.mount} (VM configs, shared)")]
    lvs += [(vm.name, vm.disk, f"disk of VM {vm.name}") for vm in cluster.vms]
    return StorageMap(
        disks=list(inst.disks), local=local, backing=st.backing_device, drbd_device=st.drbd.device,
        drbd_resource=st.drbd.resource, vg=st.clvm.vg, lvs=lvs, gfs2_lv=st.gfs2.lv, gfs2_mount=st.gfs2.mount,
        raid=inst.raid, nodes=[n.name for n in sorted(cluster.nodes, key=lambda n: n.nodeid)])


def storage_svg(sm: StorageMap) -> str:
    """The storage stack as SVG: per node disks -> local md/partitions + backing device; both backing
    devices -> one DRBD device -> PV -> VG -> LVs -> GFS2."""
    box_h, gap, col_w = 34, 26, 170
    boxes: list[str] = []

    def box(x: float, y: float, w: float, text: str, cls: str) -> tuple[float, float, float]:
        boxes.append(f'<g class="{cls}"><rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{box_h}" rx="5"/>'
                     f'<text x="{x + w / 2:.0f}" y="{y + box_h / 2 + 5:.0f}" text-anchor="middle">'
                     f'{escape(text)}</text></g>')
        return x, y, w

    def line(a, b) -> None:
        ax, ay, aw = a
        bx, by, bw = b
        boxes.append(f'<line x1="{ax + aw / 2:.0f}" y1="{ay + box_h:.0f}" x2="{bx + bw / 2:.0f}" y2="{by:.0f}"/>')

    def text_w(texts) -> float:  # a width that holds the longest label at 13px sans-serif
        return max([110.0] + [7.6 * len(t) + 16 for t in texts])

    local_labels = [f"{dev.split('/')[-1]} {mount}" for dev, mount, _ in sm.local] + [sm.backing]
    n_local = len(local_labels)
    node_w = max(2 * col_w, n_local * (text_w(local_labels) + 10) - 10)
    lv_labels = [f"LV {lv} ({size})" for lv, size, _ in sm.lvs] + [f"GFS2 {sm.gfs2_mount}"]
    lv_w = text_w(lv_labels)
    width = max(2 * node_w + 3 * gap, len(sm.lvs) * (lv_w + 10) + 2 * gap)
    y0 = 40
    backing_boxes = []
    for i, node in enumerate(sm.nodes[:2]):
        x0 = gap + i * (node_w + gap) if i == 0 else width - gap - node_w
        boxes.append(f'<text class="node" x="{x0 + node_w / 2:.0f}" y="{y0 - 14}" text-anchor="middle">'
                     f'{escape(node)}</text>')
        dw = (node_w - 10 * (len(sm.disks) - 1)) / max(1, len(sm.disks))
        disk_boxes = [box(x0 + j * (dw + 10), y0, dw, d, "disk") for j, d in enumerate(sm.disks)]
        pw = (node_w - 10 * (n_local - 1)) / n_local
        y1 = y0 + box_h + gap
        parts = [box(x0 + j * (pw + 10), y1, pw, label, "part") for j, label in enumerate(local_labels[:-1])]
        back = box(x0 + len(sm.local) * (pw + 10), y1, pw, sm.backing, "backing")
        for d in disk_boxes:
            for p in parts + [back]:
                line(d, p)
        backing_boxes.append(back)
    y2 = y0 + 2 * (box_h + gap)
    cw = max(240, text_w([f"DRBD {sm.drbd_resource}: {sm.drbd_device}", f"VG {sm.vg}"]))
    cx = (width - cw) / 2
    drbd = box(cx, y2, cw, f"DRBD {sm.drbd_resource}: {sm.drbd_device}", "drbd")
    for b in backing_boxes:
        line(b, drbd)
    pv = box(cx, y2 + box_h + gap, cw, f"clustered PV {sm.drbd_device}", "pv")
    line(drbd, pv)
    vg = box(cx, y2 + 2 * (box_h + gap), cw, f"VG {sm.vg}", "vg")
    line(pv, vg)
    y3 = y2 + 3 * (box_h + gap)
    total = len(sm.lvs) * lv_w + (len(sm.lvs) - 1) * 10
    lx = (width - total) / 2
    gfs_box = None
    for k, (lv, size, _use) in enumerate(sm.lvs):
        b = box(lx + k * (lv_w + 10), y3, lv_w, f"LV {lv} ({size})", "lv")
        line(vg, b)
        if lv == sm.gfs2_lv:
            gfs_box = b
    height = y3 + box_h + 2 * gap
    if gfs_box is not None:
        g = box(gfs_box[0], y3 + box_h + gap, lv_w, f"GFS2 {sm.gfs2_mount}", "gfs2")
        line(gfs_box, g)
        height += box_h + gap
    style = ("rect{fill:#f4f6fa;stroke:#34495e;stroke-width:1.2}.drbd rect,.pv rect,.vg rect{fill:#e3f0ff}"
             ".gfs2 rect{fill:#e6f7e6}.backing rect{fill:#fff3d6}line{stroke:#34495e;stroke-width:1.2}"
             "text{font:13px sans-serif;fill:#111}.node{font-weight:bold;font-size:15px}")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="storage-map" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="storage map">'
            f"<style>{style}</style>" + "".join(boxes) + "</svg>\n")


def _running_services(cluster: Cluster) -> list[initorder.InitService]:
    return [s for s in initorder.services(cluster.storage.managed_by)]


def _first_boot(cluster: Cluster, a, b) -> Procedure:
    """The unattended bring-up and the initial DRBD sync it ends with (overlay/firstboot)."""
    res = cluster.storage.drbd.resource
    return Procedure(
        "first-boot", "First boot and the initial sync",
        f"After the install both nodes bring the cluster up by themselves (the first-boot service). {a.name} "
        f"(lowest nodeid) starts the initial DRBD sync of {res} to {b.name}; on a large disk it takes hours. "
        f"Until its disk is UpToDate, {b.name} does not start rgmanager, so no VM starts on a disk still being "
        "synced: its firstboot waits (bounded by AN_FIRSTBOOT_SYNC_TIMEOUT, a day by default; the service "
        "tries again after a timeout) and says so in its status.",
        (
            Step(b.name, ("cat /proc/drbd", f"drbdadm dstate {res}"),
                 f"SyncTarget with its progress while the sync runs; done when {res} is UpToDate/UpToDate"),
        ),
        warning=f"While the initial sync runs, {b.name} has no complete copy of its own: do not fence, reboot "
                f"or power off {a.name} until `drbdadm dstate {res}` on {b.name} says UpToDate/UpToDate.")


def procedures(cluster: Cluster) -> list[Procedure]:
    nodes = sorted(cluster.nodes, key=lambda n: n.nodeid)
    a, b = nodes[0], nodes[1]
    st = cluster.storage
    res = st.drbd.resource
    on = [s for s in _running_services(cluster) if s.enabled]
    stop_order = [s.name for s in reversed(on)]
    out: list[Procedure] = []

    out.append(Procedure("status", "Check the cluster's status",
                         "Run on either node. Both nodes must be members, DRBD Connected and UpToDate/UpToDate, "
                         f"Primary/Primary (dual-primary), the VG {st.clvm.vg} visible and {st.gfs2.mount} mounted.",
                         (Step("any node", ("clustat", "cman_tool nodes", "cat /proc/drbd", f"drbdadm cstate {res}",
                                            f"drbdadm dstate {res}", f"vgs {st.clvm.vg}", f"lvs {st.clvm.vg}",
                                            f"df -h {st.gfs2.mount}")),)))

    out.append(_first_boot(cluster, a, b))

    fence_steps = []
    for n in nodes:
        peer = cluster.peer(n)
        devs = ", ".join(f"{cluster.fence_device(f.device).name} ({cluster.fence_device(f.device).agent} at "
                         f"{cluster.fence_device(f.device).ipaddr}{', port ' + f.port if f.port else ''})"
                         for f in peer.fence)
        fence_steps.append(Step(n.name, (f"fence_node {peer.fqdn}",),
                                f"{peer.name} must power off and reboot via {devs}; watch "
                                f"`tail -f /var/log/messages` on {n.name}, wait until {peer.name} has rejoined "
                                f"(clustat) and DRBD is UpToDate/UpToDate before the next step."))
    out.append(Procedure("fencing", "Test fencing",
                         "Do this before the cluster carries anything you care about, and after any change to "
                         "fencing. Each node fences the other once.", tuple(fence_steps),
                         warning="A failed fence blocks the cluster (DLM, GFS2, clvmd) until it succeeds: "
                                 "that is intended."))

    # With xend relocation off a migration is refused: a VM moves by stopping here and starting there.
    relocation = cluster.xen.relocation.enabled
    flag = "-M" if relocation else "-r"
    mig_steps = []
    for vm in cluster.vms:
        pref = cluster.node(vm.prefer)
        other = cluster.peer(pref)
        if relocation:
            mode = "live (the VM keeps running)" if vm.migrate == "live" else "paused while its memory is copied"
        else:
            mode = "a restart (relocation is off, the VM is shut down and booted on the other node)"
        mig_steps.append(Step("any node", (f"clusvcadm {flag} vm:{vm.name} -m {other.fqdn}", "clustat",
                                           f"clusvcadm {flag} vm:{vm.name} -m {pref.fqdn}"),
                              f"vm:{vm.name} prefers {pref.name}; a move is {mode}. Check after the move: "
                              f"clustat shows vm:{vm.name} started on {other.name}, `xm list` lists {vm.name} on "
                              f"{other.name} only, the guest still answers on its network ({vm.bridge}) and its "
                              f"console shows no reboot. The second command moves it back."))
    if not mig_steps:
        mig_steps.append(Step("any node", (f"clusvcadm {flag} vm:<name> -m <target node fqdn>",),
                              "this cluster defines no VMs yet"))
    if relocation:
        out.append(Procedure("migration", "Live-migrate a VM", "Migration runs over the BCN "
                             f"(xend relocation port {cluster.xen.relocation.port}).", tuple(mig_steps)))
    else:
        out.append(Procedure("migration", "Move a VM to the other node", "xen.relocation.enabled is false: xend "
                             "refuses migrations, so rgmanager moves a VM by stopping it and starting it on the other "
                             "node (clusvcadm -r). Enable relocation in the definition for live migration.",
                             tuple(mig_steps)))

    shut = []
    for n in nodes:
        peer = cluster.peer(n)
        moves = tuple(f"clusvcadm {flag} vm:{vm.name} -m {peer.fqdn}" for vm in cluster.vms)
        shut.append(Step(n.name, ("clustat",) + moves + ("clustat",) + tuple(f"/etc/init.d/{s} stop" for s in stop_order)
                         + ("poweroff",),
                         f"to shut down {n.name}: move each VM that clustat shows on {n.name} to {peer.name} "
                         f"(skip the others), then stop the cluster stack in reverse start order. {peer.name} keeps "
                         f"running alone (two-node mode). Start {n.name} again by powering it on; check status."))
    out.append(Procedure("shutdown", "Planned shutdown of one node", "Never power a node off with the cluster "
                         "stack running: its peer would fence it.", tuple(shut)))

    keep, discard = a, b
    above = [s for s in stop_order if s in ("rgmanager", "xendomains", "gfs2", "clvmd")]
    out.append(Procedure(
        "split-brain", "Recover from a DRBD split brain",
        f"Symptom: `cat /proc/drbd` shows {res} StandAlone (or WFConnection) and the nodes will not connect; the "
        f"kernel log says \"Split-Brain detected\". Decide which node holds the data you trust (the one that ran "
        f"the VMs most recently). Below, {keep.name} is kept and {discard.name}'s changes since the split are "
        f"DISCARDED; if you trust {discard.name} instead, swap the two names in every step.",
        (
            Step(discard.name, tuple(f"/etc/init.d/{s} stop" for s in above) or ("clustat",),
                 f"stop everything on {discard.name} that uses {st.drbd.device} (VMs, GFS2, clvmd); "
                 f"{keep.name} keeps running"),
            Step(discard.name, (f"dd if={st.backing_device} of=/path/to/backup/{cluster.name}-{res}-{discard.name}.img "
                                "bs=1M",),
                 f"BACKUP FIRST: copy {discard.name}'s DRBD backing device {st.backing_device} to storage of at "
                 "least its size (pipe through gzip if short of space). It is the only copy of what the next "
                 "step throws away."),
            Step(discard.name, (f"drbdadm secondary {res}", f"drbdadm -- --discard-my-data connect {res}"),
                 f"{discard.name}'s changes are discarded here; it resyncs from {keep.name}"),
            Step(keep.name, (f"drbdadm connect {res}", "cat /proc/drbd"),
                 f"only needed if {keep.name} is StandAlone; then {keep.name} is SyncSource/UpToDate and "
                 f"{discard.name} SyncTarget/Inconsistent. If not, stop and investigate"),
            Step(discard.name, (f"drbdadm primary {res}",) + tuple(f"/etc/init.d/{s} start" for s in reversed(above)),
                 "dual-primary again; bring the stack back up"),
        ),
        warning=f"While the resync runs, {discard.name} has no good copy of its own: if {keep.name} fails or is "
                f"fenced now, {discard.name} loses access to {st.drbd.device}."))

    out += [vm_procedure(cluster, vm) for vm in cluster.vms]

    nxt = cluster.config_version + 1
    vm_example = cluster.vms[0] if cluster.vms else None
    bridge = vm_example.bridge if vm_example else (cluster.xen.bridges[0] if cluster.xen.bridges else "ifn")
    out.append(Procedure(
        "add-vm", "Add a VM",
        f"VMs are part of the definition ({cluster.source.name}, list vms), so cluster.conf, the failover "
        "domains and the runbook stay in step.",
        (
            Step("your workstation", (f"$EDITOR {cluster.source.name}",),
                 f"add an entry under vms: (name, memory, vcpus, disk, bridge: {bridge}, prefer: {a.name}), set "
                 f"cluster.config_version to {nxt}"),
            Step("your workstation", (f"invoke check --cluster {cluster.source.name}",
                                      f"invoke render --cluster {cluster.source.name}"),
                 "then copy build/nodes/<node>/etc/cluster/cluster.conf to /etc/cluster/ on both nodes"),
            Step(a.name, (f"lvcreate -L <disk size> -n <vm name> {st.clvm.vg}",),
                 f"one node is enough: the VG {st.clvm.vg} is clustered"),
            Step(a.name, (f"xm create {st.gfs2.mount}/domU_config/<vm name>",),
                 f"install the guest with its config in {st.gfs2.mount}/domU_config/, then shut it down"),
            Step(a.name, (f"cman_tool version -r {nxt}", f"clusvcadm -e vm:<vm name> -m {a.fqdn}", "clustat"),
                 f"activate cluster.conf version {nxt} on both nodes, then let rgmanager start the VM"),
        )))
    provision = provision_vm(cluster)
    if provision:
        out.append(provision)
    return out


def _cold_start(cluster: Cluster) -> str:
    """How a VM with its config on the GFS2 mount starts when the whole cluster starts."""
    if cluster.storage.managed_by == "rgmanager":
        return ("on a cold start the last resource of each node's storage service (an-vm-start) enables it "
                "again, once the GFS2 mount is up, on its preferred node (on the other if that one is not a member)")
    return "it stays autostart=\"0\" until the definition ships the config"


def provision_vm(cluster: Cluster) -> Procedure | None:
    """VMs defined without a domU config (no vms[].config_file) are in cluster.conf with autostart="0":
    rgmanager would mark them failed at once (vm.sh finds no config). How to give each one a guest."""
    from .render import bridge_name

    st = cluster.storage
    rgmanager = st.managed_by == "rgmanager"
    todo = [vm for vm in cluster.vms if not vm.autostart and vm.install is None]  # 95-vms provisions the rest
    if not todo:
        return None
    steps = []
    for vm in todo:
        pref = cluster.node(vm.prefer)
        cfg = f"{st.gfs2.mount}/domU_config/{vm.name}"
        lv = f"/dev/{st.clvm.vg}/{vm.name}"
        steps.append(Step(pref.name, (f"$EDITOR {cfg}",),
                          f"write {vm.name}'s xm config: name = \"{vm.name}\", memory = {vm.memory_mib}, vcpus = "
                          f"{vm.vcpus}, disk = ['phy:{lv},xvda,w'], vif = ['bridge={bridge_name(cluster, vm.bridge)}'], "
                          "plus how it boots (an installer kernel/ramdisk for the first boot, then bootloader = "
                          "\"/usr/bin/pygrub\")"))
        steps.append(Step(pref.name, (f"xm create {cfg}", f"xm console {vm.name}"),
                          f"install the guest into {lv} (first boot from the installer); when it is installed and "
                          f"boots from its disk, shut it down (xm shutdown {vm.name})"))
        steps.append(Step(pref.name, (f"clusvcadm -e vm:{vm.name} -m {pref.fqdn}", "clustat"),
                          f"rgmanager starts vm:{vm.name} now; {_cold_start(cluster)}"))
    steps.append(Step("your workstation", (f"$EDITOR {cluster.source.name}",),
                      f"copy each finished config beside the definition and name it in vms[].config_file, set "
                      f"cluster.config_version to {cluster.config_version + 1}, then render and activate cluster.conf "
                      "as in \"Add a VM\": a reinstalled cluster then has the configs too"
                      + ("" if rgmanager else " and starts the VMs with the cluster (autostart=\"1\")")))
    return Procedure(
        "provision-vm", "Provision a VM that has no config yet",
        f"{', '.join(vm.name for vm in todo)}: the definition ships no domU config, so cluster.conf defines "
        f"{'it' if len(todo) == 1 else 'them'} with autostart=\"0\" and "
        f"{'the storage service does not enable' if rgmanager else 'rgmanager does not start'} "
        f"{'it' if len(todo) == 1 else 'them'} (vm.sh runs `xm create --path={st.gfs2.mount}/domU_config <name>`, "
        "which needs the file). The disk LV exists (first boot made it) and is empty.",
        tuple(steps))


def vm_procedure(cluster: Cluster, vm) -> Procedure:
    """One VM: its console, a config change moved to the shared filesystem, reprovisioning.
    rgmanager's vm.sh (3.0.12) starts vm:<name> from <path>/<name>.xml with virsh, from <path>/<name>
    (an xm config) with xm, so that file is the VM's configuration on both nodes."""
    st = cluster.storage
    conf_dir = f"{st.gfs2.mount}/domU_config"
    lv = f"/dev/{st.clvm.vg}/{vm.name}"
    low = cluster.lowest_node
    hvm = vm.install is not None and vm.install.method == "hvm"
    conf = f"{conf_dir}/{vm.name}" if hvm else f"{conf_dir}/{vm.name}.xml"
    console = (Step("the node clustat names as owner", ("clustat", f"virsh -c xen:/// vncdisplay {vm.name}"),
                    f"{vm.name} is an HVM guest: its console is VNC on that node (display :N = port 5900+N); "
                    "reach it over ssh: `ssh -L 5900+N:localhost:5900+N root@<node>`, then a VNC viewer on "
                    "localhost")
               if hvm else
               Step("the node clustat names as owner", ("clustat", f"xm console {vm.name}"),
                    f"the PV console of {vm.name}; leave it with Ctrl-]"))
    if hvm:
        change = Step("any node", (f"$EDITOR {conf}", f"clusvcadm -R vm:{vm.name}"),
                      f"the xm config on the shared filesystem is the only one: edit it (after the install, drop the "
                      f"ISO from disk= and boot from c), then restart vm:{vm.name} so xm reads it")
    else:
        change = Step("the node clustat names as owner",
                      (f"virsh -c xen:/// dumpxml {vm.name} > {conf}.new", f"mv {conf}.new {conf}",
                       f"clusvcadm -R vm:{vm.name}"),
                      f"after changing {vm.name} with virsh/virt-manager on the node that runs it (seed: 'Syncing "
                      f"domU Configuration'): rgmanager starts it from {conf}, so save the new XML there, or the "
                      "change is lost at the next start or on the other node; the restart applies it")
    if vm.install is None:
        redo_note = (f"{vm.name} has no vms[].install: provision it by hand (virt-install --disk path={lv} ...), "
                     f"then save its config to {conf} and `clusvcadm -e vm:{vm.name}`")
    else:
        redo_note = (f"then on {low.name} (the lowest nodeid, which provisions VMs) step 95-vms installs {vm.name} "
                     f"again from the definition, saves {conf} and hands it to rgmanager")
    redo = (
        Step("any node", (f"clusvcadm -d vm:{vm.name}", f"mv {conf} {conf}.old"),
             f"stop the VM and put its old config aside"),
        Step(low.name, (f"dd if={lv} of=/path/to/backup/{vm.name}.img bs=1M", f"dd if=/dev/zero of={lv} bs=1M count=1",
                        f"virsh -c xen:/// undefine {vm.name}"),
             f"BACKUP FIRST: the next step clears the guest's partition table on {lv} (the step refuses to install "
             "over an LV that carries data) and forgets the old domain"),
        Step(low.name, (f"rm -f /var/lib/an-cluster/firstboot/intent/vm-{vm.name} "
                        f"/var/lib/an-cluster/firstboot/intent/vm-{vm.name}.installed "
                        f"/var/lib/an-cluster/firstboot/virt-install.{vm.name}.out",
                        "an-cluster-firstboot reset 95-vms", "an-cluster-firstboot run"), redo_note),
    )
    return Procedure(f"vm-{vm.name}", f"VM {vm.name}: console, config change, reprovision",
                     f"{vm.name} runs as rgmanager service vm:{vm.name} from {conf}; its disk is {lv}. "
                     f"`cat {st.gfs2.mount}/.an-cluster/vms/{vm.name}` says how first boot left it.",
                     (console, change) + redo,
                     warning=f"Reprovisioning erases {vm.name}'s disk.")


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def context(cluster: Cluster) -> dict:
    nodes = sorted(cluster.nodes, key=lambda n: n.nodeid)
    networks = []
    for name in NETWORK_NAMES:
        nw = cluster.networks[name]
        networks.append({"name": name, "role": NET_ROLES[name], "interface": nw.interface,
                         "subnet": str(nw.subnet), "mtu": nw.mtu or 1500,
                         "gateway": str(nw.gateway) if nw.gateway else "",
                         "dns": ", ".join(str(d) for d in nw.dns)})
    node_rows = []
    for n in nodes:
        node_rows.append({
            "name": n.name, "fqdn": n.fqdn, "nodeid": n.nodeid,
            "ip": {net: str(n.ip.get(net, "")) for net in NETWORK_NAMES},
            "mac": {net: n.mac.get(cluster.networks[net].interface, "") for net in NETWORK_NAMES},
            "fence": [f"{f.method}: {f.device}" + (f" port {f.port}" if f.port else "") for f in n.fence],
        })
    fence_devices = [{"name": d.name, "agent": d.agent, "ipaddr": d.ipaddr} for d in cluster.fence_devices]
    sm = storage_map(cluster)
    services = [{"name": s.name, "enabled": s.enabled, "start": s.start, "stop": s.stop,
                 "after": ", ".join(r for r in s.required_start if not r.startswith("$")) or "-"}
                for s in _running_services(cluster)]
    vms = [{"name": v.name, "memory": v.memory, "vcpus": v.vcpus, "disk": v.disk, "bridge": v.bridge,
            "prefer": v.prefer, "migrate": v.migrate} for v in cluster.vms]
    return {
        "cluster": {"name": cluster.name, "domain": cluster.domain, "config_version": cluster.config_version,
                    "timezone": cluster.timezone, "release": cluster.release, "source": cluster.source.name,
                    "rrp_mode": cluster.totem.rrp_mode, "managed_by": cluster.storage.managed_by},
        "networks": networks, "nodes": node_rows, "fence_devices": fence_devices, "storage": sm,
        "drbd": {"resource": cluster.storage.drbd.resource, "device": cluster.storage.drbd.device,
                 "port": cluster.storage.drbd.port, "protocol": cluster.storage.drbd.protocol,
                 "sync_rate": cluster.storage.drbd.sync_rate},
        "xen": {"version": cluster.xen.version, "dom0_kernel": cluster.xen.dom0_kernel,
                "dom0_mem": cluster.xen.dom0_mem},
        "services": services, "vms": vms, "procedures": procedures(cluster),
    }


def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             autoescape=autoescape, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["mdcell"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    return env


def render_runbook(cluster: Cluster) -> dict[str, str]:
    """{file name: content} of the runbook."""
    ctx = context(cluster)
    svg = storage_svg(ctx["storage"])
    try:
        # the SVG is built by storage_svg() with every text escaped: safe to embed as markup
        html = _env(True).get_template("index.html.j2").render(**ctx, storage_svg=Markup(svg))
        md = _env(False).get_template("index.md.j2").render(**ctx)
    except jinja2.TemplateError as err:
        raise IsobuildError(f"runbook template error: {err}", hint=f"templates are in {TEMPLATES}") from None
    return {"index.html": html, "index.md": md, "storage.svg": svg}


def build_runbook(cluster: Cluster, build_dir: Path) -> Path:
    files = render_runbook(cluster)
    for name, text in files.items():
        for what, value in cluster.secrets().items():
            if value in text:
                raise IsobuildError(f"runbook {name} would contain the {what}", hint="a template leaks a secret")
    target = Path(build_dir) / "runbook"
    with atomic_dir(target) as tmp:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
            (tmp / name).chmod(0o644)  # not the umask's
    return target
