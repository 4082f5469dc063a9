"""render(): golden files for both examples, byte-identical re-renders, atomicity, modes, secrets.

Regenerate the golden files after an intended change with:  UPDATE_GOLDEN=1 python -m pytest tests/unit/test_render.py
(then review `git diff tests/golden`).
"""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from isobuild.errors import IsobuildError
from isobuild.loader import load_definition
from isobuild.nodefiles import secret_paths
from isobuild.render import (
    Media,
    disk_layout,
    drbd_km_package,
    node_files,
    node_paths,
    render,
    render_kickstart,
)
from isobuild.stamps import sha256_tree

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
EXAMPLES = {"an-cluster": REPO / "cluster.yaml", "vmcl-b": REPO / "examples" / "ipmi-cluster.yaml"}


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def clusters():
    return {name: load_definition(path) for name, path in EXAMPLES.items()}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_golden(name, clusters, tmp_path):
    out = render(clusters[name], tmp_path / "build")
    got = _tree(tmp_path / "build")
    golden_dir = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(golden_dir, ignore_errors=True)
        for rel, data in got.items():
            (golden_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden_dir / rel).write_bytes(data)
    want = _tree(golden_dir)
    assert sorted(got) == sorted(want), "rendered file list differs from tests/golden (UPDATE_GOLDEN=1 to accept)"
    for rel in want:
        assert got[rel] == want[rel], f"{rel} differs from tests/golden/{name}/{rel} (UPDATE_GOLDEN=1 to accept)"
    assert set(out.kickstarts) == {n.name for n in clusters[name].nodes}


def test_every_required_file_is_rendered(clusters, tmp_path):
    c = clusters["an-cluster"]
    render(c, tmp_path)
    for n in c.nodes:
        root = tmp_path / "nodes" / n.name
        for rel in ("etc/hosts", "etc/sysconfig/network", "etc/sysconfig/network-scripts/ifcfg-eth0",
                    "etc/sysconfig/network-scripts/ifcfg-eth1", "etc/sysconfig/network-scripts/ifcfg-eth2",
                    "etc/cluster/cluster.conf", "etc/drbd.conf", "etc/drbd.d/global_common.conf",
                    "etc/drbd.d/r0.res", "etc/lvm/lvm.conf", "etc/xen/xend-config.sxp",
                    "etc/xen/scripts/an-network-script", "etc/sysconfig/iptables", "etc/an-cluster/init-order"):
            assert (root / rel).is_file(), rel
    # the IPMI example names its resource and NICs differently
    c2 = clusters["vmcl-b"]
    files = node_files(c2, c2.nodes[0])
    assert "etc/drbd.d/shared.res" in files and "etc/drbd.d/r0.res" not in files


def test_rerender_is_byte_identical(clusters, tmp_path):
    c = clusters["vmcl-b"]
    render(c, tmp_path / "a")
    render(c, tmp_path / "b")
    render(c, tmp_path / "a", force=True)
    assert sha256_tree(tmp_path / "a") == sha256_tree(tmp_path / "b")


def test_unchanged_rerender_is_up_to_date_and_a_changed_template_is_not(clusters, tmp_path):
    c = clusters["an-cluster"]
    tpl = tmp_path / "tpl"
    shutil.copytree(REPO / "kickstart", tpl)
    first = render(c, tmp_path / "b", template_dir=tpl)
    assert not first.up_to_date
    again = render(c, tmp_path / "b", template_dir=tpl)
    assert again.up_to_date and again.files == first.files
    # a hand-edited output is not up to date: the next render puts the rendered file back
    edited = tmp_path / "b/nodes/an-node02/etc/drbd.conf"
    good = edited.read_text()
    edited.write_text(good + "# edited\n")
    fixed = render(c, tmp_path / "b", template_dir=tpl)
    assert not fixed.up_to_date and edited.read_text() == good
    hosts = tpl / "node" / "etc" / "hosts.j2"
    hosts.write_text(hosts.read_text() + "# local addition\n")
    third = render(c, tmp_path / "b", template_dir=tpl)
    assert not third.up_to_date
    assert (tmp_path / "b/nodes/an-node01/etc/hosts").read_text().endswith("# local addition\n")


def test_failed_render_leaves_previous_output_intact(clusters, tmp_path):
    c = clusters["an-cluster"]
    build = tmp_path / "build"
    (build / "rpms").mkdir(parents=True)
    (build / "rpms" / "other-stage.txt").write_text("not ours\n")
    render(c, build)
    before = sha256_tree(build)
    tpl = tmp_path / "tpl"
    shutil.copytree(REPO / "kickstart", tpl)
    # a template that names a model attribute that does not exist (StrictUndefined)
    (tpl / "node" / "etc" / "drbd.conf.j2").write_text("{{ cluster.storage.drbd.no_such_thing }}\n")
    with pytest.raises(IsobuildError, match="drbd.conf.j2"):
        render(c, build, template_dir=tpl)
    # a template syntax error
    (tpl / "node" / "etc" / "drbd.conf.j2").write_text("{% if %}\n")
    with pytest.raises(IsobuildError, match="syntax"):
        render(c, build, template_dir=tpl)
    assert sha256_tree(build) == before
    assert sorted(p.name for p in build.iterdir()) == sorted(
        [".render-stamp", "kickstart", "model.json", "nodes", "rpms"])


def test_secret_files_are_0600_and_scripts_executable(clusters, tmp_path):
    c = clusters["an-cluster"]
    out = render(c, tmp_path)
    for ks in out.kickstarts.values():
        assert stat.S_IMODE(ks.stat().st_mode) == 0o600
    for n in c.nodes:
        root = tmp_path / "nodes" / n.name
        assert {"etc/cluster/cluster.conf", "etc/cluster/fence_na.conf"} <= secret_paths(c)
        for rel in secret_paths(c):
            assert stat.S_IMODE((root / rel).stat().st_mode) == 0o600, rel
        assert stat.S_IMODE((root / "etc/xen/scripts/an-network-script").stat().st_mode) == 0o755
        assert stat.S_IMODE((root / "etc/hosts").stat().st_mode) == 0o644


def _secrets(c) -> list[str]:
    vals = [d.password.reveal() for d in c.fence_devices] + [c.install.root_password_hash.reveal()]
    if c.install.ssh_authorized_keys:
        vals += [ln for ln in c.install.ssh_authorized_keys.reveal().splitlines() if ln.strip()]
    return [v.strip() for v in vals if v.strip()]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_secrets_only_where_needed(name, clusters, tmp_path):
    c = clusters[name]
    render(c, tmp_path)
    secrets = _secrets(c)
    model = (tmp_path / "model.json").read_text()
    json.loads(model)
    for s in secrets:
        assert s not in model
    fence = [d.password.reveal() for d in c.fence_devices]
    for p in tmp_path.rglob("*"):
        if not p.is_file():
            continue
        text = p.read_text()
        rel = p.relative_to(tmp_path).as_posix()
        guest_ks = "/etc/an-cluster/vms/" in rel and rel.endswith(".ks")  # the guest's rootpw --iscrypted
        allowed = rel.startswith("kickstart/") or rel.endswith(("etc/cluster/cluster.conf", "etc/cluster/fence_na.conf")) \
            or guest_ks
        if guest_ks:
            assert p.stat().st_mode & 0o777 == 0o600, rel
            assert not any(f in text for f in fence)
        for s in secrets:
            if s in text:
                assert allowed, f"a secret leaked into {rel}"
                assert rel.startswith("kickstart/") or rel.split("/", 2)[2] in secret_paths(c)
        if rel.endswith("etc/cluster/cluster.conf"):
            assert all(f in text for f in fence)
        if rel.startswith("kickstart/"):
            assert f"rootpw --iscrypted {c.install.root_password_hash.reveal()}" in text
            assert not any(f in text for f in fence)


def test_kickstart_content_dvd(clusters):
    c = clusters["an-cluster"]
    n = c.nodes[0]
    ks = render_kickstart(c, n)
    lines = ks.splitlines()
    assert "install" in lines and "cdrom" in lines
    assert "repo --name=an-cluster --baseurl=file:///mnt/source/an-cluster" in lines
    nets = [ln for ln in lines if ln.startswith("network ")]
    assert len(nets) == 3 and all("--bootproto=static" in ln for ln in nets)
    assert sum("--hostname=an-node01.alteeve.com" in ln for ln in nets) == 1
    assert "--gateway=192.168.3.1" in next(ln for ln in nets if "--device=eth2" in ln)
    assert "clearpart --all --initlabel --drives=sda,sdb" in lines
    assert "raid /boot --level=1 --device=md0 --fstype=ext4 raid.101 raid.201" in lines
    assert "raid swap --level=1 --device=md1 --fstype=swap raid.102 raid.202" in lines
    # the DRBD backing space: raid members with no raid line (never formatted by anaconda)
    assert "part raid.104 --size=1 --grow --ondisk=sda" in lines
    assert not any(ln.startswith("raid ") and "raid.104" in ln for ln in lines)
    pkgs = ks.split("%packages", 1)[1].split("%end", 1)[0].split()
    for p in ("cman", "rgmanager", "lvm2-cluster", "gfs2-utils", "xen-4.0.1-1.an1.fc13", "drbd", "an-cluster-firstboot",
              "kernel-2.6.32.23-170.dom0_an1.fc13", "drbd-km-2.6.32.23_170.dom0_an1.fc13.x86_64", "-NetworkManager"):
        assert p in pkgs, p
    post = ks.split("%post --interpreter=/bin/bash", 1)[1]
    assert "exclude=kernel*" in post and "chkconfig an-cluster-firstboot on" in post
    assert "kernel %s/xen.gz dom0_mem=%s%s" in post and "1024M" in post
    assert "id:3:initdefault:" in post
    nochroot = ks.split("%post --nochroot", 1)[1]
    assert "src=/mnt/source/an-cluster/nodes/an-node01" in nochroot
    assert "install -m 0640" in nochroot


def test_kickstart_single_disk_console_and_packages(clusters):
    c = clusters["vmcl-b"]
    ks = render_kickstart(c, c.node("node-b2"))
    assert 'bootloader --location=mbr --driveorder=vda --append="console=ttyS0,115200"' in ks
    assert "part /var --fstype=ext4 --size=10240 --ondisk=vda" in ks
    assert "raid " not in ks.split("%packages")[0]
    assert "ipmitool" in ks and "OpenIPMI" in ks
    assert "--mtu=9000" in ks
    assert "selinux --enforcing" in ks
    # Xen on a serial console: hypervisor on com1, dom0 on hvc0
    assert "console=com1,vga" in ks and "console=hvc0" in ks


def test_kickstart_pxe_media(clusters):
    c = clusters["an-cluster"]
    n = c.nodes[1]
    ks = render_kickstart(c, n, Media.url("http://10.0.0.1:8080/"))
    lines = ks.splitlines()
    assert "url --url=http://10.0.0.1:8080/os" in lines and "cdrom" not in lines
    assert "repo --name=an-cluster --baseurl=http://10.0.0.1:8080/an-cluster" in lines
    assert "http://10.0.0.1:8080/private/an-node02/etc/cluster/cluster.conf" in ks
    assert "http://10.0.0.1:8080/an-cluster/nodes/an-node02/etc/hosts" in ks
    # the public tree never serves the secret file
    assert "an-cluster/nodes/an-node02/etc/cluster/cluster.conf" not in ks
    assert "%post --nochroot" not in ks
    for rel in node_paths(c, n):
        assert rel in ks
    with pytest.raises(IsobuildError):
        Media.url("10.0.0.1:8080")


def test_disk_layout_and_package_names(clusters):
    raid = disk_layout(clusters["an-cluster"])
    assert [p.md for p in raid] == ["md0", "md1", "md2", None]
    assert raid[-1].mount == "" and raid[-1].size_mib is None and len(raid[-1].members) == 2
    plain = disk_layout(clusters["vmcl-b"])
    assert [p.mount for p in plain] == ["/boot", "swap", "/", "/var", ""]
    assert all(p.md is None for p in plain)
    assert drbd_km_package("2.6.32.23-170.dom0_an1.fc13") == "drbd-km-2.6.32.23_170.dom0_an1.fc13.x86_64"


def test_cluster_conf_content(clusters):
    c = clusters["vmcl-b"]
    conf = node_files(c, c.nodes[0])["etc/cluster/cluster.conf"]
    assert '<cman two_node="1" expected_votes="1"/>' in conf
    assert '<totem secauth="on" rrp_mode="passive"/>' in conf
    assert '<altname name="node-b1.sn"/>' in conf
    assert '<device name="ipmi-b1" action="reboot"/>' in conf  # IPMI: no port
    assert 'agent="fence_ipmilan"' in conf
    assert '<service name="storage_node-b1" domain="only_node-b1"' in conf  # rgmanager storage mode
    assert '<vm name="db01" domain="prefer_db01" path="/vmconfigs/domU_config"' in conf
    assert 'migrate="pause"' in conf
    assert 'lanplus="1"' in conf and "quiet=" not in conf
    c1 = clusters["an-cluster"]
    conf1 = node_files(c1, c1.nodes[0])["etc/cluster/cluster.conf"]
    assert '<device name="batou" port="1" action="reboot"/>' in conf1
    assert 'agent="fence_na"' in conf1 and "quiet=" not in conf1  # cluster 3.0.12 has no quiet


def test_storage_services_and_vms(clusters, copy_example):
    """rgmanager mode (the default): DRBD through our status-reporting script. No <vm> names a `depend`:
    rgmanager 3.0.12 refuses every start of a service whose dependency is not started, recovery
    included (rg_state.c handle_start_req, check_depend_safe), so a VM depending on its preferred
    node's storage service could never fail over when that node dies."""
    c = clusters["vmcl-b"]
    conf = node_files(c, c.nodes[0])["etc/cluster/cluster.conf"]
    assert '<script file="/usr/sbin/an-drbd-service" name="drbd"/>' in conf
    assert 'file="/etc/init.d/drbd"' not in conf  # its status is 0 whenever the module is loaded
    assert '<vm name="web01" domain="prefer_web01" path="/vmconfigs/domU_config" autostart="0"' in conf
    assert "depend=" not in conf
    path = copy_example("cluster.yaml")
    path.write_text(path.read_text().replace("managed_by: rgmanager", "managed_by: init"))
    c1 = load_definition(path)
    conf1 = node_files(c1, c1.nodes[0])["etc/cluster/cluster.conf"]
    assert "<service " not in conf1  # init mode: storage is up before rgmanager


def test_drbd_resource_fences_and_never_waits_forever(clusters):
    c = clusters["an-cluster"]
    res = node_files(c, c.nodes[0])["etc/drbd.d/r0.res"]
    for line in ("fencing\t\tresource-and-stonith;", 'fence-peer\t"/usr/sbin/an-drbd-fence-peer";',
                 'split-brain\t"/usr/lib/drbd/notify-split-brain.sh root";', "after-sb-0pri\tdiscard-zero-changes;",
                 "after-sb-1pri\tdiscard-secondary;", "after-sb-2pri\tdisconnect;", "wfc-timeout\t\t300;",
                 "degr-wfc-timeout\t120;", "outdated-wfc-timeout\t120;", "allow-two-primaries;"):
        assert line in res, line
    assert "dlm protect" not in res
    # a storage-network-only failure: both run the handler at once; the higher nodeid waits
    peer_res = node_files(c, c.node("an-node02"))["etc/drbd.d/r0.res"]
    assert 'fence-peer\t"/usr/sbin/an-drbd-fence-peer 10";' in peer_res
    assert res.replace('an-drbd-fence-peer"', 'an-drbd-fence-peer 10"').replace("\n", "") == \
        peer_res.replace("\n", "")  # nothing else differs


def test_shipped_domu_config_is_staged_and_the_storage_service_starts_the_vm(copy_example):
    path = copy_example("cluster.yaml")
    (path.parent / "vm0001_ws1.cfg").write_text('name = "vm0001_ws1"\nmemory = 1024\n')
    path.write_text(path.read_text().replace("    migrate: live\n", "    migrate: live\n    config_file: vm0001_ws1.cfg\n"))
    c = load_definition(path)
    files = node_files(c, c.nodes[0])
    assert files["xen_shared/domU_config/vm0001_ws1"] == 'name = "vm0001_ws1"\nmemory = 1024\n'
    assert "xen_shared/domU_config/vm0001_ws1" in node_paths(c, c.nodes[0])  # PXE fetches it too
    conf = files["etc/cluster/cluster.conf"]
    # rgmanager mode: rgmanager never cold-starts a VM (autostart="0"); the last resource of each
    # storage service, under the GFS2 mount, enables it (issue 17.5)
    assert 'autostart="0"' in conf.split('<vm name="vm0001_ws1"')[1].split("/>")[0]
    assert '<script ref="gfs2">\n                        <script ref="vms"/>' in conf
    assert '<script file="/usr/sbin/an-vm-start" name="vms"/>' in conf
    path.write_text(path.read_text().replace("managed_by: rgmanager", "managed_by: init"))
    conf = node_files(load_definition(path), c.nodes[0])["etc/cluster/cluster.conf"]
    # init mode: the storage is up from SysV (S20-S26) before rgmanager (S97)
    assert 'autostart="1"' in conf.split('<vm name="vm0001_ws1"')[1].split("/>")[0]
    assert "an-vm-start" not in conf


def test_relocation_restricted_to_peer(clusters):
    c = clusters["an-cluster"]
    sxp = node_files(c, c.node("an-node01"))["etc/xen/xend-config.sxp"]
    assert "(xend-relocation-server yes)" in sxp
    assert "(xend-relocation-port 8002)" in sxp
    assert r"(xend-relocation-hosts-allow '^192\\.168\\.1\\.72$ ^localhost$" in sxp
    assert "(network-script an-network-script)" in sxp
    assert "(xend-relocation-hosts-allow '')" not in sxp


def test_iptables_only_ports_in_use(clusters):
    c = clusters["an-cluster"]
    rules = node_files(c, c.nodes[0])["etc/sysconfig/iptables"]
    opened = {int(ln.split("--dport ")[1].split()[0]) for ln in rules.splitlines() if "--dport" in ln}
    assert opened == set(c.ports_in_use())
    assert "-p sctp -m sctp --dport 21064" in rules  # dlm talks sctp when totem has two rings
    assert "-m udp -p udp --dport 5404" in rules and "-m udp -p udp --dport 5405" in rules


def test_firewall_off_renders_no_iptables(tmp_path, copy_example):
    path = copy_example("cluster.yaml")
    path.write_text(path.read_text().replace("firewall: cluster", "firewall: off"))
    c = load_definition(path)
    ks = render_kickstart(c, c.nodes[0])
    assert "firewall --disabled" in ks
    assert "etc/sysconfig/iptables" not in node_files(c, c.nodes[0])


def test_relocation_explicit_host_list_is_passed_as_regexes(copy_example):
    path = copy_example("cluster.yaml")
    path.write_text(path.read_text().replace("hosts_allow: peers", "hosts_allow: ['^an-node0[12].bcn$']"))
    c = load_definition(path)
    sxp = node_files(c, c.nodes[0])["etc/xen/xend-config.sxp"]
    assert "(xend-relocation-hosts-allow '^an-node0[12].bcn$ ^localhost$ " in sxp


F13_GRUB_CONF = """\
# grub.conf generated by anaconda
default=1
timeout=5
splashimage=(hd0,0)/grub/splash.xpm.gz
hiddenmenu
title Fedora (2.6.33.3-85.fc13.x86_64)
\troot (hd0,0)
\tkernel /vmlinuz-2.6.33.3-85.fc13.x86_64 ro root=UUID=0f1a rd_MD_UUID=b58d:d925 rd_NO_LUKS rd_NO_LVM rd_NO_DM LANG=en_US.UTF-8 console=ttyS0,115200 rhgb quiet
\tinitrd /initramfs-2.6.33.3-85.fc13.x86_64.img
title Fedora (2.6.32.23-170.dom0_an1.fc13.x86_64)
\troot (hd0,0)
\tkernel /vmlinuz-2.6.32.23-170.dom0_an1.fc13.x86_64 ro root=UUID=0f1a rd_MD_UUID=b58d:d925 rd_NO_LUKS rd_NO_LVM rd_NO_DM LANG=en_US.UTF-8 console=ttyS0,115200 rhgb quiet
\tinitrd /initramfs-2.6.32.23-170.dom0_an1.fc13.x86_64.img
"""


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_post_adds_the_xen_grub_entry_as_default(name, clusters, tmp_path):
    """Run the kickstart's grub section with bash on an anaconda-written grub.conf (twice: idempotent)."""
    import subprocess

    c = clusters[name]
    ks = render_kickstart(c, c.nodes[0])
    block = "#" + ks.split("# --- grub:", 1)[1].split("# --- default runlevel", 1)[0]
    conf = tmp_path / "grub.conf"
    conf.write_text(F13_GRUB_CONF)
    script = block.replace("grubconf=/boot/grub/grub.conf", f"grubconf={conf}")
    for _ in range(2):
        subprocess.run(["bash", "-euc", script], check=True, capture_output=True, text=True)
    lines = conf.read_text().splitlines()
    assert lines.count("default=0") == 1 and "default=1" not in lines
    first = lines.index(next(ln for ln in lines if ln.startswith("title ")))
    kver = c.xen.dom0_kernel + ".x86_64"
    assert lines[first] == f"title Xen {c.xen.version}, Linux {kver}"
    assert lines[first + 1] == "\troot (hd0,0)"
    assert lines[first + 2].startswith(f"\tkernel /xen.gz dom0_mem={c.xen.dom0_mem}")
    module = lines[first + 3]
    assert module.startswith(f"\tmodule /vmlinuz-{kver} ro root=UUID=0f1a rd_MD_UUID=b58d:d925")
    assert "  " not in module and not module.endswith(" ")
    assert "console=ttyS0" not in module  # dom0 under Xen: hvc0, never the hypervisor's serial port
    assert lines[first + 4] == f"\tmodule /initramfs-{kver}.img"
    assert sum(ln.startswith("title Xen") for ln in lines) == 1
    assert len([ln for ln in lines if ln.startswith("title ")]) == 3


def test_nochroot_post_stages_the_node_files(clusters, tmp_path):
    """Run the DVD kickstart's %post --nochroot against a fake /mnt/source and /mnt/sysimage."""
    import subprocess

    c = clusters["an-cluster"]
    n = c.nodes[0]
    build = tmp_path / "build"
    render(c, build)
    source, sysimage = tmp_path / "source", tmp_path / "sysimage"
    shutil.copytree(build / "nodes", source / "an-cluster" / "nodes")
    sysimage.mkdir()
    (sysimage / "etc/xen/scripts").mkdir(parents=True)  # what the xen package installed
    (sysimage / "etc/xen/xend-config.sxp").write_text("(network-script network-bridge)\n")  # its stock file
    ks = render_kickstart(c, n)
    body = ks.split("%post --nochroot", 1)[1].split("\n", 1)[1].split("%end", 1)[0]
    body = body.replace("/mnt/source", str(source)).replace("/mnt/sysimage", str(sysimage))
    subprocess.run(["bash", "-c", body], check=True, capture_output=True, text=True)
    stage = sysimage / "var/lib/an-cluster/stage"
    assert _tree(stage) == _tree(build / "nodes" / n.name)
    assert stat.S_IMODE(stage.stat().st_mode) == 0o700
    assert stat.S_IMODE((sysimage / "var/lib/an-cluster").stat().st_mode) == 0o700
    conf = sysimage / "etc/cluster/cluster.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640
    assert conf.read_bytes() == (build / "nodes" / n.name / "etc/cluster/cluster.conf").read_bytes()
    for rel in ("etc/sysconfig/iptables", "etc/sysconfig/iptables.an-cluster", "etc/sysconfig/system-config-firewall",
                "etc/cluster/fence_na.conf"):
        assert (sysimage / rel).read_bytes() == (build / "nodes" / n.name / rel).read_bytes()
        assert stat.S_IMODE((sysimage / rel).stat().st_mode) == 0o600
    # our xend files are in place before xend ever starts (the chroot %post turned xend off)
    for rel, mode in (("etc/xen/xend-config.sxp", 0o644), ("etc/xen/scripts/an-network-script", 0o755)):
        assert (sysimage / rel).read_bytes() == (build / "nodes" / n.name / rel).read_bytes(), rel
        assert stat.S_IMODE((sysimage / rel).stat().st_mode) == mode, rel
    chroot_post = ks.split("%post --nochroot", 1)[0]
    assert chroot_post.index("chkconfig xend off") > chroot_post.index("chkconfig an-cluster-firstboot on")
    url_post = render_kickstart(c, n, Media.url("http://192.0.2.1/an")).split("chkconfig xend off", 1)[1]
    for rel, mode in (("etc/xen/xend-config.sxp", "0644"), ("etc/xen/scripts/an-network-script", "0755")):
        assert f"install -m {mode} /var/lib/an-cluster/stage/{rel} /{rel}" in url_post.split("%end", 1)[0], rel
    # the media must carry the node's files: a clear failure when they are missing
    shutil.rmtree(source / "an-cluster" / "nodes" / n.name)
    proc = subprocess.run(["bash", "-c", body], capture_output=True, text=True)
    assert proc.returncode != 0 and "missing from the install media" in proc.stderr


def test_pxe_post_fetches_public_and_private_files_over_loopback(clusters, tmp_path):
    """The PXE kickstart's fetch section against a local HTTP server on 127.0.0.1 serving the
    contract layout: <base>/an-cluster/nodes/<node>/ (public) and <base>/private/<node>/ (secrets)."""
    import functools
    import http.server
    import subprocess
    import threading

    c = clusters["vmcl-b"]
    n = c.nodes[1]
    build = tmp_path / "build"
    render(c, build)
    www = tmp_path / "www"
    shutil.copytree(build / "nodes" / n.name, www / "an-cluster/nodes" / n.name)
    for rel in secret_paths(c):  # secrets only under private/
        (www / "private" / n.name / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(www / "an-cluster/nodes" / n.name / rel, www / "private" / n.name / rel)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        ks = render_kickstart(c, n, Media.url(base))
        assert "%post --interpreter=/bin/bash --log=/root/an-cluster-ks-post.log --erroronfail" in ks
        body = "#" + ks.split("# --- fetch this node's files", 1)[1].split("# --- never let yum", 1)[0]
        root = tmp_path / "root"
        body = body.replace("/var/lib/an-cluster", str(root / "var/lib/an-cluster")).replace(
            "mkdir -p /etc/cluster", f"mkdir -p {root}/etc/cluster").replace(
            '" /etc/cluster/cluster.conf', f'" {root}/etc/cluster/cluster.conf').replace(
            '"/$1"', f'"{root}/$1"')
        proc = subprocess.run(["bash", "-c", body], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        stage = root / "var/lib/an-cluster/stage"
        assert _tree(stage) == _tree(build / "nodes" / n.name)
        assert stat.S_IMODE((root / "etc/cluster/cluster.conf").stat().st_mode) == 0o640
        assert (root / "etc/sysconfig/iptables").read_bytes() == (stage / "etc/sysconfig/iptables").read_bytes()
        # a file missing on the server stops the install
        (www / "an-cluster/nodes" / n.name / "etc/hosts").unlink()
        shutil.rmtree(root)
        proc = subprocess.run(["bash", "-c", body], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and "could not fetch" in proc.stderr and "etc/hosts" in proc.stderr
    finally:
        server.shutdown()
        server.server_close()


def _backing_block(ks: str, tmp_path: Path, backing: str) -> str:
    body = ks.split("# --- DRBD backing space", 1)[1].split("# --- the first-boot service", 1)[0]
    return ("#" + body).replace("/sys/block", str(tmp_path / "sys/block")).replace(
        "/etc/mdadm.conf", str(tmp_path / "mdadm.conf")).replace(f"backing={backing}", f"backing={tmp_path}/md")


def _fake_disks(tmp_path: Path, disks: dict[str, dict[str, int]]) -> None:
    for disk, parts in disks.items():
        for part, size in parts.items():
            d = tmp_path / "sys/block" / disk / part
            d.mkdir(parents=True)
            (d / "size").write_text(f"{size}\n")


def _shims(tmp_path: Path, members: list[str], formatted: dict[str, str]) -> dict:
    """PATH shims for mdadm and blkid (rbenv-style): the script's selection logic runs for real."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "mdadm").write_text(
        "#!/bin/bash\ncase \"$1\" in\n"
        f"  --examine) for m in {' '.join(members)}; do [ \"$2\" = \"$m\" ] && exit 0; done; exit 1 ;;\n"
        f"  --create) echo \"$@\" > {tmp_path}/created ;;\n"
        "  --detail) echo \"ARRAY $3 metadata=1.2 UUID=00000000:00000000:00000000:00000000\" ;;\n"
        "esac\n")
    (bin_ / "blkid").write_text(
        "#!/bin/bash\ncase \"${@: -1}\" in\n"
        + "".join(f"  {dev}) echo {typ} ;;\n" for dev, typ in formatted.items()) + "esac\n")
    for f in bin_.iterdir():
        f.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}"}


def test_post_assembles_the_backing_raid_from_the_unformatted_partitions(clusters, tmp_path):
    import subprocess

    c = clusters["an-cluster"]
    ks = render_kickstart(c, c.nodes[0])
    # anaconda's numbering: /boot on sda3 (as in the seed), the grow partition sda4; a stray empty
    # tiny extended-style partition must be ignored
    sizes = {"sda1": 83886080, "sda2": 8388608, "sda3": 524288, "sda4": 900000000}
    _fake_disks(tmp_path, {"sda": sizes, "sdb": {k.replace("sda", "sdb"): v for k, v in sizes.items()}})
    env = _shims(tmp_path, members=[f"/dev/sd{d}{i}" for d in "ab" for i in (1, 2, 3)], formatted={})
    script = _backing_block(ks, tmp_path, c.storage.backing_device)
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    created = (tmp_path / "created").read_text().split()
    assert created[:2] == ["--create", f"{tmp_path}/md"]
    assert "--level=1" in created and "--raid-devices=2" in created
    assert created[-2:] == ["/dev/sda4", "/dev/sdb4"]
    assert "ARRAY" in (tmp_path / "mdadm.conf").read_text()


def test_post_refuses_to_guess_the_backing_partitions(clusters, tmp_path):
    import subprocess

    c = clusters["an-cluster"]
    ks = render_kickstart(c, c.nodes[0])
    # sdb's last partition carries a filesystem: only one candidate, so nothing is created
    _fake_disks(tmp_path, {"sda": {"sda1": 5000, "sda4": 900000}, "sdb": {"sdb1": 5000, "sdb4": 900000}})
    env = _shims(tmp_path, members=["/dev/sda1", "/dev/sdb1"], formatted={"/dev/sdb4": "ext4"})
    proc = subprocess.run(["bash", "-c", _backing_block(ks, tmp_path, c.storage.backing_device)], env=env,
                          capture_output=True, text=True)
    assert "found 1 unformatted backing partitions" in proc.stderr and "NOT created" in proc.stderr
    assert not (tmp_path / "created").exists()


def test_post_single_disk_warns_when_anaconda_numbered_differently(clusters, tmp_path):
    import subprocess

    c = clusters["vmcl-b"]
    ks = render_kickstart(c, c.nodes[0])
    _fake_disks(tmp_path, {"vda": {"vda1": 1048576, "vda2": 4194304, "vda3": 41943040, "vda4": 2,
                                   "vda5": 20971520, "vda6": 400000000}})
    fmt = {"/dev/vda1": "ext4", "/dev/vda2": "swap", "/dev/vda3": "ext4", "/dev/vda5": "ext4"}
    env = _shims(tmp_path, members=[], formatted=fmt)
    script = _backing_block(ks, tmp_path, c.storage.backing_device).replace(f"backing={tmp_path}/md",
                                                                           "backing=/dev/vda6")
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == ""  # vda6 is the unformatted one: silent
    fmt["/dev/vda6"] = "ext4"
    fmt.pop("/dev/vda5")
    (tmp_path / "x").mkdir()
    env = _shims(tmp_path / "x", members=[], formatted=fmt)
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert "WARNING: the unformatted DRBD partition is '/dev/vda5', not /dev/vda6" in proc.stderr


def test_unwritable_build_dir_is_a_clear_error(clusters, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the build dir should be\n")
    with pytest.raises(IsobuildError, match="cannot write the render into"):
        render(clusters["an-cluster"], blocker / "build")
