"""cluster.conf against the cluster.rng inside the cman RPM the nodes will install (issue 16.4).

The base is the synthetic F13 tree (tests/fixtures/f13base.py) with a test-built cman RPM that
carries a schema, as Fedora 13's cman installs /usr/share/cluster/cluster.rng; our repo may carry a
newer cman, which is then the one yum installs.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from isobuild.cmanschema import rpmvercmp
from isobuild.errors import ProblemsError
from isobuild.loader import load_definition
from isobuild.render import render
from isobuild.validate import check_against_node_cman
from tests.conftest import REPO, need_tool
from tests.fixtures import f13base

RNG_3012 = REPO / "schemas" / "cluster-3.0.12.rng"


def strict_rng(tmp_path: Path) -> Path:
    """The 3.0.12 schema without <fence_daemon>: a cman whose schema refuses what we render."""
    text = RNG_3012.read_text()
    start = text.index('<element name="fence_daemon"')
    assert text.count('<element name="fence_daemon"') == 1
    # the element sits in an <optional>: make it a required element of another name
    patched = text[:start] + '<element name="no_such_daemon_x"' + text[start + len('<element name="fence_daemon"'):]
    out = tmp_path / "strict.rng"
    out.write_text(patched)
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    c = load_definition(REPO / "cluster.yaml")
    build = tmp_path_factory.mktemp("build")
    render(c, build)
    return c, build


@pytest.fixture(scope="module")
def base_tree(tmp_path_factory):
    need_tool("rpmbuild", "createrepo_c", "rpm2cpio", "cpio")
    return f13base.make_tree(tmp_path_factory.mktemp("base") / "tree", cman_rng=RNG_3012)


def repo_with_cman(tmp_path: Path, rng: Path, version: str) -> Path:
    repo = tmp_path / "repo"
    f13base.build_cman_rpm(repo, rng, version=version, release="1.an1.fc13")
    subprocess.run(["createrepo_c", "--quiet", str(repo)], check=True)
    return repo


def test_the_dvds_cman_schema_accepts_what_we_render(rendered, base_tree):
    c, build = rendered
    assert check_against_node_cman(c, build, base_tree, None) == "cman cman-3.0.12-1.fc13 (the base DVD)"


def test_a_newer_cman_in_our_repo_is_the_one_checked(rendered, base_tree, tmp_path):
    c, build = rendered
    repo = repo_with_cman(tmp_path, strict_rng(tmp_path), "3.0.17")
    with pytest.raises(ProblemsError) as exc:
        check_against_node_cman(c, build, base_tree, repo)
    probs = exc.value.problems
    assert {p.path for p in probs} == {"RelaxNG cman cman-3.0.17-1.an1.fc13 (our repo)"}
    assert {Path(p.file).parts[-4] for p in probs} == {"an-node01", "an-node02"}  # every node's cluster.conf
    # an older one in our repo loses to the DVD's (yum installs the newest)
    older = repo_with_cman(tmp_path / "old", strict_rng(tmp_path), "3.0.9")
    assert check_against_node_cman(c, build, base_tree, older) == "cman cman-3.0.12-1.fc13 (the base DVD)"


def test_no_cman_anywhere_checks_nothing(rendered, tmp_path):
    need_tool("rpmbuild", "createrepo_c")
    c, build = rendered
    no_cman = tuple(p for p in f13base.BASE_PACKAGES + f13base.F13_CLUSTER_PACKAGES if p[0] != "cman")
    tree = f13base.make_tree(tmp_path / "tree", packages=no_cman, cman_rng=None)
    assert check_against_node_cman(c, build, tree, None) is None


@pytest.mark.parametrize("a,b", [("3.0.12", "3.0.9"), ("1.fc13", "1.an1.fc13"), ("3.0.12a", "3.0.12"),
                                 ("3.0.12", "3.0.12.1"), ("10", "9a"), ("1.0a", "1.0.1"), ("2.6.32", "2.6.32_1"),
                                 ("3.0.12", "3.0.12")])
def test_rpmvercmp_agrees_with_rpm(a, b):
    """Against the real rpm's vercmp (its lua binding); these inputs use nothing newer than rpm 4.8."""
    need_tool("rpm")
    real = subprocess.run(["rpm", "--eval", f"%{{lua: print(rpm.vercmp('{a}', '{b}'))}}"], check=True,
                          capture_output=True, text=True).stdout.strip()
    assert rpmvercmp(a, b) == int(real)


def test_invoke_iso_stops_before_writing_when_the_nodes_cman_refuses(tmp_path):
    """`invoke iso` with a base DVD and our repo: a cman whose schema refuses cluster.conf stops the
    build before the disc is written, naming the package and the file."""
    need_tool("genisoimage", "implantisomd5", "rpmbuild", "createrepo_c", "rpm2cpio", "cpio")
    base = f13base.build_base(tmp_path / "base", cman_rng=RNG_3012)
    build = tmp_path / "build"
    f13base.build_rpms(build / "rpms", f13base.our_packages())  # what the kickstarts' %packages need of ours
    f13base.build_cman_rpm(build / "rpms", strict_rng(tmp_path), version="3.0.17", release="1.an1.fc13")
    run = lambda: subprocess.run([sys.executable, "-m", "invoke", "iso", "--build-dir", str(build),  # noqa: E731
                                  "--base", str(base)], cwd=REPO, capture_output=True, text=True, timeout=600)
    res = run()
    assert res.returncode == 2, res.stdout + res.stderr
    assert "cman cman-3.0.17-1.an1.fc13 (our repo)" in res.stderr and "cluster.conf" in res.stderr
    assert not (build / "out").exists() or not any((build / "out").iterdir())
    for p in (build / "rpms").glob("cman-*"):
        p.unlink()
    ok = run()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "cluster.conf: valid for cman cman-3.0.12-1.fc13 (the base DVD)" in ok.stderr
