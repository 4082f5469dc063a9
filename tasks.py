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


# --- definition ------------------------------------------------------------------------------


def _load(c, cluster):
    """Load and check the definition; warn once when it uses the published demo secrets."""
    from isobuild.model import load_definition

    model = load_definition(_cfg(c, "cluster", cluster))
    if model.demo_secrets:
        log.warn("using DEMO secrets from examples/secrets/ (published in git): never install a real cluster with them")
    return model


@task(help={"cluster": COMMON_HELP["cluster"]})
@clean_errors
def check(c, cluster=None):
    """Check the cluster definition against every rule; print a summary, write nothing."""
    model = _load(c, cluster)
    nodes = ", ".join(f"{n.fqdn} (nodeid {n.nodeid})" for n in model.nodes)
    print(f"{model.source}: cluster {model.name} is valid: {nodes}; {len(model.vms)} VM(s)")
