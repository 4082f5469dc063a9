"""Log lines on stderr through stdlib logging; --quiet silences info but never warnings or errors.

On a terminal, a long command shows its latest output line as a one-line status (`status`), cleared
before any log line is written. `step` logs a stage's start, end and duration at debug level, and
can copy every record of the stage into a log file.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Iterator

LOGGER = logging.getLogger("isobuild")


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (pytest's capsys swaps it), clearing the status line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            clear_status()
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging's contract: never raise from emit
            self.handleError(record)


class _Plain(logging.Formatter):
    """The message as given; warnings get the `warning: ` prefix they always had."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        return f"warning: {msg}" if record.levelno == logging.WARNING else msg


_STDERR = _StderrHandler(logging.INFO)
_STDERR.setFormatter(_Plain())
LOGGER.addHandler(_STDERR)
LOGGER.setLevel(logging.DEBUG)  # the handlers choose what they show
LOGGER.propagate = False  # our lines are the program's output, not records for someone's root logger


def set_quiet(quiet: bool) -> None:
    _STDERR.setLevel(logging.WARNING if quiet else logging.INFO)


def is_quiet() -> bool:
    return _STDERR.level > logging.INFO


def info(msg: str) -> None:
    LOGGER.info(msg)


def warn(msg: str) -> None:
    LOGGER.warning(msg)


def debug(msg: str) -> None:
    LOGGER.debug(msg)


# --- the live one-line status of a long command (terminal only) ----------------------------

_status_shown = False
_status_at = 0.0
STATUS_INTERVAL = 0.2  # seconds between redraws: a compiler's output must not flood the terminal


def status_enabled() -> bool:
    return not is_quiet() and sys.stderr.isatty()


def status(text: str) -> None:
    """Show `text` as the status line (truncated to the terminal width); no-op off a terminal."""
    global _status_shown, _status_at
    now = time.monotonic()
    if not status_enabled() or (_status_shown and now - _status_at < STATUS_INTERVAL):
        return
    width = max(shutil.get_terminal_size().columns - 1, 10)
    line = "".join(ch if ch.isprintable() else " " for ch in text)[:width]
    sys.stderr.write("\r\x1b[K" + line)
    sys.stderr.flush()
    _status_shown, _status_at = True, now


def clear_status() -> None:
    global _status_shown
    if _status_shown:
        _status_shown = False
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


# --- steps ----------------------------------------------------------------------------------


@contextlib.contextmanager
def step(name: str, log_file: Path | None = None) -> Iterator[None]:
    """Log `name`'s start and its end with the duration (debug level: not on stderr by default).

    With `log_file`, every record logged during the step (debug included, time-stamped) is also
    written there (0600, one run per file), and the file survives a failure or Ctrl-C.
    """
    handler = None
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        handler = logging.StreamHandler(os.fdopen(fd, "w"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        LOGGER.addHandler(handler)
    started = time.monotonic()
    LOGGER.debug(f"{name}: start")
    try:
        yield
    except BaseException as err:
        LOGGER.debug(f"{name}: failed after {time.monotonic() - started:.1f}s ({type(err).__name__})")
        raise
    else:
        LOGGER.debug(f"{name}: done in {time.monotonic() - started:.1f}s")
    finally:
        if handler is not None:
            LOGGER.removeHandler(handler)
            handler.close()
            handler.stream.close()
