"""Stage glue shared by the tasks: render + validate (both cached) and the repo a disc or PXE tree carries.

Kept here, not in tasks.py, so the tasks stay thin and this logic is testable.
"""
from __future__ import annotations

from pathlib import Path

from . import log
from .model import Cluster
from .render import STAMP, Rendered, render
from .repo import indexed_locations, make_repo
from .stamps import Stamps
from .validate import validate


def prepare(model: Cluster, build: Path) -> Rendered:
    """Render the definition (cached) and validate the result; validation is skipped when this
    exact render already passed it (pure checking, keyed on the render stamp)."""
    rendered = render(model, build)
    stamps, key = Stamps(build), {"render": (build / STAMP).read_text().strip()}
    if not stamps.check("validated", key).up_to_date:
        validate(rendered.build_dir, model)
        stamps.save("validated", key)
    return rendered


def check_node_cman(model: Cluster, build: Path, base: Path | None, repo: Path | None) -> None:
    """Before a disc or PXE tree is written: cluster.conf passes the schema of the cman the nodes will
    really install (validate.check_against_node_cman); say so, or that no cman was at hand."""
    from .validate import check_against_node_cman

    if base is not None and not Path(base).exists():
        return  # the disc/PXE stage reports a missing base with its own hint
    checked = check_against_node_cman(model, build, base, repo)
    if checked:
        log.info(f"cluster.conf: valid for {checked}")
    elif base is not None or repo is not None:
        log.warn("no cman package on the base or in our repo: cluster.conf is checked against the vendored "
                 "schemas only, not the one the nodes will install")


def disc_repo(build: Path) -> Path | None:
    """BUILD/repo (indexed by `invoke rpms`), else an index of BUILD/rpms, else None (an empty repo)."""
    repo = build / "repo"
    if not (repo / "repodata" / "repomd.xml").is_file():
        rpms = build / "rpms"
        if rpms.is_dir() and any(p for p in rpms.glob("*.rpm") if not p.name.endswith(".src.rpm")):
            repo = make_repo([rpms], build / "iso-repo")
        else:
            log.warn("no RPMs in BUILD/repo or BUILD/rpms: the disc gets an empty an-cluster repo and the "
                     "kickstart's an-cluster-firstboot install will fail; run `invoke rpms` first")
            return None
    if not any(Path(loc).name.startswith("an-cluster-firstboot-") for loc in indexed_locations(repo)):
        log.warn(f"{repo} has no an-cluster-firstboot package: the node install will fail; run `invoke rpms`")
    return repo
