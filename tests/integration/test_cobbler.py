"""`invoke cobbler` against a real cobblerd 3.3 (PyPI `cobbler`, installed by scripts/setup.sh into
.venv-cobbler). cobblerd hard-codes /etc/cobbler and /var/lib/cobbler in many places (serializer,
lock, modules.conf, users.digest, web.ss), so it runs in a private mount namespace whose /etc and /var
are overlays with their upper layers in the test's tmp dir: nothing on the host changes, and the
namespace ends with the process. It listens on 127.0.0.1 only (cobblerd.do_xmlrpc_rw). The Cobbler CLI
talks to http://<server>:<http_port>/cobbler_api, which Apache proxies to cobblerd on a real server
(cobbler 3.3 apache2/cobbler.conf: `ProxyPass /cobbler_api http://127.0.0.1:25151/`); a small proxy in
the test does the same, on loopback."""
from __future__ import annotations

import hashlib
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import xmlrpc.client
from pathlib import Path

import pytest
from conftest import need_root, need_tool
from pxe_env import DEFAULT, IPMI, REPO, build_pxe, copy_definition, make_base

from isobuild import cobbler, pxe
from isobuild.errors import IsobuildError
from isobuild.loader import load_definition

URLS = {"vmcl-b": "http://10.20.0.254:8080", "an-cluster": "http://192.168.1.10:8080"}  # never contacted
USER, PASSWORD = "an-test", "Pa55-an-test-9"  # written to the private users.digest below


def _cobbler_venv() -> Path:
    """.venv-cobbler (or $COBBLER_VENV); need_tool skips, or fails under CI, when cobblerd is not there."""
    venv = Path(os.environ.get("COBBLER_VENV", REPO / ".venv-cobbler"))
    need_tool(str(venv / "bin" / "cobblerd"))  # shutil.which takes a path, too
    return venv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text, n = re.subn(rf"^{key}:.*$", f"{key}: {value}", text, flags=re.M)
        assert n == 1, key
    return text


class ApiProxy(http.server.ThreadingHTTPServer):
    """POST /cobbler_api -> cobblerd, as Apache's ProxyPass does on a Cobbler server."""

    def __init__(self, backend: int):
        self.backend = backend

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(h):  # noqa: N805
                if h.path != "/cobbler_api":
                    h.send_error(404)
                    return
                body = h.rfile.read(int(h.headers["Content-Length"]))
                req = urllib.request.Request(f"http://127.0.0.1:{backend}/", body,
                                             {"Content-Type": "text/xml"})
                with urllib.request.urlopen(req, timeout=300) as r:
                    data = r.read()
                h.send_response(200)
                h.send_header("Content-Type", "text/xml")
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data)

            def log_message(h, *args):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/cobbler_api"


class Cobblerd:
    """cobblerd -F in its own mount namespace, state under `root`."""

    def __init__(self, root: Path, venv: Path):
        self.root, self.venv = root, venv
        site = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig;"
                                    "print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
        self.etc, self.var = root / "etc-up", root / "var-up"
        self.tftp, self.www = root / "tftpboot", root / "www"
        shutil.copytree(site / "etc" / "cobbler", self.etc / "cobbler")
        shutil.copytree(site / "var" / "lib" / "cobbler", self.var / "lib" / "cobbler")
        shutil.copytree(site / "var" / "www" / "cobbler", self.www)
        for d in ("collections/distros", "collections/profiles", "collections/systems", "collections/repos",
                  "collections/images", "collections/mgmtclasses", "collections/packages", "collections/files",
                  "collections/menus", "loaders", "triggers"):
            (self.var / "lib" / "cobbler" / d).mkdir(parents=True, exist_ok=True)
        for d in ("log/cobbler/tasks", "log/cobbler/anamon"):
            (self.var / d).mkdir(parents=True)
        for d in (root / "etc-work", root / "var-work", self.tftp):
            d.mkdir()
        self.port = _free_port()
        self.proxy = ApiProxy(self.port)
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        # authentication.configfile (modules.conf): user:realm:sha3_512(password), realm "Cobbler"
        (self.etc / "cobbler" / "users.digest").write_text(
            f"{USER}:Cobbler:{hashlib.sha3_512(PASSWORD.encode()).hexdigest()}\n")
        settings = self.etc / "cobbler" / "settings.yaml"
        settings.write_text(_settings(settings.read_text(), {
            "xmlrpc_port": str(self.port), "http_port": str(self.proxy.server_address[1]),
            "server": "127.0.0.1", "tftpboot_location": f'"{self.tftp}"', "webdir": f'"{self.www}"',
            # Debian's pxelinux/syslinux-common paths (Cobbler's defaults are SUSE's)
            "syslinux_dir": '"/usr/lib/syslinux/modules/bios"', "syslinux_pxelinux_folder": '"/usr/lib/PXELINUX"',
            "syslinux_memdisk_folder": '"/usr/lib/syslinux"',
            # DHCP through the dnsmasq manager: sync writes /etc/dnsmasq.conf (the overlay's), nothing restarts
            "manage_dhcp": "true", "manage_dhcp_v4": "true", "restart_dhcp": "false"}))
        modules = self.etc / "cobbler" / "modules.conf"
        modules.write_text(modules.read_text().replace("module = managers.isc", "module = managers.dnsmasq"))
        mounts = " && ".join(
            f"mount -t overlay overlay -o lowerdir=/{d},upperdir={root}/{d}-up,workdir={root}/{d}-work /{d}"
            for d in ("etc", "var"))
        self.log = open(root / "cobblerd.log", "wb")
        # unshare -m: a new mount namespace with private propagation (util-linux default); exec keeps the pid
        self.proc = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", f"{mounts} && exec {venv}/bin/cobblerd -F --config /etc/cobbler/settings.yaml"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.api = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}/", allow_none=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.api.ping()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError("cobblerd did not start:\n" + (root / "cobblerd.log").read_text()[-3000:])
                time.sleep(0.5)

    def cli(self, *args: str) -> str:
        """The real `cobbler` CLI, inside cobblerd's mount namespace (it reads /etc/cobbler/settings.yaml
        and /var/lib/cobbler/web.ss from there)."""
        cp = subprocess.run(["nsenter", "-t", str(self.proc.pid), "-m", str(self.venv / "bin" / "cobbler"), *args],
                            capture_output=True, text=True, timeout=300)
        assert cp.returncode == 0, f"cobbler {' '.join(args)}: {cp.stdout}{cp.stderr}"
        return cp.stdout

    def collection(self, kind: str) -> dict[str, bytes]:
        d = self.var / "lib" / "cobbler" / "collections" / kind
        return {p.name: p.read_bytes() for p in sorted(d.iterdir())}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proxy.shutdown()
        self.proxy.server_close()
        self.log.close()


@pytest.fixture(scope="module")
def cobblerd(tmp_path_factory):
    need_root("a private mount namespace for cobblerd (unshare -m, overlay mounts)")
    need_tool("unshare", "nsenter", "rsync")
    d = Cobblerd(tmp_path_factory.mktemp("cobbler"), _cobbler_venv())
    yield d
    d.stop()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_base(tmp_path_factory.mktemp("f13base"))


def _pxe(definition: Path, build: Path, base) -> object:
    cluster = load_definition(definition)
    build_pxe(cluster, build, base=base["tree"], url=URLS[cluster.name], repo_dir=base["repo"])
    return cluster


@pytest.fixture(scope="module")
def sites(base, tmp_path_factory):
    """Both examples with their `invoke pxe` trees: {cluster name: (cluster, build dir)}."""
    out = {}
    for definition in (IPMI, DEFAULT):
        build = tmp_path_factory.mktemp("build")
        cluster = _pxe(definition, build, base)
        out[cluster.name] = (cluster, build)
    return out


def _register(cobblerd, cluster, build, **kw):
    return cobbler.register(cluster, build, api_url=cobblerd.proxy.url, user=USER, password=PASSWORD, **kw)


def _reports(cobblerd, cluster) -> dict[str, str]:
    out = {"profile": cobblerd.cli("profile", "report", "--name", cobbler.profile_name(cluster))}
    for n in cluster.nodes:
        name = cobbler.system_name(cluster, n)
        out[name] = cobblerd.cli("system", "report", "--name", name)
    return out


def _field(report: str, label: str) -> str:
    m = re.search(rf"^{re.escape(label)}\s*: (.*)$", report, re.M)
    assert m, f"{label!r} not in report:\n{report}"
    return m.group(1).strip()


def test_distro_files_missing_on_the_server_is_a_clean_error(cobblerd, sites, tmp_path):
    cluster, build = sites["vmcl-b"]
    with pytest.raises(IsobuildError, match="--distro-dir must name a directory on the Cobbler server") as err:
        _register(cobblerd, cluster, build, distro_dir=tmp_path / "nowhere")
    assert "nowhere" in str(err.value)
    assert cobblerd.collection("distros") == {}  # nothing half-made


def test_register_ipmi_example_and_read_it_back(cobblerd, sites):
    cluster, build = sites["vmcl-b"]
    res = _register(cobblerd, cluster, build, sync=False)
    assert res.changes == ["distro fedora-13-x86_64: created from "
                           f"{build.resolve() / 'pxe' / 'tftp' / 'fedora-13-x86_64' / 'vmlinuz'}",  # not a generation
                           "profile vmcl-b: created", "system vmcl-b.node-b1: created", "system vmcl-b.node-b2: created"]
    assert any("vmcl-b.node-b2 has no MAC" in w for w in res.warnings)
    b1 = cobblerd.cli("system", "report", "--name", "vmcl-b.node-b1")
    assert _field(b1, "Profile") == "vmcl-b" and _field(b1, "Hostname") == "node-b1.lab.example.org"
    assert _field(b1, "Netboot Enabled") == "False"
    assert _field(b1, "Interface =====") == "eth1"  # the bcn interface of the ipmi example
    assert _field(b1, "MAC Address") == "52:54:00:12:35:01"
    assert _field(b1, "IP Address") == "10.20.1.1" and _field(b1, "Subnet Mask") == "255.255.0.0"
    stored = cobblerd.api.get_item("system", "vmcl-b.node-b1")
    assert stored["kernel_options"] == {"ks": "http://10.20.0.254:8080/ks/node-b1.ks", "ip": "10.20.1.1",
                                        "netmask": "255.255.0.0"}
    prof = cobblerd.api.get_item("profile", "vmcl-b")
    assert prof["kernel_options"] == {"ksdevice": "bootif", "console": ["tty0", "ttyS0,115200"]}
    assert prof["autoinstall"] == "" and prof["enable_menu"] is False
    distro = cobblerd.api.get_item("distro", "fedora-13-x86_64")
    assert (distro["breed"], distro["os_version"], distro["arch"]) == ("redhat", "rhel6", "x86_64")


def test_second_run_changes_nothing(cobblerd, sites):
    cluster, build = sites["vmcl-b"]
    before = {k: cobblerd.collection(k) for k in ("distros", "profiles", "systems")}
    res = _register(cobblerd, cluster, build)
    assert res.changes == [] and not res.synced
    assert len(res.unchanged) == 4
    assert {k: cobblerd.collection(k) for k in before} == before


def test_second_cluster_leaves_the_first_byte_identical(cobblerd, sites):
    first, _ = sites["vmcl-b"]
    cluster, build = sites["an-cluster"]
    reports = _reports(cobblerd, first)
    files = {k: cobblerd.collection(k) for k in ("distros", "profiles", "systems")}
    res = _register(cobblerd, cluster, build, sync=False)
    assert res.changes == ["profile an-cluster: created", "system an-cluster.an-node01: created",
                           "system an-cluster.an-node02: created"]
    # the distro is shared: reused as vmcl-b created it, not pointed at this cluster's build dir
    assert res.unchanged == ["distro fedora-13-x86_64"]
    assert any("distro fedora-13-x86_64 is shared and kept" in w for w in res.warnings)
    assert _reports(cobblerd, first) == reports
    after = {k: cobblerd.collection(k) for k in files}
    assert after["distros"] == files["distros"]
    for kind in ("profiles", "systems"):
        assert {k: v for k, v in after[kind].items() if k.startswith("vmcl-b")} == files[kind]
    assert sorted(after["systems"]) == ["an-cluster.an-node01.json", "an-cluster.an-node02.json",
                                        "vmcl-b.node-b1.json", "vmcl-b.node-b2.json"]


def test_no_secret_reaches_cobbler(cobblerd, sites):
    """Fence passwords (cluster.conf) and the root password hash stay on the access-listed HTTP tree."""
    secrets = {}
    for cluster, _build in sites.values():
        secrets.update(cluster.secrets())
    for top in (cobblerd.etc, cobblerd.var, cobblerd.tftp, cobblerd.www):
        for p in top.rglob("*"):
            if p.is_file() and not p.is_symlink():
                data = p.read_bytes()
                leaked = [what for what, v in secrets.items() if v.encode() in data]
                assert not leaked, f"{p} holds the {leaked}"
                assert b"cluster.conf" not in data or "templates" in p.parts or "snippets" in p.parts, p


def test_sync_writes_pxelinux_per_mac_and_netboot_is_the_operators(cobblerd, sites, base):
    cluster, build = sites["vmcl-b"]
    cobblerd.cli("sync")
    cfg = cobblerd.tftp / "pxelinux.cfg"
    mac_file = cfg / "01-52-54-00-12-35-01"
    # a system without a MAC gets its file under its address in hex, pxelinux's next lookup after 01-<mac>
    no_mac = ["0A140102", "C0A80147", "C0A80148"]  # node-b2 10.20.1.2, an-node01/02 192.168.1.71/72
    assert sorted(p.name for p in cfg.iterdir()) == ["01-52-54-00-12-35-01", *no_mac, "default"]
    text = mac_file.read_text()
    assert re.search(r"(?im)^\s*localboot -1\s*$", text) and "vmlinuz" not in text  # netboot off: the disk boots
    menu = (cfg / "default").read_text()
    assert re.search(r"(?im)^ONTIMEOUT local$", menu) and "vmcl-b" not in menu and "an-cluster" not in menu  # enable_menu off
    cobblerd.cli("system", "edit", "--name", "vmcl-b.node-b1", "--netboot-enabled", "true")
    cobblerd.cli("sync")
    text = mac_file.read_text()
    kernel = re.search(r"(?im)^\s*kernel\s+(\S+)", text).group(1)
    append = re.search(r"(?im)^\s*append\s+(.*)$", text).group(1).split()
    assert re.search(r"(?im)^\s*ipappend\s+2\s*$", text)  # BOOTIF for ksdevice=bootif
    assert (cobblerd.tftp / kernel.lstrip("/")).read_bytes() == (base["tree"] / pxe.PXEBOOT[0]).read_bytes()
    initrd = [a for a in append if a.startswith("initrd=")][0].split("=", 1)[1]
    assert (cobblerd.tftp / initrd.lstrip("/")).read_bytes() == (base["tree"] / pxe.PXEBOOT[1]).read_bytes()
    node = next(n for n in cluster.nodes if n.name == "node-b1")
    args = [a for a in append if not a.startswith("initrd=")]
    assert args == ["ksdevice=bootif", "console=tty0", "console=ttyS0,115200",
                    "ks=http://10.20.0.254:8080/ks/node-b1.ks", "ip=10.20.1.1", "netmask=255.255.0.0"]
    # the same arguments as the `invoke pxe` menu entry (console=ttyS last: anaconda runs on serial)
    assert sorted(args) == sorted(pxe.kernel_args(cluster, node, URLS["vmcl-b"], "x").split()[1:])
    # Cobbler's DHCP reserves the bcn address for the MAC; the file passes dnsmasq's own parser
    dhcp = cobblerd.etc / "dnsmasq.conf"
    hosts = [line for line in dhcp.read_text().splitlines() if line.startswith("dhcp-host=")]
    assert hosts == ["dhcp-host=net:x86_64,52:54:00:12:35:01,10.20.1.1"]  # systems without a MAC get none
    subprocess.run([need_tool("dnsmasq")["dnsmasq"], "--test", "-C", str(dhcp)], check=True, capture_output=True)
    # the operator's netboot flag survives a rerun
    res = _register(cobblerd, cluster, build)
    assert res.changes == [] and cobblerd.api.get_item("system", "vmcl-b.node-b1")["netboot_enabled"] is True


MAC01 = ("    mac: {}", '    mac: {eth0: "52:54:00:aa:00:01"}')  # the first node's (an-node01's) bcn MAC


def _edited(src: Path, tmp: Path, old: str, new: str) -> Path:
    dst = copy_definition(src, tmp)
    text = dst.read_text()
    assert old in text
    dst.write_text(text.replace(old, new, 1))
    return dst


def test_changed_definition_updates_exactly_that_system(cobblerd, sites, base, tmp_path):
    _cluster, build = sites["an-cluster"]
    definition = _edited(DEFAULT, tmp_path, *MAC01)
    changed = load_definition(definition)
    with pytest.raises(IsobuildError, match="changed since"):  # build/pxe is from the old definition
        _register(cobblerd, changed, build)
    _pxe(definition, build, base)
    files = cobblerd.collection("systems")
    res = _register(cobblerd, changed, build)
    assert res.changes == ["system an-cluster.an-node01: updated interfaces"] and res.synced
    after = cobblerd.collection("systems")
    assert {k for k in after if after[k] != files[k]} == {"an-cluster.an-node01.json"}
    assert (cobblerd.tftp / "pxelinux.cfg" / "01-52-54-00-aa-00-01").is_file()


def test_node_gone_from_the_definition_is_reported_not_removed(cobblerd, sites, base, tmp_path):
    _cluster, build = sites["an-cluster"]
    definition = _edited(DEFAULT, tmp_path, *MAC01)  # as the test above left it
    renamed = definition.read_text().replace("an-node02", "an-node03")
    definition.write_text(renamed)
    cluster = _pxe(definition, build, base)
    # an-node03 would take an-node02's addresses: Cobbler refuses duplicates, we refuse to remove
    with pytest.raises(IsobuildError, match=r"an-cluster.an-node03 needs the ip address 192.168.1.72 that "
                                            r"Cobbler's system an-cluster.an-node02 holds") as err:
        _register(cobblerd, cluster, build)
    assert "cobbler system remove --name an-cluster.an-node02" in str(err.value)
    assert "an-cluster.an-node02.json" in cobblerd.collection("systems")
    definition.write_text(re.sub(r"\.72\b", ".73", renamed))  # new addresses: no conflict left
    cluster = _pxe(definition, build, base)
    res = _register(cobblerd, cluster, build, sync=False)
    assert res.changes == ["system an-cluster.an-node03: created"]
    assert res.stale == ["an-cluster.an-node02"]
    assert any("an-cluster.an-node02" in w and "cobbler system remove" in w for w in res.warnings)
    assert "an-cluster.an-node02.json" in cobblerd.collection("systems")  # still there


def test_same_node_names_in_another_cluster_do_not_collide(cobblerd, sites, base, tmp_path):
    """vmcl-d: the ipmi example again with its own name, domain, addresses and MACs, same node names."""
    first, _ = sites["vmcl-b"]
    definition = copy_definition(IPMI, tmp_path)
    text = definition.read_text().replace("name: vmcl-b", "name: vmcl-d").replace("lab.example.org", "d.example.org")
    definition.write_text(text.replace("10.20.1.", "10.20.4.").replace("52:54:00:12:3", "52:54:00:14:3"))
    reports = _reports(cobblerd, first)
    build = tmp_path / "build"
    URLS["vmcl-d"] = URLS["vmcl-b"]
    cluster = _pxe(definition, build, base)
    res = _register(cobblerd, cluster, build)
    assert res.changes == ["profile vmcl-d: created", "system vmcl-d.node-b1: created", "system vmcl-d.node-b2: created"]
    assert _reports(cobblerd, first) == reports
    assert (cobblerd.tftp / "pxelinux.cfg" / "01-52-54-00-14-35-01").is_file()
    assert (cobblerd.tftp / "pxelinux.cfg" / "01-52-54-00-12-35-01").is_file()


def test_an_object_we_did_not_create_is_never_touched(cobblerd, sites, base, tmp_path):
    cobblerd.cli("profile", "add", "--name", "vmcl-c", "--distro", "fedora-13-x86_64")
    before = cobblerd.collection("profiles")["vmcl-c.json"]
    definition = _edited(IPMI, tmp_path, "name: vmcl-b", "name: vmcl-c")
    cluster = load_definition(definition)
    build = tmp_path / "build"
    URLS["vmcl-c"] = URLS["vmcl-b"]
    _pxe(definition, build, base)
    with pytest.raises(IsobuildError, match="profile named vmcl-c that `invoke cobbler` did not create"):
        _register(cobblerd, cluster, build)
    assert cobblerd.collection("profiles")["vmcl-c.json"] == before
    assert not any(k.startswith("vmcl-c.") for k in cobblerd.collection("systems"))


def test_bad_password_is_a_clean_error_without_the_password(cobblerd, sites):
    cluster, build = sites["vmcl-b"]
    with pytest.raises(IsobuildError) as err:
        cobbler.register(cluster, build, api_url=cobblerd.proxy.url, user=USER, password="wrong-s3cret")
    assert "login failed" in str(err.value) and "check the Cobbler user (an-test)" in str(err.value)
    assert "wrong-s3cret" not in str(err.value)


def test_invoke_cobbler_task(cobblerd, sites):
    cluster, build = sites["vmcl-b"]
    env = dict(os.environ, COBBLER_USER=USER, COBBLER_PASSWORD=PASSWORD, COBBLER_API=cobblerd.proxy.url)
    cp = subprocess.run([sys.executable, "-m", "invoke", "cobbler", "--cluster", str(IPMI), "--build-dir", str(build)],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stderr
    assert "cobbler: 0 changed, 4 unchanged, 0 not in the definition" in cp.stdout
    assert PASSWORD not in cp.stdout + cp.stderr
    env.pop("COBBLER_PASSWORD")
    cp = subprocess.run([sys.executable, "-m", "invoke", "cobbler", "--cluster", str(IPMI), "--build-dir", str(build)],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert cp.returncode == 2 and "COBBLER_PASSWORD" in cp.stderr
