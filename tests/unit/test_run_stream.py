"""isobuild.run.stream and isobuild.log: long commands write their log as they go, keep it on failure and on
Ctrl-C, and name it in the error; log lines, --quiet, the terminal status line and the step log."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from isobuild import log
from isobuild.errors import ToolError
from isobuild.run import stream

REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate, what: str, limit: float = 60.0) -> None:
    """Poll until predicate() holds; the limit only stops a hung test, it is not what is tested."""
    end = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


def test_output_reaches_the_log_while_the_command_runs(tmp_path):
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    log_path = tmp_path / "logs" / "stage-name.log"
    script = f"echo first line; echo on stderr >&2; read x < {fifo}; echo after $x"
    codes = []
    t = threading.Thread(target=lambda: codes.append(stream(["sh", "-c", script], log_path)))
    t.start()
    try:
        wait_for(lambda: log_path.exists() and "on stderr" in log_path.read_text(), "the first lines in the log")
        assert "after go" not in log_path.read_text()  # the child is still blocked on the fifo
    finally:
        with open(fifo, "w") as fh:  # releases the child whatever happened
            fh.write("go\n")
        t.join(60)
    assert codes == [0]
    lines = log_path.read_text().splitlines()
    assert lines[0] == f"$ sh -c '{script}'"
    assert lines[1:] == ["first line", "on stderr", "after go"]
    assert log_path.stat().st_mode & 0o777 == 0o600


def test_failure_names_the_log_and_shows_its_tail(tmp_path):
    log_path = tmp_path / "x.log"
    script = "for i in $(seq 1 40); do echo line $i; done; echo deliberate failure >&2; exit 3"
    with pytest.raises(ToolError) as exc:
        stream(["sh", "-c", script], log_path, what="thing: build")
    msg = exc.value.message
    assert msg.startswith(f"thing: build failed (exit 3); log: {log_path}\n--- last lines of {log_path} ---\n")
    assert msg.endswith("line 40\ndeliberate failure") and "line 17\n" in msg and "line 16\n" not in msg
    assert f"see the full log at {log_path}" in exc.value.hint
    assert "line 1\n" in log_path.read_text() and "deliberate failure" in log_path.read_text()
    assert stream(["sh", "-c", "exit 4"], tmp_path / "y.log", check=False) == 4


def test_missing_command_is_a_clear_error(tmp_path):
    with pytest.raises(ToolError, match="command not found: no-such-tool-here"):
        stream(["no-such-tool-here"], tmp_path / "z.log")


def test_ctrl_c_keeps_the_log_and_leaves_no_child(tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it: the log stays, nothing is left running."""
    log_path = tmp_path / "long.log"
    # Python leaves SIGINT ignored when it starts with it ignored (pytest run as `make test &` from a
    # script): install the handler a terminal-started Python has, so the child is what a user runs
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from isobuild.run import stream; "
            "stream(['sh', '-c', 'echo started; exec sleep 600'], sys.argv[1])")
    proc = subprocess.Popen([sys.executable, "-c", code, str(log_path)], cwd=REPO, start_new_session=True,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        wait_for(lambda: log_path.exists() and "\nstarted\n" in log_path.read_text(), "the child's first line")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    text = log_path.read_text()
    assert text.startswith("$ sh -c 'echo started; exec sleep 600'\nstarted\n") and "--- interrupted (Ctrl-C) ---" in text
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # the sleep went with it


def test_log_lines_quiet_and_no_status_off_a_terminal(tmp_path, capsys):
    log.info("rpms: one")
    log.warn("careful")
    log.set_quiet(True)
    try:
        assert log.is_quiet()
        log.info("hidden")
        log.warn("still shown")
    finally:
        log.set_quiet(False)
    assert not log.is_quiet()
    stream(["sh", "-c", "echo progress"], tmp_path / "s.log")  # capsys is not a terminal: no status line
    assert capsys.readouterr().err == "rpms: one\nwarning: careful\nwarning: still shown\n"


def read_terminal(master: int, until: str) -> str:
    os.set_blocking(master, False)
    got = []

    def read_all() -> bool:  # the pty passes the bytes on in its own time
        with contextlib.suppress(BlockingIOError):
            got.append(os.read(master, 65536).decode())
        return until in "".join(got)

    wait_for(read_all, f"{until!r} in {got!r}", limit=10)
    return "".join(got)


@contextlib.contextmanager
def terminal():
    """sys.stderr on a pseudo-terminal (set inside the test: pytest's capture resets it between phases);
    yields the master end to read what was drawn."""
    master, slave = os.openpty()
    term = os.fdopen(slave, "w")
    saved, sys.stderr = sys.stderr, term
    try:
        yield master
    finally:
        sys.stderr = saved
        term.close()
        os.close(master)


def test_status_line_on_a_terminal_is_cleared_when_the_command_ends(tmp_path):
    with terminal() as master:
        stream(["sh", "-c", "echo compiling foo.c"], tmp_path / "t.log", what="pkg: build")
        log.info("rpms: done")
        shown = read_terminal(master, "rpms: done\r\n")
    status_at = shown.index("pkg: build: compiling foo.c")
    cleared = shown.rindex("\r", 0, shown.index("rpms: done"))
    assert status_at < cleared and shown[cleared:].strip() == "rpms: done"  # the line was blanked, then the log line


def test_log_lines_print_above_a_live_status_line():
    with terminal() as master:
        log.status("working on it")
        log.info("a log line")
        log.clear_status()
        log.info("the end")
        shown = read_terminal(master, "the end\r\n")
    first, redrawn = shown.index("working on it"), shown.rindex("working on it")
    assert first < shown.index("a log line\r\n") < redrawn < shown.index("the end")


def test_quiet_draws_no_status_on_a_terminal(tmp_path):
    with terminal() as master:
        log.set_quiet(True)
        try:
            stream(["sh", "-c", "echo compiling foo.c"], tmp_path / "q.log", what="pkg: build")
            log.warn("shown")
        finally:
            log.set_quiet(False)
        shown = read_terminal(master, "warning: shown\r\n")
    assert "compiling" not in shown


def test_step_logs_start_end_and_failure_into_its_file(tmp_path, capsys):
    step_log = tmp_path / "logs" / "chain.log"
    with log.step("rpms", step_log):
        log.info("rpms: inside")
        with pytest.raises(RuntimeError):
            with log.step("rpms: pkg"):
                raise RuntimeError("boom")
    log.info("after the step")
    text = step_log.read_text()
    for want in ("DEBUG rpms: start", "INFO rpms: inside", "DEBUG rpms: pkg: start",
                 "DEBUG rpms: pkg: failed after", "(RuntimeError)", "DEBUG rpms: done in"):
        assert want in text, want
    assert "after the step" not in text and step_log.stat().st_mode & 0o777 == 0o600
    assert capsys.readouterr().err == "rpms: inside\nafter the step\n"  # steps are debug: not on stderr
