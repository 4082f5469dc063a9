"""A spec's %files held against what the upstream install rules lay down.

rpmspecs/<pkg>/install.manifest lists, one entry a line, what `make install` of the upstream tree
creates (read from its Makefiles, each entry with the file:line it comes from) plus what our
%install adds (`+`) or removes (`-`). rpmbuild's check-files fails on a file installed but not
in %files, and on a %files entry nothing installed; both directions are checked here from the
spec alone (`rpmspec -P`), so that class of build failure shows without building.

Entry paths: `dir/` a directory, `dir/**` a tree of files one rule installs, `*` globs.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import Problem, ProblemsError

MANIFEST_NAME = "install.manifest"
MAN_DIR = "/usr/share/man/"  # brp-compress gzips every man page
_SECTIONS = re.compile(r"^%(package|description|prep|build|install|check|clean|pre|post|preun|postun|"
                       r"pretrans|posttrans|trigger\w*|files|changelog|verifyscript)\b")
_DIRECTIVE = re.compile(r"^%(config|attr|verify|defattr|lang|caps)(\([^)]*\))?\s*")


@dataclass(frozen=True)
class Entry:
    path: str  # without a trailing / or /**
    op: str  # "" installed upstream, "+" added by %install, "-" removed by %install
    kind: str  # file | dir | tree
    origin: str
    line: int

    @property
    def shown(self) -> str:
        return self.path + {"dir": "/", "tree": "/**", "file": ""}[self.kind]


@dataclass(frozen=True)
class FilesEntry:
    path: str
    dir: bool = False  # %dir
    ghost: bool = False  # %ghost


def parse_manifest(path: Path, subst: dict[str, str] | None = None) -> list[Entry]:
    """Entries of one install.manifest; {name} placeholders are replaced from subst."""
    entries, problems = [], []
    for n, raw in enumerate(Path(path).read_text().splitlines(), 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.split(None, 1)
        if len(fields) < 2:
            problems.append(Problem(str(path), n, "", f"{fields[0]}: no origin", "write `<path> <file:line it comes from>`"))
            continue
        p, origin = fields
        op = p[0] if p[0] in "+-" else ""
        p = p[len(op):].format(**(subst or {}))
        kind = "tree" if p.endswith("/**") else "dir" if p.endswith("/") else "file"
        p = p[:-3] if kind == "tree" else p.rstrip("/")
        if not p.startswith("/"):
            problems.append(Problem(str(path), n, "", f"{p}: not an absolute path"))
            continue
        if kind == "file" and p.startswith(MAN_DIR):
            p += ".gz"
        entries.append(Entry(p, op, kind, origin, n))
    if problems:
        raise ProblemsError(f"install manifest {path}", problems)
    return entries


def spec_sections(parsed: str, name: str) -> list[str]:
    """The bodies of every `%name` section of an `rpmspec -P` text."""
    out, cur = [], None
    for line in parsed.splitlines():
        m = _SECTIONS.match(line)
        if m:
            cur = [] if m.group(1) == name else None
            if cur is not None:
                out.append(cur)
            continue
        if cur is not None:
            cur.append(line)
    return ["\n".join(body) for body in out]


def spec_files(parsed: str) -> list[FilesEntry]:
    """Every absolute path of every %files section; %doc/%license paths relative to the build dir are not."""
    entries = []
    for body in spec_sections(parsed, "files"):
        for line in body.splitlines():
            text, flags = line.strip(), set()
            while True:
                m = re.match(r"^%(dir|ghost|doc|license)\s+", text) or _DIRECTIVE.match(text)
                if not m:
                    break
                flags.add(m.group(1))
                text = text[m.end():]
            if not text.startswith("/") or "defattr" in flags:
                continue
            entries.append(FilesEntry(text.rstrip("/"), dir="dir" in flags, ghost="ghost" in flags))
    return entries


def _under(path: str, parent: str) -> bool:
    return path.startswith(parent.rstrip("/") + "/")


def _covers(pattern: str, e: Entry) -> bool:
    """Does a %files pattern (not %dir) package entry e?"""
    if e.kind == "tree":
        return pattern == e.path or _under(e.path, pattern) or fnmatch.fnmatchcase(e.path + "/x", pattern)
    return fnmatch.fnmatchcase(e.path, pattern) or _under(e.path, pattern)


def installed_entries(entries: list[Entry]) -> list[Entry]:
    removed = [e for e in entries if e.op == "-"]

    def gone(e: Entry) -> bool:
        return any(r.path == e.path or (r.kind == "tree" and _under(e.path, r.path)) for r in removed)

    return [e for e in entries if e.op == "" and not gone(e)] + [e for e in entries if e.op == "+"]


def check_files(files: list[FilesEntry], entries: list[Entry]) -> list[str]:
    """Both directions: every %files entry is installed; every installed file is in %files."""
    final = installed_entries(entries)
    problems = []
    for f in files:
        if f.dir or f.ghost:
            ok = any(e.path == f.path or _under(e.path, f.path) for e in final)
        else:
            ok = any(e.path == f.path if e.kind == "dir" else _covers(f.path, e) or (e.kind == "tree" and _under(f.path, e.path))
                     for e in final)
        if not ok:
            what = "%dir " if f.dir else "%ghost " if f.ghost else ""
            problems.append(f"%files lists {what}{f.path}, which the install does not create")
    owners = [f.path for f in files if not f.dir]  # a %ghost file is owned too
    for e in final:
        if e.kind != "dir" and not any(_covers(p, e) for p in owners):
            problems.append(f"{e.shown} ({e.origin}) is installed but in no %files")
    return problems


def check_install_section(parsed: str, entries: list[Entry], shell_vars: dict[str, str] | None = None) -> list[str]:
    """Every `-` entry is removed or moved by %install (its path, a parent or a glob is named
    there) and every `+` entry is made by it (the same, or a path below it)."""
    words = set()
    for body in spec_sections(parsed, "install"):
        for name, value in (shell_vars or {}).items():
            body = body.replace(f"${name}", value)
        for w in re.split(r"[\s;'\"]+", body):
            w = re.sub(r"/+", "/", re.sub(r"^.*/BUILDROOT/[^/]+", "", w)).rstrip("/")
            if w.startswith("/"):
                words.add(w)
    problems = []
    for e in entries:
        if not e.op:
            continue
        # a parent counts only when it is specific (/usr/share/doc/xen, not /etc)
        named = any(w == e.path or fnmatch.fnmatchcase(e.path, w) or (_under(e.path, w) and w.count("/") >= 3)
                    for w in words)
        made = e.op == "+" and any(_under(w, e.path) for w in words)
        if not (named or made):
            problems.append(f"{e.op}{e.shown} (install.manifest:{e.line}) is not touched by %install")
    return problems
