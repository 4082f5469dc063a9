"""The PXE stage: a TFTP tree, an HTTP tree and DHCP data for network installs of the nodes.

`build_pxe()` writes DIR/pxe/ atomically, also for `invoke serve` reading it meanwhile: DIR/pxe is a
symlink to a complete generation (DIR/.pxe.generations/g<n>/), swapped by one rename; the previous
generation stays until the next build, so a request that resolved it still finishes.

    tftp/pxelinux.0, ldlinux.c32, menu.c32 (+ the modules it needs)   Debian's pxelinux/syslinux-common
    tftp/<release>/vmlinuz, initrd.img                                the base's images/pxeboot/
    tftp/pxelinux.cfg/default                                         menu: local disk (timeout default) + every node
    tftp/pxelinux.cfg/01-<mac>                                        per bcn MAC: local disk (default) + that node
    http/os                                                           the install tree, served in place (see below)
    http/ks/<node>.ks                                                 network-install kickstarts (render_kickstart)
    http/an-cluster/                                                  the an-cluster yum repo (hard links)
    http/an-cluster/nodes/<node>/<path>                               per-node files without secrets
    http/private/<node>/<path>                                        per-node files with secrets (cluster.conf)
    serve.json                                                        what `invoke serve` needs: ACL + install tree
    dnsmasq.conf                                                      DHCP/TFTP for the BCN (Cobbler sites: isobuild/cobbler.py)
    nginx.conf                                                        the HTTP tree + ACL for your own nginx

The install tree is never copied: with --base DIR, http/os is a symlink to DIR; with --base ISO,
`invoke serve` reads http/os/* straight out of the image (serve.json names it) and a web server of
your own serves a loop mount of it (docs/pxe.md).

Safety rules: every timeout default boots the local disk (`localboot 0`): a node that PXE-boots by
accident never wipes itself. Kickstarts carry the hashed root password (anaconda needs it) but never
a fence password; files with fence passwords sit under private/<node>/ and serve.json lets only that
node's own addresses (from the definition) fetch them, and the node's kickstart.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from . import log, nodefiles
from .errors import IsobuildError
from .installtree import PXEBOOT, InstallTree, open_install_tree
from .model import Cluster, Node
from .outputs import atomic_generation, make_dir, os_error, sweep_generations
from .run import run, which
from .stamps import Stamps, code_digest, sha256_bytes, sha256_file, sha256_tree

if TYPE_CHECKING:
    from .render import Rendered

PXELINUX_DIRS = (Path("/usr/lib/PXELINUX"), Path("/usr/share/syslinux"), Path("/usr/lib/syslinux"))
MODULE_DIRS = (Path("/usr/lib/syslinux/modules/bios"), Path("/usr/share/syslinux"), Path("/usr/lib/syslinux"))
# menu.c32 is the text menu: it draws on a serial console too (vesamenu does not), which IPMI SOL users need.
MENU_MODULE = "menu.c32"
ALWAYS_MODULES = ("ldlinux.c32", "libcom32.c32", "libutil.c32", MENU_MODULE)
MENU_TIMEOUT = 100  # tenths of a second
SERVE_CONFIG = "serve.json"
SECRET_MODE = 0o600  # ks/ (root password hash) and private/ (fence passwords): only the serving user
# The secrets (model.Cluster.secrets) a kickstart carries because anaconda installs them; never a fence password.
KICKSTART_CARRIES = ("root password hash", "ssh authorized key ")


# ---------------------------------------------------------------------------------------------
# pxelinux files and configs
# ---------------------------------------------------------------------------------------------


def find_pxelinux() -> Path:
    for d in PXELINUX_DIRS:
        if (d / "pxelinux.0").is_file():
            return d / "pxelinux.0"
    raise IsobuildError("pxelinux.0 not found (looked in " + ", ".join(map(str, PXELINUX_DIRS)) + ")",
                        hint="install it: apt-get install pxelinux syslinux-common")


def _module_path(name: str) -> Path:
    for d in MODULE_DIRS:
        if (d / name).is_file():
            return d / name
    raise IsobuildError(f"syslinux module {name} not found (looked in " + ", ".join(map(str, MODULE_DIRS)) + ")",
                        hint="install it: apt-get install syslinux-common")


def _needed(module: Path) -> list[str]:
    """Shared libraries a .c32 module links against (its ELF DT_NEEDED entries)."""
    readelf = which("readelf")
    if readelf is None:
        return []
    out = run([readelf, "-d", module], check=False).stdout or ""
    return re.findall(r"\(NEEDED\).*\[([^\]]+)\]", out)


def syslinux_modules(wanted=ALWAYS_MODULES) -> dict[str, Path]:
    """The modules pxelinux loads plus everything they need, transitively."""
    found: dict[str, Path] = {}
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found[name] = _module_path(name)
        todo.extend(_needed(found[name]))
    return dict(sorted(found.items()))


def mac_file(mac: str) -> str:
    """pxelinux's per-MAC config name: 01- (Ethernet ARP type) + the MAC, dashed, lower-case."""
    if not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", mac):
        raise IsobuildError(f"{mac!r} is not a MAC address", hint="six hex pairs separated by colons")
    return "01-" + mac.lower().replace(":", "-")


def boot_mac(cluster: Cluster, node: Node) -> str | None:
    """The MAC that PXE-boots: the one of the node's bcn interface, if the definition gives it."""
    return node.mac.get(cluster.networks["bcn"].interface)


def _console(cluster: Cluster) -> tuple[list[str], str | None]:
    from .isolinux import console_args

    return console_args(cluster.install.console)


def install_label(node: Node) -> str:
    return f"install-{node.name}"


def cluster_args(cluster: Cluster) -> list[str]:
    """Install kernel arguments every node of the cluster shares (a Cobbler profile carries these)."""
    extra, _serial = _console(cluster)
    # BOOTIF (ipappend 2) names the NIC that PXE-booted; the static bcn address needs no DHCP lease.
    return ["ksdevice=bootif", *extra]


def node_args(cluster: Cluster, node: Node, url: str) -> list[str]:
    """Install kernel arguments of one node: its kickstart and static bcn address (a Cobbler system's)."""
    bcn = cluster.networks["bcn"]
    return [f"ks={url}/ks/{node.name}.ks", f"ip={node.ip['bcn']}", f"netmask={bcn.netmask}"]


def kernel_args(cluster: Cluster, node: Node, url: str, release: str) -> str:
    """Kernel command line of a node's install entry (anaconda 13 syntax)."""
    ks, ip, netmask = node_args(cluster, node, url)
    ksdevice, *console = cluster_args(cluster)
    return " ".join([f"initrd={release}/initrd.img", ks, ksdevice, ip, netmask, *console])


def _entry_title(cluster: Cluster, node: Node) -> str:
    return f"Install {node.fqdn} ({cluster.name}): ERASES ALL DISKS"


def menu_margin(texts: list[str], columns: int = 80) -> int:
    """menu.c32's side margin (default 10) shrunk so the longest title/label fits an 80-column console."""
    longest = max(len(t) for t in texts)
    return max(0, min(10, (columns - 4 - longest) // 2))


def _entry(cluster: Cluster, node: Node, url: str, release: str) -> list[str]:
    return [
        f"label {install_label(node)}",
        f"  menu label {_entry_title(cluster, node)}",
        f"  kernel {release}/vmlinuz",
        f"  append {kernel_args(cluster, node, url, release)}",
        "  ipappend 2",
    ]


def pxelinux_config(cluster: Cluster, nodes: list[Node], url: str, title: str) -> str:
    """A menu whose timeout default is the local disk, followed by the install entries of `nodes`."""
    release = cluster.release
    _extra, serial = _console(cluster)
    lines = ["# Generated by `invoke pxe` from the cluster definition; regenerate instead of editing."]
    if serial:
        lines.append(serial)  # syslinux wants `serial` first
    lines += [
        f"ui {MENU_MODULE}",
        "default local",
        "prompt 0",
        f"timeout {MENU_TIMEOUT}",
        f"menu margin {menu_margin([title] + [_entry_title(cluster, n) for n in nodes])}",
        f"menu title {title}",
        "",
        "label local",
        "  menu label Boot from ^local drive",
        "  menu default",
        "  localboot 0",
    ]
    for n in nodes:
        lines += [""] + _entry(cluster, n, url, release)
    return "\n".join(lines) + "\n"


def timeout_label(text: str) -> str | None:
    """The label pxelinux boots on timeout in one of our configs (`default X`, else the menu default)."""
    from .isolinux import parse

    cfg = parse(text)
    e = cfg.timeout_entry()
    return e.name if e else None


def referenced_files(text: str) -> list[str]:
    """Every file (relative to the TFTP root) a pxelinux config names: ui module, kernels, initrds."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        kw = words[0].lower()
        if kw in ("ui", "kernel", "linux") and len(words) > 1:
            out.append(words[1])
        elif kw == "append":
            out += [w.split("=", 1)[1] for w in words[1:] if w.startswith("initrd=")]
    return out


# ---------------------------------------------------------------------------------------------
# DHCP export
# ---------------------------------------------------------------------------------------------


def dnsmasq_conf(cluster: Cluster, tftp_root: Path, url: str) -> str:
    bcn = cluster.networks["bcn"]
    lines = [
        f"# dnsmasq snippet: DHCP + TFTP for the BCN ({bcn.subnet}) of cluster {cluster.name}.",
        "# Generated by `invoke pxe`. Copy it to /etc/dnsmasq.d/ on the PXE server and set `interface`.",
        "# Only the nodes below get leases (static range): other machines on the BCN are ignored.",
        f"#interface=<the PXE server's NIC on {bcn.subnet}>",
        "bind-interfaces",
        f"dhcp-range={bcn.subnet.network_address},static,{bcn.netmask}",
    ]
    for n in sorted(cluster.nodes, key=lambda n: n.nodeid):
        mac = boot_mac(cluster, n)
        if mac:
            lines.append(f"dhcp-host={mac},{n.ip['bcn']},{n.name},infinite")
        else:
            lines.append(f"# {n.name}: no MAC for its bcn interface {bcn.interface} in the definition; add "
                         f"dhcp-host=<mac>,{n.ip['bcn']},{n.name},infinite once it is known")
    lines += [
        "enable-tftp",
        f"tftp-root={tftp_root}",
        "dhcp-boot=pxelinux.0",
        f"# Kickstarts and the install tree are served over HTTP at {url} (`invoke serve`).",
    ]
    return "\n".join(lines) + "\n"


def nginx_conf(cluster: Cluster, pxe_dir: Path, url: str, acl: dict[str, list[str]], os_path: str | None) -> str:
    """An nginx server block for sites serving build/pxe/http with their own web server (same ACL)."""
    parts = urlsplit(url)
    lines = [
        f"# nginx: serve the PXE HTTP tree of cluster {cluster.name} (generated by `invoke pxe`).",
        "# Include it in the http {} block. The private/ and ks/ rules mirror serve.json.",
        "server {",
        f"    listen {parts.port or 80};",
        f"    root {pxe_dir / 'http'};",
        "    autoindex off;",
        # no symlink leads out of the tree (os/ is aliased below); build/pxe itself is one (the
        # current generation), so checking starts below the root (nginx.org, disable_symlinks from=)
        "    disable_symlinks on from=$document_root;",
        "    location / { limit_except GET { deny all; } }  # read-only (GET and HEAD)",
    ]
    ro = "limit_except GET { deny all; }"
    if os_path:
        lines.append(f"    location /os/ {{ alias {os_path.rstrip('/')}/; disable_symlinks off; {ro} }}")
    else:
        lines.append("    # os/: loop-mount the DVD (mount -o loop,ro DVD.iso /srv/f13) and alias it:")
        lines.append(f"    location /os/ {{ alias /srv/f13/; {ro} }}")
    lines.append("    location /private/ { deny all; }  # anything not listed below")
    for key, addrs in sorted(acl.items()):
        match = f"location /{key}" if key.endswith("/") else f"location = /{key}"
        allow = " ".join(f"allow {a};" for a in addrs)
        lines.append(f"    {match} {{ {ro} {allow} deny all; }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------


@dataclass
class PxeResult:
    pxe_dir: Path
    url: str
    mac_files: dict[str, str] = field(default_factory=dict)  # node -> 01-<mac>
    nodes_without_mac: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    built: bool = True
    reason: str = ""


def check_url(cluster: Cluster, url: str) -> tuple[str, list[str]]:
    """The normalised base URL and warnings about whether the nodes can reach it."""
    from .render import Media

    base = Media.url(url).base
    parts = urlsplit(base)
    if not parts.hostname:
        raise IsobuildError(f"--url {url!r} has no host", hint="e.g. http://192.168.1.10:8080")
    if parts.query or parts.fragment:
        raise IsobuildError(f"--url {url!r} must not have a query or fragment", hint="e.g. http://192.168.1.10:8080")
    warnings = []
    try:
        addr = ipaddress.IPv4Address(parts.hostname)
    except ValueError:
        warnings.append(f"--url names host {parts.hostname!r}: anaconda resolves it before the node has DNS "
                        "settings from the kickstart; an address on the BCN is safer")
        return base, warnings
    bcn = cluster.networks["bcn"].subnet
    if addr.is_loopback:
        warnings.append(f"--url {base} is a loopback address: the nodes cannot reach it (fine for tests only)")
    elif addr not in bcn:
        warnings.append(f"--url {base} is not on the BCN ({bcn}); the install entries give the node only a BCN "
                        "address, so the server must be reachable from there")
    return base, warnings


def _link_or_copy(src: Path, dst: Path) -> None:
    make_dir(dst.parent)
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def _write(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    make_dir(path.parent)
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


def _copy_from_tree(tree: InstallTree, rel: str, dst: Path) -> None:
    loc = tree.locate(rel)
    if loc is None:
        raise IsobuildError(f"{rel} is missing from the base {tree.path}")
    name, offset, length = loc
    make_dir(dst.parent)
    with open(name, "rb") as src, open(dst, "wb") as out:
        src.seek(offset)
        left = length
        while left:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                raise IsobuildError(f"{rel} is truncated in the base {tree.path}")
            out.write(chunk)
            left -= len(chunk)
    os.chmod(dst, 0o644)


def _stamp_inputs(cluster: Cluster, rendered: Rendered, tree: InstallTree, repo_dir: Path, url: str, pxe_dir: Path,
                  files: list[Path]) -> dict[str, str]:
    """What build/pxe depends on, by content (the ISO by path, size and mtime: hashing GBs costs minutes)."""
    if tree.kind == "iso":
        st = tree.path.stat()
        base = f"iso:{tree.path}:{st.st_size}:{st.st_mtime_ns}"
    else:
        base = "dir:" + str(tree.path) + ":" + sha256_bytes(b"".join(
            (tree.read(rel) or b"") for rel in (".treeinfo", *PXEBOOT)))
    return {
        "definition": cluster.digest,
        "render": rendered.digest,
        "base": base,
        "repo": sha256_tree(repo_dir),
        "url": url,
        "out": str(pxe_dir),
        "syslinux": sha256_bytes("".join(f"{p.name}:{sha256_file(p)}" for p in files)),
        "code": code_digest(__name__),
    }


def check_base_packages(cluster: Cluster, base: Path, url: str, repo_dir: Path, allow_missing: bool) -> None:
    """Every package and group the kickstarts' %packages name is in the base tree or our repo
    (isobuild.pkgresolve); checked before anything is written."""
    from .pkgresolve import check_packages
    from .render import Media, render_kickstart

    texts = {n.name: render_kickstart(cluster, n, Media.url(url)) for n in cluster.nodes}
    tree = open_install_tree(base)
    try:
        for line in check_packages(texts, tree.read, repo_dir, allow_missing=allow_missing,
                                   base_label=f"the base {base}"):
            log.warn(f"the install will stop at a Missing Package dialog: {line}")
    finally:
        tree.close()


@dataclass(frozen=True)
class PxeInputs:
    """What a PXE tree is built from, checked (check_inputs) before anything is written."""
    base: Path
    url: str  # normalised
    repo_dir: Path
    pxelinux: Path
    modules: dict[str, Path]
    warnings: list[str]


def check_inputs(cluster: Cluster, *, base: Path, url: str, repo_dir: Path,
                 allow_missing_packages: bool = False) -> PxeInputs:
    """The URL, our repo, pxelinux and the base's packages, checked; IsobuildError on bad input."""
    url, warnings = check_url(cluster, url)
    repo_dir = Path(repo_dir)
    if not (repo_dir / "repodata" / "repomd.xml").is_file():
        raise IsobuildError(f"the an-cluster repo {repo_dir} has no repodata/repomd.xml",
                            hint="build it first (`invoke rpms` then `invoke repo`), or pass --repo DIR")
    pxelinux = find_pxelinux()
    modules = syslinux_modules()
    check_base_packages(cluster, Path(base), url, repo_dir, allow_missing_packages)
    return PxeInputs(Path(base), url, repo_dir, pxelinux, modules, warnings)


def build_pxe(cluster: Cluster, rendered: Rendered, checked: PxeInputs, *, force: bool = False) -> PxeResult:
    """Write BUILD/pxe next to `rendered` (the caller's render of `cluster`: its per-node files are
    served from there; see the module doc) from checked inputs; nothing half-written.

    A content-hash stamp (build/.stamps/pxe.json) makes an unchanged rebuild a no-op that says why."""
    build_dir = Path(rendered.build_dir)
    pxe_dir = build_dir.resolve() / "pxe"  # a symlink to the current generation: never resolved here
    url = checked.url
    result = _boot_macs(cluster, PxeResult(pxe_dir, url, warnings=list(checked.warnings)))
    stamps = Stamps(build_dir)
    try:
        sweep_generations(pxe_dir)
    except OSError as err:
        raise os_error(err, "pxe: cannot remove the leftovers of an interrupted build", build_dir) from None
    tree = open_install_tree(checked.base)
    try:
        inputs = _stamp_inputs(cluster, rendered, tree, checked.repo_dir, url, pxe_dir,
                               [checked.pxelinux, *checked.modules.values()])
        check = stamps.check("pxe", inputs, [pxe_dir / SERVE_CONFIG, pxe_dir / "tftp" / "pxelinux.0"])
        result.built, result.reason = force or not check.up_to_date, check.reason
        if result.built:
            with stamps.publishing("pxe", inputs) as pub:
                pub.replacing()
                try:
                    _write_generation(cluster, pxe_dir, tree, url, checked.repo_dir, rendered.nodes_dir,
                                      checked.pxelinux, checked.modules)
                except OSError as err:
                    raise os_error(err, f"pxe: cannot write {pxe_dir}", build_dir) from None
                pub.record(pxe_dir / SERVE_CONFIG)
    finally:
        tree.close()
    for w in result.warnings:
        log.warn(w)
    if result.built:
        log.info(f"pxe: wrote {pxe_dir} (TFTP root {pxe_dir / 'tftp'}, HTTP root {pxe_dir / 'http'}, base URL {url})")
    return result


def _boot_macs(cluster: Cluster, result: PxeResult) -> PxeResult:
    """The pxelinux.cfg/01-<mac> name of every node with a bcn MAC; a warning for each without."""
    bcn_if = cluster.networks["bcn"].interface
    for n in sorted(cluster.nodes, key=lambda n: n.nodeid):
        mac = boot_mac(cluster, n)
        if mac is None:
            result.nodes_without_mac.append(n.name)
            result.warnings.append(
                f"{n.name} has no MAC for its bcn interface {bcn_if} in the definition: no "
                f"pxelinux.cfg/01-<mac> file and no DHCP reservation; install it from the default "
                f"menu (entry {install_label(n)}) and add nodes[].mac.{bcn_if} to pin it")
        else:
            result.mac_files[n.name] = mac_file(mac)
    return result


def _write_generation(cluster: Cluster, pxe_dir: Path, tree: InstallTree, url: str, repo_dir: Path,
                      nodes_dir: Path, pxelinux: Path, modules: dict[str, Path]) -> None:
    """A complete new generation of build/pxe, checked, then swapped in."""
    with atomic_generation(pxe_dir) as tmp:
        tftp, http = tmp / "tftp", tmp / "http"
        write_tftp(tftp, cluster, tree, url, pxelinux, modules)
        make_dir(http)
        if tree.kind == "dir":
            os.symlink(tree.path, http / "os")  # served in place
        write_kickstarts(http, cluster, url)
        for p in sorted(repo_dir.rglob("*")):
            if p.is_file() and not p.is_symlink():
                _link_or_copy(p, http / "an-cluster" / p.relative_to(repo_dir))
        acl = publish_node_files(http, cluster, nodes_dir)
        serve_cfg = {
            "cluster": cluster.name,
            "url": url,
            "os": {"kind": tree.kind, "path": str(tree.path)},
            # path prefix under http/ -> client addresses allowed; anything else under private/ is refused
            "acl": acl,
        }
        _write(tmp / SERVE_CONFIG, json.dumps(serve_cfg, indent=1, sort_keys=True) + "\n")
        _write(tmp / "dnsmasq.conf", dnsmasq_conf(cluster, pxe_dir / "tftp", url))
        _write(tmp / "nginx.conf", nginx_conf(cluster, pxe_dir, url, acl,
                                              str(tree.path) if tree.kind == "dir" else None))
        check_tftp(tftp)
        check_kickstarts(cluster, sorted((http / "ks").glob("*.ks")))


def write_tftp(tftp: Path, cluster: Cluster, tree: InstallTree, url: str, pxelinux: Path,
               modules: dict[str, Path]) -> None:
    """pxelinux and its modules, the base's install kernel + initrd, the default and per-MAC menus."""
    make_dir(tftp)
    shutil.copy(pxelinux, tftp / "pxelinux.0")
    for name, src in modules.items():
        shutil.copy(src, tftp / name)
    for rel in PXEBOOT:
        _copy_from_tree(tree, rel, tftp / cluster.release / Path(rel).name)
    nodes = sorted(cluster.nodes, key=lambda n: n.nodeid)
    cfg_dir = tftp / "pxelinux.cfg"
    _write(cfg_dir / "default", pxelinux_config(cluster, nodes, url, f"AN!Cluster {cluster.name}: network install"))
    for n in nodes:
        mac = boot_mac(cluster, n)
        if mac is not None:
            _write(cfg_dir / mac_file(mac), pxelinux_config(cluster, [n], url, f"AN!Cluster {cluster.name}: {n.name} {mac}"))


def write_kickstarts(http: Path, cluster: Cluster, url: str) -> None:
    """http/ks/<node>.ks (0600: the root password hash), refused if one holds a secret it must not."""
    from .render import Media, render_kickstart

    secrets = cluster.secrets()
    for n in sorted(cluster.nodes, key=lambda n: n.nodeid):
        ks = render_kickstart(cluster, n, Media.url(url))
        for what, value in secrets.items():
            if value in ks and not what.startswith(KICKSTART_CARRIES):
                raise IsobuildError(f"the network kickstart of {n.name} contains the {what}",
                                    hint="kickstarts must never carry fence passwords (render templates)")
        _write(http / "ks" / f"{n.name}.ks", ks, SECRET_MODE)


def publish_node_files(http: Path, cluster: Cluster, nodes_dir: Path) -> dict[str, list[str]]:
    """Each node's rendered files: the registry's secret ones under private/<node>/, the others under
    an-cluster/nodes/<node>/ (refused if one holds a secret). Returns the ACL: path -> the node's addresses."""
    secret = nodefiles.secret_paths(cluster)
    secrets = cluster.secrets()
    acl: dict[str, list[str]] = {}
    for n in sorted(cluster.nodes, key=lambda n: n.nodeid):
        node_src = nodes_dir / n.name
        for p in sorted(node_src.rglob("*")):
            if not p.is_file():
                continue
            rel = p.relative_to(node_src).as_posix()
            data = p.read_bytes()
            if rel in secret:
                _write(http / "private" / n.name / rel, data, SECRET_MODE)
                continue
            leaked = [what for what, v in secrets.items() if v.encode() in data]
            if leaked:
                raise IsobuildError(
                    f"build/nodes/{n.name}/{rel} holds the {', '.join(leaked)} but is not a secret file",
                    hint="mark its row secret in isobuild/nodefiles.py, so it is served only from private/<node>/")
            _write(http / "an-cluster" / "nodes" / n.name / rel, data, p.stat().st_mode & 0o755 | 0o644)
        addrs = sorted({str(a) for a in n.ip.values()})
        acl[f"private/{n.name}/"] = addrs
        acl[f"ks/{n.name}.ks"] = addrs  # the kickstart holds the root password hash
    return acl


def check_kickstarts(cluster: Cluster, paths: list[Path]) -> None:
    """The network kickstarts through the same real validators as the DVD ones (pykickstart F13, bash -n,
    shellcheck); every problem at once. Messages are scrubbed of secrets by the collector."""
    from .validate import check_kickstarts as check

    check(cluster, paths, "the network-install kickstarts do not validate")


def check_tftp(tftp: Path) -> None:
    """Every file a pxelinux config names exists, and no timeout default is a node install."""
    problems = []
    for cfg in sorted((tftp / "pxelinux.cfg").iterdir()):
        text = cfg.read_text()
        for ref in referenced_files(text):
            if not (tftp / ref).is_file():
                problems.append(f"pxelinux.cfg/{cfg.name} names {ref}, which is not in the TFTP tree")
        if timeout_label(text) != "local":
            problems.append(f"pxelinux.cfg/{cfg.name}: the timeout default is not the local disk")
    if problems:
        raise IsobuildError("PXE tree check failed: " + "; ".join(problems))
