"""What a person (or a helper beside them) sees during a live session.

Three displays of one small protocol, picked by ``make_display``: a live panel on a terminal,
plain timestamped lines when the output is a file or a pipe, and nothing at all for ``--quiet``.
``update`` is called with the engine's ``Status`` many times a second, so it only keeps what it
is given (the panel) or compares it with the last one (the lines); ``note`` adds a free line,
such as a command heard or a symptom recorded.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, Self, TextIO

from coach.duration import clock
from coach.session.events import Command, Phase, Status
from coach.session.keys import KEY_HELP

if TYPE_CHECKING:  # rich is imported when a panel is made: other commands start faster without it
    from rich.console import Console, RenderableType
    from rich.live import Live
    from rich.text import Text

NOTE_LINES = 4
"""How many recent lines the live panel keeps."""
PANEL_WIDTH_MAX = 90
REFRESH_PER_SECOND = 4

_PHASE_WORDS: dict[Phase, str] = {
    "ready": "Getting ready",
    "running": "In progress",
    "paused": "Paused. Press space or say resume when you are ready.",
    "confirm_stop": "Stop? Say stop again (or press s) to end, or resume to carry on.",
    "ended": "Ended",
}

Clock = Callable[[], datetime]
"""Wall-clock time for the time stamps on lines; tests pass a fixed one."""


class Display(Protocol):
    """What the runner shows through: ``update`` is called often and must be cheap."""

    def update(self, status: Status) -> None: ...

    def note(self, text: str) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


def make_display(stream: TextIO, quiet: bool) -> Display:
    """``Quiet`` when asked, a ``LivePanel`` when ``stream`` is a terminal, else ``LogLines``."""
    if quiet:
        return Quiet()
    if _is_terminal(stream) and os.environ.get("TERM") != "dumb":
        return LivePanel(stream)
    return LogLines(stream)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class _ClosesOnExit:
    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Quiet(_ClosesOnExit):
    """Shows nothing (``--quiet``)."""

    def update(self, status: Status) -> None:
        pass

    def note(self, text: str) -> None:
        pass


# --- words shared by the lines and the panel ------------------------------------------------

def clock_text(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour), rounded up: "0:01" until the very end."""
    return clock(max(0, math.ceil(seconds - 1e-6)))


def command_words(command: Command) -> str:
    return command.replace("_", " ")


def volume_text(volume_db: float) -> str:
    return f"{volume_db:+g} dB"


def pace_text(pace: float) -> str:
    """Pace multiplies the time between things: above 1 is slower."""
    return f"{pace:g} ({'slower' if pace > 1 else 'brisker'})"


def _where(status: Status) -> str | None:
    """ "Knee to chest, left side, round 1 of 3, easier" for the lines."""
    if status.exercise_name is None:
        return None
    parts = [status.exercise_name]
    if status.side is not None:
        parts.append(f"{status.side} side")
    if status.round is not None and status.rounds is not None:
        parts.append(f"round {status.round} of {status.rounds}")
    if status.intensity == "easier":
        parts.append("easier")
    return ", ".join(parts)


# --- plain lines ----------------------------------------------------------------------------

class LogLines(_ClosesOnExit):
    """Plain lines, ``HH:MM:SS text``, only when something changes; no terminal codes.

    Lines come for the start of the session, each exercise, side and round, a change to the
    easier level, a change of volume or pace, pausing, resuming, a stop being asked about, the
    closing words and the end, and for every ``note``. Commands and symptom reports arrive as
    notes (the runner notes every one it records), not from ``last_command``, which cannot show
    the same command twice; hold countdowns are left out as too chatty.
    """

    def __init__(self, stream: TextIO, clock: Clock = datetime.now) -> None:
        self._stream = stream
        self._clock = clock
        self._last: Status | None = None
        self._broken = False

    def update(self, status: Status) -> None:
        last = self._last
        self._last = status
        if last is not None and _same_for_lines(last, status):
            return
        for line in _changes(last, status):
            self._line(line)

    def note(self, text: str) -> None:
        self._line(text)

    def close(self) -> None:
        if self._broken:
            return
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._broken = True

    def _line(self, text: str) -> None:
        if self._broken:
            return
        try:
            self._stream.write(f"{self._clock():%H:%M:%S} {text}\n")
            self._stream.flush()  # someone may be following the file as it grows
        except BrokenPipeError:
            # Whoever read the lines has gone (``| head``); the session goes on for the person.
            self._broken = True


def _same_for_lines(a: Status, b: Status) -> bool:
    return (a.phase == b.phase and a.exercise_name == b.exercise_name and a.side == b.side
            and a.round == b.round and a.intensity == b.intensity and a.volume_db == b.volume_db
            and a.pace == b.pace and a.routine_title == b.routine_title)


def _changes(last: Status | None, now: Status) -> list[str]:
    lines: list[str] = []
    if last is None or now.routine_title != last.routine_title:
        lines.append(f"{now.routine_title}: {clock_text(now.session_seconds_left)} to go")
    if last is not None and now.phase != last.phase:
        if now.phase == "running" and last.phase in ("paused", "confirm_stop"):
            lines.append("Resumed")
        elif now.phase == "running" and last.phase == "ready":
            lines.append("Started")
        elif now.phase == "paused":
            lines.append("Paused")
        elif now.phase == "confirm_stop":
            lines.append("Asked whether to stop")
        elif now.phase == "ended":
            lines.append("Session ended")
    if now.phase != "ended":
        where, before = _where(now), _where(last) if last is not None else None
        if where is not None and where != before:
            moved = last is None or (now.exercise_name, now.side) != (last.exercise_name, last.side)
            if not moved and now.intensity == "easier" and last.intensity != "easier":
                lines.append(f"Now at the easier level: {where}")
            else:
                lines.append(where)
        elif where is None and before is not None:
            lines.append("Closing words")
    if last is not None and now.volume_db != last.volume_db:
        lines.append(f"Volume {volume_text(now.volume_db)}")
    if last is not None and now.pace != last.pace:
        lines.append(f"Pace {pace_text(now.pace)}")
    return lines


# --- the live panel -------------------------------------------------------------------------

class LivePanel(_ClosesOnExit):
    """A rich ``Live`` panel on a terminal, redrawn a few times a second from the latest status.

    ``update`` and ``note`` only store what they are given; rich's refresh thread draws it.
    The panel starts with the first ``update`` or ``note`` and ``close`` leaves its last frame
    on the screen. ``console`` is for tests (a rich Console writing to a string).
    """

    def __init__(self, stream: TextIO, *, console: Console | None = None, clock: Clock = datetime.now) -> None:
        from rich.console import Console

        self._stream = stream
        self._console = console if console is not None else Console(file=stream, highlight=False, emoji=False)
        self._clock = clock
        self._status: Status | None = None
        self._notes: tuple[str, ...] = ()  # replaced whole, never mutated: read by the refresh thread
        self._live: Live | None = None
        self._closed = False

    def update(self, status: Status) -> None:
        self._status = status
        self._start()

    def note(self, text: str) -> None:
        self._notes = (*self._notes, f"{self._clock():%H:%M:%S} {text}")[-NOTE_LINES:]
        self._start()

    def close(self) -> None:
        self._closed = True
        live, self._live = self._live, None
        if live is not None:
            live.stop()  # draws the last frame and leaves it (transient=False)

    def _start(self) -> None:
        if self._live is not None or self._closed:
            return
        from rich.live import Live

        # Lines printed to stdout while the panel is up are shown above it; stderr likewise, but
        # only when it is a terminal too: a log file redirected with 2> must stay a file.
        to_stdout = self._stream is sys.stdout
        live = Live(console=self._console, get_renderable=self.render, refresh_per_second=REFRESH_PER_SECOND,
                    transient=False, redirect_stdout=to_stdout,
                    redirect_stderr=to_stdout and _is_terminal(sys.stderr))
        live.start(refresh=True)
        self._live = live

    def render(self) -> RenderableType:
        """The panel for the latest status and notes."""
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        status, notes = self._status, self._notes
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        title = Text("Session")
        if status is not None:
            title = Text(status.routine_title, style="bold")
            for label, value in _panel_rows(status):
                grid.add_row(label, value)
        if notes:
            grid.add_row("", "")
            for index, line in enumerate(notes):
                grid.add_row("Recent" if index == 0 else "", Text(line))
        footer = Text(KEY_HELP, style="dim")
        width = min(self._console.width, PANEL_WIDTH_MAX)
        return Panel(Group(grid, Text(""), footer), title=title, title_align="left", width=width, padding=(0, 1))


def _panel_rows(status: Status) -> list[tuple[str, Text]]:
    from rich.text import Text

    rows: list[tuple[str, Text]] = []
    phase_style = {"paused": "bold yellow", "confirm_stop": "bold red", "ended": "bold"}.get(status.phase, "")
    rows.append(("Now", Text(_PHASE_WORDS[status.phase], style=phase_style)))
    if status.exercise_name is not None:
        rows.append(("Exercise", Text(status.exercise_name, style="bold")))
        if status.side is not None:
            rows.append(("Side", Text(status.side, style="bold")))
        if status.round is not None and status.rounds is not None:
            rows.append(("Round", Text(f"round {status.round} of {status.rounds}")))
        if status.intensity == "easier":
            rows.append(("Level", Text(" easier ", style="bold black on yellow")))
        elif status.intensity is not None:
            rows.append(("Level", Text("normal")))
    elif status.phase not in ("ready", "ended"):
        rows.append(("Exercise", Text("—")))
    if status.hold_seconds_left is not None and status.phase != "ended":
        seconds = max(0, math.ceil(status.hold_seconds_left - 1e-6))
        hold = Text(big_digits(str(seconds)), style="bold cyan")
        hold.append(f"\n{seconds} seconds left in this hold")
        rows.append(("Hold", hold))
    else:
        rows.append(("Hold", Text("—")))
    rows.append(("Session", Text(f"{clock_text(status.session_seconds_left)} left")))
    if status.volume_db != 0:
        rows.append(("Volume", Text(volume_text(status.volume_db))))
    if status.pace != 1.0:
        rows.append(("Pace", Text(pace_text(status.pace))))
    if status.last_command is not None:
        rows.append(("Last command", Text(command_words(status.last_command))))
    return rows


_GLYPHS = {
    "0": ("███", "█ █", "█ █", "█ █", "███"),
    "1": (" █ ", "██ ", " █ ", " █ ", "███"),
    "2": ("███", "  █", "███", "█  ", "███"),
    "3": ("███", "  █", " ██", "  █", "███"),
    "4": ("█ █", "█ █", "███", "  █", "  █"),
    "5": ("███", "█  ", "███", "  █", "███"),
    "6": ("███", "█  ", "███", "█ █", "███"),
    "7": ("███", "  █", " █ ", " █ ", " █ "),
    "8": ("███", "█ █", "███", "█ █", "███"),
    "9": ("███", "█ █", "███", "  █", "███"),
}


def big_digits(digits: str) -> str:
    """``digits`` drawn five lines high in block characters, to read from a mat across the room."""
    return "\n".join(" ".join(_GLYPHS[d][row] for d in digits) for row in range(5))
