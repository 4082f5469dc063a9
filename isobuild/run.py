"""One way to run external tools: argv lists only, failures name the command and show its output tail."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from .errors import ToolError

# Debian ships some tools outside PATH (drbd-utils keeps the 8.3 drbdadm in /usr/lib/drbd).
EXTRA_TOOL_DIRS = ("/usr/sbin", "/sbin", "/usr/lib/drbd")


def which(tool: str) -> str | None:
    """Full path of `tool`, looking in PATH and the few sbin/lib dirs Debian hides tools in."""
    found = shutil.which(tool)
    if found:
        return found
    for d in EXTRA_TOOL_DIRS:
        cand = Path(d) / tool
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


def require(tool: str, package: str | None = None) -> str:
    path = which(tool)
    if path is None:
        hint = f"install it (Debian: apt-get install {package})" if package else "install it and retry"
        raise ToolError(f"required tool not found: {tool}", hint=hint)
    return path


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(
    argv: Sequence[str | os.PathLike],
    *,
    check: bool = True,
    capture: bool = True,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run argv (never through a shell). With check, a non-zero exit raises ToolError naming the command."""
    args = [str(a) for a in argv]
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    text = not isinstance(input, bytes)
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=full_env,
            input=input,
            text=text,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            timeout=timeout,
        )
    except FileNotFoundError:
        raise ToolError(f"command not found: {args[0]}", hint="install it and retry") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"command timed out after {timeout}s: {shlex.join(args)}") from None
    if check and proc.returncode != 0:
        out = ""
        if capture:
            out = "\n".join(s for s in (proc.stdout, proc.stderr) if s and isinstance(s, str))
        msg = f"command failed (exit {proc.returncode}): {shlex.join(args)}"
        if out.strip():
            msg += "\n" + tail(out)
        raise ToolError(msg)
    return proc
