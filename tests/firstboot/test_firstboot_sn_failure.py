"""A storage-network-only failure after a full bring-up (both Primary, UpToDate, GFS2 mounted).

Only the sn link goes down (one node's veth): totem (bcn) still sees both nodes, DRBD loses its
connection. With r0.res's `fencing resource-and-stonith` and fence-peer handler, DRBD 8.3.7
suspends I/O on both Primaries and runs the handler (the real overlay script, through the real
drbdadm-83); the lower nodeid fences the peer (the higher one waits its delay) and resumes. So no
write reaches the disk between the cut and the fence. Without those lines (the old config) both stay
Primary and both write: split brain. The emulation: harness/drbdsetup (net_watch, fence_peer) and
fbshim.cmd_fbh_write_drbd.
"""
from __future__ import annotations

import re

import pytest

MARK = {0: b"written-by-lowest", 1: b"written-by-other!"}


def wait_writer(proc, timeout: float = 60) -> int:
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()


def sn_failure(p) -> dict[str, tuple[int, int]]:
    """Bring the pair up, cut the storage link in the higher node's namespace, start a writer on each
    node; wait until both writers ended. Returns {node: (offset, writer exit code)}."""
    assert p.run_both(max_rounds=1) == []
    for name in p.nodes:
        assert (p.h / "run" / name / "drbd.role").read_text().strip() == "Primary"
    p.cut_link(p.other, "sn")
    size = (p.h / "img" / "drbd.img").stat().st_size
    offsets = {p.lowest: size - 8192, p.other: size - 4096}
    writers = {n: p.write_drbd(n, offsets[n], MARK[n != p.lowest]) for n in (p.lowest, p.other)}
    return {n: (offsets[n], wait_writer(w)) for n, w in writers.items()}


def written(p, offset: int, mark: bytes) -> bool:
    with open(p.h / "img" / "drbd.img", "rb") as fh:
        fh.seek(offset)
        return fh.read(len(mark)) == mark


def assert_fenced_before_any_write(p) -> None:
    """After the cut: someone is fenced, no write before that fence, none ever by the fenced node."""
    calls = p.calls()
    cut = next(i for i, (_, cmd, _) in enumerate(calls) if cmd == "#link-down")
    fences = [(i, args[0]) for i, (_, cmd, args) in enumerate(calls) if cmd == "#fenced" and i > cut]
    writes = [(i, n) for i, (n, cmd, _) in enumerate(calls) if cmd == "#drbd-write" and i > cut]
    assert fences, f"split brain: nobody fenced, written by {[n for _, n in writes]}"
    first, victim = fences[0]
    assert [n for i, n in writes if i < first] == [], f"split brain: written before the fence: {writes}"
    assert victim not in {n for _, n in writes}, f"split brain: the fenced {victim} wrote"


def test_storage_network_failure_fences_the_peer_before_either_node_writes(make_pair):
    p = make_pair()
    res = p.nodes[p.other].root / "var/lib/an-cluster/stage/etc/drbd.d" / f"{p.cluster.storage.drbd.resource}.res"
    assert re.search(r"fencing\s+resource-and-stonith;", res.read_text())
    ended = sn_failure(p)
    assert_fenced_before_any_write(p)
    # the lower nodeid's handler (no delay) fenced the higher one through cman's fence_node
    assert p.fenced() == [(p.lowest, [p.other, "fence_node"])]
    assert (p.h / "fenced" / p.other).exists()
    assert ("fence_node", ["-v", p.nodes[p.other].fqdn]) in [(c, a) for n, c, a in p.calls() if n == p.lowest]
    assert {n for n, c, _ in p.calls() if c == "#drbd-suspend"} == set(p.nodes)  # both froze I/O
    assert [(n, a[1]) for n, c, a in p.calls() if c == "#drbd-fence-peer"] == [(p.lowest, "7")]
    # the survivor resumed and wrote; the fenced node's write never reached the disk
    assert ended[p.lowest][1] == 0
    assert ended[p.other][1] != 0
    assert written(p, ended[p.lowest][0], MARK[0])
    assert not written(p, ended[p.other][0], MARK[1])


def test_without_drbd_fencing_the_same_failure_is_a_split_brain(make_pair):
    """The old r0.res (no fencing policy, no fence-peer handler): the test above fails."""
    p = make_pair()
    for node in p.nodes.values():
        res = node.root / "var/lib/an-cluster/stage/etc/drbd.d" / f"{p.cluster.storage.drbd.resource}.res"
        text = res.read_text()
        old = re.sub(r"^\s*(fencing\s+resource-and-stonith|fence-peer\s+\"[^\"]*\");\n", "", text, flags=re.M)
        assert old.count("\n") == text.count("\n") - 2
        res.write_text(old)
    ended = sn_failure(p)
    with pytest.raises(AssertionError, match="split brain"):
        assert_fenced_before_any_write(p)
    assert p.fenced() == []
    assert all(rc == 0 for _, rc in ended.values())
    assert written(p, ended[p.lowest][0], MARK[0]) and written(p, ended[p.other][0], MARK[1])
