"""One code-digest rule for every stage: a stage's module plus every isobuild module it imports, at
any depth, found by reading the imports (no hand-kept list to go stale)."""
from __future__ import annotations

import shutil

import pytest

from isobuild import paths, stamps


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the isobuild package that code_digest reads instead of the real one."""
    copy = tmp_path / "isobuild"
    shutil.copytree(paths.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "templates"))
    monkeypatch.setattr(stamps, "CODE_DIR", copy)
    return copy


def test_a_stage_covers_what_it_imports_at_any_depth():
    pxe = stamps.code_modules("isobuild.pxe")
    # pxe's menus come from isolinux.py; the kickstarts from render.py, which reads model.py
    assert {"pxe", "isolinux", "render", "model", "initorder", "validate"} <= set(pxe)
    assert "pxe" not in stamps.code_modules("isobuild.render")
    assert stamps.code_modules("isobuild.usb") == sorted(set(stamps.code_modules("isobuild.usb")))


def test_editing_an_imported_module_changes_the_digest_of_its_importers(package_copy):
    before = {m: stamps.code_digest(m) for m in ("isobuild.pxe", "isobuild.iso", "isobuild.render")}
    with open(package_copy / "isolinux.py", "a") as fh:
        fh.write("# an edit\n")
    after = {m: stamps.code_digest(m) for m in before}
    assert after["isobuild.pxe"] != before["isobuild.pxe"]
    assert after["isobuild.iso"] != before["isobuild.iso"]
    assert after["isobuild.render"] == before["isobuild.render"]  # render does not import isolinux


def test_every_import_form_is_followed(tmp_path, monkeypatch):
    pkg = tmp_path / "isobuild"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "stage.py": "import os\nimport isobuild.a\nfrom isobuild import b\nfrom .c import name\n"
                    "def f():\n    from . import sub\n",
        "a.py": "", "b.py": "", "c.py": "from .sub import deep\n", "unused.py": "",
        "sub/__init__.py": "", "sub/deep.py": "from ..b import x\nfrom . import leaf\n", "sub/leaf.py": "",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    monkeypatch.setattr(stamps, "CODE_DIR", pkg)
    assert stamps.code_modules("isobuild.stage") == ["a", "b", "c", "stage", "sub", "sub.deep", "sub.leaf"]
