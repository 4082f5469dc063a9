"""fence_devices: each device, its address, its agent options; fence_na's one shared login."""
from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from .checker import Checker, key_path, plain_key, typename, unknown
from .model import FenceDevice
from .settings import fill
from .values import FENCE_AGENT_RE, HOST_LABEL_RE, valid_dns_name


def load_fence_devices(ck: Checker, top, read_secret) -> dict[str, FenceDevice]:
    """The devices that loaded, by their path (fence_devices[i])."""
    devices: dict[str, FenceDevice] = {}
    seq = top.get("fence_devices", [])
    names: set[str] = set()
    for _, path, item, m in ck.items(seq, "fence_devices", "fence_device"):
        name = m.get("name", "")
        if "name" in m:
            ck.seen.device_names.append((path, name))
        if name:
            if name in names:
                ck.at(f"{path}.name", f"fence device {name!r} is defined twice")
            names.add(name)
        if isinstance(m.get("ipaddr"), str):
            address = m.get("address")
            ck.seen.device_addresses.append((path, m["ipaddr"].strip(),
                                             address.strip() if isinstance(address, str) else None))
        agent = m.get("agent", "")
        pw_file, secret = (Path(""), None)
        if "password_file" in m:
            pw_file, secret = read_secret(m["password_file"], f"{path}.password_file",
                                          ck.line(f"{path}.password_file"), "password")
            if secret is not None and not secret.reveal():
                ck.at(f"{path}.password_file", f"password file {m['password_file']} is empty")
        address = _fence_address(ck, m, path)
        options = _fence_options(ck, m, path, agent)
        if name and agent and secret is not None and "ipaddr" in m and "login" in m:
            devices[path] = fill(FenceDevice, m, ipaddr=m["ipaddr"].strip(), password_file=pw_file, password=secret,
                                 address=address, options=options)
    _check_fence_na_credentials(ck, devices)
    return devices


def _fence_address(ck: Checker, m: dict[str, Any], path: str) -> str | None:
    """The address a device's ipaddr resolves to on the node: the node has no DNS for fencing (a
    fence must work when the network's DNS is down), so a host name needs `address` (-> /etc/hosts)."""
    ipaddr = m.get("ipaddr")
    if not isinstance(ipaddr, str):
        return None
    ipaddr = ipaddr.strip()
    try:
        ipaddress.IPv4Address(ipaddr)
        is_ip = True
    except ValueError:
        is_ip = False
    if "address" in m:
        if is_ip:
            ck.at(f"{path}.address",
                  f"ipaddr {ipaddr} is already an address",
                  "drop address, or set ipaddr to the device's host name")
            return ipaddr
        addr = ck.ipv4(m["address"].strip(), f"{path}.address", ck.line(f"{path}.address"))
        return None if addr is None else str(addr)
    if is_ip:
        return ipaddr
    if valid_dns_name(ipaddr) or HOST_LABEL_RE.match(ipaddr):
        ck.at(f"{path}.ipaddr",
              f"host name {ipaddr!r} does not resolve on the node",
              f"add `address: <its IPv4 address>` to this device (written to /etc/hosts as {ipaddr}), "
              "or give the address as ipaddr")
    return None


def _check_fence_na_credentials(ck: Checker, devices: dict[str, FenceDevice]) -> None:
    """fence_na.conf has one system::username/system::password, which fence_na compares with every
    device's login/passwd (fence-agents v3.1.0 fence/agents/node_assassin/fence_na.pl)."""
    na = [(path, d) for path, d in devices.items() if d.agent == "fence_na"]
    first = na[0][1] if na else None
    for path, d in na[1:]:
        if (d.login, d.password.reveal()) != (first.login, first.password.reveal()):
            ck.at(f"{path}.login",
                  f"fence_na device {d.name!r} has another login or password than "
                  f"{first.name!r}",
                  "fence_na.conf holds one login and password for all Node Assassins: use the same on each")


# <fencedevice> attributes every device gets from its own keys; options may not set them again.
FENCE_FIXED_ATTRS = {"name": "name", "agent": "agent", "ipaddr": "ipaddr", "login": "login",
                     "passwd": "password_file"}


def _fence_options(ck: Checker, m: dict, path: str, agent: str) -> dict[str, str]:
    """fence_devices[].options: extra <fencedevice> attributes, each one the agent's group in every
    cman schema a node may run accepts (isobuild/cmanschema.py), so ccs_config_validate passes."""
    from .cmanschema import fence_device_problem, fence_options_allowed

    raw_opts = m.get("options") or {}
    opath = f"{path}.options"
    fixed = {"ipaddr", "login", "passwd"}
    out: dict[str, str] = {}
    for key, value in raw_opts.items():
        kpath, kline = key_path(opath, key), ck.key_line(raw_opts, key)
        if not plain_key(key) or not re.match(r"^[a-z_][a-z0-9_]*$", str(key)):
            ck.add(kpath, unknown("fence agent option", key), kline, "option names are agent attributes such as lanplus")
        elif key in FENCE_FIXED_ATTRS:
            ck.add(kpath, f"{key} is set by {path}.{FENCE_FIXED_ATTRS[key]}", kline, "remove it from options")
        elif value is False:
            ck.add(kpath, "false is not a value: fence_ipmilan 3.0.12 turns a flag on whenever it is present "
                   "(lanplus=\"0\" means lanplus); the Python agents take only 1 or yes", kline,
                   "remove the option to leave it off")
        elif isinstance(value, bool) or (isinstance(value, (str, int)) and str(value).strip()):
            out[key] = "1" if value is True else str(value).strip()
        else:
            ck.add(kpath, f"must be a string, number or true, got {typename(value)}", kline)
    if out and agent and FENCE_AGENT_RE.match(agent):
        refused = fence_device_problem(agent, fixed, set(out))
        if refused:
            schema, _ = refused
            allowed = fence_options_allowed(agent, fixed)
            for key in sorted(set(out) - set(allowed)):
                ck.add(key_path(opath, key), f"{agent} takes no option {key!r} in the {schema} schema, so "
                       "ccs_config_validate on the node would refuse cluster.conf", ck.key_line(raw_opts, key),
                       f"{agent} options every supported cman accepts: {', '.join(allowed) or 'none'}")
            if set(out) <= set(allowed):  # each is known, the combination is not
                ck.add(opath, f"the {schema} schema refuses this combination of {agent} options", ck.line(opath),
                       "use fewer options")
    return out
