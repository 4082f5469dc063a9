"""One way to run external tools: argv lists only, failures name the command and show its output tail.

Short probes are captured in memory (`run`); long commands (mock, rpmbuild, createrepo_c) stream
their output into a log file as it comes, with a live status line on a terminal (`stream`).
"""
from __future__ import annotations

import collections
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from . import log
from .errors import IsobuildError, ToolError

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


def _with_environ(env: Mapping[str, str] | None) -> dict[str, str] | None:
    """`env` on top of our environment (None: inherit it as it is)."""
    return None if env is None else {**os.environ, **env}


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
    full_env = _with_environ(env)
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


TAIL_LINES = 25  # of a failed streamed command, shown in the error


def stream(
    argv: Sequence[str | os.PathLike],
    log_path: Path,
    *,
    what: str | None = None,
    check: bool = True,
    error: type[IsobuildError] = ToolError,
    hint: str | None = None,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run argv with stdout+stderr written to `log_path` line by line as they come; returns the exit code.

    The log starts with `$ <command>`, is 0600 (a tool may print what it was given) and is kept
    whatever happens, Ctrl-C included. On a terminal the latest line is shown as a status line.
    With check, a non-zero exit raises `error` naming `what` (default: the command) and the log,
    with the log's last lines. The child stays in our process group, so Ctrl-C reaches it too.
    """
    args = [str(a) for a in argv]
    full_env = _with_environ(env)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(f"$ {shlex.join(args)}\n".encode())
        out.flush()
        try:
            code, last = _pump(args, out, cwd, full_env, what or os.path.basename(args[0]))
        except KeyboardInterrupt:
            out.write(b"\n--- interrupted (Ctrl-C) ---\n")
            raise
    if check and code != 0:
        label = what or f"command {shlex.join(args)}"
        raise error(f"{label} failed (exit {code}); log: {log_path}\n--- last lines of {log_path} ---\n"
                    f"{tail(''.join(last), TAIL_LINES)}", hint=hint or f"see the full log at {log_path}")
    return code


def _pump(args: list[str], out, cwd, env, label: str) -> tuple[int, collections.deque[str]]:
    """Copy the child's output into `out` until it exits; (exit code, its last lines)."""
    try:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except FileNotFoundError:
        raise ToolError(f"command not found: {args[0]}", hint="install it and retry") from None
    last: collections.deque[str] = collections.deque(maxlen=TAIL_LINES * 4)
    try:
        for line in iter(proc.stdout.readline, b""):
            out.write(line)
            out.flush()
            text = line.decode("utf-8", "replace")
            last.append(text)
            if text.strip():
                log.status(f"{label}: {text.strip()}")
        return proc.wait(), last
    except BaseException:  # Ctrl-C: the child got SIGINT too; let it clean up (mock unmounts its root)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        proc.stdout.close()
        log.clear_status()
