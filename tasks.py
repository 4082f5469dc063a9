"""invoke tasks: thin wrappers that parse flags, call isobuild.*, and turn IsobuildError into a clean exit.

Defaults come from invoke.yaml (section `isobuild`). Every task takes --cluster and --build-dir.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

from invoke import Exit, task

from isobuild import log
from isobuild.errors import IsobuildError


def _cfg(c, key, value):
    """Flag value if given, else invoke.yaml's isobuild.<key>."""
    if value not in (None, ""):
        return value
    return c.config.get("isobuild", {}).get(key)


def clean_errors(fn):
    """Print IsobuildError text (what, where, hint) and exit 2, with no traceback."""

    @functools.wraps(fn)
    def wrapper(c, *args, **kwargs):
        try:
            return fn(c, *args, **kwargs)
        except IsobuildError as err:
            print(f"error: {err}", file=sys.stderr)
            raise Exit(code=2) from None

    return wrapper


COMMON_HELP = {
    "cluster": "cluster definition YAML (default: invoke.yaml isobuild.cluster = cluster.yaml)",
    "build_dir": "output directory (default: build)",
    "quiet": "only warnings and errors",
}
