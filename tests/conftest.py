"""Shared test helpers.

Real tools only. A missing tool skips a test on a developer's laptop; in CI (CI=true) it fails,
because .ci/run installs every tool and a silent skip would hide a broken install step.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from isobuild.run import which  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_tool(*tools: str) -> dict[str, str]:
    """Paths of the named tools; skip (laptop) or fail (CI) when one is missing."""
    found = {}
    for tool in tools:
        path = which(tool)
        if path is None:
            msg = f"tool not installed: {tool} (scripts/setup.sh installs it)"
            if IN_CI:
                pytest.fail(msg)
            pytest.skip(msg)
        found[tool] = path
    return found


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        msg = f"needs root for {what}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def copy_example(tmp_path):
    """Copy a definition plus its secrets dir into tmp_path so a test can edit it freely."""

    def _copy(name: str = "cluster.yaml") -> Path:
        src = REPO / name
        dst = tmp_path / "def" / Path(name).name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
        shutil.copytree(REPO / "examples" / "secrets", dst.parent / "examples" / "secrets")
        return dst

    return _copy
