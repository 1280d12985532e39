"""A coach process for the history tests to kill or starve: ``python tests/history_child.py MODE DB``.

``kill``: open a session, record ``EVENTS``, print ``RECORDED``, then sleep until killed.
``full``: open a session, record the first events, then limit the size of any file written
(RLIMIT_FSIZE: a full disk that even root cannot write past) and record the rest; print the
warnings as JSON and exit normally. Both run in their own process so a SIGKILL or a file-size
limit never touches the test runner.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

if __name__ == "__main__":  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coach.catalog import resolve_routine  # noqa: E402
from coach.history import History  # noqa: E402
from coach.plan import PlanOptions  # noqa: E402
from coach.script import load_routine  # noqa: E402
from coach.session.events import (  # noqa: E402
    CommandReceived, Event, ExerciseFinished, SessionStarted, SymptomReported,
)

ROUTINE = "piriformis"
VOICE = "test-voice"
WALL_START = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
RECORDED = "RECORDED"
STARTED = SessionStarted(500.0, ROUTINE, PlanOptions(easier=frozenset({"lying-figure-four-stretch"})))
EVENTS: tuple[Event, ...] = (
    CommandReceived(512.5, "pause", "pause"),
    CommandReceived(520.0, "resume", None),
    ExerciseFinished(560.25, "tender-spot-massage", "right", "done"),
    ExerciseFinished(600.0, "tender-spot-massage", "left", "done"),
    SymptomReported(630.0, "tingling", "lying-figure-four-stretch", "right", "my foot is tingling"),
    ExerciseFinished(655.0, "lying-figure-four-stretch", "right", "eased"),
)


def main(mode: str, db_path: Path) -> None:
    routine = load_routine(resolve_routine(ROUTINE).path)
    history = History(db_path)
    log = history.start_session(STARTED, routine, voice=VOICE, wall_start=WALL_START)
    if mode == "kill":
        for event in EVENTS:
            log.record(event)
        print(RECORDED, log.session_id, flush=True)
        time.sleep(120)  # the test kills us long before this
        return
    assert mode == "full", mode
    for event in EVENTS[:2]:
        log.record(event)
    # Exceeding the limit raises SIGXFSZ, which ends a process by default; ignored, the write
    # fails with EFBIG instead, which SQLite reports as a full disk.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    wal_bytes = os.path.getsize(f"{db_path}-wal")
    resource.setrlimit(resource.RLIMIT_FSIZE, (wal_bytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    for event in EVENTS[2:]:
        log.record(event)
    print(json.dumps({"warnings": log.warnings, "failures": log.failures}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
