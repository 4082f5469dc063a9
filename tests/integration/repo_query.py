"""Read a yum repo back with dnf, as Fedora's yum would see it (shared by the RPM tests)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import need_tool


def repoquery(repo_dir: Path, tmp_path: Path) -> list[str]:
    dnf = need_tool("dnf")["dnf"]
    out = subprocess.run(
        [dnf, "repoquery", "-q", "--releasever=13", f"--repofrompath=an,{repo_dir}", "--repo=an",
         f"--setopt=cachedir={tmp_path / 'dnfcache'}", "--qf", "%{name}-%{version}-%{release}.%{arch}", "*"],
        check=True, capture_output=True, text=True,
    ).stdout
    return sorted(line for line in out.splitlines() if line.strip())
