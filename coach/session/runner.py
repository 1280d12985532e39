"""The live session in real time: the engine driven by the monotonic clock, heard through a ``Player``.

One thread runs the loop. It wakes at absolute deadlines on the monotonic clock
(``start + k * tick``, never a sum of sleeps, so waking late never pushes later ticks back) or
as soon as a command arrives from the keyboard or the voice thread, asks the engine what to do
at that moment, and hands the answers on: sounds to the player, events to the history, the
status to the display. The moment it tells the engine is the player's ``now()``, the stream
position being heard: the device's clock, not the computer's, is the session's clock (see
``coach.audio.player``), so holds last what the render says, however far the two clocks drift.

Every phrase the session can say is synthesized before it starts (``speak_session_phrases``),
so a sound never waits on a voice; the one exception is the answer to "time", which is made
up on the spot on a helper thread and plays as soon as it is ready.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Mapping, Protocol

import numpy as np

from coach.plan import MAX_PACE, MIN_PACE, PlanOptions, build_plan, estimate_speech_seconds
from coach.render import RenderProgress, sound_of, speak
from coach.routine import Routine
from coach.session.engine import PACE_STEP, SessionEngine
from coach.session.events import (
    Action, Command, CommandReceived, Ended, EndReason, Event, Play, Record, Say, SetVolume,
    Status, StopAudio, SymptomReported,
)
from coach.speech.clip import Clip, Voice

TICK_SECONDS = 0.02
"""How often the loop asks the engine; sounds are placed by sample, so this is not their timing."""
START_DELAY_SECONDS = 0.3
"""The session starts this long after the loop does, so its first sound is placed exactly too."""
TAIL_SECONDS = 0.3
"""After the last sound, before the stream closes: lets the device play out its buffer."""


class AudioOut(Protocol):
    """What the runner needs of a player (``coach.audio.player.Player``)."""

    rate: int

    def play(self, samples: np.ndarray, at_t: float, from_seconds: float = 0.0) -> None: ...

    def stop_all(self) -> None: ...

    def set_gain_db(self, db: float) -> None: ...

    def now(self) -> float: ...

    def earliest_t(self) -> float: ...

    def idle_t(self) -> float: ...


class Display(Protocol):
    def update(self, status: Status) -> None: ...

    def note(self, text: str) -> None: ...


@dataclass(frozen=True)
class Input:
    """A command from a key or from the recognizer (``heard``: the words, for the history)."""

    command: Command
    heard: str | None = None


def session_phrases(routine: Routine, options: PlanOptions) -> tuple[str, ...]:
    """Every phrase a live session of ``routine`` may say, so none is synthesized mid-session.

    That is the plan's phrases at every pace "slower"/"faster" can reach, with each exercise at
    its own level and at the easier one ("tingling" switches to it), plus the engine's prompts.
    """
    steps = round((MAX_PACE - MIN_PACE) / PACE_STEP)
    paces = {round(options.pace + k * PACE_STEP, 3) for k in range(-steps, steps + 1)}
    all_easier = frozenset(exercise.id for exercise in routine.exercises)
    seen: dict[str, None] = {}
    for pace in sorted(paces, key=lambda p: abs(p - options.pace)):  # the likely ones first
        if not MIN_PACE <= pace <= MAX_PACE:
            continue
        for easier in (options.easier, all_easier):
            variant = replace(options, pace=pace, easier=easier,
                              back_to_normal=options.back_to_normal - easier)
            for text in build_plan(routine, variant).phrases():
                seen.setdefault(text, None)
    for text in SessionEngine.live_phrases():
        seen.setdefault(text, None)
    return tuple(seen)


def speak_session_phrases(routine: Routine, options: PlanOptions, voice: Voice,
                          progress: RenderProgress | None = None) -> dict[str, Clip]:
    return speak(session_phrases(routine, options), voice, progress)


def speech_timer(clips: Mapping[str, Clip]) -> Callable[[str], float]:
    """Exact lengths for the phrases at hand, an estimate for any other (only "time" answers)."""
    def seconds(text: str) -> float:
        clip = clips.get(text)
        return clip.seconds if clip is not None else estimate_speech_seconds(text)
    return seconds


class Runner:
    """Runs one session of ``engine`` in real time; ``submit`` commands from any thread."""

    def __init__(self, engine: SessionEngine, player: AudioOut, clips: Mapping[str, Clip], voice: Voice, *,
                 record: Callable[[Event], None], display: Display,
                 clock: Callable[[], float] = time.monotonic, tick_seconds: float = TICK_SECONDS) -> None:
        self.engine = engine
        self._player = player
        self._clips = dict(clips)
        self._voice = voice
        self._record = record
        self._display = display
        self._clock = clock
        self._tick = tick_seconds
        self._inputs: queue.Queue[Input] = queue.Queue()
        self._late_clips: queue.Queue[tuple[int, str, Clip, float]] = queue.Queue()
        self._audio_generation = 0  # bumped by StopAudio: a late clip asked for before it is dropped
        self._ended: EndReason | None = None

    def submit(self, command: Command, heard: str | None = None) -> None:
        self._inputs.put(Input(command, heard))

    def run(self) -> EndReason:
        """Play the session to its end; on Ctrl-C or SIGTERM the history still gets its end."""
        try:
            return self._loop()
        except (KeyboardInterrupt, SystemExit):
            # The person ended it: record the end. A crash records nothing more, so the history
            # shows the session as interrupted, which is what it was.
            if self._ended is None:
                for action in self.engine.interrupt(self._player.now()):
                    self._handle([action])
            raise

    def _loop(self) -> EndReason:
        player = self._player
        self._handle(self.engine.start(max(player.now() + START_DELAY_SECONDS, player.earliest_t())))
        started, tick = self._clock(), 0
        while True:
            if self._ended is not None and player.now() >= player.idle_t() + TAIL_SECONDS:
                self._display.update(self.engine.status(player.now()))
                return self._ended
            wall = self._clock()
            tick = max(tick + 1, math.ceil((wall - started) / self._tick))  # skip ticks missed, never drift
            try:
                given: Input | None = self._inputs.get(timeout=max(0.0, started + tick * self._tick - wall))
            except queue.Empty:
                given = None
            self._play_late_clips()
            now = player.now()
            if given is not None:
                # A command acts from the first sample the player can still change, so what the
                # engine plans "now" is heard as planned rather than clipped at its start.
                self._handle(self.engine.command(max(now, player.earliest_t()), given.command, given.heard))
            else:
                self._handle(self.engine.advance(now))
            self._display.update(self.engine.status(now))

    def _handle(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, Play):
                samples = sound_of(action.segment, self._clips, self._player.rate)
                if samples is not None:
                    self._player.play(samples, action.at_t, action.from_seconds)
            elif isinstance(action, Say):
                self._say(action.text, action.at_t)
            elif isinstance(action, StopAudio):
                self._audio_generation += 1
                self._player.stop_all()
            elif isinstance(action, SetVolume):
                self._player.set_gain_db(action.db)
            elif isinstance(action, Record):
                self._record(action.event)
                self._describe(action.event)
            elif isinstance(action, Ended):
                self._ended = action.reason

    def _say(self, text: str, at_t: float) -> None:
        clip = self._clips.get(text)
        if clip is not None:
            self._player.play(clip.samples, at_t)
            return
        generation = self._audio_generation

        def synthesize() -> None:
            self._late_clips.put((generation, text, self._voice.synthesize(text), at_t))

        threading.Thread(target=synthesize, name="coach-say", daemon=True).start()

    def _play_late_clips(self) -> None:
        while True:
            try:
                generation, text, clip, at_t = self._late_clips.get_nowait()
            except queue.Empty:
                return
            self._clips[text] = clip
            if generation == self._audio_generation:  # not cancelled by a stop or a jump meanwhile
                self._player.play(clip.samples, max(at_t, self._player.earliest_t()))

    def _describe(self, event: Event) -> None:
        if isinstance(event, CommandReceived):
            said = f' (heard "{event.heard}")' if event.heard else ""
            self._display.note(f"{event.command.replace('_', ' ')}{said}")
        elif isinstance(event, SymptomReported):
            what = "Red flag reported" if event.kind == "red_flag" else "Tingling reported"
            where = f" in {event.exercise_id}" + (f", {event.side} side" if event.side else "") if event.exercise_id else ""
            self._display.note(f"{what}{where}; recorded.")
