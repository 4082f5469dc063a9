"""`invoke serve` on loopback: a real server process, real HTTP clients bound to 127.0.0.x to play the
nodes (the test's own ACL maps the nodes to loopback addresses; nothing goes to the example's subnets)."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pxe_env import IPMI, REPO, build_pxe, make_base

from isobuild.loader import load_definition

NODE_ADDR = {"node-b1": "127.0.0.11", "node-b2": "127.0.0.12"}
STRANGER = "127.0.0.99"


@pytest.fixture(scope="module")
def pxe_dir(tmp_path_factory):
    base = make_base(tmp_path_factory.mktemp("f13base"))
    build = tmp_path_factory.mktemp("build")
    cluster = load_definition(IPMI)
    res = build_pxe(cluster, build, base=base["iso"], url="http://127.0.0.1:8080", repo_dir=base["repo"])
    # The test's ACL: each node plays from its own loopback address.
    cfg_path = res.pxe_dir / "serve.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["acl"] = {k: [NODE_ADDR[k.split("/")[1].removesuffix(".ks")]] for k in cfg["acl"]}
    cfg_path.write_text(json.dumps(cfg))
    http_root = res.pxe_dir / "http"
    os.symlink("/etc/passwd", http_root / "an-cluster" / "escape")
    os.symlink("../private/node-b1/etc/cluster/cluster.conf", http_root / "an-cluster" / "sneak.conf")
    return res.pxe_dir, base


class Server:
    def __init__(self, pxe_dir: Path, *extra: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "isobuild.serve", "--pxe-dir", str(pxe_dir), "--port", "0", *extra],
            cwd=REPO, stderr=subprocess.PIPE, text=True)
        first = self.proc.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", first)
        assert m, f"server did not start: {first}{self._drain()}"
        self.port = int(m.group(1))
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _drain(self) -> str:
        self.proc.kill()
        return self.proc.stderr.read()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line)

    def get(self, path: str, source: str = "127.0.0.1", method: str = "GET") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(source, 0))
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            conn.endheaders()
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30)
        # the tests read the log after stop(): the reader thread must have reached EOF (the pipe ends
        # with the process; a bounded join that gave up would leave the last lines unread)
        self._reader.join(timeout=60)
        assert not self._reader.is_alive(), "the server's stderr did not reach EOF"
        return rc


@pytest.fixture(scope="module")
def server(pxe_dir):
    srv = Server(pxe_dir[0])
    yield srv
    srv.stop()


def test_kickstarts_go_to_their_own_node_only(server, pxe_dir):
    http_root = pxe_dir[0] / "http"
    for node, addr in NODE_ADDR.items():
        status, body = server.get(f"/ks/{node}.ks", source=addr)
        assert status == 200 and body == (http_root / "ks" / f"{node}.ks").read_bytes()
        other = next(a for n, a in NODE_ADDR.items() if n != node)
        assert server.get(f"/ks/{node}.ks", source=other)[0] == 403
        assert server.get(f"/ks/{node}.ks", source=STRANGER)[0] == 403


def test_repo_and_install_tree_files(server, pxe_dir):
    pxe_root, base = pxe_dir
    repo = pxe_root / "http" / "an-cluster"
    files = [p for p in repo.rglob("*") if p.is_file() and "nodes" not in p.parts and not p.is_symlink()]
    assert any(p.name == "repomd.xml" for p in files) and any(p.suffix == ".rpm" for p in files)
    for p in files:
        status, body = server.get("/an-cluster/" + p.relative_to(repo).as_posix(), source=STRANGER)
        assert status == 200 and body == p.read_bytes(), p
    # os/ comes straight out of the ISO image
    for rel in (".treeinfo", "images/pxeboot/vmlinuz", "images/install.img", "repodata/repomd.xml"):
        status, body = server.get("/os/" + rel)
        assert status == 200 and body == (base["tree"] / rel).read_bytes(), rel
    assert server.get("/os/no/such/file")[0] == 404
    status, body = server.get("/an-cluster/nodes/node-b2/etc/hosts", source=STRANGER)
    assert status == 200 and b"node-b1" in body


def test_private_files_only_for_their_node(server, pxe_dir):
    path = "/private/node-b1/etc/cluster/cluster.conf"
    want = (pxe_dir[0] / "http" / path.lstrip("/")).read_bytes()
    status, body = server.get(path, source=NODE_ADDR["node-b1"])
    assert status == 200 and body == want
    for addr in (NODE_ADDR["node-b2"], STRANGER, "127.0.0.1"):
        status, body = server.get(path, source=addr)
        assert status == 403 and want not in body
    assert server.get("/private/", source=NODE_ADDR["node-b1"])[0] == 403
    assert server.get("/private/node-b3/x", source=NODE_ADDR["node-b1"])[0] == 403
    # encoded and dotted spellings of the same path obey the same rule
    assert server.get("/%70rivate/node-b1/etc/cluster/cluster.conf", source=STRANGER)[0] == 403
    assert server.get("/an-cluster/../private/node-b1/etc/cluster/cluster.conf", source=STRANGER)[0] == 403
    assert server.get("/./private//node-b1/etc/cluster/cluster.conf", source=STRANGER)[0] == 403


def test_paths_outside_the_tree_are_refused(server):
    for path in ("/../serve.json", "/%2e%2e/serve.json", "/an-cluster/%2E%2E/%2e%2e/serve.json",
                 "/os/../../serve.json", "/%2e%2e%2f%2e%2e%2fetc/passwd", "/..%5c..%5cetc/passwd"):
        status, body = server.get(path)
        assert status in (400, 403), path
        assert b"root:" not in body
    status, body = server.get("/an-cluster/escape")  # symlink pointing out of the tree
    assert status == 403 and b"root:" not in body
    status, _ = server.get("/an-cluster/sneak.conf", source=STRANGER)  # symlink into private/
    assert status == 403
    assert server.get("/an-cluster/sneak.conf", source=NODE_ADDR["node-b1"])[0] == 200


def test_read_only_and_no_listings(server):
    assert server.get("/an-cluster/")[0] == 403
    assert server.get("/")[0] == 403
    assert server.get("/ks/node-b1.ks", method="PUT", source=NODE_ADDR["node-b1"])[0] == 501
    assert server.get("/ks/node-b1.ks", method="DELETE", source=NODE_ADDR["node-b1"])[0] == 501
    status, body = server.get("/an-cluster/repodata/repomd.xml", method="HEAD")
    assert status == 200 and body == b""


def test_many_clients_at_once(server, pxe_dir):
    """A rack installing together: 24 clients pull the kernel, the install image and kickstarts in parallel."""
    base = pxe_dir[1]
    want = {rel: hashlib.sha256((base["tree"] / rel).read_bytes()).hexdigest()
            for rel in ("images/pxeboot/vmlinuz", "images/install.img")}

    def client(i: int) -> bool:
        rel = list(want)[i % 2]
        status, body = server.get("/os/" + rel, source=f"127.0.1.{i + 1}")
        node = "node-b1" if i % 3 else "node-b2"
        ks_status, _ = server.get(f"/ks/{node}.ks", source=NODE_ADDR[node])
        return status == 200 and hashlib.sha256(body).hexdigest() == want[rel] and ks_status == 200

    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(client, range(48)))
    assert all(results)


def test_each_request_is_logged(server):
    server.get("/an-cluster/repodata/repomd.xml", source="127.0.0.77")
    server.get("/private/node-b2/etc/cluster/cluster.conf", source="127.0.0.78")
    allowed = r'127\.0\.0\.77 .*"GET /an-cluster/repodata/repomd.xml HTTP/1.1" 200 \d+'
    refused = r'127\.0\.0\.78 .*"GET /private/node-b2/etc/cluster/cluster.conf HTTP/1.1" 403'
    # wait for the request line itself: a refusal logs its "code 403" line first
    text = _wait_for_log(server, refused)
    assert re.search(allowed, text)
    assert re.search(refused, text)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly(pxe_dir, sig):
    srv = Server(pxe_dir[0])
    assert srv.get("/an-cluster/repodata/repomd.xml")[0] == 200
    assert srv.stop(sig) == 0
    assert "server stopped" in "".join(srv.log)
    assert not any("Traceback" in line for line in srv.log)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()


def test_binds_loopback_by_default_and_refuses_bad_settings(pxe_dir, tmp_path):
    from isobuild.errors import IsobuildError
    from isobuild.serve import make_server

    srv = make_server(pxe_dir[0], port=0)
    try:
        assert srv.server_address[0] == "127.0.0.1"
    finally:
        srv.server_close()
    with pytest.raises(IsobuildError, match="not an IP address"):
        make_server(pxe_dir[0], bind="localhost:80", port=0)
    with pytest.raises(IsobuildError, match="run `invoke pxe` first"):
        make_server(tmp_path, port=0)


def test_acl_changes_apply_without_restart(pxe_dir, tmp_path):
    copy = tmp_path / "pxe"
    shutil.copytree(pxe_dir[0], copy, symlinks=True)
    srv = Server(copy)
    try:
        path = "/private/node-b1/etc/cluster/cluster.conf"
        assert srv.get(path, source="127.0.0.11")[0] == 200
        cfg = json.loads((copy / "serve.json").read_text())
        cfg["acl"]["private/node-b1/"] = ["127.0.0.21"]
        tmp = copy / "serve.json.new"
        tmp.write_text(json.dumps(cfg))
        os.replace(tmp, copy / "serve.json")  # as invoke pxe does: a new file, renamed into place
        assert srv.get(path, source="127.0.0.11")[0] == 403
        assert srv.get(path, source="127.0.0.21")[0] == 200
        (copy / "serve.json").write_text("{broken")  # a half-written file: keep the last good rules
        assert srv.get(path, source="127.0.0.21")[0] == 200
        assert srv.get(path, source="127.0.0.11")[0] == 403
    finally:
        assert srv.stop() == 0
    assert any("reloaded" in line for line in srv.log)


def test_no_404_while_pxe_rebuilds_the_tree(pxe_dir, tmp_path, monkeypatch):
    """Clients keep fetching while `invoke pxe --force` rebuilds three times, on a file system made
    slow after every rename (so any moment with no tree at DIR/pxe would be seen): every answer is 200."""
    import time

    base = pxe_dir[1]
    cluster = load_definition(IPMI)
    build = tmp_path / "build"

    def rebuild():
        build_pxe(cluster, build, base=base["iso"], url="http://127.0.0.1:8080", repo_dir=base["repo"],
                      force=True)

    rebuild()
    srv = Server(build / "pxe")
    paths = ["/an-cluster/repodata/repomd.xml", "/an-cluster/nodes/node-b1/etc/hosts", "/os/.treeinfo"]
    statuses: list[int] = []
    stop = threading.Event()

    def client(i: int) -> None:
        while not stop.is_set():
            statuses.append(srv.get(paths[i % len(paths)])[0])

    def slow(real):
        def renamed(*a, **k):
            out = real(*a, **k)
            time.sleep(0.1)
            return out
        return renamed

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    try:
        for t in threads:
            t.start()
        monkeypatch.setattr(os, "rename", slow(os.rename))
        monkeypatch.setattr(os, "replace", slow(os.replace))
        for _ in range(3):
            rebuild()
    finally:
        stop.set()
        for t in threads:
            t.join()
        monkeypatch.undo()
        srv.stop()
    assert len(statuses) > 50
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    gens = sorted(p.name for p in (build / ".pxe.generations").iterdir())
    assert len(gens) == 2  # the current tree and the previous one; older ones are gone


def _status_once_a_slot_is_free(srv: Server, path: str, timeout: float = 30.0) -> int:
    """The status of GET path, asked again while the server answers 503 (all slots taken), up to the deadline."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            status = srv.get(path)[0]
        except (ConnectionResetError, BrokenPipeError):  # the 503's close, before or while the request went out
            status = None
        if status not in (None, 503) or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def _wait_for_log(srv: Server, pattern: str, timeout: float = 30.0) -> str:
    """The server's log once a line matches the regex `pattern` (or, at the deadline, as it is):
    the server writes a line per event, and the reader thread may not have the later ones yet."""
    import time

    deadline = time.monotonic() + timeout
    while not re.search(pattern, text := "".join(srv.log)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return text


def test_request_line_cannot_forge_log_lines(server):
    forged = b'GET /x\x1b[2J\r127.0.0.1 [x] "GET /private/node-b1/etc/cluster/cluster.conf HTTP/1.1" 200 1 HTTP/1.0\r\n\r\n'
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(forged)
        assert sock.recv(100).startswith(b"HTTP/1.0 400")
    request_line = '"GET /x\\x1b[2J\\r127.0.0.1 [x] \\"GET /private/node-b1/etc/cluster/cluster.conf'
    # wait for the request line itself: the "code 400" line before it holds the same escapes
    text = _wait_for_log(server, re.escape(request_line))
    assert "\x1b" not in text and "\r" not in text  # no raw ESC or CR reaches the log
    assert any(request_line in ln and ln.endswith(" 400 -") for ln in text.splitlines()), text
    assert not any(ln.startswith('127.0.0.1 [x] "GET /private') for ln in text.splitlines())


def test_connections_are_bounded_and_idle_ones_dropped(pxe_dir):
    # the bound: three idle clients hold every slot, a fourth gets a 503 at once (a header timeout
    # far beyond the test, so the idle ones are still connected whatever the machine's load)
    srv = Server(pxe_dir[0], "--max-clients", "3", "--header-timeout", "300")
    idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=30) for _ in range(3)]
    try:
        extra = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        with extra:
            assert extra.recv(100).startswith(b"HTTP/1.0 503")  # no fourth thread for a fourth client
    finally:
        for sock in idle:
            sock.close()
        assert srv.stop() == 0
    assert "refused: 3 clients already connected" in "".join(srv.log)
    # the timeout: a client that sends no request in time is dropped, freeing its slot
    srv = Server(pxe_dir[0], "--max-clients", "3", "--header-timeout", "1")
    idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=30) for _ in range(3)]
    try:
        for sock in idle:
            assert sock.recv(100) == b""
        # the client sees the drop (the timer's shutdown) an instant before the handler thread ends and
        # gives its slot back: until one of the three has, a new client still gets the 503
        assert _status_once_a_slot_is_free(srv, "/an-cluster/repodata/repomd.xml") == 200
    finally:
        for sock in idle:
            sock.close()
        assert srv.stop() == 0
