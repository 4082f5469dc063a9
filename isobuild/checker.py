"""The checker the loader walks a definition with: it collects every problem, with file, line and path.

`Checker.mapping` checks a mapping against the settings of its kind (model.SPECS): unknown keys (with a
"did you mean"), value types, required keys, then each present value's rule; `Checker.line` finds the
line of any dotted path (yamlsource.Lines). `Seen` keeps what items that did not load said, for the
cross rules (isobuild/crossrules.py).
"""
from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Problem
from .model import SPECS
from .yamlsource import Lines, item_line, key_line


def key_path(path: str, key: Any) -> str:
    """`path.key`; a key that cannot be a path segment (not a string, empty, spaces or brackets in it) is
    reported at its mapping instead, and the reason names it (see _unknown)."""
    if plain_key(key):
        return f"{path}.{key}" if path else key
    return path or "(top level)"


def plain_key(key: Any) -> bool:
    return isinstance(key, str) and re.match(r"^[^\s\[\]]+$", key) is not None


def unknown(what: str, key: Any) -> str:
    return f"unknown {what}" if plain_key(key) else f"unknown {what} {key!r}"


def suggest(word: str, choices, listed: str = "allowed keys") -> str | None:
    """The closest choice, else all of them after `listed` ("networks are", ...)."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else f"{listed}: {', '.join(sorted(choices))}"


@dataclass(frozen=True)
class FenceRef:
    """A nodes[].fence[] entry that names a device, also when its node did not load."""
    path: str
    device: str
    port: str | None  # as cluster.conf gets it; None when absent or of the wrong type
    port_given: bool  # a non-null port is written, even one of the wrong type


@dataclass
class Seen:
    """What the parts of the definition said, also where they did not load (a node without a name still
    uses its fence device and its addresses): the cross rules read this and the model, not the YAML."""
    node_count: int = 0  # items under nodes, loaded or not
    node_names: list[str] = field(default_factory=list)
    node_addresses: list[tuple[str, str, int | None]] = field(default_factory=list)  # (address, path, line)
    node_macs: list[tuple[str, str]] = field(default_factory=list)  # (mac as written, lower case; path)
    fence_refs: list[FenceRef] = field(default_factory=list)
    device_names: list[tuple[str, str]] = field(default_factory=list)  # (path of the item, name)
    device_addresses: list[tuple[str, str, str | None]] = field(default_factory=list)  # (path, ipaddr, address)
    vms: list[tuple[str, "Values"]] = field(default_factory=list)  # (path, checked values) of every VM item
    gfs2_mount: str = ""  # storage.gfs2.mount as written, without a trailing /


class Values(dict):
    """A mapping's well-typed values; `bad` holds the keys whose value broke its rule (reported already)."""

    def __init__(self) -> None:
        super().__init__()
        self.bad: set[str] = set()


class Checker:
    """Walks the YAML tree, collecting Problems with file:line and dotted paths."""

    def __init__(self, file: Path, lines: Lines):
        self.file = file
        self.lines = lines
        self.seen = Seen()
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def line(self, path: str) -> int | None:
        """The line of a dotted path (see yamlsource.Lines.at)."""
        return self.lines.at(path)

    def add(self, path: str, reason: str, line: int | None, hint: str | None = None) -> None:
        self.problems.append(Problem(str(self.file), line, path, reason, hint))

    def at(self, path: str, reason: str, hint: str | None = None) -> None:
        """A problem reported at the line of `path` itself (most are)."""
        self.add(path, reason, self.line(path), hint)

    def warn(self, path: str, reason: str, line: int | None, hint: str | None = None) -> None:
        self.warnings.append(Problem(str(self.file), line, path, reason, hint))

    # Lines of the keys and items of a raw mapping or list being walked (any path: self.line(path)).
    key_line = staticmethod(key_line)
    item_line = staticmethod(item_line)

    def mapping(self, m: Any, path: str, spec_name: str, line: int | None) -> Values | None:
        """Check a mapping's keys, value types and each value's rule (model.SPECS, from the settings on
        the model's fields); return the well-typed values."""
        if not isinstance(m, dict):
            self.add(path or "(top level)", f"must be a mapping, got {typename(m)}", line)
            return None
        spec = SPECS[spec_name]
        out = Values()
        for key in m:
            kpath = key_path(path, key)
            kline = self.key_line(m, key)
            if key not in spec:
                self.add(kpath, unknown("key", key), kline, suggest(str(key), spec))
                continue
            value = m[key]
            if value is None and not spec[key].required:
                continue
            if not _isinstance(value, spec[key].types):
                self.add(kpath, f"must be {spec[key].kind.name}, got {typename(value)}", kline)
                continue
            out[key] = value
        for key, s in spec.items():
            if s.required and key not in m:
                self.add(f"{path}.{key}" if path else key, "required key is missing", line)
        for key, s in spec.items():
            problem = s.rule(out[key]) if s.rule is not None and key in out else None
            if problem:
                self.add(f"{path}.{key}", problem[0], self.key_line(m, key), problem[1])
                out.bad.add(key)
        return out

    def section(self, top: dict, key: str, spec_name: str) -> Values:
        """The checked values of a top-level part (empty when it is absent or not a mapping)."""
        if key not in top:
            return Values()
        return self.mapping(top[key], key, spec_name, self.line(key)) or Values()

    def ipv4(self, value: Any, path: str, line: int | None) -> ipaddress.IPv4Address | None:
        try:
            return ipaddress.IPv4Address(str(value))
        except ValueError:
            self.add(path, f"{value!r} is not an IPv4 address", line)
            return None

    def items(self, seq: list, path: str, spec_name: str):
        """(index, path, raw item, checked values) of each list item that is a mapping (others are reported)."""
        for i, item in enumerate(seq):
            ipath = f"{path}[{i}]"
            m = self.mapping(item, ipath, spec_name, self.item_line(seq, i))
            if m is not None:
                yield i, ipath, item, m



def _isinstance(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False  # YAML `yes` is not an integer here
    return isinstance(value, types)


def typename(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


