"""`invoke release` / `invoke verify-release`: a release directory others can check.

build/release/<cluster>-<version>/
    iso/<name>.iso                the install DVD (or add-on disc) from build/out/
    rpms/*.rpm, srpms/*.src.rpm   from build/rpms and build/srpms
    kickstarts/<node>.ks          DVD kickstarts; every secret (model.Cluster.secrets) redacted unless --include-secrets
    manifest.json                 every artifact (path, sha256, size), input digests, tool versions, git state
    SHA256SUMS                    `sha256sum -c` format, every file above including manifest.json
    SHA256SUMS.asc, manifest.json.asc   with --sign KEYID: detached ASCII-armoured GPG signatures

The directory appears atomically (temp dir, then rename); an existing release of the same version is
never overwritten. Every artifact is copied (never hard-linked: a later write into build/ cannot
change a release) and the bytes copied must match the sha256 its stage recorded when it built it,
so a truncated or flipped-byte ISO is refused, not published. Files holding secrets are 0600 (the
ISO, in a 0700 iso/; kickstarts with --include-secrets), everything else 0644. `verify_release()` checks sums, signatures and manifest against the files and names
each problem: a changed, missing or extra file, an edited manifest, a bad or missing signature.

Note: the ISO carries what the nodes need to install themselves, including the root password hash
in its kickstarts and the fence passwords in cluster.conf. The manifest says so; treat such a release
as secret unless the definition uses demo secrets.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import log, paths
from .errors import IsobuildError, Problem, ProblemsError
from .model import Cluster
from .outputs import atomic_dir, copy_hashing, make_dir, os_error, sweep
from .run import run, which
from .stamps import Stamps, sha256_file, sha256_tree

if TYPE_CHECKING:
    from .render import Rendered

REPO = paths.ROOT  # git_state: the checkout (an installed copy has no .git)
SUMS = "SHA256SUMS"
MANIFEST = "manifest.json"
SIGNED = (SUMS, MANIFEST)
FORMAT = 1
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$")
REDACTED_NOTE = "# [redacted by invoke release: this line held a secret; rebuild with --include-secrets] "

# (name in the manifest, argv printing the version): the tools that made the artifacts.
TOOLS = (
    ("rpm", ["rpm", "--version"]),
    ("rpmbuild", ["rpmbuild", "--version"]),
    ("mock", ["mock", "--version"]),
    ("createrepo_c", ["createrepo_c", "--version"]),
    ("genisoimage", ["genisoimage", "--version"]),
    ("implantisomd5", ["implantisomd5", "--help"]),
    ("gpg", ["gpg", "--version"]),
)


@dataclass
class ReleaseResult:
    path: Path
    version: str
    artifacts: int
    signed_by: str | None
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Facts about the build environment
# ---------------------------------------------------------------------------------------------


def git_state(repo: Path = REPO) -> dict:
    """{'commit': sha or None, 'dirty': bool or None} of the source tree (build outputs are ignored)."""
    git = which("git")
    if git is None or not (repo / ".git").exists():
        return {"commit": None, "dirty": None}
    head = run([git, "-C", repo, "rev-parse", "HEAD"], check=False)
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    status = run([git, "-C", repo, "status", "--porcelain", "--untracked-files=normal"], check=False)
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def tool_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("pycdlib", "jinja2", "ruamel.yaml"):
        try:
            from importlib.metadata import version

            out[mod] = version(mod)
        except Exception:
            pass
    for name, argv in TOOLS:
        path = which(argv[0])
        if path is None:
            continue
        try:
            proc = subprocess.run([path, *argv[1:]], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        text = (proc.stdout or proc.stderr).strip().splitlines()
        if text:
            out[name] = text[0].strip()
    return out


def default_version(cluster: Cluster) -> str:
    """<config_version>.<short commit>[.dirty], or <config_version> outside git."""
    g = git_state()
    if not g["commit"]:
        return str(cluster.config_version)
    return f"{cluster.config_version}.{g['commit'][:10]}" + (".dirty" if g["dirty"] else "")


# ---------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------


def redact(text: str, secrets: dict[str, str]) -> tuple[str, list[str]]:
    """Comment out every line holding a secret (value replaced too); returns (text, what was redacted)."""
    found: list[str] = []
    lines = []
    for line in text.splitlines(keepends=True):
        hits = [what for what, value in secrets.items() if value in line]
        if hits:
            found += hits
            for what in hits:
                line = line.replace(secrets[what], "<redacted>")
            line = REDACTED_NOTE + line
        lines.append(line)
    return "".join(lines), sorted(set(found))


# ---------------------------------------------------------------------------------------------
# GPG
# ---------------------------------------------------------------------------------------------


def _gpg(homedir: Path | None) -> list[str]:
    gpg = which("gpg")
    if gpg is None:
        raise IsobuildError("gpg is not installed", hint="apt-get install gnupg")
    argv = [gpg, "--batch", "--no-tty"]
    if homedir is not None:
        argv += ["--homedir", str(homedir)]
    return argv


def signing_fingerprint(keyid: str, homedir: Path | None = None) -> str:
    """The fingerprint of the one secret key `keyid` names (key id, fingerprint, or user id)."""
    proc = run([*_gpg(homedir), "--with-colons", "--list-secret-keys", "--", keyid], check=False)
    fprs = []
    lines = (proc.stdout or "").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("sec:") and i + 1 < len(lines) and lines[i + 1].startswith("fpr:"):
            fprs.append(lines[i + 1].split(":")[9])
    if proc.returncode != 0 or not fprs:
        raise IsobuildError(f"no GPG secret key matches {keyid!r}",
                            hint="list yours with `gpg --list-secret-keys`; pass its id or fingerprint to --sign")
    if len(fprs) > 1:
        raise IsobuildError(f"{keyid!r} matches {len(fprs)} secret keys", hint="pass the full fingerprint")
    return fprs[0]


def sign(path: Path, fingerprint: str, homedir: Path | None = None) -> Path:
    sig = path.with_name(path.name + ".asc")
    run([*_gpg(homedir), "--yes", "--armor", "--local-user", fingerprint, "--detach-sign",
         "--output", sig, path], timeout=120)
    return sig


def verify_signature(sig: Path, data: Path, homedir: Path | None = None) -> tuple[bool, str | None, str]:
    """(good, signer fingerprint, gpg's message)."""
    proc = run([*_gpg(homedir), "--status-fd", "1", "--verify", sig, data], check=False, timeout=120)
    fpr = None
    for line in (proc.stdout or "").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[:2] == ["[GNUPG:]", "VALIDSIG"]:
            fpr = parts[2]
    msg = (proc.stderr or "").strip().splitlines()
    return proc.returncode == 0 and fpr is not None, fpr, (msg[-1] if msg else "")


# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------


SECRET_KINDS = ("iso", "usb")  # they carry the nodes' kickstarts: 0600 files in 0700 directories


def _collect(build_dir: Path, iso: Path | None) -> dict[str, list[Path]]:
    """{'iso': [...], 'usb': [...], 'rpms': [...], 'srpms': [...]} from the build dir; errors say which
    stage to run. The stick images (`invoke usb`) are optional, and left out with --iso: they carry
    build/out's DVD, not that one."""
    if iso is not None:
        isos = [Path(iso)]
        if not isos[0].is_file():
            raise IsobuildError(f"ISO {iso} does not exist", hint="build it with `invoke iso`")
    else:
        isos = sorted((build_dir / "out").glob("*.iso"))
        if not isos:
            raise IsobuildError(f"no ISO in {build_dir / 'out'}", hint="build it with `invoke iso` first")
    rpms = sorted(p for p in (build_dir / "rpms").glob("*.rpm") if not p.name.endswith(".src.rpm"))
    srpms = sorted((build_dir / "srpms").glob("*.src.rpm"))
    if not rpms:
        raise IsobuildError(f"no RPMs in {build_dir / 'rpms'}", hint="build them with `invoke rpms` first")
    if not srpms:
        raise IsobuildError(f"no SRPMs in {build_dir / 'srpms'}", hint="build them with `invoke rpms` first")
    sticks = sorted((build_dir / "out").glob("*-usb.img")) if iso is None else []
    return {"iso": isos, "usb": sticks, "rpms": rpms, "srpms": srpms}


def _input_digests(cluster: Cluster, rendered: Rendered) -> dict[str, str]:
    out = {"definition": cluster.digest, "render": rendered.digest}
    for name, path in (("rpmspecs", paths.RPMSPECS), ("overlay", paths.OVERLAY),
                       ("kickstart templates", paths.KICKSTART)):
        if path.exists():
            out[name] = sha256_tree(path)
    lock = paths.RPMSPECS / "sources.lock"
    if lock.is_file():
        out["sources.lock"] = sha256_file(lock)
    return out


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())


@dataclass(frozen=True)
class ReleasePlan:
    """A release checked before anything is written (plan_release): where it goes and what it holds."""
    target: Path
    version: str
    fingerprint: str | None  # of the signing key
    found: dict[str, list[Path]]  # the artifacts, by kind (_collect)
    expected: dict[Path, str]  # each artifact's sha256 as its stage recorded it
    gpg_homedir: Path | None


def plan_release(cluster: Cluster, build_dir: Path, *, version: str | None = None, sign_key: str | None = None,
                 iso: Path | None = None, gpg_homedir: Path | None = None,
                 out_dir: Path | None = None) -> ReleasePlan:
    """Check the version, the target, the signing key and the artifacts of a release of build_dir."""
    build_dir = Path(build_dir)
    version = version or default_version(cluster)
    if not VERSION_RE.match(version):
        raise IsobuildError(f"release version {version!r} is not usable in a directory name",
                            hint="letters, digits and . _ + ~ - (e.g. 1.0.0)")
    target = Path(out_dir or build_dir / "release") / f"{cluster.name}-{version}"
    if target.exists():
        raise IsobuildError(f"release {target} already exists",
                            hint="a release is never overwritten: pass another --version, or remove it yourself")
    try:
        sweep(target.parent, [target.name])
    except OSError as err:
        raise os_error(err, "release: cannot remove the leftovers of an interrupted release", target.parent) from None
    fingerprint = signing_fingerprint(sign_key, gpg_homedir) if sign_key else None
    found = _collect(build_dir, iso)
    expected = {p: recorded_sha256(build_dir, p) for ps in found.values() for p in ps}
    return ReleasePlan(target, version, fingerprint, found, expected, gpg_homedir)


def build_release(cluster: Cluster, rendered: Rendered, plan: ReleasePlan, *,
                  include_secrets: bool = False) -> ReleaseResult:
    """Write the planned release from the build dir of `rendered` (the caller's render of `cluster`,
    whose kickstarts are released, redacted unless include_secrets)."""
    target, version, found, fingerprint = plan.target, plan.version, plan.found, plan.fingerprint
    secrets = cluster.secrets()
    warnings = []
    kickstarts: dict[str, str] = {}
    redacted: dict[str, list[str]] = {}
    for node, path in sorted(rendered.kickstarts.items()):
        text = path.read_text()
        if not include_secrets:
            text, what = redact(text, secrets)
            if what:
                redacted[f"kickstarts/{node}.ks"] = what
        kickstarts[node] = text
    if not include_secrets and not redacted:
        warnings.append("no secret found in the kickstarts to redact (is the root password hash line gone?)")
    carriers = "the ISO and the USB stick image carry" if found["usb"] else "the ISO carries"  # only what was built
    warnings.append(f"{carriers} the root password hash and the fence passwords "
                    "(the nodes need them): treat the release as secret" + (" (these are DEMO secrets)" if cluster.demo_secrets else ""))

    try:
        artifacts, fingerprint = _write_release(target, cluster, rendered, version, found, plan.expected,
                                                kickstarts, include_secrets, redacted, fingerprint, plan.gpg_homedir)
    except OSError as err:
        raise os_error(err, f"release: cannot write {target}", target.parent) from None
    for w in warnings:
        log.warn(w)
    return ReleaseResult(target, version, len(artifacts), fingerprint, warnings)


def recorded_sha256(build_dir: Path, path: Path) -> str:
    """The sha256 the stage that built `path` recorded (its stamp; for an ISO from elsewhere, its .sha256)."""
    rec = Stamps(build_dir).recorded(path)
    if rec is not None:
        return rec[1]["sha256"]
    side = Path(str(path) + ".sha256")
    if side.is_file():
        words = side.read_text(errors="replace").split()
        if words and re.fullmatch(r"[0-9a-f]{64}", words[0]):
            return words[0]
    raise IsobuildError(f"{path}: no stage recorded its sha256, so it cannot be checked before it is published",
                        hint="build it with `invoke iso` / `invoke rpms`, or (an ISO from elsewhere) put its "
                             f"`sha256sum` line in {side.name}")


def _copy_checked(src: Path, dst: Path, want: str) -> str:
    got = copy_hashing(src, dst)
    if got != want:
        raise IsobuildError(f"{src} is not what its stage built: sha256 {got}, recorded {want}",
                            hint="it was changed or damaged after the build (a truncated copy, a bad disk?): "
                                 "rebuild it (e.g. `invoke iso --force`), then release again")
    return got


def _write_release(target, cluster, rendered, version, found, expected, kickstarts, include_secrets, redacted,
                   fingerprint, gpg_homedir):
    with atomic_dir(target) as tmp:
        artifacts = []

        def add(rel: str, kind: str, src: Path | None = None, text: str | None = None, mode: int = 0o644) -> None:
            dst = tmp / rel
            make_dir(dst.parent, 0o700 if kind in SECRET_KINDS else 0o755)
            if src is not None:
                digest = _copy_checked(src, dst, expected[src])
            else:
                fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(text or "")
                digest = sha256_file(dst)
            os.chmod(dst, mode)
            artifacts.append({"path": rel, "kind": kind, "sha256": digest, "size": dst.stat().st_size})

        for p in found["iso"]:
            add(f"iso/{p.name}", "iso", p, mode=0o600)
        for p in found["usb"]:
            add(f"usb/{p.name}", "usb", p, mode=0o600)
        for p in found["rpms"]:
            add(f"rpms/{p.name}", "rpm", p)
        for p in found["srpms"]:
            add(f"srpms/{p.name}", "srpm", p)
        for node, text in kickstarts.items():
            add(f"kickstarts/{node}.ks", "kickstart", text=text, mode=0o600 if include_secrets else 0o644)
        for a in artifacts:
            a["contains_secrets"] = a["kind"] in SECRET_KINDS or (a["kind"] == "kickstart" and include_secrets)
        manifest = {
            "format": FORMAT,
            "cluster": cluster.name,
            "version": version,
            "created": int(os.environ.get("SOURCE_DATE_EPOCH", time.time())),
            "git": git_state(),
            "inputs": _input_digests(cluster, rendered),
            "tools": tool_versions(),
            "secrets_included": include_secrets,
            "redacted": redacted,
            "signing_key": fingerprint,
            "artifacts": sorted(artifacts, key=lambda a: a["path"]),
        }
        text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        (tmp / MANIFEST).write_text(text)
        os.chmod(tmp / MANIFEST, 0o644)
        digests = {a["path"]: a["sha256"] for a in artifacts}
        digests[MANIFEST] = hashlib.sha256(text.encode()).hexdigest()
        (tmp / SUMS).write_text("".join(f"{digests[rel]}  {rel}\n" for rel in sorted(digests)))
        os.chmod(tmp / SUMS, 0o644)
        if fingerprint:
            for name in SIGNED:
                os.chmod(sign(tmp / name, fingerprint, gpg_homedir), 0o644)
        problems = check_release(tmp, gpg_homedir)  # what we ship must pass our own check
        if problems:
            raise ProblemsError(f"release {target.name} failed its own verification", problems)
    return artifacts, fingerprint


# ---------------------------------------------------------------------------------------------
# Verify
# ---------------------------------------------------------------------------------------------


def _parse_sums(text: str, where: str, problems: list[Problem]) -> dict[str, str]:
    sums: dict[str, str] = {}
    for i, line in enumerate(text.splitlines(), 1):
        m = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if not m:
            problems.append(Problem(where, i, "", "not a sha256sum line"))
            continue
        rel = m.group(2)
        if rel.startswith("/") or ".." in rel.split("/"):
            problems.append(Problem(where, i, rel, "path outside the release"))
            continue
        sums[rel] = m.group(1)
    return sums


class _Check:
    """One verification of a release directory: the problems found so far, each file hashed once."""

    def __init__(self, root: Path, gpg_homedir: Path | None):
        self.root, self.gpg_homedir = root, gpg_homedir
        self.problems: list[Problem] = []
        self._hashed: dict[str, str] = {}

    def digest(self, rel: str) -> str:  # each file read once (an ISO is GBs)
        if rel not in self._hashed:
            self._hashed[rel] = sha256_file(self.root / rel)
        return self._hashed[rel]

    def bad(self, rel: str, reason: str, hint: str | None = None) -> None:
        self.problems.append(Problem(str(self.root / rel) if rel else str(self.root), None, "", reason, hint))


def check_release(root: Path, gpg_homedir: Path | None = None) -> list[Problem]:
    """Every problem with a release directory (empty list: it verifies)."""
    root = Path(root)
    if not root.is_dir():
        return [Problem(str(root), None, "", "not a directory", "pass build/release/<cluster>-<version>")]
    ck = _Check(root, gpg_homedir)
    present = set(_files(root))
    manifest = _read_manifest(ck)
    sums: dict[str, str] = {}
    if (root / SUMS).is_file():
        sums = _parse_sums((root / SUMS).read_text(errors="replace"), str(root / SUMS), ck.problems)
    else:
        ck.bad(SUMS, "missing")
    # signatures first: they say whether SHA256SUMS and the manifest can be trusted at all
    _check_signatures(ck, manifest)
    _check_sums(ck, sums)
    listed = _check_manifest(ck, manifest, sums) if manifest is not None else set()
    # nothing else is in the directory
    known = set(sums) | listed | {SUMS, MANIFEST} | {n + ".asc" for n in SIGNED}
    for rel in sorted(present - known):
        ck.bad(rel, "extra file not listed in SHA256SUMS or manifest.json")
    return ck.problems


def _read_manifest(ck: _Check) -> dict | None:
    try:
        manifest = json.loads((ck.root / MANIFEST).read_text())
        if not isinstance(manifest, dict) or not isinstance(manifest.get("artifacts"), list):
            raise ValueError("no artifacts list")
        return manifest
    except FileNotFoundError:
        ck.bad(MANIFEST, "missing")
    except ValueError as err:
        ck.bad(MANIFEST, f"not a valid manifest: {err}", "it was edited or truncated")
    return None


def _check_signatures(ck: _Check, manifest: dict | None) -> None:
    want_key = manifest.get("signing_key") if manifest else None
    for name in SIGNED:
        sig = ck.root / (name + ".asc")
        if sig.is_file() and (ck.root / name).is_file():
            good, fpr, msg = verify_signature(sig, ck.root / name, ck.gpg_homedir)
            if not good:
                ck.bad(name, f"GPG signature does not verify ({msg})", "the file or its signature was changed, or "
                       "the signing key is not in your keyring (gpg --import it)")
            elif want_key and fpr != want_key:
                ck.bad(name, f"signed by {fpr}, but the manifest names {want_key}")
        elif want_key and not sig.is_file():
            ck.bad(name + ".asc", f"signature missing (the manifest says the release is signed by {want_key})")
    if not want_key and any((ck.root / (n + ".asc")).exists() for n in SIGNED) and manifest is not None:
        ck.bad(MANIFEST, "signatures are present but the manifest names no signing key")


def _check_sums(ck: _Check, sums: dict[str, str]) -> None:
    """Every file SHA256SUMS lists is there with its sum."""
    for rel, want in sorted(sums.items()):
        if not (ck.root / rel).is_file():
            ck.bad(rel, "listed in SHA256SUMS but missing (deleted?)")
        elif ck.digest(rel) != want:
            what = "manifest.json was edited" if rel == MANIFEST else "content changed (sha256 differs from SHA256SUMS)"
            ck.bad(rel, what)


def _check_manifest(ck: _Check, manifest: dict, sums: dict[str, str]) -> set[str]:
    """The manifest agrees with the files and with SHA256SUMS; returns the paths it lists."""
    listed = set()
    for a in manifest["artifacts"]:
        rel = a.get("path", "")
        listed.add(rel)
        p = ck.root / rel
        if rel not in sums:
            ck.bad(rel, "in manifest.json but not in SHA256SUMS")
        if not p.is_file():
            if rel not in sums:
                ck.bad(rel, "in manifest.json but missing")
            continue
        if p.stat().st_size != a.get("size"):
            ck.bad(rel, f"size {p.stat().st_size} differs from the manifest's {a.get('size')}")
        actual = ck.digest(rel)
        if actual != a.get("sha256") and sums.get(rel) == actual:
            ck.bad(rel, "sha256 differs from manifest.json (the manifest was edited?)")
    for rel in sorted(set(sums) - listed - {MANIFEST}):
        ck.bad(rel, "in SHA256SUMS but not in manifest.json")
    return listed


def verify_release(root: Path, gpg_homedir: Path | None = None) -> dict:
    """Raise ProblemsError naming every problem; else return the manifest."""
    problems = check_release(root, gpg_homedir)
    if problems:
        raise ProblemsError(f"release {root} does NOT verify", problems)
    return json.loads((Path(root) / MANIFEST).read_text())
