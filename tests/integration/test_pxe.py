"""`invoke pxe` on the synthetic Fedora 13 base: the TFTP tree, the menus, the HTTP tree, the exports,
the secrets rule, bad inputs, and one QEMU network boot through pxelinux with a node's MAC."""
from __future__ import annotations

import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest
from conftest import need_tool
from pxe_env import DEFAULT, IPMI, build_pxe, copy_definition, make_base

from isobuild import pxe
from isobuild.errors import IsobuildError
from isobuild.loader import load_definition

URL = "http://10.0.2.2:8080"  # QEMU user-net's host address: never leaves the machine


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_base(tmp_path_factory.mktemp("f13base"))


@pytest.fixture(scope="module")
def ipmi_build(base, tmp_path_factory):
    """ipmi example, base given as the ISO."""
    build = tmp_path_factory.mktemp("build-ipmi")
    cluster = load_definition(IPMI)
    res = build_pxe(cluster, build, base=base["iso"], url=URL, repo_dir=base["repo"])
    return cluster, res


def _cfgs(res) -> dict[str, str]:
    d = res.pxe_dir / "tftp" / "pxelinux.cfg"
    return {p.name: p.read_text() for p in sorted(d.iterdir())}


def test_tftp_tree_every_named_file_exists(ipmi_build):
    _cluster, res = ipmi_build
    tftp = res.pxe_dir / "tftp"
    assert (tftp / "pxelinux.0").read_bytes() == pxe.find_pxelinux().read_bytes()
    for mod in ("ldlinux.c32", "menu.c32", "libutil.c32", "libcom32.c32"):
        assert (tftp / mod).is_file(), mod
    cfgs = _cfgs(res)
    assert cfgs, "no pxelinux configs"
    for name, text in cfgs.items():
        refs = pxe.referenced_files(text)
        assert "menu.c32" in refs and any(r.endswith("vmlinuz") for r in refs), name
        for ref in refs:
            assert (tftp / ref).is_file(), f"{name} names {ref}"


def test_kernel_and_initrd_come_from_the_base(ipmi_build, base):
    _cluster, res = ipmi_build
    for name in ("vmlinuz", "initrd.img"):
        got = (res.pxe_dir / "tftp" / "fedora-13-x86_64" / name).read_bytes()
        assert got == (base["tree"] / "images" / "pxeboot" / name).read_bytes()


def test_per_mac_files_and_safe_defaults(ipmi_build):
    cluster, res = ipmi_build
    cfgs = _cfgs(res)
    # node-b1's bcn NIC (eth1) has a MAC; node-b2 only lists eth0 (ifn), which does not PXE-boot.
    assert set(cfgs) == {"default", "01-52-54-00-12-35-01"}
    assert res.nodes_without_mac == ["node-b2"]
    assert any("node-b2" in w and "eth1" in w for w in res.warnings)
    for name, text in cfgs.items():
        assert pxe.timeout_label(text) == "local", name
        local = text.split("\nlabel local", 1)[1].split("\nlabel ", 1)[0]
        assert "localboot 0" in local and "menu default" in local
        assert text.index("serial 0 115200") < text.index("ui menu.c32")  # console from the definition
    mac_cfg = cfgs["01-52-54-00-12-35-01"]
    assert "label install-node-b1" in mac_cfg and "node-b2" not in mac_cfg
    assert f"ks={URL}/ks/node-b1.ks" in mac_cfg and "ip=10.20.1.1 netmask=255.255.0.0" in mac_cfg
    default = cfgs["default"]
    for n in cluster.nodes:
        assert f"label install-{n.name}" in default and f"ks={URL}/ks/{n.name}.ks" in default
        entry = default.split(f"label install-{n.name}", 1)[1].split("\nlabel ", 1)[0]
        assert "menu default" not in entry and "ipappend 2" in entry


def test_http_tree_kickstarts_repo_and_node_files(ipmi_build, base):
    cluster, res = ipmi_build
    http = res.pxe_dir / "http"
    assert not (http / "os").exists()  # ISO base: served from the image by `invoke serve`
    assert (http / "an-cluster" / "repodata" / "repomd.xml").read_bytes() == \
        (base["repo"] / "repodata" / "repomd.xml").read_bytes()
    for n in cluster.nodes:
        ks = (http / "ks" / f"{n.name}.ks").read_text()
        assert f"url --url={URL}/os" in ks
        assert f"repo --name=an-cluster --baseurl={URL}/an-cluster" in ks
        # every file the kickstart's %post fetches from us is in the tree
        urls = re.findall(re.escape(URL) + r"/([^\s'\"]+)", ks)
        fetched = [u for u in urls if u.startswith(("an-cluster/nodes/", "private/"))]
        assert fetched, "the network kickstart fetches no per-node files"
        for u in fetched:
            assert (http / u).is_file(), u
        assert (http / "private" / n.name / "etc/cluster/cluster.conf").is_file()
        assert not (http / "an-cluster" / "nodes" / n.name / "etc/cluster/cluster.conf").exists()


def test_secrets_fence_passwords_only_under_private(ipmi_build):
    cluster, res = ipmi_build
    http = res.pxe_dir / "http"
    fence = [d.password.reveal().strip() for d in cluster.fence_devices]
    root_hash = cluster.install.root_password_hash.reveal().strip()
    seen_in_private = set()
    for p in http.rglob("*"):
        if not p.is_file():
            continue
        data = p.read_text(errors="replace")
        rel = p.relative_to(http).as_posix()
        for pw in fence:
            if pw in data:
                assert rel.startswith("private/"), f"fence password in public file {rel}"
                seen_in_private.add(pw)
        if root_hash in data:
            assert rel.startswith(("ks/", "private/")), f"root hash in {rel}"
    assert seen_in_private == set(fence)  # cluster.conf does carry them (so the test can fail)
    for n in cluster.nodes:
        ks = (http / "ks" / f"{n.name}.ks").read_text()
        assert root_hash in ks  # only the hash, which anaconda needs
    for p in res.pxe_dir.glob("*"):
        if p.is_file():
            assert not any(pw in p.read_text() for pw in fence), p.name


def test_serve_config_acl_names_each_nodes_addresses(ipmi_build):
    import json

    cluster, res = ipmi_build
    cfg = json.loads((res.pxe_dir / "serve.json").read_text())
    assert cfg["os"]["kind"] == "iso"
    for n in cluster.nodes:
        want = sorted(str(a) for a in n.ip.values())
        assert cfg["acl"][f"private/{n.name}/"] == want
        assert cfg["acl"][f"ks/{n.name}.ks"] == want


def test_dnsmasq_snippet(ipmi_build):
    tools = need_tool("dnsmasq")
    cluster, res = ipmi_build
    conf = res.pxe_dir / "dnsmasq.conf"
    text = conf.read_text()
    assert "dhcp-host=52:54:00:12:35:01,10.20.1.1,node-b1,infinite" in text
    assert not re.search(r"^dhcp-host=.*node-b2", text, re.M)
    assert f"tftp-root={res.pxe_dir / 'tftp'}" in text and "dhcp-boot=pxelinux.0" in text
    subprocess.run([tools["dnsmasq"], "--test", "-C", str(conf)], check=True, capture_output=True)
    assert not (res.pxe_dir / "cobbler-systems.sh").exists()  # replaced by `invoke cobbler`


def test_tree_base_is_served_in_place_and_default_cluster_has_no_macs(base, tmp_path):
    cluster = load_definition(DEFAULT)
    res = build_pxe(cluster, tmp_path, base=base["tree"], url="http://192.168.1.10:8080", repo_dir=base["repo"])
    os_link = res.pxe_dir / "http" / "os"
    assert os_link.is_symlink() and os_link.resolve() == base["tree"].resolve()
    assert sorted(p.name for p in (res.pxe_dir / "tftp" / "pxelinux.cfg").iterdir()) == ["default"]
    assert res.nodes_without_mac == ["an-node01", "an-node02"]
    default = (res.pxe_dir / "tftp" / "pxelinux.cfg" / "default").read_text()
    assert pxe.timeout_label(default) == "local" and "serial" not in default


def test_bad_inputs_are_clear_errors_and_leave_the_old_tree(base, tmp_path, ipmi_build):
    cluster = load_definition(IPMI)
    good = build_pxe(cluster, tmp_path, base=base["tree"], url=URL, repo_dir=base["repo"])
    before = sorted(p.relative_to(good.pxe_dir) for p in good.pxe_dir.rglob("*"))
    wrong = tmp_path / "not-f13"
    wrong.mkdir()
    (wrong / ".treeinfo").write_text("[general]\nfamily = Fedora\nversion = 14\narch = x86_64\n")
    with pytest.raises(IsobuildError, match=r"not a Fedora 13 x86_64 install tree: .treeinfo says Fedora 14"):
        build_pxe(cluster, tmp_path, base=wrong, url=URL, repo_dir=base["repo"])
    with pytest.raises(IsobuildError, match="images/pxeboot/vmlinuz is missing"):
        build_pxe(cluster, tmp_path, base=wrong, url=URL, repo_dir=base["repo"])
    with pytest.raises(IsobuildError, match="does not exist"):
        build_pxe(cluster, tmp_path, base=tmp_path / "nope.iso", url=URL, repo_dir=base["repo"])
    with pytest.raises(IsobuildError, match="repodata/repomd.xml"):
        build_pxe(cluster, tmp_path, base=base["tree"], url=URL, repo_dir=tmp_path / "norepo")
    with pytest.raises(IsobuildError, match="not http://"):
        build_pxe(cluster, tmp_path, base=base["tree"], url="10.20.0.1:8080", repo_dir=base["repo"])
    assert sorted(p.relative_to(good.pxe_dir) for p in good.pxe_dir.rglob("*")) == before
    assert not list(tmp_path.glob(".pxe.tmp-*"))


def test_a_secret_in_a_public_node_file_is_refused(base, tmp_path, monkeypatch):
    """If a template ever wrote a fence password into a file not marked secret, pxe must refuse."""
    import dataclasses

    from isobuild import nodefiles

    public = tuple(dataclasses.replace(r, secret=False) if r.path == "etc/cluster/cluster.conf" else r
                   for r in nodefiles.NODE_FILES)
    monkeypatch.setattr(nodefiles, "NODE_FILES", public)  # cluster.conf now counts as public
    cluster = load_definition(IPMI)
    with pytest.raises(IsobuildError, match=r"cluster.conf holds the fence device ipmi-b\d password"):
        build_pxe(cluster, tmp_path, base=base["tree"], url=URL, repo_dir=base["repo"])
    assert not (tmp_path / "pxe").exists()


def test_an_authorized_key_in_a_public_node_file_is_refused(tmp_path):
    """The leak check looks for every secret of the definition, the authorized keys too (it used to
    look for the fence passwords and the root hash only)."""
    from isobuild.render import render

    cluster = load_definition(IPMI)
    render(cluster, tmp_path)
    key = cluster.install.ssh_authorized_keys.reveal().splitlines()[0]
    hosts = tmp_path / "nodes" / cluster.nodes[0].name / "etc/hosts"
    hosts.write_text(hosts.read_text() + f"# {key}\n")
    with pytest.raises(IsobuildError, match=r"etc/hosts holds the ssh authorized key 1 but is not a secret file"):
        pxe.publish_node_files(tmp_path / "http", cluster, tmp_path / "nodes")
    assert not (tmp_path / "http/an-cluster/nodes" / cluster.nodes[0].name / "etc/hosts").exists()


def test_a_row_added_to_the_node_files_registry_is_rendered_validated_and_served_privately(
        base, tmp_path, monkeypatch):
    """One registry row and nothing else: render writes the file (0600), validate runs the row's
    checker, the network kickstart fetches it from private/<node>/ and pxe serves it only there."""
    import stat

    from isobuild import nodefiles
    from isobuild.validate import validate

    row = nodefiles.NodeFile("etc/an-cluster/hosts.copy", "hosts", "node/etc/hosts.j2", secret=True)
    monkeypatch.setattr(nodefiles, "NODE_FILES", nodefiles.NODE_FILES + (row,))
    cluster = load_definition(IPMI)
    res = build_pxe(cluster, tmp_path, base=base["tree"], url=URL, repo_dir=base["repo"])
    http = res.pxe_dir / "http"
    for n in cluster.nodes:
        built = tmp_path / "nodes" / n.name / row.path
        assert stat.S_IMODE(built.stat().st_mode) == 0o600
        assert (http / "private" / n.name / row.path).read_bytes() == built.read_bytes()
        assert not (http / "an-cluster/nodes" / n.name / row.path).exists()
        assert f"{URL}/private/{n.name}/{row.path}" in (http / "ks" / f"{n.name}.ks").read_text()
    checked = validate(tmp_path, cluster)
    assert all(checked[tmp_path / "nodes" / n.name / row.path] == "hosts(5)" for n in cluster.nodes)


# --------------------------------------------------------------------------------------------
# QEMU: PXE boot with node-b1's MAC through iPXE -> pxelinux -> our menu -> the kernel
# --------------------------------------------------------------------------------------------


def _drive(argv: list[str], steps: list[tuple[bytes, bytes]], done: bytes, limit: float) -> bytes:
    """Run QEMU, answer each `expect` with its `send` in order, stop at `done` or after `limit` s.
    Each `expect` is looked for in the output after the previous answer only: the same text drawn
    again (a menu entry redrawn once the key moved the selection) is a new event, the old one is not."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    buf = b""
    seen = 0  # where the output after the last answer starts
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline and done not in buf and b"No bootable device" not in buf:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
            if steps and steps[0][0] in buf[seen:]:
                time.sleep(0.5)  # let the menu finish drawing
                proc.stdin.write(steps.pop(0)[1])
                proc.stdin.flush()
                seen = len(buf)
    finally:
        proc.kill()
        proc.wait()
    return buf


@pytest.mark.slow
def test_qemu_network_boot_shows_the_node_entry_and_boots_it(ipmi_build):
    tools = need_tool("qemu-system-x86_64")
    cluster, res = ipmi_build
    node = cluster.node("node-b1")
    mac = pxe.boot_mac(cluster, node)
    kernel = res.pxe_dir / "tftp" / "fedora-13-x86_64" / "vmlinuz"
    if kernel.read_bytes()[:4] == b"not ":
        pytest.fail("the fixture has no real kernel (install linux-image-cloud-amd64)")
    argv = [tools["qemu-system-x86_64"], "-machine", "pc,accel=tcg", "-m", "256", "-nographic", "-no-reboot",
            "-netdev", f"user,id=n0,restrict=on,tftp={res.pxe_dir / 'tftp'},bootfile=pxelinux.0",
            "-device", f"e1000,netdev=n0,mac={mac}", "-boot", "n"]
    title = f"{node.name} {mac}".encode()
    # The menu is drawn on the serial console; local disk is the default, so move down once and boot.
    out = _drive(argv, [(title, b"\x1b[B"), (title, b"\r")], b"AN-TEST-DONE", limit=120)
    text = out.decode(errors="replace")
    assert title.decode() in text, text[-2000:]
    m = re.search(r"AN-TEST-CMDLINE: (.*)", text)
    assert m, "the kernel did not start:\n" + text[-2000:]
    cmdline = m.group(1).split()
    assert f"ks={URL}/ks/node-b1.ks" in cmdline
    assert "BOOTIF=01-" + mac.replace(":", "-") in cmdline
    assert "ip=10.20.1.1" in cmdline and "console=ttyS0,115200" in cmdline


def test_unchanged_rebuild_is_a_noop_and_says_why_it_reruns(base, tmp_path):
    cluster = load_definition(IPMI)
    kw = dict(base=base["tree"], repo_dir=base["repo"])
    first = build_pxe(cluster, tmp_path, url=URL, **kw)
    assert first.built
    marker = first.pxe_dir / "tftp" / "pxelinux.cfg" / "default"
    mtime = marker.stat().st_mtime_ns
    again = build_pxe(cluster, tmp_path, url=URL, **kw)
    assert not again.built and again.reason == "up to date" and marker.stat().st_mtime_ns == mtime
    assert again.mac_files == first.mac_files and again.nodes_without_mac == first.nodes_without_mac
    other = build_pxe(cluster, tmp_path, url="http://10.20.0.9:8080", **kw)
    assert other.built and other.reason == "input changed: url"
    assert "ks=http://10.20.0.9:8080/ks/node-b1.ks" in marker.read_text()


def test_editing_isolinux_makes_pxe_out_of_date(base, tmp_path, monkeypatch):
    """The PXE menus come from isolinux.py: an edit there rebuilds build/pxe (the code digest covers
    every module pxe imports, not only pxe.py)."""
    import shutil

    from isobuild import paths, stamps

    cluster = load_definition(IPMI)
    kw = dict(base=base["tree"], repo_dir=base["repo"], url=URL)
    assert build_pxe(cluster, tmp_path / "b", **kw).built
    code = tmp_path / "isobuild"
    shutil.copytree(paths.PACKAGE, code, ignore=shutil.ignore_patterns("__pycache__"))
    with open(code / "isolinux.py", "a") as fh:
        fh.write("# an edit to the menu code\n")
    monkeypatch.setattr(stamps, "CODE_DIR", code)
    again = build_pxe(cluster, tmp_path / "b", **kw)
    assert again.built and again.reason == "input changed: code"

def test_network_kickstarts_are_validated(base, tmp_path, monkeypatch):
    """A kickstart the F13 parser rejects stops `invoke pxe` (the DVD kickstarts are unaffected)."""
    from isobuild import render
    from isobuild.errors import ProblemsError

    real = render.render_kickstart

    def broken(cluster, node, media=None, *a, **kw):
        text = real(cluster, node, media, *a, **kw)
        return text + "notakickstartcommand --foo\n" if media is not None and media.kind == "url" else text

    monkeypatch.setattr(render, "render_kickstart", broken)
    with pytest.raises(ProblemsError, match="network-install kickstarts do not validate"):
        build_pxe(load_definition(IPMI), tmp_path, base=base["tree"], url=URL, repo_dir=base["repo"])
    assert not (tmp_path / "pxe").exists()
