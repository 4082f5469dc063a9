"""Where the pipeline's data directories are: the only module that knows.

kickstart/ (templates), rpmspecs/, overlay/ (firstboot) and schemas/ sit at the top of the checkout.
An installed copy (a wheel, `pip install .`) carries the same directories as package data under
isobuild/_data/ (pyproject.toml maps them there), so a non-editable install works too.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
DATA_DIRS = ("kickstart", "rpmspecs", "overlay", "schemas")


def _root() -> Path:
    """The checkout when this package runs from one (editable install, tests), else the installed data."""
    checkout = PACKAGE.parent
    if all((checkout / d).is_dir() for d in DATA_DIRS):
        return checkout
    return PACKAGE / "_data"


ROOT = _root()
KICKSTART = ROOT / "kickstart"
RPMSPECS = ROOT / "rpmspecs"
OVERLAY = ROOT / "overlay"
FIRSTBOOT = OVERLAY / "firstboot"
SCHEMAS = ROOT / "schemas"
DOCS = ROOT / "docs"  # only in a checkout: `invoke definition-doc` rewrites docs/definition.md there
