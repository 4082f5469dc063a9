"""Every failure the pipeline reports to a user is an IsobuildError: what, where, and a hint."""
from __future__ import annotations

from dataclasses import dataclass


class IsobuildError(Exception):
    """A user-facing failure. tasks.py prints str(err) and exits non-zero, without a traceback."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can."""

    file: str
    line: int | None
    path: str  # dotted path inside the definition, or a tool name for rendered files
    reason: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.path}: {self.reason}" if self.path else f"{where}: {self.reason}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class ProblemsError(IsobuildError):
    """Several problems found at once (definition rules, validators): all are reported together."""

    def __init__(self, what: str, problems: list[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        body = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{what}: {n} problem{'s' if n != 1 else ''}\n{body}")


class ToolError(IsobuildError):
    """An external command failed or is missing."""
