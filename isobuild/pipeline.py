"""The stages as the tasks run them: one run's definition (loaded once), the render-if-needed entry
(Run.render: the only caller of render.render, which pxe and release take from here), the disc and
PXE inputs, the reproducibility check, and the stage order of `invoke all`.

Kept here, not in tasks.py, so the tasks only parse flags and print, and this logic is testable.
"""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from . import log
from .errors import IsobuildError
from .model import Cluster
from .loader import load_definition
from .render import STAGE as RENDER_STAGE, Rendered, render
from .repo import indexed_locations, make_repo
from .stamps import Stamps, code_digest
from .validate import validate

DEMO_WARNING = ("using DEMO secrets from examples/secrets/ (published in git): never install a real cluster "
                "with them")
NEEDS_BASE = "needs --base Fedora-13-x86_64-DVD.iso"
NEEDS_URL = "--url http://<install server>:<port>"


# Definitions loaded by this process, by path and file identity: one `invoke` command line loads each
# once and warns once, however many tasks it names (`invoke check render`) and stages use it.
_LOADED: dict[tuple, Cluster] = {}


def load(definition: str | Path) -> Cluster:
    """The checked definition, loaded once per process; its warnings are printed when it is loaded."""
    path = Path(definition)
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        key = None  # load_definition reports it
    if key in _LOADED:
        return _LOADED[key]
    model = load_definition(path)
    if model.demo_secrets:
        log.warn(DEMO_WARNING)
    for w in dict.fromkeys(model.warnings):
        log.warn(w)
    if key is not None:
        _LOADED[key] = model
    return model


class Run:
    """One run of the pipeline (`invoke all`, or one task) on a definition and a build dir: the
    definition is loaded once (load()) and its warnings printed once, however many stages use it;
    the render's inputs are hashed once (the first render() of the run), not again by each stage."""

    def __init__(self, definition: str | Path | None, build: Path, model: Cluster | None = None):
        self.definition = definition
        self.build = Path(build)
        self._model = model
        self._rendered: tuple[Rendered, str | None] | None = None  # the run's render, its stamp's digest

    @property
    def model(self) -> Cluster:
        if self._model is None:
            self._model = load(self.definition)
        return self._model

    def at(self, build: Path) -> "Run":
        """The same definition (not loaded again) with another build dir."""
        return Run(self.definition, build, self.model)

    def render(self, *, force: bool = False, validated: bool = False) -> Rendered:
        """The one render-if-needed entry: render (a no-op when nothing changed), and with `validated`
        check the result too (skipped when this exact render already passed)."""
        rendered = self._render(force)
        if validated:
            _validate(self.model, rendered, always=False)
        return rendered

    def validate(self) -> tuple[Rendered, dict[Path, str]]:
        """`invoke validate`: render if needed, then check every file even if this render already passed,
        and record it, so the disc and PXE stages of the same run do not check it again."""
        rendered = self._render(False)
        return rendered, _validate(self.model, rendered, always=True)

    def _render(self, force: bool) -> Rendered:
        """render.render() the first time (and when forced); later, the run's render again, up to date:
        the model does not change within a run, and render is the only writer of its outputs. A render
        stamp that changed since (another render into this build dir) renders again."""
        if self._rendered is not None and not force:
            first, stamp = self._rendered
            if Stamps(self.build).digest(RENDER_STAGE) == stamp:
                return replace(first, kickstarts=dict(first.kickstarts), files=list(first.files), up_to_date=True)
        rendered = render(self.model, self.build, force=force)
        self._rendered = (rendered, Stamps(self.build).digest(RENDER_STAGE))
        return rendered


def _validate(model: Cluster, rendered: Rendered, *, always: bool) -> dict[Path, str]:
    """Validation is pure checking: keyed on the render's stamp (its inputs and outputs) and the validators'
    code. Returns what was checked ({} when this exact render already passed and `always` is off)."""
    build = rendered.build_dir
    stamps = Stamps(build)
    key = {"render": stamps.digest(RENDER_STAGE), "code": code_digest("isobuild.validate")}
    if not always and stamps.check("validated", key).up_to_date:
        return {}
    checked = validate(build, model)
    stamps.save("validated", key)
    return checked


def prepare(model: Cluster, build: Path) -> Rendered:
    """Render the definition (cached) and validate the result (cached): Run.render(validated=True)."""
    return Run(model.source, build, model).render(validated=True)


ALL_LOG = Path("logs") / "all.log"  # in the build dir: every record of an `invoke all` run (0600)


def stages_of_all(base: Path | str | None, url: str | None) -> list[tuple[str, str | None]]:
    """`invoke all`: every stage in order, each with None (run it) or why it is skipped."""
    return [("check", None), ("rpms", None), ("validate", None), ("iso", None),
            ("usb", None if base else NEEDS_BASE), ("runbook", None),
            ("pxe", None if base and url else f"{NEEDS_BASE} and {NEEDS_URL}"), ("release", None)]


def check_node_cman(model: Cluster, build: Path, base: Path | None, repo: Path | None) -> None:
    """Before a disc or PXE tree is written: cluster.conf passes the schema of the cman the nodes will
    really install (validate.check_against_node_cman); say so, or that no cman was at hand."""
    from .validate import check_against_node_cman

    if base is not None and not Path(base).exists():
        return  # the disc/PXE stage reports a missing base with its own hint
    checked = check_against_node_cman(model, build, base, repo)
    if checked:
        log.info(f"cluster.conf: valid for {checked}")
    elif base is not None or repo is not None:
        log.warn("no cman package on the base or in our repo: cluster.conf is checked against the vendored "
                 "schemas only, not the one the nodes will install")


def disc_repo(build: Path) -> Path | None:
    """BUILD/repo (indexed by `invoke rpms`), else an index of BUILD/rpms, else None (an empty repo)."""
    repo = build / "repo"
    if not (repo / "repodata" / "repomd.xml").is_file():
        rpms = build / "rpms"
        if rpms.is_dir() and any(p for p in rpms.glob("*.rpm") if not p.name.endswith(".src.rpm")):
            repo = make_repo([rpms], build / "iso-repo")
        else:
            log.warn("no RPMs in BUILD/repo or BUILD/rpms: the disc gets an empty an-cluster repo and the "
                     "kickstart's an-cluster-firstboot install will fail; run `invoke rpms` first")
            return None
    if not any(Path(loc).name.startswith("an-cluster-firstboot-") for loc in indexed_locations(repo)):
        log.warn(f"{repo} has no an-cluster-firstboot package: the node install will fail; run `invoke rpms`")
    return repo


def disc_inputs(run: Run, base: Path | None, console: str | None, *, allow_missing_packages: bool = False,
                repo_from: Path | None = None):
    """Render + validate (both cached), check cluster.conf against the nodes' cman, then describe the
    disc as explicit IsoInputs (the repo from repo_from's build dir, default the run's)."""
    from .iso import IsoInputs
    from .paths import OVERLAY

    model = run.model
    rendered = run.render(validated=True)
    repo = disc_repo(Path(repo_from) if repo_from else run.build)
    check_node_cman(model, run.build, Path(base) if base else None, repo)
    return IsoInputs(
        cluster=model.name,
        kickstarts=dict(rendered.kickstarts),
        fqdns={n.name: n.fqdn for n in model.nodes},
        out_dir=run.build / "out",
        base=Path(base) if base else None,
        repo_dir=repo,
        nodes_dir=rendered.nodes_dir,
        overlay_dir=OVERLAY,
        console=console or model.install.console,
        extra_digests={"definition": model.digest},
        allow_missing_packages=allow_missing_packages,
    )


def build_disc(run: Run, kind: str, base: Path | None, console: str | None, *, force: bool = False,
               allow_missing_packages: bool = False):
    """`invoke iso` (kind "iso": the DVD, or the add-on disc without a base) or `invoke usb` (kind "usb":
    the stick image, which carries that DVD)."""
    from .iso import build_iso
    from .usb import build_usb

    inputs = disc_inputs(run, base, console, allow_missing_packages=allow_missing_packages)
    if kind == "usb":
        return build_usb(run.model, inputs, run.build, force=force)
    return build_iso(inputs, run.build, force=force)


def verify_repro(run: Run, base: Path | None, console: str | None):
    """Build the disc twice into fresh dirs under BUILD/repro, the second under another umask, time
    zone and locale; the first build's result when they are byte-identical, else an error naming the
    first difference (the dirs are kept to compare)."""
    from .iso import REPRO_ENVIRONMENTS, build_environment, build_iso, describe_difference

    root = run.build / "repro"
    shutil.rmtree(root, ignore_errors=True)
    results = []
    for name, env in zip("ab", REPRO_ENVIRONMENTS):
        with build_environment(**env):
            inputs = disc_inputs(run.at(root / name), base, console, repo_from=run.build)
            results.append(build_iso(inputs, root / name, force=True, base_cache=run.build / ".stamps"))
    verdict = describe_difference(results[0].iso, results[1].iso)
    if verdict != "identical":
        raise IsobuildError(f"verify-repro: the two builds differ: {verdict}",
                            hint=f"compare {results[0].iso} and {results[1].iso} (e.g. cmp -l | head)")
    shutil.rmtree(root, ignore_errors=True)
    return results[0]


def build_pxe(run: Run, base: Path | None, url: str | None, repo: Path | None, *, force: bool = False,
              allow_missing_packages: bool = False):
    """`invoke pxe`: check what it needs (a base, a URL, our repo), render, check cluster.conf against
    the nodes' cman and pxe's inputs (URL, pxelinux, the base's packages) before anything of BUILD/pxe
    is written, then write it."""
    from .pxe import build_pxe as write_pxe, check_inputs

    model = run.model
    if not base:
        raise IsobuildError("no base given", hint="pass --base Fedora-13-x86_64-DVD.iso (or the DVD's tree)")
    if not url:
        raise IsobuildError("no --url given: the kickstarts and menus must name the HTTP server the nodes use",
                            hint="e.g. --url http://192.168.1.10:8080 (an address of this host on the BCN)")
    repo_dir = Path(repo) if repo else disc_repo(run.build)
    if repo_dir is None:
        raise IsobuildError("no an-cluster repo to serve", hint="run `invoke rpms` first, or pass --repo DIR")
    rendered = run.render()
    check_node_cman(model, run.build, Path(base), repo_dir)
    checked = check_inputs(model, base=Path(base), url=url, repo_dir=repo_dir,
                           allow_missing_packages=allow_missing_packages)
    return write_pxe(model, rendered, checked, force=force)


def build_release(run: Run, *, version: str | None = None, sign_key: str | None = None,
                  include_secrets: bool = False, iso: Path | None = None):
    """`invoke release`: check what the release needs (nothing written yet), render (if needed), then
    write BUILD/release/<cluster>-<version>/ with the rendered kickstarts."""
    from .release import build_release as write_release, plan_release

    plan = plan_release(run.model, run.build, version=version, sign_key=sign_key, iso=iso)
    return write_release(run.model, run.render(), plan, include_secrets=include_secrets)
