"""A yum repository Fedora 13's yum 3.2 and anaconda 13 can read, made with createrepo_c.

Modern createrepo_c defaults would not do: yum 3.2 reads gzip XML only (no zstd/xz), so we pass
`--general-compress-type=gz --checksum=sha256`. We also pass `--no-database`: yum 3.2 only knows
bzip2-compressed sqlite, and with the general compression set to gz createrepo_c would write
`*.sqlite.gz`, which yum would mistake for a raw database. Without sqlite files yum 3.2 builds its
own cache from the XML. Timestamps come from `revision` (SOURCE_DATE_EPOCH) so the metadata is
reproducible.

The repository appears atomically: packages are copied into a temp dir beside `out_dir`,
createrepo_c runs there, then the dir is renamed into place. A failure leaves the old repo intact.
"""
from __future__ import annotations

import gzip
import os
import re
import shutil
from pathlib import Path
from typing import Iterable

from .errors import IsobuildError
from .outputs import atomic_dir
from .run import require, run, stream
from .stamps import sha256_file

# Fixed createrepo_c flags; tests compare against these so a change here is deliberate.
CREATEREPO_FLAGS = (
    "--general-compress-type=gz",
    "--checksum=sha256",
    "--repomd-checksum=sha256",
    "--no-database",
    "--simple-md-filenames",
    "--workers=1",
)
DEFAULT_REVISION = 1262304000  # 2010-01-01 UTC, used when no SOURCE_DATE_EPOCH is given


def collect_rpms(rpm_dirs: Iterable[Path]) -> list[Path]:
    """Binary RPMs (not .src.rpm) found directly in each dir, sorted by file name; duplicates must agree."""
    found: dict[str, Path] = {}
    for d in rpm_dirs:
        d = Path(d)
        if not d.is_dir():
            raise IsobuildError(
                f"RPM directory does not exist: {d}",
                hint="run `invoke rpms` first, or pass the directory that holds the built packages",
            )
        for p in sorted(d.glob("*.rpm")):
            if p.name.endswith(".src.rpm") or not p.is_file():
                continue
            prev = found.get(p.name)
            if prev is not None and sha256_file(prev) != sha256_file(p):
                raise IsobuildError(
                    f"two different packages share the file name {p.name}: {prev} and {p}",
                    hint="remove the stale one (e.g. `rm -r build/rpms` and rebuild)",
                )
            found.setdefault(p.name, p)
    return [found[name] for name in sorted(found)]


def make_repo(
    rpm_dirs: Iterable[Path],
    out_dir: Path,
    *,
    revision: int | None = None,
    allow_empty: bool = False,
    log_path: Path | None = None,
) -> Path:
    """Copy every binary RPM from `rpm_dirs` into `out_dir` (flat) and index it with createrepo_c.

    `revision` is a Unix time used for repomd.xml's revision and all timestamps (defaults to
    $SOURCE_DATE_EPOCH, then DEFAULT_REVISION). With `log_path`, createrepo_c's output streams into
    it (a big repo takes a while); without, it is captured. Returns `out_dir`.
    """
    tool = require("createrepo_c", "createrepo-c")
    rpm_dirs = [Path(d) for d in rpm_dirs]
    rpms = collect_rpms(rpm_dirs)
    if not rpms and not allow_empty:
        where = ", ".join(str(d) for d in rpm_dirs) or "(no directories given)"
        raise IsobuildError(
            f"no binary RPMs found in {where}",
            hint="run `invoke rpms` first (the an-cluster-firstboot package builds on any host)",
        )
    if revision is None:
        revision = int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_REVISION))
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for src in rpms:
            dst = tmp / src.name
            shutil.copyfile(src, dst)  # a copy, not a link: the repo must not change if build/rpms does
            os.chmod(dst, 0o644)
            # createrepo_c records file mtimes in primary.xml; pin them too.
            os.utime(dst, (revision, revision))
        argv = [tool, *CREATEREPO_FLAGS, f"--revision={revision}", "--set-timestamp-to-revision", "--quiet", tmp]
        if log_path is not None:
            stream(argv, log_path, what=f"createrepo_c {out_dir}")
        else:
            run(argv, timeout=600)
        repomd = tmp / "repodata" / "repomd.xml"
        if not repomd.is_file():
            raise IsobuildError(f"createrepo_c wrote no repodata/repomd.xml for {out_dir}")
        # createrepo_c skips unreadable packages with only a warning; a repo missing one is wrong.
        indexed = indexed_locations(tmp)
        skipped = [src for src in rpms if src.name not in indexed]
        if skipped:
            raise IsobuildError(
                "createrepo_c could not read: " + ", ".join(str(p) for p in skipped),
                hint="the file is not a valid RPM (truncated or corrupt?); rebuild it with `invoke rpms`",
            )
        for p in [*tmp.joinpath("repodata").iterdir(), tmp / "repodata"]:
            os.utime(p, (revision, revision))
        os.chmod(tmp, 0o755)
    return out_dir


def indexed_locations(repo_dir: Path) -> set[str]:
    """location hrefs listed in the repo's primary.xml.gz."""
    repo_dir = Path(repo_dir)
    repomd = (repo_dir / "repodata" / "repomd.xml").read_text()
    m = re.search(r'<data type="primary">.*?<location href="([^"]+)"', repomd, re.S)
    if not m:
        raise IsobuildError(f"{repo_dir}/repodata/repomd.xml lists no primary metadata")
    with gzip.open(repo_dir / m.group(1), "rt", encoding="utf-8") as fh:
        primary = fh.read()
    return set(re.findall(r'<location href="([^"]+)"', primary))
