"""How each key of the cluster definition is described: one `Setting` next to the model field it fills.

A field of a model dataclass that a definition key sets is declared with `setting(...)`: its YAML type,
whether it is required, the rule its value must pass (isobuild/values.py), its default (written only
here: the loader and docs/definition.md read it from here) and one line of help. `settings_of()` gives
the key table the loader checks a mapping against (model.SPECS); isobuild/definition_doc.py writes
the reference from the same tables.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Kind:
    """A YAML type a key takes: the Python types ruamel gives for it, and its name in messages."""
    types: tuple[type, ...]
    name: str


STR = Kind((str,), "a string")
INT = Kind((int,), "an integer")
BOOL = Kind((bool,), "true or false")
MAP = Kind((dict,), "a mapping")
LIST = Kind((list,), "a list")
SCALAR = Kind((str, int), "a string or number")
STR_OR_LIST = Kind((str, list), "a string or a list")

class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()  # a required key, or an optional one whose absence the loader handles itself


@dataclass(frozen=True)
class Setting:
    kind: Kind
    help: str
    required: bool = False
    default: Any = NO_DEFAULT  # what an optional key means when it is left out (NO_DEFAULT: nothing)
    section: str = ""  # for a dataclass whose keys sit in two places (Cluster: top level and `cluster:`)
    rule: Callable[[Any], tuple[str, str | None] | None] | None = None  # the value's own check (isobuild/values.py)

    @property
    def types(self) -> tuple[type, ...]:
        return self.kind.types


def setting(kind: Kind, help: str, *, required: bool = False, default: Any = NO_DEFAULT, section: str = "",
            rule: Callable[[Any], tuple[str, str | None] | None] | None = None, **field_kw: Any) -> Any:
    """A dataclass field set by a definition key; its default is the key's default."""
    meta = Setting(kind, help, required, default, section, rule)
    if default is not NO_DEFAULT:
        field_kw.setdefault("default", default)
    return dataclasses.field(metadata={"setting": meta}, **field_kw)


def settings_of(cls: type, section: str = "") -> dict[str, Setting]:
    """The definition keys of a model dataclass (in field order), those of one section of it."""
    out = {}
    for f in dataclasses.fields(cls):
        s = f.metadata.get("setting")
        if s is not None and s.section == section:
            out[f.name] = s
    return out


def all_settings(cls: type) -> dict[str, Setting]:
    """Every definition key of a model dataclass, whatever its section."""
    return {f.name: f.metadata["setting"] for f in dataclasses.fields(cls) if "setting" in f.metadata}


def default(cls: type, key: str) -> Any:
    return all_settings(cls)[key].default


def given_or_default(values: dict[str, Any], cls: type, key: str) -> Any:
    """The key's checked value, or the default the model declares for it."""
    return values[key] if key in values else default(cls, key)


def fill(cls: type, values: dict[str, Any], **computed: Any) -> Any:
    """An instance of a model dataclass: each setting's checked value or its default, then `computed`
    (derived fields, and values the loader turned into their model type)."""
    kw = {}
    for name, s in all_settings(cls).items():
        if name in values:
            kw[name] = values[name]
        elif s.default is not NO_DEFAULT:
            kw[name] = s.default
    kw.update(computed)
    return cls(**kw)
