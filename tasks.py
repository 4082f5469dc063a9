"""invoke tasks: thin wrappers that parse flags, call isobuild.*, and turn IsobuildError into a clean exit.

Defaults come from invoke.yaml (section `isobuild`). Every task takes --cluster and --build-dir.
"""
from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path

import invoke
from invoke import Exit

from isobuild import log
from isobuild.errors import IsobuildError


# One meaning per short flag across every task; any other flag is long only (invoke would otherwise
# pick the first free letter per task: -b was the base for `iso` and the build dir for `pxe`).
SHORT_FLAGS = {"cluster": "c", "build_dir": "b", "force": "f", "quiet": "q", "url": "u", "repo": "r",
               "version": "v", "sign": "s", "dir": "d"}


class _Task(invoke.Task):
    def __init__(self, *args, **kwargs):
        kwargs["auto_shortflags"] = False
        super().__init__(*args, **kwargs)

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, taken_names)
        if name in SHORT_FLAGS:
            opts["names"].append(SHORT_FLAGS[name])
        return opts


task = functools.partial(invoke.task, klass=_Task)


def _cfg(c, key, value):
    """Flag value if given, else invoke.yaml's isobuild.<key>."""
    if value not in (None, ""):
        return value
    return c.config.get("isobuild", {}).get(key)


def clean_errors(fn):
    """Print IsobuildError text (what, where, hint) and exit 2, with no traceback. An OSError a stage
    did not turn into one itself (a full disk, a read-only dir) is reported the same way."""

    @functools.wraps(fn)
    def wrapper(c, *args, **kwargs):
        with _clean_exit(fn.__name__.strip("_").replace("_", "-")):
            return fn(c, *args, **kwargs)

    return wrapper


@contextlib.contextmanager
def _clean_exit(stage):
    """clean_errors for one stage (a task, or a stage of `invoke all`): an OSError names the stage.
    The one place every stage is timed: log.step logs its start, end and duration (debug level)."""
    try:
        with log.step(f"stage {stage}"):
            yield
    except IsobuildError as err:
        print(f"error: {err}", file=sys.stderr)
        raise Exit(code=2) from None
    except OSError as err:
        from isobuild.outputs import os_error

        print(f"error: {os_error(err, stage, kept=False)}", file=sys.stderr)
        raise Exit(code=2) from None


def _build(c, build_dir):
    """The build directory: the flag, else invoke.yaml's isobuild.build_dir, else build/."""
    return Path(_cfg(c, "build_dir", build_dir) or "build")


COMMON_HELP = {
    "cluster": "cluster definition YAML (default: invoke.yaml isobuild.cluster = cluster.yaml)",
    "build_dir": "output directory (default: build)",
    "quiet": "only warnings and errors",
}


# --- definition ------------------------------------------------------------------------------


def _run(c, cluster, build_dir=None):
    """The run a task (or `invoke all`) works in: the definition, loaded once when a stage needs it."""
    from isobuild.pipeline import Run

    return Run(_cfg(c, "cluster", cluster), _build(c, build_dir))


@task(help={"cluster": COMMON_HELP["cluster"]})
@clean_errors
def check(c, cluster=None):
    """Check the cluster definition against every rule; print a summary, write nothing."""
    _check(_run(c, cluster))


def _check(run):
    model = run.model
    nodes = ", ".join(f"{n.fqdn} (nodeid {n.nodeid})" for n in model.nodes)
    print(f"{model.source}: cluster {model.name} is valid: {nodes}; {len(model.vms)} VM(s)")


@task(name="definition-doc")
@clean_errors
def definition_doc(c):
    """Rewrite docs/definition.md (every definition key) from isobuild/model.py and isobuild/definition_doc.py."""
    from isobuild import definition_doc as doc
    from isobuild.paths import DOCS

    path = DOCS / "definition.md"
    print(f"definition-doc: {path} {'rewritten' if doc.write(path) else 'up to date'}")


ALLOW_MISSING_HELP = ("build even when %packages names what the base DVD and the an-cluster repo lack (warns; "
                      "the install then stops at anaconda's Missing Package dialog)")


@task(name="all", help={"cluster": COMMON_HELP["cluster"], "build_dir": COMMON_HELP["build_dir"],
                        "base": "Fedora-13-x86_64-DVD.iso (default: invoke.yaml isobuild.base_iso; none = add-on disc)",
                        "url": "install server URL for the PXE tree (default: invoke.yaml isobuild.pxe_url)",
                        "allow_missing_packages": ALLOW_MISSING_HELP,
                        "quiet": COMMON_HELP["quiet"]})
@clean_errors
def all_(c, cluster=None, build_dir=None, base=None, url=None, allow_missing_packages=False, quiet=False):
    """Every stage in order: check, rpms, render + validate, iso, usb (with a base), runbook, pxe (with a base
    and URL), release (isobuild/pipeline.py holds the order); the definition is loaded once."""
    from isobuild.pipeline import stages_of_all

    run = _run(c, cluster, build_dir)
    base, url = _cfg(c, "base_iso", base), _cfg(c, "pxe_url", url)
    stages = {
        "check": lambda: _check(run),
        "rpms": lambda: _rpms(c, run, quiet=quiet),
        "validate": lambda: _validate(run),
        "iso": lambda: _disc(c, run, "iso", base, allow_missing_packages=allow_missing_packages, quiet=quiet),
        "usb": lambda: _disc(c, run, "usb", base, allow_missing_packages=allow_missing_packages, quiet=quiet),
        "runbook": lambda: _runbook(run, quiet),
        "pxe": lambda: _pxe(run, base, url, allow_missing_packages=allow_missing_packages, quiet=quiet),
        "release": lambda: _release(run, quiet=quiet),
    }
    _run_stages(run, stages, stages_of_all(base, url))


def _run_stages(run, stages, order):
    """`invoke all`'s loop: each stage of `order` (name, why skipped) run by its function in `stages`;
    every record the run logs, each stage's timing included, also goes to BUILD/logs/all.log."""
    from isobuild.pipeline import ALL_LOG

    with log.recording(run.build / ALL_LOG):
        for stage, skipped in order:
            if skipped:
                print(f"{stage}: skipped ({skipped})")
                continue
            with _clean_exit(stage):
                stages[stage]()


# --- rpms: sources, builds, reproducibility, inspection (isobuild/rpms.py, isobuild/sources.py) ---

RPM_HELP = {
    "backend": "mock (default where mock is installed) or rpmbuild (host build: noarch packages only off Fedora 13)",
    "only": "comma-separated package names from the chain kernel,drbd-km,drbd,xen,fence-na,an-cluster-firstboot",
    "kernel": "dom0 kernel version-release drbd-km is built for (default: rpmspecs/kernel's 2.6.32.23-170.dom0_an1.fc13)",
    "cluster_kernel": "take the dom0 kernel from this definition's xen.dom0_kernel",
    "cache": "sources cache dir (default: $AN_SOURCES_CACHE or ~/.cache/an-cluster/sources)",
    "offline": "never download; list what is missing and where to put it",
}


def _rpm_config(c, build_dir=None, backend=None, kernel=None, run=None, cache=None, offline=False):
    """The RPM build settings; `run` (with --cluster): the dom0 kernel of its definition."""
    from isobuild.rpmplan import DEFAULT_KERNEL, MOCK_CONFIG, BuildConfig

    if run is not None and not kernel:
        kernel = run.model.xen.dom0_kernel
    return BuildConfig(
        build_dir=run.build if run is not None else _build(c, build_dir),
        backend=backend or None,
        mock_config=Path(_cfg(c, "mock_config", None) or MOCK_CONFIG),
        sources_cache=Path(cache) if cache else (Path(_cfg(c, "sources_cache", None)) if _cfg(c, "sources_cache", None) else None),
        kernel_version=kernel or DEFAULT_KERNEL,
        download=not offline,
    )


def _only(only):
    return [n.strip() for n in only.split(",") if n.strip()] if only else None


@task(help={"only": RPM_HELP["only"], "cache": RPM_HELP["cache"], "offline": RPM_HELP["offline"]})
@clean_errors
def sources(c, only=None, cache=None, offline=False):
    """Download every locked upstream source into the cache and verify it (sha256; md5/sha1 flagged)."""
    from isobuild.rpmplan import locked_sources
    from isobuild.sources import fetch_sources

    cfg = _rpm_config(c, cache=cache, offline=offline)
    entries = locked_sources(cfg, _only(only))
    res = fetch_sources(entries, cfg.sources_cache, download=not offline)
    for p in res.present:
        print(p)
    print(f"sources: {len(res.present)} verified, {len(res.downloaded)} downloaded, {len(res.weak)} with a weak checksum")


@task(help={"backend": RPM_HELP["backend"], "only": RPM_HELP["only"], "build_dir": COMMON_HELP["build_dir"],
            "force": "rebuild even when nothing changed", "kernel": RPM_HELP["kernel"],
            "cluster": RPM_HELP["cluster_kernel"], "cache": RPM_HELP["cache"], "offline": RPM_HELP["offline"],
            "quiet": COMMON_HELP["quiet"]})
@clean_errors
def rpms(c, backend=None, only=None, build_dir=None, force=False, kernel=None, cluster=None, cache=None,
         offline=False, quiet=False):
    """Build SRPMs then RPMs in chain order (kernel, drbd-km, drbd, xen, an-cluster-firstboot); index BUILD/repo."""
    _rpms(c, _run(c, cluster, build_dir), backend, only, force, kernel, bool(cluster), cache, offline, quiet)


def _rpms(c, run, backend=None, only=None, force=False, kernel=None, cluster_kernel=False, cache=None,
          offline=False, quiet=False):
    from isobuild.rpms import build_chain

    log.set_quiet(quiet)
    cfg = _rpm_config(c, run.build, backend, kernel, run if cluster_kernel else None, cache, offline)
    res = build_chain(cfg, _only(only), force=force)
    for name in res.built:
        print(f"built: {name} ({res.reasons[name]})")
    for name in res.up_to_date:
        print(f"up to date: {name}")
    for name in res.skipped:
        print(f"not built with {cfg.backend} here: {name} (needs mock + the Fedora 13 archive)")
    if res.repo:
        print(f"repo: {res.repo}")


@task(name="verify-rpms",
      help={"backend": RPM_HELP["backend"], "only": RPM_HELP["only"], "build_dir": COMMON_HELP["build_dir"],
            "kernel": RPM_HELP["kernel"], "cache": RPM_HELP["cache"]})
@clean_errors
def verify_rpms(c, backend=None, only=None, build_dir=None, kernel=None, cache=None):
    """Rebuild into BUILD/verify and compare every package's header fields and payload; name what differs."""
    from isobuild.rpms import verify_rebuild

    cfg = _rpm_config(c, build_dir, backend, kernel, None, cache)
    report = verify_rebuild(cfg, _only(only))
    for name in report.identical:
        print(f"identical: {name}")
    for name, diffs in report.different.items():
        print(f"DIFFERS: {name}")
        for d in diffs:
            print(f"  {d}")
    for name in report.missing:
        print(f"only in one build: {name}")
    if not report.ok:
        raise IsobuildError(f"verify-rpms: {len(report.different)} package(s) differ, {len(report.missing)} missing",
                            hint="see the fields named above; docs/rpms.md lists the known sources of drift")
    print(f"verify-rpms: {len(report.identical)} package(s) rebuilt byte-for-byte identical in content and header")


@task(name="rpm-info", help={"build_dir": COMMON_HELP["build_dir"], "path": "an RPM file or a directory (default: BUILD/rpms)",
                             "files": "list every file of each package"})
@clean_errors
def rpm_info(c, build_dir=None, path=None, files=False):
    """NEVRA, payload compressor, requires/provides (and files) of each built RPM; checks drbd-km's kernel."""
    from isobuild.rpminspect import check_drbd_km, rpm48_problems, rpm_files, rpm_info as read_info

    where = Path(path) if path else _build(c, build_dir) / "rpms"
    problems = []
    for p in rpm_files(where):
        info = read_info(p)
        print(f"{info.nevra}  payload={info.payload_compressor}  buildhost={info.buildhost}  buildtime={info.buildtime}")
        print("  requires: " + ", ".join(info.requires))
        print("  provides: " + ", ".join(info.provides))
        print(f"  files: {len(info.files)}")
        if files:
            for f in info.files:
                print(f"    {f}")
        problems += check_drbd_km(info) + [f"{p.name}: {x}" for x in rpm48_problems(p)]
    for pr in problems:
        print(f"PROBLEM: {pr}")
    if problems:
        raise IsobuildError(f"rpm-info: {len(problems)} problem(s) found")


# --- render / validate (isobuild/render.py, isobuild/validate.py) ----------------------------


@task(help={"cluster": COMMON_HELP["cluster"], "build_dir": COMMON_HELP["build_dir"],
            "force": "re-render even when the inputs did not change"})
@clean_errors
def render(c, cluster=None, build_dir=None, force=False):
    """Render the kickstarts and every per-node file into BUILD/{kickstart,nodes}, plus BUILD/model.json."""
    out = _run(c, cluster, build_dir).render(force=force)
    if out.up_to_date:
        print(f"render: up to date ({out.build_dir})")
        return
    for p in out.files:
        print(p)


@task(help={"cluster": COMMON_HELP["cluster"], "build_dir": COMMON_HELP["build_dir"]})
@clean_errors
def validate(c, cluster=None, build_dir=None):
    """Render (if needed), then check every rendered file with the real tool for it; report all problems."""
    _validate(_run(c, cluster, build_dir))


def _validate(run):
    out, checked = run.validate()
    tools = sorted({t for v in checked.values() for t in v.split(", ")})
    print(f"validate: {len(checked)} files in {out.build_dir} passed {', '.join(tools)}")


# --- iso: the install DVD or the add-on disc (isobuild/iso.py) -------------------------------

ISO_HELP = {
    "cluster": COMMON_HELP["cluster"],
    "build_dir": COMMON_HELP["build_dir"],
    "base": "Fedora-13-x86_64-DVD.iso to remaster (default: invoke.yaml isobuild.base_iso; none = add-on disc)",
    "console": "serial console for the node entries, e.g. ttyS0,115200 (default: install.console of the definition)",
    "force": "rebuild even when nothing changed",
    "allow_missing_packages": ALLOW_MISSING_HELP,
    "quiet": COMMON_HELP["quiet"],
}


@task(help=ISO_HELP)
@clean_errors
def iso(c, cluster=None, base=None, build_dir=None, console=None, force=False, allow_missing_packages=False,
        quiet=False):
    """Build BUILD/out/<cluster>.iso from the Fedora 13 DVD (or <cluster>-addon.iso without a base)."""
    _disc(c, _run(c, cluster, build_dir), "iso", base, console, force, allow_missing_packages, quiet)


@task(help=ISO_HELP)
@clean_errors
def usb(c, cluster=None, base=None, build_dir=None, console=None, force=False, allow_missing_packages=False,
        quiet=False):
    """Build BUILD/out/<cluster>-usb.img (a disk image to dd onto a USB stick) from the DVD `invoke iso` builds."""
    _disc(c, _run(c, cluster, build_dir), "usb", base, console, force, allow_missing_packages, quiet)


def _disc(c, run, kind, base, console=None, force=False, allow_missing_packages=False, quiet=False):
    """`iso` and `usb`: build the disc of that kind (isobuild.pipeline.build_disc) and print its line."""
    from isobuild.pipeline import build_disc

    log.set_quiet(quiet)
    res = build_disc(run, kind, _cfg(c, "base_iso", base), _cfg(c, "console", console), force=force,
                     allow_missing_packages=allow_missing_packages)
    if kind == "iso":
        print(f"iso: {res.iso} {'up to date' if not res.built else 'built'} (sha256 {res.sha256})")
    else:
        print(f"usb: {res.image} {'built' if res.built else 'up to date'} (FAT32 label {res.label}, "
              f"sha256 {res.sha256}); write it with: dd if={res.image} of=/dev/sdX bs=4M conv=fsync")


@task(name="verify-repro", help={k: ISO_HELP[k] for k in ("cluster", "base", "build_dir", "console")})
@clean_errors
def verify_repro(c, cluster=None, base=None, build_dir=None, console=None):
    """Render and build the disc twice into fresh dirs, the second under another umask, time zone and
    locale; identical, or name the first differing offset and structure."""
    from isobuild.pipeline import verify_repro as check_twice

    res = check_twice(_run(c, cluster, build_dir), _cfg(c, "base_iso", base), _cfg(c, "console", console))
    print(f"verify-repro: two builds are byte-identical (sha256 {res.sha256})")


@task(name="bench-iso", help={"size": "base sizes to test, comma-separated, e.g. 2G,4G or 300M (default 2G,4G)",
                              "workdir": "scratch dir for the images (default: bench/out)"})
@clean_errors
def bench_iso(c, size="2G,4G", workdir=None):
    """Time and peak RSS: floor (cp, md5sum), mkksiso's xorriso+implantisomd5, and our remaster."""
    from bench.bench_iso import main as bench_main

    argv = ["--size", size] + (["--workdir", workdir] if workdir else [])
    bench_main(argv)


# --- pxe / serve: network installs (isobuild/pxe.py, isobuild/serve.py) ----------------------

PXE_HELP = {
    "cluster": COMMON_HELP["cluster"],
    "build_dir": COMMON_HELP["build_dir"],
    "base": "the Fedora 13 DVD image or a directory with its tree (default: invoke.yaml isobuild.base_iso)",
    "url": "base URL the nodes reach `invoke serve` (or your web server) at, e.g. http://192.168.1.10:8080 "
           "(default: invoke.yaml isobuild.pxe_url)",
    "repo": "the an-cluster yum repo (default: BUILD/repo, else an index of BUILD/rpms)",
    "force": "rebuild even when nothing changed",
    "allow_missing_packages": ALLOW_MISSING_HELP,
    "quiet": COMMON_HELP["quiet"],
}


@task(help=PXE_HELP)
@clean_errors
def pxe(c, cluster=None, build_dir=None, base=None, url=None, repo=None, force=False, allow_missing_packages=False,
        quiet=False):
    """Write BUILD/pxe: TFTP tree (pxelinux, per-MAC menus), HTTP tree (kickstarts, repo), dnsmasq + Cobbler data."""
    _pxe(_run(c, cluster, build_dir), _cfg(c, "base_iso", base), _cfg(c, "pxe_url", url), repo, force,
         allow_missing_packages, quiet)


def _pxe(run, base, url, repo=None, force=False, allow_missing_packages=False, quiet=False):
    from isobuild.pipeline import build_pxe

    log.set_quiet(quiet)
    res = build_pxe(run, base, url, repo, force=force, allow_missing_packages=allow_missing_packages)
    print(f"pxe: {res.pxe_dir} {'built (' + res.reason + ')' if res.built else 'up to date'} "
          f"(TFTP root tftp/, HTTP root http/ for {res.url}); "
          f"per-MAC menus: {', '.join(f'{k} {v}' for k, v in res.mac_files.items()) or 'none'}")


@task(help={"build_dir": COMMON_HELP["build_dir"],
            "bind": "address to listen on (default 127.0.0.1: loopback only; give the BCN address for real installs)",
            "port": "TCP port (default 8080)"})
@clean_errors
def serve(c, build_dir=None, bind="127.0.0.1", port=8080):
    """Serve BUILD/pxe/http read-only (private/<node>/ only to that node), until Ctrl-C or SIGTERM."""
    from isobuild.serve import serve as do_serve

    build = _build(c, build_dir)
    do_serve(build / "pxe", bind, int(port))


@task(help={"cluster": COMMON_HELP["cluster"], "build_dir": COMMON_HELP["build_dir"],
            "api": "Cobbler XML-RPC URL (default: $COBBLER_API, else invoke.yaml isobuild.cobbler_api, "
                   "else http://127.0.0.1/cobbler_api)",
            "user": "Cobbler user (default: $COBBLER_USER, else cobbler); the password comes from $COBBLER_PASSWORD",
            "distro_dir": "directory on the Cobbler server with the F13 vmlinuz + initrd.img for the shared distro "
                          "(default: BUILD/pxe/tftp/<release>); used only when the distro is created",
            "no_sync": "do not run `cobbler sync` after a change",
            "quiet": COMMON_HELP["quiet"]})
@clean_errors
def cobbler(c, cluster=None, build_dir=None, api=None, user=None, distro_dir=None, no_sync=False, quiet=False):
    """Register the cluster (distro, profile, one system per node) with Cobbler; run `invoke pxe` first."""
    import os

    from isobuild.cobbler import DEFAULT_API, register

    log.set_quiet(quiet)
    password = os.environ.get("COBBLER_PASSWORD")
    if not password:
        raise IsobuildError("no Cobbler password", hint="export COBBLER_PASSWORD (never on the command line)")
    run = _run(c, cluster, build_dir)
    res = register(run.model, run.build,
                   api_url=_cfg(c, "cobbler_api", api or os.environ.get("COBBLER_API")) or DEFAULT_API,
                   user=user or os.environ.get("COBBLER_USER") or "cobbler", password=password,
                   distro_dir=Path(distro_dir) if distro_dir else None, sync=not no_sync)
    for line in res.changes:
        print(f"cobbler: {line}")
    print(f"cobbler: {len(res.changes)} changed, {len(res.unchanged)} unchanged, {len(res.stale)} not in the "
          f"definition (left alone){'; synced' if res.synced else ''}")


# --- release / verify-release (isobuild/release.py) ------------------------------------------


@task(help={"cluster": COMMON_HELP["cluster"], "build_dir": COMMON_HELP["build_dir"],
            "version": "release version (default: <config_version>.<git commit>[.dirty])",
            "sign": "GPG key (id, fingerprint or user id) for detached ASCII-armoured signatures",
            "include_secrets": "keep the root password hash in the released kickstarts",
            "iso": "the ISO to release (default: every *.iso in BUILD/out)",
            "quiet": COMMON_HELP["quiet"]})
@clean_errors
def release(c, cluster=None, build_dir=None, version=None, sign=None, include_secrets=False, iso=None, quiet=False):
    """Collect BUILD/release/<cluster>-<version>/: ISO, RPMs, SRPMs, kickstarts, SHA256SUMS, manifest.json."""
    _release(_run(c, cluster, build_dir), version, sign, include_secrets, iso, quiet)


def _release(run, version=None, sign=None, include_secrets=False, iso=None, quiet=False):
    from isobuild.pipeline import build_release

    log.set_quiet(quiet)
    res = build_release(run, version=version, sign_key=sign, include_secrets=include_secrets,
                        iso=Path(iso) if iso else None)
    print(f"release: {res.path} ({res.artifacts} artifacts{', signed by ' + res.signed_by if res.signed_by else ''})")


@task(name="verify-release",
      help={"dir": "a release directory (build/release/<cluster>-<version>)"})
@clean_errors
def verify_release(c, dir=None):
    """Check a release: SHA256SUMS, GPG signatures (when present), manifest vs files; name any tampering."""
    from isobuild.release import verify_release as do_verify

    if not dir:
        raise IsobuildError("verify-release: which release?", hint="pass its directory: invoke verify-release "
                            "--dir build/release/<cluster>-<version>")
    manifest = do_verify(Path(dir))
    signed = f", signature by {manifest['signing_key']} good" if manifest.get("signing_key") else ", not signed"
    print(f"verify-release: {dir}: OK ({len(manifest['artifacts'])} artifacts match{signed})")


# --- runbook (isobuild/runbook.py, templates in isobuild/templates/runbook/) -----------------


@task(help={"cluster": COMMON_HELP["cluster"], "build_dir": COMMON_HELP["build_dir"], "quiet": COMMON_HELP["quiet"]})
@clean_errors
def runbook(c, cluster=None, build_dir=None, quiet=False):
    """Write BUILD/runbook/index.html + index.md: tables, storage map, start order, procedures for this cluster."""
    _runbook(_run(c, cluster, build_dir), quiet)


def _runbook(run, quiet=False):
    from isobuild.runbook import build_runbook

    log.set_quiet(quiet)
    out = build_runbook(run.model, run.build)
    print(f"runbook: {out / 'index.html'} and {out / 'index.md'}")
