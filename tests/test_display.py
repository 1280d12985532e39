"""The session displays: plain lines on change, nothing for --quiet, the live panel's content."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import re
import select
import struct
import termios
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from rich.console import Console

from coach.session.display import (
    LivePanel,
    LogLines,
    Quiet,
    big_digits,
    clock_text,
    make_display,
)
from coach.session.events import Status
from coach.session.keys import KEY_HELP

ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-_])")
TIMEOUT_SECONDS = 10.0

BASE = Status(
    phase="running", routine_title="Lower back, gentle", exercise_id="knee-to-chest",
    exercise_name="Knee to chest", side="right", round=1, rounds=3, intensity="normal",
    hold_seconds_left=None, session_seconds_left=754.0, volume_db=0.0, pace=1.0, last_command=None,
)


class Ticking:
    """A wall clock that moves one second per reading, from 10:00:00."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 10, 0, 0)

    def __call__(self) -> datetime:
        now = self.now
        self.now += timedelta(seconds=1)
        return now


def log_lines(statuses: list[Status | str]) -> list[str]:
    """What LogLines writes for statuses (``update``) and strings (``note``), in order."""
    out = io.StringIO()
    with LogLines(out, clock=Ticking()) as display:
        for item in statuses:
            if isinstance(item, str):
                display.note(item)
            else:
                display.update(item)
    text = out.getvalue()
    assert not ANSI.search(text) and "\x1b" not in text
    return text.splitlines()


# --- LogLines -------------------------------------------------------------------------------

def test_lines_only_when_something_changes() -> None:
    ticking = [replace(BASE, hold_seconds_left=left, session_seconds_left=700 + left) for left in (30, 29.95, 12, 0.5)]
    lines = log_lines([
        BASE, *ticking, BASE,
        replace(BASE, round=2), replace(BASE, round=2, hold_seconds_left=3.0),
        replace(BASE, side="left"),
    ])
    assert lines == [
        "10:00:00 Lower back, gentle: 12:34 to go",
        "10:00:01 Knee to chest, right side, round 1 of 3",
        "10:00:02 Knee to chest, right side, round 2 of 3",
        "10:00:03 Knee to chest, left side, round 1 of 3",
    ]


def test_lines_for_phases_commands_symptoms_volume_pace_and_the_end() -> None:
    easier = replace(BASE, intensity="easier", rounds=2)
    lines = log_lines([
        replace(BASE, phase="ready", exercise_name=None, exercise_id=None, side=None, round=None,
                rounds=None, intensity=None),
        BASE,
        "pause",
        replace(BASE, phase="paused", last_command="pause"),
        "resume",
        replace(BASE, last_command="resume"),
        'tingling (heard "my foot is tingling")',
        "Tingling reported in knee-to-chest, right side; recorded.",
        replace(easier, last_command="tingling"),
        "louder",
        replace(easier, volume_db=3.0, last_command="louder"),
        "slower",
        replace(easier, volume_db=3.0, pace=1.25, last_command="slower"),
        replace(easier, volume_db=3.0, pace=1.25, exercise_name=None, exercise_id=None, side=None,
                round=None, rounds=None, intensity=None),
        "stop",
        replace(BASE, phase="confirm_stop", exercise_name=None, side=None, round=None, volume_db=3.0, pace=1.25),
        replace(BASE, phase="ended", exercise_name=None, side=None, round=None, volume_db=3.0, pace=1.25,
                session_seconds_left=0.0),
    ])
    assert [line[9:] for line in lines] == [
        "Lower back, gentle: 12:34 to go",
        "Started",
        "Knee to chest, right side, round 1 of 3",
        "pause",
        "Paused",
        "resume",
        "Resumed",
        'tingling (heard "my foot is tingling")',
        "Tingling reported in knee-to-chest, right side; recorded.",
        "Now at the easier level: Knee to chest, right side, round 1 of 2, easier",
        "louder",
        "Volume +3 dB",
        "slower",
        "Pace 1.25 (slower)",
        "Closing words",
        "stop",
        "Asked whether to stop",
        "Session ended",
    ]
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d .+", line) for line in lines)


def test_an_exercise_without_sides_and_a_quieter_brisker_session() -> None:
    lines = log_lines([
        replace(BASE, side=None, round=None, rounds=None),
        replace(BASE, side=None, round=None, rounds=None, volume_db=-6.0, pace=0.75),
    ])
    assert [line[9:] for line in lines] == [
        "Lower back, gentle: 12:34 to go", "Knee to chest", "Volume -6 dB", "Pace 0.75 (brisker)",
    ]


def test_lines_stop_quietly_when_the_reader_goes_away() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    pipe = open(write_fd, "w")  # noqa: SIM115 - its closing fails too, as stdout's would at exit
    display = LogLines(pipe, clock=Ticking())
    display.update(BASE)  # EPIPE (Python ignores SIGPIPE): no exception, and no more writing
    display.note("pause")
    display.close()
    with contextlib.suppress(BrokenPipeError):
        pipe.close()


def test_quiet_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with Quiet() as display:
        display.update(BASE)
        display.note("Heard: tingling")
    display.close()
    assert capsys.readouterr() == ("", "")


def test_words() -> None:
    assert [clock_text(s) for s in (0, 0.2, 59.5, 60, 754.2, 3600, 3754)] == [
        "0:00", "0:01", "1:00", "1:00", "12:35", "1:00:00", "1:02:34",
    ]
    assert big_digits("10").splitlines() == [" █  ███", "██  █ █", " █  █ █", " █  █ █", "███ ███"]


# --- LivePanel -------------------------------------------------------------------------------

# hold_seconds_left 11.2 shows as 12, rounded up like the spoken answer to "time".
PANEL_STATUS = replace(BASE, side="left", round=2, rounds=3, intensity="easier", hold_seconds_left=11.2,
                       session_seconds_left=605.0, volume_db=3.0, pace=1.25, last_command="tingling")


def panel_text(status: Status, notes: tuple[str, ...] = (), width: int = 100) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=width, color_system="standard")
    with LivePanel(out, console=console, clock=Ticking()) as panel:
        panel.update(status)
        for note in notes:
            panel.note(note)
    return ANSI.sub("", out.getvalue())


def final_frame(text: str) -> str:
    return text[text.rindex("╭"):]


def test_the_panel_shows_where_the_person_is() -> None:
    text = final_frame(panel_text(PANEL_STATUS, notes=("tingling", "Tingling reported; recorded.")))
    for expected in ("Lower back, gentle", "Knee to chest", "left", "round 2 of 3", "easier",
                     "12 seconds left in this hold", "10:05 left", "+3 dB", "1.25 (slower)",
                     "Last command", "10:00:00 tingling", "10:00:01 Tingling reported; recorded.",
                     "In progress", KEY_HELP):
        assert expected in text, expected
    assert big_digits("12").splitlines()[0] in text
    assert "—" not in text  # a hold is under way


def test_the_panel_between_holds_paused_and_asking_to_stop() -> None:
    quiet = replace(BASE, phase="paused", side=None, round=None, rounds=None, last_command="pause")
    text = final_frame(panel_text(quiet))
    assert "Paused" in text and "—" in text and "Volume" not in text and "Pace" not in text
    assert "Side" not in text and "easier" not in text
    assert "Stop? Say stop again" in final_frame(panel_text(replace(quiet, phase="confirm_stop")))
    assert "Ended" in final_frame(panel_text(replace(quiet, phase="ended", hold_seconds_left=None)))


def test_the_panel_keeps_the_last_few_notes_and_titles_stay_literal() -> None:
    status = replace(PANEL_STATUS, routine_title="Neck [gentle] :smile:")
    text = final_frame(panel_text(status, notes=tuple(f"note {n}" for n in range(7))))
    assert "Neck [gentle] :smile:" in text
    assert "note 2" not in text and all(f"note {n}" in text for n in range(3, 7))


def test_the_panel_on_a_narrow_terminal_still_shows_everything() -> None:
    text = final_frame(panel_text(PANEL_STATUS, width=60))
    assert "round 2 of 3" in text and "12 seconds left" in text and "s stop" in text
    assert max(map(len, text.splitlines())) <= 60


def test_close_without_any_update_draws_nothing() -> None:
    out = io.StringIO()
    LivePanel(out, console=Console(file=out, force_terminal=True)).close()
    assert out.getvalue() == ""


# --- picking one, and the panel on a real terminal --------------------------------------------

@pytest.fixture
def pty_stream() -> Iterator[tuple[int, io.TextIOWrapper]]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    try:
        with open(slave, "w", encoding="utf-8") as stream:
            yield master, stream
    finally:
        os.close(master)


def test_make_display_picks_by_stream(pty_stream: tuple[int, io.TextIOWrapper], monkeypatch: pytest.MonkeyPatch) -> None:
    _, tty = pty_stream
    monkeypatch.setenv("TERM", "xterm-256color")
    assert isinstance(make_display(tty, quiet=False), LivePanel)
    assert isinstance(make_display(tty, quiet=True), Quiet)
    read_fd, write_fd = os.pipe()
    with open(write_fd, "w") as pipe:
        assert isinstance(make_display(pipe, quiet=False), LogLines)
        assert isinstance(make_display(pipe, quiet=True), Quiet)
    os.close(read_fd)
    assert isinstance(make_display(io.StringIO(), quiet=False), LogLines)
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(make_display(tty, quiet=False), LogLines)


def test_the_panel_on_a_pseudo_terminal(pty_stream: tuple[int, io.TextIOWrapper], monkeypatch: pytest.MonkeyPatch) -> None:
    master, tty = pty_stream
    monkeypatch.setenv("TERM", "xterm-256color")
    received = bytearray()
    stop = threading.Event()

    def drain() -> None:  # a full pty buffer would block rich's refresh thread
        while not stop.is_set():
            if select.select([master], [], [], 0.05)[0]:
                try:
                    received.extend(os.read(master, 65536))
                except OSError:
                    return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    display = make_display(tty, quiet=False)
    assert isinstance(display, LivePanel)
    with display:
        display.update(replace(PANEL_STATUS, phase="running"))
        display.note("louder")
        display.update(replace(PANEL_STATUS, phase="ended", hold_seconds_left=None, session_seconds_left=0))
    stop.set()
    reader.join(TIMEOUT_SECONDS)
    while select.select([master], [], [], 0.1)[0]:
        received.extend(os.read(master, 65536))
    text = final_frame(ANSI.sub("", received.decode("utf-8", errors="replace")))
    assert "Ended" in text and "Knee to chest" in text and "louder" in text and "0:00 left" in text
    assert b"\x1b[?25h" in received  # the cursor is shown again
