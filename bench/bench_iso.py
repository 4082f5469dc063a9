"""ISO remaster benchmark: the one-pass floor, mkksiso's method, and ours, on synthetic F13 bases.

    python bench/bench_iso.py --size 2G,4G      (or: invoke bench-iso --size 2G,4G)
    python bench/bench_iso.py --size 300M      (a quick run)

For each size it builds a base with tests/fixtures/f13base.py (the real F13 DVD layout, padded
with incompressible filler files), reads it once so every method starts from a warm page cache,
then runs, each as its own process, measuring wall time and peak RSS (wait4 rusage):

  floor    `cp base out` and `md5sum base`; the floor is the slower of the two (one pass)
  limit    `md5sum base` + one SHA-256 pass (Python's hashlib, as the build uses): an image with an
           implanted MD5 and a .sha256 of the finished image needs both passes one after the
           other (the MD5 record sits before everything it covers), so no build can beat this
  mkksiso  `xorriso -indev base -outdev out -boot_image any replay -joliet on -compliance
           no_emul_toc -update <cfg> /isolinux/isolinux.cfg -map <ks> /ks/<node>.ks ...`,
           then `implantisomd5 --force out` (lorax mkksiso's two passes)
  ours     isobuild.iso.build_iso (ISO stage only: kickstarts, node files, a prepared repo,
           overlay, boot menu, isohybrid, implanted isomd5sum, .sha256 and manifest), as a
           first build (the base's sha256 is computed for the manifest) and as a rebuild (the
           base's sha256 is cached by its stat fingerprint)
  invoke   the whole `invoke iso --force` process a user waits for (definition, render and
           validate checks, the disc; the base's sha256 cached by a first, untimed run)

Between runs the output is deleted and `sync` runs (not timed), so write-back of one run does not
slow the next. Prints a table with ratios to the floor and to the limit. Numbers are figures, not
test assertions.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NODES = {"an-node01": "an-node01.alteeve.ca", "an-node02": "an-node02.alteeve.ca"}


def parse_size(text: str) -> int:
    text = text.strip().upper().rstrip("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(float(text[:-1] if text[-1:] in "KMG" else text) * mult)


def measure(argv: list[str], **kw) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one command, which must succeed.

    The command runs under GNU time: the rusage of a child forked from this Python process would
    count Python's own memory from before exec (and busybox's time reports 4x too much).
    """
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "Maximum resident set size (kbytes): %M", *map(str, argv)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    wall = time.monotonic() - start
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"bench: command failed ({proc.returncode}): {' '.join(map(str, argv))}\n{err[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    return wall, int(m.group(1)) / 1024 if m else float("nan")


def settle(*paths: Path) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    subprocess.run(["sync"], check=True)


def warm(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(8 << 20):
            pass


def prepare_inputs(work: Path) -> dict:
    """Kickstarts, per-node files and a repo for our run and mkksiso's (outside the timing)."""
    from isobuild.repo import make_repo
    from tests.fixtures import f13base

    inp = work / "inputs"
    if inp.exists():
        shutil.rmtree(inp)
    (inp / "ks").mkdir(parents=True)
    for node in NODES:
        (inp / "ks" / f"{node}.ks").write_text(f"# {node}\ncdrom\ntext\n")
        (inp / "nodes" / node / "etc").mkdir(parents=True)
        (inp / "nodes" / node / "etc" / "hosts").write_text(f"10.0.0.1 {node}\n")
    f13base.build_rpms(inp / "rpms")
    make_repo([inp / "rpms"], inp / "repo", revision=1274745600)
    return {"inputs": str(inp), "overlay": str(REPO / "overlay")}


def run_ours(spec_file: str) -> None:
    """Child process: one build_iso call (so its RSS is measured alone)."""
    from isobuild import iso, log

    spec = json.loads(Path(spec_file).read_text())
    inp = Path(spec["inputs"])
    log.set_quiet(True)
    res = iso.build_iso(iso.IsoInputs(
        cluster="bench", kickstarts={n: inp / "ks" / f"{n}.ks" for n in NODES}, fqdns=NODES,
        out_dir=Path(spec["out"]) / "out", base=Path(spec["base"]), repo_dir=inp / "repo",
        nodes_dir=inp / "nodes", overlay_dir=Path(spec["overlay"]), console="ttyS0,115200",
        source_date_epoch=1274745600), Path(spec["out"]), force=True)
    Path(spec_file).with_suffix(".timings.json").write_text(json.dumps(res.timings))


def mkksiso_cfg(base: Path, work: Path) -> Path:
    """The edited isolinux.cfg mkksiso would put on the disc (same edit as ours)."""
    from isobuild import isolinux

    text = subprocess.run(["isoinfo", "-R", "-i", str(base), "-x", "/isolinux/isolinux.cfg"],
                          check=True, capture_output=True).stdout.decode()
    cfg = work / "isolinux.cfg"
    cfg.write_text(isolinux.add_node_entries(
        text, [isolinux.NodeEntry(n, f, "bench") for n, f in NODES.items()], "ttyS0,115200"))
    return cfg


def bench_size(size: int, work: Path, spec_base: dict) -> list[tuple[str, float, float]]:
    from tests.fixtures import f13base

    label = f"{size / (1 << 30):.1f} GiB" if size >= 1 << 30 else f"{size >> 20} MiB"
    bdir = work / f"base-{size >> 20}M"
    if bdir.exists():
        shutil.rmtree(bdir)
    print(f"bench: building a {label} synthetic F13 base ...", file=sys.stderr, flush=True)
    base = f13base.build_base(bdir, filler_bytes=max(0, size - (32 << 20)))
    real = base.stat().st_size
    warm(base)
    out = work / "out.iso"
    rows = []

    t_cp, r_cp = measure(["cp", base, out])
    settle(out)
    t_md5, r_md5 = measure(["md5sum", base])
    t_sha, r_sha = measure([sys.executable, __file__, "--sha256", base])
    floor, limit = max(t_cp, t_md5), t_md5 + t_sha
    rows.append(("cp base out", t_cp, r_cp))
    rows.append(("md5sum base", t_md5, r_md5))
    rows.append(("sha256 pass (hashlib)", t_sha, r_sha))
    rows.append(("limit: md5sum + sha256", limit, float("nan")))

    cfg = mkksiso_cfg(base, work)
    inp = Path(spec_base["inputs"])
    maps = []
    for n in NODES:
        maps += ["-map", inp / "ks" / f"{n}.ks", f"/ks/{n}.ks"]
    t_x, r_x = measure(["xorriso", "-indev", base, "-outdev", out, "-boot_image", "any", "replay",
                        "-joliet", "on", "-compliance", "no_emul_toc",
                        "-update", cfg, "/isolinux/isolinux.cfg", *maps])
    t_i, r_i = measure(["implantisomd5", "--force", out])
    settle(out)
    rows.append(("mkksiso: xorriso", t_x, r_x))
    rows.append(("mkksiso: implantisomd5", t_i, r_i))
    rows.append(("mkksiso total", t_x + t_i, max(r_x, r_i)))

    spec = dict(spec_base, base=str(base), out=str(work / "ours"))
    spec_file = work / "spec.json"
    spec_file.write_text(json.dumps(spec))
    t_o, r_o = measure([sys.executable, __file__, "--run-ours", spec_file], cwd=REPO)
    rows.append(("ours, first build", t_o, r_o))
    # The usual rebuild (definition changed, same base): the base's sha256 for the manifest is
    # cached by its size/mtime/inode, so only the disc itself is read and hashed.
    (work / "ours" / "out").exists() and shutil.rmtree(work / "ours" / "out")
    subprocess.run(["sync"], check=True)
    t_r, r_r = measure([sys.executable, __file__, "--run-ours", spec_file], cwd=REPO)
    settle(work / "ours")
    rows.append(("ours, rebuild (base cached)", t_r, r_r))
    phases = json.loads(spec_file.with_suffix(".timings.json").read_text())
    nan = float("nan")
    rows.append(("  of which write+isomd5sum", phases["write_isomd5sum"], nan))
    rows.append(("  of which sha256 of image", phases["sha256"], nan))
    rows.append(invoke_row(base, work, Path(spec_base["inputs"]) / "repo"))

    print(f"\nbase {label} ({real / (1 << 20):.0f} MiB), floor = {floor:.2f} s (slower of cp and md5sum), "
          f"limit = {limit:.2f} s (md5sum + sha256)")
    print(f"{'method':<30} {'wall s':>8} {'x floor':>8} {'x limit':>8} {'peak RSS MiB':>13}")
    for name, t, r in rows:
        rss = f"{r:13.1f}" if r == r else f"{'':13}"
        print(f"{name:<30} {t:8.2f} {t / floor:8.2f} {t / limit:8.2f} {rss}")
    settle(bdir)
    return rows


def invoke_row(base: Path, work: Path, repo: Path) -> tuple[str, float, float]:
    """The whole `invoke iso --force` as a user runs it, on the project's cluster.yaml."""
    build = work / "invoke-build"
    if build.exists():
        shutil.rmtree(build)
    shutil.copytree(repo, build / "repo")
    # The synthetic base and the fixture repo lack the cluster's own packages (kernel, drbd, ...):
    # built anyway, as the timing does not depend on them.
    argv = [sys.executable, "-m", "invoke", "iso", "--build-dir", build, "--base", base, "--quiet",
            "--allow-missing-packages"]
    measure(argv, cwd=REPO)  # renders, validates and hashes the base once (cached from then on)
    shutil.rmtree(build / "out")
    subprocess.run(["sync"], check=True)
    t, r = measure([*argv, "--force"], cwd=REPO)
    settle(build)
    return "invoke iso --force (whole)", t, r


def sha256_pass(path: str) -> None:
    """Child process: one SHA-256 pass over `path` the way the build reads the image."""
    from isobuild.stamps import sha256_file

    sha256_file(Path(path))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="2G,4G", help="comma-separated base sizes, e.g. 2G,4G or 300M")
    ap.add_argument("--workdir", default=str(REPO / "bench" / "out"), help="scratch dir (deleted afterwards)")
    ap.add_argument("--run-ours", help=argparse.SUPPRESS)
    ap.add_argument("--sha256", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run_ours:
        run_ours(args.run_ours)
        return
    if args.sha256:
        sha256_pass(args.sha256)
        return
    for tool in ("/usr/bin/time", "cp", "md5sum", "xorriso", "implantisomd5", "genisoimage", "isoinfo", "createrepo_c", "rpmbuild"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} not installed (scripts/setup.sh installs it)")
    sizes = [parse_size(s) for s in args.size.split(",") if s.strip()]
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    need = max(sizes) * 3 + (256 << 20)
    free = shutil.disk_usage(work).free
    if free < need:
        raise SystemExit(f"bench: {free >> 30} GiB free in {work}, need about {need >> 30} GiB for {args.size}")
    try:
        spec = prepare_inputs(work)
        for size in sizes:
            bench_size(size, work, spec)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
