"""What each package of the RPM chain is built from: the build config, our specs parsed with Fedora 13's
macros, their sources (local, rpmspecs/common, sources.lock, generated), and the inputs of its cache key.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import log, paths
from .errors import IsobuildError, Problem, ProblemsError, ToolError
from .run import require, run, which
from .sources import LOCK_NAME, LockedSource, parse_lock
from .stamps import sha256_bytes, sha256_file, sha256_tree

REPO_ROOT, SPECS_DIR, FIRSTBOOT_DIR = paths.ROOT, paths.RPMSPECS, paths.FIRSTBOOT  # paths.py: checkout or installed
MOCK_CONFIG = SPECS_DIR / "mock" / "fedora-13-x86_64-an.cfg"

# Build order: each package may BuildRequire the ones before it (drbd-km needs kernel-devel).
# fence-na (Node Assassin's fence_na, not in Fedora 13's fence-agents) is noarch perl.
CHAIN = ("kernel", "drbd-km", "drbd", "xen", "fence-na", "an-cluster-firstboot")
FIRSTBOOT = "an-cluster-firstboot"
DRBD_KM = "drbd-km"
DEFAULT_KERNEL = "2.6.32.23-170.dom0_an1.fc13"  # rpmspecs/kernel: 2.6.32 + stable 23, build 170.dom0_an1
KERNEL_ARCH = "x86_64"
BUILDHOST = "build.an-cluster"

# Fedora 13's macro values that matter when a spec is parsed or built outside an F13 root.
F13_DEFINES = {
    "dist": ".fc13",
    "fedora": "13",
    # Debian's rpm puts these elsewhere (/etc/init.d is a symlink owned by F13's chkconfig).
    "_initddir": "/etc/rc.d/init.d",
    "_initrddir": "/etc/rc.d/init.d",
    "_sharedstatedir": "/var/lib",
    "_docdir": "/usr/share/doc",
    "python_sitearch": "/usr/lib64/python2.6/site-packages",  # F13's python 2.6, not the host's
}
# Host rpmbuild (rpm 4.18) writing packages rpm 4.8 can read and that rebuild byte-identically.
HOST_MACROS = {
    "_binary_payload": "w9.gzdio",  # gzip: rpm 4.8 has no zstd
    "_source_payload": "w9.gzdio",
    "_binary_filedigest_algorithm": "8",  # sha256, known to rpm >= 4.6
    "_source_filedigest_algorithm": "8",
    "_buildhost": BUILDHOST,
    "use_source_date_epoch_as_buildtime": "1",
    "clamp_mtime_to_source_date_epoch": "1",
    "source_date_epoch_from_changelog": "0",  # we export SOURCE_DATE_EPOCH ourselves
    "_build_id_links": "none",
    "_smp_mflags": "-j1",
}


# Packages and their inputs


@dataclass(frozen=True)
class Package:
    name: str
    dir: Path
    spec: Path
    locked: tuple[LockedSource, ...]

    @property
    def lock_path(self) -> Path:
        return self.dir / LOCK_NAME


@dataclass
class BuildConfig:
    build_dir: Path = Path("build")
    backend: str | None = None  # None = mock when installed, else rpmbuild
    specs_dir: Path = SPECS_DIR
    chain: tuple[str, ...] = CHAIN
    mock_config: Path = MOCK_CONFIG
    sources_cache: Path | None = None
    kernel_version: str = DEFAULT_KERNEL  # version-release of the dom0 kernel, no arch
    firstboot_dir: Path = FIRSTBOOT_DIR
    download: bool = True

    def __post_init__(self):
        self.build_dir = Path(self.build_dir)
        self.specs_dir = Path(self.specs_dir)
        self.mock_config = Path(self.mock_config)
        self.firstboot_dir = Path(self.firstboot_dir)
        if self.backend is None:
            self.backend = "mock" if which("mock") else "rpmbuild"
        if self.backend not in ("mock", "rpmbuild"):
            raise IsobuildError(f"unknown RPM backend {self.backend!r}", hint="use --backend mock or --backend rpmbuild")
        if not re.fullmatch(r"[0-9][0-9A-Za-z.]*-[0-9][0-9A-Za-z._]*", self.kernel_version):
            raise IsobuildError(f"bad dom0 kernel version {self.kernel_version!r}",
                                hint="version-release without arch, e.g. 2.6.32.23-170.dom0_an1.fc13")

    @property
    def rpms_dir(self) -> Path:
        return self.build_dir / "rpms"

    @property
    def srpms_dir(self) -> Path:
        return self.build_dir / "srpms"

    @property
    def repo_dir(self) -> Path:
        return self.build_dir / "repo"

    @property
    def logs_dir(self) -> Path:
        return self.build_dir / "logs" / "rpms"

    @property
    def manifests_dir(self) -> Path:
        return self.build_dir / ".rpm-manifests"

    @property
    def kernelversion(self) -> str:
        """uname -r of the dom0 kernel: what drbd-km is built for."""
        return f"{self.kernel_version}.{KERNEL_ARCH}"


def load_package(cfg: BuildConfig, name: str) -> Package:
    d = cfg.specs_dir / name
    spec = d / f"{name}.spec"
    if not spec.is_file():
        raise IsobuildError(f"no spec for package {name!r}: {spec} does not exist",
                            hint=f"known packages: {', '.join(cfg.chain)}")
    lock = d / LOCK_NAME
    locked = tuple(parse_lock(lock, name)) if lock.exists() else ()
    return Package(name, d, spec, locked)


def select(cfg: BuildConfig, only: Sequence[str] | None) -> list[str]:
    if not only:
        return list(cfg.chain)
    unknown = [n for n in only if n not in cfg.chain]
    if unknown:
        raise IsobuildError(f"unknown package(s): {', '.join(unknown)}", hint=f"choose from: {', '.join(cfg.chain)}")
    return [n for n in cfg.chain if n in only]


def package_defines(cfg: BuildConfig, name: str) -> dict[str, str]:
    """rpm macros for one package: F13's, plus the kernel drbd-km must be built against."""
    defines = dict(F13_DEFINES)
    if name == DRBD_KM:
        defines["kernelversion"] = cfg.kernelversion
        defines["kdir"] = f"/usr/src/kernels/{cfg.kernelversion}"
    return defines


def _define_args(defines: dict[str, str]) -> list[str]:
    out: list[str] = []
    for k, v in defines.items():
        out += ["--define", f"{k} {v}"]
    return out


def rpmspec_query(pkg: Package, qf: str, defines: dict[str, str], *, srpm: bool = True, spec: Path | None = None) -> str:
    tool = require("rpmspec", "rpm")
    argv = [tool, "-q", *(["--srpm"] if srpm else []), *_define_args(defines), "--qf", qf, str(spec or pkg.spec)]
    try:
        return run(argv, timeout=120).stdout
    except ToolError as err:
        raise IsobuildError(f"spec {spec or pkg.spec} does not parse with Fedora 13 macros:\n{err.message}",
                            hint="run the rpmspec command above to see every error") from None


def spec_source_names(pkg: Package, defines: dict[str, str]) -> list[str]:
    out = rpmspec_query(pkg, "[%{SOURCE}\\n][%{PATCH}\\n]", defines)
    return [line.strip() for line in out.splitlines() if line.strip()]


def spec_source_date_epoch(pkg: Package, defines: dict[str, str]) -> int:
    """SOURCE_DATE_EPOCH = the newest %changelog entry; the spec's own clamp value must agree."""
    out = rpmspec_query(pkg, "%{CHANGELOGTIME}", defines).strip()
    if not out.isdigit():
        raise IsobuildError(f"{pkg.spec}: no %changelog entry", hint="SOURCE_DATE_EPOCH comes from the newest %changelog date; add one")
    epoch = int(out)
    m = re.search(r"^%global\s+an_source_date_epoch\s+(\d+)\s*$", pkg.spec.read_text(), re.M)
    if m and int(m.group(1)) != epoch:
        raise IsobuildError(
            f"{pkg.spec}: an_source_date_epoch is {m.group(1)} but the newest %changelog entry is {epoch}",
            hint=f"set `%global an_source_date_epoch {epoch}` (rpm 4.8 clamps mtimes with it)",
        )
    return epoch


def is_noarch(pkg: Package, defines: dict[str, str]) -> bool:
    arches = set(rpmspec_query(pkg, "%{ARCH}\\n", defines, srpm=False).split())
    return arches == {"noarch"}


def firstboot_version(cfg: BuildConfig) -> str:
    vfile = cfg.firstboot_dir / "VERSION"
    if not vfile.is_file():
        log.warn(f"{vfile} missing: packaging an-cluster-firstboot as version 0.0.0")
        return "0.0.0"
    version = vfile.read_text().strip()
    if not re.fullmatch(r"[0-9][0-9A-Za-z.+]*", version):
        raise IsobuildError(f"{vfile}: bad version {version!r}", hint="one line like 1.0.0 (no dashes or spaces)")
    return version


@dataclass
class Plan:
    """Everything needed to build one package, and the named digests that make its cache key."""

    pkg: Package
    defines: dict[str, str]
    epoch: int
    local: dict[str, Path]  # source name -> file in the spec dir
    locked: dict[str, LockedSource]  # source name -> lock entry
    generated: dict[str, str]  # source name -> what makes it ("overlay")
    noarch: bool
    inputs: dict[str, str]


# rpmspecs/common/: sources several specs list (each SRPM still carries its own copy).
COMMON_DIR = "common"


def plan_package(cfg: BuildConfig, name: str) -> Plan:
    pkg = load_package(cfg, name)
    defines = package_defines(cfg, name)
    if name == FIRSTBOOT:
        defines["fb_version"] = firstboot_version(cfg)
    names = spec_source_names(pkg, defines)
    by_lock = {s.file: s for s in pkg.locked}
    local: dict[str, Path] = {}
    locked: dict[str, LockedSource] = {}
    generated: dict[str, str] = {}
    problems: list[Problem] = []
    for src in names:
        if name == FIRSTBOOT and src == f"{FIRSTBOOT}-{defines['fb_version']}.tar.gz":
            generated[src] = "overlay"
        elif (pkg.dir / src).is_file():
            local[src] = pkg.dir / src
        elif (pkg.dir.parent / COMMON_DIR / src).is_file():  # shared by several specs (repro shims)
            local[src] = pkg.dir.parent / COMMON_DIR / src
        elif src in by_lock:
            locked[src] = by_lock[src]
        else:
            problems.append(Problem(str(pkg.spec), None, f"{name}.{src}",
                                    "source/patch is neither in the spec's directory, rpmspecs/common, nor in sources.lock",
                                    f"add {src} to {pkg.dir}/ or lock it in {pkg.lock_path}"))
    if problems:
        raise ProblemsError(f"{name}: unresolved sources", problems)
    epoch = spec_source_date_epoch(pkg, defines)
    inputs = {"spec": sha256_file(pkg.spec), "backend": cfg.backend, "macros": sha256_bytes(json.dumps(
        {"defines": defines, "host": HOST_MACROS if cfg.backend == "rpmbuild" else {}}, sort_keys=True))}
    for src, path in sorted(local.items()):
        inputs[f"file:{src}"] = sha256_file(path)
    for src, ent in sorted(locked.items()):
        inputs[f"source:{src}"] = ent.checksum
    if generated:
        inputs["overlay"] = sha256_tree(cfg.firstboot_dir)
    if cfg.backend == "mock":
        inputs["mock-config"] = sha256_file(cfg.mock_config)
    return Plan(pkg, defines, epoch, local, locked, generated, is_noarch(pkg, defines), inputs)


def check_kernel_matches_spec(cfg: BuildConfig) -> None:
    """drbd-km is built for cfg.kernel_version: that must be the kernel this chain builds."""
    if "kernel" not in cfg.chain or DRBD_KM not in cfg.chain:
        return
    pkg = load_package(cfg, "kernel")
    out = rpmspec_query(pkg, "%{VERSION}-%{RELEASE}\\n", dict(F13_DEFINES), srpm=True).split()
    spec_vr = out[0] if out else ""
    if spec_vr != cfg.kernel_version:
        raise IsobuildError(
            f"dom0 kernel {cfg.kernel_version} (xen.dom0_kernel / --kernel) is not the kernel {pkg.spec} builds ({spec_vr}): "
            "drbd-km would be built for a kernel that is not in the repo",
            hint="change the kernel spec (stable_update, fedora_build, buildid) or the requested kernel version",
        )


def chain_inputs(plans: list[Plan]) -> None:
    """Make each package's key depend on every earlier one, so a change rebuilds the rest of the chain."""
    prev: str | None = None
    prev_name = None
    for plan in plans:
        if prev is not None:
            plan.inputs[f"earlier:{prev_name}"] = prev
        prev = sha256_bytes(json.dumps(plan.inputs, sort_keys=True))
        prev_name = plan.pkg.name



def locked_sources(cfg: BuildConfig, only: Sequence[str] | None = None) -> list[LockedSource]:
    """Every sources.lock entry of the selected packages, in chain order, each file once.

    drbd and drbd-km share the DRBD tarball; their locks must agree on it."""
    seen: dict[str, LockedSource] = {}
    for name in select(cfg, only):
        for ent in load_package(cfg, name).locked:
            prev = seen.get(ent.file)
            if prev is None:
                seen[ent.file] = ent
            elif (prev.checksum, prev.url) != (ent.checksum, ent.url):
                raise IsobuildError(
                    f"{ent.file} is locked differently in {prev.lock}:{prev.line} and {ent.lock}:{ent.line}",
                    hint="one file, one checksum: make the two entries identical")
    return list(seen.values())

