"""Opt-in: the specs' %prep, and DRBD's userland build and install, run against the real upstream
tarballs when they are in the source cache (`invoke sources` puts them there, verified against
sources.lock). Without them each test is skipped with the missing files named; CI has an empty
cache, so CI does not exercise these (README, "RPMs")."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import need_tool
from isobuild.errors import ProblemsError
from isobuild.rpmfiles import Entry, check_files, installed_entries, parse_manifest, spec_files
from isobuild.rpmbackends import host_env
from isobuild.rpmplan import CHAIN, FIRSTBOOT, BuildConfig, plan_package
from isobuild.sources import default_cache_dir, fetch_sources

UPSTREAM = [n for n in CHAIN if n != FIRSTBOOT]


def staged_topdir(name: str, tmp_path: Path):
    """An rpmbuild _topdir with the spec and every source, or a skip naming what is missing."""
    cfg = BuildConfig(build_dir=tmp_path / "build", backend="rpmbuild")
    plan = plan_package(cfg, name)
    cache = default_cache_dir()
    if not cache.is_dir():
        pytest.skip(f"{name}: no source cache at {cache}, so its %prep is not exercised here; `invoke sources` makes it")
    try:
        cached = fetch_sources(plan.locked.values(), cache, download=False)
    except ProblemsError as err:
        pytest.skip(f"{name}: upstream sources not in the source cache ({cache}), "
                    f"so its %prep is not exercised here; `invoke sources` fetches them.\n{err}")
    top = tmp_path / "top"
    (top / "SOURCES").mkdir(parents=True)
    for src, path in plan.local.items():
        shutil.copy2(path, top / "SOURCES" / src)
    for path in cached.present:
        os.symlink(path.resolve(), top / "SOURCES" / path.name)
    return plan, top


def rpmbuild(plan, top: Path, mode: str, *extra: str) -> subprocess.CompletedProcess:
    tool = need_tool("rpmbuild")["rpmbuild"]
    defines = [a for k, v in {"_topdir": str(top), **plan.defines}.items() for a in ("--define", f"{k} {v}")]
    return subprocess.run([tool, mode, "--nodeps", *defines, *extra, str(plan.pkg.spec)],
                          capture_output=True, text=True, env={**os.environ, **host_env(plan.epoch)}, timeout=None)


@pytest.mark.parametrize("name", UPSTREAM)
def test_prep_runs_on_the_locked_tarball(name, tmp_path):
    plan, top = staged_topdir(name, tmp_path)
    proc = rpmbuild(plan, top, "-bp")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_drbd_userland_installs_exactly_its_files_and_manifest(tmp_path):
    """configure <our switches> && make && make install DESTDIR=..., then the buildroot against
    %files and against install.manifest, both ways (what check-files would say in mock)."""
    plan, top = staged_topdir("drbd", tmp_path)
    need_tool("gcc", "make", "flex")
    assert buildroot_problems(plan, top) == []


# glibc >= 2.28 moved major()/minor() to <sys/sysmacros.h> and hides struct hsearch_data without
# _GNU_SOURCE; F13's glibc 2.12 needs neither. Host-only, so DRBD 8.3.7's userland compiles here.
HOST_OPTFLAGS = "-O2 -g -D_GNU_SOURCE -include sys/sysmacros.h"


def buildroot_problems(plan, top: Path) -> list[str]:
    proc = rpmbuild(plan, top, "-bi", "--define", f"optflags {HOST_OPTFLAGS}", "--define", "_build_id_links none")
    if proc.returncode != 0:
        return [proc.stdout[-3000:] + proc.stderr[-3000:]]
    (root,) = (top / "BUILDROOT").iterdir()
    # %doc files land in the buildroot with rpm >= 4.14; man pages are gzipped only where brp-compress runs
    paths = ["/" + str(p.relative_to(root)) for p in sorted(root.rglob("*")) if not p.is_dir() or p.is_symlink()]
    paths = [p.removesuffix(".gz") for p in paths if not p.startswith("/usr/share/doc/")]
    dirs = ["/" + str(p.relative_to(root)) for p in sorted(root.rglob("*")) if p.is_dir() and not p.is_symlink()]
    actual = [Entry(p, "", "file", "buildroot", 0) for p in paths] + [Entry(d, "", "dir", "buildroot", 0) for d in dirs]
    parsed = subprocess.run([need_tool("rpmspec")["rpmspec"], "-P",
                             *[a for k, v in plan.defines.items() for a in ("--define", f"{k} {v}")], str(plan.pkg.spec)],
                            capture_output=True, text=True, check=True).stdout
    problems = check_files(spec_files(parsed), actual)
    manifest = {e.path.removesuffix(".gz") for e in installed_entries(parse_manifest(plan.pkg.dir / "install.manifest"))
                if e.kind == "file"}
    problems += [f"installed, not in install.manifest: {p}" for p in sorted(set(paths) - manifest)]
    problems += [f"in install.manifest, not installed: {p}" for p in sorted(manifest - set(paths))]
    return problems
