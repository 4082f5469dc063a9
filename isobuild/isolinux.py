"""isolinux.cfg as data: parse, add one install entry per node, write back (like lorax's mkksiso).

The base's own lines are kept byte for byte; we only insert lines. A config is a head (global
directives before the first `label`) and a list of label blocks; a block owns every line up to the
next `label`. Keywords are case-insensitive, as in syslinux.

Rules we enforce:
- the entry that runs on timeout is never a node install (we keep the base's default and check it);
- `serial N BAUD` (needed by IPMI serial-over-LAN users) must be the first directive (syslinux);
- node entries take kernel + append from the base's install entry, drop any ks=/inst.ks=/console=/
  stage2=/repo=/method= arguments it had, and add the node's install-source arguments (the DVD:
  `ks=cdrom:/ks/<node>.ks`; the USB stick: ks=/stage2=/repo=hd:..., see isobuild/usb.py) and the
  console arguments.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import IsobuildError

_KEYWORD = re.compile(r"^\s*([A-Za-z_]+)(?:\s+(.*?))?\s*$")


def _keyword(line: str) -> tuple[str, str]:
    """('menu', 'label Foo') for '  MENU LABEL Foo'; ('', '') for blank lines and comments."""
    if line.lstrip().startswith("#"):
        return "", ""
    m = _KEYWORD.match(line)
    if not m:
        return "", ""
    return m.group(1).lower(), (m.group(2) or "")


@dataclass
class Entry:
    """One `label` block: its name and its raw lines (the `label` line first)."""

    name: str
    lines: list[str]

    def get(self, keyword: str) -> str | None:
        """Argument of the first `keyword` directive in this block (kernel, append, localboot, ...)."""
        for line in self.lines[1:]:
            kw, arg = _keyword(line)
            if kw == keyword:
                return arg
            if kw == "linux" and keyword == "kernel":  # `linux X` is `kernel X` for Linux images
                return arg
        return None

    def menu(self, what: str) -> str | None:
        """Argument of `menu <what>` (label, default, hide) or None."""
        for line in self.lines[1:]:
            kw, arg = _keyword(line)
            if kw == "menu":
                parts = arg.split(None, 1)
                if parts and parts[0].lower() == what:
                    return parts[1] if len(parts) > 1 else ""
        return None

    @property
    def is_menu_default(self) -> bool:
        return self.menu("default") is not None


@dataclass
class Config:
    head: list[str]
    entries: list[Entry] = field(default_factory=list)
    trailing_newline: bool = True

    def render(self) -> str:
        lines = list(self.head)
        for e in self.entries:
            lines.extend(e.lines)
        text = "\n".join(lines)
        return text + "\n" if self.trailing_newline else text

    def global_arg(self, keyword: str) -> str | None:
        """A global directive's argument from the head (the last one wins, as in syslinux)."""
        found = None
        for line in self.head:
            kw, arg = _keyword(line)
            if kw == keyword:
                found = arg
        return found

    def entry(self, name: str) -> Entry | None:
        for e in self.entries:
            if e.name == name:
                return e
        return None

    def timeout_entry(self) -> Entry | None:
        """The entry syslinux boots on timeout: `default <label>`, or with a menu module the `menu default`
        entry, else the first entry."""
        default = self.global_arg("default") or self.global_arg("ui")
        if default:
            word = default.split()[0]
            if not word.lower().endswith(".c32"):
                return self.entry(word)
        for e in self.entries:
            if e.is_menu_default:
                return e
        return self.entries[0] if self.entries else None


def parse(text: str) -> Config:
    lines = text.split("\n")
    trailing = text.endswith("\n")
    if trailing:
        lines = lines[:-1]
    cfg = Config(head=[], trailing_newline=trailing)
    current: Entry | None = None
    for line in lines:
        kw, arg = _keyword(line.replace("\r", ""))
        if kw == "label":
            if not arg:
                raise IsobuildError(f"isolinux.cfg: `label` without a name: {line!r}")
            current = Entry(arg.split()[0], [line])
            cfg.entries.append(current)
        elif current is None:
            cfg.head.append(line)
        else:
            current.lines.append(line)
    return cfg


@dataclass(frozen=True)
class NodeEntry:
    node: str  # short host name; also the ks file name
    fqdn: str
    cluster: str
    source_args: tuple[str, ...] = ()  # kickstart + install source arguments; () = the DVD's

    @property
    def ks(self) -> str:
        return f"ks=cdrom:/ks/{self.node}.ks"

    @property
    def args(self) -> list[str]:
        return list(self.source_args) or [self.ks]

    @property
    def title(self) -> str:
        return f"Install {self.fqdn} ({self.cluster}): ERASES ALL DISKS"


# The node entry says where the kickstart, stage2 and packages are; the template's own say is dropped.
_DROP_ARGS = ("ks=", "inst.ks=", "console=", "stage2=", "repo=", "method=")


def edit_append(append: str, add: list[str]) -> str:
    """Kernel arguments as a list: drop ks/source/console settings of the template, then add ours."""
    args = [a for a in append.split() if not a.startswith(_DROP_ARGS)]
    return " ".join(args + add)


def console_args(console: str | None) -> tuple[list[str], str | None]:
    """Kernel arguments and isolinux `serial` directive for a console setting.

    'ttyS0,115200' -> (['console=tty0', 'console=ttyS0,115200'], 'serial 0 115200');
    'tty1' -> (['console=tty1'], None); None -> ([], None).
    """
    if not console:
        return [], None
    if re.fullmatch(r"tty\d{1,2}", console):
        return [f"console={console}"], None
    m = re.fullmatch(r"ttyS([0-3])(?:,(\d+)(?:[noe][5-8]r?)?)?", console)
    if not m:
        raise IsobuildError(
            f"unsupported console setting: {console!r}",
            hint="use a serial console ttyS0..ttyS3 with an optional speed, like ttyS0,115200 "
                 "(IPMI serial-over-LAN is usually ttyS0 or ttyS1), or a VGA console like tty0",
        )
    port, baud = m.group(1), m.group(2) or "9600"
    # tty0 first, ttyS last: the kernel's /dev/console is the last one, anaconda then runs on serial.
    return ["console=tty0", f"console={console}"], f"serial {port} {baud}"


def install_template(cfg: Config) -> Entry:
    """The base's install entry: the menu default if it boots a kernel with an initrd, else the first such."""
    candidates = [e for e in cfg.entries if e.get("kernel") and "initrd=" in (e.get("append") or "")]
    if not candidates:
        raise IsobuildError(
            "isolinux.cfg of the base has no install entry (a label with `kernel` and `append initrd=...`)",
            hint="is the base a Fedora 13 install DVD? its isolinux/isolinux.cfg has `label linux`",
        )
    for e in candidates:
        if e.is_menu_default:
            return e
    plain = [e for e in candidates if not re.search(r"\b(rescue|xdriver|nomodeset)\b", e.get("append") or "")]
    return (plain or candidates)[0]


def add_node_entries(text: str, nodes: list[NodeEntry], console: str | None = None) -> str:
    """The base isolinux.cfg with one install entry per node added after the base's install entry."""
    cfg = parse(text)
    already = [e.name for e in cfg.entries if re.search(r"\bks=(cdrom|hd:LABEL=[^:]*):/ks/", e.get("append") or "")]
    if already:
        raise IsobuildError(
            f"isolinux.cfg of the base already has node install entries ({', '.join(already)})",
            hint="remaster the original Fedora 13 DVD, not a disc this tool made",
        )
    template = install_template(cfg)
    extra_args, serial = console_args(console)
    taken = {e.name.lower() for e in cfg.entries}
    new_entries = []
    for n in nodes:
        label = n.node if n.node.lower() not in taken else f"install-{n.node}"
        if label.lower() in taken:
            raise IsobuildError(f"isolinux.cfg: label {label!r} for node {n.node} already exists in the base")
        taken.add(label.lower())
        append = edit_append(template.get("append") or "", [*n.args, *extra_args])
        new_entries.append(Entry(label, [
            f"label {label}",
            f"  menu label {n.title}",
            f"  kernel {template.get('kernel')}",
            f"  append {append}",
        ]))
    before = cfg.timeout_entry()
    pos = cfg.entries.index(template) + 1
    cfg.entries[pos:pos] = new_entries
    _fit_menu(cfg, max(len(n.title) for n in nodes) if nodes else 0)
    if serial:
        # Replace a serial line the base may have, and put ours first (syslinux requires that).
        cfg.head = [serial] + [line for line in cfg.head if _keyword(line)[0] != "serial"]
    after = cfg.timeout_entry()
    node_labels = {e.name for e in new_entries}
    if after is None or after.name in node_labels or (before and after.name != before.name):
        raise IsobuildError(
            "isolinux.cfg: the timeout default would become a node install",
            hint="the base's `default` must name one of its own entries (or a menu module)",
        )
    return cfg.render()


MENU_COLUMNS = 80  # syslinux menus are 80 columns (vesamenu: 640x480 with an 8x16 font)


def _fit_menu(cfg: Config, longest: int) -> None:
    """Narrow the menu margin so the longest entry (with 'ERASES ALL DISKS' at its end) is not cut.

    syslinux shows MENU_COLUMNS - 6 - 2 * margin characters of a label; the default margin is 10.
    """
    margin = 10
    for line in cfg.head:
        kw, arg = _keyword(line)
        parts = arg.split()
        if kw == "menu" and len(parts) == 2 and parts[0].lower() == "margin" and parts[1].isdigit():
            margin = int(parts[1])
    if longest <= MENU_COLUMNS - 6 - 2 * margin:
        return
    wanted = max(0, (MENU_COLUMNS - 6 - longest) // 2)
    cfg.head = [line for line in cfg.head if not _is_menu_margin(line)]
    # After the base's last `menu` setting, so it reads as part of the menu look.
    last_menu = max((i for i, line in enumerate(cfg.head) if _keyword(line)[0] == "menu"), default=len(cfg.head) - 1)
    cfg.head.insert(last_menu + 1, f"menu margin {wanted}")


def _is_menu_margin(line: str) -> bool:
    kw, arg = _keyword(line)
    return kw == "menu" and arg.lower().startswith("margin")
