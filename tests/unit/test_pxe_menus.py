"""PXE pieces that need no base image: menus, MAC names, URL checks, exports, the serve ACL."""
from __future__ import annotations

import dataclasses
import re

import pytest
from conftest import REPO

from isobuild import pxe
from isobuild.errors import IsobuildError
from isobuild.loader import load_definition
from isobuild.serve import AccessRules


@pytest.fixture(scope="module")
def ipmi():
    return load_definition(REPO / "examples" / "ipmi-cluster.yaml")


@pytest.fixture(scope="module")
def seed():
    return load_definition(REPO / "cluster.yaml")


def test_mac_file_name_is_pxelinux_form():
    assert pxe.mac_file("52:54:00:AB:cd:01") == "01-52-54-00-ab-cd-01"
    with pytest.raises(IsobuildError, match="not a MAC"):
        pxe.mac_file("52-54-00-ab-cd-01")


def test_boot_mac_is_the_bcn_interfaces(ipmi):
    assert pxe.boot_mac(ipmi, ipmi.node("node-b1")) == "52:54:00:12:35:01"  # eth1 is the bcn here
    assert pxe.boot_mac(ipmi, ipmi.node("node-b2")) is None  # only eth0 (ifn) is known


def test_menu_timeout_default_is_local_disk(ipmi, seed):
    for cluster in (ipmi, seed):
        nodes = list(cluster.nodes)
        text = pxe.pxelinux_config(cluster, nodes, "http://10.0.0.1:8080", "t")
        assert pxe.timeout_label(text) == "local"
        assert "localboot 0" in text
        for n in nodes:
            entry = text.split(f"label install-{n.name}\n", 1)[1].split("\nlabel ", 1)[0]
            assert "menu default" not in entry
            assert f"ks=http://10.0.0.1:8080/ks/{n.name}.ks" in entry
            assert f"ip={n.ip['bcn']} netmask={cluster.networks['bcn'].netmask}" in entry
            assert "ksdevice=bootif" in entry and "ipappend 2" in entry
    assert pxe.referenced_files(text) == ["menu.c32", "fedora-13-x86_64/vmlinuz", "fedora-13-x86_64/initrd.img",
                                          "fedora-13-x86_64/vmlinuz", "fedora-13-x86_64/initrd.img"]


def test_serial_console_only_when_defined(ipmi, seed):
    t = pxe.pxelinux_config(ipmi, list(ipmi.nodes), "http://h:1", "t")
    lines = [ln for ln in t.splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "serial 0 115200" and "console=ttyS0,115200" in t
    assert "serial" not in pxe.pxelinux_config(seed, list(seed.nodes), "http://h:1", "t")


def test_menu_fits_80_columns(ipmi):
    for domain in ("lab.example.org", "longer-subdomain.example.org", "a-very-long-subdomain.of.an.example.org"):
        nodes = [dataclasses.replace(n, fqdn=f"{n.name}.{domain}") for n in ipmi.nodes]
        text = pxe.pxelinux_config(ipmi, nodes, "http://h:1", "t")
        margin = int(next(ln.split()[2] for ln in text.splitlines() if ln.startswith("menu margin")))
        longest = max(len(f"Install {n.fqdn} ({ipmi.name}): ERASES ALL DISKS") for n in nodes)
        assert 0 <= margin <= 10
        assert longest + 2 * margin + 4 <= 80 or margin == 0


def test_url_checks(ipmi):
    base, warns = pxe.check_url(ipmi, "http://10.20.0.254:8080/")
    assert base == "http://10.20.0.254:8080" and warns == []
    _, warns = pxe.check_url(ipmi, "http://127.0.0.1:8080")
    assert any("loopback" in w for w in warns)
    _, warns = pxe.check_url(ipmi, "http://192.0.2.1:8080")
    assert any("not on the BCN" in w for w in warns)
    _, warns = pxe.check_url(ipmi, "http://pxe.example.org")
    assert any("resolves" in w for w in warns)
    for bad in ("10.20.0.254:8080", "http://", "http://h:1/?x=1"):
        with pytest.raises(IsobuildError):
            pxe.check_url(ipmi, bad)


def test_dnsmasq_names_only_known_macs(ipmi, tmp_path):
    conf = pxe.dnsmasq_conf(ipmi, tmp_path / "tftp", "http://10.20.0.254:8080")
    assert "dhcp-range=10.20.0.0,static,255.255.0.0" in conf
    assert "dhcp-host=52:54:00:12:35:01,10.20.1.1,node-b1,infinite" in conf
    assert "# node-b2: no MAC" in conf
    for d in ipmi.fence_devices:
        assert d.password.reveal().strip() not in conf


def test_access_rules():
    rules = AccessRules({"private/n1/": ["10.0.0.1", "10.1.0.1"], "ks/n1.ks": ["10.0.0.1"],
                         "private/n2/": ["10.0.0.2"]})
    assert rules.allowed("private/n1/etc/cluster/cluster.conf", "10.1.0.1")
    assert rules.allowed("private/n1/etc/cluster/cluster.conf", "::ffff:10.0.0.1")
    assert not rules.allowed("private/n1/etc/cluster/cluster.conf", "10.0.0.2")
    assert not rules.allowed("private/n10/x", "10.0.0.1")  # prefix match is per directory
    assert not rules.allowed("private/n3/x", "10.0.0.1") and not rules.allowed("private", "10.0.0.1")
    assert rules.allowed("ks/n1.ks", "10.0.0.1") and not rules.allowed("ks/n1.ks", "10.0.0.2")
    assert rules.allowed("ks/n2.ks", "10.0.0.9")  # no rule: public
    assert rules.allowed("an-cluster/repodata/repomd.xml", "192.0.2.7")
    with pytest.raises(IsobuildError, match="bad address"):
        AccessRules({"private/n1/": ["not-an-ip"]})


def test_nginx_snippet_mirrors_the_acl(ipmi, tmp_path):
    acl = {"private/node-b1/": ["10.20.1.1"], "ks/node-b1.ks": ["10.20.1.1"]}
    conf = pxe.nginx_conf(ipmi, tmp_path, "http://10.20.0.254:8080", acl, None)
    assert "listen 8080;" in conf and f"root {tmp_path / 'http'};" in conf
    assert "location /private/ { deny all; }" in conf
    assert re.search(r"location /private/node-b1/ \{.*allow 10\.20\.1\.1; deny all; \}", conf)
    assert re.search(r"location = /ks/node-b1\.ks \{.*allow 10\.20\.1\.1; deny all; \}", conf)
    assert conf.count("{") == conf.count("}")
    assert "limit_except" not in conf.split("location")[0]  # only valid inside location blocks
