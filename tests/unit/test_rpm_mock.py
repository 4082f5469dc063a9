"""The mock backend without mock: the F13 root config read the way mock's loader reads it, and
the exact mock command line for every package of the chain (golden files)."""
from __future__ import annotations

import shlex
from pathlib import Path
import pytest

from conftest import REPO
from isobuild.errors import IsobuildError
from isobuild.mockconfig import check_mock_config, load_mock_config
from isobuild.rpmbackends import mock_argv
from isobuild.rpmplan import CHAIN, MOCK_CONFIG, BuildConfig, plan_package

GOLDEN = REPO / "tests" / "golden" / "rpm"


def test_config_loads_with_mocks_loader_semantics():
    opts = load_mock_config(MOCK_CONFIG)
    assert opts["root"] == "fedora-13-x86_64-an"
    assert opts["package_manager"] == "yum"
    assert opts["hostname"] == "build.an-cluster"
    assert opts["environment"]["LANG"] == "C"
    assert opts["environment"]["SHELL"] == "/bin/bash"  # mock's default kept: the config extends it
    assert opts["macros"]["%dist"] == ".fc13"
    assert "archives.fedoraproject.org/pub/archive/fedora/linux/releases/13/" in opts["yum.conf"]
    assert check_mock_config(MOCK_CONFIG) == []


def test_config_problems_are_named(tmp_path):
    bad = tmp_path / "bad.cfg"
    text = MOCK_CONFIG.read_text()
    text = text.replace("config_opts['environment']['LANG'] = 'C'", "config_opts['environment']['LANG'] = 'C.UTF-8'")
    text = text.replace("config_opts['hostname'] = 'build.an-cluster'\n", "")
    text = text.replace(
        "baseurl=https://archives.fedoraproject.org/pub/archive/fedora/linux/releases/13/Everything/x86_64/os/",
        "mirrorlist=http://mirrors.fedoraproject.org/mirrorlist?repo=fedora-13&arch=x86_64")
    bad.write_text(text)
    problems = {p.path: p.reason for p in check_mock_config(bad)}
    assert "no C.UTF-8" in problems["environment.LANG"]
    assert "unset" in problems["hostname"]
    assert "mirrorlist" in problems["yum.conf[fedora]"]
    assert "not the Fedora archive" in problems["yum.conf[fedora].baseurl"]


def test_include_is_resolved_like_mock(tmp_path):
    (tmp_path / "base.cfg").write_text("config_opts['root'] = 'from-include'\nconfig_opts['macros']['%x'] = '1'\n")
    (tmp_path / "top.cfg").write_text("include('base.cfg')\nconfig_opts['target_arch'] = 'x86_64'\n")
    opts = load_mock_config(tmp_path / "top.cfg")
    assert opts["root"] == "from-include" and opts["macros"]["%x"] == "1" and opts["target_arch"] == "x86_64"


def test_config_errors_are_clear(tmp_path):
    (tmp_path / "noroot.cfg").write_text("config_opts['target_arch'] = 'x86_64'\n")
    with pytest.raises(IsobuildError, match="config_opts\\['root'\\] must be set"):
        load_mock_config(tmp_path / "noroot.cfg")
    (tmp_path / "syntax.cfg").write_text("config_opts['root'] = 'x'\nconfig_opts['macros'][\n")
    with pytest.raises(IsobuildError, match="syntax.cfg:.*mock config error"):
        load_mock_config(tmp_path / "syntax.cfg")
    with pytest.raises(IsobuildError, match="include not found"):
        (tmp_path / "inc.cfg").write_text("include('missing.cfg')\n")
        load_mock_config(tmp_path / "inc.cfg")


@pytest.mark.parametrize("name", CHAIN)
def test_mock_argv_golden(name, tmp_path):
    cfg = BuildConfig(build_dir=tmp_path / "build", backend="mock")
    plan = plan_package(cfg, name)
    srpm = cfg.srpms_dir / f"{name}.src.rpm"
    argv = mock_argv(cfg, plan, srpm, cfg.build_dir / "mock" / name, cfg.build_dir / "mock" / "localrepo")
    text = shlex.join(argv).replace(str(tmp_path), "{TMP}").replace(str(REPO), "{REPO}") + "\n"
    golden = GOLDEN / f"mock-argv-{name}.txt"
    assert text == golden.read_text(), f"mock argv changed for {name}:\n{text}"


def test_drbd_km_argv_pins_the_dom0_kernel(tmp_path):
    cfg = BuildConfig(build_dir=tmp_path, backend="mock")
    argv = mock_argv(cfg, plan_package(cfg, "drbd-km"), tmp_path / "x.src.rpm", tmp_path / "r", tmp_path / "l")
    assert "kernel-devel-2.6.32.23-170.dom0_an1.fc13" == argv[argv.index("--additional-package") + 1]
    defines = [argv[i + 1] for i, a in enumerate(argv) if a == "--define"]
    assert defines == ["kernelversion 2.6.32.23-170.dom0_an1.fc13.x86_64",
                       "kdir /usr/src/kernels/2.6.32.23-170.dom0_an1.fc13.x86_64"]


def test_mock_backend_without_mock_is_a_clear_error(tmp_path, monkeypatch):
    from isobuild.rpmbackends import check_backend_can_build

    cfg = BuildConfig(build_dir=tmp_path, backend="mock")
    plan = plan_package(cfg, "an-cluster-firstboot")
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no mock (it is not in Debian 12 anyway)
    with pytest.raises(IsobuildError, match="required tool not found: mock") as exc:
        check_backend_can_build(cfg, plan)
    assert "not in Debian 12" in exc.value.hint


def test_rpmbuild_argv_golden():
    from isobuild.rpmbackends import rpmbuild_argv

    argv = rpmbuild_argv("--rebuild", Path("/tmp/top"), {"dist": ".fc13", "kernelversion": "2.6.32.23-170.dom0_an1.fc13.x86_64"},
                         Path("/tmp/x.src.rpm"))
    assert argv == [
        "rpmbuild", "--rebuild",
        "--define", "_topdir /tmp/top",
        "--define", "dist .fc13",
        "--define", "kernelversion 2.6.32.23-170.dom0_an1.fc13.x86_64",
        "--define", "_binary_payload w9.gzdio",
        "--define", "_source_payload w9.gzdio",
        "--define", "_binary_filedigest_algorithm 8",
        "--define", "_source_filedigest_algorithm 8",
        "--define", "_buildhost build.an-cluster",
        "--define", "use_source_date_epoch_as_buildtime 1",
        "--define", "clamp_mtime_to_source_date_epoch 1",
        "--define", "source_date_epoch_from_changelog 0",
        "--define", "_build_id_links none",
        "--define", "_smp_mflags -j1",
        "/tmp/x.src.rpm",
    ]
