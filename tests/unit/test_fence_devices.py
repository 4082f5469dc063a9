"""Fence devices on the node: every ipaddr resolves from /etc/hosts, and Node Assassin (fence_na) has
its package, its Perl dependency and /etc/cluster/fence_na.conf.

fence_na's side is fence-agents v3.1.0 fence/agents/node_assassin/fence_na.pl: it reads its config
(fence_na.lib read_conf), finds the device whose na::N::ipaddr equals (lower-cased) the ipaddr
fenced passes from cluster.conf, and refuses unless login/passwd equal system::username/password.
"""
from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from lxml import etree
from pykickstart.parser import KickstartParser
from pykickstart.version import F13, makeVersion

from isobuild.loader import load_definition
from isobuild.nodefiles import secret_paths
from isobuild.render import node_files, render, render_kickstart
from isobuild.validate import read_fence_na_conf

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [REPO / "cluster.yaml", REPO / "examples" / "ipmi-cluster.yaml"]


def _hosts(text: str) -> dict[str, str]:
    names = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            names.setdefault(name, fields[0])
    return names


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_fence_ipaddr_resolves_on_the_node(example):
    c = load_definition(example)
    for n in c.nodes:
        files = node_files(c, n)
        names = _hosts(files["etc/hosts"])
        conf = etree.fromstring(files["etc/cluster/cluster.conf"].encode())
        for dev in conf.iter("fencedevice"):
            addr = dev.get("ipaddr")
            try:
                ipaddress.IPv4Address(addr)
            except ValueError:
                assert addr in names, f"{addr} (fence device {dev.get('name')}) does not resolve on {n.name}"
                assert names[addr] == c.fence_device(dev.get("name")).address


def test_fence_na_conf_lets_fence_na_find_and_accept_each_device():
    c = load_definition(REPO / "cluster.yaml")
    files = node_files(c, c.nodes[0])
    conf = read_fence_na_conf(files["etc/cluster/fence_na.conf"])
    n = int(conf["system::na_num"])
    by_addr = {conf[f"na::{i}::ipaddr"].lower(): i for i in range(1, n + 1)}
    devices = etree.fromstring(files["etc/cluster/cluster.conf"].encode()).findall(".//fencedevice[@agent='fence_na']")
    assert devices and n == len(devices)
    for dev in devices:
        i = by_addr[dev.get("ipaddr").lower()]
        assert conf[f"na::{i}::tcp_port"] == "238"
        assert (dev.get("login"), dev.get("passwd")) == (conf["system::username"], conf["system::password"])
    # fence_na logs the password on every call and echoes it to fenced unless quiet
    assert conf["system::log"] == "/dev/null" and conf["system::quiet"] == "1"
    for node in c.nodes:
        port = next(f.port for f in node.fence if f.device == "batou")
        assert conf[f"na::1::alias::{int(port)}"] == node.fqdn


def test_fence_na_conf_is_secret(tmp_path):
    c = load_definition(REPO / "cluster.yaml")
    render(c, tmp_path)
    assert "etc/cluster/fence_na.conf" in secret_paths(c)  # PXE serves it from private/ only
    for n in c.nodes:
        p = tmp_path / "nodes" / n.name / "etc/cluster/fence_na.conf"
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert c.fence_devices[0].password.reveal() in p.read_text()


@pytest.mark.parametrize("example,uses_na", [(EXAMPLES[0], True), (EXAMPLES[1], False)], ids=["fence_na", "ipmi"])
def test_packages_follow_the_agent(example, uses_na):
    c = load_definition(example)
    handler = makeVersion(F13)
    KickstartParser(handler).readKickstartFromString(render_kickstart(c, c.nodes[0]))
    pkgs = set(handler.packages.packageList)
    assert ({"fence-na", "perl-Net-Telnet"} <= pkgs) == uses_na
    assert ("fence-na" in pkgs) == uses_na
    assert ("etc/cluster/fence_na.conf" in node_files(c, c.nodes[0])) == uses_na
