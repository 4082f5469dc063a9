"""Shared setup for the PXE and serve tests: the synthetic F13 base (tree + ISO) and a small yum repo,
built once per test session with real tools (genisoimage, rpmbuild, createrepo_c)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "fixtures"))

import f13base  # noqa: E402

from isobuild.repo import make_repo  # noqa: E402

IPMI = REPO / "examples" / "ipmi-cluster.yaml"
DEFAULT = REPO / "cluster.yaml"


def make_base(root: Path) -> dict[str, Path]:
    """{'tree': DIR, 'iso': FILE, 'repo': DIR} under root (built once, reused when present)."""
    from conftest import need_tool

    need_tool("genisoimage", "implantisomd5", "rpmbuild", "createrepo_c", "cpio", "busybox")
    out = {"tree": root / "tree", "iso": root / "Fedora-13-x86_64-DVD.iso", "repo": root / "repo"}
    if not out["iso"].exists():
        f13base.make_tree(out["tree"])
        f13base.master(out["tree"], out["iso"])
        # the an-cluster repo: stand-ins for our packages (kernel, xen, drbd-km, ...) as `invoke rpms` makes
        f13base.build_rpms(root / "ours", f13base.our_packages())
        make_repo([root / "ours"], out["repo"])
    return out


def copy_definition(src: Path, dest_dir: Path) -> Path:
    """A definition plus the secrets it names, copied so a test may edit it."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dst = dest_dir / src.name
    shutil.copy(src, dst)
    shutil.copytree(REPO / "examples" / "secrets", dest_dir / "secrets", dirs_exist_ok=True)
    shutil.copytree(REPO / "examples" / "secrets", dest_dir / "examples" / "secrets", dirs_exist_ok=True)
    return dst



def build_pxe(cluster, build: Path, *, force: bool = False, **inputs):
    """What `invoke pxe` does (pipeline.build_pxe) minus the cman check: check the inputs (nothing
    written yet), render `cluster` into `build`, then write build/pxe from both."""
    from isobuild import pxe
    from isobuild.render import render

    checked = pxe.check_inputs(cluster, **inputs)
    return pxe.build_pxe(cluster, render(cluster, build), checked, force=force)
