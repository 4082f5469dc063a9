"""The one render-if-needed entry: pipeline.Run.render() is the only code in isobuild/ that calls
render.render(); pxe and release take the Rendered from their caller instead of rendering again."""
from __future__ import annotations

import ast
from pathlib import Path

from isobuild import paths

REPO = Path(__file__).resolve().parents[2]


def _render_calls(path) -> list[int]:
    """Lines in `path` that import render.render (or the render module) or call it."""
    tree = ast.parse(path.read_text(), str(path))
    names, modules, lines = set(), set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "render":
            for a in node.names:
                if a.name == "render":
                    names.add(a.asname or a.name)
                    lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module in (None, "isobuild"):
            modules |= {a.asname or a.name for a in node.names if a.name == "render"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "isobuild.render"}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in names:
            lines.append(node.lineno)
        elif isinstance(f, ast.Attribute) and f.attr == "render" and ast.unparse(f.value) in modules:
            lines.append(node.lineno)
    return lines


def test_only_the_pipeline_calls_render():
    found = {p.name: _render_calls(p) for p in sorted(paths.PACKAGE.glob("*.py"))}
    assert found["pipeline.py"], "the check no longer sees pipeline's call: it would find nothing anywhere"
    others = {name: lines for name, lines in found.items() if lines and name not in ("pipeline.py", "render.py")}
    assert others == {}, f"render.render is called outside pipeline.Run.render(): {others}"


def test_the_check_sees_each_way_of_calling_render(tmp_path):
    """The checker itself: each spelling of a call to render.render is found, other renders are not."""
    cases = {
        "from .render import render\nrender(c, b)\n": [1, 2],
        "from .render import render as r\nr(c, b)\n": [1, 2],
        "from . import render\nrender.render(c, b)\n": [2],
        "import isobuild.render\nisobuild.render.render(c, b)\n": [2],
        "from .render import render_kickstart\nrender_kickstart(c, n)\n": [],
        "def render():\n    pass\nrender()\ntemplate.render(x=1)\n": [],
    }
    for i, (source, want) in enumerate(cases.items()):
        p = tmp_path / f"m{i}.py"
        p.write_text(source)
        assert _render_calls(p) == want, source


def test_one_run_hashes_the_render_inputs_once(tmp_path, monkeypatch):
    """`invoke all`: validate, iso, usb, pxe and release each take the run's render; its inputs are
    hashed by the first stage only, and pxe and release use that digest."""
    from isobuild import pipeline
    from isobuild import render as render_module

    calls = []
    real = render_module.inputs_digest
    monkeypatch.setattr(render_module, "inputs_digest", lambda *a, **k: calls.append(a) or real(*a, **k))
    run = pipeline.Run(REPO / "cluster.yaml", tmp_path / "build")
    first = run.render()
    later = [run.render() for _ in range(4)]
    assert len(calls) == 1
    assert not first.up_to_date and first.digest == real(run.model)
    assert all(r.up_to_date and r.digest == first.digest and r.kickstarts == first.kickstarts for r in later)


def test_a_later_stage_of_the_run_sees_a_new_render(tmp_path):
    """Forced, or another definition rendered into the same build dir since: the run renders again."""
    from isobuild import pipeline
    from isobuild.loader import load_definition
    from isobuild.render import render

    build = tmp_path / "build"
    run = pipeline.Run(REPO / "cluster.yaml", build)
    ours = run.render()
    assert not run.render(force=True).up_to_date
    other = render(load_definition(REPO / "examples" / "ipmi-cluster.yaml"), build)
    assert other.digest != ours.digest
    again = run.render()
    assert not again.up_to_date and again.digest == ours.digest
    assert again.kickstarts == ours.kickstarts and all(p.is_file() for p in ours.kickstarts.values())
    assert run.render().up_to_date
