"""Secret files named by the definition (fence passwords, the root hash, authorized keys): read safely, digested, warned about."""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from . import log
from .checker import Checker
from .model import DEMO_MARKER, Secret


SECRET_MAX = {False: 4096, True: 64 * 1024}  # bytes: a password/hash, an authorized_keys file
_WARNED: set = set()  # (file, warning) already printed by this process (`invoke all` loads the definition per stage)


def read_secret_file(full: Path, rel: str, kind: str, multiline: bool) -> tuple[str | None, str, str | None]:
    """(value, problem, hint): value None with the problem when the file is unusable; else the value
    with one trailing newline stripped (single-line secrets), and a warning when group/others can read it.

    Symlinks are followed on purpose (secret stores such as /run/secrets link to their files), but
    what they reach must be a regular file: a FIFO, device or directory is refused before it is read.
    """
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        return None, f"{kind} file not found: {rel} (looked at {full})", \
            "create it (relative paths are relative to the definition file)"
    except OSError as err:
        return None, f"{kind} file cannot be read: {rel} ({err.strerror})", "check its permissions"
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return None, f"{kind} file {rel} is a directory", "name the file inside it"
        if not stat.S_ISREG(st.st_mode):
            return None, f"{kind} file {rel} is not a regular file", "name a plain file holding only the secret"
        limit = SECRET_MAX[multiline]
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        return None, f"{kind} file {rel} is larger than {limit} bytes", "it should hold the secret only"
    try:
        value = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, f"{kind} file {rel} is not UTF-8 text", "it should hold the secret only"
    if not multiline:
        value = value[:-1] if value.endswith("\n") else value  # `echo secret > file` adds one
    allowed = "\n\t" if multiline else ""
    bad = [c for c in value if (ord(c) < 0x20 or ord(c) == 0x7f) and c not in allowed]
    if bad:
        what = "a line break" if bad[0] in "\r\n" else f"the control character {bad[0]!r}"
        return None, f"{kind} file {rel} contains {what}", \
            "write the secret on one line, with at most one newline at the end" if not multiline else \
            "one key per line, Unix line ends (dos2unix)"
    if stat.S_IMODE(st.st_mode) & 0o077:
        return value, f"{kind} file {rel} is readable by group or others (mode {stat.S_IMODE(st.st_mode):04o})", \
            f"chmod 600 {full}"
    return value, "", None


class SecretReader:
    """Reads the secret files one definition names (called by the part loaders as read_secret(rel, path,
    line, kind)); keeps the digests of what it read (and of other shipped files: `digests`) and whether
    they are the demo secrets."""

    def __init__(self, ck: Checker, definition: Path):
        self.ck = ck
        self.definition = definition
        self.base_dir = definition.resolve().parent
        self.digests: list[str] = []
        self.demo = False

    def __call__(self, rel: str, kpath: str, line: int | None, kind: str) -> tuple[Path, Secret | None]:
        p = Path(rel)
        full = p if p.is_absolute() else self.base_dir / p
        if not rel.strip():
            self.ck.add(kpath, f"names no {kind} file", line, "the path of the file that holds it")
            return p, None
        value, why, hint = read_secret_file(full, rel, kind, multiline=kind == "authorized keys")
        if value is None:
            self.ck.add(kpath, why, line, hint)
            return p, None
        self.digests.append(hashlib.sha256(value.encode()).hexdigest())
        if (full.parent / DEMO_MARKER).exists():
            self.demo = True
        elif why and (full, why) not in _WARNED:  # group/others can read it: warn (once) as ssh does
            _WARNED.add((full, why))  # for keys; demo secrets are public anyway
            log.warn(f"{self.definition}:{line}: {kpath}: {why}\n  hint: {hint}")
        return p, Secret(value, full)
