"""The definition errors as a user sees them: `invoke check/render` on a bad definition exits 2, prints
every problem with file:line: dotted.path, leaks no secret, and writes nothing."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def bad_def(tmp_path):
    shutil.copytree(REPO / "examples" / "secrets", tmp_path / "examples" / "secrets")
    text = (REPO / "cluster.yaml").read_text()
    text = text.replace("sn: 192.168.2.72", "sn: 192.168.9.72").replace("journals: 2", "journals: 1")
    text = text.replace("  name: an-cluster ", "  nmae: an-cluster ")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("task", ["check", "render", "validate", "iso"])
def test_bad_definition_fails_cleanly_and_writes_nothing(task, bad_def, tmp_path):
    build = tmp_path / "build"
    args = [task, "--cluster", str(bad_def)] + ([] if task == "check" else ["--build-dir", str(build)])
    proc = invoke(*args)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    lines = bad_def.read_text().splitlines()
    for path, value in (("nodes[1].ip.sn", "192.168.9.72"), ("storage.gfs2.journals", "journals: 1"),
                        ("cluster.nmae", "nmae")):
        (hit,) = [ln for ln in err.splitlines() if f": {path}: " in ln]
        where = hit.strip().split(": ")[0]  # <file>:<line>
        file, line = where.rsplit(":", 1)
        assert file == str(bad_def)
        assert value in lines[int(line) - 1]
    assert "did you mean 'name'?" in err
    assert "Traceback" not in err
    assert not build.exists()
    for secret in ("demo-fence-password-not-secret", "$6$demosalt"):
        assert secret not in proc.stdout + proc.stderr


def test_failed_render_keeps_the_previous_output(bad_def, tmp_path):
    build = tmp_path / "build"
    assert invoke("render", "--build-dir", str(build)).returncode == 0
    before = {p: p.read_bytes() for p in build.rglob("*") if p.is_file()}
    assert invoke("render", "--cluster", str(bad_def), "--build-dir", str(build)).returncode == 2
    after = {p: p.read_bytes() for p in build.rglob("*") if p.is_file()}
    assert before == after


def test_check_warns_once_where_the_storage_network_is_bridged(tmp_path):
    shutil.copytree(REPO / "examples" / "secrets", tmp_path / "examples" / "secrets")
    path = tmp_path / "sn.yaml"
    path.write_text((REPO / "cluster.yaml").read_text().replace("bridges: [bcn, ifn] ", "bridges: [bcn, sn, ifn] "))
    proc = invoke("check", "--cluster", str(path))
    assert proc.returncode == 0, proc.stderr
    line = next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if "bridges:" in ln)
    warned = [ln for ln in proc.stderr.splitlines() if "xen.bridges[1]" in ln]
    assert warned == [f"warning: {path}:{line}: xen.bridges[1]: the storage network is bridged: a xend restart "
                      "takes its NIC down, which drops DRBD (and, with redundant rings, totem ring 1 with it)"]
    assert "use bridges: [bcn, ifn]" in proc.stderr
