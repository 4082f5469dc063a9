"""Check every rendered file with the real tool for it, and report ALL problems at once.

| file                                   | tool                                                    |
|----------------------------------------|---------------------------------------------------------|
| kickstart/<node>.ks                    | pykickstart's F13 handler, warnings are errors (ksvalidator) |
|                                        | + layout/packages consistency on the parsed kickstart   |
| %post bodies of the kickstarts         | bash -n and shellcheck (bash)                           |
| nodes/<node>/etc/cluster/cluster.conf  | RelaxNG schemas/cluster-3.0.12.rng and cluster.rng (lxml) |
| nodes/<node>/<mount>/domU_config/<vm>   | xm config: Python assignments, name = the VM            |
| nodes/<node>/etc/drbd.conf (+ drbd.d/) | drbdadm-83 dump, as that node (private UTS + net namespace |
|                                        | holding the node's hostname and sn address)             |
| nodes/<node>/etc/lvm/lvm.conf          | lvmconfig --validate (LVM_SYSTEM_DIR)                   |
| scripts (#! files, *.sh)               | bash -n and shellcheck                                  |
| sourced shell (ifcfg-*, sysconfig/network, *.env) | bash -n and shellcheck (as sourced sh)       |
| etc/sysconfig/iptables                 | iptables-restore --test (private network namespace)     |
| etc/sysconfig/iptables.an-cluster      | iptables-restore --test inside a *filter table          |
| etc/sysconfig/system-config-firewall   | lokkit 1.2.27's option syntax; the custom file exists   |
| etc/xen/xend-config.sxp                | s-expression structure (xend has no offline checker)    |
| etc/an-cluster/init-order              | isobuild.initorder consistency (start/stop vs Required-Start) |
| etc/hosts                              | hosts(5) structure: address, then valid host names      |
| etc/cluster/fence_na.conf              | read as fence_na.lib read_conf does; agrees with cluster.conf |
| etc/an-cluster/vms/<vm>.virt-install   | virt-install 0.500.3's own optparse options + sub-option whitelists (isobuild/f13virt.py) |
| etc/an-cluster/vms/<vm>.ks             | pykickstart's F13 handler, warnings are errors          |
| etc/an-cluster/vms/<vm>.cfg            | Python syntax, only literal assignments to Xen 4.0.1 xm create variables |
| model.json                             | json                                                    |
| anything else under nodes/             | a problem: every rendered file needs a validator        |

isobuild/nodefiles.py names each node file's checker (a key of NODE_CHECKERS below).

Every problem is an errors.Problem(file, line, tool, reason); ProblemsError lists them together.
Secrets: tool output about cluster.conf and kickstarts is reported as the tool printed it; none of
these tools echo attribute values back (lxml names the element and attribute, not the value).
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from . import nodefiles
from .errors import Problem, ProblemsError, ToolError
from .cmanschema import SCHEMAS
from .initorder import STATES, InitService, check_order
from .model import REDACTED, Cluster, Node
from .run import require, run


# tool -> Debian package, for the "install it" hint
PACKAGES = {
    "bash": "bash",
    "shellcheck": "shellcheck",
    "drbdadm-83": "drbd-utils",
    "lvmconfig": "lvm2",
    "unshare": "util-linux",
    "hostname": "hostname",
    "ip": "iproute2",
    "iptables-restore": "iptables",
}
SHELLCHECK_ARGS = ["--format=gcc", "--norc"]
# The shell on the node is bash 4.1 (F13). shellcheck has no "bash 4.1" dialect; the features newer
# than 4.1 that it knows about are flagged by these checks, which stay on.
SOURCED_EXCLUDES = "SC2034"  # variables in sourced files (ifcfg, env) are used by the sourcing script


def _tool(name: str) -> str:
    return require(name, PACKAGES.get(name))


class Collector:
    def __init__(self, build_dir: Path, secrets: Iterable[str] = ()):
        self.build_dir = Path(build_dir)
        self.problems: list[Problem] = []
        self.checked: dict[Path, str] = {}
        # Tool output quoting a line of cluster.conf or a kickstart could carry a secret: scrub it.
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))

    def add(self, path: Path, line: int | None, tool: str, reason: str, hint: str | None = None) -> None:
        reason = reason.strip()
        for secret in self.secrets:
            reason = reason.replace(secret, REDACTED)
        self.problems.append(Problem(str(path), line, tool, reason, hint))

    def ok(self, path: Path, tool: str) -> None:
        tools = [t for t in (self.checked.get(Path(path)) or "").split(", ") if t]
        for t in tool.split(", "):
            if t not in tools:
                tools.append(t)
        self.checked[Path(path)] = ", ".join(tools)


# ---------------------------------------------------------------------------------------------
# Kickstart
# ---------------------------------------------------------------------------------------------


def check_kickstart(col: Collector, path: Path, node: bool = True) -> None:
    """pykickstart F13 handler with every parse warning an error; then the %post bodies as shell.
    node=False (a guest's kickstart): no node layout/packages consistency checks."""
    try:
        from pykickstart.errors import KickstartError, KickstartParseWarning
        from pykickstart.parser import KickstartParser, preprocessKickstart
        from pykickstart.version import F13, makeVersion
    except ImportError:
        raise ToolError("required Python module not found: pykickstart",
                        hint="pip install pykickstart (scripts/setup.sh installs it)") from None

    errors: list[tuple[int | None, str]] = []

    class CollectingParser(KickstartParser):
        # ksvalidator prints errors and counts them when errorsAreFatal is False; we keep them.
        def _tryFunc(self, fn):
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - pykickstart raises many kinds
                self.errorsCount += 1
                errors.append((getattr(exc, "lineno", None), _ks_message(exc)))

    handler = makeVersion(F13)
    parser = CollectingParser(handler, followIncludes=False, errorsAreFatal=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            processed = preprocessKickstart(str(path))
            parser.readKickstart(processed)
        except KickstartError as exc:
            errors.append((getattr(exc, "lineno", None), _ks_message(exc)))
        except Exception as exc:  # noqa: BLE001
            errors.append((None, f"general error in kickstart: {exc}"))
    for w in caught:
        if issubclass(w.category, (KickstartParseWarning, DeprecationWarning, UserWarning)):
            msg = str(w.message)
            errors.append((_lineno_from(msg), f"warning (treated as error): {msg}"))
    for line, msg in errors:
        col.add(path, line, "pykickstart F13", msg)
    col.ok(path, "pykickstart F13")
    if not errors and node:
        check_kickstart_consistency(col, path, handler)

    # %pre/%post bodies: bash -n and shellcheck, lines mapped back into the kickstart.
    for script in handler.scripts:
        interp = script.interp or "/bin/sh"
        if not interp.endswith(("sh", "bash")):
            continue
        start = (script.lineno or 0)  # line of the %post header; the body starts on the next line
        check_shell_text(col, path, script.script, "bash" if "bash" in interp else "sh", line_offset=start,
                         what=f"%{_script_kind(script)} (line {start})")


def check_kickstarts(cluster: Cluster, paths: list[Path], what: str) -> None:
    """Kickstarts rendered outside the build dir (the USB stick's) through the same checks as the
    DVD's: pykickstart F13, the layout checks, bash -n + shellcheck; every problem at once, scrubbed."""
    col = Collector(paths[0].parent if paths else Path("."), cluster.secrets().values())
    for p in paths:
        check_kickstart(col, p)
    if col.problems:
        raise ProblemsError(what, col.problems)


# What every AN!Cluster node kickstart must install and leave out (the cluster stack).
REQUIRED_PACKAGES = ("cman", "rgmanager", "lvm2-cluster", "gfs2-utils", "xen", "drbd", "an-cluster-firstboot")
EXCLUDED_PACKAGES = ("NetworkManager",)


def check_kickstart_consistency(col: Collector, path: Path, handler) -> None:
    """What anaconda 13 would only find out half-way through an install: RAID members that no `part`
    defines, disks outside `clearpart --drives`, mount points used twice, the hostname given zero
    or several times, the cluster packages missing."""
    tool = "kickstart layout"
    parts = handler.partition.partitions
    defined: dict[str, int] = {}
    mounts: dict[str, int] = {}
    drives = set(handler.clearpart.drives or [])
    for pd in parts:
        mp = pd.mountpoint
        if mp.startswith("raid."):
            if mp in defined:
                col.add(path, pd.lineno, tool, f"{mp} is defined twice (first on line {defined[mp]})")
            defined[mp] = pd.lineno
        elif mp not in ("swap", "None"):
            if mp in mounts:
                col.add(path, pd.lineno, tool, f"{mp} is mounted twice (first on line {mounts[mp]})")
            mounts.setdefault(mp, pd.lineno)
        if drives and pd.disk and pd.disk not in drives:
            col.add(path, pd.lineno, tool, f"--ondisk={pd.disk} is not in clearpart --drives={','.join(sorted(drives))}")
    used: dict[str, int] = {}
    for rd in handler.raid.raidList:
        if rd.mountpoint not in ("swap",) and rd.mountpoint in mounts:
            col.add(path, rd.lineno, tool, f"{rd.mountpoint} is mounted twice (first on line {mounts[rd.mountpoint]})")
        mounts.setdefault(rd.mountpoint, rd.lineno)
        for m in rd.members:
            if m not in defined:
                col.add(path, rd.lineno, tool, f"RAID member {m} is not defined by a part line")
            elif m in used:
                col.add(path, rd.lineno, tool, f"RAID member {m} is already used on line {used[m]}")
            used.setdefault(m, rd.lineno)
    if "/" not in mounts:
        col.add(path, None, tool, "no partition is mounted at /")
    named = [n for n in handler.network.network if n.hostname]
    if len(named) != 1:
        col.add(path, None, tool, f"{len(named)} network lines set --hostname; exactly one must")
    for n in handler.network.network:
        if n.bootProto != "static" or not n.ip:
            col.add(path, n.lineno, tool, f"network --device={n.device} is not static with an --ip")
    pkgs = set(handler.packages.packageList)
    excluded = set(handler.packages.excludedList)
    for name in REQUIRED_PACKAGES:
        # a package may be pinned as name-version-release (the xen package is: xen.hypervisor_rpm)
        if name not in pkgs and not any(re.match(rf"^{re.escape(name)}-\d[^-]*-[^-]+$", p) for p in pkgs):
            col.add(path, None, tool, f"%packages does not install {name}")
    for name in EXCLUDED_PACKAGES:
        if name not in excluded:
            col.add(path, None, tool, f"%packages does not exclude {name} (-{name})")
    col.ok(path, tool)


def _script_kind(script) -> str:
    from pykickstart.constants import KS_SCRIPT_POST, KS_SCRIPT_PRE

    return {KS_SCRIPT_POST: "post", KS_SCRIPT_PRE: "pre"}.get(script.type, "script") + (
        "" if script.inChroot else " --nochroot")


def _ks_message(exc: Exception) -> str:
    msg = str(exc).strip()
    # pykickstart prefixes "The following problem occurred on line N of the kickstart file:"
    return re.sub(r"\s+", " ", msg.split("kickstart file:", 1)[-1]).strip() or type(exc).__name__


def _lineno_from(msg: str) -> int | None:
    m = re.search(r"line (\d+)", msg)
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------------------------
# Shell
# ---------------------------------------------------------------------------------------------

GCC_RE = re.compile(r"^(?P<file>.*?):(?P<line>\d+):(?P<col>\d+): (?P<level>\w+): (?P<msg>.*)$")


def check_shell_text(col: Collector, path: Path, text: str, dialect: str, line_offset: int = 0,
                     what: str = "", sourced: bool = False) -> None:
    """bash -n and shellcheck on a script (or a piece of a file starting after line_offset)."""
    bash = _tool("bash")
    shellcheck = _tool("shellcheck")
    with tempfile.TemporaryDirectory(prefix="isobuild-sh-") as tmp:
        f = Path(tmp) / "script"
        f.write_text(text)
        proc = run([bash, "-n", f], check=False)
        for line in (proc.stderr or "").splitlines():
            m = re.search(r"line (\d+): (.*)", line)
            if m:
                col.add(path, int(m.group(1)) + line_offset, "bash -n", f"{what + ': ' if what else ''}{m.group(2)}")
            elif line.strip():
                col.add(path, None, "bash -n", line)
        if proc.returncode != 0 and not proc.stderr:
            col.add(path, None, "bash -n", f"{what} exit status {proc.returncode}")
        args = [shellcheck, *SHELLCHECK_ARGS, f"--shell={dialect}"]
        if sourced:
            args.append(f"--exclude={SOURCED_EXCLUDES}")
        proc = run([*args, f], check=False)
        for line in (proc.stdout or "").splitlines():
            m = GCC_RE.match(line)
            if m:
                col.add(path, int(m.group("line")) + line_offset, "shellcheck",
                        f"{what + ': ' if what else ''}{m.group('level')}: {m.group('msg')}")
        if proc.returncode not in (0, 1):
            col.add(path, None, "shellcheck", f"shellcheck failed (exit {proc.returncode}): {proc.stderr.strip()}")
    col.ok(path, "bash -n, shellcheck")


def shell_dialect(path: Path) -> str | None:
    """'bash' / 'sh' for a script (by #! line or .sh), None for anything else."""
    try:
        first = path.read_bytes()[:128].split(b"\n", 1)[0].decode("ascii", "replace")
    except OSError:
        return None
    if first.startswith("#!"):
        return "bash" if "bash" in first else "sh" if re.search(r"/(ba|da|k)?sh\b", first) else None
    if path.suffix == ".sh":
        return "bash"
    return None


# ---------------------------------------------------------------------------------------------
# cluster.conf
# ---------------------------------------------------------------------------------------------


def check_cluster_conf(col: Collector, path: Path, schemas: dict[str, Path] | None = None) -> None:
    """cluster.conf against every cman schema a node may run (cmanschema.SCHEMAS: cluster 3.0.12 and
    the later one), or the given {label: rng} (the cluster.rng inside the cman RPM a disc installs)."""
    try:
        from lxml import etree
    except ImportError:
        raise ToolError("required Python module not found: lxml",
                        hint="pip install lxml (scripts/setup.sh installs it)") from None

    try:
        doc = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        for e in exc.error_log or [exc]:
            col.add(path, getattr(e, "line", None) or exc.lineno, "xml", getattr(e, "message", str(exc)))
        return
    for label, schema in (SCHEMAS if schemas is None else schemas).items():
        tool = f"RelaxNG {label}"
        try:
            rng = relaxng(schema)
        except (OSError, etree.LxmlError) as exc:
            col.add(schema, None, "RelaxNG", f"cannot load the cluster.conf schema ({label}): {exc}")
            continue
        if not rng.validate(doc):
            for e in rng.error_log:
                col.add(path, e.line, tool, e.message,
                        f"ccs_config_validate on a node running {label} refuses this cluster.conf")
        col.ok(path, tool)


def relaxng(schema: Path):
    """The RelaxNG schema at `schema`, parsed once per content in this process (the vendored schemas
    once, not for every node; the node cman's, extracted anew by each of iso, usb and pxe, once); a
    changed file is parsed again."""
    from lxml import etree

    try:
        digest = hashlib.sha256(Path(schema).read_bytes()).hexdigest()
    except OSError:  # unreadable: lxml's parse says why, as it always did
        return etree.RelaxNG(etree.parse(str(schema)))
    if digest not in _RELAXNG:
        _RELAXNG[digest] = etree.RelaxNG(etree.parse(str(schema)))
    return _RELAXNG[digest]


# relaxng()'s cache: by the sha256 of the schema file's bytes, not by its path (the node cman's schema
# is extracted to a new temp file by each stage)
_RELAXNG: dict[str, object] = {}


def check_domu_config(col: Collector, path: Path) -> None:
    """A shipped xm domU config: Python assignments naming the VM it is for (model.domu_config_problem)."""
    from .model import domu_config_problem

    reason = domu_config_problem(path.read_text(encoding="utf-8"), path.name)
    if reason:
        col.add(path, None, "xm config", reason)
    col.ok(path, "xm config")


# ---------------------------------------------------------------------------------------------
# DRBD
# ---------------------------------------------------------------------------------------------

DRBD_LOC_RE = re.compile(r"^(?P<file>[^:\s]+):(?P<line>\d+): (?P<msg>.*)$")


def check_drbd(col: Collector, conf: Path, hostname: str, sn_address: str) -> None:
    """drbdadm-83 dump as the node: it insists on an `on <uname -n>` block whose address is local,
    so it runs in a private UTS + network namespace holding that hostname and the node's sn address
    on loopback (nothing leaves the namespace)."""
    drbdadm = _tool("drbdadm-83")
    unshare = _tool("unshare")
    ip = _tool("ip")
    hn = _tool("hostname")
    script = (f'set -e; {hn} "$1"; {ip} link set lo up; {ip} addr add "$2"/32 dev lo; '
              f'exec {drbdadm} -c "$3" dump all')
    argv = _netns_argv(unshare, "sh", "-c", script, "sh", hostname, sn_address, str(conf))
    proc = run(argv, check=False, timeout=60)
    # drbdadm prints "file:line: message" and continues a message on indented lines; the same
    # message may come twice (once per pass). Join continuations, drop repeats.
    messages: list[str] = []
    for raw in (proc.stderr or "").splitlines():
        if not raw.strip():
            continue
        if messages and (raw[:1].isspace() or not DRBD_LOC_RE.match(raw.strip()) and
                         DRBD_LOC_RE.match(messages[-1]) and not raw.startswith(("WARN", "ERROR"))):
            messages[-1] += " " + raw.strip()
        else:
            messages.append(raw.strip())
    for line in dict.fromkeys(messages):
        m = DRBD_LOC_RE.match(line)
        if m:
            f = Path(m.group("file"))
            if not f.is_absolute():
                f = conf.parent / f
            col.add(f, int(m.group("line")), "drbdadm-83", m.group("msg"))
        else:
            col.add(conf, None, "drbdadm-83", line)
    if proc.returncode != 0 and not proc.stderr.strip():
        col.add(conf, None, "drbdadm-83", f"exit status {proc.returncode}")
    col.ok(conf, "drbdadm-83")


def _netns_argv(unshare: str, *rest: str) -> list[str]:
    """Run in fresh UTS + network namespaces: as root directly, otherwise inside a user namespace."""
    if os.geteuid() == 0:
        return [unshare, "--uts", "--net", *rest]
    return [unshare, "--user", "--map-root-user", "--uts", "--net", *rest]


# ---------------------------------------------------------------------------------------------
# iptables
# ---------------------------------------------------------------------------------------------


# What a filter-table fragment (lokkit --custom-rules file) is wrapped in for iptables-restore.
FILTER_HEAD = b"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"


def check_iptables(col: Collector, path: Path, fragment: bool = False) -> None:
    """iptables-restore --test in an empty network namespace: parses every rule, loads the matches,
    commits nothing (F13 runs legacy iptables 1.4; the legacy backend is preferred when present).
    fragment: the file holds filter rules only (lokkit pastes it into its *filter table)."""
    from .run import which

    tool = which("iptables-legacy-restore") or _tool("iptables-restore")
    unshare = _tool("unshare")
    with open(path, "rb") as fh:
        data = fh.read()
    offset = 0
    if fragment:
        data, offset = FILTER_HEAD + data + b"COMMIT\n", FILTER_HEAD.count(b"\n")
    if os.geteuid() == 0:
        argv = [unshare, "--net", tool, "--test"]
    else:  # in a user namespace the host's /run/xtables.lock is not ours: give the tool a private /run
        argv = [unshare, "--user", "--map-root-user", "--mount", "--net", "sh", "-c",
                'mount -t tmpfs tmpfs /run && exec "$0" --test', tool]
    proc = run(argv, check=False, input=data, timeout=60)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace") if isinstance(proc.stderr, bytes) else proc.stderr or ""
        m = re.search(r"Error occurred at line: (\d+)", err)
        first = next((ln for ln in err.splitlines() if ln.strip() and "Try `" not in ln
                      and not ln.startswith("Error occurred")), f"exit status {proc.returncode}")
        col.add(path, int(m.group(1)) - offset if m else None, "iptables-restore --test", first)
    col.ok(path, "iptables-restore --test")


# lokkit's /etc/sysconfig/system-config-firewall: one option a line, '#' comments (s-c-fw 1.2.27
# fw_sysconfig.read_sysconfig_args), parsed by fw_parser.parseSysconfigArgs. Only the options we
# write are accepted; --port takes tcp/udp only (fw_parser._check_port).
LOKKIT_PORT_RE = re.compile(r"^--port=\d{1,5}(-\d{1,5})?:(tcp|udp)$")
LOKKIT_CUSTOM_RE = re.compile(r"^--custom-rules=(?:(ipv4|ipv6):)?(?:(mangle|nat|filter):)?(/.+)$")


def check_lokkit_config(col: Collector, path: Path, node_root: Path) -> None:
    for no, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#") or line in ("--enabled", "--disabled") or LOKKIT_PORT_RE.match(line):
            continue
        m = LOKKIT_CUSTOM_RE.match(line)
        if m is None:
            col.add(path, no, "lokkit 1.2.27", f"{line!r} is not an option lokkit takes here",
                    "--enabled, --port=<port>:<tcp|udp>, --custom-rules=ipv4:filter:<file>")
        elif not (node_root / m.group(3).lstrip("/")).is_file():
            # lokkit skips a missing custom file without a word (fw_iptables.iptablesClass.write)
            col.add(path, no, "lokkit 1.2.27", f"custom rules file {m.group(3)} is not rendered for this node",
                    "lokkit would silently leave its rules out")
    col.ok(path, "lokkit 1.2.27")


# ---------------------------------------------------------------------------------------------
# xend-config.sxp
# ---------------------------------------------------------------------------------------------


def check_sxp(col: Collector, path: Path) -> None:
    """Balanced parentheses and quotes, every top-level form `(name value ...)`: what xend's sxp
    parser needs before it looks at the settings."""
    depth = 0
    quote = None
    form_line = 0
    for no, line in enumerate(path.read_text().splitlines(), 1):
        i = 0
        while i < len(line):
            ch = line[i]
            if quote:
                if ch == "\\":
                    i += 1
                elif ch == quote:
                    quote = None
            elif ch == "#" and depth == 0:
                break
            elif ch in "'\"":
                quote = ch
            elif ch == "(":
                if depth == 0:
                    form_line = no
                    if not re.match(r"\(\s*[A-Za-z][\w-]*(\s|\))", line[i:]):
                        col.add(path, no, "sxp", "a setting must start with (name ...")
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    col.add(path, no, "sxp", "unbalanced ')'")
                    depth = 0
            elif depth == 0 and not ch.isspace():
                col.add(path, no, "sxp", f"text outside a (setting): {line.strip()!r}")
                break
            i += 1
        if quote:
            col.add(path, no, "sxp", "unterminated quoted string")
            quote = None
    if depth > 0:
        col.add(path, form_line, "sxp", "setting is never closed: missing ')'")
    col.ok(path, "sxp")


# ---------------------------------------------------------------------------------------------
# /etc/hosts, model.json
# ---------------------------------------------------------------------------------------------

HOSTNAME_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")


def check_hosts(col: Collector, path: Path) -> None:
    """hosts(5): an IPv4/IPv6 address, then one or more host names, per line."""
    import ipaddress

    for no, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        try:
            ipaddress.ip_address(fields[0])
        except ValueError:
            col.add(path, no, "hosts(5)", f"{fields[0]!r} is not an IP address")
            continue
        if len(fields) < 2:
            col.add(path, no, "hosts(5)", f"{fields[0]} has no host name")
        for name in fields[1:]:
            if not HOSTNAME_RE.match(name):
                col.add(path, no, "hosts(5)", f"{name!r} is not a valid host name")
    col.ok(path, "hosts(5)")


# ---------------------------------------------------------------------------------------------
# fence_na.conf
# ---------------------------------------------------------------------------------------------


def read_fence_na_conf(text: str, lines: dict[str, int] | None = None) -> dict[str, str]:
    """{key: value} as fence_na.lib read_conf reads it (fence-agents v3.1.0): lines without '=' and
    '#' lines skipped, split at the first '=', both sides stripped, empty keys skipped. `lines`, when
    given, receives each key's line number."""
    out: dict[str, str] = {}
    for no, line in enumerate(text.splitlines(), 1):
        if "=" not in line:
            continue
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, val = (x.strip() for x in line.split("=", 1))
        if key:
            out[key] = val
            if lines is not None:
                lines[key] = no
    return out


def check_fence_na_conf(col: Collector, path: Path, cluster_conf: Path) -> None:
    """What fence_na.pl needs from its config to fence the devices cluster.conf names: a log it can
    open, na_num blocks with ipaddr/tcp_port, and system::username/password equal to each fence_na
    device's login/passwd; the device is found by ipaddr (lower-cased) among na::1..na_num."""
    tool = "fence_na.conf"
    at: dict[str, int] = {}
    conf = read_fence_na_conf(path.read_text(), at)
    if not conf.get("system::log"):
        col.add(path, at.get("system::log"), tool, "no system::log: fence_na dies opening it", "system::log = /dev/null")
    num = conf.get("system::na_num", "")
    if not num.isdigit():
        col.add(path, at.get("system::na_num"), tool, f"system::na_num {num!r} is not a positive integer")
        num = "0"
    by_addr = {conf.get(f"na::{i}::ipaddr", "").lower(): i for i in range(1, int(num) + 1)}
    for i in by_addr.values():
        if not conf.get(f"na::{i}::tcp_port", "").isdigit():
            col.add(path, at.get(f"na::{i}::tcp_port", at.get(f"na::{i}::ipaddr")), tool,
                    f"na::{i}::tcp_port is missing or not a number")
    try:
        from lxml import etree

        devices = etree.parse(str(cluster_conf)).findall(".//fencedevice[@agent='fence_na']")
    except (OSError, ImportError, etree.LxmlError):
        devices = []  # cluster.conf's own checker reports it
    for d in devices:
        name = d.get("name")
        if (d.get("ipaddr") or "").lower() not in by_addr:
            col.add(path, at.get("na::1::ipaddr"), tool, f"no na::N::ipaddr matches cluster.conf's ipaddr of {name!r}")
        if (d.get("login"), d.get("passwd")) != (conf.get("system::username"), conf.get("system::password")):
            col.add(path, at.get("system::username"), tool, f"system::username/password differ from cluster.conf's login/passwd of {name!r}")
    col.ok(path, tool)


def check_virt_install(col: Collector, path: Path) -> None:
    from .f13virt import check_virt_install_args

    args = path.read_text().splitlines()
    for reason, culprit in check_virt_install_args(args):
        line = args.index(culprit) + 1 if culprit in args else None
        col.add(path, line, "virt-install 0.500.3 options", reason)
    col.ok(path, "virt-install 0.500.3 options")


def check_xm_config(col: Collector, path: Path) -> None:
    """xm create execs the file as Python (Xen 4.0.1 xm/create.py) and reads the variables gopts knows."""
    import ast

    from .f13virt import XM_CONFIG_VARS

    try:
        tree = ast.parse(path.read_text(), str(path))
    except SyntaxError as err:
        col.add(path, err.lineno, "xm config", f"not Python: {err.msg}")
        return
    for node in tree.body:
        names = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        if not isinstance(node, ast.Assign) or len(names) != 1:
            col.add(path, node.lineno, "xm config", "only 'name = value' lines belong in an xm config")
        elif names[0] not in XM_CONFIG_VARS:
            col.add(path, node.lineno, "xm config", f"{names[0]!r} is not a variable of Xen 4.0.1's xm create")
        else:
            try:
                ast.literal_eval(node.value)
            except ValueError:
                col.add(path, node.lineno, "xm config", f"{names[0]} is not a literal value")
    col.ok(path, "xm config")


def check_json(col: Collector, path: Path) -> None:
    import json

    try:
        json.loads(path.read_text())
    except ValueError as exc:
        col.add(path, getattr(exc, "lineno", None), "json", str(exc).split(": line")[0])
    col.ok(path, "json")


# ---------------------------------------------------------------------------------------------
# lvm.conf
# ---------------------------------------------------------------------------------------------

# Modern LVM (2.03) reads F13's file and says so; these lines are expected and not problems.
LVM_EXPECTED = ("locking_type (3) is deprecated", "see lvmlockd(8)", "LVM configuration valid",
                "LVM configuration invalid", "leaked on lvmconfig invocation")


def check_lvm_conf(col: Collector, path: Path) -> None:
    lvmconfig = _tool("lvmconfig")
    with tempfile.TemporaryDirectory(prefix="isobuild-lvm-") as tmp:
        (Path(tmp) / "lvm.conf").write_bytes(path.read_bytes())
        proc = run([lvmconfig, "--validate"], check=False, timeout=60,
                   env={"LVM_SYSTEM_DIR": tmp, "LVM_SUPPRESS_FD_WARNINGS": "1"})
    text = path.read_text().splitlines()
    out = (proc.stdout or "") + (proc.stderr or "")
    for raw in out.splitlines():
        line = raw.strip()
        if not line or any(x in line for x in LVM_EXPECTED):
            continue
        m = re.search(r"line (\d+)", line)
        lineno = int(m.group(1)) if m else None
        s = re.search(r'setting "([^"]+)"', line)
        if lineno is None and s:
            key = s.group(1).rsplit("/", 1)[-1]
            lineno = next((i + 1 for i, t in enumerate(text) if re.match(rf"\s*{re.escape(key)}\s*=", t)), None)
        col.add(path, lineno, "lvmconfig --validate", line)
    if proc.returncode != 0 and not any(p.file == str(path) for p in col.problems):
        col.add(path, None, "lvmconfig --validate", f"exit status {proc.returncode}")
    col.ok(path, "lvmconfig")


# ---------------------------------------------------------------------------------------------
# init order
# ---------------------------------------------------------------------------------------------


def check_init_order(col: Collector, path: Path) -> None:
    table = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 7 or parts[1] not in STATES or not parts[3].isdigit() or not parts[4].isdigit():
            col.add(path, i, "init-order", f"malformed line: {line!r}",
                    "service on|off|later levels start stop Required-Start Required-Stop")
            continue
        name, state, levels, start, stop, rs, rst = parts
        # `later` is on at boot once its step has run: its order is checked like an enabled service's
        table.append(InitService(name, state != "off", levels, int(start), int(stop),
                                 tuple(x for x in rs.split(",") if x != "-"),
                                 tuple(x for x in rst.split(",") if x != "-")))
    for msg in check_order(tuple(table)):
        col.add(path, None, "init-order", msg)
    col.ok(path, "init-order")


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeUnderCheck:
    """What a node file's checker may need besides the file: the node and its rendered root."""

    node: Node
    root: Path


def _check_script(col: Collector, path: Path) -> None:
    dialect = shell_dialect(path)
    if dialect:  # without a #! line nothing checks it, and validate says so
        check_shell_text(col, path, path.read_text(), dialect)


# How each kind of node file is checked: every row of nodefiles.NODE_FILES names one of these.
NODE_CHECKERS: dict[str, Callable[[Collector, Path, NodeUnderCheck], None]] = {
    "cluster.conf": lambda col, p, on: check_cluster_conf(col, p),
    "fence_na.conf": lambda col, p, on: check_fence_na_conf(col, p, on.root / "etc/cluster/cluster.conf"),
    "drbd.conf": lambda col, p, on: check_drbd(col, p, on.node.fqdn, str(on.node.ip["sn"])),
    "drbd include": lambda col, p, on: col.ok(p, "drbdadm-83"),  # checked through drbd.conf's include
    "lvm.conf": lambda col, p, on: check_lvm_conf(col, p),
    "init-order": lambda col, p, on: check_init_order(col, p),
    "sxp": lambda col, p, on: check_sxp(col, p),
    "hosts": lambda col, p, on: check_hosts(col, p),
    "iptables": lambda col, p, on: check_iptables(col, p),
    "iptables fragment": lambda col, p, on: check_iptables(col, p, fragment=True),
    "lokkit": lambda col, p, on: check_lokkit_config(col, p, on.root),
    "script": lambda col, p, on: _check_script(col, p),
    "sourced shell": lambda col, p, on: check_shell_text(col, p, p.read_text(), "sh", sourced=True),
    "domU config": lambda col, p, on: check_domu_config(col, p),
    "xm config": lambda col, p, on: check_xm_config(col, p),
    "virt-install": lambda col, p, on: check_virt_install(col, p),
    "guest kickstart": lambda col, p, on: check_kickstart(col, p, node=False),
}


def validate(build_dir: Path, cluster: Cluster) -> dict[Path, str]:
    """Validate a render of `cluster` in build_dir. Returns {file: "tool, tool"}; raises ProblemsError
    listing every problem of every file."""
    build_dir = Path(build_dir)
    col = Collector(build_dir, cluster.secrets().values())
    _require_tools(cluster)
    for node in cluster.nodes:
        ks = build_dir / "kickstart" / f"{node.name}.ks"
        if not ks.is_file():
            col.add(ks, None, "render", "missing: run `invoke render` first")
        else:
            check_kickstart(col, ks)
        check_node_files(col, cluster, node, build_dir / "nodes" / node.name)
    model = build_dir / "model.json"
    if model.is_file():
        check_json(col, model)
    if col.problems:
        raise ProblemsError(f"validate {build_dir}", col.problems)
    return col.checked


def _require_tools(cluster: Cluster) -> None:
    """Fail early and clearly when a validator is missing, naming its package."""
    for tool in ("bash", "shellcheck", "drbdadm-83", "lvmconfig", "unshare", "ip", "hostname"):
        _tool(tool)
    if cluster.install.firewall == "cluster":
        from .run import which

        which("iptables-legacy-restore") or _tool("iptables-restore")


def check_node_files(col: Collector, cluster: Cluster, node: Node, root: Path) -> None:
    """Every file the registry says the node gets, with its checker; any other file is a problem."""
    if not root.is_dir():
        col.add(root, None, "render", "missing: run `invoke render` first")
        return
    on = NodeUnderCheck(node, root)
    for f in nodefiles.planned(cluster):
        p = root / f.rel
        if not p.is_file():
            col.add(p, None, "render", "expected file is missing")
        else:
            NODE_CHECKERS[f.row.check](col, p, on)
    for p in sorted(root.rglob("*")):
        if p.is_file() and p not in col.checked and not any(x.file == str(p) for x in col.problems):
            col.add(p, None, "validate", "no validator checks this file",
                    "add one to isobuild/validate.py (every rendered file is checked by a real tool)")


# ---------------------------------------------------------------------------------------------
# The cman the node will install
# ---------------------------------------------------------------------------------------------


def check_against_node_cman(cluster: Cluster, build_dir: Path, base: Path | None,
                            repo_dir: Path | None) -> str | None:
    """Validate every node's cluster.conf against the cluster.rng inside the cman RPM the node will
    install: the newest cman of the base DVD and our repo (what yum picks). Returns what was checked,
    None when neither has a cman (nothing to check); raises ProblemsError when the schema refuses it."""
    from .cmanschema import CMAN_RNG, _evr_key, repo_packages, rpm_file
    from .installtree import DirTree, open_install_tree

    trees = []
    try:
        if base is not None:
            trees.append(("the base DVD", open_install_tree(Path(base))))
        if repo_dir is not None:
            trees.append(("our repo", DirTree(Path(repo_dir))))
        found = [(p, t) for origin, t in trees for p in repo_packages(t.read, "cman", origin)]
        if not found:
            return None
        pkg, tree = max(found, key=lambda pt: _evr_key(pt[0]))
        col = Collector(build_dir, cluster.secrets().values())
        with tempfile.TemporaryDirectory() as tmp:
            rpm = tree.read(pkg.href)
            rng = rpm_file(rpm, CMAN_RNG, Path(tmp)) if rpm is not None else None
            if rng is None:
                raise ProblemsError("cluster.conf schema of the node's cman", [Problem(
                    f"{pkg.origin}: {pkg.href}", None, "cman", f"{pkg.nvr} carries no {CMAN_RNG}",
                    "ccs_config_validate on the node needs it; is this a cman 3.x package?")])
            (Path(tmp) / "cluster.rng").write_bytes(rng)
            label = f"cman {pkg.nvr} ({pkg.origin})"
            for n in cluster.nodes:
                check_cluster_conf(col, Path(build_dir) / "nodes" / n.name / "etc/cluster/cluster.conf",
                                   {label: Path(tmp) / "cluster.rng"})
        if col.problems:
            raise ProblemsError("cluster.conf against the cman the nodes will install", col.problems)
        return label
    finally:
        for _, t in trees:
            t.close()
