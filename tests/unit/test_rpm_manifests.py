"""%files against what the upstream install rules lay down (rpmspecs/<pkg>/install.manifest), both
directions, from the spec alone: the check-files failures rpmbuild would hit in an F13 mock root."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import REPO, need_tool
from isobuild.errors import ProblemsError
from isobuild.rpmfiles import MANIFEST_NAME, check_files, check_install_section, parse_manifest, spec_files
from isobuild.rpmplan import F13_DEFINES

SPECS = REPO / "rpmspecs"
DOM0 = "2.6.32.23-170.dom0_an1.fc13.x86_64"
SUBST = {"kver": DOM0}
# shell variables kernel.spec's %install uses for the paths it writes
SHELL_VARS = {"KernelVer": DOM0, "DevelDir": f"/usr/src/kernels/{DOM0}"}
WITH_MANIFEST = sorted(p.parent.name for p in SPECS.glob(f"*/{MANIFEST_NAME}"))


def parsed(spec: Path, *extra: str) -> str:
    tool = need_tool("rpmspec")["rpmspec"]
    defines = [a for k, v in F13_DEFINES.items() for a in ("--define", f"{k} {v}")]
    proc = subprocess.run([tool, "-P", *defines, *extra, str(spec)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def problems_of(spec: Path, manifest: Path) -> list[str]:
    text = parsed(spec)
    entries = parse_manifest(manifest, SUBST)
    return check_files(spec_files(text), entries) + check_install_section(text, entries, SHELL_VARS)


def test_every_upstream_spec_has_a_manifest():
    # an-cluster-firstboot packages our own overlay; every other spec builds an upstream tree
    assert WITH_MANIFEST == ["drbd", "drbd-km", "fence-na", "kernel", "xen"]


@pytest.mark.parametrize("name", WITH_MANIFEST)
def test_files_match_the_install_both_ways(name):
    assert problems_of(SPECS / name / f"{name}.spec", SPECS / name / MANIFEST_NAME) == []


@pytest.mark.parametrize("name", WITH_MANIFEST)
def test_every_manifest_entry_names_its_origin(name):
    for e in parse_manifest(SPECS / name / MANIFEST_NAME, SUBST):
        assert ":" in e.origin or "%install" in e.origin or "release tarball" in e.origin, (name, e)


def test_xen_spec_of_4_1_fails_against_the_4_0_1_install(tmp_path):
    """The old spec (xencommons, no sysconfig/xend, the wrong dump dir, missing tools and man
    pages, udev links in rules.d) is what rpmbuild's check-files would have stopped on."""
    spec = (SPECS / "xen" / "xen.spec").read_text()
    old = spec.replace("%config(noreplace) %{_sysconfdir}/sysconfig/xend\n", "%{_initrddir}/xencommons\n")
    old = old.replace("%{_bindir}/xen-detect\n", "").replace("%{_mandir}/man1/xentop.1*\n", "")
    old = old.replace("%dir %{_localstatedir}/xen/dump\n", "%dir %{_localstatedir}/lib/%{name}/dump\n")
    (tmp_path / "xen.spec").write_text(old)
    problems = problems_of(tmp_path / "xen.spec", SPECS / "xen" / MANIFEST_NAME)
    assert "%files lists /etc/rc.d/init.d/xencommons, which the install does not create" in problems
    assert "%files lists %dir /var/lib/xen/dump, which the install does not create" in problems
    assert any(p.startswith("/etc/sysconfig/xend (tools/hotplug/Linux/Makefile:67) is installed") for p in problems)
    assert any(p.startswith("/usr/bin/xen-detect ") for p in problems)
    assert any(p.startswith("/usr/share/man/man1/xentop.1.gz ") for p in problems)


def test_xen_udev_rules_must_be_moved_not_linked(tmp_path):
    spec = (SPECS / "xen" / "xen.spec").read_text()
    start = spec.index("rm -f %{buildroot}%{_sysconfdir}/udev/rules.d/xen-backend.rules")
    end = spec.index("\n", spec.index("mv %{buildroot}%{_sysconfdir}/udev/xen-backend.rules")) + 1
    (tmp_path / "xen.spec").write_text(spec[:start] + spec[end:])
    problems = problems_of(tmp_path / "xen.spec", SPECS / "xen" / MANIFEST_NAME)
    assert any("-/etc/udev/rules.d/xen-backend.rules" in p and "not touched by %install" in p for p in problems)


def test_drbd_rgmanager_files_are_not_installed(tmp_path):
    spec = (SPECS / "drbd" / "drbd.spec").read_text()
    spec = spec.replace("%files bash-completion\n", "%files bash-completion\n%{_datadir}/cluster/drbd.sh\n")
    (tmp_path / "drbd.spec").write_text(spec)
    problems = problems_of(tmp_path / "drbd.spec", SPECS / "drbd" / MANIFEST_NAME)
    assert problems == ["%files lists /usr/share/cluster/drbd.sh, which the install does not create"]


def test_a_glob_that_takes_another_switchs_scripts_is_caught(tmp_path):
    """`/usr/lib/drbd/*.sh` matched crm-fence-peer.sh when configure defaulted pacemaker on."""
    manifest = (SPECS / "drbd" / MANIFEST_NAME).read_text()
    manifest += "/usr/lib/drbd/crm-fence-peer.sh  scripts/Makefile.in:107 (with pacemaker)\n"
    (tmp_path / MANIFEST_NAME).write_text(manifest)
    problems = problems_of(SPECS / "drbd" / "drbd.spec", tmp_path / MANIFEST_NAME)
    assert problems == ["/usr/lib/drbd/crm-fence-peer.sh (scripts/Makefile.in:107 (with pacemaker)) is installed but in no %files"]


def test_trees_globs_man_pages_and_removals(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text(
        "/usr/lib/x/**          a/Makefile:1\n"
        "/usr/share/man/man1/x.1 a/Makefile:2\n"
        "/usr/bin/x-*           a/Makefile:3\n"
        "-/usr/bin/x-debug      a/Makefile:3\n"
        "/var/lib/x/            a/Makefile:4\n")
    entries = parse_manifest(tmp_path / MANIFEST_NAME)
    ok = spec_files("%files\n/usr/lib/x\n%{_mandir}/man1/x.1*\n/usr/bin/x-*\n%dir /var/lib/x\n".replace(
        "%{_mandir}", "/usr/share/man"))
    assert check_files(ok, entries) == []
    missing = spec_files("%files\n%dir /var/lib/x\n%dir /var/lib/y\n/usr/share/man/man1/x.1\n")
    assert check_files(missing, entries) == [
        "%files lists %dir /var/lib/y, which the install does not create",
        "%files lists /usr/share/man/man1/x.1, which the install does not create",  # brp-compress made x.1.gz
        "/usr/lib/x/** (a/Makefile:1) is installed but in no %files",
        "/usr/share/man/man1/x.1.gz (a/Makefile:2) is installed but in no %files",
        "/usr/bin/x-* (a/Makefile:3) is installed but in no %files",
    ]
    assert check_install_section("%install\nrm -f /BUILDROOT/x-1/usr/bin/x-debug\n", entries) == []
    assert check_install_section("%install\nmake install\n", entries) == [
        "-/usr/bin/x-debug (install.manifest:4) is not touched by %install"]


def test_bad_manifest_lines_are_located(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text("# c\n/usr/bin/x\nusr/bin/y a:1\n")
    with pytest.raises(ProblemsError) as exc:
        parse_manifest(tmp_path / MANIFEST_NAME)
    text = str(exc.value)
    assert f"{tmp_path / MANIFEST_NAME}:2: /usr/bin/x: no origin" in text
    assert f"{tmp_path / MANIFEST_NAME}:3: usr/bin/y: not an absolute path" in text
