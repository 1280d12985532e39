"""The routine model: frozen dataclasses made by ``coach.script`` and read by the planner."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Side = Literal["right", "left"]
SIDES: tuple[Side, ...] = ("right", "left")
CountdownStyle = Literal["speak", "tick"]


def other_side(side: Side) -> Side:
    return "left" if side == "right" else "right"


@dataclass(frozen=True)
class Cue:
    """A line spoken ``at_seconds`` into every hold."""

    at_seconds: float
    text: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Countdown:
    """The last ``seconds`` of a hold counted down, spoken ("three, two, one") or ticked."""

    seconds: int
    style: CountdownStyle


@dataclass(frozen=True)
class Level:
    """Everything that changes between the normal and the easier version of an exercise.

    Exactly one of ``hold_seconds`` (a timed hold) and ``reps`` (counted movements, one every
    ``pace_seconds``) is set.
    """

    say: str
    check: str
    hold_seconds: float | None
    reps: int | None
    pace_seconds: float
    rounds: int
    rest_seconds: float
    between: str
    cues: tuple[Cue, ...]
    countdown: Countdown | None


@dataclass(frozen=True)
class Exercise:
    id: str
    name: str
    sides: tuple[Side, ...]
    """Empty for exercises without sides; otherwise run once per side, in this order."""
    settle_seconds: float
    normal: Level
    easier: Level
    easier_is_scripted: bool
    """False when the script gave no ``easier``: the coach derived one (shorter holds, less force)."""
    line: int


@dataclass(frozen=True)
class Routine:
    id: str
    title: str
    description: str
    source: str
    safety: str
    exercises: tuple[Exercise, ...]
    path: Path

    def exercise(self, exercise_id: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.id == exercise_id:
                return exercise
        raise KeyError(exercise_id)
