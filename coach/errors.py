"""Typed errors. Library code raises these; only the CLI turns them into one line and an exit code."""

from __future__ import annotations

from pathlib import Path


class CoachError(Exception):
    """A failure the user can act on. The CLI prints its message and exits with ``exit_code``."""

    exit_code = 1


class ScriptError(CoachError):
    """An exercise script that cannot be used, located by file and line.

    ``message`` says what is wrong and how to fix it; ``str()`` gives the
    ``path:line: message`` form that editors and terminals make clickable.
    """

    exit_code = 2

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        super().__init__(f"{self.path}:{line}: {message}")


class RoutineNotFound(CoachError):
    """No bundled routine, user routine or file by that name."""


class OptionError(CoachError):
    """Session options that do not fit the routine (an unknown exercise id, a pace out of range)."""

    exit_code = 2
