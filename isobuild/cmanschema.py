"""The cman cluster.conf schemas a node may run, and what they allow on a <fencedevice>.

A node validates /etc/cluster/cluster.conf with the `cluster.rng` of the cman it runs
(`ccs_config_validate`): the Fedora 13 era cluster-3.0.12 schema, or a later one when our repo carries a
newer cman. What we render must pass every one of them (schemas/README.md has their provenance).

The fence device attributes the schemas accept: `FENCEDEVICEOPTIONS` is a RelaxNG <choice> of <group>s,
each the attribute set of one agent (3.0.12 names the agent in a comment before the group, later
schemas in `rha:fence_agent`) or, unnamed, a set any agent may use. A device's attributes must be one
whole group: its required attributes present, nothing outside it.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from . import paths

SCHEMA_DIR = paths.SCHEMAS
# label -> file: every schema a rendered cluster.conf must pass
SCHEMAS = {
    "cluster 3.0.12": SCHEMA_DIR / "cluster-3.0.12.rng",
    "cluster 2010-09-10": SCHEMA_DIR / "cluster.rng",
}
RNG_NS = "http://relaxng.org/ns/structure/1.0"
RHA_NS = "http://redhat.com/~pkennedy/annotation_namespace/cluster_conf_annot_namespace"
_AGENT_COMMENT = re.compile(r"^\s*(fence_[a-z0-9_]+)\b")


@dataclass(frozen=True)
class FenceGroup:
    agent: str | None  # None: a group any agent may use
    required: frozenset[str]
    optional: frozenset[str]

    def accepts(self, attrs: set[str]) -> bool:
        return self.required <= attrs <= self.required | self.optional


@functools.lru_cache(maxsize=None)
def fence_groups(schema: Path) -> tuple[FenceGroup, ...]:
    from lxml import etree

    tree = etree.parse(str(schema))
    (define,) = tree.getroot().findall(f"{{{RNG_NS}}}define[@name='FENCEDEVICEOPTIONS']")
    choice = define.find(f"{{{RNG_NS}}}optional/{{{RNG_NS}}}choice")
    groups, comment_agent = [], None
    for el in choice:
        if isinstance(el, etree._Comment):
            m = _AGENT_COMMENT.match(el.text or "")
            comment_agent = m.group(1) if m else None
            continue
        if el.tag != f"{{{RNG_NS}}}group":
            continue
        agent = el.get(f"{{{RHA_NS}}}fence_agent") or comment_agent
        comment_agent = None
        required, optional = set(), set()
        for attr in el.iter(f"{{{RNG_NS}}}attribute"):
            (optional if _optional_within(attr, el) else required).add(attr.get("name"))
        groups.append(FenceGroup(agent, frozenset(required), frozenset(optional - required)))
    return tuple(groups)


def _optional_within(attr, group) -> bool:
    for a in attr.iterancestors():
        if a is group:
            return False
        if a.tag == f"{{{RNG_NS}}}optional":
            return True
    return False


def _candidates(schema: Path, agent: str) -> list[FenceGroup]:
    """The agent's own groups where the schema names it, else the groups any agent may use (stricter
    than the schema, which lets any device match any group, never looser)."""
    groups = fence_groups(schema)
    own = [g for g in groups if g.agent == agent]
    return own or [g for g in groups if g.agent is None]


def _allowed(schema: Path, agent: str, fixed: set[str]) -> set[str]:
    return set().union(*(g.required | g.optional for g in _candidates(schema, agent)
                         if fixed <= g.required | g.optional)) - fixed


def fence_device_problem(agent: str, fixed: set[str], options: set[str]) -> tuple[str, list[str]] | None:
    """None when every schema accepts a <fencedevice agent=AGENT> with the FIXED attributes we always
    render (ipaddr, login, passwd) plus OPTIONS; else (the schema that refuses it, the options it allows)."""
    for label, schema in SCHEMAS.items():
        if not any(g.accepts(fixed | options) for g in _candidates(schema, agent)):
            return label, sorted(_allowed(schema, agent, fixed))
    return None


def fence_options_allowed(agent: str, fixed: set[str]) -> list[str]:
    """Options a device with the FIXED attributes may add, in every schema."""
    return sorted(set.intersection(*(_allowed(s, agent, fixed) for s in SCHEMAS.values())))


# ---------------------------------------------------------------------------------------------
# The schema of the cman the node will really install (base DVD + our repo)
# ---------------------------------------------------------------------------------------------

REPO_NS = "{http://linux.duke.edu/metadata/repo}"
COMMON_NS = "{http://linux.duke.edu/metadata/common}"
CMAN_RNG = "/usr/share/cluster/cluster.rng"  # cluster 3.0.12 config/tools/xml/Makefile installs it there


@dataclass(frozen=True)
class RepoPackage:
    name: str
    epoch: int
    version: str
    release: str
    href: str
    origin: str  # "the base DVD" / "our repo"

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"


def rpmvercmp(a: str, b: str) -> int:
    """rpm 4.8's rpmvercmp (lib/rpmvercmp.c): alphanumeric segments, a number beats letters, numbers
    compare as integers, the version with segments left over is newer (4.8 knows no `~`)."""
    sa, sb = re.findall(r"[0-9]+|[A-Za-z]+", a), re.findall(r"[0-9]+|[A-Za-z]+", b)
    for x, y in zip(sa, sb):
        if x.isdigit() != y.isdigit():
            return 1 if x.isdigit() else -1
        kx, ky = (int(x), int(y)) if x.isdigit() else (x, y)
        if kx != ky:
            return 1 if kx > ky else -1
    return (len(sa) > len(sb)) - (len(sa) < len(sb))


def _evr_key(p: RepoPackage):
    return functools.cmp_to_key(lambda a, b: (a.epoch > b.epoch) - (a.epoch < b.epoch)
                                or rpmvercmp(a.version, b.version) or rpmvercmp(a.release, b.release))(p)


def repo_packages(read, name: str, origin: str) -> list[RepoPackage]:
    """Packages called NAME in a yum repo, from repodata/repomd.xml -> primary.xml(.gz); READ(rel)
    returns a file of the tree or None."""
    import gzip

    from lxml import etree

    repomd = read("repodata/repomd.xml")
    if repomd is None:
        return []
    href = next((d.find(f"{REPO_NS}location").get("href") for d in etree.fromstring(repomd).iter(f"{REPO_NS}data")
                 if d.get("type") == "primary"), None)
    data = read(href) if href else None
    if data is None:
        return []
    primary = etree.fromstring(gzip.decompress(data) if href.endswith(".gz") else data)
    out = []
    for pkg in primary.iter(f"{COMMON_NS}package"):
        if pkg.findtext(f"{COMMON_NS}name") != name:
            continue
        v = pkg.find(f"{COMMON_NS}version")
        out.append(RepoPackage(name, int(v.get("epoch") or 0), v.get("ver"), v.get("rel"),
                               pkg.find(f"{COMMON_NS}location").get("href"), origin))
    return out


def rpm_file(rpm: bytes, path: str, work: Path) -> bytes | None:
    """One file of an RPM's payload (rpm2cpio | cpio), None when the package does not carry it."""
    from .run import require, run

    pkg = work / "pkg.rpm"
    pkg.write_bytes(rpm)
    cpio = run([require("rpm2cpio", "rpm2cpio"), pkg], input=b"").stdout
    out = run([require("cpio", "cpio"), "-i", "--quiet", "--to-stdout", "." + path], input=cpio, check=False)
    return out.stdout or None
