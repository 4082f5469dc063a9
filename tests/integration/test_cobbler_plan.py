"""isobuild/cobbler.py without a Cobbler server: what would be registered, from the definition and the
`invoke pxe` tree (the server side is tests/integration/test_cobbler.py)."""
from __future__ import annotations

import json

import pytest
from pxe_env import DEFAULT, IPMI

from isobuild import cobbler, pxe
from isobuild.errors import IsobuildError
from isobuild.loader import load_definition
from isobuild.stamps import Stamps


def test_kernel_options_like_cobbler_stores_them():
    # cobbler 3.3 utils.input_string_or_dict_no_inherit: a repeated key becomes a list, in order
    assert cobbler.kopts(["ksdevice=bootif", "console=tty0", "console=ttyS0,115200"]) == {
        "ksdevice": "bootif", "console": ["tty0", "ttyS0,115200"]}


def test_wanted_objects_of_the_ipmi_example(tmp_path):
    cluster = load_definition(IPMI)
    items = cobbler.wanted(cluster, "http://10.20.0.254:8080", tmp_path)
    assert [(w.kind, w.name) for w in items] == [("distro", "fedora-13-x86_64"), ("profile", "vmcl-b"),
                                                 ("system", "vmcl-b.node-b1"), ("system", "vmcl-b.node-b2")]
    b1, b2 = items[2], items[3]
    assert b1.interfaces == {"eth1": {"ip_address": "10.20.1.1", "netmask": "255.255.0.0", "static": True,
                                      "management": True, "mac_address": "52:54:00:12:35:01"}}
    assert b2.interfaces["eth1"]["mac_address"] == ""  # node-b2's bcn NIC has no MAC in the definition
    assert items[0].fields["kernel"] == str(tmp_path / "vmlinuz")
    # the same arguments as the `invoke pxe` menus, split between profile (shared) and system (per node)
    node = next(n for n in cluster.nodes if n.name == "node-b1")
    args = pxe.kernel_args(cluster, node, "http://10.20.0.254:8080", "r").split()[1:]
    got = [f"{k}={v}" for part in (items[1], b1) for k, vs in part.fields["kernel_options"].items()
           for v in (vs if isinstance(vs, list) else [vs])]
    assert sorted(got) == sorted(args)
    text = json.dumps([w.__dict__ for w in items])
    for secret in cluster.secrets().values():
        assert secret not in text


def test_stale_system_holding_a_new_systems_address_is_an_error(tmp_path):
    cluster = load_definition(DEFAULT)
    items = cobbler.wanted(cluster, "http://192.168.1.10:8080", tmp_path)
    old = {"hostname": "old.example.com", "interfaces": {"eth0": {"ip_address": "192.168.1.72", "mac_address": ""}}}
    with pytest.raises(IsobuildError, match="an-cluster.an-node02 needs the ip address 192.168.1.72 .* an-cluster.x"):
        cobbler._check_stale_conflicts(items, {"an-cluster.x": old})
    cobbler._check_stale_conflicts(items, {"an-cluster.x": {"hostname": "old.example.com", "interfaces": {}}})


def test_pxe_tree_must_be_this_definitions_and_current(tmp_path):
    cluster = load_definition(IPMI)
    with pytest.raises(IsobuildError, match="run `invoke pxe`"):
        cobbler.pxe_url(cluster, tmp_path)
    (tmp_path / "pxe").mkdir()
    (tmp_path / "pxe" / pxe.SERVE_CONFIG).write_text(json.dumps({"cluster": "other", "url": "http://x"}))
    with pytest.raises(IsobuildError, match="is for cluster 'other', not 'vmcl-b'"):
        cobbler.pxe_url(cluster, tmp_path)
    (tmp_path / "pxe" / pxe.SERVE_CONFIG).write_text(json.dumps({"cluster": "vmcl-b", "url": "http://x"}))
    Stamps(tmp_path).save("pxe", {"definition": "an older one"})
    with pytest.raises(IsobuildError, match="definition changed since"):
        cobbler.pxe_url(cluster, tmp_path)
    Stamps(tmp_path).save("pxe", {"definition": cluster.digest})
    assert cobbler.pxe_url(cluster, tmp_path) == "http://x"
