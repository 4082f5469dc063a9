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

REPO = Path(__file__).resolve().parent.parent
SCHEMA_DIR = REPO / "schemas"
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
