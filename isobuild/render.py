"""Render the kickstarts and every per-node config file from the validated model.

Layout of a render (all of it appears at once: temp dir, then rename over the previous one):

    DIR/kickstart/<node>.ks          DVD install kickstart (0600: root password hash, authorized keys)
    DIR/nodes/<node>/<path on node>  etc/hosts, etc/cluster/cluster.conf (0600), etc/drbd.d/<res>.res, ...
    DIR/model.json                   the validated model, secrets redacted
    DIR/.render-stamp                the stamp (stamps.Stamps): sha256 of the inputs (definition, secrets,
                                     templates, code) and of the three outputs, by content

The per-node files are the rows of isobuild/nodefiles.py (path, template, mode, secret, when): a
`*.j2` under kickstart/node/ renders to nodes/<node>/<same relative path without .j2>, with context
`cluster`, `node`, `peer` (plus the helpers in `_context`); files whose *name* depends on the
definition (ifcfg-<interface>, <drbd resource>.res) take their template from kickstart/files/.
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from . import initorder, nodefiles, paths
from .errors import IsobuildError
from .model import NETWORK_NAMES, RENDEZVOUS_PORT, Cluster, FenceDevice, Node, model_json
from .outputs import make_dir, os_error, swap_in, sweep, work_dir
from .stamps import Stamps, code_digest

TEMPLATE_DIR = paths.KICKSTART
STAGE = "render"  # its stamp: build/.render-stamp (stamps.STAMP_FILES)
OUTPUTS = ("kickstart", "nodes", "model.json")

# Seconds the higher nodeid's DRBD fence-peer handler waits before fencing (drbd-resource.res.j2).
FENCE_PEER_DELAY = 10


@dataclass(frozen=True)
class Media:
    """Where anaconda finds the install tree and our repo: the DVD, an HTTP base (PXE), or the
    remastered DVD image as a file on a USB stick (kind "hd", `iso` = its path on the stick)."""

    kind: str  # "cdrom" | "url" | "hd"
    base: str | None = None
    iso: str | None = None

    @classmethod
    def cdrom(cls) -> "Media":
        return cls("cdrom")

    @classmethod
    def url(cls, base: str) -> "Media":
        base = base.rstrip("/")
        if not base.startswith(("http://", "https://", "ftp://")):
            raise IsobuildError(f"install media URL {base!r} is not http://, https:// or ftp://",
                                hint="e.g. http://192.168.1.10:8080")
        return cls("url", base)

    @classmethod
    def hd(cls, iso: str) -> "Media":
        """The stick (isobuild/usb.py): the boot entry's repo=hd:LABEL=..:<dir> names the source, so
        the kickstart has no install-method line (anaconda 13.42's `cdrom` would only look at CD drives)."""
        if not iso.startswith("/") or ":" in iso:
            raise IsobuildError(f"ISO path on the stick {iso!r} must be absolute and have no ':'")
        return cls("hd", iso=iso)

    @property
    def repo_url(self) -> str:
        # cdrom and hd: anaconda mounts the disc (hd: loop-mounts the ISO file) on /mnt/source
        return f"{self.base}/an-cluster" if self.kind == "url" else "file:///mnt/source/an-cluster"

    @property
    def install_line(self) -> str:
        if self.kind == "hd":
            return "# install source: repo=hd: on the USB stick's boot entry (no install-method line)"
        return "cdrom" if self.kind == "cdrom" else f"url --url={self.base}/os"


@dataclass
class Rendered:
    build_dir: Path
    kickstarts: dict[str, Path] = field(default_factory=dict)
    nodes_dir: Path = Path()
    files: list[Path] = field(default_factory=list)
    model_json: Path = Path()
    up_to_date: bool = False
    digest: str = ""  # inputs_digest() of this render: the stage input "render" of pxe and release


# ---------------------------------------------------------------------------------------------
# Derived values the templates use (kept here so templates stay declarative)
# ---------------------------------------------------------------------------------------------


def bridge_name(cluster: Cluster, net: str) -> str:
    """The Xen bridge for a network. As in the seed, network-bridge renames ethN to pethN and names
    the bridge after the NIC (bridge=ethN), so dom0 keeps its address and a VM on `ifn` uses eth2."""
    return cluster.networks[net].interface


def drbd_km_package(dom0_kernel: str) -> str:
    """drbd-km's package name embeds the kernel: 2.6.32.23-170.x.fc13 -> drbd-km-2.6.32.23_170.x.fc13.x86_64."""
    return f"drbd-km-{dom0_kernel.replace('-', '_')}.x86_64"


def stack_rpms(cluster: Cluster) -> list[str]:
    """What %post checks with `rpm -q` before it writes the Xen boot entry: the dom0 kernel, Xen and
    drbd-km, as name-version-release (matches whatever Epoch our kernel gets) or, for drbd-km, its
    kernel-specific name. anaconda 13 may install another kernel than %packages asks for (it adds
    the newest `kernel` it sees) and ignores a failed transaction check."""
    xen_vr = cluster.xen.hypervisor_rpm[len("xen-"):]
    return [f"kernel-{cluster.xen.dom0_kernel}", cluster.xen.hypervisor_rpm, f"xen-hypervisor-{xen_vr}",
            drbd_km_package(cluster.xen.dom0_kernel)]


@dataclass(frozen=True)
class KsPart:
    """One kickstart partition request (or RAID member set) for the layout."""

    mount: str  # /boot, swap, /, ... ("" for the DRBD backing space)
    size_mib: int | None  # None: grow into the rest of the disk
    members: tuple[tuple[str, str], ...]  # (raid.NN or mount, disk)
    md: str | None  # md device for RAID1, None for plain partitions
    fstype: str | None


def disk_layout(cluster: Cluster) -> list[KsPart]:
    """Partitions in definition order, then the DRBD backing space taking the rest (never formatted)."""
    inst = cluster.install
    out: list[KsPart] = []
    n = len(inst.partitions)
    for i, p in enumerate(inst.partitions):
        fstype = "swap" if p.mount == "swap" else "ext4"
        if inst.raid:
            members = tuple((f"raid.{d + 1}{i + 1:02d}", disk) for d, disk in enumerate(inst.disks))
            out.append(KsPart(p.mount, p.size_mib, members, f"md{i}", fstype))
        else:
            out.append(KsPart(p.mount, p.size_mib, ((p.mount, inst.disks[0]),), None, fstype))
    # The backing space: RAID members with no `raid` line (anaconda would format an md it creates);
    # %post assembles them into storage.backing_device. One disk: a raid-type partition with no
    # filesystem, which DRBD takes as it is.
    members = tuple((f"raid.{d + 1}{n + 1:02d}", disk) for d, disk in enumerate(inst.disks))
    out.append(KsPart("", None, members, None, None))
    return out


def xen_serial_args(console: str | None) -> str:
    """Xen's own serial console for `install.console: ttySN[,baud[n8]]`: ttyS0 is Xen's com1, ttyS1
    com2 (Xen 4.0 knows no more); the baud defaults to Linux's 9600. Empty for a VGA console."""
    m = re.match(r"^ttyS(\d+)(?:,(\d+))?", console or "")
    if not m or int(m[1]) > 1:
        return ""
    com = f"com{int(m[1]) + 1}"
    return f" {com}={m[2] or 9600},8n1 console={com},vga"


# The node's firewall is what lokkit writes (system-config-firewall-base 1.2.27,
# fw_iptables.iptablesClass.write) from the kickstart `firewall --port=` list plus one custom rules
# file: anaconda 13 runs lokkit before %post (firewall.py Firewall.write), %post installs the rendered
# /etc/sysconfig/iptables and records the custom file in /etc/sysconfig/system-config-firewall, so
# a later lokkit or system-config-firewall run writes the same rules again. lokkit's --port takes
# tcp and udp only (fw_parser._check_port); every other rule must have a custom-file form.
LOKKIT_PORT_PROTOS = ("tcp", "udp")
CUSTOM_RULES = "etc/sysconfig/iptables.an-cluster"  # --custom-rules=ipv4:filter:/<this>
CUSTOM_RULE_FORMS = {
    "sctp": "-A INPUT -p sctp -m sctp --dport {port} -j ACCEPT",
    "igmp": "-A INPUT -p igmp -j ACCEPT",
}


def firewall_rules(cluster: Cluster) -> list[tuple[str, int | None, str]]:
    """(protocol, port or None, what) for every INPUT rule the cluster needs: corosync is udp and its
    multicast needs IGMP; dlm_controld uses SCTP when totem has rrp_mode != none (cluster 3.0.12
    group/dlm_controld/action.c detect_protocol), TCP otherwise."""
    rules: list[tuple[str, int | None, str]] = [("igmp", None, "corosync/cman multicast membership")]
    for port, what in sorted(cluster.ports_in_use().items()):
        if port in (5404, 5405):
            rules.append(("udp", port, what))
            continue
        rules.append(("tcp", port, what))
        if port == 21064 and cluster.totem.rrp_mode != "none":
            rules.append(("sctp", port, what + " (sctp with redundant rings)"))
    return rules


def split_firewall(rules: list[tuple[str, int | None, str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """(kickstart/lokkit --port items, [(what, custom-file rule)]); a rule neither can carry is an error."""
    ports: list[str] = []
    custom: list[tuple[str, str]] = []
    for proto, port, what in rules:
        if proto in LOKKIT_PORT_PROTOS and port is not None:
            ports.append(f"{port}:{proto}")
        elif proto in CUSTOM_RULE_FORMS:
            custom.append((what, CUSTOM_RULE_FORMS[proto].format(port=port)))
        else:
            raise IsobuildError(
                f"firewall rule {proto} {port if port is not None else ''} ({what}) can be expressed neither by "
                "the kickstart `firewall --port=` line (tcp/udp only) nor by the custom rules file",
                hint=f"add a form for {proto!r} to render.CUSTOM_RULE_FORMS or set install.firewall: off")
    return ports, custom


# Node Assassin 1.1 drives 4 nodes (fence-agents v3.1.0 fence_na.conf.in `na::1::max_nodes = 4`).
NA_MAX_NODES = 4


def fence_na_table(cluster: Cluster) -> list[tuple[FenceDevice, int, list[tuple[int, str]]]]:
    """(device, max_nodes, [(port, node fqdn)]) for every fence_na device, for fence_na.conf."""
    out = []
    for d in cluster.fence_devices:
        if d.agent != "fence_na":
            continue
        aliases = sorted((int(f.port), n.fqdn) for n in cluster.nodes for f in n.fence
                         if f.device == d.name and f.port is not None)
        out.append((d, max([NA_MAX_NODES] + [p for p, _ in aliases]), aliases))
    return out


def _context(cluster: Cluster, node: Node, media: Media | None = None) -> dict:
    peer = cluster.peer(node)
    ks_ports, custom_rules = split_firewall(firewall_rules(cluster))
    return {
        "cluster": cluster,
        "node": node,
        "peer": peer,
        "media": media or Media.cdrom(),
        "nodes": sorted(cluster.nodes, key=lambda n: n.nodeid),
        "net_names": NETWORK_NAMES,
        "bridge_name": lambda net: bridge_name(cluster, net),
        "layout": disk_layout(cluster),
        "drbd_km": drbd_km_package(cluster.xen.dom0_kernel),
        "stack_rpms": stack_rpms(cluster),
        "init_services": initorder.services(cluster.storage.managed_by),
        "init_order": initorder.init_order_file(cluster.storage.managed_by),
        "ks_port_list": ks_ports,
        "custom_rules": custom_rules,
        "custom_rules_path": "/" + CUSTOM_RULES,
        "ks_ports": ",".join(ks_ports),
        "rendezvous_port": RENDEZVOUS_PORT,
        "rrp": cluster.totem.rrp_mode != "none",
        "fence_delay": FENCE_PEER_DELAY,
        "xen_serial": xen_serial_args(cluster.install.console),
        "secret_files": sorted(nodefiles.secret_paths(cluster)),
        "fence_na": fence_na_table(cluster),
        "post_installs": [f.rel for f in nodefiles.planned(cluster) if f.row.post_install],
    }


def _is_ipv4(value: object) -> bool:
    try:
        ipaddress.IPv4Address(str(value))
        return True
    except ValueError:
        return False


def make_env(template_dir: Path = TEMPLATE_DIR) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["shquote"] = lambda s: shlex.quote(str(s))
    env.filters["xml"] = lambda s: (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                                    .replace('"', "&quot;"))
    env.tests["ipv4"] = _is_ipv4
    env.filters["onoff"] = lambda b: "on" if b else "off"
    env.filters["yesno"] = lambda b: "yes" if b else "no"
    return env


def _render(env: jinja2.Environment, name: str, ctx: dict) -> str:
    try:
        return env.get_template(name).render(**ctx)
    except jinja2.TemplateSyntaxError as err:
        raise IsobuildError(f"{err.filename or name}:{err.lineno}: template syntax error: {err.message}") from None
    except jinja2.UndefinedError as err:
        raise IsobuildError(f"kickstart/{name}: template uses an undefined value: {err.message}",
                            hint="a template names a model attribute that does not exist") from None
    except jinja2.TemplateError as err:
        raise IsobuildError(f"kickstart/{name}: template error: {err}") from None


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def render_kickstart(cluster: Cluster, node: Node, media: Media | None = None,
                     template_dir: Path = TEMPLATE_DIR) -> str:
    """The kickstart for one node; Media.cdrom() (default) for the DVD, Media.url(base) for PXE."""
    ctx = _context(cluster, node, media)
    ctx["node_paths"] = node_paths(cluster, node)
    return _render(make_env(template_dir), "node.ks.j2", ctx)


def node_paths(cluster: Cluster, node: Node) -> list[str]:
    """The paths (relative to /) of every per-node file, without rendering them."""
    return sorted(f.rel for f in nodefiles.planned(cluster))


def node_files(cluster: Cluster, node: Node, template_dir: Path = TEMPLATE_DIR) -> dict[str, str]:
    """{path on the node (relative, no leading /): content} for one node: a file per nodefiles row."""
    stray = nodefiles.unregistered_templates(template_dir)
    if stray:
        raise IsobuildError(f"kickstart/{nodefiles.NODE_TEMPLATES}/{stray[0]} has no row in the node files registry",
                            hint="add a NodeFile row (mode, secret, checker, when) to isobuild/nodefiles.py")
    env = make_env(template_dir)
    ctx = _context(cluster, node)
    return {f.rel: _render(env, f.template, {**ctx, **f.context}) for f in nodefiles.planned(cluster)}


def inputs_digest(cluster: Cluster, template_dir: Path = TEMPLATE_DIR) -> str:
    """Hash of everything a render depends on: the definition + secrets, the templates, the code (stamps.code_digest)."""
    h = hashlib.sha256()
    h.update(cluster.digest.encode())
    for p in sorted(Path(template_dir).rglob("*")):
        if p.is_file():
            h.update(p.relative_to(template_dir).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    h.update(code_digest(__name__).encode())
    return h.hexdigest()


def render(cluster: Cluster, build_dir: Path, template_dir: Path = TEMPLATE_DIR,
           force: bool = False) -> Rendered:
    """Render everything into build_dir/{kickstart,nodes,model.json}, atomically.

    The three outputs are built in one temp dir (build_dir/.render.tmp-*) and then swapped in; a
    failure anywhere leaves the previous render untouched. An unchanged re-render is a no-op.
    """
    build_dir = Path(build_dir)
    digest = inputs_digest(cluster, template_dir)
    out = Rendered(build_dir, nodes_dir=build_dir / "nodes", model_json=build_dir / "model.json", digest=digest)
    for n in cluster.nodes:
        out.kickstarts[n.name] = build_dir / "kickstart" / f"{n.name}.ks"

    try:
        sweep(build_dir, [WORK])  # what killed renders left (kickstarts with the root password hash)
    except OSError as err:
        raise os_error(err, "render: cannot remove the leftovers of an interrupted render", build_dir) from None
    stamps, inputs = Stamps(build_dir), {"render": digest}
    if not force and stamps.check(STAGE, inputs, [build_dir / name for name in OUTPUTS]).up_to_date:
        out.files = _listing(out)
        out.up_to_date = True
        return out

    # Render to memory first: template errors surface before anything touches the disk.
    contents: dict[str, tuple[str, int]] = {}
    modes = {f.rel: f.row.mode for f in nodefiles.planned(cluster)}
    for n in cluster.nodes:
        contents[f"kickstart/{n.name}.ks"] = (render_kickstart(cluster, n, Media.cdrom(), template_dir), 0o600)
        for rel, text in node_files(cluster, n, template_dir).items():
            contents[f"nodes/{n.name}/{rel}"] = (text, modes[rel])
    contents["model.json"] = (model_json(cluster), 0o644)

    try:
        _write(build_dir, contents, stamps, inputs)
    except OSError as err:
        raise os_error(err, f"render: cannot write the render into {build_dir}", build_dir) from None
    out.files = _listing(out)
    return out


WORK = "render"  # build/.render.tmp-<pid>-*: a render being written; .render.old-<pid>-*: the one it replaces


def _write(build_dir: Path, contents: dict[str, tuple[str, int]], stamps: Stamps, inputs: dict[str, str]) -> None:
    """Write the render into a private temp dir, then swap its entries in with the stamp (Stamps.publishing):
    other stages' outputs in build_dir (rpms, iso, ...) are never touched."""
    with work_dir(build_dir, WORK) as tmp:  # 0700: secrets
        for rel, (text, mode) in sorted(contents.items()):
            p = tmp / rel
            make_dir(p.parent)  # 0755 whatever the umask (the disc and its digest carry these modes)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            os.chmod(p, mode)  # umask-proof
        # by content: two renders of the same inputs leave byte-identical build dirs, stamp included
        with stamps.publishing(STAGE, inputs, by_content=True) as pub:
            pub.replacing()
            swap_in(tmp, build_dir, OUTPUTS, WORK)
            for name in OUTPUTS:
                pub.record(build_dir / name)


def _listing(out: Rendered) -> list[Path]:
    files = [out.model_json] + sorted(out.kickstarts.values())
    files += sorted(p for p in out.nodes_dir.rglob("*") if p.is_file())
    return files
