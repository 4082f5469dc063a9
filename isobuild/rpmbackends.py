"""The two ways a package is built, both from its SRPM so the SRPM is proven self-contained: the SRPM
itself (`rpmbuild -bs` in a fixed _topdir), then `mock --rebuild` in the Fedora 13 root or the host's
`rpmbuild --rebuild` (noarch packages only, unless the host is Fedora 13).
"""
from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Iterable

from .errors import IsobuildError, ProblemsError
from .mockconfig import check_mock_config
from .repo import make_repo
from .rpmheader import normalise_rpm_header
from .rpmplan import BUILDHOST, DRBD_KM, F13_DEFINES, FIRSTBOOT, HOST_MACROS, BuildConfig, Plan, _define_args
from .run import require, stream, tail
from .sources import fetch_sources

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


def stage_and_build_srpm(cfg: BuildConfig, plan: Plan, cached: dict[str, Path], top: Path, log_path: Path) -> Path:
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
    stream(argv, log_path, what=f"{pkg.name}: SRPM", error=BuildFailed, env=host_env(plan.epoch))
    srpms = sorted((top / "SRPMS").glob("*.src.rpm"))
    if len(srpms) != 1:
        raise IsobuildError(f"{pkg.name}: rpmbuild -bs made {len(srpms)} SRPMs, expected 1")
    return srpms[0]


class BuildFailed(IsobuildError):
    pass


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


def build_with_rpmbuild(cfg: BuildConfig, plan: Plan, srpm: Path, top: Path, log_path: Path) -> list[Path]:
    rpmbuild = require("rpmbuild", "rpm")
    defines = {k: v for k, v in plan.defines.items() if k != "fb_version"}
    argv = rpmbuild_argv("--rebuild", top, defines, srpm)
    argv[0] = rpmbuild
    stream(argv, log_path, what=f"{plan.pkg.name}: rpmbuild --rebuild", error=BuildFailed, env=host_env(plan.epoch))
    return sorted((top / "RPMS").glob("*/*.rpm"))


def build_with_mock(cfg: BuildConfig, plan: Plan, srpm: Path, log_path: Path) -> list[Path]:
    mock = require("mock", "mock (Fedora/EPEL; not in Debian 12)")
    problems = check_mock_config(cfg.mock_config)
    if problems:
        raise ProblemsError(f"mock config {cfg.mock_config} is not fit for the Fedora 13 chain", problems)
    localrepo = cfg.build_dir / "mock" / "localrepo"
    make_repo([cfg.rpms_dir] if cfg.rpms_dir.is_dir() else [], localrepo, allow_empty=True,
              log_path=cfg.logs_dir / "localrepo.log")
    resultdir = cfg.build_dir / "mock" / plan.pkg.name
    shutil.rmtree(resultdir, ignore_errors=True)
    resultdir.mkdir(parents=True)
    argv = mock_argv(cfg, plan, srpm, resultdir, localrepo)
    argv[0] = mock
    code = stream(argv, log_path, what=f"{plan.pkg.name}: mock", check=False, env=host_env(plan.epoch))
    if code != 0:  # mock's own logs say more than its output: name the first that has something
        for name in ("build.log", "root.log", "state.log"):
            lp = resultdir / name
            if lp.is_file() and lp.stat().st_size:
                break
        else:
            lp = log_path
        raise BuildFailed(
            f"{plan.pkg.name}: mock failed (exit {code}); log: {lp}\n--- last lines of {lp} ---\n"
            f"{tail(lp.read_text(errors='replace'), 25)}",
            hint=f"full logs in {resultdir}",
        )
    # debuginfo stays in the mock result dir: it is not for the install DVD.
    rpms = sorted(p for p in resultdir.glob("*.rpm") if not p.name.endswith(".src.rpm") and "-debuginfo-" not in p.name)
    for p in rpms:  # rpm 4.8 stamped time() into BUILDTIME/COOKIE: pin them to the changelog date
        normalise_rpm_header(p, plan.epoch)
    return rpms




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

