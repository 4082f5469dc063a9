"""Firstboot scripts without the two-node harness: lint, bash 4.1 compatibility, the per-node input,
the runner (markers, failure, resume, reset, self-disable), init ordering and the Xen step.

None of these needs root: steps run against a scratch root (AN_ROOT) with the harness shims in PATH.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, need_tool

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "harness"))
from harness import FIXTURE_ROOT, install_shims, make_definition, write_node_info  # noqa: E402

OVERLAY = REPO / "overlay" / "firstboot"
SCRIPTS = sorted([OVERLAY / "an-cluster-firstboot", OVERLAY / "init.d" / "an-cluster-firstboot", *OVERLAY.glob("an-drbd-*"),
                  *OVERLAY.glob("lib/*.sh"), *OVERLAY.glob("steps/*.sh")])
STEPS = sorted(p.stem for p in OVERLAY.glob("steps/[0-9][0-9]-*.sh"))
# The seed's start order ("Altering Daemon Start Order", init mode) and its rgmanager variant.
SEED_ORDER = ["xend", "cman", "drbd", "clvmd", "gfs2"]


def test_layout_is_the_contract():
    assert (OVERLAY / "VERSION").read_text().strip() and re.match(r"^\d+\.\d+\.\d+$", (OVERLAY / "VERSION").read_text().strip())
    assert os.access(OVERLAY / "an-cluster-firstboot", os.X_OK)
    assert os.access(OVERLAY / "init.d" / "an-cluster-firstboot", os.X_OK)
    assert STEPS == ["10-network", "20-ssh-trust", "30-xen", "40-init-order", "50-cman", "60-drbd", "70-clvm",
                     "80-gfs2", "90-rgmanager", "95-vms"]
    for step in STEPS:
        assert os.access(OVERLAY / "steps" / f"{step}.sh", os.X_OK), step
    header = (OVERLAY / "init.d" / "an-cluster-firstboot").read_text()
    assert re.search(r"^# chkconfig: 2345 \d\d \d\d$", header, re.M)
    assert "### BEGIN INIT INFO" in header and "# Provides:          an-cluster-firstboot" in header


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(OVERLAY)))
def test_shellcheck_clean(script):
    tools = need_tool("shellcheck")
    r = subprocess.run([tools["shellcheck"], "-x", "-s", "bash", str(script)], capture_output=True, text=True,
                       cwd="/")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(OVERLAY)))
def test_bash_syntax(script):
    # bash 4.1 (Fedora 13) is not packaged here; `bash -n` with this bash plus the construct check below.
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# Constructs newer than bash 4.1 (the version Fedora 13 ships), with the version that added them.
NEWER_THAN_41 = {
    r"\bmapfile\s+-d\b|\breadarray\s+-d\b": "mapfile -d (4.4)",
    r"\bwait\s+-n\b": "wait -n (4.3)",
    r"\b(declare|local|typeset)\s+-[a-zA-Z]*n\b": "namerefs (4.3)",
    r"\$\{[A-Za-z_][A-Za-z0-9_]*@[QEPAKa]\}": "${var@op} (4.4)",
    r"\b(declare|local|typeset)\s+-[a-zA-Z]*g\b": "declare -g (4.2)",
    r"\[\[\s+-v\s": "[[ -v ]] (4.2)",
    r"%\([^)]*\)T": "printf %()T (4.2)",
    r"\$\{[A-Za-z_][A-Za-z0-9_]*\[-\d+\]\}": "negative array index (4.3)",
    r"\bshopt\s+-s\s+lastpipe\b": "lastpipe (4.2)",
    r"\bEPOCHSECONDS\b|\bEPOCHREALTIME\b|\bBASH_ARGV0\b": "bash 5 variables",
}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(OVERLAY)))
def test_bash_41_compatible(script):
    full = script.read_text()
    code = "\n".join(ln for ln in full.splitlines() if not ln.lstrip().startswith("#"))  # comments may name them
    found = [what for rx, what in NEWER_THAN_41.items() if re.search(rx, code)]
    assert not found, f"{script.name} uses {found}"
    assert full.startswith("#!/bin/bash") or script.parent.name == "lib"


# ------------------------------------------------------------------------------------------------
# the per-node input: kickstart/node/etc/an-cluster/firstboot.env.j2


def _render_env(tmp_path, managed_by="init"):
    from isobuild.loader import load_definition
    from isobuild.render import render

    cluster = load_definition(make_definition(REPO / "cluster.yaml", tmp_path / "def", managed_by))
    out = render(cluster, tmp_path / "build")
    return cluster, {n.name: out.nodes_dir / n.name / "etc/an-cluster/firstboot.env" for n in cluster.nodes}


def _source(env_file: Path) -> dict[str, str]:
    script = f"set -eua; . {shlex.quote(str(env_file))}; env -0"
    out = subprocess.run(["env", "-i", "bash", "-c", script], capture_output=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if item.startswith("AN_"))


def test_firstboot_env_is_safe_shell_with_the_definition_values(tmp_path):
    cluster, files = _render_env(tmp_path)
    required = subprocess.run(["bash", "-c", f". {OVERLAY}/lib/common.sh; echo $FB_REQUIRED_VARS"],
                              capture_output=True, text=True, check=True).stdout.split()
    for node in cluster.nodes:
        text = files[node.name].read_text()
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                assert re.match(r"^AN_[A-Z0-9_]+$", key), line
                # one shell word, already quoted: re-quoting the parsed value gives the same text
                words = shlex.split(value)
                assert len(words) == 1 and shlex.quote(words[0]) == value, line
        v = _source(files[node.name])
        peer = cluster.peer(node)
        assert [k for k in required if not v.get(k)] == []
        assert v["AN_NODE_NAME"] == node.name and v["AN_NODE_FQDN"] == node.fqdn
        assert v["AN_NODE_ID"] == str(node.nodeid) and v["AN_PEER_ID"] == str(peer.nodeid)
        assert v["AN_NODE_SN_IP"] == str(node.ip["sn"]) and v["AN_PEER_BCN_IP"] == str(peer.ip["bcn"])
        assert v["AN_IS_LOWEST"] == ("yes" if node.name == cluster.lowest_node.name else "no")
        assert v["AN_GFS2_LOCK_TABLE"] == cluster.lock_table
        assert v["AN_GFS2_SIZE_MIB"] == str(cluster.storage.gfs2.size_mib)
        assert v["AN_DRBD_BACKING"] == cluster.storage.backing_device
        assert v["AN_XEN_BRIDGE_IFS"] == " ".join(cluster.networks[b].interface for b in cluster.xen.bridges)
        assert v["AN_VM_LVS"] == " ".join(f"{vm.name}:{vm.disk_mib}" for vm in cluster.vms)
        assert v["AN_XEN_RELOCATION_HOSTS"] == str(peer.ip["bcn"])
        assert "password" not in text.lower() and "$6$" not in text  # no secrets in this file
    assert sum(_source(f)["AN_IS_LOWEST"] == "yes" for f in files.values()) == 1


# ------------------------------------------------------------------------------------------------
# the runner, with stand-in steps


def _fake_libexec(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A libexec dir with the real runner + lib and three small steps; env for running it."""
    libexec = tmp_path / "libexec"
    (libexec / "steps").mkdir(parents=True)
    shutil.copytree(OVERLAY / "lib", libexec / "lib")
    shutil.copy(OVERLAY / "VERSION", libexec / "VERSION")
    shutil.copy(OVERLAY / "an-cluster-firstboot", libexec / "an-cluster-firstboot")
    root = tmp_path / "root"
    body = ('#!/bin/bash\nset -euo pipefail\n. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"\n'
            'fb_step_init "$(basename "$0" .sh)"\necho "$FB_STEP" >> "$AN_ROOT/ran"\n')
    (libexec / "steps/10-first.sh").write_text(body + 'info "first is fine"\n')
    (libexec / "steps/20-second.sh").write_text(
        body + '[ -f "$AN_ROOT/fixed" ] || die "the widget is missing" "create $AN_ROOT/fixed"\n')
    (libexec / "steps/30-third.sh").write_text(body)
    for f in (libexec / "steps").iterdir():
        f.chmod(0o755)
    env_file = root / "var/lib/an-cluster/stage/etc/an-cluster/firstboot.env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text("".join(f"{k}=x\n" for k in (
        "AN_CLUSTER_NAME AN_NODE_NAME AN_NODE_ID AN_NODE_FQDN AN_NODE_BCN_IP AN_NODE_SN_IP AN_PEER_NAME AN_PEER_ID "
        "AN_PEER_FQDN AN_PEER_BCN_IP AN_PEER_SN_IP AN_DRBD_RESOURCE AN_DRBD_DEVICE AN_DRBD_BACKING AN_DRBD_SYNC_RATE "
        "AN_VG AN_GFS2_LV AN_GFS2_SIZE_MIB AN_GFS2_MOUNT AN_GFS2_JOURNALS AN_GFS2_LOCK_TABLE AN_MANAGED_BY "
        "AN_RENDEZVOUS_PORT").split())
        + "AN_IS_LOWEST=yes\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "chkconfig").write_text(f'#!/bin/sh\necho "$*" >> {shlex.quote(str(tmp_path / "chkconfig.log"))}\n')
    (bindir / "chkconfig").chmod(0o755)
    env = {"PATH": f"{bindir}:/usr/bin:/bin:/usr/sbin:/sbin", "AN_ROOT": str(root), "LANG": "C"}
    return libexec, env


def _runner(libexec, env, *args):
    return subprocess.run([str(libexec / "an-cluster-firstboot"), *args], env=env, capture_output=True, text=True)


def test_runner_stops_at_a_failed_step_and_resumes_there(tmp_path):
    libexec, env = _fake_libexec(tmp_path)
    root = Path(env["AN_ROOT"])
    r = _runner(libexec, env, "run")
    assert r.returncode != 0
    # the console names the step, the reason and what to do
    assert "step 20-second FAILED" in r.stderr and "the widget is missing" in r.stderr
    assert f"create {root}/fixed" in r.stderr
    log = (root / "var/log/an-cluster-firstboot.log").read_text()
    assert "20-second ERROR: the widget is missing" in log
    st = _runner(libexec, env, "status")
    assert st.returncode == 2
    assert re.search(r"^10-first\s+done", st.stdout, re.M)
    assert re.search(r"^20-second\s+failed: .*the widget is missing", st.stdout, re.M)
    assert re.search(r"^30-third\s+pending", st.stdout, re.M)
    assert not (tmp_path / "chkconfig.log").exists()

    (root / "fixed").touch()
    r = _runner(libexec, env, "run")
    assert r.returncode == 0, r.stderr
    # resumed at the failed step: the first step did not run again
    assert (root / "ran").read_text().split() == ["10-first", "20-second", "20-second", "30-third"]
    assert (tmp_path / "chkconfig.log").read_text().split("\n")[0] == "an-cluster-firstboot off"
    assert _runner(libexec, env, "status").returncode == 0

    # reset one step: only it runs again
    assert _runner(libexec, env, "reset", "30-third").returncode == 0
    assert re.search(r"^30-third\s+pending", _runner(libexec, env, "status").stdout, re.M)
    assert _runner(libexec, env, "run").returncode == 0
    assert (root / "ran").read_text().split()[-1] == "30-third" and len((root / "ran").read_text().split()) == 5
    bad = _runner(libexec, env, "reset", "99-nothing")
    assert bad.returncode != 0 and "no step named '99-nothing'" in bad.stderr


def test_runner_refuses_a_second_concurrent_run(tmp_path):
    libexec, env = _fake_libexec(tmp_path)
    state = Path(env["AN_ROOT"]) / "var/lib/an-cluster/firstboot"
    state.mkdir(parents=True)
    with open(state / ".lock", "w") as fh:
        import fcntl

        fcntl.flock(fh, fcntl.LOCK_EX)
        r = _runner(libexec, env, "run")
    assert r.returncode != 0 and "another an-cluster-firstboot run is in progress" in r.stderr
    assert not (Path(env["AN_ROOT"]) / "ran").exists()


def test_runner_explains_a_missing_input(tmp_path):
    libexec, env = _fake_libexec(tmp_path)
    (Path(env["AN_ROOT"]) / "var/lib/an-cluster/stage/etc/an-cluster/firstboot.env").unlink()
    r = _runner(libexec, env, "run")
    assert r.returncode != 0 and "firstboot.env is missing" in r.stderr and "kickstart %post stages it" in r.stderr


# ------------------------------------------------------------------------------------------------
# single steps in a scratch root (shims from the harness: chkconfig, virsh)


def _scratch_node(tmp_path: Path, managed_by: str) -> tuple[Path, dict[str, str]]:
    from isobuild.loader import load_definition
    from isobuild.render import render

    cluster = load_definition(make_definition(REPO / "cluster.yaml", tmp_path / "def", managed_by))
    out = render(cluster, tmp_path / "build")
    node = cluster.lowest_node
    root = tmp_path / "root"
    shutil.copytree(FIXTURE_ROOT, root, symlinks=True)
    # lvm2-cluster shipped clvmd's init script 0555; git keeps only 0755/0644, so set it here
    (root / "etc/rc.d/init.d/clvmd").chmod(0o555)
    shutil.copytree(out.nodes_dir / node.name, root / "var/lib/an-cluster/stage")
    shimbin = tmp_path / "shimbin"
    install_shims(shimbin)
    write_node_info(tmp_path / "h", node.name, cluster.peer(node).name, root, cluster.storage.drbd.device, "/dev/null")
    env = {"PATH": f"{shimbin}:/usr/bin:/bin:/usr/sbin:/sbin", "AN_ROOT": str(root), "LANG": "C",
           "FBH_DIR": str(tmp_path / "h"), "FBH_NODE": node.name}
    return root, env


def _run_step(step: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(OVERLAY / "steps" / f"{step}.sh")], env=env, capture_output=True, text=True)


def _header(script: Path) -> tuple[str, int, list[str]]:
    text = script.read_text()
    m = re.search(r"^# chkconfig: (\S+) (\d+) (\d+)$", text, re.M)
    req = re.search(r"^# Required-Start:(.*)$", text, re.M)
    return m.group(1), int(m.group(2)), (req.group(1).split() if req else [])


def _rc3_order(root: Path) -> list[str]:
    links = sorted(p.name for p in (root / "etc/rc.d/rc3.d").iterdir() if p.name.startswith("S"))
    return [re.sub(r"^S\d\d", "", n) for n in links]


@pytest.mark.parametrize("managed_by", ["init", "rgmanager"])
def test_init_order_from_the_overrides_matches_the_seed(tmp_path, managed_by):
    from isobuild import initorder

    root, env = _scratch_node(tmp_path, managed_by)
    initd = root / "etc/rc.d/init.d"
    shipped = {p.name: p.read_bytes() for p in initd.iterdir()}
    r = _run_step("40-init-order", env)
    assert r.returncode == 0, r.stdout + r.stderr
    table = initorder.services(managed_by)
    overrides = root / "etc/chkconfig.d"
    # 1. the packages' scripts are as shipped; every override says what the one table says
    assert {p.name: p.read_bytes() for p in initd.iterdir()} == shipped
    for svc in table:
        levels, start, req = _header(overrides / svc.name)
        assert (levels, start, req) == (svc.levels, svc.start, list(svc.required_start)), svc.name
        assert "description" not in (overrides / svc.name).read_text().lower()  # or chkconfig stops reading
    # 2. the order computed from the overrides alone: enabled services by start number
    enabled = sorted((s for s in table if _header(overrides / s.name)[0] != "-"),
                     key=lambda s: _header(overrides / s.name)[1])
    computed = [s.name for s in enabled]
    seed = SEED_ORDER if managed_by == "init" else [s for s in SEED_ORDER if s not in initorder.RGMANAGER_OWNED]
    assert [n for n in computed if n in SEED_ORDER] == seed
    assert computed[-1] == "rgmanager"
    # 3. every Required-Start dependency that is enabled starts earlier
    starts = {s.name: _header(overrides / s.name)[1] for s in enabled}
    for name in computed:
        for dep in _header(overrides / name)[2]:
            if dep in starts:
                assert starts[dep] < starts[name], f"{name} requires {dep}"
    # 4. chkconfig re-added them: the rc3.d start links follow the same order; a `later` service
    #    (init mode: drbd, switched on by 60-drbd once the metadata exists) has no start link yet
    later = {s.name for s in table if s.state == "later"}
    assert later == ({"drbd"} if managed_by == "init" else set())
    assert [n for n in _rc3_order(root) if n in starts] == [n for n in computed if n not in later]
    off = {s.name for s in table if not s.enabled} | later
    for name in off:
        assert not list((root / "etc/rc.d/rc3.d").glob(f"S??{name}")), f"{name} must be off"
    if managed_by == "rgmanager":
        assert {"drbd", "clvmd", "gfs2"} <= off
    # idempotent: a second run changes nothing
    before = {p.name: p.read_text() for p in overrides.iterdir()}
    assert _run_step("40-init-order", env).returncode == 0
    assert {p.name: p.read_text() for p in overrides.iterdir()} == before


@pytest.mark.parametrize("package", ["cman", "drbd", "xend"])
def test_init_order_survives_a_package_update(tmp_path, package):
    """`yum update` of a package: rpm puts its stock init script back and its %post runs
    `chkconfig --add` (drbd 8.3.7 drbd.spec.in, our xen spec); later someone (step 50 on a resume,
    an operator) runs `chkconfig NAME on`. The order must still be the table's."""
    from isobuild import initorder

    root, env = _scratch_node(tmp_path, "init")
    assert _run_step("40-init-order", env).returncode == 0
    chkconfig = lambda *args: subprocess.run([str(Path(env["PATH"].split(":")[0]) / "chkconfig"), *args],  # noqa: E731
                                             env=env, capture_output=True, text=True)
    assert chkconfig("drbd", "on").returncode == 0  # as 60-drbd does once the metadata exists
    want = _rc3_order(root)
    assert [n for n in want if n in SEED_ORDER] == SEED_ORDER
    shutil.copy(FIXTURE_ROOT / "etc/rc.d/init.d" / package, root / "etc/rc.d/init.d" / package)  # the update
    for args in (["--add", package], [package, "on"]):
        r = chkconfig(*args)
        assert r.returncode == 0, r.stderr
        assert _rc3_order(root) == want, f"after chkconfig {' '.join(args)}"
    svc = next(s for s in initorder.services("init") if s.name == package)
    assert list((root / "etc/rc.d/rc3.d").glob(f"S{svc.start:02d}{package}"))


def test_chkconfig_shim_follows_chkconfig_1_3_46(tmp_path):
    """The harness chkconfig reads headers the way chkconfig 1.3.46 does: an LSB block after the
    description is not read (no dependencies); one before it is, and --add then places the service
    after what it requires."""
    root, env = _scratch_node(tmp_path, "init")
    initd = root / "etc/rc.d/init.d"
    (initd / "early").write_text("#!/bin/bash\n# chkconfig: 2345 10 90\n# description: early\n")
    (initd / "late").write_text("#!/bin/bash\n### BEGIN INIT INFO\n# Provides: late\n# Required-Start: early\n"
                                "# Default-Start: 2 3 4 5\n### END INIT INFO\n# chkconfig: 2345 05 95\n"
                                "# description: late\n")
    (initd / "ignored").write_text("#!/bin/bash\n# chkconfig: 2345 05 95\n# description: x\n### BEGIN INIT INFO\n"
                                   "# Required-Start: early\n### END INIT INFO\n")
    chkconfig = str(Path(env["PATH"].split(":")[0]) / "chkconfig")
    for name in ("early", "late", "ignored"):
        assert subprocess.run([chkconfig, "--add", name], env=env, capture_output=True).returncode == 0
    rc3 = sorted(p.name for p in (root / "etc/rc.d/rc3.d").iterdir())
    assert "S10early" in rc3 and "S11late" in rc3 and "S05ignored" in rc3, rc3
    r = subprocess.run([chkconfig, "--frobnicate", "x"], env=env, capture_output=True, text=True)
    assert r.returncode != 0


def test_xen_step_edits_grub_yum_xend_and_libvirt_once(tmp_path):
    root, env = _scratch_node(tmp_path, "init")
    r = _run_step("30-xen", env)
    assert r.returncode == 0, r.stdout + r.stderr
    grub = (root / "boot/grub/grub.conf").read_text()
    titles = re.findall(r"^title (.*)$", grub, re.M)
    default = int(re.search(r"^default=(\d+)$", grub, re.M).group(1))
    assert titles[default].startswith("Xen 4.0.1")
    entry = grub.split("title " + titles[default])[1]
    assert "kernel /xen.gz dom0_mem=1024M" in entry
    assert "module /vmlinuz-2.6.32.23-170.dom0_an1.fc13.x86_64 ro root=UUID=865690db" in entry  # this install's args
    assert "module /initramfs-2.6.32.23-170.dom0_an1.fc13.x86_64.img" in entry
    assert "exclude=kernel*" in (root / "etc/yum.conf").read_text().splitlines()
    script = root / "etc/xen/scripts/an-network-script"
    assert os.access(script, os.X_OK) and "netdev=eth2 bridge=eth2" in script.read_text()
    sxp = (root / "etc/xen/xend-config.sxp").read_text()
    active = [ln for ln in sxp.splitlines() if ln.startswith("(")]
    assert "(network-script an-network-script)" in active
    assert "(xend-relocation-server yes)" in active
    assert [ln for ln in active if ln.startswith("(xend-relocation-hosts-allow")] == [
        "(xend-relocation-hosts-allow '^198\\\\.18\\\\.1\\\\.72$ ^localhost$ ^localhost\\\\.localdomain$')"]
    assert (root / "etc/libvirt/qemu/networks/default.xml").read_text() == ""
    assert not os.path.lexists(root / "etc/libvirt/qemu/networks/autostart/default.xml")
    before = {p: p.read_bytes() for p in (root / "boot/grub/grub.conf", root / "etc/yum.conf", root / "etc/xen/xend-config.sxp")}
    assert _run_step("30-xen", env).returncode == 0
    assert {p: p.read_bytes() for p in before} == before


def test_xen_step_adds_kernel_to_an_existing_exclude_line(tmp_path):
    root, env = _scratch_node(tmp_path, "init")
    yum = root / "etc/yum.conf"
    yum.write_text(yum.read_text() + "exclude=firefox*\n")
    r = _run_step("30-xen", env)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = yum.read_text().splitlines()
    assert [ln for ln in lines if ln.startswith("exclude=")] == ["exclude=firefox* kernel*"]
    assert oct(yum.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in yum.parent.iterdir() if p.name.startswith(".yum.conf")] == []


def test_xen_step_without_a_dom0_kernel_says_what_is_missing(tmp_path):
    root, env = _scratch_node(tmp_path, "init")
    grub = root / "boot/grub/grub.conf"
    grub.write_text(re.sub(r"title Fedora \(2\.6\.32\.23.*?(?=title )", "", grub.read_text(), flags=re.S))
    before = grub.read_text()
    r = _run_step("30-xen", env)
    assert r.returncode != 0
    assert "no grub entry boots the dom0 kernel vmlinuz-2.6.32.23-170.dom0_an1.fc13" in r.stderr
    assert grub.read_text() == before


# ------------------------------------------------------------------------------------------------
# the one way the scripts rewrite a file (lib/common.sh fb_rewrite / fb_update)


def _sh(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    lib = shlex.quote(str(OVERLAY / "lib/common.sh"))
    return subprocess.run(["bash", "-c", f"set -euo pipefail; umask 022; . {lib}; FB_STEP=t; {script}"],
                          env=env or {"PATH": "/usr/bin:/bin", "LANG": "C"}, capture_output=True, text=True)


def _conf(tmp_path: Path, text: str, mode: int) -> tuple[Path, Path, int]:
    """etc/conf holding TEXT with MODE: its directory, the file, its inode."""
    d = tmp_path / "etc"
    d.mkdir()
    f = d / "conf"
    f.write_text(text)
    f.chmod(mode)
    return d, f, f.stat().st_ino


def test_rewrite_is_atomic_sets_the_mode_first_and_leaves_no_temp_file(tmp_path):
    d, f, _ = _conf(tmp_path, "old\n", 0o644)
    os.link(f, tmp_path / "old-inode")  # the old file, to see it is replaced, not written over
    # the filter sees FILE still whole and its output going to a temp file beside FILE
    r = _sh(f"""seen() {{ cat "$1"; ls -a "${{1%/*}}" | grep -c '^\\.conf\\.' >&2; ls -i "${{1%/*}}"/.conf.* >&2; echo new; }}
               fb_rewrite {f} 0640 seen {f}""")
    assert r.returncode == 0, r.stderr
    count, temp = r.stderr.split("\n")[:2]
    assert count == "1" and int(temp.split()[0]) == f.stat().st_ino  # the temp file became FILE (rename)
    assert f.read_text() == "old\nnew\n" and oct(f.stat().st_mode & 0o777) == "0o640"
    assert (tmp_path / "old-inode").read_text() == "old\n"
    assert sorted(p.name for p in d.iterdir()) == ["conf"]
    # stdin, a file that does not exist yet, a secret mode whatever the umask
    r = _sh(f"printf 'k\\n' | fb_write_file {d / 'key'} 0600")
    assert r.returncode == 0 and (d / "key").read_text() == "k\n"
    assert oct((d / "key").stat().st_mode & 0o777) == "0o600"


def test_a_failed_rewrite_leaves_the_old_file(tmp_path):
    d, f, ino = _conf(tmp_path, "old\n", 0o644)
    # the filter fails half way: its status, FILE as it was, no temp file; under set -e the step stops
    r = _sh(f"half() {{ echo partial; return 3; }}; rc=0; fb_rewrite {f} 0600 half || rc=$?; echo $rc; fb_rewrite {f} 0600 half; echo after")
    assert r.stdout == "3\n" and r.returncode == 3
    assert f.read_text() == "old\n" and f.stat().st_ino == ino and oct(f.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in d.iterdir()) == ["conf"]
    # a directory that cannot take the temp file: FILE is not touched either
    r = _sh(f"fb_rewrite {tmp_path / 'no-such-dir' / 'conf'} 0644 echo x")
    assert r.returncode != 0 and not (tmp_path / "no-such-dir").exists()


def test_update_rewrites_only_what_changed_and_stops_the_step_on_failure(tmp_path):
    d, f, ino = _conf(tmp_path, "same\n", 0o600)
    r = _sh(f"rc=0; fb_update {f} 0644 echo same || rc=$?; echo $rc")
    assert r.stdout == "1\n", r.stderr  # unchanged: left alone but for its mode
    assert f.stat().st_ino == ino and oct(f.stat().st_mode & 0o777) == "0o644"
    r = _sh(f"rc=0; fb_update {f} 0644 echo other || rc=$?; echo $rc")
    assert r.stdout == "0\n" and f.read_text() == "other\n" and f.stat().st_ino != ino
    # FB_CHECK sees the new content and may refuse it: FILE stays, the step stops with the check's die
    r = _sh(f"""picky() {{ grep -q good "$1" || die "not good: $(cat "$1")"; }}
               if FB_CHECK=picky fb_update {f} 0644 echo bad; then echo changed; fi; echo after""")
    assert r.returncode != 0 and "after" not in r.stdout and "ERROR: not good: bad" in r.stderr
    assert f.read_text() == "other\n"
    # a failed filter is never read as "unchanged"
    r = _sh(f"if fb_update {f} 0644 false; then echo changed; else echo unchanged; fi")
    assert r.returncode != 0 and r.stdout == "" and f"could not write {f} ('false' failed)" in r.stderr
    # the line for X: replaced, then left alone
    fstab = d / "fstab"
    fstab.write_text("a /x ext4\nb /y ext4\n")
    other = "other() { awk '$2 != \"/y\"' \"$1\"; }; "
    r = _sh(other + f"fb_replace_line {fstab} 0644 'c /y gfs2' other && echo changed; "
            f"fb_replace_line {fstab} 0644 'c /y gfs2' other || echo unchanged")
    assert r.stdout == "changed\nunchanged\n" and fstab.read_text() == "a /x ext4\nc /y gfs2\n"
    assert sorted(p.name for p in d.iterdir()) == ["conf", "fstab"]


def test_a_die_while_rewriting_leaves_no_temp_file(tmp_path):
    libexec, env = _fake_libexec(tmp_path)
    etc = Path(env["AN_ROOT"]) / "etc"
    etc.mkdir(parents=True)
    (etc / "conf").write_text("old\n")
    (libexec / "steps/20-second.sh").write_text(
        '#!/bin/bash\nset -euo pipefail\n. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"\n'
        'fb_step_init 20-second\nrefuse() { echo partial; die "the filter gave up"; }\n'
        'fb_update "$AN_ROOT/etc/conf" 0644 refuse\n')
    r = _runner(libexec, env, "run")
    assert r.returncode != 0 and "the filter gave up" in r.stderr
    assert sorted(p.name for p in etc.iterdir()) == ["conf"] and (etc / "conf").read_text() == "old\n"


# ------------------------------------------------------------------------------------------------
# the rule for one-time destructive commands (lib/common.sh), on image files: blkid/wipefs read them


def _guard(tmp_path: Path, key: str, dev: Path, expected: str, path_first: Path | None = None
           ) -> subprocess.CompletedProcess:
    # the verdict is the status (0 run, 1 done); a refusal exits: printed here as the steps read it
    script = (f". {shlex.quote(str(OVERLAY / 'lib/common.sh'))}; FB_STEP=t; rc=0; "
              f"fb_guard_destructive {key} {shlex.quote(str(dev))} {expected} 'the command' || rc=$?; "
              "case $rc in 0) echo run ;; 1) echo done ;; *) echo \"unexpected status $rc\"; exit 99 ;; esac")
    path = "/usr/sbin:/usr/bin:/sbin:/bin"
    env = {"PATH": f"{path_first}:{path}" if path_first else path, "AN_ROOT": str(tmp_path / "root"), "LANG": "C"}
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)


def _probe_stub(bindir: Path, tool: str, rc: int, stderr: str = "", stdout: str = "") -> Path:
    """A blkid/wipefs that answers as util-linux-ng 2.17.2 does in one situation (misc-utils/blkid.c
    lowprobe_device, misc-utils/wipefs.c read_offsets): what it prints and its exit code."""
    bindir.mkdir(exist_ok=True)
    stub = bindir / tool
    stub.write_text(f"#!/bin/sh\nprintf '%s' {shlex.quote(stdout)}\nprintf '%s' {shlex.quote(stderr)} >&2\nexit {rc}\n")
    stub.chmod(0o755)
    return bindir


def test_destructive_guard_refuses_when_a_probe_fails(tmp_path):
    """A probe that fails is never "blank" (the guard used to hide it with 2>/dev/null and || true)."""
    need_tool("blkid", "wipefs")
    dev = tmp_path / "disk.img"
    with open(dev, "wb") as fh:
        fh.truncate(16 << 20)
    intent = tmp_path / "root/var/lib/an-cluster/firstboot/intent/mkfs-gfs2"
    # a device that is not there: every probe fails; the refusal carries the probe's message
    r = _guard(tmp_path, "mkfs-gfs2", tmp_path / "no-such-disk", "gfs2")
    assert r.returncode != 0 and r.stdout == "", r.stdout
    assert "refusing to run the command: cannot tell whether" in r.stderr and "No such file or directory" in r.stderr
    assert not intent.exists()
    # blkid 2.17.2 cannot open the device (exit 2 with a message) or is ambivalent: refuse
    for rc, msg in ((2, f"error: {dev}: Wrong medium type\n"),
                    (2, f"{dev}: ambivalent result (probably more filesystems on the device, use wipefs(8) "
                        "to see more details)\n"), (4, "The low-level probing mode requires a device\n")):
        r = _guard(tmp_path, "mkfs-gfs2", dev, "gfs2", _probe_stub(tmp_path / f"b{rc}{len(msg)}", "blkid", rc, msg))
        assert r.returncode != 0 and r.stdout == "" and msg.strip() in r.stderr, (rc, msg, r.stderr)
        assert not intent.exists()
    # wipefs cannot initialise probing: refuse with its message
    msg = f"wipefs: error: {dev}: probing initialization failed\n"
    r = _guard(tmp_path, "mkfs-gfs2", dev, "gfs2", _probe_stub(tmp_path / "w1", "wipefs", 1, msg))
    assert r.returncode != 0 and "probing initialization failed" in r.stderr
    # wipefs 2.17.2 on a partitioned disk exits 1 naming the table: that is a signature, not a failure
    msg = f"wipefs: error: {dev}: appears to contain 'dos' partition table\n"
    r = _guard(tmp_path, "mkfs-gfs2", dev, "gfs2", _probe_stub(tmp_path / "w2", "wipefs", 1, msg))
    assert r.returncode != 0 and "signature: dos" in r.stderr and "wipefs -a" in r.stderr
    # blkid's exit 2 with nothing said is "nothing found": a blank device still runs
    r = _guard(tmp_path, "mkfs-gfs2", dev, "gfs2", _probe_stub(tmp_path / "b2", "blkid", 2))
    assert (r.returncode, r.stdout) == (0, "run\n"), r.stderr


def test_destructive_guard_runs_on_blank_skips_its_own_and_refuses_foreign_data(tmp_path):
    need_tool("blkid", "wipefs", "mkfs.ext4", "mkfs.gfs2")
    intent = tmp_path / "root/var/lib/an-cluster/firstboot/intent"
    dev = tmp_path / "disk.img"
    with open(dev, "wb") as fh:
        fh.truncate(64 << 20)
    # blank: go ahead, and the intent is on disk before the command runs
    r = _guard(tmp_path, "mkfs-gfs2", dev, "gfs2")
    assert (r.returncode, r.stdout) == (0, "run\n") and (intent / "mkfs-gfs2").read_text() == f"{dev}\n"
    subprocess.run(["mkfs.gfs2", "-O", "-q", "-p", "lock_dlm", "-t", "a:b", "-j", "2", str(dev)], check=True,
                   capture_output=True)
    # our own filesystem after a cut-off run: do not run again
    r = _guard(tmp_path, "mkfs-gfs2", dev, "gfs2")
    assert (r.returncode, r.stdout) == (0, "done\n"), r.stderr
    # the same filesystem without our intent (an earlier install): refuse, offer adoption
    (intent / "mkfs-gfs2").unlink()
    r = _guard(tmp_path, "mkfs-gfs2", dev, "gfs2")
    assert r.returncode != 0 and r.stdout == ""
    assert "refusing to run the command" in r.stderr and "signature: gfs2" in r.stderr and "adopt it" in r.stderr
    # somebody else's data, with or without an intent: refuse, no adoption offered
    subprocess.run(["mkfs.ext4", "-q", "-F", str(dev)], check=True, capture_output=True)
    before = dev.read_bytes()
    for with_intent in (False, True):
        if with_intent:
            (intent / "mkfs-gfs2").write_text(f"{dev}\n")
        r = _guard(tmp_path, "mkfs-gfs2", dev, "gfs2")
        assert r.returncode != 0 and "signature: ext4" in r.stderr and "wipefs -a" in r.stderr
        assert "adopt it" not in r.stderr
    assert dev.read_bytes() == before


def test_a_wait_that_times_out_is_a_temporary_failure_the_service_retries(tmp_path):
    libexec, env = _fake_libexec(tmp_path)
    (libexec / "steps/20-second.sh").write_text(
        '#!/bin/bash\nset -euo pipefail\n. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"\n'
        'fb_step_init 20-second\nfb_wait "the peer to say hello" test -e "$AN_ROOT/hello"\n')
    env = {**env, "AN_FIRSTBOOT_TIMEOUT": "1", "AN_FIRSTBOOT_POLL": "0.2"}
    r = _runner(libexec, env, "run")
    assert r.returncode == 75, r.stderr
    assert "timed out after 1s waiting for the peer to say hello" in r.stderr
    assert re.search(r"^20-second\s+failed: timed out", _runner(libexec, env, "status").stdout, re.M)
    (Path(env["AN_ROOT"]) / "hello").touch()
    assert _runner(libexec, env, "run").returncode == 0


@pytest.mark.parametrize("codes,expect", [
    ([75, 75, 0], ["trying again in 0s (try 1 of 5)", "trying again in 0s (try 2 of 5)", "done"]),
    ([75, 1], ["trying again", "stopped at a failed step"]),
    ([75] * 5, ["the peer did not show up after 5 tries"]),
])
def test_init_script_retries_only_while_waiting_for_the_peer(tmp_path, codes, expect):
    fake = tmp_path / "fake-firstboot"
    counter = tmp_path / "count"
    fake.write_text("#!/bin/bash\nn=$(cat %s 2>/dev/null || echo 0); echo $((n + 1)) > %s\ncodes=(%s)\nexit ${codes[$n]}\n"
                    % (counter, counter, " ".join(map(str, codes))))
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "AN_FIRSTBOOT_BIN": str(fake), "AN_FIRSTBOOT_RETRIES": "5",
           "AN_FIRSTBOOT_RETRY_PAUSE": "0"}
    r = subprocess.run(["bash", str(OVERLAY / "init.d/an-cluster-firstboot"), "run-foreground"], env=env,
                       capture_output=True, text=True, timeout=60)
    pos = 0
    for text in expect:
        pos = r.stdout.index(text, pos)  # in this order
    assert int(counter.read_text()) == len(codes)


def test_a_failing_step_leaves_no_temporary_files(tmp_path):
    libexec, env = _fake_libexec(tmp_path)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    (libexec / "steps/20-second.sh").write_text(
        '#!/bin/bash\nset -euo pipefail\n. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"\n'
        'fb_step_init 20-second\nt="$(fb_mktemp)"; echo data > "$t"\nfalse\n')
    r = _runner(libexec, {**env, "TMPDIR": str(tmpdir)}, "run")
    assert r.returncode != 0
    assert "command failed (exit 1, line 6): false" in (Path(env["AN_ROOT"]) / "var/log/an-cluster-firstboot.log").read_text()
    assert list(tmpdir.iterdir()) == []


@pytest.mark.parametrize("ignores_term", [False, True], ids=["dies-on-term", "ignores-term"])
def test_init_script_stop_ends_the_run_and_waits(tmp_path, ignores_term):
    """`service an-cluster-firstboot stop` (K02 at shutdown, before K74-K79 take the stack down) ends
    the whole background run: the runner and the command its step runs (here a stand-in for a long
    mkfs), and returns only once they are gone (TERM, then KILL after the bound)."""
    pids = tmp_path / "pids"
    fake = tmp_path / "fake-firstboot"
    trap = "trap '' TERM; " if ignores_term else ""
    # the runner starts a child that would outlive a kill of the runner alone
    fake.write_text(f"#!/bin/bash\n{trap}bash -c '{trap}echo $$ >> {pids}; while :; do sleep 0.1; done' &\n"
                    f"echo $$ >> {pids}\nwait\n")
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "AN_FIRSTBOOT_BIN": str(fake), "AN_FIRSTBOOT_PIDFILE": str(tmp_path / "pid"),
           "AN_FIRSTBOOT_CONSOLE": "/dev/null",
           # the bound before KILL: short where it must run out, generous where TERM must be enough
           "AN_FIRSTBOOT_STOP_TIMEOUT": "2" if ignores_term else "30"}
    script = str(OVERLAY / "init.d/an-cluster-firstboot")
    r = subprocess.run(["bash", script, "start"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    import time

    deadline = time.monotonic() + 60  # both processes of the background run wrote their pid
    while not (pids.exists() and len(pids.read_text().split()) == 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    procs = [int(x) for x in pids.read_text().split()]
    assert len(procs) == 2, procs
    pgid = int((tmp_path / "pid").read_text())
    assert all(os.getpgid(x) == pgid for x in procs) and pgid != os.getpgrp()
    r = subprocess.run(["bash", script, "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert ("killing process group" in r.stdout) == ignores_term, r.stdout
    for x in procs:
        with pytest.raises(ProcessLookupError):
            os.kill(x, 0)
    assert not (tmp_path / "pid").exists()


def test_network_step_keeps_the_hwaddr_anaconda_wrote(tmp_path):
    """mac: {} in the definition: the rendered ifcfg files carry no HWADDR; the ones anaconda wrote
    do (fixture root, as anaconda 13 network.py writes them). Step 10 must not unpin the names."""
    root, env = _scratch_node(tmp_path, "init")
    netdir = root / "etc/sysconfig/network-scripts"
    anaconda = {p.name: re.search(r"^HWADDR=(\S+)$", p.read_text(), re.M).group(1) for p in netdir.glob("ifcfg-eth*")}
    assert len(anaconda) == 3 and not any("HWADDR" in p.read_text()
                                          for p in (root / "var/lib/an-cluster/stage").rglob("ifcfg-eth*"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ping").write_text("#!/bin/sh\nexit 0\n")  # the peer answers
    (bindir / "ping").chmod(0o755)
    env = {**env, "PATH": f"{bindir}:{env['PATH']}"}
    r = _run_step("10-network", env)
    assert r.returncode == 0, r.stdout + r.stderr
    for name, mac in anaconda.items():
        text = (netdir / name).read_text()
        assert re.findall(r"^HWADDR=(\S+)$", text, re.M) == [mac], text
        assert "NM_CONTROLLED=no" in text and "IPADDR=198.18." in text  # the rendered file otherwise
    before = {p.name: p.read_text() for p in netdir.iterdir()}
    assert _run_step("10-network", env).returncode == 0
    assert {p.name: p.read_text() for p in netdir.iterdir()} == before


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("same_key", [True, False], ids=["same-cluster.conf", "other-cluster.conf"])
def test_rendezvous_needs_the_same_cluster_conf_on_both_sides(tmp_path, same_key):
    """lib/rendezvous on loopback (127.0.0.1 and 127.0.0.2 stand for the two BCN addresses): both
    sides return 0 once the other proved it holds the same cluster.conf; with another file (an
    impostor, or a node of another cluster) both refuse and give up after the timeout (exit 2)."""
    port = _free_port()
    keys = [tmp_path / "a.conf", tmp_path / "b.conf"]
    keys[0].write_text('<cluster name="c" config_version="1"/><!-- passwd="s3cret" -->\n')
    keys[1].write_text(keys[0].read_text() if same_key else keys[0].read_text().replace("s3cret", "guess"))
    # the impostor case waits out its whole timeout, so it is short; but both processes must be up
    # within it to see each other's wrong answer, and two Python starts on a loaded machine can be
    # seconds apart: 5 s, not 2
    timeout = "30" if same_key else "5"
    tool = str(OVERLAY / "lib/rendezvous")
    procs = [subprocess.Popen([sys.executable, tool, me, peer, ip, pip, str(port), str(key), timeout, "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for me, peer, ip, pip, key in (("n1", "n2", "127.0.0.1", "127.0.0.2", keys[0]),
                                            ("n2", "n1", "127.0.0.2", "127.0.0.1", keys[1]))]
    outs = [p.communicate(timeout=90)[0] for p in procs]
    codes = [p.returncode for p in procs]
    if same_key:
        assert codes == [0, 0], outs
    else:
        assert codes == [2, 2], outs
        assert all("did not come within 5s" in o for o in outs), outs
        assert any("wrong node or key" in o or "wrong answer" in o for o in outs), outs
    assert not any("s3cret" in o or "guess" in o for o in outs)


def test_ccs_config_validate_shim_takes_what_3_0_12_takes(tmp_path):
    """cluster 3.0.12's ccs_config_validate: -l and -f together are refused (what steps 50/90 ran
    before), -f FILE is checked against the node's cluster.rng."""
    from harness import cman_schema

    root, env = _scratch_node(tmp_path, "init")
    (root / "usr/share/cluster").mkdir(parents=True)
    shutil.copy(cman_schema(), root / "usr/share/cluster/cluster.rng")
    tool = str(Path(env["PATH"].split(":")[0]) / "ccs_config_validate")
    good = tmp_path / "good.conf"
    good.write_text('<cluster name="c" config_version="1"><clusternodes><clusternode name="a" nodeid="1"/>'
                    '</clusternodes></cluster>\n')
    bad = tmp_path / "bad.conf"
    bad.write_text('<cluster name="c" config_version="1"><nonsense/></cluster>\n')
    def run(*args):
        return subprocess.run([tool, *args], env=env, capture_output=True, text=True)
    both = run("-l", str(good), "-f", str(good))
    assert both.returncode == 255 and "can not be set together" in both.stderr
    assert run("-f", str(good)).returncode == 0
    r = run("-f", str(bad))
    assert r.returncode != 0 and "fails to validate" in r.stdout


def test_xend_is_never_started_under_a_running_cman(tmp_path):
    """fb_ensure_xend (before every first cman start): with cman already running and xend not,
    starting xend would run its network script under totem; it refuses and says to reboot."""
    root, env = _scratch_node(tmp_path, "init")
    for rel in ("etc/xen/xend-config.sxp", "etc/xen/scripts/an-network-script"):
        shutil.copy(root / "var/lib/an-cluster/stage" / rel, root / rel)
    run = Path(env["FBH_DIR"]) / "run" / env["FBH_NODE"]
    run.mkdir(parents=True)
    (run / "svc.cman").write_text("running\n")
    script = (f". {OVERLAY}/lib/common.sh; . {OVERLAY}/lib/cluster.sh; fb_load_env; fb_ensure_xend")
    r = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "xend is not running but cman is" in r.stderr, r.stderr
    assert not (run / "svc.xend").exists()
    (run / "svc.cman").unlink()
    r = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (run / "svc.xend").exists()
