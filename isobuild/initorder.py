"""The ONE table of SysV start order for the cluster services (seed: "Altering Daemon Start Order").

Why it matters: xend takes the network down while it builds its bridges, so it must finish before
cman starts totem (or the peer fences us); DRBD needs cman (fencing, dlm), clvmd needs the DRBD
device, gfs2 needs clvmd, and the VMs need the GFS2 mount. Each service gets the chkconfig line
(`# chkconfig: <levels> <start> <stop>`) and the LSB `Required-Start` it must end up with; the
firstboot step rewrites the installed init scripts' headers from this table and re-adds them with
chkconfig so the rc*.d links follow it.

Two storage modes (storage.managed_by):
- init:      drbd, clvmd, gfs2 and xendomains start from init, in the chain above (the seed's layout).
- rgmanager: drbd, clvmd, gfs2 and xendomains stay off in init; rgmanager (last) starts storage as a
             cluster service and the VMs as <vm> services, so a node without quorum touches nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

MODES = ("init", "rgmanager")
STATES = ("on", "off", "later")  # the second field of an init-order line


@dataclass(frozen=True)
class InitService:
    name: str
    enabled: bool  # chkconfig <name> on/off
    levels: str  # runlevels for the chkconfig line ("2345"; "-" = not started by default)
    start: int
    stop: int
    required_start: tuple[str, ...]
    required_stop: tuple[str, ...]
    enabled_by: str = ""  # a later firstboot step switches it on; 40-init-order leaves it off until then

    @property
    def state(self) -> str:
        """on | off | later (40-init-order: off; the step named by enabled_by: on)."""
        return "later" if self.enabled_by else ("on" if self.enabled else "off")

    @property
    def chkconfig(self) -> str:
        return f"{self.levels} {self.start:02d} {self.stop:02d}"

    def line(self) -> str:
        """One line of etc/an-cluster/init-order (whitespace separated, LSB lists comma separated)."""
        return (f"{self.name} {self.state} {self.levels} {self.start:02d} {self.stop:02d} "
                f"{','.join(self.required_start) or '-'} {','.join(self.required_stop) or '-'}")


# name, start, stop, Required-Start, Required-Stop. Start numbers: the seed's (xend 12, drbd 20
# instead of 70, clvmd 24, gfs2 26, xendomains 99); cman moves from 21 to 14 so that the S-numbers
# agree with the dependency chain (xend 12 < cman 14 < drbd 20), which chkconfig alone does not
# enforce on F13. Stop numbers run the chain backwards (a service stops before what it needs):
# xendomains 00, rgmanager 03, gfs2 74, clvmd 76, drbd 78 (the seed's 08 would take DRBD down under a
# mounted GFS2), cman 79, xend 97.
# No xenstored/xenconsoled lines: Xen 4.0.1 installs only the xend and xendomains init scripts
# (tools/hotplug/Linux/Makefile, install-initd) and `xend start` starts xenstored and xenconsoled
# itself (tools/misc/xend, main); the seed's S10/S11 scripts came from Fedora's own xen packaging.
_CHAIN = (
    ("xend", 12, 97, ("$syslog", "$remote_fs"), ("$syslog", "$remote_fs")),
    ("cman", 14, 79, ("$network", "$time", "xend"), ("$network", "$time")),
    ("drbd", 20, 78, ("$local_fs", "$network", "$syslog", "cman"), ("$local_fs", "$network", "$syslog")),
    ("clvmd", 24, 76, ("$local_fs", "drbd"), ("$local_fs",)),
    ("gfs2", 26, 74, ("$network", "clvmd"), ("$network",)),
    ("rgmanager", 97, 3, ("$network", "cman", "gfs2"), ("$network", "cman")),
    ("xendomains", 99, 0, ("$syslog", "$remote_fs", "xend", "gfs2"), ("$syslog", "$remote_fs", "xend")),
)

# Services that rgmanager owns in rgmanager mode (off in init).
RGMANAGER_OWNED = ("drbd", "clvmd", "gfs2", "xendomains")
# In init mode, services a later firstboot step switches on: drbd's boot-time `start` (an `adjust`)
# before 60-drbd made the metadata would leave the resource Diskless (drbd 8.3.7 scripts/drbd).
ENABLED_LATER = {"drbd": "60-drbd"}


def services(managed_by: str) -> tuple[InitService, ...]:
    """The start order for one storage mode, in start order."""
    if managed_by not in MODES:
        raise ValueError(f"unknown storage mode {managed_by!r}; expected one of {', '.join(MODES)}")
    out = []
    for name, start, stop, req_start, req_stop in _CHAIN:
        enabled = True
        if managed_by == "rgmanager":
            if name in RGMANAGER_OWNED:
                enabled = False
            if name == "rgmanager":
                # rgmanager brings storage up itself: it only needs cman (and xend for the VMs).
                req_start = ("$network", "cman", "xend")
        elif name == "xendomains":
            enabled = False  # rgmanager starts the VMs (<vm> services); xendomains would start them twice
        elif name == "rgmanager":
            req_start = ("$network", "cman", "gfs2")
        levels = "2345" if enabled else "-"
        later = ENABLED_LATER.get(name, "") if enabled else ""
        out.append(InitService(name, enabled, levels, start, stop, tuple(req_start), tuple(req_stop), later))
    return tuple(out)


def check_order(table: tuple[InitService, ...]) -> list[str]:
    """Problems in a table: a service that starts before, or stops after, one it requires."""
    by_name = {s.name: s for s in table}
    problems = []
    for s in table:
        for dep in s.required_start:
            d = by_name.get(dep)
            if d is None or not (d.enabled and s.enabled):
                continue
            if d.start >= s.start:
                problems.append(f"{s.name} (S{s.start:02d}) requires {dep} which starts at S{d.start:02d}")
            if d.stop <= s.stop:
                problems.append(f"{s.name} (K{s.stop:02d}) requires {dep} which stops first, at K{d.stop:02d}")
    return problems


def init_order_file(managed_by: str) -> str:
    head = (
        "# AN!Cluster SysV init order (generated from isobuild/initorder.py; do not edit on the node).\n"
        f"# storage.managed_by: {managed_by}\n"
        "# service on|off|later chkconfig-levels start stop Required-Start Required-Stop\n"
        "# (later: off until the firstboot step that needs it first has run, which switches it on)\n"
    )
    return head + "".join(s.line() + "\n" for s in services(managed_by))
