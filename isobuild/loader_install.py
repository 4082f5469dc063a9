"""install: disks, partitions, the root hash and authorized keys files, packages."""
from __future__ import annotations

import re
from pathlib import Path

from .checker import Checker, Values
from .model import Install, Partition, Secret
from .settings import fill
from .values import CRYPT_RE, DISK_RE, PKG_RE, parse_size_mib


def load_install(ck: Checker, top, read_secret) -> Install:
    m = ck.section(top, "install", "install")
    disks = _install_disks(ck, m)
    parts = _install_partitions(ck, m)
    hash_file, root_hash = _root_password_hash(ck, m, read_secret)
    keys_file, keys = _authorized_keys(ck, m, read_secret)
    packages = []
    for i, p in enumerate(m.get("packages", []) or []):
        if not isinstance(p, str) or not PKG_RE.match(p):
            ck.at(f"install.packages[{i}]", f"{p!r} is not a package or @group name")
        else:
            packages.append(p)
    return fill(Install, m, disks=tuple(disks), partitions=tuple(parts), root_password_hash_file=hash_file,
                root_password_hash=root_hash, ssh_authorized_keys_file=keys_file, ssh_authorized_keys=keys,
                packages=tuple(packages))


def _install_disks(ck: Checker, m: Values) -> list[str]:
    disks = [str(d) for d in m.get("disks", [])]
    if "disks" in m:
        if len(disks) not in (1, 2):
            ck.at("install.disks",
                  f"one or two disks are supported, got {len(disks)}",
                  "two disks give software RAID1")
        for i, d in enumerate(disks):
            if not DISK_RE.match(d):
                ck.add(f"install.disks[{i}]", f"{d!r} is not a disk name", ck.line(f"install.disks[{i}]"),
                       "a kernel disk name without /dev/, e.g. sda")
        if len(set(disks)) != len(disks):
            ck.at("install.disks", "a disk is listed twice")
    return disks


def _install_partitions(ck: Checker, m: Values) -> list[Partition]:
    """install.partitions: mount points unique, one at /, sizes that parse."""
    parts: list[Partition] = []
    mounts: dict[str, int] = {}
    pseq = m.get("partitions", [])
    if "partitions" in m and not pseq:
        ck.at("install.partitions", "at least one partition (/) is needed")
    for i, item in enumerate(pseq):
        path = f"install.partitions[{i}]"
        pm = ck.mapping(item, path, "partition", ck.item_line(pseq, i))
        if pm is None or "mount" not in pm or "size" not in pm:
            continue
        mount, size = pm["mount"], str(pm["size"])
        if mount != "swap" and not re.match(r"^/[A-Za-z0-9._/-]*$", mount):
            ck.at(f"{path}.mount", f"{mount!r} is not an absolute mount point or 'swap'")
        if mount in mounts:
            ck.at(f"{path}.mount", f"{mount} is already used by install.partitions[{mounts[mount]}]")
        mounts.setdefault(mount, i)
        mib = parse_size_mib(size)
        if mib is None:
            ck.at(f"{path}.size", f"{size!r} is not a size", "a number with K, M, G or T, e.g. 256M or 4G")
            continue
        parts.append(fill(Partition, pm, size_mib=mib))
    if pseq and "/" not in mounts:
        ck.at("install.partitions", "no partition is mounted at /")
    return parts


def _root_password_hash(ck: Checker, m: Values, read_secret) -> tuple[Path, Secret | None]:
    """The root hash file must hold a crypt(3) hash, never a plain password."""
    hash_file, root_hash = Path(""), None
    if "root_password_hash_file" in m:
        hash_file, root_hash = read_secret(m["root_password_hash_file"], "install.root_password_hash_file",
                                           ck.line("install.root_password_hash_file"), "root password hash")
        if root_hash is not None and not CRYPT_RE.match(root_hash.reveal().strip()):
            ck.at("install.root_password_hash_file",
                  f"{m['root_password_hash_file']} does not hold a crypt(3) hash ($1$, $5$ or $6$)",
                  "never store a plain password: create one with `openssl passwd -6` or "
                  "`python3 -c 'import crypt; print(crypt.crypt(input()))'`")
            root_hash = None
        elif root_hash is not None:
            root_hash = Secret(root_hash.reveal().strip(), root_hash.source)
    return hash_file, root_hash


def _authorized_keys(ck: Checker, m: Values, read_secret) -> tuple[Path | None, Secret | None]:
    keys_file, keys = None, None
    if "ssh_authorized_keys_file" in m:
        keys_file, keys = read_secret(m["ssh_authorized_keys_file"], "install.ssh_authorized_keys_file",
                                      ck.line("install.ssh_authorized_keys_file"), "authorized keys")
        if keys is not None:
            for n, ln in enumerate(keys.reveal().splitlines(), 1):
                ln = ln.strip()
                if ln and not ln.startswith("#") and not re.search(r"(^|\s)(ssh-(rsa|dss|ed25519)|ecdsa-sha2-\S+) \S+", ln):
                    ck.at("install.ssh_authorized_keys_file",
                          f"{m['ssh_authorized_keys_file']} line {n} is not an OpenSSH public key",
                          "one 'ssh-rsa AAAA... comment' per line")
                    keys = None
                    break
    return keys_file, keys
