"""Log lines on stderr through stdlib logging; --quiet silences info but never warnings or errors.

On a terminal, a long command shows its latest output line as a one-line status (`status`, tqdm);
log lines are printed above it. `step` logs a stage's start, end and duration at debug level, and
can copy every record of the stage into a log file (`recording`, also usable on its own).
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
    """Writes to whatever sys.stderr is at the time (pytest's capsys swaps it). Once tqdm is in use
    (our status line, the ISO bar), lines go through tqdm.write, which prints them above a live bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            if "tqdm" in sys.modules:
                sys.modules["tqdm"].tqdm.write(msg, file=sys.stderr)
            else:
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


# --- the live one-line status of a long command (a tqdm line showing only its text) -----------

_status_bar = None


def status(text: str) -> None:
    """Show `text` as the status line, redrawn at most every 0.2 s; nothing off a terminal or with --quiet."""
    global _status_bar
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    if _status_bar is None:
        from tqdm import tqdm

        # disable=None: tqdm draws only when the stream is a terminal; leave=False: cleared when done.
        # The size is shutil's (80x24 where a terminal reports 0x0, where tqdm would draw nothing).
        size = shutil.get_terminal_size()
        _status_bar = tqdm(desc=text, file=sys.stderr, bar_format="{desc}", leave=False, mininterval=0.2,
                           ncols=size.columns, nrows=size.lines, disable=True if is_quiet() else None)
        return
    _status_bar.set_description_str(text, refresh=False)
    _status_bar.update()  # redraws only when mininterval has passed


def clear_status() -> None:
    global _status_bar
    if _status_bar is not None:
        _status_bar.close()
        _status_bar = None


# --- steps ----------------------------------------------------------------------------------


@contextlib.contextmanager
def step(name: str, log_file: Path | None = None) -> Iterator[None]:
    """Log `name`'s start and its end with the duration (debug level: not on stderr by default).

    With `log_file`, every record logged during the step is also written there (see recording()).
    """
    with recording(log_file) if log_file is not None else contextlib.nullcontext():
        started = time.monotonic()
        LOGGER.debug(f"{name}: start")
        try:
            yield
        except BaseException as err:
            LOGGER.debug(f"{name}: failed after {time.monotonic() - started:.1f}s ({type(err).__name__})")
            raise
        else:
            LOGGER.debug(f"{name}: done in {time.monotonic() - started:.1f}s")


@contextlib.contextmanager
def recording(log_file: Path) -> Iterator[None]:
    """Every record logged inside the block (debug included, time-stamped) is also written to
    `log_file` (0600, one run per file); the file survives a failure or Ctrl-C."""
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    handler = logging.StreamHandler(os.fdopen(fd, "w"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    LOGGER.addHandler(handler)
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)
        handler.close()
        handler.stream.close()
