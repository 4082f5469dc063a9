"""outputs.py + stamps.py: private temps, sweeping only dead runs' leftovers, output identity in stamps."""
from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys

import pytest

from isobuild import outputs
from isobuild.stamps import Stamps


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temps_are_private_until_published(tmp_path):
    target = tmp_path / "out" / "secret.txt"
    seen = {}
    with outputs.atomic_file(target, mode=0o644) as fh:
        tmp = next((tmp_path / "out").glob(".secret.txt.tmp-*"))
        seen["mode"] = stat.S_IMODE(tmp.stat().st_mode)
        assert f".tmp-{os.getpid()}-" in tmp.name
        fh.write(b"x")
    assert seen["mode"] == 0o600
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    with outputs.atomic_dir(tmp_path / "tree", mode=0o750) as d:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "tree").stat().st_mode) == 0o750


def test_sweep_removes_dead_runs_leftovers_only(tmp_path):
    dead, live = _dead_pid(), os.getppid()
    (tmp_path / f".a.iso.tmp-{dead}-x1").write_text("secret")
    (tmp_path / f".a.iso.old-{dead}-x2").mkdir()
    (tmp_path / f".a.iso.tmp-{live}-x3").write_text("live run")
    (tmp_path / f".other.tmp-{dead}-x4").write_text("another stage's")
    (tmp_path / "a.iso").write_text("the output")
    removed = outputs.sweep(tmp_path, ["a.iso"])
    assert sorted(p.name for p in removed) == [f".a.iso.old-{dead}-x2", f".a.iso.tmp-{dead}-x1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".a.iso.tmp-{live}-x3", f".other.tmp-{dead}-x4", "a.iso"])


def test_work_dir_is_private_swept_by_name_and_always_removed(tmp_path):
    build = tmp_path / "build"
    with outputs.work_dir(build, "iso-work") as work:
        assert work.parent == build and work.name.startswith(f".iso-work.tmp-{os.getpid()}-")
        assert stat.S_IMODE(work.stat().st_mode) == 0o700
        (work / "secret").write_text("x")
        assert outputs.sweep(build, ["iso-work"]) == []  # a live run's scratch dir is not swept
    assert not work.exists()
    with pytest.raises(RuntimeError), outputs.work_dir(build, "iso-work") as work:
        raise RuntimeError
    assert list(build.iterdir()) == []


def test_os_error_names_path_and_hint():
    err = outputs.os_error(OSError(errno.ENOSPC, "No space left on device", "/b/out/x.iso"), "iso: cannot build")
    assert str(err).startswith("iso: cannot build: No space left on device: /b/out/x.iso")
    assert "free space" in str(err) and "previous output is unchanged" in str(err)


def test_make_dir_ignores_umask(tmp_path):
    old = os.umask(0o077)
    try:
        outputs.make_dir(tmp_path / "a" / "b")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o755


@pytest.mark.parametrize("damage", ["truncate", "replace", "touch"])
def test_stamp_notices_a_changed_output(tmp_path, damage):
    out = tmp_path / "out" / "x.iso"
    out.parent.mkdir()
    out.write_bytes(b"a" * 4096)
    stamps = Stamps(tmp_path)
    stamps.save("iso", {"code": "1"}, [out])
    assert stamps.check("iso", {"code": "1"}, [out]).up_to_date
    assert stamps.recorded(out)[0] == "iso"
    if damage == "truncate":
        os.truncate(out, 100)
    elif damage == "replace":
        new = tmp_path / "new"
        new.write_bytes(b"b" * 4096)
        st = out.stat()
        os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(new, out)
    else:
        st = out.stat()
        os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    check = stamps.check("iso", {"code": "1"}, [out])
    assert not check.up_to_date
    assert check.reason.startswith("output changed: out/x.iso")


def test_flat_stamp_of_older_versions_still_checks_inputs(tmp_path):
    (tmp_path / ".stamps").mkdir()
    (tmp_path / ".stamps" / "validated.json").write_text('{"render": "abc"}\n')
    stamps = Stamps(tmp_path)
    assert stamps.check("validated", {"render": "abc"}).up_to_date
    assert stamps.check("validated", {"render": "def"}).reason == "input changed: render"
    out = tmp_path / "x.iso"
    out.write_text("built before outputs were recorded")
    assert "records no outputs" in stamps.check("validated", {"render": "abc"}, [out]).reason


def test_verify_repro_builds_its_copies_in_different_environments(tmp_path):
    from isobuild.iso import REPRO_ENVIRONMENTS, build_environment

    a, b = REPRO_ENVIRONMENTS
    assert a["umask"] != b["umask"] and all(a["env"][k] != b["env"][k] for k in ("TZ", "LC_ALL"))
    before = os.umask(0o022)
    os.umask(before)
    with build_environment(**b):
        seen = subprocess.run(["sh", "-c", 'umask; echo "$TZ $LC_ALL"; date +%z'], capture_output=True,
                              text=True).stdout.split("\n")
        (tmp_path / "f").write_text("x")
    assert seen[0] == "0077" and seen[1] == f"{b['env']['TZ']} {b['env']['LC_ALL']}"
    assert seen[2] in ("+1245", "+1345")  # Chatham standard / daylight time
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600
    now = os.umask(0o022)
    os.umask(now)
    assert now == before and os.environ.get("TZ") != b["env"]["TZ"]


def test_one_tree_digest_rule_for_stamps_and_the_disc(tmp_path):
    from isobuild.disctree import tree_digest
    from isobuild.stamps import sha256_tree

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    os.chmod(tmp_path / "d" / "f", 0o600)
    os.symlink("f", tmp_path / "d" / "link")

    def digests():
        return sha256_tree(tmp_path), sha256_tree(tmp_path, dirs=True), tree_digest(tmp_path, git_modes=True)

    before = digests()
    (tmp_path / "empty").mkdir()  # a directory counts only with dirs=True (the disc's digest)
    after = digests()
    assert after[0] == before[0] and after[1] != before[1] and after[2] != before[2]
    os.chmod(tmp_path / "d" / "f", 0o640)  # a mode counts as it is, or as the disc's rule takes it
    assert digests()[:2] != after[:2] and digests()[2] == after[2]
    os.unlink(tmp_path / "d" / "link")
    os.symlink("elsewhere", tmp_path / "d" / "link")  # a symlink counts by its target
    assert all(a != b for a, b in zip(digests(), after))
