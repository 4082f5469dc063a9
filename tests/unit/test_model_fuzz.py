"""Bad definitions from outside must never crash the loader.

For every mapping key and list item of the two bundled definitions, each mutation (delete, null, a wrong
type, an empty value) is written to a file and loaded with load_definition(). The only acceptable outcomes
are a Cluster or an IsobuildError/ProblemsError that names the file, a line where one applies, and a dotted
path -- never another exception, a traceback in the message, or a secret value. Plus whole-file cases
(empty, scalar, list, binary, non-UTF-8, huge numbers, alias bombs, duplicate keys, tabs, deep nesting).

Mutated documents are written as indented JSON (JSON is YAML 1.2, and load_definition parses it with the
same ruamel round-trip loader, lines included): ruamel's pure-Python dumper would triple the run time.
All cases are deterministic; one test per (definition, mutation kind) collects every failure into one message.
"""
from __future__ import annotations

import copy
import functools
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from isobuild.errors import IsobuildError, ProblemsError
from isobuild.model import Cluster
from isobuild.loader import load_definition

REPO = Path(__file__).resolve().parents[2]

# name -> (definition in the repo, where its copy goes under the scratch dir so its relative *_file paths resolve)
BASES = {
    "cluster": ("cluster.yaml", "cluster.yaml"),
    "ipmi": ("examples/ipmi-cluster.yaml", "examples/ipmi-cluster.yaml"),
}

DELETE = object()
# kind -> replacement value (DELETE removes the key / list item)
KINDS = {
    "delete": DELETE,
    "null": None,
    "int": 7,
    "str": "x",
    "list": ["x"],
    "map": {"x": 1},
    "bool": True,
    "empty-str": "",
    "empty-list": [],
    "empty-map": {},
}

# A dotted path: key or key[i] segments joined by dots, or the top level of a non-mapping document.
DOTTED = re.compile(r"^(\(top level\)|[^\s.\[\]]+(\[\d+\])*(\.[^\s.\[\]]+(\[\d+\])*)*)$")
YAML_SYNTAX = "cluster definition is not valid YAML"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(REPO / "examples" / "secrets", d / "examples" / "secrets")
    return d


def _secret_values() -> list[str]:
    """The demo fence passwords and the root hash: none may ever show up in an error message."""
    sdir = REPO / "examples" / "secrets"
    values = [p.read_text().strip() for p in sorted(sdir.glob("*.pw"))]
    values += [p.read_text().strip() for p in sorted(sdir.glob("*.crypt"))]
    assert "demo-fence-password-not-secret" in values and all(values)
    return values


SECRETS = _secret_values()


def _paths(node, prefix=()) -> list[tuple]:
    """Every mapping key and list item, depth first, as a tuple of keys/indexes."""
    out = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        return out
    for k, v in items:
        out.append(prefix + (k,))
        out.extend(_paths(v, prefix + (k,)))
    return out


def _base_data(name: str):
    """A fresh copy of the definition parsed with the round-trip loader, as plain dicts/lists."""
    return copy.deepcopy(_parsed(name))


@functools.lru_cache(maxsize=None)
def _parsed(name: str):
    doc = YAML(typ="rt").load((REPO / BASES[name][0]).read_text())
    return json.loads(json.dumps(doc))


def _mutate(data, path: tuple, value):
    parent = data
    for k in path[:-1]:
        parent = parent[k]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(value)


WRONG_TYPE = {"int", "str", "list", "map", "bool"}


def _skip(kind: str, old, value) -> bool:
    """True when the replacement would not change anything that matters (same type, or the same value)."""
    if value is DELETE:
        return False
    if kind in WRONG_TYPE:
        return type(old) is type(value)
    return type(old) is type(value) and old == value


def _where(path: tuple) -> str:
    text = ""
    for k in path:
        text += f"[{k}]" if isinstance(k, int) else (f".{k}" if text else str(k))
    return text


def check_load(path: Path, *, allow_syntax: bool = False) -> str | None:
    """Load `path`; None when the outcome is acceptable, else a one-line description of what went wrong."""
    return _outcome(path, allow_syntax)[0]


def _outcome(path: Path, allow_syntax: bool = False) -> tuple[str | None, str]:
    """(what went wrong or None, the error message or "" when a Cluster came back)."""
    try:
        result = load_definition(path)
    except IsobuildError as err:
        return _check_error(path, err, allow_syntax), str(err)
    except Exception as err:  # noqa: BLE001 -- any other exception is the bug this test looks for
        frame = traceback.extract_tb(err.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno} {frame.name}"
        return f"{type(err).__name__}: {str(err)[:120]} ({where})", ""
    if not isinstance(result, Cluster):
        return f"returned {type(result).__name__}, not a Cluster", ""
    return None, ""


def _check_error(path: Path, err: IsobuildError, allow_syntax: bool) -> str | None:
    if isinstance(err, ProblemsError):
        text = str(err)
        if "Traceback" in text:
            return f"traceback in the message: {text[:200]!r}"
        if any(s in text for s in SECRETS):
            return "a secret value is in the message"
        if not err.problems:
            return "ProblemsError without problems"
        nlines = max(1, path.read_bytes().count(b"\n") + 1)
        for p in err.problems:
            if not str(p.file).startswith(str(path)):
                return f"problem without the file: {p}"
            if p.line is not None and not (isinstance(p.line, int) and 1 <= p.line <= nlines):
                return f"bad line {p.line!r} (file has {nlines}): {p}"
            if not p.path:
                if allow_syntax and text.startswith(YAML_SYNTAX):
                    continue
                return f"problem without a dotted path: {p}"
            if not DOTTED.match(p.path):
                return f"{p.path!r} is not a dotted path: {p}"
            if not p.reason:
                return f"problem without a reason: {p}"
        return None
    text = str(err)
    if "Traceback" in text or any(s in text for s in SECRETS):
        return f"bad message: {text[:200]!r}"
    if str(path) not in text:
        return f"message does not name the file: {text[:200]!r}"
    return None


def _load_mutation(job: tuple) -> str | None:
    """One case, run in a worker process: write the mutated definition next to its secrets and load it."""
    scratch, base, kind, path = job
    data = _base_data(base)
    _mutate(data, path, KINDS[kind])
    dst = Path(scratch) / BASES[base][1]
    target = dst.with_name(f"{dst.stem}-{os.getpid()}.yaml")  # same dir as the original: relative *_file paths work
    target.write_text(json.dumps(data, indent=1) + "\n")
    problem = check_load(target)
    return f"{kind} {_where(path)}: {problem}" if problem else None


@pytest.fixture(scope="module")
def pool():
    # Each load parses YAML in pure Python (~10 ms); ~2500 cases need every core to stay well under 30 s.
    with ProcessPoolExecutor(max_workers=min(8, os.cpu_count() or 1), mp_context=multiprocessing.get_context("fork")) as ex:
        yield ex


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("base", list(BASES))
def test_every_path_mutated(scratch, pool, base, kind):
    data = _base_data(base)
    (scratch / BASES[base][1]).parent.mkdir(parents=True, exist_ok=True)
    jobs = []
    for path in _paths(data):
        old = data
        for k in path:
            old = old[k]
        if not _skip(kind, old, KINDS[kind]):
            jobs.append((str(scratch), base, kind, path))
    assert len(jobs) > 20, "the walk found too few paths"
    failures = [f for f in pool.map(_load_mutation, jobs, chunksize=8) if f]
    assert not failures, f"{len(failures)} of {len(jobs)} {kind} mutations of {base} failed:\n" + "\n".join(failures[:60])


# --- whole-file cases -----------------------------------------------------------------------------------


def _cluster_text() -> str:
    return (REPO / "cluster.yaml").read_text()


def _replace_line(text: str, key: str, value: str) -> str:
    """Replace the value of the first `key:` line (keeps indentation and everything else)."""
    out, n = re.subn(rf"^(\s*{re.escape(key)}:).*$", rf"\g<1> {value}", text, count=1, flags=re.M)
    assert n == 1, key
    return out


def _alias_bomb() -> str:
    """Billion laughs, kept small (5^4 = 625 leaves), expanded under a key the loader iterates."""
    levels = ["x-l0: &l0 [lol, lol, lol, lol, lol]"]
    levels += [f"x-l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 5)}]" for i in range(1, 4)]
    return "\n".join(levels) + "\n" + _replace_line(_cluster_text(), "packages", "*l3")


WHOLE_FILE = {
    "empty": b"",
    "only-a-comment": b"# nothing here\n",
    "bare-scalar": b"hello\n",
    "bare-int": b"42\n",
    "bare-null": b"~\n",
    "top-level-list": b"- cluster\n- nodes\n",
    "binary-garbage": bytes(range(256)) * 8,
    "non-utf8": "cluster:\n  name: caf\xe9\n".encode("latin-1"),
    "nul-and-control-chars": b"cluster:\n  name: a\x00b\x07\n",
    "utf8-bom": b"\xef\xbb\xbf" + _cluster_text().encode(),
    "huge-int-digits": _replace_line(_cluster_text(), "config_version", "9" * 5000).encode(),
    "huge-int-port": _cluster_text().replace("port: 7789", f"port: {10**40}").encode(),  # storage.drbd.port
    "huge-nodeid": _replace_line(_cluster_text(), "nodeid", str(2**64)).encode(),
    "infinite-float": _replace_line(_cluster_text(), "journals", ".inf").encode(),
    "nan": _replace_line(_cluster_text(), "nodeid", ".nan").encode(),
    "float-version": _replace_line(_cluster_text(), "config_version", "1.5").encode(),
    "date-value": _replace_line(_cluster_text(), "name", "2024-01-01").encode(),
    "custom-tag": _replace_line(_cluster_text(), "name", "!custom an-cluster").encode(),
    "python-tag": _replace_line(_cluster_text(), "name", "!!python/object:os.system {}").encode(),
    "binary-tag": _replace_line(_cluster_text(), "domain", "!!binary aGVsbG8=").encode(),
    "huge-size-digits": _replace_line(_cluster_text(), "dom0_mem", "9" * 5000 + "M").encode(),
    "huge-size-kib": _replace_line(_cluster_text(), "memory", "9" * 400 + "K").encode(),
    "huge-gfs2-size": _replace_line(_cluster_text(), "size", "9" * 400 + "K").encode(),
    "huge-vm-disk": _replace_line(_cluster_text(), "disk", "9" * 5000 + "G").encode(),
    "nul-in-secret-path": _replace_line(_cluster_text(), "password_file", '"examples/secrets/demo\\0batou.pw"').encode(),
    "secret-path-is-a-dir": _replace_line(_cluster_text(), "password_file", "examples/secrets").encode(),
    "secret-path-too-long": _replace_line(_cluster_text(), "password_file", "a" * 5000).encode(),
    "secret-path-empty": _replace_line(_cluster_text(), "password_file", '""').encode(),
    "secrets-swapped": _replace_line(_replace_line(_cluster_text(), "root_password_hash_file",
                                   "examples/secrets/demo-batou.pw"),
                                   "ssh_authorized_keys_file", "examples/secrets/demo-root.crypt").encode(),
    "alias-bomb": _alias_bomb().encode(),
    "recursive-alias-list": _replace_line(_cluster_text(), "disks", "&d [sda, *d]").encode(),
    "recursive-alias-map": b"cluster: &c\n  name: a\n  self: *c\nnodes: &n [*n]\n",
    "yaml-types": (b"cluster: !!omap [{name: a}, {domain: example.com}]\nnodes: !!set {a, b}\n"
                   b"vms: [!!binary aGVsbG8=, 2001-12-14t21:59:43.10-05:00]\n"
                   b"networks: {bcn: {interface: eth0, subnet: 10.0.0.0/8, dns: [!!set {a}, !!binary aGk=]}}\n"
                   b"xen: {bridges: [!!set {a}, [x], {y: 1}], relocation: {hosts_allow: [!!set {a}, ~]}}\n"
                   b"install: {disks: [!!omap [{a: 1}]], packages: [!!binary aGk=, !!set {b}]}\n"),
    "sections-as-sets": (b"cluster: !!set {name}\nnetworks: !!set {bcn}\nstorage: !!set {drbd}\n"
                         b"xen: !!set {relocation}\ninstall: !!set {disks}\ntotem: !!set {a}\n"),
    "recursive-in-reported-values": (b"xen: {bridges: [&b {a: *b}, &c [*c]]}\ninstall: {packages: [*b], disks: [*b]}\n"
                                     b"networks: {bcn: {dns: [*c]}}\nnodes: [{ip: {bcn: *b}, mac: {eth0: *c}}]\n"),
    "merge-key": b"base: &b {name: a}\ncluster:\n  <<: *b\n  domain: example.com\n",
    "undefined-alias": b"cluster: *nope\n",
    "duplicate-top-key": (_cluster_text() + "\ncluster:\n  name: again\n").encode(),
    "duplicate-nested-key": _cluster_text().replace("\ncluster:\n", "\ncluster:\n  name: first\n", 1).encode(),
    "tabs": b"cluster:\n\tname: an-cluster\n",
    "two-documents": (_cluster_text() + "\n---\ncluster: {}\n").encode(),
    "non-string-keys": b"1: a\n~: b\n[x, y]: c\n{a: 1}: d\nfalse: e\n",
    "complex-key-in-section": _cluster_text().replace("\ncluster:\n", "\ncluster:\n  ? [a, b]\n  : c\n", 1).encode(),
    "deep-nesting": b"cluster: " + b"[" * 1000 + b"]" * 1000 + b"\n",
    "deep-block-nesting": "".join(f"{' ' * i}k{i}:\n" for i in range(400)).encode(),
    "unterminated-quote": b'cluster:\n  name: "an-cluster\n',
    "long-line": b"cluster:\n  name: " + b"a" * 200_000 + b"\n",
}


# What some cases must report (proves the case reached the rule it aims at, not an earlier syntax error).
EXPECT = {
    "empty": "(top level): must be a mapping",
    "top-level-list": "(top level): must be a mapping, got a list",
    "non-utf8": "cannot read the cluster definition",
    "binary-garbage": "cannot read the cluster definition",
    "huge-int-digits": "a number has more than 4300 digits",
    "huge-size-digits": "xen.dom0_mem: '9999",
    "huge-size-kib": "vms[0].memory: '9999",
    "huge-vm-disk": "vms[0].disk: '9999",
    "huge-int-port": f"storage.drbd.port: {10**40} is not a port number",
    "alias-bomb": "install.packages[4]: [[",
    "recursive-alias-list": "install.disks",
    "secret-path-empty": "fence_devices[0].password_file: names no password file",
    "secret-path-is-a-dir": "fence_devices[0].password_file: password file examples/secrets is a directory",
    "secret-path-too-long": "fence_devices[0].password_file: password file cannot be read",
    "complex-key-in-section": "cluster: unknown key ('a', 'b')",
    "non-string-keys": "(top level): unknown key 1",
    "deep-nesting": "the document is nested too deeply",
    "duplicate-top-key": "duplicate key",
    "tabs": "YAML syntax error",
    "custom-tag": "cluster.name: must be a string",
    "secrets-swapped": "does not hold a crypt(3) hash",
    "recursive-in-reported-values": "xen.bridges[0]",
}


@pytest.mark.parametrize("case", list(WHOLE_FILE))
def test_whole_file(scratch, case):
    path = scratch / f"whole-{case}.yaml"
    path.write_bytes(WHOLE_FILE[case])
    problem, message = _outcome(path, allow_syntax=True)
    assert problem is None, problem
    assert EXPECT.get(case, "") in message


def test_bases_load(scratch):
    """The unmutated copies load: the mutations above start from valid definitions."""
    for name, (src, dst) in BASES.items():
        target = scratch / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(_base_data(name), indent=1) + "\n")
        assert isinstance(load_definition(target), Cluster), name


@pytest.mark.parametrize("case", ["binary-garbage", "deep-nesting", "recursive-in-reported-values", "alias-bomb"])
def test_cli_check_exits_2_without_traceback(scratch, case):
    """What a user sees for the worst inputs: `invoke check` prints error: ... and exits 2."""
    path = scratch / f"cli-{case}.yaml"
    path.write_bytes(WHOLE_FILE[case])
    proc = subprocess.run([sys.executable, "-m", "invoke", "check", "--cluster", str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ")
    assert str(path) in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert EXPECT[case] in proc.stderr
