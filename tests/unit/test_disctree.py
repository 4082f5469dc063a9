"""disctree.stage_tree: what goes on the disc from the repo, the node files and the overlay."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from isobuild.disctree import stage_tree
from isobuild.errors import IsobuildError


@dataclass
class Inputs:
    kickstarts: dict = field(default_factory=dict)
    nodes_dir: Path | None = None
    overlay_dir: Path | None = None


def _overlay(tmp_path: Path) -> Path:
    overlay = tmp_path / "overlay"
    (overlay / "firstboot" / "steps").mkdir(parents=True)
    (overlay / "firstboot" / "steps" / "10-network.sh").write_text("#!/bin/sh\n")
    (tmp_path / "repo").mkdir()
    return overlay


def test_overlay_is_copied(tmp_path):
    overlay = _overlay(tmp_path)
    stage_tree(Inputs(overlay_dir=overlay), tmp_path / "stage", tmp_path / "repo")
    assert (tmp_path / "stage" / "firstboot" / "steps" / "10-network.sh").read_text() == "#!/bin/sh\n"


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_a_symlink_in_the_overlay_is_refused_by_name(tmp_path, kind):
    overlay = _overlay(tmp_path)
    target = overlay / "firstboot" / ("steps" if kind == "directory" else "steps/10-network.sh")
    link = overlay / "firstboot" / "linked"
    os.symlink(target, link)
    with pytest.raises(IsobuildError, match="symlinks are not supported on the disc") as err:
        stage_tree(Inputs(overlay_dir=overlay), tmp_path / "stage", tmp_path / "repo")
    assert str(link) in str(err.value)
