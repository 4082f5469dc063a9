"""`invoke iso` / `invoke pxe` with a base: every package and group of the kickstarts' %packages is
resolved against the base's real repodata (createrepo_c primary + comps) plus our repo, before a
byte is written. The base is tests/fixtures/f13base.py's synthetic DVD (real RPMs, real metadata)."""
from __future__ import annotations

from pathlib import Path

import pytest

from isobuild import iso as isomod
from isobuild.errors import IsobuildError
from isobuild.loader import load_definition
from isobuild.pkgresolve import check_packages, dir_reader, read_repo
from isobuild.render import Media, render, render_kickstart
from isobuild.repo import make_repo
from tests.conftest import REPO, need_tool
from tests.fixtures import f13base

from pxe_env import build_pxe
from repo_query import repoquery

EXAMPLES = [REPO / "cluster.yaml", REPO / "examples" / "ipmi-cluster.yaml"]
URL = "http://192.168.1.10:8080"


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    need_tool("rpmbuild", "createrepo_c", "genisoimage", "implantisomd5")
    root = tmp_path_factory.mktemp("media")
    tree = f13base.make_tree(root / "tree")
    no_telnet = f13base.make_tree(root / "no-telnet", packages=f13base.BASE_PACKAGES + tuple(
        p for p in f13base.F13_CLUSTER_PACKAGES if p[0] != "perl-Net-Telnet"))
    f13base.build_rpms(root / "ours", f13base.our_packages())
    repo = make_repo([root / "ours"], root / "repo")
    return {"tree": tree, "iso": f13base.master(tree, root / "dvd.iso"), "no-telnet": no_telnet, "repo": repo}


@pytest.mark.parametrize("which", ["tree", "repo"])
def test_metadata_read_as_dnf_reads_it(media, which, tmp_path):
    """Our primary.xml reading agrees with dnf's (libsolv) on the same createrepo_c metadata."""
    repo = read_repo(dir_reader(media[which]), which)
    assert sorted(f"{p.nvr}.{p.arch}" for p in repo.packages) == repoquery(media[which], tmp_path)
    if which == "tree":
        assert [g.groupid for g in repo.groups] == ["core", "base"]
        telnet = next(p for p in repo.packages if p.name == "perl-Net-Telnet")
        assert "perl(Net::Telnet) = 3.03" in [str(d) for d in telnet.provides]
    else:
        km = next(p for p in repo.packages if p.name.startswith("drbd-km-"))
        assert [str(d) for d in km.requires if d.name == "kernel-uname-r"] == [
            "kernel-uname-r = 2.6.32.23-170.dom0_an1.fc13.x86_64"]


def _texts(cluster, media_kind=Media.cdrom()):
    return {n.name: render_kickstart(cluster, n, media_kind) for n in cluster.nodes}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_resolve_on_the_base_plus_our_repo(media, example):
    c = load_definition(example)
    assert check_packages(_texts(c), dir_reader(media["tree"]), media["repo"]) == []


def test_without_our_repo_every_one_of_ours_is_named(media):
    c = load_definition(EXAMPLES[0])
    with pytest.raises(IsobuildError) as exc:
        check_packages(_texts(c), dir_reader(media["tree"]), None)
    text = str(exc.value)
    for name in (f"kernel-{c.xen.dom0_kernel}", c.xen.hypervisor_rpm, "xen-hypervisor", "an-cluster-firstboot"):
        assert f"package {name}: our package (rpmspecs/" in text
    assert "[an-node01, an-node02]" in text and "--allow-missing-packages" in str(exc.value.hint)


def test_a_fedora_package_missing_from_the_dvd_and_the_dependency_it_breaks(media):
    c = load_definition(EXAMPLES[0])  # fence_na: perl-Net-Telnet, and fence-na requires perl(Net::Telnet)
    with pytest.raises(IsobuildError) as exc:
        check_packages(_texts(c), dir_reader(media["no-telnet"]), media["repo"])
    text = str(exc.value)
    assert "package perl-Net-Telnet: not on the base DVD: a Fedora 13 package" in text
    assert "dependency perl(Net::Telnet) (required by fence-na-3.1.0-1.an1.fc13" in text
    warnings = check_packages(_texts(c), dir_reader(media["no-telnet"]), media["repo"], allow_missing=True)
    assert len(warnings) == 2


def test_a_group_the_comps_lack(media, tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(EXAMPLES[0].read_text().replace("packages: []", "packages: ['@clustering']")
                    .replace("examples/secrets/", str(REPO / "examples" / "secrets") + "/"))
    c = load_definition(path)
    with pytest.raises(IsobuildError, match=r"group @clustering: not in the base DVD's comps"):
        check_packages(_texts(c), dir_reader(media["tree"]), media["repo"])


def _iso_inputs(c, build, base, repo, **kw):
    r = render(c, build)
    return isomod.IsoInputs(cluster=c.name, kickstarts=dict(r.kickstarts), fqdns={n.name: n.fqdn for n in c.nodes},
                            out_dir=build / "out", base=base, repo_dir=repo, nodes_dir=r.nodes_dir, **kw)


def test_iso_stops_before_writing_then_builds_with_the_flag(media, tmp_path, capfd):
    c = load_definition(EXAMPLES[0])
    build = tmp_path / "build"
    empty = make_repo([], tmp_path / "empty-repo", allow_empty=True)
    inputs = _iso_inputs(c, build, media["iso"], empty)
    before = sorted(p.name for p in build.iterdir())
    with pytest.raises(IsobuildError, match=r"package kernel-2\.6\.32\.23-170\.dom0_an1\.fc13: our package"):
        isomod.build_iso(inputs, build)
    assert sorted(p.name for p in build.iterdir()) == before  # nothing written, not even out/
    res = isomod.build_iso(_iso_inputs(c, build, media["iso"], empty, allow_missing_packages=True), build)
    assert res.iso.is_file()
    assert "warning: the install will stop at a Missing Package dialog: package kernel-" in capfd.readouterr().err


def test_pxe_stops_before_writing(media, tmp_path):
    need_tool("cpio")
    c = load_definition(EXAMPLES[0])
    empty = make_repo([], tmp_path / "empty-repo", allow_empty=True)
    with pytest.raises(IsobuildError, match="package an-cluster-firstboot: our package"):
        build_pxe(c, tmp_path / "b", base=media["tree"], url=URL, repo_dir=empty)
    assert not (tmp_path / "b").exists()
    res = build_pxe(c, tmp_path / "b", base=media["iso"], url=URL, repo_dir=media["repo"])
    assert res.pxe_dir.is_dir()
