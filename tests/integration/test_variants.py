"""Clusters other than the two examples: render + the real validators + a few key values each.

Each variant is cluster.yaml with a handful of changes that the examples never exercise (no VMs,
firewall off, rrp none, VLAN and em1/p1p1 NICs, nodeids 5/9, other fence agents with two methods,
one disk with 3 partitions, two disks with 2, explicit relocation regexes, ...).
"""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from isobuild.loader import load_definition
from isobuild.render import render
from isobuild.runbook import render_runbook
from isobuild.validate import validate

from conftest import need_tool

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("bash", "shellcheck", "drbdadm-83", "lvmconfig", "unshare", "ip", "hostname", "iptables-restore")


def _base() -> dict:
    d = YAML(typ="safe").load((REPO / "cluster.yaml").read_text())
    for fd in d["fence_devices"]:
        fd["password_file"] = "secrets/demo-batou.pw"
    d["install"]["root_password_hash_file"] = "secrets/demo-root.crypt"
    d["install"]["ssh_authorized_keys_file"] = "secrets/demo-authorized_keys"
    return d


def no_vms(d):
    del d["vms"]
    d["install"].update(firewall="off", selinux="disabled", runlevel=5)
    d["totem"].update(rrp_mode="none", secauth=True)
    d["xen"]["relocation"]["enabled"] = False


def vms_empty_regex_allow(d):
    d["vms"] = []
    d["xen"]["relocation"]["hosts_allow"] = [r"^10\.5\.0\.1$", "peer.example.com"]


def wide(d):
    """VLAN + em1/p1p1, jumbo sn, /16 bcn, nodeids 5/9, fence_drac5 then fence_apc, rgmanager, 4 VMs, long names."""
    d["cluster"].update(name="abcdefghij-_123", domain="dc1.east.corp.example.net")
    d["networks"] = {
        "bcn": {"interface": "em1", "subnet": "10.5.0.0/16"},
        "sn": {"interface": "p1p1", "subnet": "10.6.1.0/24", "mtu": 9000},
        "ifn": {"interface": "eth3.100", "subnet": "172.20.0.0/24", "gateway": "172.20.0.1",
                "dns": ["172.20.0.2", "172.20.0.3"]}}
    n1, n2 = d["nodes"]
    n1.update(name="node-1a", nodeid=5, ip={"bcn": "10.5.0.1", "sn": "10.6.1.1", "ifn": "172.20.0.11"},
              mac={"em1": "00:1b:21:00:00:01", "p1p1": "00:1b:21:00:00:02", "eth3.100": "00:1b:21:00:00:03"},
              fence=[{"method": "drac", "device": "drac-1a"}, {"method": "pdu", "device": "apc1", "port": 3}])
    n2.update(name="node-2b", nodeid=9, ip={"bcn": "10.5.1.2", "sn": "10.6.1.2", "ifn": "172.20.0.12"},
              fence=[{"method": "drac", "device": "drac-2b"}, {"method": "pdu", "device": "apc1", "port": 4}])
    del n2["mac"]
    d["fence_devices"] = [
        {"name": "apc1", "agent": "fence_apc", "ipaddr": "10.5.9.1", "login": "apc", "password_file": "secrets/demo-batou.pw"},
        {"name": "drac-1a", "agent": "fence_drac5", "ipaddr": "10.5.9.11", "login": "root",
         "password_file": "secrets/demo-ipmi-b1.pw"},
        {"name": "drac-2b", "agent": "fence_drac5", "ipaddr": "10.5.9.12", "login": "root",
         "password_file": "secrets/demo-ipmi-b2.pw"}]
    d["storage"]["managed_by"] = "rgmanager"
    d["storage"]["gfs2"]["lv"] = "l" * 16  # the longest lock-table fsname F13 mkfs.gfs2 takes
    d["install"].update(packages=["@development-tools", "screen"], console="tty0")
    d["xen"]["bridges"] = ["ifn", "bcn"]
    d["vms"] = [
        {"name": "vm1", "memory": "512M", "vcpus": 1, "disk": "10G", "bridge": "ifn", "prefer": "node-1a", "migrate": "live"},
        {"name": "vm2", "memory": "1G", "vcpus": 2, "disk": "20G", "bridge": "bcn", "prefer": "node-2b", "migrate": "pause"},
        {"name": "vm3-x", "memory": "2048M", "vcpus": 4, "disk": "30G", "bridge": "ifn", "prefer": "node-2b"}]


def one_disk_three_parts(d):
    d["install"].update(disks=["sda"], console="ttyS1,115200n8")
    d["storage"]["backing_device"] = "/dev/sda4"


def two_disks_two_parts(d):
    d["install"]["partitions"] = [{"mount": "/boot", "size": "256M"}, {"mount": "/", "size": "40G"}]
    d["storage"]["backing_device"] = "/dev/md2"
    d["totem"]["rrp_mode"] = "passive"
    d["xen"]["relocation"]["enabled"] = False


VARIANTS = [no_vms, vms_empty_regex_allow, wide, one_disk_three_parts, two_disks_two_parts]


@pytest.fixture(params=VARIANTS, ids=lambda f: f.__name__)
def built(request, tmp_path):
    need_tool(*TOOLS)
    d = copy.deepcopy(_base())
    request.param(d)
    shutil.copytree(REPO / "examples" / "secrets", tmp_path / "secrets")
    path = tmp_path / f"{request.param.__name__}.yaml"
    path.write_text(json.dumps(d, indent=2))  # JSON is YAML: the loader reads it with line numbers
    cluster = load_definition(path)
    build = tmp_path / "build"
    render(cluster, build)
    checked = validate(build, cluster)  # raises ProblemsError naming the file on any problem
    assert checked
    return request.param.__name__, cluster, build


def _read(build: Path, node: str, rel: str) -> str:
    return (build / "nodes" / node / rel).read_text()


def test_variant_renders_valid_files_with_the_right_values(built):
    name, cluster, build = built
    first, second = sorted(cluster.nodes, key=lambda n: n.nodeid)
    ks = (build / "kickstart" / f"{first.name}.ks").read_text()
    conf = _read(build, first.name, "etc/cluster/cluster.conf")
    res = _read(build, first.name, f"etc/drbd.d/{cluster.storage.drbd.resource}.res")
    sxp = _read(build, first.name, "etc/xen/xend-config.sxp")
    env = _read(build, first.name, "etc/an-cluster/firstboot.env")
    # the %post header is a line of its own (the comment after it once ran into it)
    assert "%post --interpreter=/bin/bash --log=/root/an-cluster-ks-post.log --erroronfail\n" in ks
    assert f"disk\t\t{cluster.storage.backing_device};" in res
    assert f'nodeid="{first.nodeid}"' in conf and f'nodeid="{second.nodeid}"' in conf
    assert ks.count("--hostname=") == 1

    if name == "no_vms":
        assert "<vm " not in conf and "<altname" not in conf
        assert '<totem secauth="on" rrp_mode="none"/>' in conf
        assert "firewall --disabled" in ks and "selinux --disabled" in ks and "id:5:initdefault:" in ks
        assert "\nxconfig --startxonboot\nfirstboot --disable\n" in ks and "\nskipx\n" not in ks
        assert "\n@base-x\n@gnome-desktop\n@fonts\n" in ks
        assert not (build / "nodes" / first.name / "etc/sysconfig/iptables").exists()
        assert "(xend-relocation-server no)" in sxp
        assert "AN_VMS=''" in env
    elif name == "vms_empty_regex_allow":
        # SXP strings unescape backslashes: the regex must reach xend as ^10\.5\.0\.1$
        assert r"(xend-relocation-hosts-allow '^10\\.5\\.0\\.1$ peer.example.com ^localhost$" in sxp
        assert "<vm " not in conf
    elif name == "wide":
        nets = "etc/sysconfig/network-scripts/"
        vlan = _read(build, first.name, nets + "ifcfg-eth3.100")
        parent = _read(build, first.name, nets + "ifcfg-eth3")
        assert "VLAN=yes" in vlan and "HWADDR" not in vlan and "IPADDR=172.20.0.11" in vlan
        assert "HWADDR=00:1B:21:00:00:03" in parent and "IPADDR" not in parent
        assert "MTU=9000" in _read(build, first.name, nets + "ifcfg-p1p1")
        assert "NETMASK=255.255.0.0" in _read(build, first.name, nets + "ifcfg-em1")
        assert "network --device=eth3.100" not in ks  # anaconda 13 cannot create a VLAN
        assert "network --device=em1 " in ks and "--hostname=node-1a.dc1.east.corp.example.net" in ks
        assert "--mtu=9000" in ks and "@development-tools\n" in ks and '--append="console=tty0"' in ks
        assert conf.index('<method name="drac">') < conf.index('<method name="pdu">')
        assert '<device name="apc1" port="3" action="reboot"/>' in conf
        assert 'agent="fence_drac5"' in conf and 'service name="storage_node-2b"' in conf
        assert conf.count("<vm ") == 3
        assert "AN_IS_LOWEST=yes" in env and "AN_IS_LOWEST=no" in _read(build, second.name, "etc/an-cluster/firstboot.env")
        assert f"AN_GFS2_LOCK_TABLE=abcdefghij-_123:{'l' * 16}" in env
    elif name == "one_disk_three_parts":
        assert "part raid.104 --size=1 --grow --ondisk=sda" in ks and "raid " not in ks.split("%packages")[0]
        assert "com2=115200,8n1 console=com2,vga" in ks  # ttyS1 is Xen's com2
    elif name == "two_disks_two_parts":
        assert "raid / --level=1 --device=md1" in ks and "backing=/dev/md2" in ks
        assert '<totem secauth="off" rrp_mode="passive"/>' in conf and "<altname" in conf
        iptables = _read(build, first.name, "etc/sysconfig/iptables")
        assert "sctp" in iptables and "--dport 8002 " not in iptables  # relocation is off
        # ... so the runbook moves the VM with a restart (-r), not a migration that xend would refuse
        md = render_runbook(cluster)["index.md"]
        assert "clusvcadm -r vm:vm0001_ws1 -m an-node02.alteeve.com" in md and "clusvcadm -M" not in md
