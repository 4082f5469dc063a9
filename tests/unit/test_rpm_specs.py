"""The real specs under rpmspecs/: parse with Fedora 13's macros, the names they produce, rpmlint,
sources resolved, reproducibility pins consistent. (Building them needs mock + the F13 archive.)"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import REPO, need_tool
from isobuild.errors import IsobuildError
from isobuild.rpmplan import CHAIN, BuildConfig, plan_package

SPECS = REPO / "rpmspecs"
F13 = ["--define", "dist .fc13", "--define", "fedora 13"]
DOM0 = "2.6.32.23-170.dom0_an1.fc13.x86_64"
NEVRA_QF = "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n"


def rpmspec(*args: str) -> str:
    tool = need_tool("rpmspec")["rpmspec"]
    proc = subprocess.run([tool, *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def spec(name: str) -> Path:
    return SPECS / name / f"{name}.spec"


@pytest.mark.parametrize("name", CHAIN)
def test_spec_parses_with_f13_macros(name):
    out = rpmspec("-P", *F13, str(spec(name)))
    assert "%{?dist}" not in out and ".fc13" in out


def test_kernel_packages():
    out = rpmspec("-q", *F13, "--qf", NEVRA_QF, str(spec("kernel"))).split()
    assert out == [
        f"kernel-{DOM0}",
        f"kernel-devel-{DOM0}",
        f"kernel-headers-{DOM0}",
    ]
    provides = rpmspec("-q", *F13, "--provides", str(spec("kernel")))
    assert f"kernel-uname-r = {DOM0}" in provides
    assert f"kernel-devel-uname-r = {DOM0}" in provides


@pytest.mark.parametrize("kver", [DOM0, "2.6.32.21-170.xendom0.fc12.x86_64"])
def test_drbd_km_name_embeds_the_kernel(kver):
    out = rpmspec("-q", *F13, "--define", f"kernelversion {kver}", "--qf", NEVRA_QF, str(spec("drbd-km"))).split()
    krelver = kver.replace("-", "_")
    assert out == ["drbd-km-8.3.7-12.fc13.x86_64", f"drbd-km-{krelver}-8.3.7-12.fc13.x86_64"]
    requires = rpmspec("-q", *F13, "--define", f"kernelversion {kver}", "--requires", str(spec("drbd-km")))
    assert f"kernel-uname-r = {kver}" in requires.splitlines()
    files_prep = rpmspec("-P", *F13, "--define", f"kernelversion {kver}", str(spec("drbd-km")))
    assert f"/lib/modules/{kver}/" in files_prep
    assert f"/usr/src/kernels/{kver}" in files_prep  # kdir follows kernelversion


def test_drbd_km_defaults_to_the_dom0_kernel_not_the_host():
    out = rpmspec("-q", *F13, "--qf", NEVRA_QF, str(spec("drbd-km"))).split()
    assert out[1] == "drbd-km-2.6.32.23_170.dom0_an1.fc13.x86_64-8.3.7-12.fc13.x86_64"


def test_drbd_km_prep_refuses_another_kernel_devel():
    prep = rpmspec("-P", *F13, str(spec("drbd-km")))
    assert 'test "$(KDIR=/usr/src/kernels/' + DOM0 + ' scripts/get_uts_release.sh)" = "' + DOM0 + '"' in prep


def test_xen_and_drbd_packages_have_our_release_tag():
    xen = rpmspec("-q", *F13, "--qf", NEVRA_QF, str(spec("xen"))).split()
    assert "xen-hypervisor-4.0.1-1.an1.fc13.x86_64" in xen
    assert {n.rsplit("-", 2)[0] for n in xen} == {
        "xen", "xen-libs", "xen-runtime", "xen-hypervisor", "xen-doc", "xen-devel", "xen-licenses"}
    files = rpmspec("-P", *F13, str(spec("xen")))
    assert "/boot/xen.gz" in files
    drbd = rpmspec("-q", *F13, "--qf", NEVRA_QF, str(spec("drbd"))).split()
    assert "drbd-utils-8.3.7-1.an1.fc13.x86_64" in drbd and "drbd-xen-8.3.7-1.an1.fc13.x86_64" in drbd


@pytest.mark.parametrize("name", CHAIN)
def test_rpmlint_passes_with_accepted_warnings(name):
    tool = need_tool("rpmlint")["rpmlint"]
    proc = subprocess.run([tool, "-c", str(SPECS / "rpmlint.toml"), str(spec(name))], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 errors, 0 warnings" in proc.stdout


@pytest.mark.parametrize("name", CHAIN)
def test_every_source_resolves_and_epoch_matches_changelog(name, tmp_path):
    plan = plan_package(BuildConfig(build_dir=tmp_path, backend="mock"), name)
    # every SourceN/PatchN is either next to the spec, locked, or generated
    assert set(plan.local) | set(plan.locked) | set(plan.generated)
    assert plan.inputs["spec"] and plan.inputs["mock-config"]
    assert plan.epoch > 1262304000  # a 2010 changelog date, checked against an_source_date_epoch


def test_reproducibility_shims_are_one_shared_source():
    assert [p.parent.name for p in SPECS.glob("*/an-repro-shims.sh")] == ["common"], "keep one copy, in common/"
    users = sorted(p.parent.name for p in SPECS.glob("*/*.spec") if "an-repro-shims.sh" in p.read_text())
    assert users == ["drbd", "drbd-km", "kernel", "xen"]


def test_reproducibility_shims_pin_time_and_gzip(tmp_path):
    shims = tmp_path / "bin"
    subprocess.run(["sh", str(SPECS / "common" / "an-repro-shims.sh"), "1286280000", str(shims)], check=True)
    env = {"PATH": f"{shims}:/usr/bin:/bin"}
    out = subprocess.run(["sh", "-c", "date +%s; date -d @0 +%s; hostname; whoami; echo x | gzip | od -An -tx1 -N8"],
                         capture_output=True, text=True, env=env, check=True).stdout.split("\n")
    assert out[0] == "1286280000" and out[1] == "0"
    assert out[2:4] == ["build.an-cluster", "mockbuild"]
    assert out[4].split()[4:8] == ["00", "00", "00", "00"]  # gzip header mtime is zero


def test_changelog_epoch_mismatch_is_a_clear_error(tmp_path):
    d = tmp_path / "specs" / "an-cluster-firstboot"
    d.mkdir(parents=True)
    text = spec("an-cluster-firstboot").read_text().replace(
        "%global an_source_date_epoch 1286884800", "%global an_source_date_epoch 1286800000")
    (d / "an-cluster-firstboot.spec").write_text(text)
    cfg = BuildConfig(build_dir=tmp_path / "b", backend="rpmbuild", specs_dir=tmp_path / "specs", chain=("an-cluster-firstboot",))
    with pytest.raises(IsobuildError, match="an_source_date_epoch is 1286800000 but the newest %changelog entry is 1286884800"):
        plan_package(cfg, "an-cluster-firstboot")


def test_spec_that_does_not_parse_is_a_clear_error(tmp_path):
    d = tmp_path / "specs" / "broken"
    d.mkdir(parents=True)
    (d / "broken.spec").write_text("Name: broken\nVersion: 1\nRelease: 1\n%if 1\nSummary: x\n")
    cfg = BuildConfig(build_dir=tmp_path / "b", backend="rpmbuild", specs_dir=tmp_path / "specs", chain=("broken",))
    with pytest.raises(IsobuildError) as exc:
        plan_package(cfg, "broken")
    assert "does not parse with Fedora 13 macros" in str(exc.value)
    assert "broken.spec" in str(exc.value)


def test_unresolved_source_names_the_file_and_where_to_put_it(tmp_path):
    d = tmp_path / "specs" / "lonely"
    d.mkdir(parents=True)
    (d / "lonely.spec").write_text(
        "Name: lonely\nVersion: 1\nRelease: 1\nSummary: x\nLicense: MIT\nBuildArch: noarch\n"
        "Source0: https://example.invalid/lonely-1.tar.gz\nPatch0: fix.patch\n%description\nx\n%files\n"
        "%changelog\n* Fri Jan 01 2010 A <a@b.invalid> - 1-1\n- x\n")
    cfg = BuildConfig(build_dir=tmp_path / "b", backend="rpmbuild", specs_dir=tmp_path / "specs", chain=("lonely",))
    with pytest.raises(IsobuildError) as exc:
        plan_package(cfg, "lonely")
    text = str(exc.value)
    assert "lonely-1.tar.gz" in text and "fix.patch" in text and "2 problems" in text
    assert "sources.lock" in text


def test_shell_sources_pass_shellcheck():
    tool = need_tool("shellcheck")["shellcheck"]
    files = [SPECS / "common" / "an-repro-shims.sh", SPECS / "xen" / "xen.modules"]
    proc = subprocess.run([tool, "-s", "sh", *map(str, files)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
