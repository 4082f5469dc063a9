"""The checks of single values of the definition: names, sizes, addresses, ports.

Pure functions and the rules that settings on the model's fields name (isobuild/settings.py): a rule
takes a value as written and returns None or (reason, hint), the text the loader reports for it.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import re
from typing import Any, Callable

# tcp port where the firstboot steps of the two nodes meet before the first cman start (50-cman)
RENDEZVOUS_PORT = 7700
# Ports the cluster stack itself listens on (the firewall opens exactly these plus drbd/xend relocation).
CLUSTER_PORTS = {
    5404: "corosync/cman (udp)",
    5405: "corosync/cman (udp)",
    21064: "dlm",
    11111: "ricci",
    16851: "modclusterd",
    22: "ssh",
    RENDEZVOUS_PORT: "an-cluster-firstboot rendezvous (before cman starts)",
}

XEN_OUI = "00:16:3e"   # Xen's randomMAC (xend/server/netif.py): 00:16:3e, then 3 bytes, the first < 0x80
CPUSET_RE = re.compile(r"^\^?\d+(-\d+)?(,\^?\d+(-\d+)?)*$")
INSTALL_URL_RE = re.compile(r"^(http://|ftp://|nfs:)[^\s,'\"]+$")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,15}$")
HOST_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
SIZE_RE = re.compile(r"^(\d+)\s*([KMGT])(?:i?B)?$", re.I)
RATE_RE = re.compile(r"^\d+[KMG]$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
LVM_NAME_RE = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$")
CRYPT_RE = re.compile(r"^\$(1|5|6)\$(rounds=\d+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{22,86}$")
CONSOLE_RE = re.compile(r"^(tty\d+|ttyS\d+(,\d+(n8)?)?)$")
FENCE_AGENT_RE = re.compile(r"^fence_[a-z0-9_]+$")
PKG_RE = re.compile(r"^[@A-Za-z0-9][A-Za-z0-9._+*-]*$")
IFACE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,14}$")
DISK_RE = re.compile(r"^(sd[a-z]+|hd[a-z]+|vd[a-z]+|xvd[a-z]+|cciss/c\d+d\d+|nvme\d+n\d+)$")
KERNEL_VR_RE = re.compile(r"^\d+(\.\d+)+-[A-Za-z0-9_.]+$")
UNITS_KIB = {"K": 1, "M": 1024, "G": 1024**2, "T": 1024**3}


def parse_size_mib(text: str) -> int | None:
    """'256M' -> 256, '4G' -> 4096. None when it does not parse or is zero."""
    m = SIZE_RE.match(str(text).strip())
    # integer arithmetic: 400 digits of K overflowed a float; int() refuses more than 4300 digits
    if not m or len(m.group(1)) > 18:
        return None
    mib = int(m.group(1)) * UNITS_KIB[m.group(2).upper()] // 1024
    return mib if mib > 0 else None


def valid_dns_name(name: str) -> bool:
    if not name or len(name) > 253 or name.endswith("."):
        return False
    labels = name.split(".")
    return len(labels) >= 2 and all(HOST_LABEL_RE.match(lb) for lb in labels) and not labels[-1].isdigit()


def valid_timezone(tz: str) -> bool:
    if tz in ("UTC", "GMT"):
        return True
    if not re.match(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$", tz):
        return False
    zones = known_timezones()
    return tz in zones if zones else True


@functools.lru_cache(maxsize=1)
def known_timezones() -> frozenset[str]:
    """The host's Olson names, read once (scanning the tz database takes milliseconds per call)."""
    try:
        import zoneinfo

        return frozenset(zoneinfo.available_timezones())
    except Exception:
        return frozenset()


def lvm_name_problem(name: str) -> tuple[str, str] | None:
    """Why `name` cannot name an LVM VG or LV (lvm2's rules), or None."""
    bad = (not LVM_NAME_RE.match(name) or name in (".", "..") or len(name) > 127
           or name.startswith(("snapshot", "pvmove")) or any(s in name for s in ("_mlog", "_mimage", "_rimage", "_tdata")))
    if bad:
        return (f"{name!r} is not a valid LVM name",
                "letters, digits and + _ . -, not starting with '-', no reserved prefixes/suffixes")
    return None




# ---------------------------------------------------------------------------------------------
# Rules: value -> None, or (reason, hint) as the loader reports it at the key
# ---------------------------------------------------------------------------------------------

Rule = Callable[[Any], "tuple[str, str | None] | None"]
SUPPORTED_RELEASE = "fedora-13-x86_64"


def rule(ok: Callable[[Any], Any], reason: str, hint: str | None = None) -> Rule:
    """A rule from a predicate; `reason` is formatted with the value ({0!r} or {0})."""
    def check(value: Any) -> tuple[str, str | None] | None:
        return None if ok(value) else (reason.format(value), hint)
    return check


def one_of(choices: tuple, reason: str, hint: str | None = None) -> Rule:
    return rule(lambda v: v in choices, reason, hint)


def unless_empty(regex: str | re.Pattern, reason: str, hint: str | None = None) -> Rule:
    """The value matches `regex`; an empty one is left to the loader (it reports nothing more)."""
    pattern = re.compile(regex) if isinstance(regex, str) else regex
    return rule(lambda v: not v or pattern.match(v), reason, hint)


def size(hint: str) -> Rule:
    return rule(lambda v: parse_size_mib(v) is not None, "{0!r} is not a size", hint)


AT_LEAST_ONE = rule(lambda v: v >= 1, "must be >= 1, got {0}")
PORT = rule(lambda v: 1 <= v <= 65535, "{0} is not a port number (1-65535)")


def drbd_port(port: int) -> tuple[str, str | None] | None:
    if not 1 <= port <= 65535:
        return PORT(port)
    if port in CLUSTER_PORTS:
        return f"{port} is already used by {CLUSTER_PORTS[port]}", "DRBD's customary port is 7789"
    return None


def lvm_name(name: str) -> tuple[str, str | None] | None:
    return lvm_name_problem(name) if name else None


def vm_name(name: str) -> tuple[str, str | None] | None:
    if name and not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$", name):
        return f"{name!r} is not a valid VM name", "letters, digits and _ . + - (it names the LV and the Xen domain)"
    return lvm_name(name)


def vm_mac(value: Any) -> tuple[str, str | None] | None:
    mac = str(value).lower()
    if not MAC_RE.match(mac) or int(mac[:2], 16) & 1:
        return (f"{value!r} is not a unicast MAC address",
                f"e.g. {XEN_OUI}:00:10:01, or leave it out for a stable one derived from the cluster and VM name")
    return None


def cpuset(value: Any) -> tuple[str, str | None] | None:
    return None if CPUSET_RE.match(str(value)) else (f"{str(value)!r} is not a CPU list", "e.g. 1, 1-3 or 0,2")


def derived_mac(cluster_name: str, vm_name: str, attempt: int = 0) -> str:
    """A stable MAC in Xen's range from the cluster and VM name (attempt > 0 after a collision)."""
    seed = f"{cluster_name}/{vm_name}" + (f"/{attempt}" if attempt else "")
    b = hashlib.sha256(seed.encode()).digest()
    return f"{XEN_OUI}:{b[0] & 0x7f:02x}:{b[1]:02x}:{b[2]:02x}"


def domu_config_problem(text: str, vm_name: str) -> str | None:
    """Why an xm domU config would not start VM_NAME, or None. xm (Xen 4.0.1) executes the file as
    Python and takes the domain name from `name`; vm.sh then looks the domain up by the VM's name."""
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        return f"line {err.lineno}: not a Python assignment file ({err.msg})"
    names = [n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
             and any(isinstance(t, ast.Name) and t.id == "name" for t in n.targets)]
    if not names:
        return "sets no name = \"...\""
    if names[-1] != vm_name:
        return f"name = {names[-1]!r}, but the VM is {vm_name!r} (rgmanager looks the domain up by the VM's name)"
    return None
