"""Reading the cluster definition's YAML, and the map from each dotted path to its line.

The loader reports every problem as `file:line: dotted.path: reason`; `Lines` is the one place that
knows where a dotted path sits in the file, so rules written against the model look their line up by
path instead of walking the YAML again.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from .errors import IsobuildError, Problem, ProblemsError


def read_yaml(path: Path) -> Any:
    """The parsed round-trip document (ruamel keeps the line of every key and item)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IsobuildError(f"{path}: cluster definition not found", hint="pass --cluster PATH") from None
    except (OSError, UnicodeDecodeError) as err:
        raise IsobuildError(f"{path}: cannot read the cluster definition: {err}") from None
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        reason = (err.problem or err.context or "YAML syntax error").strip()
        where = f"{path}:{line}:{col}" if line else str(path)
        raise ProblemsError(
            "cluster definition is not valid YAML",
            [Problem(where, None, "", f"YAML syntax error: {reason}", "check indentation and quoting near that line")],
        ) from None
    except RecursionError:
        raise ProblemsError("cluster definition is not valid YAML",
                            [Problem(str(path), None, "", "the document is nested too deeply")]) from None
    except Exception as err:  # ruamel raises a few non-marked errors (duplicate keys in some versions)
        reason = str(err)
        if isinstance(err, ValueError) and "integer string conversion" in reason:
            reason = "a number has more than 4300 digits"  # not Python's advice to raise the limit
        raise ProblemsError("cluster definition is not valid YAML", [Problem(str(path), None, "", reason)]) from None


def key_line(m: Any, key: Any) -> int | None:
    """Line of a mapping's key (ruamel positions are 0-based)."""
    try:
        return m.lc.key(key)[0] + 1
    except Exception:
        return getattr(getattr(m, "lc", None), "line", -1) + 1 or None


def item_line(seq: Any, i: int) -> int | None:
    try:
        return seq.lc.item(i)[0] + 1
    except Exception:
        return getattr(getattr(seq, "lc", None), "line", -1) + 1 or None


def parent_path(path: str) -> str:
    """`nodes[1].ip` -> `nodes[1]`, `nodes[1]` -> `nodes`, `cluster` -> `` (the top level)."""
    if path.endswith("]"):
        return path[:path.rindex("[")]
    return path.rpartition(".")[0]


class Lines:
    """Dotted path -> line, built once from the parsed document.

    `at("nodes[1].ip.sn")` is the line of that key or list item; for a path that is not in the file, the
    first line of the mapping or list that should hold it (where a missing key is reported), or None.
    Each mapping/list is visited once, so an alias bomb costs no more than the document's own size; a
    second use of an aliased mapping or list is recorded as that path's alias of the first, so a path
    inside it gets the line the anchor's text has (where the YAML says it).
    """

    def __init__(self, doc: Any):
        self._item: dict[str, int | None] = {}
        self._start: dict[str, int] = {}
        self._alias: dict[str, str] = {}  # path of a later use of a node -> path of its first use
        first: dict[int, str] = {}
        todo = [("", doc)]
        while todo:
            path, node = todo.pop()
            if not isinstance(node, (dict, list)):
                continue
            if id(node) in first:
                self._alias.setdefault(path, first[id(node)])
                continue
            first[id(node)] = path
            lc = getattr(node, "lc", None)
            if lc is not None:
                self._start.setdefault(path, lc.line + 1)
            if isinstance(node, dict):
                children = [(f"{path}.{k}" if path else str(k), key_line(node, k), v) for k, v in node.items()]
            else:
                children = [(f"{path}[{i}]", item_line(node, i), v) for i, v in enumerate(node)]
            for sub, line, value in children:
                self._item.setdefault(sub, line)
            todo.extend((sub, value) for sub, _, value in reversed(children))

    def at(self, path: str) -> int | None:
        if path in self._item:
            return self._item[path]
        outer = parent_path(path)
        if outer in self._start:
            return self._start[outer]
        return self._through_alias(path)

    def _through_alias(self, path: str) -> int | None:
        """The line of `path` read through the alias it lies in (`vms[1].name` with vms[1] = *vm0: vms[0].name)."""
        outer = path
        while outer:
            outer = parent_path(outer)
            if outer in self._alias:
                return self.at(self._alias[outer] + path[len(outer):])  # a first use holds no alias: one step
        return None
