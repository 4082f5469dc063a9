"""One test per rule of the definition format (docs/definition.md): a minimal bad definition, the dotted path in
the error, and nothing written."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from isobuild.errors import ProblemsError
from isobuild.model import model_json
from isobuild.loader import load_definition

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
    ("fence-name-no-address", del_(["fence_devices", 0, "address"]), "fence_devices[0].ipaddr", "does not resolve"),
    ("fence-address-invalid", set_(["fence_devices", 0, "address"], "batou"), "fence_devices[0].address",
     "not an IPv4"),
    ("fence-address-with-ip", set_(["fence_devices", 0, "ipaddr"], "192.168.3.61"), "fence_devices[0].address",
     "already an address"),
    ("fence-address-duplicate", set_(["fence_devices", 0, "address"], "192.168.1.71"), "fence_devices[0].address",
     "already used"),
    ("fence-na-two-logins", both(
        lambda d: d["fence_devices"].append({"name": "motoko", "agent": "fence_na", "ipaddr": "192.168.3.62",
                                             "login": "other", "password_file": "examples/secrets/demo-batou.pw"}),
        lambda d: d["nodes"][1]["fence"].append({"method": "na2", "device": "motoko", "port": 3})),
     "fence_devices[1].login", "another login or password"),
    # storage
    ("drbd-port-range", set_(["storage", "drbd", "port"], 70000), "storage.drbd.port", "1-65535"),
    ("drbd-port-in-use", set_(["storage", "drbd", "port"], 21064), "storage.drbd.port", "already used by dlm"),
    ("drbd-port-equals-relocation", set_(["storage", "drbd", "port"], 8002), "xen.relocation.port", "already used"),
    ("sync-rate", set_(["storage", "drbd", "sync_rate"], "40 megs"), "storage.drbd.sync_rate", "DRBD rate"),
    ("vg-name", set_(["storage", "clvm", "vg"], "-bad vg"), "storage.clvm.vg", "LVM name"),
    ("lv-name", set_(["storage", "gfs2", "lv"], "snapshot_x"), "storage.gfs2.lv", "LVM name"),
    ("journals", set_(["storage", "gfs2", "journals"], 1), "storage.gfs2.journals", "journal"),
    ("lock-table-lv-too-long", set_(["storage", "gfs2", "lv"], "x" * 17), "storage.gfs2.lv",
     "longer than 16"),
    ("name-16-chars", set_(["cluster", "name"], "a" * 16), "cluster.name", "1-15"),
    ("backing-device-raid", set_(["storage", "backing_device"], "/dev/md2"), "storage.backing_device", "RAID1"),
    ("two-primaries", set_(["storage", "drbd", "allow_two_primaries"], False), "storage.drbd.become_primary_on",
     "allow_two_primaries"),
    ("managed-by", set_(["storage", "managed_by"], "pacemaker"), "storage.managed_by", "init"),
    ("drbd-wfc-forever", set_(["storage", "drbd", "wfc_timeout"], 0), "storage.drbd.wfc_timeout", "1-300000"),
    ("drbd-degr-wfc-longer", set_(["storage", "drbd", "degr_wfc_timeout"], 301), "storage.drbd.degr_wfc_timeout",
     "longer than wfc_timeout"),
    # fence device options: what the agent's group in every cman schema accepts
    ("fence-option-not-in-3.0.12", set_(["fence_devices", 0, "options"], {"quiet": 1}),
     "fence_devices[0].options.quiet", "cluster 3.0.12 schema"),
    ("fence-option-unknown", set_(["fence_devices", 0, "options"], {"privlvl": "operator"}),
     "fence_devices[0].options.privlvl", "takes no option 'privlvl'"),
    ("fence-option-false", set_(["fence_devices", 0, "options"], {"lanplus": False}),
     "fence_devices[0].options.lanplus", "false is not a value"),
    ("fence-option-fixed", set_(["fence_devices", 0, "options"], {"login": "root"}),
     "fence_devices[0].options.login", "set by fence_devices[0].login"),
    ("fence-option-bad-name", set_(["fence_devices", 0, "options"], {"Lan-Plus": 1}),
     "fence_devices[0].options.Lan-Plus", "unknown fence agent option"),
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
    ("vm-config-missing", set_(["vms", 0, "config_file"], "domU/nope.cfg"), "vms[0].config_file", "cannot read"),
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


def test_lock_table_at_the_fedora_13_limits_loads(defdir):
    """cluster.conf(5) (cman 3.0): names up to 15 characters; mkfs.gfs2 of gfs2-utils 3.0 (test_locking):
    at most 16 for each side of <cluster>:<fsname>. A 15-character cluster and a 16-character LV load."""
    ok = write_def(defdir, both(set_(["cluster", "name"], "c" * 15), set_(["storage", "gfs2", "lv"], "l" * 16)))
    model = load_definition(ok)
    assert (model.name, model.storage.gfs2.lv) == ("c" * 15, "l" * 16)


def test_long_cluster_name_is_one_problem_with_a_hint(defdir):
    """One rule owns the cluster name's length (no second lock-table message for the same name)."""
    bad = write_def(defdir, set_(["cluster", "name"], "n" * 20))
    hits = [p for p in problems_of(bad) if p.path == "cluster.name"]
    assert len(hits) == 1, [str(p) for p in hits]
    assert "1-15" in hits[0].reason and "cluster.conf(5)" in hits[0].hint


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


# --- secret files: what a *_file may hold --------------------------------------------------------


def _secret_def(defdir: Path, content: bytes | None = None, mode: int = 0o600, name: str = "fence.pw") -> Path:
    """cluster.yaml whose first fence password comes from secrets/<name> (outside the DEMO dir)."""
    secrets = defdir / "secrets"
    secrets.mkdir(exist_ok=True)
    if content is not None:
        (secrets / name).write_bytes(content)
        (secrets / name).chmod(mode)
    return write_def(defdir, set_(["fence_devices", 0, "password_file"], f"secrets/{name}"))


def _line_of_password_file(path: Path) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if "password_file" in ln)


def test_secret_file_one_trailing_newline_is_stripped(defdir):
    model = load_definition(_secret_def(defdir, b"s3cret pw\n"))
    assert model.fence_devices[0].password.reveal() == "s3cret pw"
    model = load_definition(_secret_def(defdir, b"no newline"))
    assert model.fence_devices[0].password.reveal() == "no newline"


@pytest.mark.parametrize("content,reason", [
    (b"line1\nline2\n", "contains a line break"),
    (b"pw\n\n", "contains a line break"),
    (b"pw\r\n", "contains a line break"),
    (b"p\x1b[2Jw", "control character '\\x1b'"),
    (b"p\tw", "control character '\\t'"),
    (b"x" * 4097, "larger than 4096 bytes"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_secret_file_bad_content_is_an_error_at_the_key(defdir, content, reason):
    path = _secret_def(defdir, content)
    (p,) = [p for p in problems_of(path) if p.path == "fence_devices[0].password_file"]
    assert reason in p.reason and p.line == _line_of_password_file(path)
    assert "line1" not in str(p) and "\x1b[2J" not in str(p)  # the secret itself is never echoed


def test_secret_file_symlinks_are_followed_to_regular_files_only(defdir):
    (defdir / "store").mkdir()
    (defdir / "store" / "real.pw").write_bytes(b"linked\n")
    (defdir / "store" / "real.pw").chmod(0o600)
    path = _secret_def(defdir)
    (defdir / "secrets" / "fence.pw").symlink_to(defdir / "store" / "real.pw")
    assert load_definition(path).fence_devices[0].password.reveal() == "linked"
    (defdir / "secrets" / "fence.pw").unlink()
    (defdir / "secrets" / "fence.pw").symlink_to("/dev/zero")  # would be a 4 GB read
    (p,) = [p for p in problems_of(path) if p.path == "fence_devices[0].password_file"]
    assert "not a regular file" in p.reason


def test_secret_file_fifo_is_refused_without_blocking(defdir):
    path = _secret_def(defdir)
    os.mkfifo(defdir / "secrets" / "fence.pw")
    (p,) = [p for p in problems_of(path) if p.path == "fence_devices[0].password_file"]
    assert "not a regular file" in p.reason


def test_secret_file_readable_by_others_warns_once(defdir, capsys):
    path = _secret_def(defdir, b"pw\n", mode=0o644)
    load_definition(path)
    load_definition(path)  # as `invoke all` does, once per stage
    err = capsys.readouterr().err
    assert "warning:" in err and "fence_devices[0].password_file" in err and "readable by group or others" in err
    assert "chmod 600" in err and err.count("readable by group or others") == 1
    load_definition(_secret_def(defdir, b"pw\n", mode=0o600))
    assert "readable by group" not in capsys.readouterr().err


def test_fence_host_name_without_address_points_at_the_key(defdir):
    """fenced hands the agent ipaddr as written: a name must resolve on the node without DNS."""
    bad = write_def(defdir, del_(["fence_devices", 0, "address"]))
    (hit,) = [p for p in problems_of(bad) if p.path == "fence_devices[0].ipaddr"]
    line = next(i for i, ln in enumerate(bad.read_text().splitlines(), 1) if "ipaddr: batou.alteeve.com" in ln)
    assert hit.line == line and "address:" in hit.hint and "batou.alteeve.com" in hit.reason


def test_new_keys_have_safe_defaults(defdir):
    """No wfc timeout, managed_by, bridges or fence options in the definition: bounded DRBD waits, storage
    under rgmanager, the sn not bridged (the seed), no extra fencedevice attributes."""
    def strip(d):
        for k in ("wfc_timeout", "degr_wfc_timeout"):
            d["storage"]["drbd"].pop(k, None)
        d["storage"].pop("managed_by", None)
        d["xen"].pop("bridges", None)
    c = load_definition(write_def(defdir, strip))
    assert (c.storage.drbd.wfc_timeout, c.storage.drbd.degr_wfc_timeout) == (300, 120)
    assert c.storage.managed_by == "rgmanager"
    assert c.xen.bridges == ("bcn", "ifn")
    assert c.fence_devices[0].options == {}
    assert c.warnings == ()


def test_bridging_the_sn_is_allowed_with_a_located_warning(defdir):
    path = write_def(defdir, set_(["xen", "bridges"], ["bcn", "sn", "ifn"]))
    c = load_definition(path)
    assert c.xen.bridges == ("bcn", "sn", "ifn")
    (w,) = c.warnings
    line = path.read_text().splitlines().index("  - sn") + 1
    assert w.startswith(f"{path}:{line}: xen.bridges[1]: the storage network is bridged")
    assert "hint: " in w


def test_fence_options_allowed_come_from_both_schemas():
    """fence_ipmilan: 3.0.12 has its own group (auth, cipher, lanplus, method, timeout, ...), the later schema
    only the shared one (auth, lanplus): what both accept. Neither knows privlvl or power_wait."""
    from isobuild.cmanschema import fence_device_problem, fence_options_allowed

    fixed = {"ipaddr", "login", "passwd"}
    assert fence_options_allowed("fence_ipmilan", fixed) == ["auth", "lanplus", "passwd_script"]
    assert fence_device_problem("fence_ipmilan", fixed, {"lanplus", "auth"}) is None
    assert fence_device_problem("fence_ipmilan", fixed, {"timeout"})[0] == "cluster 2010-09-10"
    assert fence_device_problem("fence_ipmilan", fixed, {"power_wait"})[0] == "cluster 3.0.12"
    assert fence_device_problem("fence_na", fixed, {"quiet"})[0] == "cluster 3.0.12"


def test_vm_config_file_ships_and_starts_the_vm(defdir):
    (defdir / "domU").mkdir()
    (defdir / "domU" / "ws1.cfg").write_text('name = "vm0001_ws1"\nmemory = 1024\nbootloader = "/usr/bin/pygrub"\n')
    c = load_definition(write_def(defdir, set_(["vms", 0, "config_file"], "domU/ws1.cfg")))
    assert c.vms[0].autostart and c.vms[0].config.startswith('name = "vm0001_ws1"')
    assert '"config": true' in model_json(c) and "bootloader" not in model_json(c)
    (defdir / "domU" / "ws1.cfg").write_text('name = "other"\n')
    (hit,) = [p for p in problems_of(defdir / "cluster.yaml") if p.path == "vms[0].config_file"]
    assert "rgmanager looks the domain up by the VM's name" in hit.reason and hit.line
    (defdir / "domU" / "ws1.cfg").write_text('name = "vm0001_ws1\n')
    (hit,) = [p for p in problems_of(defdir / "cluster.yaml") if p.path == "vms[0].config_file"]
    assert "not a Python assignment file" in hit.reason


def test_vm_without_config_is_not_started(defdir):
    c = load_definition(write_def(defdir, lambda d: None))
    assert c.vms[0].config is None and not c.vms[0].autostart
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


# Two problems in one item: the rule across parts still reports the second one although the item did not
# load for the first (every problem is reported at once, as the definition code did before the loader split).
@pytest.mark.parametrize("mutate, path, reason", [
    (both(set_(["vms", 0, "prefer"], "an-node09"), set_(["vms", 0, "memory"], "lots")),
     "vms[0].prefer", "'an-node09' is not a node"),
    (both(set_(["nodes", 0, "name"], ""), del_(["vms", 0, "name"])),
     "vms[0].prefer", "'an-node01' is not a node"),
    (both(set_(["vms", 0, "bridge"], "dmz"), set_(["vms", 0, "disk"], "big")),
     "vms[0].bridge", "'dmz' is not a defined network"),
    (both(set_(["xen", "bridges"], ["bcn"]), set_(["vms", 0, "vcpus"], None)),
     "vms[0].bridge", "network 'ifn' has no Xen bridge"),
    (both(set_(["vms", 0, "name"], "xen_shared"), set_(["vms", 0, "os_variant"], "beos")),
     "vms[0].name", "'xen_shared' clashes with the GFS2 LV name"),
    (both(set_(["fence_devices", 0, "ipaddr"], "bad address!"), del_(["fence_devices", 0, "login"])),
     "fence_devices[0].ipaddr", "'bad address!' is neither an IPv4 address nor a host name"),
    (both(set_(["fence_devices", 0, "address"], "192.168.1.71"), del_(["fence_devices", 0, "login"])),
     "fence_devices[0].address", "192.168.1.71 is already used by nodes[0].ip.bcn"),
])
def test_cross_rules_see_items_that_failed_for_another_reason(defdir, mutate, path, reason):
    got = [(p.path, p.reason) for p in problems_of(write_def(defdir, mutate))]
    assert (path, reason) in got, got


def test_a_problem_inside_a_second_use_of_an_alias_has_the_anchors_line(defdir):
    text = (REPO / "cluster.yaml").read_text().replace("\n  - name: vm0001_ws1\n", "\n  - &vm0\n    name: vm0001_ws1\n", 1)
    path = defdir / "cluster.yaml"
    path.write_text(text.rstrip("\n") + "\n  - *vm0\n")  # the same VM twice
    (hit,) = [p for p in problems_of(path) if p.path == "vms[1].name"]
    assert hit.reason == "'vm0001_ws1' is already used by vms[0]"
    assert path.read_text().splitlines()[hit.line - 1].strip() == "name: vm0001_ws1"


def test_a_rule_on_a_duplicated_name_names_the_item_it_is_about(defdir):
    """Two nodes named alike (an error) with the same MAC: the MAC problem is at the second node, not
    at the first node of that name."""
    mac = "00:1b:21:0a:0b:0c"
    bad = write_def(defdir, both(set_(["nodes", 1, "name"], "an-node01"), set_(["nodes", 0, "mac"], {"eth0": mac}),
                                 set_(["nodes", 1, "mac"], {"eth0": mac})))
    got = [(p.path, p.reason) for p in problems_of(bad)]
    assert ("nodes[1].mac.eth0", f"{mac} is already used by an-node01.mac.eth0") in got, got
