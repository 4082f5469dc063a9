"""The runbook, generated for both example clusters and for a renamed copy, checked by parsing the HTML."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import lxml.etree
import lxml.html
import pytest
from conftest import REPO

from isobuild import initorder, runbook
from isobuild.loader import load_definition

EXAMPLES = [REPO / "cluster.yaml", REPO / "examples" / "ipmi-cluster.yaml"]

# old name -> new name, for a copy of cluster.yaml with every name changed
RENAMES = {
    "an-node01": "zz-alpha", "an-node02": "zz-beta", "name: an-cluster": "name: zzclu",
    "drbd0_vg0": "vg_zz", "xen_shared": "zzshared", "vm0001_ws1": "zzvm1", "alteeve.com": "zz.example.net",
    "resource: r0": "resource: zzres", "batou": "zzfence", "/dev/drbd0": "/dev/drbd7",
}


def _build(definition: Path, tmp_path: Path):
    cluster = load_definition(definition)
    out = runbook.build_runbook(cluster, tmp_path / cluster.name)
    html = (out / "index.html").read_text()
    return cluster, out, html, lxml.html.fromstring(html)


def _rows(doc, table_id: str) -> list[list[str]]:
    return [[td.text_content().strip() for td in tr.findall("td")]
            for tr in doc.get_element_by_id(table_id).iter("tr") if tr.findall("td")]


def _procedure(doc, key: str) -> str:
    return doc.get_element_by_id(key).text_content()


@pytest.mark.parametrize("definition", EXAMPLES, ids=lambda p: p.name)
def test_runbook_tables_map_order_and_procedures(definition, tmp_path):
    cluster, out, html, doc = _build(definition, tmp_path)
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "index.md", "storage.svg"]
    assert cluster.name in doc.findtext(".//title")
    nodes = sorted(cluster.nodes, key=lambda n: n.nodeid)
    rows = _rows(doc, "node-table")
    assert [r[:3] for r in rows] == [[n.name, n.fqdn, str(n.nodeid)] for n in nodes]
    for r, n in zip(rows, nodes):
        for i, net in enumerate(("bcn", "sn", "ifn")):
            assert r[3 + i].startswith(str(n.ip[net]))
    nets = {r[0]: r for r in _rows(doc, "network-table")}
    for name, nw in cluster.networks.items():
        assert nets[name][2] == nw.interface and nets[name][3] == str(nw.subnet)
    assert [r[0] for r in _rows(doc, "fence-table")] == [d.name for d in cluster.fence_devices]

    # storage map: an SVG inside the page, with every layer from the definition
    svg = doc.get_element_by_id("storage-map").find(".//svg")
    assert svg is not None
    texts = [t.text_content() for t in svg.iter("text")]
    st = cluster.storage
    for disk in cluster.install.disks:
        assert disk in texts
    assert cluster.storage.backing_device in texts
    assert f"DRBD {st.drbd.resource}: {st.drbd.device}" in texts
    assert f"VG {st.clvm.vg}" in texts and f"GFS2 {st.gfs2.mount}" in texts
    for lv in [st.gfs2.lv] + [vm.name for vm in cluster.vms]:
        assert any(t.startswith(f"LV {lv} ") for t in texts), lv
    assert [n.name for n in nodes] == [t for t in texts if t in {n.name for n in nodes}]
    lxml.etree.fromstring((out / "storage.svg").read_bytes())  # well-formed XML on its own

    # start order = the initorder table for this storage mode
    order = [r[1] for r in _rows(doc, "service-table")]
    assert order == [s.name for s in initorder.services(st.managed_by)]

    status = _procedure(doc, "status")
    assert "cat /proc/drbd" in status and "clustat" in status and st.clvm.vg in status
    first = _procedure(doc, "first-boot")
    assert f"drbdadm dstate {st.drbd.resource}" in first and "UpToDate" in first
    assert f"{nodes[1].name} does not start rgmanager, so no VM starts on a disk still being synced" in first
    fencing = _procedure(doc, "fencing")
    for n in nodes:
        assert f"fence_node {cluster.peer(n).fqdn}" in fencing
    migration = _procedure(doc, "migration")
    for vm in cluster.vms:
        other = cluster.peer(cluster.node(vm.prefer))
        assert f"clusvcadm -M vm:{vm.name} -m {other.fqdn}" in migration
    shutdown = _procedure(doc, "shutdown")
    assert "poweroff" in shutdown and all(n.name in shutdown for n in nodes)
    split = _procedure(doc, "split-brain")
    keep, discard = nodes[0], nodes[1]
    assert f"{discard.name}'s changes since the split are DISCARDED" in split
    backup = split.index(f"dd if={st.backing_device}")
    assert backup < split.index(f"drbdadm -- --discard-my-data connect {st.drbd.resource}")
    by_hand = [vm for vm in cluster.vms if not vm.autostart and vm.install is None]  # 95-vms provisions the rest
    if by_hand:
        provision = _procedure(doc, "provision-vm")
    for vm in by_hand:
        pref = cluster.node(vm.prefer)
        assert f"$EDITOR {st.gfs2.mount}/domU_config/{vm.name}" in provision
        assert f"clusvcadm -e vm:{vm.name} -m {pref.fqdn}" in provision
        assert f"phy:/dev/{st.clvm.vg}/{vm.name},xvda,w" in provision
    for vm in cluster.vms:  # per VM: console, config change to the shared fs, reprovision (backup first)
        proc = _procedure(doc, f"vm-{vm.name}")
        hvm = vm.install is not None and vm.install.method == "hvm"
        conf = f"{st.gfs2.mount}/domU_config/{vm.name}" + ("" if hvm else ".xml")
        assert (f"vncdisplay {vm.name}" if hvm else f"xm console {vm.name}") in proc
        assert f"clusvcadm -R vm:{vm.name}" in proc and conf in proc
        lv = f"/dev/{st.clvm.vg}/{vm.name}"
        assert proc.index(f"dd if={lv} of=") < proc.index(f"dd if=/dev/zero of={lv}") < proc.index("reset 95-vms")
    add = _procedure(doc, "add-vm")
    assert f"lvcreate -L <disk size> -n <vm name> {st.clvm.vg}" in add
    assert f"cman_tool version -r {cluster.config_version + 1}" in add

    md = (out / "index.md").read_text()
    for n in nodes:
        assert f"| {n.name} | {n.fqdn} |" in md and f"fence_node {cluster.peer(n).fqdn}" in md
    assert "![storage map](storage.svg)" in md


@pytest.mark.parametrize("definition", EXAMPLES, ids=lambda p: p.name)
def test_no_secrets_in_the_runbook(definition, tmp_path):
    cluster, out, _html, _doc = _build(definition, tmp_path)
    secrets = [d.password.reveal().strip() for d in cluster.fence_devices]
    secrets.append(cluster.install.root_password_hash.reveal().strip())
    for p in out.iterdir():
        text = p.read_text()
        assert not any(s in text for s in secrets), p.name
        assert "<redacted>" not in text


def test_every_name_comes_from_the_definition(tmp_path):
    src = (REPO / "cluster.yaml").read_text()
    for old, new in RENAMES.items():
        assert old in src, old
        src = src.replace(old, new)
    d = tmp_path / "def"
    d.mkdir()
    (d / "renamed.yaml").write_text(src)
    shutil.copytree(REPO / "examples" / "secrets", d / "examples" / "secrets")
    shutil.copy(d / "examples" / "secrets" / "demo-batou.pw", d / "examples" / "secrets" / "demo-zzfence.pw")
    cluster, out, html, doc = _build(d / "renamed.yaml", tmp_path)
    assert cluster.name == "zzclu"
    for p in out.iterdir():
        text = p.read_text()
        for product in ("an-cluster-firstboot", "/var/lib/an-cluster/", "/.an-cluster/"):  # the product, not the cluster
            text = text.replace(product, "")
        for old, new in RENAMES.items():
            old_name, new_name = old.split(": ")[-1], new.split(": ")[-1]
            assert old_name not in text, f"{p.name} still says {old_name}"
            if p.suffix != ".svg":  # the map names storage only
                assert new_name in text, f"{p.name} lacks {new_name}"
    assert "fence_node zz-beta.zz.example.net" in _procedure(doc, "fencing")
    assert "clusvcadm -M vm:zzvm1 -m zz-beta.zz.example.net" in _procedure(doc, "migration")


def test_html_is_escaped_and_valid(tmp_path):
    cluster = load_definition(REPO / "cluster.yaml")
    evil = dataclasses.replace(cluster, timezone="<script>alert(1)</script>", domain="a&b.example")
    html = runbook.render_runbook(evil)["index.html"]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a&amp;b.example" in html
    out = runbook.build_runbook(cluster, tmp_path)
    if shutil.which("xmllint"):
        proc = subprocess.run(["xmllint", "--html", "--noout", str(out / "index.html")],
                              capture_output=True, text=True)
        # libxml2's HTML4 parser does not know inline <svg> tags; anything else is an error in our markup
        errors = [ln for ln in proc.stderr.splitlines() if "error" in ln and "Tag svg" not in ln and
                  "Tag g " not in ln and "Tag rect" not in ln and "Tag line" not in ln and "Tag text" not in ln
                  and "Tag style" not in ln and "Tag figcaption" not in ln and "Tag figure" not in ln
                  and "Tag section" not in ln]
        assert not errors, proc.stderr


def test_output_is_atomic_and_replaces_the_previous_one(tmp_path):
    cluster = load_definition(REPO / "cluster.yaml")
    out = runbook.build_runbook(cluster, tmp_path)
    (out / "stale.txt").write_text("old")
    runbook.build_runbook(cluster, tmp_path)
    assert not (out / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["runbook"]


@pytest.mark.parametrize("definition", EXAMPLES, ids=lambda p: p.name)
def test_storage_map_geometry(definition):
    """Boxes inside the picture, none overlapping, each label narrower than its box (13px sans ~ 7.6px/char)."""
    cluster = load_definition(definition)
    svg = lxml.etree.fromstring(runbook.storage_svg(runbook.storage_map(cluster)).encode())
    ns = {"s": "http://www.w3.org/2000/svg"}
    width, height = float(svg.get("width")), float(svg.get("height"))
    boxes = []
    for g in svg.findall("s:g", ns):
        r, t = g.find("s:rect", ns), g.find("s:text", ns)
        x, y, w, h = (float(r.get(k)) for k in ("x", "y", "width", "height"))
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height, t.text
        assert len(t.text) * 7.6 <= w, f"label {t.text!r} wider than its box ({w}px)"
        boxes.append((x, y, w, h, t.text))
    assert len(boxes) >= 8
    for i, (x1, y1, w1, h1, t1) in enumerate(boxes):
        for x2, y2, w2, h2, t2 in boxes[i + 1:]:
            assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1, f"{t1!r} overlaps {t2!r}"


@pytest.mark.parametrize("managed_by", ["rgmanager", "init"])
def test_provisioning_says_how_the_vm_starts_on_a_cold_start(managed_by, tmp_path):
    """rgmanager mode: every <vm> is autostart="0" and the storage service's an-vm-start enables it
    (issue 17.5); init mode: a shipped config makes it autostart="1"."""
    cluster = load_definition(REPO / "cluster.yaml")
    cluster = dataclasses.replace(cluster, storage=dataclasses.replace(cluster.storage, managed_by=managed_by),
                                  vms=tuple(dataclasses.replace(vm, install=None) for vm in cluster.vms))  # by hand
    text = _procedure(lxml.html.fromstring(runbook.render_runbook(cluster)["index.html"]), "provision-vm")
    assert ("an-vm-start" in text) is (managed_by == "rgmanager")
    assert ('(autostart="1")' in text) is (managed_by == "init")
