"""Will anaconda 13 find every package and group the kickstart's %packages names? Checked against the
base DVD's repodata (primary + comps) and our an-cluster repo before a disc or PXE tree is written.

A missing package or group stops an unattended install at an Abort/Ignore/Continue dialog, a missing
dependency at a "missing dependencies" one, so both are errors here, each named with where it should
come from. The matching follows the target's code:

- anaconda-13.42-1 kickstart.py `selectPackages`: each package is `ayum.install(pattern=)`; the
  Core group is always added, Base unless `--nobase`; groups then the `-name` exclusions (an excluded
  name need not exist: `deselectPackage` is silent).
- yum 3.2.27 (F13) `YumBase.install`: the pattern matches any of `packages.buildPkgRefDict`'s names
  (name, name.arch, name-ver, name-ver-rel, name-ver-rel.arch, epoch:name-ver-rel.arch,
  name-epoch:ver-rel.arch), as an fnmatch glob when it has one; failing that, a virtual or file
  provide (`returnPackagesByDep`).
- yum 3.2.27 comps.py `return_groups`: a group id exactly, else a case-insensitive glob over id and
  name. A group pulls its mandatory and default packages (anaconda `selectGroup`); members the repos
  lack are skipped by yum, so they are not an error.
- Dependencies: every `requires` of what gets selected must be provided (name, and version when the
  requirement has one) by a package of the two repos; rpmlib() ones are rpm's own. File requires
  are checked against the files primary.xml lists (/etc, */bin/*); others need filelists and are
  not checked.
"""
from __future__ import annotations

import bz2
import fnmatch
import gzip
import io
import lzma
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from . import paths
from .errors import IsobuildError

COMMON = "{http://linux.duke.edu/metadata/common}"
RPM = "{http://linux.duke.edu/metadata/rpm}"
REPO_NS = "{http://linux.duke.edu/metadata/repo}"
GLOB_RE = re.compile(r"[*?\[\]]")  # yum misc.re_glob
SPECS_DIR = paths.RPMSPECS

Reader = Callable[[str], "bytes | None"]  # path relative to the repo root -> bytes, None if absent


@dataclass(frozen=True)
class Dep:
    name: str
    flags: str | None = None  # EQ, LT, LE, GT, GE
    evr: tuple[str, str, str] = ("0", "", "")

    def __str__(self) -> str:
        if not self.flags:
            return self.name
        op = {"EQ": "=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}[self.flags]
        e, v, r = self.evr
        return f"{self.name} {op} {'' if e in ('0', '') else e + ':'}{v}{'-' + r if r else ''}"


@dataclass
class Pkg:
    name: str
    arch: str
    epoch: str
    version: str
    release: str
    repo: str
    provides: list[Dep] = field(default_factory=list)
    requires: list[Dep] = field(default_factory=list)
    files: set[str] = field(default_factory=set)

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"

    def ref_names(self) -> list[str]:
        n, a, e, v, r = self.name, self.arch, self.epoch, self.version, self.release
        return [n, f"{n}.{a}", f"{n}-{v}-{r}.{a}", f"{n}-{v}", f"{n}-{v}-{r}", f"{e}:{n}-{v}-{r}.{a}",
                f"{n}-{e}:{v}-{r}.{a}"]


@dataclass
class Group:
    groupid: str
    names: list[str]
    packages: dict[str, list[str]]  # type (mandatory, default, optional, conditional) -> names


@dataclass
class Repo:
    label: str
    packages: list[Pkg]
    groups: list[Group]


@dataclass(frozen=True)
class Missing:
    kind: str  # package | group | dependency
    name: str
    needed_by: str = ""
    source: str = ""  # where it should come from

    def __str__(self) -> str:
        what = f"{self.kind} {self.name}" + (f" (required by {self.needed_by})" if self.needed_by else "")
        return f"{what}: {self.source}"


# ---------------------------------------------------------------------------------------------
# Reading repodata
# ---------------------------------------------------------------------------------------------


def _decompress(name: str, data: bytes) -> bytes:
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".bz2"):
        return bz2.decompress(data)
    if name.endswith(".xz"):
        return lzma.decompress(data)
    return data


def dir_reader(root: Path) -> Reader:
    def read(rel: str) -> bytes | None:
        p = Path(root) / rel
        return p.read_bytes() if p.is_file() else None
    return read


def read_repo(read: Reader, label: str) -> Repo:
    """A repo from its repodata/repomd.xml: primary (packages) and, when listed, the comps group file."""
    try:
        return _read_repo(read, label)
    except (ET.ParseError, OSError, EOFError, lzma.LZMAError, ValueError) as err:
        raise IsobuildError(f"{label}: unreadable repodata: {err}",
                            hint="the metadata is damaged: re-run createrepo_c (our repo: `invoke rpms`) or fetch the DVD again"
                            ) from None


def _read_repo(read: Reader, label: str) -> Repo:
    repomd = read("repodata/repomd.xml")
    if repomd is None:
        raise IsobuildError(f"{label} has no repodata/repomd.xml", hint="is it a yum repository / install tree?")
    locations: dict[str, str] = {}
    for data in ET.fromstring(repomd).iter(f"{REPO_NS}data"):
        loc = data.find(f"{REPO_NS}location")
        if loc is not None:
            locations[data.get("type", "")] = loc.get("href", "")
    if "primary" not in locations:
        raise IsobuildError(f"{label}: repodata/repomd.xml lists no primary metadata")
    packages = _read_primary(_fetch(read, locations["primary"], label), label)
    groups: list[Group] = []
    comps = locations.get("group") or locations.get("group_gz")
    if comps:
        groups = _read_comps(_fetch(read, comps, label))
    return Repo(label, packages, groups)


def _fetch(read: Reader, href: str, label: str) -> bytes:
    data = read(href)
    if data is None:
        raise IsobuildError(f"{label}: {href} (listed in repodata/repomd.xml) is missing")
    return _decompress(href, data)


def _deps(fmt: ET.Element | None, tag: str) -> list[Dep]:
    out = []
    el = fmt.find(f"{RPM}{tag}") if fmt is not None else None
    for e in el.iter(f"{RPM}entry") if el is not None else ():
        out.append(Dep(e.get("name", ""), e.get("flags"), (e.get("epoch") or "0", e.get("ver") or "", e.get("rel") or "")))
    return out


def _read_primary(xml: bytes, label: str) -> list[Pkg]:
    pkgs = []
    for _event, p in ET.iterparse(io.BytesIO(xml)):  # element by element: a DVD's primary is ~20 MB
        if p.tag != f"{COMMON}package":
            continue
        ver = p.find(f"{COMMON}version")
        fmt = p.find(f"{COMMON}format")
        pkg = Pkg(p.findtext(f"{COMMON}name", ""), p.findtext(f"{COMMON}arch", ""), ver.get("epoch") or "0",
                  ver.get("ver", ""), ver.get("rel", ""), label, _deps(fmt, "provides"), _deps(fmt, "requires"),
                  {f.text or "" for f in fmt.iter(f"{COMMON}file")} if fmt is not None else set())
        pkgs.append(pkg)
        p.clear()
    return pkgs


def _read_comps(xml: bytes) -> list[Group]:
    groups = []
    for g in ET.fromstring(xml).iter("group"):
        names = [n.text or "" for n in g.findall("name")]
        members: dict[str, list[str]] = {}
        for req in g.iter("packagereq"):
            members.setdefault(req.get("type", "mandatory"), []).append(req.text or "")
        groups.append(Group(g.findtext("id", ""), names, members))
    return groups


# ---------------------------------------------------------------------------------------------
# Matching, as yum 3.2.27 does it
# ---------------------------------------------------------------------------------------------


def rpmvercmp(a: str, b: str) -> int:
    """rpm 4.8's version comparison (lib/rpmvercmp.c): segments of digits or letters, digits compared
    as numbers, letters as strings, a digit segment newer than a letter one, more segments newer."""
    if a == b:
        return 0
    sa, sb = re.findall(r"\d+|[A-Za-z]+", a), re.findall(r"\d+|[A-Za-z]+", b)
    for x, y in zip(sa, sb):
        if x.isdigit() != y.isdigit():
            return 1 if x.isdigit() else -1
        c = ((int(x) > int(y)) - (int(x) < int(y))) if x.isdigit() else ((x > y) - (x < y))
        if c:
            return c
    return (len(sa) > len(sb)) - (len(sa) < len(sb))


def _evr_cmp(x: tuple[str, str, str], y: tuple[str, str, str]) -> int:
    c = rpmvercmp(x[0] or "0", y[0] or "0")
    if c:
        return c
    c = rpmvercmp(x[1], y[1])
    if c or not x[2] or not y[2]:  # a requirement without release matches any release
        return c
    return rpmvercmp(x[2], y[2])


def provides(prov: Dep, req: Dep) -> bool:
    """Does a provide satisfy a requirement? Versions compared for the usual `provide = EVR`; an
    unversioned side, or a ranged provide (rare), is taken as satisfying."""
    if prov.name != req.name:
        return False
    if not req.flags or prov.flags != "EQ":
        return True
    c = _evr_cmp(prov.evr, req.evr)
    return {"EQ": c == 0, "LT": c < 0, "LE": c <= 0, "GT": c > 0, "GE": c >= 0}[req.flags]


class Sack:
    """The packages and groups of all repos anaconda would use together."""

    def __init__(self, repos: Iterable[Repo]):
        self.repos = list(repos)
        self.packages = [p for r in self.repos for p in r.packages]
        self.groups = [g for r in self.repos for g in r.groups]
        self.by_ref: dict[str, list[Pkg]] = {}
        self.by_provide: dict[str, list[tuple[Dep, Pkg]]] = {}  # a DVD has ~2800 packages: index them
        self.by_file: dict[str, list[Pkg]] = {}
        for p in self.packages:
            for ref in p.ref_names():
                self.by_ref.setdefault(ref, []).append(p)
            for d in p.provides:
                self.by_provide.setdefault(d.name, []).append((d, p))
            for f in p.files:
                self.by_file.setdefault(f, []).append(p)

    def match(self, pattern: str) -> list[Pkg]:
        """yum install(pattern=): name forms exactly, a glob over them, else a virtual/file provide."""
        if pattern in self.by_ref:
            return self.by_ref[pattern]
        if GLOB_RE.search(pattern):
            rx = re.compile(fnmatch.translate(pattern))
            found = [p for ref, ps in self.by_ref.items() if rx.match(ref) for p in ps]
            if found:
                return found
        return self.what_provides(Dep(pattern))

    def what_provides(self, req: Dep) -> list[Pkg]:
        found = [p for d, p in self.by_provide.get(req.name, []) if provides(d, req)]
        if req.name.startswith("/"):
            found += self.by_file.get(req.name, [])
        return list({id(p): p for p in found}.values())

    def group(self, name: str) -> Group | None:
        for g in self.groups:
            if g.groupid == name:
                return g
        rx = re.compile(fnmatch.translate(name), re.I)
        return next((g for g in self.groups if any(rx.match(n) for n in [g.groupid, *g.names])), None)

    def file_checkable(self, path: str) -> bool:
        """primary.xml lists only some files (createrepo: /etc/*, */bin/*, /usr/lib/sendmail)."""
        return path.startswith("/etc/") or "/bin/" in path or path == "/usr/lib/sendmail"


# ---------------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------------


@dataclass
class PackageSection:
    packages: list[str]
    groups: list[str]
    excluded: list[str]
    add_base: bool = True
    seen: bool = True  # no %packages: anaconda takes the install class's default groups


def kickstart_packages(text: str) -> PackageSection:
    """%packages as the F13 pykickstart handler parses it (what anaconda 13 reads)."""
    from pykickstart.parser import KickstartParser
    from pykickstart.version import F13, makeVersion

    class Lenient(KickstartParser):
        def _tryFunc(self, fn):  # other commands' errors are the kickstart validator's to report
            try:
                fn()
            except Exception:  # noqa: BLE001 - pykickstart raises many kinds
                self.errorsCount += 1

    handler = makeVersion(F13)
    Lenient(handler, followIncludes=False, errorsAreFatal=False).readKickstartFromString(text)
    p = handler.packages
    return PackageSection(list(p.packageList), [g.name for g in p.groupList], list(p.excludedList),
                          getattr(p, "addBase", True), bool(p.seen))


def our_package_names(specs_dir: Path = SPECS_DIR) -> dict[str, str]:
    """{name or name prefix (for %{macro} names): spec path} of what rpmspecs/ builds."""
    out: dict[str, str] = {}
    for spec in sorted(specs_dir.glob("*/*.spec")):
        text = spec.read_text(errors="replace")
        m = re.search(r"^Name:\s*(\S+)", text, re.M)
        if not m:
            continue
        name = m.group(1)
        rel = spec.relative_to(specs_dir.parent).as_posix()
        out[name] = rel
        for sub in re.findall(r"^%package\s+(-n\s+)?(\S+)", text, re.M):
            out[sub[1] if sub[0] else f"{name}-{sub[1]}"] = rel
    return {k.split("%{", 1)[0]: v for k, v in out.items()}


# Requirements our packages provide under another name.
PROVIDED_BY_OURS = {"kernel-uname-r": "kernel"}


def source_of(name: str, ours: dict[str, str]) -> str:
    name = PROVIDED_BY_OURS.get(name, name)
    base = re.split(r"[-.](?=\d)", name, maxsplit=1)[0] if name not in ours else name
    for key in (name, base):
        if key in ours:
            return f"our package ({ours[key]}): build it with `invoke rpms`"
    for key, spec in ours.items():
        if key.endswith("-") and name.startswith(key):
            return f"our package ({spec}): build it with `invoke rpms` (for this kernel)"
    return ("not on the base DVD: a Fedora 13 package (Everything or updates repo); copy its RPM into "
            "BUILD/rpms and run `invoke rpms`, which indexes it into the an-cluster repo")


def resolve(section: PackageSection, sack: Sack, ours: dict[str, str] | None = None) -> list[Missing]:
    """Everything of `section` anaconda 13 would not find, dependencies included."""
    ours = our_package_names() if ours is None else ours
    missing: list[Missing] = []
    if not section.seen:
        return missing
    selected: dict[str, Pkg] = {}

    def select(pkgs: list[Pkg]) -> None:
        for p in pkgs:
            best = selected.get(p.name)
            if best is None or _evr_cmp((p.epoch, p.version, p.release), (best.epoch, best.version, best.release)) > 0:
                selected[p.name] = p

    for pat in section.packages:
        found = sack.match(pat)
        if not found:
            missing.append(Missing("package", pat, source=source_of(pat, ours)))
        select(found)
    groups = ["Core"] + (["Base"] if section.add_base else []) + section.groups
    for name in dict.fromkeys(groups):
        g = sack.group(name)
        if g is None:
            missing.append(Missing("group", f"@{name}", source="not in the base DVD's comps (repodata group file)"))
            continue
        for member in g.packages.get("mandatory", []) + g.packages.get("default", []):
            select(sack.match(member))
    for name in section.excluded:
        selected.pop(name, None)
    missing += _unmet_dependencies(selected, sack, ours)
    return missing


def _unmet_dependencies(selected: dict[str, Pkg], sack: Sack, ours: dict[str, str]) -> list[Missing]:
    out: list[Missing] = []
    queue = list(selected.values())
    seen = {p.nvr for p in queue}
    while queue:
        pkg = queue.pop(0)
        for req in pkg.requires:
            if req.name.startswith("rpmlib(") or (req.name.startswith("/") and not sack.file_checkable(req.name)):
                continue
            providers = sack.what_provides(req)
            if not providers:
                out.append(Missing("dependency", str(req), f"{pkg.nvr} ({pkg.repo})", source_of(req.name, ours)))
                continue
            if any(p.nvr in seen for p in providers):
                continue
            best = providers[0]
            seen.add(best.nvr)
            queue.append(best)
    return out


def check_packages(kickstarts: dict[str, str], base: Reader, repo_dir: Path | None, *,
                   allow_missing: bool = False, base_label: str = "the base DVD") -> list[str]:
    """Resolve each kickstart's %packages (node -> kickstart text) against the base's repodata plus
    our repo. Raises IsobuildError naming everything missing; with allow_missing returns the same
    lines as warnings instead."""
    repos = [read_repo(base, base_label)]
    if repo_dir is not None:
        repos.append(read_repo(dir_reader(Path(repo_dir)), f"the an-cluster repo {repo_dir}"))
    sack = Sack(repos)
    ours = our_package_names()
    lines: dict[str, list[str]] = {}
    for node, text in sorted(kickstarts.items()):
        for m in resolve(kickstart_packages(text), sack, ours):
            lines.setdefault(str(m), []).append(node)
    problems = [f"{line} [{', '.join(nodes)}]" for line, nodes in lines.items()]
    if problems and not allow_missing:
        raise IsobuildError(
            f"%packages needs {len(problems)} thing(s) that neither {base_label} nor the an-cluster repo has "
            "(anaconda would stop at a Missing Package dialog):\n  " + "\n  ".join(problems),
            hint="provide each as said, or pass --allow-missing-packages to build anyway (the install will stop there)")
    return problems
