"""The mock root config (rpmspecs/mock/), read the way mock reads it, and the checks that keep the
Fedora 13 chain correct and reproducible.
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import IsobuildError, Problem
from .rpmplan import BUILDHOST

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
