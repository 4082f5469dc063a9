"""The code's shape stays easy to change (docs/architecture.md): short functions, no import cycles.

Read from the source with ast, so a new long function or a module importing one above it fails here
instead of being found in a review.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO

MAX_FUNCTION_LINES = 60
SOURCES = sorted((REPO / "isobuild").glob("*.py")) + [REPO / "tasks.py"]


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _imports(path: Path) -> set[str]:
    """The isobuild modules `path` imports, at the top or inside a function (both count for a cycle)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(a.name for a in node.names)
            elif node.module and node.module.startswith("isobuild."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("isobuild."))
    return found


def test_no_function_is_longer_than_the_limit():
    long = [f"{p.relative_to(REPO)}:{f.lineno} {f.name} ({f.end_lineno - f.lineno + 1} lines)"
            for p in SOURCES for f in _functions(p) if f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them into named steps): {long}"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(mod: str, path: list[str]) -> list[str] | None:
        state[mod] = 1
        for dep in sorted(graph.get(mod, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep] if dep in path else [mod, dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[mod] = 2
        return None

    for mod in sorted(graph):
        if mod not in state:
            found = visit(mod, [mod])
            if found:
                return found
    return None


def test_the_isobuild_modules_import_each_other_without_a_cycle():
    graph = {p.stem: _imports(p) - {p.stem} for p in (REPO / "isobuild").glob("*.py") if p.stem != "__init__"}
    assert graph["pipeline"] and graph["loader"], "the import reader found nothing: it is broken"
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


# A module may import one of a layer above it only where docs/architecture.md says why.
LAYER_EXCEPTIONS = {("validate", "installtree")}


def _layers() -> dict[str, int]:
    """Module -> its row in docs/architecture.md's module map (0 = top)."""
    text = (REPO / "docs" / "architecture.md").read_text()
    table = text.split("| layer | modules |", 1)[1].split("\n\n", 1)[0]
    rank = {}
    for row, line in enumerate(table.splitlines()[2:]):
        for name in re.findall(r"`([a-z_0-9*]+)`", line.split("|")[2]):
            rank[name] = row
    return rank


def test_imports_point_down_the_module_map_of_the_architecture_doc():
    rank = _layers()
    modules = [p for p in (REPO / "isobuild").glob("*.py") if p.stem != "__init__"]
    row = {p.stem: rank.get(p.stem, rank.get(p.stem.split("_")[0] + "_*")) for p in modules}
    assert not [m for m, r in row.items() if r is None], "modules missing from docs/architecture.md's module map"
    up = [f"{p.stem} -> {dep}" for p in modules for dep in sorted(_imports(p))
          if dep in row and row[dep] < row[p.stem] and (p.stem, dep) not in LAYER_EXCEPTIONS]
    assert not up, f"imports of a layer above (docs/architecture.md): {up}"
