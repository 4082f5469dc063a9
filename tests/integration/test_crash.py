"""Builds you can trust after a crash or a full disk.

Kill at every publish point: the stage runs in a child that SIGKILLs itself at its Nth rename (every
output, temp and stamp is published by one), for N = 1, 2, ... until a run finishes. After each kill
the previous output is whole, and the next normal run sweeps the dead run's temps, rebuilds (never
"up to date" on a half-published state) and leaves nothing behind.

Full disk: the build dir is a small tmpfs the test mounts; a stage that runs out of space exits 2
with a clean `error:` naming the path, and keeps the previous good output.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, need_root, need_tool

LEFTOVER = re.compile(r"^\..+\.(tmp|old)-\d+-")

KILLER = r"""
import os, signal, sys
n, count = int(os.environ["KILL_AT_RENAME"]), [0]
def hook(real):
    def renamed(*a, **k):
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*a, **k)
    return renamed
os.rename, os.replace = hook(os.rename), hook(os.replace)
from invoke.main import program
program.run(["invoke", *sys.argv[1:]])
"""


def invoke(*args, kill_at: int | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    argv = [sys.executable, "-m", "invoke", *map(str, args)]
    if kill_at is not None:
        env["KILL_AT_RENAME"] = str(kill_at)
        argv = [sys.executable, "-c", KILLER, *map(str, args)]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if LEFTOVER.match(p.name))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kill_everywhere(args_before, args_after, check_whole, check_done, limit=40) -> int:
    """Kill `args_after` at each rename in turn; after each kill check_whole(), then a clean rerun and
    check_done(). Returns how many publish points were hit."""
    for n in range(1, limit):
        res = invoke(*args_after, kill_at=n)
        if res.returncode == 0:
            return n - 1
        assert res.returncode == -9, res.stderr
        check_whole(n)
        rerun = invoke(*args_after)
        assert rerun.returncode == 0, rerun.stderr
        check_done(n, rerun)
        again = invoke(*args_before)  # back to the previous state for the next kill point
        assert again.returncode == 0, again.stderr
    raise AssertionError("the stage never finished")


def test_kill_render_at_every_publish_point(tmp_path):
    build = tmp_path / "build"
    assert invoke("render", "--build-dir", build).returncode == 0
    good = {p.relative_to(build): sha(p) for p in (build / "kickstart").iterdir()}

    def whole(n):
        # kickstarts are either the previous ones or absent mid-swap (the stamp is gone then)
        for rel, digest in good.items():
            if (build / rel).exists():
                assert sha(build / rel) == digest, n

    def done(n, rerun):
        assert leftovers(build) == [], n
        assert {p.relative_to(build): sha(p) for p in (build / "kickstart").iterdir()} == good

    hit = kill_everywhere(["render", "--build-dir", build], ["render", "--build-dir", build, "--force"],
                          whole, done)
    assert hit >= 4  # kickstart/, nodes/, model.json, the stamp


def test_kill_iso_at_every_publish_point(tmp_path):
    need_tool("createrepo_c", "shellcheck")
    build = tmp_path / "build"
    first = ["iso", "--build-dir", build, "--console", "ttyS0,115200"]
    second = ["iso", "--build-dir", build, "--console", "ttyS1,57600"]
    ref = tmp_path / "ref"
    assert invoke("iso", "--build-dir", ref, "--console", "ttyS1,57600").returncode == 0
    new = sha(ref / "out" / "an-cluster-addon.iso")  # the build is reproducible: what `second` makes
    assert invoke(*first).returncode == 0
    out = build / "out"
    iso = out / "an-cluster-addon.iso"
    old = sha(iso)
    assert old != new

    def whole(n):
        assert sha(iso) in (old, new), n  # never a partial image
        assert iso.stat().st_mode & 0o077 == 0
        for p in out.glob(".an-cluster-addon.iso.tmp-*"):
            assert p.stat().st_mode & 0o077 == 0, p  # a temp image holds secrets: private

    def done(n, rerun):
        assert leftovers(build) == [], n
        assert sha(iso) == new == (out / "an-cluster-addon.iso.sha256").read_text().split()[0], n

    hit = kill_everywhere(first, second, whole, done)
    assert hit >= 3  # iso, .sha256, manifest.json (+ stamps)


def addon_disc(build: Path) -> tuple[Path, str]:
    """Build the add-on disc into `build`: (its path, its sha256)."""
    need_tool("createrepo_c", "shellcheck")
    assert invoke("iso", "--build-dir", build).returncode == 0
    iso = build / "out" / "an-cluster-addon.iso"
    return iso, sha(iso)


def test_truncated_iso_is_rebuilt_saying_why(tmp_path):
    build = tmp_path / "build"
    iso, good = addon_disc(build)
    os.truncate(iso, iso.stat().st_size // 2)
    res = invoke("iso", "--build-dir", build)
    assert res.returncode == 0, res.stderr
    assert "built" in res.stdout and "output changed: out/an-cluster-addon.iso (size" in res.stderr
    assert sha(iso) == good


@contextlib.contextmanager
def tmpfs(mnt: Path, size: str):
    """A tmpfs of `size` (mount's size=) at `mnt`, unmounted afterwards."""
    need_root("mounting a tmpfs")
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def small_fs(tmp_path):
    """A 24 MiB tmpfs at tmp_path/fs."""
    with tmpfs(tmp_path / "fs", "24m") as mnt:
        yield mnt


def _fill(fs: Path, leave: int) -> Path:
    """Fill the file system but `leave` bytes."""
    st = os.statvfs(fs)
    filler = fs / "filler"
    free = st.f_bavail * st.f_frsize - leave
    with open(filler, "wb") as fh:
        block = b"\0" * (1 << 20)
        while free > 0:
            fh.write(block[: min(free, len(block))])
            free -= len(block)
    return filler


def test_full_disk_is_a_clean_error_and_keeps_the_iso(small_fs):
    build = small_fs / "build"
    iso, good = addon_disc(build)
    filler = _fill(small_fs, 256 << 10)  # room for stamps, not for a new image
    res = invoke("iso", "--build-dir", build, "--console", "ttyS1,57600")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert "error: iso: cannot build" in res.stderr and "No space left on device" in res.stderr
    assert str(build / "out") in res.stderr and "hint: free space" in res.stderr
    assert sha(iso) == good and leftovers(build) == []
    filler.unlink()
    assert "up to date" in invoke("iso", "--build-dir", build).stdout  # the previous build still stands


def test_full_disk_render_and_release_are_clean_errors(small_fs):
    build = small_fs / "build"
    _fill(small_fs, 8 << 10)
    res = invoke("render", "--build-dir", build)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "error: render: cannot write the render" in res.stderr and "No space left on device" in res.stderr
    assert leftovers(build) == []


def test_kill_pxe_at_every_publish_point(tmp_path):
    from pxe_env import make_base

    base = make_base(tmp_path / "base")
    build = tmp_path / "build"
    args = ["pxe", "--build-dir", build, "--base", base["iso"], "--url", "http://127.0.0.1:8080",
            "--repo", base["repo"]]
    assert invoke(*args).returncode == 0
    tree = build / "pxe"

    def whole(n):
        assert (tree / "serve.json").is_file() and (tree / "tftp" / "pxelinux.0").is_file(), n
        assert sorted(p.name for p in (tree / "http" / "ks").iterdir()) == ["an-node01.ks", "an-node02.ks"], n

    def done(n, rerun):
        assert leftovers(build) == [], n
        assert len(list((build / ".pxe.generations").iterdir())) <= 2, n
        assert (tree / "serve.json").is_file()

    hit = kill_everywhere(args, [*args, "--force"], whole, done)
    assert hit >= 2  # the generation, the symlink (+ stamps)


def test_kill_release_at_every_publish_point(tmp_path):
    need_tool("createrepo_c", "shellcheck", "rpmbuild")
    from isobuild.release import check_release
    from isobuild.stamps import Stamps
    from tests.fixtures import f13base

    build = tmp_path / "build"
    assert invoke("iso", "--build-dir", build).returncode == 0
    rpms = f13base.build_rpms(build / "rpms")
    (build / "srpms").mkdir()
    srpm = build / "srpms" / rpms[0].name.replace(".noarch.rpm", ".src.rpm")
    srpm.write_bytes(rpms[0].read_bytes())
    Stamps(build).save("rpm-fixture", {}, [*rpms, srpm])  # as `invoke rpms` records its packages
    for n in range(1, 20):
        target = build / "release" / f"an-cluster-v{n}"
        res = invoke("release", "--build-dir", build, "--version", f"v{n}", kill_at=n)
        assert not target.exists() or check_release(target) == [], n  # absent or whole
        if res.returncode == 0:
            break
        assert res.returncode == -9, res.stderr
        rerun = invoke("release", "--build-dir", build, "--version", f"v{n}")
        assert rerun.returncode == 0 or "already exists" in rerun.stderr, rerun.stderr
        assert check_release(target) == [] and leftovers(build / "release") == [], n
    else:
        raise AssertionError("release never finished")
    assert n >= 2
