"""A non-editable install works: the wheel carries kickstart/, rpmspecs/, overlay/ and schemas/
(isobuild/paths.py finds them), and renders cluster.yaml from outside the checkout exactly as the
checkout does."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from isobuild import paths
from isobuild.loader import load_definition
from isobuild.render import render
from isobuild.stamps import sha256_tree

REPO = Path(__file__).resolve().parents[2]

# Run by the installed copy, from a directory outside the checkout.
SCRIPT = """
import sys
from pathlib import Path
import isobuild
from isobuild import paths
from isobuild.cmanschema import SCHEMAS
from isobuild.loader import load_definition
from isobuild.render import render
from isobuild.rpmplan import MOCK_CONFIG, SPECS_DIR

site, definition, build = map(Path, sys.argv[1:])
assert Path(isobuild.__file__).resolve().is_relative_to(site.resolve()), isobuild.__file__
assert paths.ROOT == site.resolve() / "isobuild" / "_data", paths.ROOT
assert all(p.is_file() for p in SCHEMAS.values()) and MOCK_CONFIG.is_file()
assert (SPECS_DIR / "kernel" / "kernel.spec").is_file()
assert (paths.FIRSTBOOT / "an-cluster-firstboot").stat().st_mode & 0o111
render(load_definition(definition), build)
print("rendered")
"""


def _source_copy(dst: Path) -> Path:
    """What a source distribution holds (building in place would write build/ into the checkout)."""
    for name in ("isobuild", *paths.DATA_DIRS):
        shutil.copytree(REPO / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", dst)
    return dst


def _rendered(build: Path) -> dict[str, str]:
    return {name: sha256_tree(build / name) for name in ("kickstart", "nodes")} | {
        "model.json": (build / "model.json").read_text()}


def test_wheel_install_renders_outside_the_checkout(tmp_path):
    src = _source_copy(tmp_path / "src")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel"), str(src)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = (tmp_path / "wheel").glob("isobuild-*.whl")
    site = tmp_path / "site"
    subprocess.run(pip + ["install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   capture_output=True, timeout=600)
    shutil.rmtree(src)  # nothing may come from the copy it was built from
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(site), str(REPO / "cluster.yaml"),
                           str(tmp_path / "build")], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "rendered", proc.stderr
    render(load_definition(REPO / "cluster.yaml"), tmp_path / "ref")
    assert _rendered(tmp_path / "build") == _rendered(tmp_path / "ref")
