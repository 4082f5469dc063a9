"""One test per rule of shared/design/cluster-definition.md: a minimal bad definition, the dotted path in
the error, and nothing written."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from isobuild.errors import ProblemsError
from isobuild.model import load_definition, model_json

REPO = Path(__file__).resolve().parents[2]


def _yaml():
    y = YAML(typ="rt")
    y.preserve_quotes = True
    return y


@pytest.fixture
def defdir(tmp_path):
    """A scratch dir holding a copy of the example secrets, where mutated definitions are written."""
    d = tmp_path / "def"
    shutil.copytree(REPO / "examples" / "secrets", d / "examples" / "secrets")
    return d


def write_def(defdir: Path, mutate, base: str = "cluster.yaml") -> Path:
    data = _yaml().load((REPO / base).read_text())
    mutate(data)
    out = io.StringIO()
    _yaml().dump(data, out)
    path = defdir / "cluster.yaml"
    path.write_text(out.getvalue())
    return path


def problems_of(path: Path) -> list:
    with pytest.raises(ProblemsError) as exc:
        load_definition(path)
    return exc.value.problems


def set_(keys, value):
    def mutate(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return mutate


def del_(keys):
    def mutate(d):
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return mutate


def both(*fns):
    def mutate(d):
        for f in fns:
            f(d)
    return mutate


# (id, mutation, dotted path, words the reason contains)
CASES = [
    # syntax / types / unknown keys
    ("unknown-key", set_(["cluster", "nmae"], "x"), "cluster.nmae", "unknown key"),
    ("wrong-type", set_(["cluster", "config_version"], "one"), "cluster.config_version", "must be an integer"),
    ("missing-key", del_(["cluster", "domain"]), "cluster.domain", "required"),
    ("bool-not-int", set_(["nodes", 0, "nodeid"], True), "nodes[0].nodeid", "must be an integer"),
    # cluster
    ("name-too-long", set_(["cluster", "name"], "a-very-long-cluster-name"), "cluster.name", "1-15"),
    ("name-bad-chars", set_(["cluster", "name"], "an cluster"), "cluster.name", "1-15"),
    ("config-version-zero", set_(["cluster", "config_version"], 0), "cluster.config_version", "positive"),
    ("domain-invalid", set_(["cluster", "domain"], "bad_domain"), "cluster.domain", "DNS"),
    ("timezone-unknown", set_(["cluster", "timezone"], "Mars/Olympus"), "cluster.timezone", "time zone"),
    ("release-unsupported", set_(["cluster", "release"], "fedora-14-x86_64"), "cluster.release", "not supported"),
    # nodes
    ("three-nodes", lambda d: d["nodes"].append(d["nodes"][0]), "nodes", "exactly two"),
    ("node-name-duplicate", set_(["nodes", 1, "name"], "an-node01"), "nodes[1].name", "already used"),
    ("node-name-invalid", set_(["nodes", 0, "name"], "an_node.01"), "nodes[0].name", "host name"),
    ("nodeid-duplicate", set_(["nodes", 1, "nodeid"], 1), "nodes[1].nodeid", "already used"),
    ("nodeid-zero", set_(["nodes", 0, "nodeid"], 0), "nodes[0].nodeid", ">= 1"),
    # networks
    ("network-missing", del_(["networks", "sn"]), "networks.sn", "missing"),
    ("network-unknown", set_(["networks", "dmz"], {"interface": "eth5", "subnet": "10.9.9.0/24"}), "networks.dmz",
     "unknown network"),
    ("interface-duplicate", set_(["networks", "sn", "interface"], "eth0"), "networks.sn.interface", "already used"),
    ("ip-outside-subnet", set_(["nodes", 1, "ip", "sn"], "192.168.9.72"), "nodes[1].ip.sn",
     "not inside networks.sn.subnet 192.168.2.0/24"),
    ("ip-network-address", set_(["nodes", 0, "ip", "bcn"], "192.168.1.0"), "nodes[0].ip.bcn", "network address"),
    ("ip-broadcast", set_(["nodes", 0, "ip", "bcn"], "192.168.1.255"), "nodes[0].ip.bcn", "broadcast"),
    ("ip-duplicate", set_(["nodes", 1, "ip", "ifn"], "192.168.3.71"), "nodes[1].ip.ifn", "already used"),
    ("ip-equals-gateway", set_(["nodes", 1, "ip", "ifn"], "192.168.3.1"), "networks.ifn.gateway", "already used"),
    ("fence-ip-duplicate", set_(["fence_devices", 0, "ipaddr"], "192.168.1.71"), "fence_devices[0].ipaddr",
     "already used"),
    ("gateway-outside", set_(["networks", "ifn", "gateway"], "10.0.0.1"), "networks.ifn.gateway", "not inside"),
    ("subnet-invalid", set_(["networks", "bcn", "subnet"], "192.168.1.5/24"), "networks.bcn.subnet", "IPv4 network"),
    ("ip-missing-net", del_(["nodes", 0, "ip", "sn"]), "nodes[0].ip.sn", "missing"),
    # mac
    ("mac-invalid", set_(["nodes", 0, "mac"], {"eth0": "00:1b:21:zz:00:01"}), "nodes[0].mac.eth0", "not a MAC"),
    ("mac-multicast", set_(["nodes", 0, "mac"], {"eth0": "01:00:5e:00:00:01"}), "nodes[0].mac.eth0", "multicast"),
    ("mac-duplicate", both(set_(["nodes", 0, "mac"], {"eth0": "00:1b:21:00:00:01"}),
                           set_(["nodes", 1, "mac"], {"eth1": "00:1b:21:00:00:01"})), "nodes[1].mac.eth1",
     "already used"),
    ("mac-unknown-iface", set_(["nodes", 0, "mac"], {"eth9": "00:1b:21:00:00:01"}), "nodes[0].mac.eth9",
     "not the interface"),
    # fence
    ("fence-none", set_(["nodes", 0, "fence"], []), "nodes[0].fence", "at least one"),
    ("fence-undefined-device", set_(["nodes", 0, "fence", 0, "device"], "batu"), "nodes[0].fence[0].device",
     "not defined"),
    ("fence-na-needs-port", del_(["nodes", 0, "fence", 0, "port"]), "nodes[0].fence[0].port", "needs a port"),
    ("fence-ipmilan-no-port", lambda d: d["fence_devices"][0].__setitem__("agent", "fence_ipmilan"),
     "nodes[0].fence[0].port", "takes no port"),
    ("fence-device-unused", lambda d: d["fence_devices"].append(
        {"name": "spare", "agent": "fence_na", "ipaddr": "spare.example.com", "login": "u",
         "password_file": "examples/secrets/demo-batou.pw"}), "fence_devices[1]", "not used"),
    ("fence-password-missing", set_(["fence_devices", 0, "password_file"], "secrets/nope.pw"),
     "fence_devices[0].password_file", "not found"),
    ("fence-port-duplicate", set_(["nodes", 1, "fence", 0, "port"], 1), "nodes[1].fence", "already used"),
    # storage
    ("drbd-port-range", set_(["storage", "drbd", "port"], 70000), "storage.drbd.port", "1-65535"),
    ("drbd-port-in-use", set_(["storage", "drbd", "port"], 21064), "storage.drbd.port", "already used by dlm"),
    ("drbd-port-equals-relocation", set_(["storage", "drbd", "port"], 8002), "xen.relocation.port", "already used"),
    ("sync-rate", set_(["storage", "drbd", "sync_rate"], "40 megs"), "storage.drbd.sync_rate", "DRBD rate"),
    ("vg-name", set_(["storage", "clvm", "vg"], "-bad vg"), "storage.clvm.vg", "LVM name"),
    ("lv-name", set_(["storage", "gfs2", "lv"], "snapshot_x"), "storage.gfs2.lv", "LVM name"),
    ("journals", set_(["storage", "gfs2", "journals"], 1), "storage.gfs2.journals", "journal"),
    ("lock-table-lv-too-long", set_(["storage", "gfs2", "lv"], "x" * 31), "storage.gfs2.lv", "16:30"),
    ("backing-device-raid", set_(["storage", "backing_device"], "/dev/md2"), "storage.backing_device", "RAID1"),
    ("two-primaries", set_(["storage", "drbd", "allow_two_primaries"], False), "storage.drbd.become_primary_on",
     "allow_two_primaries"),
    ("managed-by", set_(["storage", "managed_by"], "pacemaker"), "storage.managed_by", "init"),
    # install
    ("partition-size", set_(["install", "partitions", 1, "size"], "4 gigs"), "install.partitions[1].size",
     "not a size"),
    ("mount-duplicate", set_(["install", "partitions", 2, "mount"], "/boot"), "install.partitions[2].mount",
     "already used"),
    ("root-hash-plain", None, "install.root_password_hash_file", "crypt(3)"),
    ("selinux", set_(["install", "selinux"], "off"), "install.selinux", "enforcing"),
    ("firewall", set_(["install", "firewall"], "on"), "install.firewall", "cluster"),
    ("console", set_(["install", "console"], "serial"), "install.console", "console"),
    # xen
    ("dom0-mem", set_(["xen", "dom0_mem"], "lots"), "xen.dom0_mem", "not a size"),
    ("hypervisor-rpm", set_(["xen", "hypervisor_rpm"], "xen-3.4.3-1.fc13"), "xen.hypervisor_rpm", "xen.version 4.0.1"),
    ("bridge-unknown-network", set_(["xen", "bridges"], ["bcn", "lan"]), "xen.bridges[1]", "not a defined network"),
    ("relocation-empty-list", set_(["xen", "relocation", "hosts_allow"], []), "xen.relocation.hosts_allow", "every host"),
    ("relocation-empty-string", set_(["xen", "relocation", "hosts_allow"], ""), "xen.relocation.hosts_allow",
     "peers"),
    # vms
    ("vm-name-duplicate", lambda d: d["vms"].append(dict(d["vms"][0])), "vms[1].name", "already used"),
    ("vm-name-invalid", set_(["vms", 0, "name"], "vm 1"), "vms[0].name", "not a valid VM name"),
    ("vm-bridge", set_(["vms", 0, "bridge"], "dmz"), "vms[0].bridge", "not a defined network"),
    ("vm-bridge-not-bridged", both(set_(["xen", "bridges"], ["bcn", "sn"])), "vms[0].bridge", "no Xen bridge"),
    ("vm-prefer", set_(["vms", 0, "prefer"], "an-node03"), "vms[0].prefer", "not a node"),
    ("vm-storage-fit", set_(["storage", "size"], "60G"), "storage.size", "cannot hold"),
    ("vm-os-variant", set_(["vms", 0, "os_variant"], "fedora14"), "vms[0].os_variant", "not an --os-variant"),
    ("vm-lv-too-small", set_(["vms", 0, "disk"], "3G"), "vms[0].disk", "too small for the guest"),
    ("vm-mac-invalid", set_(["vms", 0, "mac"], "01:16:3e:00:10:01"), "vms[0].mac", "not a unicast MAC"),
    ("vm-mac-duplicate", lambda d: (d["vms"][0].__setitem__("mac", "00:16:3e:00:10:01"),
                                    d["vms"].append({**dict(d["vms"][0]), "name": "vm2"})),
     "vms[1].mac", "already used by vms[0]"),
    ("vm-mac-is-a-nodes", both(set_(["nodes", 0, "mac"], {"eth0": "00:16:3e:00:10:01"}),
                               set_(["vms", 0, "mac"], "00:16:3e:00:10:01")), "vms[0].mac", "nodes[0].mac.eth0"),
    ("vm-cpuset", set_(["vms", 0, "cpuset"], "one"), "vms[0].cpuset", "not a CPU list"),
    ("vm-install-method", set_(["vms", 0, "install", "method"], "kvm"), "vms[0].install.method", "not pv or hvm"),
    ("vm-install-https", set_(["vms", 0, "install", "location"], "https://x/tree/"), "vms[0].install.location",
     "0.500.3 takes no other"),
    ("vm-install-iso-not-shared", set_(["vms", 0, "install"], {"method": "hvm", "iso": "/root/w.iso"}),
     "vms[0].install.iso", "not a file on the shared GFS2 mount"),
    ("vm-install-iso-on-pv", set_(["vms", 0, "install", "iso"], "/xen_shared/a.iso"), "vms[0].install.iso",
     "does not apply to method pv"),
]


@pytest.mark.parametrize("case_id,mutate,path,reason", CASES, ids=[c[0] for c in CASES])
def test_rule(defdir, tmp_path, case_id, mutate, path, reason):
    if case_id == "root-hash-plain":
        (defdir / "examples" / "secrets" / "demo-root.crypt").write_text("hunter2\n")
        mutate = lambda d: None  # noqa: E731
    bad = write_def(defdir, mutate)
    probs = problems_of(bad)
    hits = [p for p in probs if p.path == path]
    assert hits, f"no problem at {path}; got: {[str(p) for p in probs]}"
    assert any(reason in p.reason for p in hits), [str(p) for p in hits]
    assert all(p.file == str(bad) for p in probs)
    assert all(p.line is None or p.line >= 1 for p in probs)
    # the secret value never shows, even in the plain-password case
    assert "hunter2" not in "\n".join(str(p) for p in probs)
    # nothing written: the render stage is never reached
    from isobuild import render as render_mod  # imported here: the model tests run before render exists

    build = tmp_path / "build"
    with pytest.raises(ProblemsError):
        render_mod.render(load_definition(bad), build)
    assert not build.exists()


def test_two_errors_both_reported(defdir):
    bad = write_def(defdir, both(set_(["nodes", 1, "ip", "sn"], "192.168.9.72"), set_(["storage", "gfs2", "journals"], 1)))
    paths = {p.path for p in problems_of(bad)}
    assert {"nodes[1].ip.sn", "storage.gfs2.journals"} <= paths


def test_unknown_key_suggests(defdir):
    bad = write_def(defdir, set_(["storage", "drbd", "sync_rat"], "40M"))
    (hit,) = [p for p in problems_of(bad) if p.path == "storage.drbd.sync_rat"]
    assert hit.hint == "did you mean 'sync_rate'?"


def test_line_numbers_point_at_the_key(defdir):
    bad = write_def(defdir, set_(["nodes", 1, "ip", "sn"], "192.168.9.72"))
    (hit,) = [p for p in problems_of(bad) if p.path == "nodes[1].ip.sn"]
    line = bad.read_text().splitlines()[hit.line - 1]
    assert "192.168.9.72" in line


def test_yaml_syntax_error_has_line_and_column(defdir):
    path = defdir / "cluster.yaml"
    path.write_text("cluster:\n  name: an-cluster\n  domain: [oops\n")
    (p,) = problems_of(path)
    assert p.file.startswith(f"{path}:4:") or p.file.startswith(f"{path}:3:")
    assert "YAML syntax error" in p.reason


def test_duplicate_key_is_an_error(defdir):
    path = defdir / "cluster.yaml"
    text = (REPO / "cluster.yaml").read_text().replace("  timezone: America/Toronto\n",
                                                        "  timezone: America/Toronto\n  timezone: UTC\n")
    path.write_text(text)
    with pytest.raises(ProblemsError, match="timezone"):
        load_definition(path)


@pytest.mark.parametrize("name", ["cluster.yaml", "examples/ipmi-cluster.yaml"])
def test_examples_load(name):
    c = load_definition(REPO / name)
    assert len(c.nodes) == 2
    assert c.demo_secrets  # both use examples/secrets, which carries the DEMO marker
    assert c.peer(c.nodes[0]) is c.nodes[1]


def test_model_json_redacts_secrets():
    c = load_definition(REPO / "cluster.yaml")
    text = model_json(c)
    for secret in (c.fence_devices[0].password.reveal(), c.install.root_password_hash.reveal(),
                   c.install.ssh_authorized_keys.reveal().split()[1]):
        assert secret not in text
    assert "<redacted>" in text
    assert str(REPO) not in text  # no host paths


def test_secret_repr_is_redacted():
    c = load_definition(REPO / "cluster.yaml")
    assert c.fence_devices[0].password.reveal() not in repr(c)
    assert str(c.fence_devices[0].password) == "<redacted>"


def test_relocation_peers_is_the_other_nodes_bcn():
    c = load_definition(REPO / "cluster.yaml")
    n1, n2 = c.nodes
    assert c.relocation_hosts(n1) == (str(n2.ip["bcn"]),)
    assert c.relocation_hosts(n2) == (str(n1.ip["bcn"]),)


def test_digest_changes_with_a_secret(defdir):
    path = write_def(defdir, lambda d: None)
    before = load_definition(path).digest
    (defdir / "examples" / "secrets" / "demo-batou.pw").write_text("another\n")
    assert load_definition(path).digest != before


def test_vm_macs_derived_stable_and_in_xen_range(defdir):
    """Derived MACs: same cluster + VM name -> same MAC; in 00:16:3e with the first random byte < 0x80
    (Xen's randomMAC); never a MAC another VM already has."""
    from isobuild.model import derived_mac

    c1 = load_definition(REPO / "cluster.yaml")
    assert c1.vms[0].mac == load_definition(REPO / "cluster.yaml").vms[0].mac == derived_mac("an-cluster", "vm0001_ws1")
    assert c1.vms[0].mac.startswith("00:16:3e:") and int(c1.vms[0].mac.split(":")[3], 16) < 0x80
    taken = derived_mac("an-cluster", "vm2")
    bad = write_def(defdir, lambda d: (d["vms"][0].__setitem__("mac", taken),
                                       d["vms"].append({**dict(d["vms"][0]), "name": "vm2", "disk": "4G"}),
                                       d["vms"][1].pop("mac"), d["storage"].pop("size", None)))
    c = load_definition(bad)
    assert c.vms[0].mac == taken and c.vms[1].mac != taken and c.vms[1].mac == derived_mac("an-cluster", "vm2", 1)
