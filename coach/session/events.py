"""What the session engine says to the world: actions for the runner, events for the history.

Every time is runner time (``*_t``, seconds on the runner's monotonic clock), never plan time,
so the runner can place samples exactly without asking the engine again. Actions are requests
(``Play``, ``Say``, ``StopAudio``, ``SetVolume``) or facts (``Record``, ``Ended``); the
runner, the display, the history and ``--json`` output all consume the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from coach.plan import PlanOptions, Segment, ToneKind
from coach.routine import Side

Phase = Literal["ready", "running", "paused", "confirm_stop", "ended"]
Intensity = Literal["normal", "easier"]
Outcome = Literal["done", "eased", "skipped"]
EndReason = Literal["completed", "stopped", "red_flag"]
SymptomKind = Literal["tingling", "red_flag"]
Command = Literal[
    "pause", "resume", "next", "previous", "repeat", "stop", "end_session", "tingling",
    "red_flag", "time", "louder", "quieter", "slower", "faster",
]
COMMANDS: tuple[Command, ...] = (
    "pause", "resume", "next", "previous", "repeat", "stop", "end_session", "tingling",
    "red_flag", "time", "louder", "quieter", "slower", "faster",
)


# --- history events -------------------------------------------------------------------------

@dataclass(frozen=True)
class SessionStarted:
    at_t: float
    routine_id: str
    options: PlanOptions


@dataclass(frozen=True)
class CommandReceived:
    at_t: float
    command: Command
    heard: str | None = None
    """The words the recognizer heard, None for a key."""


@dataclass(frozen=True)
class ExerciseFinished:
    """One exercise on one side (``side`` None for exercises without sides) is over."""

    at_t: float
    exercise_id: str
    side: Side | None
    outcome: Outcome


@dataclass(frozen=True)
class SymptomReported:
    at_t: float
    kind: SymptomKind
    exercise_id: str | None
    side: Side | None
    heard: str | None = None


@dataclass(frozen=True)
class SessionEnded:
    at_t: float
    reason: EndReason


Event = SessionStarted | CommandReceived | ExerciseFinished | SymptomReported | SessionEnded


# --- actions --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Play:
    """Start the sound of a plan segment (its ``text`` clip or its ``tone``) at ``at_t``.

    ``from_seconds`` skips the first part of the sound: set when a sound cut off by a pause is
    taken up again, or when the runner was late and the sound's start is already past.
    """

    segment: Segment
    at_t: float
    from_seconds: float = 0.0

    @property
    def text(self) -> str | None:
        return None if self.segment.tone is not None else self.segment.text

    @property
    def tone(self) -> ToneKind | None:
        return self.segment.tone


@dataclass(frozen=True)
class Say:
    """A live-only prompt (not in the plan); ``SessionEngine.live_phrases`` lists the fixed ones."""

    text: str
    at_t: float


@dataclass(frozen=True)
class StopAudio:
    """Cancel everything scheduled or sounding, plan sounds and prompts alike."""


@dataclass(frozen=True)
class SetVolume:
    db: float
    """Gain relative to the voice's level (decibels); 0.0 is as rendered."""


@dataclass(frozen=True)
class Record:
    event: Event


@dataclass(frozen=True)
class Ended:
    reason: EndReason


Action = Play | Say | StopAudio | SetVolume | Record | Ended


@dataclass(frozen=True)
class Status:
    """What a display shows, at one moment."""

    phase: Phase
    routine_title: str
    exercise_id: str | None
    exercise_name: str | None
    side: Side | None
    round: int | None
    rounds: int | None
    intensity: Intensity | None
    hold_seconds_left: float | None
    """Seconds to the end tone when inside a hold (or a block of reps), else None."""
    session_seconds_left: float
    volume_db: float
    pace: float
    last_command: Command | None
