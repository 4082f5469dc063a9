"""The rpms stage: RPMs from our specs, the chain kernel -> drbd-km -> drbd -> xen -> fence-na -> firstboot
built in order with a content-hash cache per package, every SRPM first, results installed into
build/rpms and build/srpms, then the an-cluster yum repo; and the double build that proves them
reproducible.

Logs in build/logs/rpms/. The parts: rpmplan (what a package is built from), rpmbackends (mock,
rpmbuild), rpmheader (header normalisation), rpminspect (reading and comparing RPMs), mockconfig.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from . import log
from .errors import IsobuildError
from .outputs import atomic_file, write_file
from .repo import make_repo
from .rpmbackends import (
    BuildFailed, build_with_mock, build_with_rpmbuild, check_backend_can_build, fetch_plan_sources, fixed_topdir,
    is_fedora13_host, stage_and_build_srpm,
)
from .rpminspect import VerifyReport, compare_dirs, rpm48_problems
from .rpmplan import DRBD_KM, BuildConfig, Plan, chain_inputs, check_kernel_matches_spec, plan_package, select
from .stamps import Stamps


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
            with atomic_file(d / src.name) as out, open(src, "rb") as fh:
                shutil.copyfileobj(fh, out)
    write_file(_manifest_path(cfg, name), json.dumps(new, indent=1, sort_keys=True) + "\n")
    return new


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


def _select_plans(cfg: BuildConfig, only: Sequence[str] | None, result: ChainResult) -> list[Plan]:
    """Plans of the selected packages (keys chained over the whole chain), minus what cannot be built here."""
    names = select(cfg, only)
    if DRBD_KM in names:
        check_kernel_matches_spec(cfg)
    all_plans = [plan_package(cfg, n) for n in cfg.chain]
    chain_inputs(all_plans)
    plans = [p for p in all_plans if p.pkg.name in names]
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
    return plans


def _outdated(cfg: BuildConfig, plans: list[Plan], stamps: Stamps, force: bool, result: ChainResult) -> list[Plan]:
    """The plans whose stamp does not match (or all, forced); result.reasons says why for each."""
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
    return todo


def _build_srpms(cfg: BuildConfig, todo: list[Plan], cached: dict[str, Path], staging: Path) -> dict[str, Path]:
    """Every SRPM of `todo`, checked for rpm 4.8 and kept in `staging` until its binaries are built."""
    srpms: dict[str, Path] = {}
    for plan in todo:
        name = plan.pkg.name
        with log.step(f"rpms: {name}: SRPM"), fixed_topdir() as top:
            srpm = stage_and_build_srpm(cfg, plan, cached, top, cfg.logs_dir / f"{name}.srpm.log")
            problems = rpm48_problems(srpm)
            if problems:
                raise IsobuildError(f"{srpm.name} would not install with Fedora 13's rpm 4.8: " + "; ".join(problems))
            srpms[name] = staging / name / srpm.name
            srpms[name].parent.mkdir(parents=True)
            shutil.copy2(srpm, srpms[name])
    return srpms


def _build_binaries(cfg: BuildConfig, plan: Plan, srpm: Path, stamps: Stamps, result: ChainResult) -> None:
    """One package's binary RPMs from its SRPM, checked for rpm 4.8, installed and stamped."""
    name = plan.pkg.name
    log.info(f"rpms: building {name} with {cfg.backend} ({result.reasons[name]})")
    log_path = cfg.logs_dir / f"{name}.log"
    with stamps.publishing(_stage(cfg, name), plan.inputs) as pub, \
            log.step(f"rpms: {name}: {cfg.backend}"), fixed_topdir() as top:
        pub.replacing()  # the stamp goes before the build starts: a failed build is never called up to date
        if cfg.backend == "mock":
            rpms = build_with_mock(cfg, plan, srpm, log_path)
        else:
            rpms = build_with_rpmbuild(cfg, plan, srpm, top, log_path)
        if not rpms:
            raise BuildFailed(f"{name}: the build produced no binary RPMs; log: {log_path}")
        bad = {p.name: rpm48_problems(p) for p in rpms}
        bad = {k: v for k, v in bad.items() if v}
        if bad:
            raise IsobuildError(f"{name}: packages Fedora 13's rpm 4.8 could not install: "
                                + "; ".join(f"{k}: {', '.join(v)}" for k, v in bad.items()),
                                hint="check the payload/digest macros in isobuild/rpmplan.py HOST_MACROS")
        # the packages' identity and sha256 (what `invoke release` checks them against)
        for path in _package_files(cfg, _install_results(cfg, name, rpms, srpm)):
            pub.record(path)
    result.built.append(name)


def build_chain(cfg: BuildConfig, only: Sequence[str] | None = None, *, force: bool = False, repo: bool = True) -> ChainResult:
    """Build the selected packages in chain order; stop at the first failure.

    With the rpmbuild backend and no explicit --only, packages it cannot build here are skipped
    with a warning naming them; asking for one explicitly is an error. Everything the stage logs, with
    each step's duration, is also written to build/logs/rpms/chain.log.
    """
    with log.step("rpms", cfg.logs_dir / "chain.log"):
        return _build_chain(cfg, only, force, repo)


def _build_chain(cfg: BuildConfig, only: Sequence[str] | None, force: bool, repo: bool) -> ChainResult:
    result = ChainResult()
    plans = _select_plans(cfg, only, result)
    stamps = Stamps(cfg.build_dir)
    todo = _outdated(cfg, plans, stamps, force, result)
    cached = fetch_plan_sources(cfg, todo)
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    staging = cfg.build_dir / ".srpm-staging"
    shutil.rmtree(staging, ignore_errors=True)
    # Every SRPM first: a broken spec or source fails before hours of compiling.
    srpms = _build_srpms(cfg, todo, cached, staging)
    # Then the binary packages, in chain order; the first failure stops the chain.
    for plan in todo:
        _build_binaries(cfg, plan, srpms[plan.pkg.name], stamps, result)
    shutil.rmtree(staging, ignore_errors=True)
    for plan in plans:
        m = _load_manifest(cfg, plan.pkg.name)
        result.rpms += [cfg.rpms_dir / f for f in m["rpms"]]
        result.srpms += [cfg.srpms_dir / f for f in m["srpms"]]
    if repo and result.rpms:
        revision = max(p.epoch for p in plans)
        result.repo = make_repo([cfg.rpms_dir], cfg.repo_dir, revision=revision, log_path=cfg.logs_dir / "repo.log")
        log.info(f"rpms: repo {result.repo} ({len(list(cfg.rpms_dir.glob('*.rpm')))} packages)")
    if not todo:
        log.info("rpms: nothing to build, every selected package is up to date")
    return result


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

