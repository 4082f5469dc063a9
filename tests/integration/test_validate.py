"""validate(): the real validators on both examples, and each validator catching a broken file.

Tools: pykickstart (python), lxml, bash, shellcheck, drbdadm-83 (drbd-utils), lvmconfig (lvm2),
unshare/ip/hostname. The DRBD check runs in a private UTS + network namespace (root, or a user
namespace): nothing leaves it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from isobuild import run as run_mod
from isobuild.errors import ProblemsError, ToolError
from isobuild.loader import load_definition
from isobuild.render import Media, render, render_kickstart
from isobuild.validate import check_kickstart, Collector, validate

from conftest import need_tool

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = {"an-cluster": REPO / "cluster.yaml", "vmcl-b": REPO / "examples" / "ipmi-cluster.yaml"}
TOOLS = ("bash", "shellcheck", "drbdadm-83", "lvmconfig", "unshare", "ip", "hostname", "iptables-restore")


@pytest.fixture(autouse=True)
def _tools():
    need_tool(*TOOLS)


@pytest.fixture(scope="module")
def clusters():
    return {name: load_definition(path) for name, path in EXAMPLES.items()}


@pytest.fixture(scope="module")
def rendered(clusters, tmp_path_factory):
    """One good render per example; tests copy it before breaking anything."""
    out = {}
    for name, c in clusters.items():
        d = tmp_path_factory.mktemp(name)
        render(c, d)
        out[name] = d
    return out


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "build"
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_pass_every_validator(name, clusters, rendered):
    checked = validate(rendered[name], clusters[name])
    tools = {t for v in checked.values() for t in v.split(", ")}
    assert {"pykickstart F13", "RelaxNG cluster 3.0.12", "RelaxNG cluster 2010-09-10", "drbdadm-83", "lvmconfig", "bash -n", "shellcheck",
            "init-order", "iptables-restore --test", "sxp"} <= tools
    c = clusters[name]
    for n in c.nodes:
        root = rendered[name] / "nodes" / n.name
        assert "shellcheck" in checked[rendered[name] / "kickstart" / f"{n.name}.ks"]
        assert checked[root / "etc/drbd.conf"] == "drbdadm-83"
        assert "shellcheck" in checked[root / "etc/xen/scripts/an-network-script"]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_invoke_validate_cli(name, tmp_path):
    """`invoke validate` end to end: renders, validates, exit 0, demo warning, no secrets printed."""
    c = load_definition(EXAMPLES[name])
    proc = subprocess.run([sys.executable, "-m", "invoke", "validate", "--cluster", str(EXAMPLES[name]),
                           "--build-dir", str(tmp_path / "b")], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "passed" in proc.stdout and "drbdadm-83" in proc.stdout
    assert proc.stderr.count("DEMO") == 1
    secrets = [d.password.reveal() for d in c.fence_devices] + [c.install.root_password_hash.reveal()]
    for s in secrets:
        assert s not in proc.stdout + proc.stderr
    # render again: nothing to do, and still nothing secret on the terminal
    proc = subprocess.run([sys.executable, "-m", "invoke", "render", "--cluster", str(EXAMPLES[name]),
                           "--build-dir", str(tmp_path / "b")], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "up to date" in proc.stdout
    for s in secrets:
        assert s not in proc.stdout + proc.stderr


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if needle in ln)


# (file relative to the build dir, old text, new text, tool, text that must be in the reason)
BREAKAGES = [
    ("kickstart/an-node01.ks", "skipx\n", "skipx\nfirewal --enabled\n", "pykickstart F13", "Unknown command"),
    ("kickstart/an-node01.ks", "timezone --utc", "timezone --bogus-option --utc", "pykickstart F13", "bogus"),
    ("kickstart/an-node01.ks", "chkconfig network on\n", "chkconfig network on )\n", "bash -n", "syntax error"),
    ("kickstart/an-node01.ks", "chmod 0700 /mnt/sysimage", "chmod 0700 $unquoted_var /mnt/sysimage", "shellcheck",
     "SC2086"),
    ("kickstart/an-node01.ks", "part raid.201 ", "part raid.299 ", "kickstart layout", "raid.201 is not defined"),
    ("kickstart/an-node01.ks", "--ondisk=sdb", "--ondisk=sdc", "kickstart layout", "not in clearpart"),
    ("nodes/an-node01/etc/cluster/cluster.conf", '<cman two_node="1"', '<cman two_nodes="1"',
     "RelaxNG cluster 3.0.12", ""),
    # what only the later schema accepts: Node Assassin's quiet (issue 16.4)
    ("nodes/an-node01/etc/cluster/cluster.conf", 'agent="fence_na"', 'agent="fence_na" quiet="1"',
     "RelaxNG cluster 3.0.12", "fencedevices"),
    ("nodes/an-node01/etc/cluster/cluster.conf", "</clusternodes>", "</clusternode>", "xml", ""),
    ("nodes/an-node01/etc/drbd.d/r0.res", "meta-disk\tinternal;", "meta-disk\tinternal", "drbdadm-83",
     "Parse error"),
    ("nodes/an-node01/etc/drbd.d/r0.res", "address\t\t192.168.2.71:7789;", "address\t\t192.168.2.99:7789;",
     "drbdadm-83", ""),
    ("nodes/an-node01/etc/lvm/lvm.conf", "write_cache_state = 1", "write_cache_stat = 1", "lvmconfig --validate",
     "write_cache_stat"),
    ("nodes/an-node01/etc/xen/scripts/an-network-script", 'dir=$(dirname "$0")', 'dir=$(dirname "$0"',
     "bash -n", ""),
    ("nodes/an-node01/etc/xen/scripts/an-network-script", 'dir=$(dirname "$0")', "dir=$(dirname $0)",
     "shellcheck", "SC2086"),
    ("nodes/an-node01/etc/sysconfig/network-scripts/ifcfg-eth0", "ONBOOT=yes", "ONBOOT=yes\nX=$(", "bash -n", ""),
    ("nodes/an-node01/etc/an-cluster/init-order", "cman on 2345 14", "cman on 2345 09", "init-order",
     "requires xend"),
    ("nodes/an-node01/etc/sysconfig/iptables", "--dport 22 -j ACCEPT", "--dport 22 --no-such-option -j ACCEPT",
     "iptables-restore --test", "no-such-option"),
    ("nodes/an-node01/etc/cluster/fence_na.conf", "na::1::ipaddr\t\t=\tbatou.alteeve.com",
     "na::1::ipaddr\t\t=\tbatou", "fence_na.conf", "no na::N::ipaddr matches"),
    ("nodes/an-node01/etc/cluster/fence_na.conf", "system::username\t=\tusername", "system::username\t=\tadmin",
     "fence_na.conf", "differ from cluster.conf"),
    ("nodes/an-node01/etc/sysconfig/iptables.an-cluster", "-A INPUT -p igmp -j ACCEPT",
     "-A INPUT -p igmp --no-such-option -j ACCEPT", "iptables-restore --test", "no-such-option"),
    ("nodes/an-node01/etc/sysconfig/system-config-firewall", "--port=21064:tcp", "--port=21064:sctp",
     "lokkit 1.2.27", "not an option lokkit takes"),
    ("nodes/an-node01/etc/sysconfig/system-config-firewall", "ipv4:filter:/etc/sysconfig/iptables.an-cluster",
     "ipv4:filter:/etc/sysconfig/iptables.typo", "lokkit 1.2.27", "is not rendered for this node"),
    ("nodes/an-node01/etc/xen/xend-config.sxp", "(xend-relocation-port 8002)", "(xend-relocation-port 8002",
     "sxp", "never closed"),
    ("nodes/an-node01/etc/hosts", "192.168.1.71    an-node01 ", "192.168.1.710   an-node01 ", "hosts(5)",
     "not an IP address"),
    ("nodes/an-node01/etc/an-cluster/vms/vm0001_ws1.virt-install", "--vnc\n", "--vnc\n--vncdisplay\n",
     "virt-install 0.500.3 options", "no such option: --vncdisplay"),
    ("nodes/an-node01/etc/an-cluster/vms/vm0001_ws1.virt-install", "bridge=eth2,", "bridge=eth2,vifname=x,",
     "virt-install 0.500.3 options", "Unknown network option 'vifname'"),
    ("nodes/an-node01/etc/an-cluster/vms/vm0001_ws1.virt-install", "fedora13\n", "fedora14\n",
     "virt-install 0.500.3 options", "OS variant 'fedora14'"),
    ("nodes/an-node01/etc/an-cluster/vms/vm0001_ws1.ks", "poweroff\n", "poweroff --now\n", "pykickstart F13", ""),
]


@pytest.mark.parametrize("rel,old,new,tool,reason", BREAKAGES, ids=[f"{b[3]}:{b[0].rsplit('/', 1)[-1]}-{i}"
                                                                    for i, b in enumerate(BREAKAGES)])
def test_each_validator_catches_a_broken_file(rel, old, new, tool, reason, clusters, rendered, tmp_path):
    build = _copy(rendered["an-cluster"], tmp_path)
    f = build / rel
    text = f.read_text()
    assert old in text, f"test setup: {old!r} not in {rel}"
    f.write_text(text.replace(old, new, 1))
    expect_line = _line_of(f, new.splitlines()[-1] if new.strip() else new)
    with pytest.raises(ProblemsError) as exc:
        validate(build, clusters["an-cluster"])
    hits = [p for p in exc.value.problems if p.path == tool and Path(p.file).name in (f.name, "drbd.conf")]
    assert hits, f"{tool} did not report {rel}: {exc.value}"
    assert any(reason in p.reason for p in hits), exc.value
    if not tool.startswith("RelaxNG") and tool not in ("xml", "init-order") and "192.168.2.99" not in new:
        # tools report a syntax error where they notice it: at the broken line or after it
        assert any(p.line is not None and p.line >= expect_line for p in hits), \
            f"expected line >= {expect_line}: {[str(p) for p in hits]}"
    # only the broken node is blamed
    assert not any("an-node02" in p.file for p in exc.value.problems)


def test_all_problems_are_reported_at_once(clusters, rendered, tmp_path):
    build = _copy(rendered["vmcl-b"], tmp_path)
    ks = build / "kickstart/node-b2.ks"
    ks.write_text(ks.read_text().replace("skipx\n", "skipx\nnotacommand\n"))
    conf = build / "nodes/node-b1/etc/cluster/cluster.conf"
    conf.write_text(conf.read_text().replace("<fence_daemon", "<fence_demon"))
    lvm = build / "nodes/node-b2/etc/lvm/lvm.conf"
    lvm.write_text(lvm.read_text().replace("umask = 077", "umask = 077\n    no_such_knob = 1"))
    res = build / "nodes/node-b1/etc/drbd.d/shared.res"
    res.write_text(res.read_text().replace("become-primary-on both;", "become-primary-on;"))
    with pytest.raises(ProblemsError) as exc:
        validate(build, clusters["vmcl-b"])
    tools = {(Path(p.file).name, p.path) for p in exc.value.problems}
    assert ("node-b2.ks", "pykickstart F13") in tools
    assert ("cluster.conf", "RelaxNG cluster 3.0.12") in tools
    assert ("lvm.conf", "lvmconfig --validate") in tools
    assert ("shared.res", "drbdadm-83") in tools
    text = str(exc.value)
    assert re.search(r"node-b2\.ks:\d+: pykickstart F13: Unknown command: notacommand", text)
    # no secret in the report, even though cluster.conf was among the broken files
    for d in clusters["vmcl-b"].fence_devices:
        assert d.password.reveal() not in text


def test_broken_template_is_caught_by_validate(clusters, tmp_path):
    """A template that renders fine but produces a file the real tool rejects."""
    tpl = tmp_path / "tpl"
    shutil.copytree(REPO / "kickstart", tpl)
    cc = tpl / "node/etc/cluster/cluster.conf.j2"
    cc.write_text(cc.read_text().replace('<fence_daemon post_join_delay="30"/>',
                                         '<fence_daemon post_join_delay="30" not_an_option="1"/>'))
    ks = tpl / "ks/post.j2"
    ks.write_text(ks.read_text().replace("chkconfig network on", "chkconfig network on ;;"))
    pk = tpl / "ks/packages.j2"
    pk.write_text(pk.read_text().replace("-NetworkManager\n", ""))
    build = tmp_path / "b"
    render(clusters["an-cluster"], build, template_dir=tpl)
    with pytest.raises(ProblemsError) as exc:
        validate(build, clusters["an-cluster"])
    tools = {p.path for p in exc.value.problems}
    assert {"RelaxNG cluster 3.0.12", "RelaxNG cluster 2010-09-10", "bash -n", "kickstart layout"} <= tools
    assert any("NetworkManager" in p.reason for p in exc.value.problems)


def test_quiet_passes_the_later_schema_only(clusters, rendered, tmp_path):
    """The defect of issue 16.4: the September 2010 schema alone would have accepted quiet="1"."""
    build = _copy(rendered["an-cluster"], tmp_path)
    conf = build / "nodes/an-node01/etc/cluster/cluster.conf"
    conf.write_text(conf.read_text().replace('agent="fence_na"', 'agent="fence_na" quiet="1"'))
    with pytest.raises(ProblemsError) as exc:
        validate(build, clusters["an-cluster"])
    assert {p.path for p in exc.value.problems} == {"RelaxNG cluster 3.0.12"}
    assert all("ccs_config_validate" in (p.hint or "") for p in exc.value.problems)


def test_shipped_domu_config_is_validated(copy_example, tmp_path):
    path = copy_example("cluster.yaml")
    (path.parent / "ws1.cfg").write_text('name = "vm0001_ws1"\n')
    path.write_text(path.read_text().replace("    migrate: live\n", "    migrate: live\n    config_file: ws1.cfg\n"))
    c = load_definition(path)
    build = tmp_path / "b"
    render(c, build)
    checked = validate(build, c)
    cfg = build / "nodes/an-node01/xen_shared/domU_config/vm0001_ws1"
    assert checked[cfg] == "xm config"
    cfg.write_text('name = "vm0002"\n')
    with pytest.raises(ProblemsError) as exc:
        validate(build, c)
    assert [(Path(p.file), p.path) for p in exc.value.problems] == [(cfg, "xm config")]


def test_pxe_kickstart_validates(clusters, tmp_path):
    for c in clusters.values():
        for n in c.nodes:
            ks = tmp_path / f"{n.name}.ks"
            ks.write_text(render_kickstart(c, n, Media.url("http://10.0.0.1:8080")))
            col = Collector(tmp_path)
            check_kickstart(col, ks)
            assert col.problems == [], [str(p) for p in col.problems]


def test_missing_validator_names_its_package(clusters, rendered, monkeypatch):
    real = run_mod.which
    monkeypatch.setattr(run_mod, "which", lambda tool: None if tool == "drbdadm-83" else real(tool))
    with pytest.raises(ToolError) as exc:
        validate(rendered["an-cluster"], clusters["an-cluster"])
    assert "drbdadm-83" in str(exc.value) and "drbd-utils" in str(exc.value)


def test_validate_without_render_says_so(clusters, tmp_path):
    with pytest.raises(ProblemsError) as exc:
        validate(tmp_path, clusters["an-cluster"])
    assert "invoke render" in str(exc.value)


def test_tool_output_quoting_a_secret_is_scrubbed(clusters, rendered, tmp_path):
    """pykickstart quotes the offending line; a broken rootpw line must not echo the hash."""
    c = clusters["an-cluster"]
    build = _copy(rendered["an-cluster"], tmp_path)
    ks = build / "kickstart/an-node01.ks"
    secret = c.install.root_password_hash.reveal()
    ks.write_text(ks.read_text().replace(f"rootpw --iscrypted {secret}", f"rootpw --iscrypted {secret} extra-arg"))
    with pytest.raises(ProblemsError) as exc:
        validate(build, c)
    text = str(exc.value)
    assert "an-node01.ks" in text and "pykickstart F13" in text
    assert secret not in text
    # and whatever a tool quotes, the collector scrubs every secret of the definition
    col = Collector(build, c.secrets().values())
    col.add(ks, 14, "pykickstart F13", f"bad line: rootpw --iscrypted {secret}")
    fence = c.fence_devices[0].password.reveal()
    col.add(ks, 3, "xml", f'passwd="{fence}" is odd')
    text = "\n".join(str(p) for p in col.problems)
    assert secret not in text and fence not in text and text.count("<redacted>") == 2


def _variant(tmp_path: Path, example: str, edits: list[tuple[str, str]]) -> Path:
    """A copy of an example definition (with its demo secrets) with text edits applied."""
    src = EXAMPLES[example]
    d = tmp_path / "def"
    d.mkdir()
    text = src.read_text()
    for old, new in edits:
        assert old in text, f"test setup: {old!r} not in {src.name}"
        text = text.replace(old, new)
    if example == "an-cluster":
        shutil.copytree(REPO / "examples" / "secrets", d / "examples" / "secrets")
    else:
        shutil.copytree(REPO / "examples" / "secrets", d / "secrets")
    out = d / src.name
    out.write_text(text)
    return out


VARIANTS = {
    # the seed's cluster stripped down: one ring, no firewall, no bridges, no migration, one primary,
    # no authorized keys, extra package groups, no VMs
    "minimal": ("an-cluster", [
        ("rrp_mode: active", "rrp_mode: none"), ("firewall: cluster", "firewall: off"),
        ("bridges: [bcn, ifn] ", "bridges: [] "), ("enabled: true", "enabled: false"),
        ("managed_by: rgmanager ", "managed_by: init "),
        ("become_primary_on: both", "become_primary_on: an-node02"),
        ("allow_two_primaries: true", "allow_two_primaries: false"),
        ("  ssh_authorized_keys_file: examples/secrets/demo-authorized_keys\n", ""),
        ("packages: []", "packages: ['@development-tools', screen]"),
        ("""vms:                          # rgmanager <vm> services; disks are LVs on the clustered VG
  - name: vm0001_ws1
    memory: 1024M
    vcpus: 1
    disk: 50G
    bridge: ifn
    prefer: an-node01         # failover domain ordering
    migrate: live
    # config_file: domU/vm0001_ws1.cfg   # an xm config to ship: without one the VM is defined, not started
    cpuset: "1"               # physical CPUs the VM may use (optional)
    os_variant: fedora13      # virt-install --os-variant of Fedora 13's python-virtinst (optional)
    # mac: "00:16:3e:00:10:01"  # optional; default: stable, derived from cluster + VM name, in 00:16:3e
    install:                  # optional: first boot provisions the VM (lowest nodeid) when it has no config yet
      method: pv              # pv = virt-install --paravirt from an install tree; hvm = xm config booting iso:
      location: http://192.168.1.10/f13/x86_64/img/
      kickstart: true         # render a guest kickstart (nodes' /etc/an-cluster/vms/<vm>.ks, mode 0600)
      kickstart_url: http://192.168.1.10/ks/vm0001_ws1.ks   # where you publish it; the guest installer reads it
""", "vms: []\n"),
    ]),
    # the IPMI cluster on two disks (RAID1, five md devices), biosdevname NIC names, two fence methods
    "raid-two-methods": ("vmcl-b", [
        ("interface: eth1", "interface: em1"), ("interface: eth2", "interface: p3p1"),
        ("interface: eth0", "interface: em2"),
        ('mac: {eth0: "52:54:00:12:34:01", eth1: "52:54:00:12:35:01", eth2: "52:54:00:12:36:01"}',
         'mac: {em2: "52:54:00:12:34:01"}'),
        ('mac: {eth0: "52:54:00:12:34:02"}', "mac: {}"),
        ("        device: ipmi-b1\n", "        device: ipmi-b1\n      - method: assassin\n        device: na1\n        port: 3\n"),
        ("        device: ipmi-b2\n", "        device: ipmi-b2\n      - method: assassin\n        device: na1\n        port: 4\n"),
        ("fence_devices:\n", "fence_devices:\n  - name: na1\n    agent: fence_na\n    ipaddr: na1.lab.example.org\n"
                             "    address: 10.20.2.9\n    login: na\n    password_file: secrets/demo-batou.pw\n"),
        ("disks: [vda]", "disks: [sda, sdb]"), ("backing_device: /dev/vda6", "backing_device: /dev/md4"),
    ]),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_other_definitions_render_and_validate(variant, tmp_path):
    example, edits = VARIANTS[variant]
    c = load_definition(_variant(tmp_path, example, edits))
    build = tmp_path / "build"
    render(c, build)
    checked = validate(build, c)
    assert checked
    n = c.nodes[0]
    ks = (build / "kickstart" / f"{n.name}.ks").read_text()
    conf = (build / "nodes" / n.name / "etc/cluster/cluster.conf").read_text()
    if variant == "minimal":
        assert "firewall --disabled" in ks and not (build / "nodes" / n.name / "etc/sysconfig/iptables").exists()
        assert "<altname" not in conf and "<vm " not in conf and "<service " not in conf
        assert "authorized_keys" not in ks
        assert "become-primary-on an-node02.alteeve.com;" in (build / "nodes" / n.name / "etc/drbd.d/r0.res").read_text()
    else:
        assert "raid /var --level=1 --device=md3" in ks and "part raid.205 --size=1 --grow --ondisk=sdb" in ks
        assert '<method name="assassin">' in conf and 'port="3"' in conf
        assert (build / "nodes" / n.name / "etc/sysconfig/network-scripts/ifcfg-p3p1").is_file()


def test_a_rendered_file_without_a_validator_is_a_problem(clusters, rendered, tmp_path):
    build = _copy(rendered["an-cluster"], tmp_path)
    extra = build / "nodes/an-node02/etc/sysconfig/something-new"
    extra.write_text("KEY=value\n")
    (build / "model.json").write_text("{broken\n")
    with pytest.raises(ProblemsError) as exc:
        validate(build, clusters["an-cluster"])
    assert any(p.file == str(extra) and "no validator" in p.reason for p in exc.value.problems)
    assert any(p.file.endswith("model.json") and p.path == "json" for p in exc.value.problems)


def test_xm_config_checked_against_xen_401_variables(clusters, rendered, tmp_path):
    """The hvm VM's xm config (vmcl-b's db01): Python, literal values, only Xen 4.0.1 xm create variables."""
    build = _copy(rendered["vmcl-b"], tmp_path)
    cfg = build / "nodes/node-b1/etc/an-cluster/vms/db01.cfg"
    assert validate(build, clusters["vmcl-b"])[cfg] == "xm config"
    text = cfg.read_text()
    cfg.write_text(text.replace("usbdevice = 'tablet'", "usbdevice = 'tablet'\nvncpassword = ''\nacpi = os.getenv('X')"))
    with pytest.raises(ProblemsError) as exc:
        validate(build, clusters["vmcl-b"])
    hits = [p for p in exc.value.problems if p.path == "xm config"]
    assert [p.reason for p in hits] == ["'vncpassword' is not a variable of Xen 4.0.1's xm create",
                                        "acpi is not a literal value"], exc.value
    assert [p.line for p in hits] == [text.splitlines().index("usbdevice = 'tablet'") + 2,
                                      text.splitlines().index("usbdevice = 'tablet'") + 3]
