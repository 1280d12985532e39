"""``coach run``: everything a live session needs, put together in the order that fails early.

Device first (a missing sound server is found before any synthesis), then the history (which
sets the carried-over levels), then every phrase, then the stream, the keyboard and the loop.
"""

from __future__ import annotations

import queue
import sys
import threading
from dataclasses import dataclass, replace
from typing import TextIO

from coach.audio.player import Player, PlayerStats
from coach.history import CarryOver, History, SessionLog
from coach.plan import PlanOptions
from coach.render import RenderProgress, clip_rate
from coach.routine import Routine
from coach.session.display import make_display
from coach.session.engine import SessionEngine
from coach.session.events import EndReason, Event, SessionStarted
from coach.session.keys import KeyReader, command_for_key
from coach.session.runner import Runner, speak_session_phrases, speech_timer
from coach.speech.cache import CachedVoice


HISTORY_FLUSH_SECONDS = 5.0


@dataclass(frozen=True)
class LiveResult:
    reason: EndReason
    carry_over: CarryOver
    warnings: tuple[str, ...]
    audio: PlayerStats


def with_carry_over(options: PlanOptions, carry: CarryOver) -> PlanOptions:
    """The options the history asks for: exercises eased last time start easier, and say why."""
    easier = options.easier | carry.easier
    return replace(options, easier=easier, eased_last_time=carry.eased_last_time & easier,
                   back_to_normal=carry.back_to_normal - easier)


class _HistoryRecorder:
    """Events into the history on a thread of their own, opened by the engine's first event.

    Each event is still its own transaction, written within milliseconds; but an fsync on a
    slow disk, or another process holding the database, delays only this thread, never a sound.
    """

    def __init__(self, history: History, routine: Routine, voice_name: str) -> None:
        self._history = history
        self._routine = routine
        self._voice_name = voice_name
        self._log: SessionLog | None = None
        self._events: queue.Queue[Event | None] = queue.Queue()
        self._thread = threading.Thread(target=self._write, name="coach-history", daemon=True)
        self._thread.start()

    def __call__(self, event: Event) -> None:
        self._events.put(event)

    def close(self) -> None:
        """Write what is queued, then stop."""
        self._events.put(None)
        self._thread.join(timeout=HISTORY_FLUSH_SECONDS)

    def _write(self) -> None:
        while (event := self._events.get()) is not None:
            if isinstance(event, SessionStarted):
                self._log = self._history.start_session(event, self._routine, voice=self._voice_name)
            elif self._log is not None:
                self._log.record(event)

    @property
    def warnings(self) -> list[str]:
        return list(self._log.warnings) if self._log is not None else []


def run_live(routine: Routine, options: PlanOptions, voice: CachedVoice, voice_name: str, *,
             device: int | None, history: History, out: TextIO = sys.stdout, quiet: bool = False,
             progress: RenderProgress | None = None) -> LiveResult:
    carry = history.carry_over(routine)
    options = with_carry_over(options, carry).checked_against(routine)
    clips = speak_session_phrases(routine, options, voice, progress)
    rate = clip_rate(clips, voice)
    engine = SessionEngine(routine, options, speech_timer(clips))
    recorder = _HistoryRecorder(history, routine, voice_name)
    try:
        with Player(rate, device) as player, make_display(out, quiet) as display:
            runner = Runner(engine, player, clips, voice, record=recorder, display=display)

            def on_key(key: str) -> None:
                command = command_for_key(key, engine.phase)
                if command is not None:
                    runner.submit(command)

            with KeyReader(on_key):  # standard input, when it is a terminal
                reason = runner.run()
            stats = player.stats
    finally:
        recorder.close()  # also on Ctrl-C: the end the runner recorded is written before exit
    return LiveResult(reason, carry, tuple(recorder.warnings), stats)
