"""The per-node files registry (isobuild/nodefiles.py): every template has a row, every row a checker,
and a template without a row is refused. (A row added to it is rendered, validated and served from
private/ with no other edit: tests/integration/test_pxe.py.)"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from isobuild import nodefiles
from isobuild.errors import IsobuildError
from isobuild.loader import load_definition
from isobuild.render import render
from isobuild.validate import NODE_CHECKERS

REPO = Path(__file__).resolve().parents[2]


def test_every_template_has_a_row_and_every_row_a_template_and_a_checker():
    assert nodefiles.unregistered_templates(REPO / "kickstart") == []
    for row in nodefiles.NODE_FILES:
        assert row.check in NODE_CHECKERS, row.path
        template = row.template or f"{nodefiles.NODE_TEMPLATES}/{row.path}.j2"
        assert (REPO / "kickstart" / template).is_file(), row.path


def test_a_template_without_a_row_is_refused(tmp_path):
    tpl = tmp_path / "tpl"
    shutil.copytree(REPO / "kickstart", tpl)
    (tpl / "node/etc/an-cluster/extra.conf.j2").write_text("KEY=value\n")
    with pytest.raises(IsobuildError, match=r"kickstart/node/etc/an-cluster/extra.conf.j2 has no row") as exc:
        render(load_definition(REPO / "cluster.yaml"), tmp_path / "build", template_dir=tpl)
    assert "isobuild/nodefiles.py" in (exc.value.hint or "")
    assert not (tmp_path / "build" / "nodes").exists()


def test_rows_that_do_not_apply_are_not_rendered(copy_example, tmp_path):
    path = copy_example("cluster.yaml")
    path.write_text(path.read_text().replace("  firewall: cluster ", "  firewall: off ", 1))
    c = load_definition(path)
    assert c.install.firewall == "off"
    rels = {f.rel for f in nodefiles.planned(c)}
    assert "etc/sysconfig/iptables" not in rels and "etc/hosts" in rels
    render(c, tmp_path / "b")
    assert not (tmp_path / "b/nodes" / c.nodes[0].name / "etc/sysconfig/iptables").exists()
