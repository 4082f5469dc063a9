"""RPMs from our specs: SRPMs, the mock chain (kernel -> drbd-km -> drbd -> xen -> fence-na -> firstboot),
the host rpmbuild fallback, a content-hash cache per package, and checks that keep every package
readable by Fedora 13's rpm 4.8.

Both backends build from the SRPM (`rpmbuild --rebuild` / `mock --rebuild`), so the SRPM is proven
self-contained. Results: build/rpms/*.rpm, build/srpms/*.src.rpm, logs in build/logs/rpms/.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import shlex
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from . import log
from .errors import IsobuildError, Problem, ProblemsError, ToolError
from .outputs import write_file
from .repo import make_repo
from .run import require, run, tail, which
from .sources import LOCK_NAME, LockedSource, fetch_sources, parse_lock
from .stamps import Stamps, sha256_bytes, sha256_file, sha256_tree

from .paths import FIRSTBOOT as FIRSTBOOT_DIR, RPMSPECS as SPECS_DIR
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
# rpmlib() features rpm 4.8 provides (rpm-4.8.0 lib/rpmds.c rpmlibProvides).
RPM48_RPMLIB = {
    "rpmlib(VersionedDependencies)", "rpmlib(CompressedFileNames)", "rpmlib(PayloadIsBzip2)",
    "rpmlib(PayloadIsXz)", "rpmlib(PayloadIsLzma)", "rpmlib(PayloadFilesHavePrefix)",
    "rpmlib(ExplicitPackageProvide)", "rpmlib(HeaderLoadSortsTags)", "rpmlib(ScriptletInterpreterArgs)",
    "rpmlib(PartialHardlinkSets)", "rpmlib(ConcurrentAccess)", "rpmlib(BuiltinLuaScripts)",
    "rpmlib(FileDigests)", "rpmlib(FileCaps)",
}
RPM48_COMPRESSORS = {"gzip", "bzip2", "xz", "lzma"}
RPM48_DIGESTS = {1, 2, 8, 9, 10}  # md5 sha1 sha256 sha384 sha512


# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Sources and SRPMs


def firstboot_tarball(src_dir: Path, version: str, epoch: int, dest: Path) -> None:
    """Deterministic tar.gz of overlay/firstboot: sorted, root-owned, mtimes = epoch, no gzip name/time."""
    prefix = f"{FIRSTBOOT}-{version}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def add(path: Path, arc: str) -> None:
            info = tar.gettarinfo(str(path), arcname=arc)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = epoch
            if info.isreg():
                info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                if info.isdir():
                    info.mode = 0o755
                tar.addfile(info)

        root_info = tarfile.TarInfo(prefix)
        root_info.type, root_info.mode, root_info.mtime = tarfile.DIRTYPE, 0o755, epoch
        root_info.uname = root_info.gname = "root"
        tar.addfile(root_info)
        if src_dir.is_dir():
            for dirpath, dirnames, filenames in os.walk(src_dir):
                dirnames.sort()
                rel = Path(dirpath).relative_to(src_dir)
                for d in dirnames:
                    add(Path(dirpath) / d, f"{prefix}/{(rel / d).as_posix()}")
                for f in sorted(filenames):
                    add(Path(dirpath) / f, f"{prefix}/{(rel / f).as_posix()}")
    with open(dest, "wb") as out, gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(buf.getvalue())


def fetch_plan_sources(cfg: BuildConfig, plans: Iterable[Plan]) -> dict[str, Path]:
    """All locked sources of `plans`, verified in the cache (one error lists everything missing)."""
    wanted = list({ent.file: ent for plan in plans for ent in plan.locked.values()}.values())
    if not wanted:
        return {}
    result = fetch_sources(wanted, cfg.sources_cache, download=cfg.download)
    return {p.name: p for p in result.present}


def host_env(epoch: int) -> dict[str, str]:
    return {"SOURCE_DATE_EPOCH": str(epoch), "TZ": "UTC", "LC_ALL": "C", "LANG": "C", "HOSTNAME": BUILDHOST}


def rpmbuild_argv(mode: str, topdir: Path, defines: dict[str, str], target: Path, *, host_macros: bool = True) -> list[str]:
    """Exact rpmbuild command line (mode -bs or --rebuild) with our macros; golden-tested."""
    macros = {"_topdir": str(topdir), **defines, **(HOST_MACROS if host_macros else {})}
    return ["rpmbuild", mode, *_define_args(macros), str(target)]


def stage_and_build_srpm(cfg: BuildConfig, plan: Plan, cached: dict[str, Path], top: Path, log_fh) -> Path:
    """Fill top/SOURCES, stage the spec, run rpmbuild -bs; returns the SRPM path (inside top)."""
    pkg = plan.pkg
    sources = top / "SOURCES"
    specs = top / "SPECS"
    for d in (sources, specs, top / "SRPMS", top / "RPMS", top / "BUILD", top / "BUILDROOT"):
        d.mkdir(parents=True, exist_ok=True)
    for name, path in plan.local.items():
        shutil.copy2(path, sources / name)
    for name in plan.locked:
        os.symlink(cached[name].resolve(), sources / name)
    staged_spec = specs / pkg.spec.name
    text = pkg.spec.read_text()
    if pkg.name == FIRSTBOOT:
        version = plan.defines["fb_version"]
        firstboot_tarball(cfg.firstboot_dir, version, plan.epoch, sources / f"{FIRSTBOOT}-{version}.tar.gz")
        # Bake the version into the SRPM's spec: mock re-parses it without our --define.
        text = f"%global fb_version {version}\n" + text
    staged_spec.write_text(text)
    os.utime(staged_spec, (plan.epoch, plan.epoch))
    for p in sources.iterdir():
        if not p.is_symlink():
            os.utime(p, (plan.epoch, plan.epoch))
    defines = {k: v for k, v in plan.defines.items() if k != "fb_version"}
    rpmbuild = require("rpmbuild", "rpm")
    argv = rpmbuild_argv("-bs", top, defines, staged_spec)
    argv[0] = rpmbuild
    _logged_run(argv, plan.epoch, log_fh, f"{pkg.name}: SRPM")
    srpms = sorted((top / "SRPMS").glob("*.src.rpm"))
    if len(srpms) != 1:
        raise IsobuildError(f"{pkg.name}: rpmbuild -bs made {len(srpms)} SRPMs, expected 1")
    return srpms[0]


class BuildFailed(IsobuildError):
    pass


def _logged_run(argv: list[str], epoch: int, log_fh, what: str, log_path: Path | None = None) -> None:
    log_fh.write(f"$ {shlex.join(argv)}\n")
    log_fh.flush()
    proc = run(argv, check=False, env=host_env(epoch), timeout=None)
    out = (proc.stdout or "") + (proc.stderr or "")
    log_fh.write(out)
    log_fh.flush()
    if proc.returncode != 0:
        where = log_path or Path(log_fh.name)
        raise BuildFailed(
            f"{what} failed (exit {proc.returncode}); log: {where}\n--- last lines of {where} ---\n{tail(out, 25)}",
            hint=f"see the full log at {where}",
        )


# --------------------------------------------------------------------------------------------
# Backends


def is_fedora13_host(release_file: Path = Path("/etc/fedora-release")) -> bool:
    try:
        return re.search(r"release 13\b", release_file.read_text()) is not None
    except OSError:
        return False


def check_backend_can_build(cfg: BuildConfig, plan: Plan) -> None:
    if cfg.backend == "rpmbuild" and not plan.noarch and not is_fedora13_host():
        raise IsobuildError(
            f"the rpmbuild backend cannot build {plan.pkg.name} on this host: it is an architecture-specific "
            "package that must compile against Fedora 13 (gcc 4.4, glibc 2.12, rpm 4.8)",
            hint="install mock and use `invoke rpms --backend mock`, or build on Fedora 13; "
                 f"this host can build: --only {FIRSTBOOT}",
        )
    if cfg.backend == "mock":
        require("mock", "mock (Fedora/EPEL; not in Debian 12)")


def mock_argv(cfg: BuildConfig, plan: Plan, srpm: Path, resultdir: Path, localrepo: Path) -> list[str]:
    """Exact mock command line for one package of the chain (golden-tested)."""
    argv = [
        "mock", "-r", str(cfg.mock_config.resolve()), "--rebuild", str(srpm.resolve()),
        "--resultdir", str(resultdir.resolve()),
        "--addrepo", f"file://{localrepo.resolve()}",
        "--no-cleanup-after",
    ]
    for k, v in plan.defines.items():
        if k in F13_DEFINES or k == "fb_version":
            continue  # the config sets dist/fedora; fb_version is baked into the SRPM's spec
        argv += ["--define", f"{k} {v}"]
    if plan.pkg.name == DRBD_KM:
        # Pin the dom0 kernel-devel: yum would otherwise pick Fedora 13's newer one.
        argv += ["--additional-package", f"kernel-devel-{cfg.kernel_version}"]
    return argv


def build_with_rpmbuild(cfg: BuildConfig, plan: Plan, srpm: Path, top: Path, log_fh) -> list[Path]:
    rpmbuild = require("rpmbuild", "rpm")
    defines = {k: v for k, v in plan.defines.items() if k != "fb_version"}
    argv = rpmbuild_argv("--rebuild", top, defines, srpm)
    argv[0] = rpmbuild
    _logged_run(argv, plan.epoch, log_fh, f"{plan.pkg.name}: rpmbuild --rebuild")
    return sorted((top / "RPMS").glob("*/*.rpm"))


def build_with_mock(cfg: BuildConfig, plan: Plan, srpm: Path, log_fh) -> list[Path]:
    mock = require("mock", "mock (Fedora/EPEL; not in Debian 12)")
    problems = check_mock_config(cfg.mock_config)
    if problems:
        raise ProblemsError(f"mock config {cfg.mock_config} is not fit for the Fedora 13 chain", problems)
    localrepo = cfg.build_dir / "mock" / "localrepo"
    make_repo([cfg.rpms_dir] if cfg.rpms_dir.is_dir() else [], localrepo, allow_empty=True)
    resultdir = cfg.build_dir / "mock" / plan.pkg.name
    shutil.rmtree(resultdir, ignore_errors=True)
    resultdir.mkdir(parents=True)
    argv = mock_argv(cfg, plan, srpm, resultdir, localrepo)
    argv[0] = mock
    log_fh.write(f"$ {shlex.join(argv)}\n")
    log_fh.flush()
    proc = run(argv, check=False, env=host_env(plan.epoch))
    log_fh.write((proc.stdout or "") + (proc.stderr or ""))
    if proc.returncode != 0:
        for name in ("build.log", "root.log", "state.log"):
            lp = resultdir / name
            if lp.is_file() and lp.stat().st_size:
                break
        else:
            lp = Path(log_fh.name)
        raise BuildFailed(
            f"{plan.pkg.name}: mock failed (exit {proc.returncode}); log: {lp}\n--- last lines of {lp} ---\n"
            f"{tail(lp.read_text(errors='replace'), 25)}",
            hint=f"full logs in {resultdir}",
        )
    # debuginfo stays in the mock result dir: it is not for the install DVD.
    rpms = sorted(p for p in resultdir.glob("*.rpm") if not p.name.endswith(".src.rpm") and "-debuginfo-" not in p.name)
    for p in rpms:  # rpm 4.8 stamped time() into BUILDTIME/COOKIE: pin them to the changelog date
        normalise_rpm_header(p, plan.epoch)
    return rpms


# --------------------------------------------------------------------------------------------
# rpm 4.8 compatibility of what we produce


def rpm48_problems(path: Path) -> list[str]:
    """Reasons rpm 4.8 (Fedora 13) could not install `path`; empty when it can."""
    import rpmfile

    problems = []
    with rpmfile.open(str(path)) as rpm:
        h = rpm.headers
    comp = _s(h.get("archive_compression")) or "gzip"
    if comp not in RPM48_COMPRESSORS:
        problems.append(f"payload compressor {comp} (rpm 4.8 reads gzip, bzip2, xz, lzma)")
    algo = h.get("filedigestalgo")
    if algo is not None and int(algo) not in RPM48_DIGESTS:
        problems.append(f"file digest algorithm {algo}")
    for dep in _list(h.get("requirename")):
        if dep.startswith("rpmlib(") and dep not in RPM48_RPMLIB:
            problems.append(f"requires {dep}, unknown to rpm 4.8")
        if dep.startswith("("):
            problems.append(f"rich dependency {dep}")
    return problems


def _s(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def _list(v) -> list[str]:
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [_s(x) for x in v]
    return [_s(v)]


# --------------------------------------------------------------------------------------------
# The chain


@dataclass
class ChainResult:
    built: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    rpms: list[Path] = field(default_factory=list)
    srpms: list[Path] = field(default_factory=list)
    repo: Path | None = None


def _manifest_path(cfg: BuildConfig, name: str) -> Path:
    return cfg.manifests_dir / f"{name}.json"


def _load_manifest(cfg: BuildConfig, name: str) -> dict:
    try:
        return json.loads(_manifest_path(cfg, name).read_text())
    except (FileNotFoundError, ValueError):
        return {"rpms": [], "srpms": []}


def _install_results(cfg: BuildConfig, name: str, rpms: list[Path], srpm: Path) -> dict:
    """Replace the package's previous results in build/rpms and build/srpms with the new ones."""
    old = _load_manifest(cfg, name)
    new = {"rpms": sorted(p.name for p in rpms), "srpms": [srpm.name]}
    for d, key, files in ((cfg.rpms_dir, "rpms", rpms), (cfg.srpms_dir, "srpms", [srpm])):
        d.mkdir(parents=True, exist_ok=True)
        for stale in set(old.get(key, [])) - set(new[key]):
            (d / stale).unlink(missing_ok=True)
        for src in files:
            fd, tmp = tempfile.mkstemp(prefix=f".{src.name}.tmp-", dir=d)
            os.close(fd)
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, d / src.name)
    write_file(_manifest_path(cfg, name), json.dumps(new, indent=1, sort_keys=True) + "\n")
    return new


@contextlib.contextmanager
def fixed_topdir():
    """An rpmbuild _topdir at the same path for every build, like mock's /builddir/build.

    rpm records the expanded spec (with %{_topdir} paths) in the SRPM header, so a per-build-dir
    topdir would make two builds of the same inputs differ. A lock serialises concurrent builds.
    """
    import fcntl

    top = Path(tempfile.gettempdir()) / f"an-cluster-rpmbuild-{os.getuid()}"
    with open(f"{top}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(top, ignore_errors=True)
        top.mkdir(mode=0o700)
        try:
            yield top
        finally:
            shutil.rmtree(top, ignore_errors=True)


def _stage(cfg: BuildConfig, name: str) -> str:
    return f"rpm-{name}"


def _package_files(cfg: BuildConfig, manifest: dict) -> list[Path]:
    """The RPMs and SRPMs one package's build installed (from its manifest)."""
    return [cfg.rpms_dir / f for f in manifest["rpms"]] + [cfg.srpms_dir / f for f in manifest["srpms"]]


def _skip_unverifiable(plan: Plan, result: ChainResult) -> bool:
    """A package whose lock has a source with no checksum cannot be built by anyone until one is
    recorded (fetch_sources refuses it): without --only, skip it with the reason instead of failing."""
    unknown = [s for s in plan.locked.values() if s.algo is None]
    if not unknown:
        return False
    result.skipped.append(plan.pkg.name)
    log.warn(f"rpms: not building {plan.pkg.name}: no checksum locked for "
             + ", ".join(f"{s.file} ({s.lock}:{s.line})" for s in unknown)
             + f"; verify it upstream and record its sha256, then `invoke rpms --only {plan.pkg.name}`")
    return True


def build_chain(cfg: BuildConfig, only: Sequence[str] | None = None, *, force: bool = False, repo: bool = True) -> ChainResult:
    """Build the selected packages in chain order; stop at the first failure.

    With the rpmbuild backend and no explicit --only, packages it cannot build here are skipped
    with a warning naming them; asking for one explicitly is an error.
    """
    names = select(cfg, only)
    if DRBD_KM in names:
        check_kernel_matches_spec(cfg)
    all_plans = [plan_package(cfg, n) for n in cfg.chain]
    chain_inputs(all_plans)
    plans = [p for p in all_plans if p.pkg.name in names]
    result = ChainResult()
    if cfg.backend == "rpmbuild" and not only:
        skip = [p for p in plans if not p.noarch and not is_fedora13_host()]
        if skip:
            result.skipped = [p.pkg.name for p in skip]
            log.warn("rpmbuild backend on a non-Fedora-13 host: not building " + ", ".join(result.skipped)
                     + " (they need mock and the Fedora 13 archive: `invoke rpms --backend mock`)")
            plans = [p for p in plans if p not in skip]
        plans = [p for p in plans if not _skip_unverifiable(p, result)]
    for plan in plans:
        check_backend_can_build(cfg, plan)
    stamps = Stamps(cfg.build_dir)
    todo: list[Plan] = []
    for plan in plans:
        name = plan.pkg.name
        manifest = _load_manifest(cfg, name)
        check = stamps.check(_stage(cfg, name), plan.inputs, _package_files(cfg, manifest))
        if check.up_to_date and manifest["rpms"] and not force:
            result.up_to_date.append(name)
            result.reasons[name] = "up to date"
            log.info(f"rpms: {name}: up to date, nothing to build")
            continue
        if force:
            result.reasons[name] = "forced"
        elif check.up_to_date:
            result.reasons[name] = "no previous build"
        else:
            result.reasons[name] = check.reason
        todo.append(plan)
    cached = fetch_plan_sources(cfg, todo)
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    staging = cfg.build_dir / ".srpm-staging"
    shutil.rmtree(staging, ignore_errors=True)
    srpms: dict[str, Path] = {}
    # Every SRPM first: a broken spec or source fails before hours of compiling.
    for plan in todo:
        name = plan.pkg.name
        with fixed_topdir() as top, open(cfg.logs_dir / f"{name}.srpm.log", "w") as log_fh:
            srpm = stage_and_build_srpm(cfg, plan, cached, top, log_fh)
            problems = rpm48_problems(srpm)
            if problems:
                raise IsobuildError(f"{srpm.name} would not install with Fedora 13's rpm 4.8: " + "; ".join(problems))
            srpms[name] = staging / name / srpm.name
            srpms[name].parent.mkdir(parents=True)
            shutil.copy2(srpm, srpms[name])
    # Then the binary packages, in chain order; the first failure stops the chain.
    for plan in todo:
        name = plan.pkg.name
        log.info(f"rpms: building {name} with {cfg.backend} ({result.reasons[name]})")
        stamps.forget(_stage(cfg, name))
        log_path = cfg.logs_dir / f"{name}.log"
        srpm = srpms[name]
        with fixed_topdir() as top, open(log_path, "w") as log_fh:
            if cfg.backend == "mock":
                rpms = build_with_mock(cfg, plan, srpm, log_fh)
            else:
                rpms = build_with_rpmbuild(cfg, plan, srpm, top, log_fh)
            if not rpms:
                raise BuildFailed(f"{name}: the build produced no binary RPMs; log: {log_path}")
            bad = {p.name: rpm48_problems(p) for p in rpms}
            bad = {k: v for k, v in bad.items() if v}
            if bad:
                raise IsobuildError(f"{name}: packages Fedora 13's rpm 4.8 could not install: "
                                    + "; ".join(f"{k}: {', '.join(v)}" for k, v in bad.items()),
                                    hint="check the payload/digest macros in isobuild/rpms.py HOST_MACROS")
            _install_results(cfg, name, rpms, srpm)
        # the packages' identity and sha256 (what `invoke release` checks them against)
        stamps.save(_stage(cfg, name), plan.inputs, _package_files(cfg, _load_manifest(cfg, name)))
        result.built.append(name)
    shutil.rmtree(staging, ignore_errors=True)
    for plan in plans:
        m = _load_manifest(cfg, plan.pkg.name)
        result.rpms += [cfg.rpms_dir / f for f in m["rpms"]]
        result.srpms += [cfg.srpms_dir / f for f in m["srpms"]]
    if repo and result.rpms:
        revision = max(p.epoch for p in plans)
        result.repo = make_repo([cfg.rpms_dir], cfg.repo_dir, revision=revision)
        log.info(f"rpms: repo {result.repo} ({len(list(cfg.rpms_dir.glob('*.rpm')))} packages)")
    if not todo:
        log.info("rpms: nothing to build, every selected package is up to date")
    return result


# --------------------------------------------------------------------------------------------
# Header normalisation for rpm 4.8 builds (mock): BUILDTIME and COOKIE rewritten in place


RPMTAG_BUILDTIME = 1006
RPMTAG_COOKIE = 1094
SIGTAG_SHA1 = 269
SIGTAG_SHA256 = 273
SIGTAG_MD5 = 1004
HEADER_MAGIC = b"\x8e\xad\xe8\x01\x00\x00\x00\x00"


def _read_header(data: bytes, off: int) -> tuple[int, int, dict[int, tuple[int, int, int]]]:
    """(start of data store, end of header, {tag: (type, offset, count)}) of the header at `off`."""
    import struct

    if data[off:off + 8] != HEADER_MAGIC:
        raise IsobuildError(f"not an RPM header at byte {off}")
    nindex, hsize = struct.unpack(">II", data[off + 8:off + 16])
    index = {}
    for i in range(nindex):
        tag, typ, offset, count = struct.unpack(">IIiI", data[off + 16 + 16 * i: off + 32 + 16 * i])
        index[tag] = (typ, offset, count)
    store = off + 16 + 16 * nindex
    return store, store + hsize, index


def normalise_rpm_header(path: Path, buildtime: int, buildhost: str = BUILDHOST) -> bool:
    """Set BUILDTIME and COOKIE of an unsigned RPM in place and recompute its signature digests.

    rpm 4.8 (inside the F13 mock root) stamps time() into BUILDTIME and "<host> <time>" into
    COOKIE. Both have fixed sizes once the host is fixed, so they can be rewritten without moving
    anything; then the signature header's SHA1/SHA256 (header) and MD5 (header + payload) are
    recomputed. Returns True if the file changed. Refuses signed packages.
    """
    import hashlib
    import struct

    data = bytearray(Path(path).read_bytes())
    sig_store, sig_end, sig_index = _read_header(bytes(data), 96)
    if set(sig_index) & {267, 268, 1002, 1005}:  # DSA, RSA, PGP, GPG
        raise IsobuildError(f"{path} is signed: normalise it before signing")
    hdr_off = sig_end + (-(sig_end - 96)) % 8  # the signature header is padded to 8 bytes
    hdr_store, hdr_end, hdr_index = _read_header(bytes(data), hdr_off)
    changed = False
    if RPMTAG_BUILDTIME in hdr_index:
        typ, off, count = hdr_index[RPMTAG_BUILDTIME]
        pos = hdr_store + off
        new = struct.pack(">I", buildtime)
        if data[pos:pos + 4] != new:
            data[pos:pos + 4] = new
            changed = True
    if RPMTAG_COOKIE in hdr_index:
        typ, off, count = hdr_index[RPMTAG_COOKIE]
        pos = hdr_store + off
        end = data.index(b"\0", pos)
        old = bytes(data[pos:end])
        new = f"{buildhost} {buildtime}".encode()
        if len(new) != len(old):
            raise IsobuildError(f"{path}: cookie {old.decode(errors='replace')!r} has a different length than {new.decode()!r}",
                                hint="the build host name differs from the one in the mock config")
        if old != new:
            data[pos:end] = new
            changed = True
    if not changed:
        return False
    header = bytes(data[hdr_off:hdr_end])
    payload = bytes(data[hdr_end:])
    updates = {
        SIGTAG_SHA1: hashlib.sha1(header).hexdigest().encode() + b"\0",
        SIGTAG_SHA256: hashlib.sha256(header).hexdigest().encode() + b"\0",
        SIGTAG_MD5: hashlib.md5(header + payload).digest(),
    }
    for tag, value in updates.items():
        if tag in sig_index:
            typ, off, count = sig_index[tag]
            pos = sig_store + off
            data[pos:pos + len(value)] = value
    fd, tmp = tempfile.mkstemp(prefix=f".{Path(path).name}.tmp-", dir=Path(path).parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True


# --------------------------------------------------------------------------------------------
# Inspection and comparison (rpmfile)


@dataclass
class RpmInfo:
    path: Path
    nevra: str
    name: str
    arch: str
    payload_compressor: str
    buildtime: int
    buildhost: str
    requires: list[str]
    provides: list[str]
    files: list[str]
    is_source: bool


_FLAG_OPS = {2: "<", 4: ">", 8: "=", 10: "<=", 12: ">="}


def _deps(h: dict, name_key: str, flags_key: str, ver_key: str) -> list[str]:
    names = _list(h.get(name_key))
    flags = h.get(flags_key) or []
    if not isinstance(flags, (list, tuple)):
        flags = [flags]
    vers = _list(h.get(ver_key))
    out = []
    for i, n in enumerate(names):
        v = vers[i] if i < len(vers) else ""
        op = _FLAG_OPS.get(int(flags[i]) & 0x0E if i < len(flags) else 0, "")
        out.append(f"{n} {op} {v}" if v and op else n)
    return out


def rpm_info(path: Path) -> RpmInfo:
    import rpmfile

    try:
        with rpmfile.open(str(path)) as rpm:
            h = rpm.headers
    except Exception as err:  # rpmfile raises plain errors on garbage
        raise IsobuildError(f"cannot read {path} as an RPM: {err}") from None
    name, ver, rel = _s(h.get("name")), _s(h.get("version")), _s(h.get("release"))
    epoch = h.get("epoch")
    is_source = not h.get("sourcerpm")
    arch = "src" if is_source else _s(h.get("arch"))
    evr = f"{epoch}:{ver}-{rel}" if epoch not in (None, [], 0) else f"{ver}-{rel}"
    dirs = _list(h.get("dirnames"))
    idx = h.get("dirindexes") or []
    if not isinstance(idx, (list, tuple)):
        idx = [idx]
    files = [dirs[i] + b for i, b in zip(idx, _list(h.get("basenames")))]
    return RpmInfo(
        path=Path(path), nevra=f"{name}-{evr}.{arch}", name=name, arch=arch,
        payload_compressor=_s(h.get("archive_compression")) or "gzip",
        buildtime=int(h.get("buildtime") or 0), buildhost=_s(h.get("buildhost")),
        requires=_deps(h, "requirename", "requireflags", "requireversion"),
        provides=_deps(h, "provides", "provideflags", "provideversion"),
        files=sorted(files), is_source=is_source,
    )


def check_drbd_km(info: RpmInfo) -> list[str]:
    """A drbd-km package must be named for, install into, and require exactly one kernel."""
    m = re.fullmatch(r"drbd-km-(.+)", info.name)
    if not m:
        return []
    problems = []
    kreqs = [r for r in info.requires if r.startswith("kernel-uname-r")]
    kernels = {r.split(" = ", 1)[1] for r in kreqs if " = " in r}
    if len(kernels) != 1 or len(kreqs) != 1:
        problems.append(f"{info.nevra}: must require exactly one kernel (kernel-uname-r = ...), has {kreqs or 'none'}")
        return problems
    (kver,) = kernels
    if m.group(1) != kver.replace("-", "_"):
        problems.append(f"{info.nevra}: name says kernel {m.group(1)} but it requires {kver}")
    moddirs = {f.split("/")[3] for f in info.files if f.startswith("/lib/modules/") and f.count("/") > 3}
    if moddirs != {kver}:
        problems.append(f"{info.nevra}: modules installed for {sorted(moddirs) or 'no kernel'}, expected {kver}")
    return problems


def _payload_digest(path: Path) -> tuple[str, dict[str, str]]:
    """(sha256 of the compressed payload, {file: sha256 of its content}) using rpmfile."""
    import hashlib

    import rpmfile

    files = {}
    with rpmfile.open(str(path)) as rpm:
        offset = rpm.data_offset
        for member in rpm.getmembers():
            fh = rpm.extractfile(member)
            files[member.name] = hashlib.sha256(fh.read() if fh else b"").hexdigest()
    with open(path, "rb") as fh:
        fh.seek(offset)
        raw = hashlib.sha256(fh.read()).hexdigest()
    return raw, files


def compare_rpms(a: Path, b: Path) -> list[str]:
    """What differs between two builds of one package: header fields by name, then payload files."""
    import rpmfile

    with rpmfile.open(str(a)) as ra, rpmfile.open(str(b)) as rb:
        ha, hb = ra.headers, rb.headers
    diffs = []
    for key in sorted(set(ha) | set(hb), key=str):
        va, vb = ha.get(key), hb.get(key)
        if va != vb:
            short = lambda v: (repr(v)[:60] + "...") if len(repr(v)) > 63 else repr(v)  # noqa: E731
            diffs.append(f"header {key}: {short(va)} != {short(vb)}")
    pa, fa = _payload_digest(a)
    pb, fb = _payload_digest(b)
    changed_files = sorted(n for n in set(fa) | set(fb) if fa.get(n) != fb.get(n))
    if changed_files:
        diffs.append("payload files differ: " + ", ".join(changed_files))
    elif pa != pb:
        diffs.append("payload archive differs (same file contents: cpio metadata or compression)")
    return diffs


@dataclass
class VerifyReport:
    identical: list[str]
    different: dict[str, list[str]]
    missing: list[str]

    @property
    def ok(self) -> bool:
        return not self.different and not self.missing


def compare_dirs(first: Path, second: Path) -> VerifyReport:
    names_a = {p.name for p in Path(first).glob("*.rpm")}
    names_b = {p.name for p in Path(second).glob("*.rpm")}
    report = VerifyReport([], {}, sorted(names_a ^ names_b))
    for name in sorted(names_a & names_b):
        diffs = compare_rpms(Path(first) / name, Path(second) / name)
        if diffs:
            report.different[name] = diffs
        else:
            report.identical.append(name)
    return report


def verify_rebuild(cfg: BuildConfig, only: Sequence[str] | None = None) -> VerifyReport:
    """Rebuild the selected packages into <build>/verify and compare them with build/rpms and build/srpms."""
    first = build_chain(cfg, only, repo=False)
    if not first.rpms:
        raise IsobuildError("nothing was built, so nothing can be compared", hint="check `invoke rpms` output")
    second_cfg = BuildConfig(**{**cfg.__dict__, "build_dir": cfg.build_dir / "verify"})
    shutil.rmtree(second_cfg.build_dir, ignore_errors=True)
    only_built = [n for n in cfg.chain if n in set(first.built) | set(first.up_to_date)]
    build_chain(second_cfg, only_built, force=True, repo=False)
    report = compare_dirs(cfg.rpms_dir, second_cfg.rpms_dir)
    src = compare_dirs(cfg.srpms_dir, second_cfg.srpms_dir)
    report.identical += src.identical
    report.different.update(src.different)
    report.missing += src.missing
    return report


# --------------------------------------------------------------------------------------------
# The mock root config, read the way mock reads it


# What mock's setup_default_config_opts() pre-populates that root configs write into.
MOCK_DEFAULTS = {
    "macros": {"%_topdir": "/builddir/build", "%_rpmfilename": "%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm"},
    "environment": {"TERM": "vt100", "SHELL": "/bin/bash", "HOME": "/builddir", "HOSTNAME": "mock",
                    "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"},
    "plugin_conf": {},
    "hostname": None,
    "package_manager": "dnf",
    "isolation": None,
    "use_bootstrap": True,
    "use_bootstrap_image": True,
    "rpmbuild_networking": False,
}
_MOCK_INCLUDE = re.compile(r"^\s*include\((.*)\)", re.M)


def _mock_include(path: Path, seen: set[Path]) -> str:
    """mock's config.include(): replace each include('file') line with that file's text, recursively."""
    import ast

    if not path.exists():
        raise IsobuildError(f"mock config include not found: {path}")
    if path in seen:
        return ""
    seen.add(path)
    content = path.read_text()
    for arg in _MOCK_INCLUDE.findall(content):
        sub = Path(ast.literal_eval(arg.strip()))
        sub = sub if sub.is_absolute() else path.parent / sub
        content = _MOCK_INCLUDE.sub(lambda _m: _mock_include(sub, seen).replace("\\", "\\\\"), content, count=1)
    return content


def load_mock_config(path: Path) -> dict:
    """Load a mock root config like mock's update_config_from_file(): textual include(), then exec()
    with `config_opts` (pre-filled with mock's defaults for the keys configs extend) in scope.

    mock itself is not installable here (not in Debian 12; the PyPI name `mock` is an unrelated
    library), so this mirrors mockbuild/config.py rather than importing it.
    """
    import copy

    path = Path(path)
    if not path.is_file():
        raise IsobuildError(f"mock config not found: {path}", hint="default: rpmspecs/mock/fedora-13-x86_64-an.cfg")
    content = _mock_include(path.resolve(), set())
    config_opts = copy.deepcopy(MOCK_DEFAULTS)
    config_opts["config_path"] = str(path.parent)
    try:
        exec(compile(content, str(path), "exec"), {"config_opts": config_opts})  # noqa: S102 - mock's format
    except Exception as err:
        line = getattr(err, "lineno", None)
        raise IsobuildError(f"{path}{':' + str(line) if line else ''}: mock config error: {err}") from None
    if "root" not in config_opts:
        raise IsobuildError(f"{path}: config_opts['root'] must be set (mock refuses a config without it)")
    return config_opts


def check_mock_config(path: Path) -> list[Problem]:
    """Problems that would make the F13 chain build wrong or unreproducible; empty when fine."""
    import configparser

    opts = load_mock_config(path)
    f = str(path)
    problems: list[Problem] = []

    def need(cond: bool, key: str, reason: str, hint: str | None = None) -> None:
        if not cond:
            problems.append(Problem(f, None, key, reason, hint))

    need(opts.get("target_arch") == "x86_64", "target_arch", f"is {opts.get('target_arch')!r}, the dom0 kernel is x86_64 only")
    need(opts.get("package_manager") == "yum", "package_manager", "Fedora 13 has yum 3.2 and rpm 4.8: the root must be made with yum")
    need(bool(opts.get("hostname")), "hostname", "unset: rpm 4.8 stamps the build host's name into every package",
         "config_opts['hostname'] = 'build.an-cluster'")
    need(opts.get("hostname") in (None, BUILDHOST), "hostname", f"must be {BUILDHOST} (normalised COOKIE uses it)")
    need(opts["environment"].get("LANG") == "C", "environment.LANG", "F13's glibc has no C.UTF-8 locale", "set LANG=C")
    need(opts["macros"].get("%dist") == ".fc13", "macros.%dist", "must be .fc13")
    need(not opts.get("rpmbuild_networking"), "rpmbuild_networking", "builds must not reach the network")
    yum_conf = opts.get("yum.conf") or opts.get("dnf.conf")
    if not yum_conf:
        problems.append(Problem(f, None, "yum.conf", "missing"))
        return problems
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(yum_conf)
    except configparser.Error as err:
        problems.append(Problem(f, None, "yum.conf", f"does not parse: {err}"))
        return problems
    repos = [s for s in parser.sections() if s != "main"]
    need(bool(repos), "yum.conf", "defines no repositories")
    for r in repos:
        sec = parser[r]
        base = sec.get("baseurl", "")
        need("mirrorlist" not in sec, f"yum.conf[{r}]", "uses a mirrorlist: Fedora 13 has none any more", "use the archive baseurl")
        need(base.startswith("https://archives.fedoraproject.org/") or base.startswith("file://"),
             f"yum.conf[{r}].baseurl", f"{base!r} is not the Fedora archive")
        excl = sec.get("exclude", "").split()
        need("kernel-devel" in excl, f"yum.conf[{r}].exclude",
             "must exclude kernel-devel so drbd-km builds against the dom0 kernel-devel only")
    return problems


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


def rpm_files(where: Path) -> list[Path]:
    where = Path(where)
    if where.is_file():
        return [where]
    if not where.is_dir():
        raise IsobuildError(f"no such RPM file or directory: {where}", hint="run `invoke rpms` first")
    return sorted(where.glob("*.rpm"))
