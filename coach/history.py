"""The session history: what happened in every session, kept in SQLite in the user folder.

``coach_home() / "history.sqlite3"`` holds each session (start, end, routine, options, voice),
each exercise and side (done, eased or skipped), each symptom report and each command, with
the words heard. The engine's history events (``coach.session.events``) are the only input.

Durability: every event is written in its own transaction as it happens (WAL journal,
``synchronous=FULL``), so Ctrl-C, SIGTERM, SIGKILL or a crash loses nothing already recorded. A
session that never recorded its end shows as "interrupted".

Failures: writing during a session (``History.start_session``, ``SessionLog.record``) never
raises for a storage problem — the person is mid-stretch, and losing history must not stop the
coach; the first failure becomes one line in ``SessionLog.warnings`` and later events are still
tried. Reading (``recent``, ``rows_for_export``, ``carry_over``) raises ``CoachError`` with one
line naming the file and the fix.

Carry-over (``History.carry_over``): per exercise id of the routine, over that routine's past
sessions in start order, counting only sessions in which the exercise was *worked* (finished
done or eased at least once, on any side) or *reported* (a symptom report names it):

- the level starts at normal;
- a session with a report for the exercise (tingling or a red flag) sets the level to easier
  and the clean count to zero;
- a session without a report that started the exercise at the easier level (its id was in
  ``SessionStarted.options.easier``) while the carried level is easier adds one clean session;
  the second one brings the level back to normal;
- a session without a report in which the exercise was not at the easier level changes
  nothing.

Conservative choices: a red flag counts as a report; a report counts even if the exercise was
then only skipped (a red flag ends the session and records the exercise as skipped); an
interrupted session counts, since whatever it recorded happened; a session that ran the
exercise at normal while the history asked for easier (the history was not consulted) neither
clears nor advances the easier level; a session at easier chosen by the person while the
carried level is normal does not count towards "back to normal" (there was nothing to come
back from). ``eased_last_time``: the most recent counted session had a report.
``back_to_normal``: the most recent counted session was the second clean one at easier.

Export: one row per exercise and side planned at the start of each session, in order; a unit
finished more than once (the person went back) shows its most-worked outcome, eased over done
over skipped; a unit with no finish (the session was stopped, ended by a red flag or
interrupted before it) is "not reached". Symptoms reported outside any exercise (the title,
the safety words, the closing) get one extra row per session with no exercise.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, TextIO

from coach.duration import clock
from coach.errors import CoachError
from coach.home import coach_home
from coach.plan import PlanOptions
from coach.routine import Exercise, Routine, Side
from coach.session.events import (
    CommandReceived, Event, ExerciseFinished, Intensity, Outcome, SessionEnded,
    SessionStarted, SymptomReported,
)

HISTORY_FILE_NAME = "history.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 2.0
"""How long a write waits for another coach holding the file: long enough for another
process's one-row transaction, short enough that a stuck lock barely stalls a session."""

Ending = Literal["completed", "stopped", "red_flag", "interrupted"]
ExportOutcome = Literal["done", "eased", "skipped", "not reached", ""]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    routine_id TEXT NOT NULL,
    routine_title TEXT NOT NULL,
    voice TEXT NOT NULL,
    options TEXT NOT NULL,              -- PlanOptions as JSON
    started_at TEXT NOT NULL,           -- ISO 8601, UTC
    started_at_t REAL NOT NULL,         -- runner seconds of SessionStarted
    ended_at TEXT,                      -- NULL: no end recorded (interrupted, or still running)
    ended_at_t REAL,
    ended_seq INTEGER,
    end_reason TEXT CHECK (end_reason IN ('completed', 'stopped', 'red_flag'))
);
-- The exercise/side units planned at the start: names for the export without the script,
-- and what "not reached" means.
CREATE TABLE IF NOT EXISTS session_exercises (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    position INTEGER NOT NULL,
    exercise_id TEXT NOT NULL,
    exercise_name TEXT NOT NULL,
    side TEXT CHECK (side IN ('right', 'left')),
    level TEXT NOT NULL CHECK (level IN ('normal', 'easier')),
    PRIMARY KEY (session_id, position)
);
-- seq: the event's place in its session (SessionStarted is 0), across all three tables;
-- a gap is an event that could not be written.
CREATE TABLE IF NOT EXISTS exercise_results (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    at_t REAL NOT NULL,
    exercise_id TEXT NOT NULL,
    side TEXT CHECK (side IN ('right', 'left')),
    outcome TEXT NOT NULL CHECK (outcome IN ('done', 'eased', 'skipped')),
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS symptoms (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    at_t REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('tingling', 'red_flag')),
    exercise_id TEXT,
    side TEXT CHECK (side IN ('right', 'left')),
    heard TEXT,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS commands (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    at_t REAL NOT NULL,
    command TEXT NOT NULL,
    heard TEXT,
    PRIMARY KEY (session_id, seq)
);
CREATE INDEX IF NOT EXISTS sessions_by_routine ON sessions (routine_id, started_at);
"""


def default_history_path() -> Path:
    return coach_home() / HISTORY_FILE_NAME


# --- what the history gives back ------------------------------------------------------------

@dataclass(frozen=True)
class CarryOver:
    """Levels for the next session of one routine, from its past sessions (see the module doc)."""

    easier: frozenset[str] = frozenset()
    eased_last_time: frozenset[str] = frozenset()
    """Part of ``easier``: the last session with the exercise had a report; the coach says why."""
    back_to_normal: frozenset[str] = frozenset()
    """Back at normal after two clean sessions at easier; the coach says so."""


@dataclass(frozen=True)
class SessionSummary:
    session_id: int
    started_at: datetime
    """Timezone-aware (UTC); show it with ``astimezone()``."""
    routine_id: str
    routine_title: str
    voice: str
    duration_seconds: float
    """To the recorded end, or to the last thing recorded when interrupted."""
    ending: Ending
    done: int
    eased: int
    skipped: int
    """Counts of exercise/side units by outcome (see the module doc for units finished twice)."""
    symptoms: int


@dataclass(frozen=True)
class ExportRow:
    """One exercise on one side in one session, for a physical therapist's spreadsheet."""

    session_id: int
    started_at: datetime
    routine_id: str
    exercise_id: str
    """Empty for the row of symptoms reported outside any exercise."""
    exercise_name: str
    side: Side | None
    level: Intensity | None
    """The level at the start of the session."""
    outcome: ExportOutcome
    tingling_reports: int
    red_flag: bool
    words_heard: tuple[str, ...]
    """The words heard with each symptom report, in order."""
    ending: Ending


# --- writing --------------------------------------------------------------------------------

class History:
    """The history file, opened on first use. Usable as a context manager; ``close`` when done.

    One connection, guarded by a lock: the runner may record from another thread than the one
    that opened the history.
    """

    def __init__(self, path: Path | None = None, *,
                 busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = path if path is not None else default_history_path()
        self.busy_timeout_seconds = busy_timeout_seconds
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- sessions --------------------------------------------------------------------------

    def start_session(self, started: SessionStarted, routine: Routine, *, voice: str,
                      wall_start: datetime | None = None) -> SessionLog:
        """Write the session row and its planned units; never raises for a storage problem.

        ``wall_start``: the wall time of ``started.at_t`` (default now; a naive time is taken as
        local); stored in UTC.
        """
        wall = (wall_start or datetime.now(UTC)).astimezone(UTC)
        log = SessionLog(self, started, routine, voice, wall)
        log.write_start()
        return log

    # --- reading ---------------------------------------------------------------------------

    def recent(self, limit: int = 10) -> list[SessionSummary]:
        """The latest ``limit`` sessions, newest first."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT * FROM sessions ORDER BY started_at DESC, id DESC LIMIT ?", (limit,)).fetchall()
            return [self._summary(db, row) for row in rows]

    def rows_for_export(self) -> list[ExportRow]:
        """Every session, oldest first: one row per planned exercise and side (see the module doc)."""
        with self._reading() as db:
            sessions = db.execute("SELECT * FROM sessions ORDER BY started_at, id").fetchall()
            return [row for session in sessions for row in self._export_rows(db, session)]

    def carry_over(self, routine: Routine) -> CarryOver:
        """Which exercises of ``routine`` start easier next time, and why (see the module doc)."""
        with self._reading() as db:
            sessions = db.execute(
                "SELECT id, options FROM sessions WHERE routine_id = ? ORDER BY started_at, id",
                (routine.id,)).fetchall()
            history = [_SessionFacts.read(db, row["id"], _options_from_json(row["options"]).easier)
                       for row in sessions]
        easier: set[str] = set()
        eased_last_time: set[str] = set()
        back_to_normal: set[str] = set()
        for exercise in routine.exercises:
            state = _carried_level(exercise.id, history)
            if state.level == "easier":
                easier.add(exercise.id)
                if state.reported_last:
                    eased_last_time.add(exercise.id)
            elif state.came_back:
                back_to_normal.add(exercise.id)
        return CarryOver(frozenset(easier), frozenset(eased_last_time), frozenset(back_to_normal))

    def session_events(self, session_id: int) -> list[Event]:
        """A session's events as recorded, in order: what the engine emitted, read back."""
        with self._reading() as db:
            session = db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if session is None:
                raise CoachError(f"{self.path}: no session {session_id}")
            numbered: list[tuple[int, Event]] = [(0, SessionStarted(
                session["started_at_t"], session["routine_id"], _options_from_json(session["options"])))]
            numbered += [(row["seq"], ExerciseFinished(row["at_t"], row["exercise_id"], row["side"], row["outcome"]))
                         for row in db.execute("SELECT * FROM exercise_results WHERE session_id = ?", (session_id,))]
            numbered += [(row["seq"], SymptomReported(row["at_t"], row["kind"], row["exercise_id"], row["side"],
                                                      row["heard"]))
                         for row in db.execute("SELECT * FROM symptoms WHERE session_id = ?", (session_id,))]
            numbered += [(row["seq"], CommandReceived(row["at_t"], row["command"], row["heard"]))
                         for row in db.execute("SELECT * FROM commands WHERE session_id = ?", (session_id,))]
            if session["end_reason"] is not None:
                numbered.append((session["ended_seq"], SessionEnded(session["ended_at_t"], session["end_reason"])))
        return [event for _, event in sorted(numbered, key=lambda pair: pair[0])]

    # --- the connection --------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """The open connection, opening and creating the file on first use.

        Raises ``sqlite3.Error`` or ``OSError``; callers turn them into a warning or a
        ``CoachError``.
        """
        if self._db is None:
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit (isolation_level None): every transaction is an explicit BEGIN ... COMMIT.
        db = sqlite3.connect(self.path, timeout=self.busy_timeout_seconds, isolation_level=None,
                             check_same_thread=False)
        try:
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_seconds * 1000)}")
            # The first read of the file: a file that is not a database fails here.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            self._check_version(version)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            if version < SCHEMA_VERSION:
                self._create(db)
        except BaseException:
            db.close()
            raise
        return db

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise CoachError(
                f"{self.path}: the history was written by a newer coach (version {version}, this one "
                f"knows {SCHEMA_VERSION}); upgrade coach, or move the file aside and coach starts a new one")

    def _create(self, db: sqlite3.Connection) -> None:
        with transaction(db):
            # Checked again inside the write lock: another coach may have just created it.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            self._check_version(version)
            if version == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for a read; storage failures become one ``CoachError`` line."""
        with self._lock:
            try:
                yield self._connection()
            except (sqlite3.Error, OSError) as error:
                raise CoachError(
                    f"{self.path}: cannot read the session history ({_reason(error)}); "
                    f"move the file aside and coach starts a new one") from None

    def _summary(self, db: sqlite3.Connection, session: sqlite3.Row) -> SessionSummary:
        session_id = session["id"]
        units = _unit_outcomes(db, session_id)
        counts = {outcome: sum(1 for value in units.values() if value == outcome)
                  for outcome in ("done", "eased", "skipped")}
        symptoms = db.execute("SELECT COUNT(*) FROM symptoms WHERE session_id = ?", (session_id,)).fetchone()[0]
        return SessionSummary(
            session_id, _parse_time(session["started_at"]), session["routine_id"], session["routine_title"],
            session["voice"], _last_t(db, session) - session["started_at_t"], _ending(session),
            counts["done"], counts["eased"], counts["skipped"], symptoms)

    def _export_rows(self, db: sqlite3.Connection, session: sqlite3.Row) -> list[ExportRow]:
        session_id = session["id"]
        started, ending = _parse_time(session["started_at"]), _ending(session)
        easier = _options_from_json(session["options"]).easier
        planned = [(row["exercise_id"], row["exercise_name"], row["side"], row["level"])
                   for row in db.execute("SELECT * FROM session_exercises WHERE session_id = ? "
                                         "ORDER BY position", (session_id,))]
        outcomes = _unit_outcomes(db, session_id)
        # Units finished but not planned cannot come from the engine; kept rather than lost.
        known = {(exercise_id, side) for exercise_id, _, side, _ in planned}
        names = {exercise_id: name for exercise_id, name, _, _ in planned}
        planned += [(exercise_id, names.get(exercise_id, exercise_id), side,
                     "easier" if exercise_id in easier else "normal")
                    for exercise_id, side in outcomes if (exercise_id, side) not in known]
        symptoms = _symptoms_by_unit(db, session_id, [(e, s) for e, _, s, _ in planned])
        rows = [ExportRow(session_id, started, session["routine_id"], exercise_id, name, side, level,
                          outcomes.get((exercise_id, side), "not reached"),
                          *_symptom_columns(symptoms.get((exercise_id, side), [])), ending)
                for exercise_id, name, side, level in planned]
        outside = symptoms.get(None, [])
        if outside:
            rows.append(ExportRow(session_id, started, session["routine_id"], "", "", None, None, "",
                                  *_symptom_columns(outside), ending))
        return rows


class SessionLog:
    """One session being written: ``record`` each event as it happens.

    Never raises for a storage problem: the first one becomes a line in ``warnings`` and each
    later event is still tried (a lock held by another coach passes; a full disk may be freed).
    """

    def __init__(self, history: History, started: SessionStarted, routine: Routine, voice: str,
                 wall_start: datetime) -> None:
        self._history = history
        self._started = started
        self._routine = routine
        self._voice = voice
        self._wall_start = wall_start
        self._next_seq = 1  # 0 is SessionStarted
        self.session_id: int | None = None
        """None while the session row is not written."""
        self.warnings: list[str] = []
        """At most one line: the first storage failure of this session."""
        self.failures = 0
        """How many writes failed."""

    def write_start(self) -> None:
        """Write the session row and its planned units (``History.start_session`` calls it)."""
        self._write(None)

    def record(self, event: Event) -> None:
        """Write one event in one transaction. ``SessionStarted`` is ignored: ``start_session``
        wrote it."""
        if isinstance(event, SessionStarted):
            return
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        self._write(lambda db: self._insert_event(db, seq, event))

    def wall_time(self, at_t: float) -> datetime:
        """The wall time of runner time ``at_t`` (the runner's clock is monotonic, not wall time)."""
        return self._wall_start + timedelta(seconds=at_t - self._started.at_t)

    def _write(self, step: Callable[[sqlite3.Connection], None] | None) -> None:
        with self._history._lock:
            try:
                db = self._history._connection()
                if self.session_id is None:
                    # Also after a failed start (a lock, say): later events need their session.
                    with transaction(db):
                        session_id = self._insert_session(db)
                    self.session_id = session_id  # only once committed
                if step is not None:
                    with transaction(db):
                        step(db)
            except (sqlite3.Error, OSError, CoachError) as error:
                self._failed(error)

    def _failed(self, error: BaseException) -> None:
        self.failures += 1
        if not self.warnings:
            self.warnings.append(f"The session history could not be saved ({_reason(error)}): "
                                 f"{self._history.path}. The session goes on.")

    def _insert_session(self, db: sqlite3.Connection) -> int:
        started = self._started
        cursor = db.execute(
            "INSERT INTO sessions (routine_id, routine_title, voice, options, started_at, started_at_t)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (started.routine_id, self._routine.title, self._voice, _options_to_json(started.options),
             _format_time(self._wall_start), started.at_t))
        session_id = cursor.lastrowid
        assert session_id is not None
        db.executemany(
            "INSERT INTO session_exercises (session_id, position, exercise_id, exercise_name, side, level)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(session_id, position, exercise.id, exercise.name, side,
              "easier" if exercise.id in started.options.easier else "normal")
             for position, (exercise, side) in enumerate(_planned_units(self._routine, started.options))])
        return session_id

    def _insert_event(self, db: sqlite3.Connection, seq: int, event: Event) -> None:
        session_id, at = self.session_id, _format_time(self.wall_time(event.at_t))
        if isinstance(event, ExerciseFinished):
            db.execute("INSERT INTO exercise_results VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (session_id, seq, at, event.at_t, event.exercise_id, event.side, event.outcome))
        elif isinstance(event, SymptomReported):
            db.execute("INSERT INTO symptoms VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (session_id, seq, at, event.at_t, event.kind, event.exercise_id, event.side,
                        event.heard))
        elif isinstance(event, CommandReceived):
            db.execute("INSERT INTO commands VALUES (?, ?, ?, ?, ?, ?)",
                       (session_id, seq, at, event.at_t, event.command, event.heard))
        elif isinstance(event, SessionEnded):
            db.execute("UPDATE sessions SET ended_at = ?, ended_at_t = ?, ended_seq = ?, end_reason = ?"
                       " WHERE id = ?", (at, event.at_t, seq, event.reason, session_id))


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction. ``IMMEDIATE`` takes the write lock at once, so a busy file waits
    at the start (``busy_timeout``) rather than failing halfway."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (disk full) leaves the transaction open; the first error is the one to tell.
        with suppress(sqlite3.Error):
            if db.in_transaction:
                db.execute("ROLLBACK")
        raise


# --- the output of ``coach history`` --------------------------------------------------------

_ENDING_WORDS: dict[Ending, str] = {
    "completed": "completed", "stopped": "stopped", "red_flag": "red flag", "interrupted": "interrupted",
}
CSV_COLUMNS = (
    "session", "started", "routine", "exercise_id", "exercise", "side", "level", "outcome",
    "tingling_reports", "red_flag", "words_heard", "session_end",
)


def format_recent(summaries: Iterable[SessionSummary]) -> str:
    """A plain-text table, one session a line, times in the local time zone."""
    header = ("Started", "Routine", "Length", "Ended", "Done", "Eased", "Skipped", "Symptoms")
    lines = [(
        summary.started_at.astimezone().strftime("%Y-%m-%d %H:%M"), summary.routine_id,
        format_duration(summary.duration_seconds), _ENDING_WORDS[summary.ending],
        str(summary.done), str(summary.eased), str(summary.skipped), str(summary.symptoms),
    ) for summary in summaries]
    if not lines:
        return "No sessions recorded yet."
    widths = [max(len(row[column]) for row in [header, *lines]) for column in range(len(header))]
    numeric = {2, 4, 5, 6, 7}  # right-aligned, so digits line up
    return "\n".join(
        "  ".join(cell.rjust(width) if column in numeric else cell.ljust(width)
                  for column, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
        for row in [header, *lines])


def format_duration(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour, to the nearest second."""
    return clock(round(seconds))


def write_csv(rows: Iterable[ExportRow], stream: TextIO) -> None:
    """The export for a physical therapist: a header row, then one row per exercise and side.

    ``stream`` should be opened with ``newline=""``, as the csv module asks.
    """
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow((
            row.session_id, row.started_at.astimezone().isoformat(timespec="seconds"), row.routine_id,
            row.exercise_id, row.exercise_name, row.side or "", row.level or "", row.outcome,
            row.tingling_reports, "yes" if row.red_flag else "no", "; ".join(row.words_heard),
            _ENDING_WORDS[row.ending],
        ))


# --- helpers --------------------------------------------------------------------------------

Unit = tuple[str, "Side | None"]
_OUTCOME_RANK: dict[str, int] = {"skipped": 0, "done": 1, "eased": 2}


@dataclass(frozen=True)
class _SessionFacts:
    """What one past session says about each exercise, for the carry-over."""

    worked: frozenset[str]
    """Finished done or eased at least once."""
    reported: frozenset[str]
    """Named by a tingling or red-flag report."""
    easier: frozenset[str]
    """At the easier level from the start."""

    @classmethod
    def read(cls, db: sqlite3.Connection, session_id: int, easier: frozenset[str]) -> _SessionFacts:
        worked = db.execute("SELECT DISTINCT exercise_id FROM exercise_results WHERE session_id = ?"
                            " AND outcome IN ('done', 'eased')", (session_id,))
        reported = db.execute("SELECT DISTINCT exercise_id FROM symptoms WHERE session_id = ?"
                              " AND exercise_id IS NOT NULL", (session_id,))
        return cls(frozenset(row[0] for row in worked), frozenset(row[0] for row in reported), easier)


@dataclass(frozen=True)
class _Carried:
    level: Intensity = "normal"
    clean_sessions: int = 0
    """Sessions at easier without a report since the level became easier."""
    reported_last: bool = False
    came_back: bool = False


def _carried_level(exercise_id: str, sessions: Iterable[_SessionFacts]) -> _Carried:
    """The carry-over rule of the module doc, for one exercise over sessions in start order."""
    state = _Carried()
    for session in sessions:
        reported = exercise_id in session.reported
        if not reported and exercise_id not in session.worked:
            continue
        if reported:
            state = _Carried("easier", 0, reported_last=True)
        elif state.level == "easier" and exercise_id in session.easier:
            clean = state.clean_sessions + 1
            state = _Carried("normal", came_back=True) if clean >= 2 else _Carried("easier", clean)
        else:
            state = _Carried(state.level, state.clean_sessions)
    return state


def _planned_units(routine: Routine, options: PlanOptions) -> list[tuple[Exercise, Side | None]]:
    """The exercise/side units a session of ``routine`` runs, in order.

    The same choice as the planner's (``coach.plan``): exercises without sides run once; an
    exercise none of whose sides was chosen is left out.
    """
    units: list[tuple[Exercise, Side | None]] = []
    for exercise in routine.exercises:
        if not exercise.sides:
            units.append((exercise, None))
            continue
        units += [(exercise, side) for side in exercise.sides
                  if options.sides is None or side in options.sides]
    return units


def _unit_outcomes(db: sqlite3.Connection, session_id: int) -> dict[Unit, Outcome]:
    """Each finished unit's most-worked outcome, in the order first finished."""
    outcomes: dict[Unit, Outcome] = {}
    for row in db.execute("SELECT exercise_id, side, outcome FROM exercise_results WHERE session_id = ?"
                          " ORDER BY seq", (session_id,)):
        unit = (row["exercise_id"], row["side"])
        if unit not in outcomes or _OUTCOME_RANK[row["outcome"]] > _OUTCOME_RANK[outcomes[unit]]:
            outcomes[unit] = row["outcome"]
    return outcomes


def _symptoms_by_unit(db: sqlite3.Connection, session_id: int,
                      units: list[Unit]) -> dict[Unit | None, list[sqlite3.Row]]:
    """Symptom reports by the unit they belong to; None for those outside any exercise.

    A report naming an exercise but not one of its planned sides goes to the exercise's first
    unit, so no report is ever left out of the export.
    """
    grouped: dict[Unit | None, list[sqlite3.Row]] = {}
    for row in db.execute("SELECT * FROM symptoms WHERE session_id = ? ORDER BY seq", (session_id,)):
        unit: Unit | None = (row["exercise_id"], row["side"])
        if unit not in units:
            unit = next((u for u in units if u[0] == row["exercise_id"]), None)
        grouped.setdefault(unit, []).append(row)
    return grouped


def _symptom_columns(symptoms: list[sqlite3.Row]) -> tuple[int, bool, tuple[str, ...]]:
    return (sum(1 for row in symptoms if row["kind"] == "tingling"),
            any(row["kind"] == "red_flag" for row in symptoms),
            tuple(row["heard"] for row in symptoms if row["heard"]))


def _last_t(db: sqlite3.Connection, session: sqlite3.Row) -> float:
    """Runner time of the end, or of the last thing recorded when there is no end."""
    if session["ended_at_t"] is not None:
        return float(session["ended_at_t"])
    latest = db.execute(
        "SELECT MAX(at_t) FROM (SELECT at_t FROM exercise_results WHERE session_id = :id"
        " UNION ALL SELECT at_t FROM symptoms WHERE session_id = :id"
        " UNION ALL SELECT at_t FROM commands WHERE session_id = :id)", {"id": session["id"]}).fetchone()[0]
    return float(latest) if latest is not None else float(session["started_at_t"])


def _ending(session: sqlite3.Row) -> Ending:
    return session["end_reason"] or "interrupted"


def _format_time(moment: datetime) -> str:
    # One fixed format in UTC, so the text sorts in time order.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _options_to_json(options: PlanOptions) -> str:
    return json.dumps({
        "sides": list(options.sides) if options.sides is not None else None,
        "easier": sorted(options.easier),
        "pace": options.pace,
        "eased_last_time": sorted(options.eased_last_time),
        "back_to_normal": sorted(options.back_to_normal),
    })


def _options_from_json(text: str) -> PlanOptions:
    data = json.loads(text)
    return PlanOptions(
        sides=tuple(data["sides"]) if data.get("sides") is not None else None,
        easier=frozenset(data.get("easier", ())),
        pace=float(data.get("pace", 1.0)),
        eased_last_time=frozenset(data.get("eased_last_time", ())),
        back_to_normal=frozenset(data.get("back_to_normal", ())),
    )


def _reason(error: BaseException) -> str:
    """The error's own words, on one line: sqlite's are short ("database or disk is full")."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
