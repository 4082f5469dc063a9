"""Fixtures for the firstboot tests: a two-node harness (root: loop devices, netns, namespaces)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "harness"))

from tests.conftest import REPO, need_root, need_tool  # noqa: E402
from harness import Pair, TeardownError, make_definition  # noqa: E402

TOOLS = ("losetup", "ip", "unshare", "ping", "blkid", "wipefs", "mkfs.gfs2", "drbdmeta", "pvcreate", "shellcheck",
         "iptables-restore", "xmllint")


def need_harness() -> None:
    need_root("loop devices, network namespaces and LVM for the two-node firstboot harness")
    need_tool(*TOOLS)
    if not Path("/usr/lib/drbd/drbdadm-83").exists():
        need_tool("drbdadm-83")


@pytest.fixture
def make_pair(tmp_path):
    """make_pair(managed_by="init", timeout=40, raid_partitions=False) -> a set-up Pair, torn down after."""
    need_harness()
    pairs: list[Pair] = []

    def _make(managed_by: str = "init", timeout: int = 40, definition: Path | None = None,
              raid_partitions: bool = False) -> Pair:
        d = definition or make_definition(REPO / "cluster.yaml", tmp_path / f"def-{managed_by}", managed_by)
        p = Pair(tmp_path / f"pair{len(pairs)}", d, timeout=timeout, raid_partitions=raid_partitions)
        pairs.append(p)
        return p.__enter__()

    yield _make
    # every pair torn down, also when one of them fails to: then the test errors in teardown
    failures = []
    for p in pairs:
        try:
            p.cleanup()
        except TeardownError as e:
            failures.append(str(e))
    if failures:
        raise TeardownError("\n".join(failures))
