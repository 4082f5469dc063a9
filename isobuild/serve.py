"""`invoke serve`: serve build/pxe/http read-only over HTTP for network installs.

What it enforces, per request (serve.json is re-read when `invoke pxe` rewrites it):
- GET/HEAD only; no directory listings.
- No path outside the tree: `..` segments (also percent-encoded) are refused, and every file is
  resolved through symlinks and must stay inside http/ (or inside the install tree for os/).
- serve.json's ACL (written by `invoke pxe`): `private/<node>/` and `ks/<node>.ks` go only to that
  node's own addresses from the definition; anything else under private/ goes to nobody.
- os/ is the install tree: a directory (symlink http/os) or, for an ISO base, the files inside the
  image, streamed straight out of it (nothing extracted).

ThreadingHTTPServer: one thread per request, so a rack of nodes installing together is served in
parallel, up to MAX_CLIENTS connections (more get a 503 at once); a client must send its request
and headers within HEADER_TIMEOUT seconds, so idle connections cannot hold the threads. Files go
out with sendfile(). Each request is logged as one line on stderr, with control characters, quotes
and backslashes of the request escaped (a request line cannot forge log lines). SIGTERM and
Ctrl-C stop the server cleanly: no new connections, running transfers finish, the socket is closed.
"""
from __future__ import annotations

import argparse
import contextlib
import email.utils
import ipaddress
import json
import mimetypes
import os
import signal
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import IsobuildError

DEFAULT_BIND = "127.0.0.1"
DEFAULT_PORT = 8080
CHUNK = 1 << 20
MAX_CLIENTS = 64  # a rack of nodes installing at once, with room to spare
HEADER_TIMEOUT = 20.0  # seconds from connect to the end of the headers


def escape(text: str) -> str:
    """One log line per request: printable ASCII kept, `"` and `\\` escaped, anything else as \\xNN/\\uNNNN."""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif " " <= c <= "~":
            out.append(c)
        else:
            out.append(c.encode("unicode_escape").decode("ascii"))
    return "".join(out)


class AccessRules:
    """serve.json's ACL: path (exact) or prefix (ending in /) under http/ -> allowed client addresses."""

    def __init__(self, acl: dict[str, list[str]]):
        self.rules: list[tuple[str, frozenset[str]]] = []
        for key, addrs in acl.items():
            norm = set()
            for a in addrs:
                try:
                    norm.add(str(ipaddress.ip_address(a)))
                except ValueError:
                    raise IsobuildError(f"serve.json: ACL entry {key!r} has a bad address {a!r}",
                                        hint="rerun `invoke pxe` to rewrite it") from None
            self.rules.append((key.lstrip("/"), frozenset(norm)))
        self.rules.sort(key=lambda r: -len(r[0]))  # the most specific rule wins

    def allowed(self, rel: str, client: str) -> bool:
        client = _plain_ip(client)
        for key, addrs in self.rules:
            if rel == key.rstrip("/") or (key.endswith("/") and rel.startswith(key)):
                return client in addrs
        return not (rel == "private" or rel.startswith("private/"))


def _plain_ip(addr: str) -> str:
    """'::ffff:10.0.0.1' -> '10.0.0.1' (a dual-stack socket reports IPv4 clients mapped)."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return addr
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


class PxeServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for running transfers: a clean stop
    block_on_close = True

    def __init__(self, addr, pxe_dir: Path, log=sys.stderr, max_clients: int = MAX_CLIENTS,
                 header_timeout: float = HEADER_TIMEOUT):
        self.pxe_dir = Path(pxe_dir)
        self.max_clients = max_clients
        self.slots = threading.BoundedSemaphore(max_clients)
        self.header_timeout = header_timeout
        self.root = self.http_root()
        self._state_lock = threading.Lock()
        self._signature, self.rules, self.os_tree = _load_state(self.pxe_dir)
        self.log_stream = log
        self.log_lock = threading.Lock()
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        try:
            super().__init__(addr, PxeHandler)
        except BaseException:
            self.close_tree()
            raise

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            self.log_line(f"{escape(str(client_address[0]))} refused: {self.max_clients} clients already "
                          "connected (503)")
            with contextlib.suppress(OSError):
                request.settimeout(1)
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def http_root(self) -> Path:
        """DIR/pxe/http resolved now: `invoke pxe` swaps DIR/pxe to a new generation by one rename,
        so each request resolves it once and serves from that one tree."""
        return (self.pxe_dir / "http").resolve()

    def state(self) -> tuple["AccessRules", object]:
        """The access rules and install tree, reloaded when `invoke pxe` rewrote serve.json meanwhile."""
        with self._state_lock:
            sig = _signature(self.pxe_dir)
            if sig != self._signature:
                try:
                    self._signature, self.rules, self.os_tree = _load_state(self.pxe_dir)
                    self.log_line(f"reloaded {self.pxe_dir / 'serve.json'}")
                except IsobuildError as err:  # mid-rewrite: keep serving with the old rules
                    self.log_line(f"keeping the previous access rules: {err}")
            # (a replaced install tree is not closed: a request may still be reading from it)
            return self.rules, self.os_tree

    def log_line(self, text: str) -> None:
        with self.log_lock:
            self.log_stream.write(text + "\n")
            self.log_stream.flush()

    def close_tree(self) -> None:
        if getattr(self, "os_tree", None) is not None:
            self.os_tree.close()


class PxeHandler(BaseHTTPRequestHandler):
    server: PxeServer
    server_version = "an-cluster-pxe/1"
    timeout = 60  # a stalled client does not hold a thread (or the shutdown) forever

    def setup(self) -> None:
        super().setup()
        # the request line and headers must arrive in time (the per-read timeout alone lets a
        # client that sends a byte a minute hold its thread for ever)
        self._deadline = threading.Timer(self.server.header_timeout, self._too_slow)
        self._deadline.daemon = True
        self._deadline.start()

    def _too_slow(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def parse_request(self) -> bool:
        ok = super().parse_request()
        self._deadline.cancel()
        return ok

    def finish(self) -> None:
        self._deadline.cancel()
        super().finish()

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _deny(self, status: HTTPStatus, why: str) -> None:
        self.send_error(status, why)

    def _serve(self, body: bool) -> None:
        raw = urlsplit(self.path).path
        try:
            path = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            return self._deny(HTTPStatus.BAD_REQUEST, "bad path encoding")
        if not path.startswith("/") or "\0" in path or "\\" in path:
            return self._deny(HTTPStatus.BAD_REQUEST, "bad path")
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts:
            return self._deny(HTTPStatus.FORBIDDEN, "path outside the tree")
        rel = "/".join(parts)
        self._rules, self._tree = self.server.state()  # checked per request
        if not self._rules.allowed(rel, self.client_address[0]):
            return self._deny(HTTPStatus.FORBIDDEN, "not for this address")
        found = self._locate(rel)
        if found is None:
            return
        name, offset, length = found
        try:
            fh = open(name, "rb")
        except OSError:
            return self._deny(HTTPStatus.NOT_FOUND, "not found")
        with fh:
            self._sent = length
            self.send_response(HTTPStatus.OK)
            ctype = mimetypes.guess_type(rel)[0] or "application/octet-stream"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(length))
            self.send_header("Last-Modified", email.utils.formatdate(os.fstat(fh.fileno()).st_mtime, usegmt=True))
            self.end_headers()
            if body and length:
                self.wfile.flush()
                self.connection.sendfile(fh, offset, length)

    def _locate(self, rel: str) -> tuple[str, int, int] | None:
        """(file, offset, length) of a servable file, or None after sending the error."""
        tree = self._tree
        if tree is not None and (rel == "os" or rel.startswith("os/")):
            loc = tree.locate(rel[3:]) if rel.startswith("os/") else None
            if loc is None:
                self._deny(HTTPStatus.NOT_FOUND, "not found")
            return loc
        root = self.server.http_root()
        try:
            real = (root / rel).resolve(strict=True)
        except (OSError, RuntimeError):
            self._deny(HTTPStatus.NOT_FOUND, "not found")
            return None
        if not real.is_relative_to(root):
            self._deny(HTTPStatus.FORBIDDEN, "path outside the tree")  # a symlink pointing out
            return None
        if not self._rules.allowed(real.relative_to(root).as_posix(), self.client_address[0]):
            self._deny(HTTPStatus.FORBIDDEN, "not for this address")  # a symlink into private/
            return None
        if not real.is_file():
            self._deny(HTTPStatus.FORBIDDEN if real.is_dir() else HTTPStatus.NOT_FOUND,
                       "no directory listings" if real.is_dir() else "not found")
            return None
        return str(real), 0, real.stat().st_size

    def log_request(self, code="-", size="-") -> None:
        if isinstance(code, HTTPStatus):
            code = code.value
        size = getattr(self, "_sent", size)
        self.log_message('"%s" %s %s', self.requestline, code, size)

    def log_message(self, fmt: str, *args) -> None:
        args = tuple(escape(a) if isinstance(a, str) else a for a in args)
        line = f"{self.client_address[0]} [{self.log_date_time_string()}] {fmt % args}\n"
        with self.server.log_lock:
            self.server.log_stream.write(line)
            self.server.log_stream.flush()


def load_config(pxe_dir: Path) -> dict:
    cfg_path = Path(pxe_dir) / "serve.json"
    try:
        cfg = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise IsobuildError(f"{cfg_path} does not exist", hint="run `invoke pxe` first") from None
    except ValueError as err:
        raise IsobuildError(f"{cfg_path} is not valid JSON: {err}", hint="rerun `invoke pxe`") from None
    if not isinstance(cfg.get("acl"), dict) or not isinstance(cfg.get("os"), dict):
        raise IsobuildError(f"{cfg_path} lacks the acl/os sections", hint="rerun `invoke pxe`")
    return cfg


def _signature(pxe_dir: Path) -> tuple | None:
    try:
        st = (Path(pxe_dir) / "serve.json").stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _load_state(pxe_dir: Path):
    """(signature, AccessRules, install tree or None) from DIR/pxe/serve.json."""
    sig = _signature(pxe_dir)
    cfg = load_config(pxe_dir)
    rules = AccessRules(cfg["acl"])
    kind, path = cfg["os"].get("kind"), cfg["os"].get("path")
    os_tree = None
    if kind in ("iso", "dir"):
        from .installtree import DirTree, IsoTree

        if not Path(path).exists():
            raise IsobuildError(f"the install tree {path} named in serve.json is gone",
                                hint="rerun `invoke pxe --base ...` with the base's current location")
        os_tree = IsoTree(Path(path)) if kind == "iso" else DirTree(Path(path))
    return sig, rules, os_tree


def make_server(pxe_dir: Path, bind: str = DEFAULT_BIND, port: int = DEFAULT_PORT, log=sys.stderr,
                **limits) -> PxeServer:
    """A ready (bound, not yet serving) server for DIR/pxe."""
    pxe_dir = Path(pxe_dir)
    if not (pxe_dir / "http").is_dir():
        raise IsobuildError(f"{pxe_dir / 'http'} does not exist", hint="run `invoke pxe` first")
    if not 0 <= port <= 65535:
        raise IsobuildError(f"--port {port} is not a port number")
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        raise IsobuildError(f"--bind {bind!r} is not an IP address", hint="e.g. 127.0.0.1 or 192.168.1.10") from None
    try:
        return PxeServer((bind, port), pxe_dir, log, **limits)
    except OSError as err:
        raise IsobuildError(f"cannot listen on {bind}:{port}: {err.strerror}",
                            hint="pick another --port, or stop what is using it") from None


def serve(pxe_dir: Path, bind: str = DEFAULT_BIND, port: int = DEFAULT_PORT, log=sys.stderr, **limits) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop cleanly."""
    server = make_server(pxe_dir, bind, port, log, **limits)
    host, real_port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {server.root} on http://{shown}:{real_port}/ (Ctrl-C stops)", file=log, flush=True)
    if not ipaddress.ip_address(bind).is_loopback:
        print(f"note: listening on {bind}: reachable from the network, private/ is limited by serve.json",
              file=log, flush=True)

    def stop(signum, _frame):
        # shutdown() blocks until serve_forever returns, so ask from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    old = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        server.server_close()  # waits for running requests
        server.close_tree()
        print("server stopped", file=log, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m isobuild.serve", description=__doc__.splitlines()[0])
    ap.add_argument("--pxe-dir", default="build/pxe")
    ap.add_argument("--bind", default=DEFAULT_BIND)
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--max-clients", type=int, default=MAX_CLIENTS)
    ap.add_argument("--header-timeout", type=float, default=HEADER_TIMEOUT)
    args = ap.parse_args(argv)
    try:
        serve(Path(args.pxe_dir), args.bind, args.port, max_clients=args.max_clients,
              header_timeout=args.header_timeout)
    except IsobuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
