"""The session history on real SQLite files: round trips, summaries, the export, carry-over,
and what survives a SIGKILL, a full disk, a lock, a corrupt file."""

from __future__ import annotations

import csv
import io
import json
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from coach.catalog import resolve_routine
from coach.errors import CoachError
from coach.history import (
    CSV_COLUMNS, SCHEMA_VERSION, CarryOver, History, SessionLog, format_duration, format_recent,
    write_csv,
)
from coach.plan import PlanOptions, estimate_speech_seconds
from coach.routine import Routine, Side
from coach.script import load_routine
from coach.session import Record, SessionEngine
from coach.session.events import (
    CommandReceived, Event, ExerciseFinished, SessionEnded, SessionStarted, SymptomKind,
    SymptomReported,
)
from tests import history_child

T0 = 1000.0
"""Runner time at which sessions start: anything but zero, as on a real monotonic clock."""
WALL = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
CHILD = Path(history_child.__file__)
FIGURE_FOUR = "lying-figure-four-stretch"
CLAMSHELL = "side-lying-clamshell-hold"


@cache
def routine(name: str) -> Routine:
    return load_routine(resolve_routine(name).path)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


@pytest.fixture
def history(db_path: Path) -> Iterator[History]:
    with History(db_path) as opened:
        yield opened


@pytest.fixture
def berlin() -> Iterator[None]:
    """Local time pinned to a zone that is not UTC, so local-time output is checked for real."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def record_session(history: History, name: str, events: Sequence[Event], *,
                   options: PlanOptions = PlanOptions(), wall_start: datetime = WALL,
                   voice: str = "test-voice") -> SessionLog:
    log = history.start_session(SessionStarted(T0, name, options), routine(name), voice=voice,
                                wall_start=wall_start)
    for event in events:
        log.record(event)
    assert log.warnings == []
    return log


def piriformis_events(*, reason: str | None = "completed") -> list[Event]:
    """Every event type, in the order an engine could emit them."""
    events: list[Event] = [
        CommandReceived(T0 + 5.0, "pause", "pause please"),
        CommandReceived(T0 + 9.5, "resume", None),
        ExerciseFinished(T0 + 60.0, "tender-spot-massage", "right", "done"),
        ExerciseFinished(T0 + 120.0, "tender-spot-massage", "left", "done"),
        SymptomReported(T0 + 130.0, "tingling", FIGURE_FOUR, "right", "my toes are tingling"),
        ExerciseFinished(T0 + 170.0, FIGURE_FOUR, "right", "eased"),
        CommandReceived(T0 + 175.0, "next", "next"),
        ExerciseFinished(T0 + 175.0, FIGURE_FOUR, "left", "skipped"),
    ]
    if reason is not None:
        events.append(SessionEnded(T0 + 600.0, reason))  # type: ignore[arg-type]
    return events


# --- storage -------------------------------------------------------------------------------

def test_every_event_type_round_trips(history: History) -> None:
    options = PlanOptions(sides=("right",), easier=frozenset({CLAMSHELL}), pace=1.25,
                          eased_last_time=frozenset({CLAMSHELL}), back_to_normal=frozenset({FIGURE_FOUR}))
    events = piriformis_events()
    log = record_session(history, "piriformis", events, options=options)
    assert history.session_events(log.session_id) == [SessionStarted(T0, "piriformis", options), *events]


def test_events_are_stored_with_wall_times_from_runner_times(history: History, db_path: Path) -> None:
    record_session(history, "piriformis", piriformis_events())
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("SELECT at, command, heard FROM commands ORDER BY seq").fetchall()[:2] == [
            ((WALL + timedelta(seconds=5)).isoformat(timespec="microseconds"), "pause", "pause please"),
            ((WALL + timedelta(seconds=9.5)).isoformat(timespec="microseconds"), "resume", None),
        ]
        assert db.execute("SELECT started_at, ended_at, end_reason, voice FROM sessions").fetchone() == (
            WALL.isoformat(timespec="microseconds"),
            (WALL + timedelta(seconds=600)).isoformat(timespec="microseconds"), "completed", "test-voice")


def test_the_file_is_created_on_first_use_in_the_user_folder(coach_home: Path) -> None:
    history = History()
    assert not coach_home.exists()  # opened lazily
    assert history.recent() == []
    with closing(sqlite3.connect(coach_home / "history.sqlite3")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    history.close()


def test_wall_start_defaults_to_now_in_utc(history: History) -> None:
    before = datetime.now(UTC)
    history.start_session(SessionStarted(T0, "quick", PlanOptions()), routine("quick"), voice="v")
    started = history.recent()[0].started_at
    assert started.tzinfo is not None and before <= started <= datetime.now(UTC)


def test_a_real_engine_session_goes_in_whole(history: History) -> None:
    quick = routine("quick")
    engine = SessionEngine(quick, PlanOptions(), estimate_speech_seconds)
    events = [a.event for a in engine.start(T0) if isinstance(a, Record)]
    t = T0
    while engine.phase != "ended":
        t += 0.5
        events += [a.event for a in engine.advance(t) if isinstance(a, Record)]
    assert isinstance(events[0], SessionStarted)
    log = record_session(history, "quick", events[1:])
    assert history.session_events(log.session_id) == events
    [summary] = history.recent()
    assert (summary.ending, summary.done, summary.eased, summary.skipped) == ("completed", 1, 0, 0)


# --- summaries and the export --------------------------------------------------------------

def test_recent_summaries_newest_first(history: History) -> None:
    record_session(history, "piriformis", piriformis_events())
    record_session(history, "quick", [
        SymptomReported(T0 + 30.0, "red_flag", "gentle-glute-squeeze", None, "sharp pain"),
        ExerciseFinished(T0 + 30.0, "gentle-glute-squeeze", None, "skipped"),
        SessionEnded(T0 + 30.0, "red_flag"),
    ], wall_start=WALL + timedelta(days=1))
    record_session(history, "quick", [CommandReceived(T0 + 42.0, "louder", "louder")],
                   wall_start=WALL + timedelta(days=2))  # no end: killed
    interrupted, red_flag, completed = history.recent()
    assert (interrupted.ending, interrupted.duration_seconds) == ("interrupted", 42.0)
    assert (red_flag.ending, red_flag.skipped, red_flag.symptoms) == ("red_flag", 1, 1)
    assert (completed.routine_id, completed.routine_title) == ("piriformis", routine("piriformis").title)
    assert (completed.ending, completed.duration_seconds) == ("completed", 600.0)
    assert (completed.done, completed.eased, completed.skipped, completed.symptoms) == (2, 1, 1, 1)
    assert [s.session_id for s in history.recent(limit=1)] == [interrupted.session_id]


def test_format_recent_is_a_table_in_local_time(history: History, berlin: None) -> None:
    record_session(history, "piriformis", piriformis_events())
    record_session(history, "quick", [], wall_start=WALL + timedelta(hours=2))
    lines = format_recent(history.recent()).splitlines()
    assert lines[0].split() == ["Started", "Routine", "Length", "Ended", "Done", "Eased", "Skipped", "Symptoms"]
    assert lines[1].split() == ["2024-05-01", "12:30", "quick", "0:00", "interrupted", "0", "0", "0", "0"]
    assert lines[2].split() == ["2024-05-01", "10:30", "piriformis", "10:00", "completed", "2", "1", "1", "1"]
    assert lines[1].index("interrupted") == lines[2].index("completed") == lines[0].index("Ended")
    assert format_recent([]) == "No sessions recorded yet."


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 59.6, 61, 3600, 3725)] == ["0:00", "1:00", "1:01", "1:00:00", "1:02:05"]


def export(history: History) -> list[dict[str, str]]:
    stream = io.StringIO(newline="")
    write_csv(history.rows_for_export(), stream)
    stream.seek(0)
    reader = csv.DictReader(stream)
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def test_csv_has_one_row_per_exercise_and_side(history: History, berlin: None) -> None:
    options = PlanOptions(easier=frozenset({FIGURE_FOUR}))
    events = piriformis_events(reason=None) + [
        SymptomReported(T0 + 200.0, "tingling", "seated-chair-figure-four-stretch", "right", "tingling again"),
        SymptomReported(T0 + 210.0, "red_flag", "seated-chair-figure-four-stretch", "right", "shooting pain"),
        ExerciseFinished(T0 + 210.0, "seated-chair-figure-four-stretch", "right", "skipped"),
        SessionEnded(T0 + 210.0, "red_flag"),
    ]
    log = record_session(history, "piriformis", events, options=options)
    rows = export(history)
    units = [(e.id, side) for e in routine("piriformis").exercises for side in e.sides]
    assert [(row["exercise_id"], row["side"]) for row in rows] == units
    first = rows[0]
    assert first == {
        "session": str(log.session_id), "started": "2024-05-01T10:30:00+02:00", "routine": "piriformis",
        "exercise_id": "tender-spot-massage", "exercise": routine("piriformis").exercises[0].name,
        "side": "right", "level": "normal", "outcome": "done", "tingling_reports": "0", "red_flag": "no",
        "words_heard": "", "session_end": "red flag",
    }
    by_unit = {(row["exercise_id"], row["side"]): row for row in rows}
    eased = by_unit[(FIGURE_FOUR, "right")]
    assert (eased["level"], eased["outcome"], eased["tingling_reports"], eased["words_heard"]) == (
        "easier", "eased", "1", "my toes are tingling")
    flagged = by_unit[("seated-chair-figure-four-stretch", "right")]
    assert (flagged["outcome"], flagged["tingling_reports"], flagged["red_flag"], flagged["words_heard"]) == (
        "skipped", "1", "yes", "tingling again; shooting pain")
    assert by_unit[(CLAMSHELL, "left")]["outcome"] == "not reached"


def test_csv_keeps_symptoms_outside_exercises_and_chosen_sides_only(history: History) -> None:
    record_session(history, "piriformis", [
        SymptomReported(T0 + 3.0, "tingling", None, None, "tingling during the intro"),
        SessionEnded(T0 + 900.0, "completed"),
    ], options=PlanOptions(sides=("left",)))
    rows = export(history)
    assert {row["side"] for row in rows[:-1]} == {"left"}
    assert len(rows) == len(routine("piriformis").exercises) + 1
    assert (rows[-1]["exercise_id"], rows[-1]["outcome"], rows[-1]["words_heard"], rows[-1]["tingling_reports"]) == (
        "", "", "tingling during the intro", "1")


def test_an_exercise_finished_twice_shows_its_most_worked_outcome(history: History) -> None:
    record_session(history, "quick", [
        ExerciseFinished(T0 + 10.0, "gentle-glute-squeeze", None, "skipped"),
        CommandReceived(T0 + 11.0, "previous", "previous"),
        ExerciseFinished(T0 + 70.0, "gentle-glute-squeeze", None, "done"),
        SessionEnded(T0 + 80.0, "completed"),
    ])
    [row] = export(history)
    assert row["outcome"] == "done"
    assert history.recent()[0].done == 1 and history.recent()[0].skipped == 0


# --- carry-over ----------------------------------------------------------------------------

def worked(history: History, name: str, exercise: str, *, easier: bool = False,
           report: SymptomKind | None = None, outcome: str = "done", side: Side | None = "right",
           day: int = 0) -> None:
    """One session of ``name`` in which ``exercise`` is finished (and maybe reported)."""
    events: list[Event] = []
    if report is not None:
        events.append(SymptomReported(T0 + 50.0, report, exercise, side, "it tingles"))
        outcome = "eased" if report == "tingling" else "skipped"
    events.append(ExerciseFinished(T0 + 60.0, exercise, side, outcome))  # type: ignore[arg-type]
    record_session(history, name, events, options=PlanOptions(easier=frozenset({exercise} if easier else ())),
                   wall_start=WALL + timedelta(days=day))


def test_no_history_no_carry_over(history: History) -> None:
    assert history.carry_over(routine("piriformis")) == CarryOver()


def test_a_report_makes_the_next_session_easier(history: History) -> None:
    worked(history, "piriformis", FIGURE_FOUR, report="tingling")
    assert history.carry_over(routine("piriformis")) == CarryOver(
        easier=frozenset({FIGURE_FOUR}), eased_last_time=frozenset({FIGURE_FOUR}))


def test_a_red_flag_counts_as_a_report_even_if_the_exercise_was_only_skipped(history: History) -> None:
    worked(history, "piriformis", FIGURE_FOUR, report="red_flag")
    assert history.carry_over(routine("piriformis")).easier == {FIGURE_FOUR}


def test_one_clean_session_at_easier_stays_easier(history: History) -> None:
    worked(history, "piriformis", FIGURE_FOUR, report="tingling", day=0)
    worked(history, "piriformis", FIGURE_FOUR, easier=True, outcome="eased", day=1)
    assert history.carry_over(routine("piriformis")) == CarryOver(easier=frozenset({FIGURE_FOUR}))


def test_two_clean_sessions_at_easier_bring_it_back_to_normal(history: History) -> None:
    worked(history, "piriformis", FIGURE_FOUR, report="tingling", day=0)
    worked(history, "piriformis", FIGURE_FOUR, easier=True, outcome="eased", day=1)
    worked(history, "piriformis", FIGURE_FOUR, easier=True, outcome="eased", day=2)
    assert history.carry_over(routine("piriformis")) == CarryOver(back_to_normal=frozenset({FIGURE_FOUR}))
    worked(history, "piriformis", FIGURE_FOUR, day=3)  # the next session at normal: said once only
    assert history.carry_over(routine("piriformis")) == CarryOver()


def test_a_report_at_easier_resets_the_clean_count(history: History) -> None:
    worked(history, "piriformis", FIGURE_FOUR, report="tingling", day=0)
    worked(history, "piriformis", FIGURE_FOUR, easier=True, outcome="eased", day=1)
    worked(history, "piriformis", FIGURE_FOUR, easier=True, report="tingling", day=2)
    worked(history, "piriformis", FIGURE_FOUR, easier=True, outcome="eased", day=3)
    assert history.carry_over(routine("piriformis")) == CarryOver(easier=frozenset({FIGURE_FOUR}))
    worked(history, "piriformis", FIGURE_FOUR, easier=True, outcome="eased", day=4)
    assert history.carry_over(routine("piriformis")).back_to_normal == {FIGURE_FOUR}


def test_sessions_without_the_exercise_worked_do_not_count(history: History) -> None:
    worked(history, "piriformis", FIGURE_FOUR, report="tingling", day=0)
    worked(history, "piriformis", FIGURE_FOUR, easier=True, outcome="skipped", day=1)  # skipped only
    worked(history, "piriformis", CLAMSHELL, day=2)  # figure-four absent
    record_session(history, "piriformis", [], options=PlanOptions(easier=frozenset({FIGURE_FOUR})),
                   wall_start=WALL + timedelta(days=3))  # interrupted before anything
    assert history.carry_over(routine("piriformis")) == CarryOver(
        easier=frozenset({FIGURE_FOUR}), eased_last_time=frozenset({FIGURE_FOUR}))


def test_a_clean_session_at_normal_neither_clears_nor_advances_easier(history: History) -> None:
    worked(history, "piriformis", FIGURE_FOUR, report="tingling", day=0)
    worked(history, "piriformis", FIGURE_FOUR, easier=False, day=1)  # the history was not asked
    worked(history, "piriformis", FIGURE_FOUR, easier=True, outcome="eased", day=2)
    assert history.carry_over(routine("piriformis")).easier == {FIGURE_FOUR}


def test_carry_over_follows_start_time_not_the_order_written(history: History) -> None:
    worked(history, "piriformis", FIGURE_FOUR, easier=True, outcome="eased", day=2)
    worked(history, "piriformis", FIGURE_FOUR, report="tingling", day=0)
    assert history.carry_over(routine("piriformis")) == CarryOver(easier=frozenset({FIGURE_FOUR}))


def test_carry_over_is_kept_per_routine(history: History) -> None:
    worked(history, "piriformis", FIGURE_FOUR, report="tingling")
    worked(history, "quick", "gentle-glute-squeeze", side=None, report="tingling")
    assert history.carry_over(routine("piriformis")).easier == {FIGURE_FOUR}
    assert history.carry_over(routine("quick")).easier == {"gentle-glute-squeeze"}
    assert history.carry_over(routine("leg-numbness")) == CarryOver()


def test_carry_over_fits_the_plan_options(history: History) -> None:
    worked(history, "piriformis", FIGURE_FOUR, report="tingling")
    carry = history.carry_over(routine("piriformis"))
    PlanOptions(easier=carry.easier, eased_last_time=carry.eased_last_time,
                back_to_normal=carry.back_to_normal).checked_against(routine("piriformis"))


# --- what storage failures do --------------------------------------------------------------

def read_line(process: subprocess.Popen[str], timeout_seconds: float = 60.0) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(timeout_seconds), "the child printed nothing"
    return process.stdout.readline()


def test_everything_recorded_survives_sigkill(db_path: Path) -> None:
    child = subprocess.Popen([sys.executable, str(CHILD), "kill", str(db_path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        word, session_id = read_line(child).split()
        assert word == history_child.RECORDED
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with History(db_path) as history:
        assert history.session_events(int(session_id)) == [history_child.STARTED, *history_child.EVENTS]
        [summary] = history.recent()
        assert (summary.ending, summary.done, summary.eased, summary.symptoms) == ("interrupted", 2, 1, 1)
        # The killed session's tingling carries over; and the file takes new sessions.
        assert history.carry_over(routine("piriformis")).eased_last_time == {FIGURE_FOUR}
        record_session(history, "quick", [SessionEnded(T0 + 60.0, "completed")], wall_start=WALL + timedelta(days=1))
        assert [s.ending for s in history.recent()] == ["completed", "interrupted"]


def test_a_full_disk_during_a_session_is_one_warning_not_a_crash(db_path: Path) -> None:
    child = subprocess.run([sys.executable, str(CHILD), "full", str(db_path)],
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == 0 and child.stderr == ""
    report = json.loads(child.stdout)
    assert report["failures"] == len(history_child.EVENTS) - 2
    [warning] = report["warnings"]
    assert str(db_path) in warning and "\n" not in warning and "The session goes on" in warning
    with History(db_path) as history:  # what was written before the disk filled is all there
        [summary] = history.recent()
        assert summary.ending == "interrupted"
        events = history.session_events(summary.session_id)
        assert events == [history_child.STARTED, *history_child.EVENTS[:2]]


def test_a_lock_held_too_long_is_one_warning_and_later_events_still_go_in(db_path: Path) -> None:
    history = History(db_path, busy_timeout_seconds=0.05)
    log = history.start_session(SessionStarted(T0, "quick", PlanOptions()), routine("quick"), voice="v")
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another coach, stuck mid-write
    log.record(CommandReceived(T0 + 1.0, "pause", "pause"))
    log.record(CommandReceived(T0 + 2.0, "resume", "resume"))
    assert log.failures == 2 and len(log.warnings) == 1 and "locked" in log.warnings[0]
    other.execute("ROLLBACK")
    other.close()
    log.record(SessionEnded(T0 + 3.0, "stopped"))
    assert log.failures == 2 and len(log.warnings) == 1
    assert history.session_events(log.session_id)[1:] == [SessionEnded(T0 + 3.0, "stopped")]
    history.close()


def test_a_session_starting_on_unusable_storage_warns_and_retries(db_path: Path) -> None:
    db_path.mkdir()  # not a file: fails to open even for root
    history = History(db_path)
    log = history.start_session(SessionStarted(T0, "quick", PlanOptions()), routine("quick"), voice="v")
    log.record(CommandReceived(T0 + 1.0, "pause", "pause"))
    assert log.session_id is None and log.failures == 2 and len(log.warnings) == 1
    assert str(db_path) in log.warnings[0]
    db_path.rmdir()  # the storage comes back: the session row is written, then the event
    log.record(SessionEnded(T0 + 2.0, "stopped"))
    assert log.session_id is not None
    assert history.session_events(log.session_id) == [
        SessionStarted(T0, "quick", PlanOptions()), SessionEnded(T0 + 2.0, "stopped")]
    history.close()


def one_line_error(action: object) -> str:
    with pytest.raises(CoachError) as caught:
        action()  # type: ignore[operator]
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_corrupt_file_is_one_clear_error_when_read(db_path: Path) -> None:
    db_path.write_bytes(b"this is not a database, just garbage bytes " * 100)
    history = History(db_path)
    for read in (history.recent, history.rows_for_export, lambda: history.carry_over(routine("quick"))):
        message = one_line_error(read)
        assert message.startswith(str(db_path)) and "move the file aside" in message
    log = history.start_session(SessionStarted(T0, "quick", PlanOptions()), routine("quick"), voice="v")
    assert len(log.warnings) == 1 and str(db_path) in log.warnings[0]


def test_an_unreadable_path_is_one_clear_error(db_path: Path) -> None:
    db_path.mkdir()
    assert "move the file aside" in one_line_error(History(db_path).recent)


def test_a_newer_schema_is_one_clear_error(db_path: Path) -> None:
    with History(db_path) as history:
        history.recent()
    with closing(sqlite3.connect(db_path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    message = one_line_error(History(db_path).recent)
    assert str(db_path) in message and "newer coach" in message and "upgrade coach" in message
    log = History(db_path).start_session(SessionStarted(T0, "quick", PlanOptions()), routine("quick"), voice="v")
    assert len(log.warnings) == 1 and "newer coach" in log.warnings[0]
