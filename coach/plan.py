"""Routine + options -> Plan: the ordered list of everything the coach says and times.

Pure: no clock, no audio. Live sessions and rendered files both follow the plan, so they sound
the same. Speech lengths come from a ``SpeechTimer``; until a voice has synthesized a phrase
its length is estimated from the word count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Literal

from coach.errors import OptionError
from coach.routine import Exercise, Level, Routine, Side, other_side

SegmentKind = Literal["speech", "hold", "rest", "tone", "countdown", "rep"]
ToneKind = Literal["hold_start", "hold_end", "side_switch", "tick"]
Role = Literal[
    "title", "safety", "exercise", "easing", "side", "instructions", "check", "round",
    "cue", "between", "settle", "closing",
]
SpeechTimer = Callable[[str], float]

TONE_SECONDS: dict[ToneKind, float] = {
    "hold_start": 0.4,
    "hold_end": 0.6,
    "side_switch": 0.9,
    "tick": 0.08,
}
"""Fixed tone lengths; the tone synthesizer makes tones exactly this long."""

ESTIMATED_WORDS_PER_MINUTE = 160.0
ESTIMATED_PHRASE_OVERHEAD_SECONDS = 0.3
GAP_AFTER_SPEECH_SECONDS = 0.6
"""Silence after each phrase, so instructions do not run together; scaled by pace."""
COUNTDOWN_SLOT_SECONDS = 1.0
MIN_PACE = 0.5
MAX_PACE = 2.0


def estimate_speech_seconds(text: str) -> float:
    """A rough length for ``text`` spoken at an ordinary rate; a voice replaces it with the truth."""
    words = len(text.split())
    return round(ESTIMATED_PHRASE_OVERHEAD_SECONDS + words * 60.0 / ESTIMATED_WORDS_PER_MINUTE, 3)


@dataclass(frozen=True)
class PlanOptions:
    """How to run a routine.

    ``sides``: only these sides of exercises that have sides (None: as scripted).
    ``easier``: ids of exercises to run at their easier level.
    ``pace``: multiplies the time the coach gives between things (gaps, settling, rests, rep
    pace); never a hold, which is the prescription. 1.0 is as scripted, 1.5 is slower.
    ``eased_last_time``: exercises (also in ``easier``) that start easier because of a report in
    the last session; the coach says why. ``back_to_normal``: exercises back at their usual level
    after clean sessions at the easier one; the coach says so. Both come from the history; a
    rendered file has neither.
    """

    sides: tuple[Side, ...] | None = None
    easier: frozenset[str] = frozenset()
    pace: float = 1.0
    eased_last_time: frozenset[str] = frozenset()
    back_to_normal: frozenset[str] = frozenset()

    def checked_against(self, routine: Routine) -> PlanOptions:
        unknown = sorted(self.easier - {exercise.id for exercise in routine.exercises})
        if unknown:
            ids = ", ".join(exercise.id for exercise in routine.exercises)
            raise OptionError(f"{routine.id} has no exercise {unknown[0]!r}; its exercises are: {ids}")
        if not MIN_PACE <= self.pace <= MAX_PACE:
            raise OptionError(f"pace {self.pace:g} is out of range; use {MIN_PACE:g} (brisk) to {MAX_PACE:g} (slow)")
        if self.sides is not None and not self.sides:
            raise OptionError("no sides chosen; use right, left or both")
        # Internal consistency, not user input: the history computes both sets.
        assert self.eased_last_time <= self.easier, "eased_last_time must be a subset of easier"
        assert not self.back_to_normal & self.easier, "back_to_normal must not be easier"
        return self


@dataclass(frozen=True)
class Segment:
    """One thing in the plan, starting ``start`` seconds into the session and lasting ``seconds``.

    Holds contain their own cues, countdown and start tone (those segments overlap the hold);
    everything else follows one after the other.
    """

    kind: SegmentKind
    start: float
    seconds: float
    exercise: str | None = None
    side: Side | None = None
    round: int | None = None
    text: str | None = None
    role: Role | None = None
    tone: ToneKind | None = None
    count: int | None = None
    """For countdown and rep segments: the number counted (3, 2, 1 / 1, 2, 3 ...)."""

    @property
    def end(self) -> float:
        return self.start + self.seconds

    @property
    def spoken_text(self) -> str | None:
        """What a voice says for this segment (a phrase, a counted number), or None."""
        return self.text if self.kind in ("speech", "countdown", "rep") else None

    @property
    def sounds(self) -> bool:
        """Whether anything is heard: a phrase or a tone; holds and rests are silence."""
        return self.tone is not None or self.spoken_text is not None

    def to_json(self) -> dict[str, object]:
        return {key: value for key, value in asdict(self).items() if value is not None or key in _ALWAYS}


_ALWAYS = frozenset({"kind", "start", "seconds", "exercise", "side", "round"})


@dataclass(frozen=True)
class Plan:
    routine: Routine
    options: PlanOptions
    segments: tuple[Segment, ...]

    @property
    def total_seconds(self) -> float:
        return max((segment.end for segment in self.segments), default=0.0)

    def for_exercise(self, exercise_id: str) -> tuple[Segment, ...]:
        return tuple(segment for segment in self.segments if segment.exercise == exercise_id)

    def phrases(self) -> tuple[str, ...]:
        """Every distinct spoken text, in order of first use: what a voice must synthesize."""
        seen: dict[str, None] = {}
        for segment in self.segments:
            if segment.spoken_text is not None:
                seen.setdefault(segment.spoken_text, None)
        return tuple(seen)


def build_plan(routine: Routine, options: PlanOptions = PlanOptions(),
               speech_seconds: SpeechTimer = estimate_speech_seconds) -> Plan:
    """Lay out the whole session. Raises ``OptionError`` for options that do not fit the routine."""
    options.checked_against(routine)
    builder = _Builder(speech_seconds, options.pace)
    builder.say(f"{routine.title}.", role="title")
    if routine.safety:
        builder.say(routine.safety, role="safety")
    chosen = [(exercise, _sides_for(exercise, options)) for exercise in routine.exercises]
    chosen = [(exercise, sides) for exercise, sides in chosen if sides is not None]
    for number, (exercise, sides) in enumerate(chosen, start=1):
        easier = exercise.id in options.easier
        _plan_exercise(builder, exercise, number, len(chosen), sides, easier, options)
    builder.say("That is the end of the session. Well done. Take a moment before you get up.", role="closing")
    return Plan(routine, options, tuple(sorted(builder.segments, key=lambda s: s.start)))


def _sides_for(exercise: Exercise, options: PlanOptions) -> tuple[Side | None, ...] | None:
    """The sides to run, ``(None,)`` for an exercise without sides, None to leave it out."""
    if not exercise.sides:
        return (None,)
    if options.sides is None:
        return exercise.sides
    kept = tuple(side for side in exercise.sides if side in options.sides)
    return kept or None


def _plan_exercise(builder: _Builder, exercise: Exercise, number: int, count: int,
                   sides: tuple[Side | None, ...], easier: bool, carry: PlanOptions) -> None:
    level = exercise.easier if easier else exercise.normal
    builder.context(exercise=exercise.id)
    builder.say(f"Exercise {number} of {count}: {exercise.name}.", role="exercise")
    if easier:
        note = ("Last time you reported tingling or numbness in this one, so it is at the easier level today."
                if exercise.id in carry.eased_last_time else "This one is at the easier level today.")
        if not exercise.easier_is_scripted:
            note += " Use less force, and the holds are shorter."
        builder.say(note, role="easing")
    elif exercise.id in carry.back_to_normal:
        builder.say("The easier level went well in your last sessions, so this one is back to "
                    "its usual level. Say tingling if it is too much.", role="easing")
    for index, side in enumerate(sides):
        builder.context(exercise=exercise.id, side=side)
        if side is not None:
            if index == 0:
                builder.say(f"{side.capitalize()} side{' first' if len(sides) > 1 else ''}.", role="side")
            else:
                builder.tone("side_switch")
                builder.say(f"Switch sides. {side.capitalize()} side.", role="side")
        for text, role in ((level.say, "instructions"), (level.check, "check")):
            if text:
                builder.say(fill_sides(text, side), role=role)  # type: ignore[arg-type]
        builder.silence("rest", exercise.settle_seconds * builder.pace, role="settle")
        for round_number in range(1, level.rounds + 1):
            builder.context(exercise=exercise.id, side=side, round=round_number)
            _plan_round(builder, level, round_number, side)


def _plan_round(builder: _Builder, level: Level, round_number: int, side: Side | None) -> None:
    # Round 1 always says how long; a routine with one round never reaches round 2.
    announce = f"Round {round_number} of {level.rounds}. " if level.rounds > 1 else ""
    if level.hold_seconds is not None:
        if round_number == 1:
            announce += f"{spoken_duration(level.hold_seconds)}, starting at the tone."
        builder.say(announce.strip(), role="round")
        builder.hold(level, side)
    else:
        assert level.reps is not None
        if round_number == 1:
            announce += f"{level.reps} reps, one every {spoken_duration(level.pace_seconds * builder.pace)}."
        builder.say(announce.strip(), role="round")
        builder.reps(level.reps, level.pace_seconds * builder.pace)
    if round_number < level.rounds:
        builder.say(fill_sides(level.between, side) if level.between else "Relax.", role="between")
        builder.silence("rest", level.rest_seconds * builder.pace)


def fill_sides(text: str, side: Side | None) -> str:
    """Put the side names into ``{side}``/``{other}`` placeholders (the loader checked them)."""
    if side is None:
        return text
    other = other_side(side)
    return text.format(side=side, other=other, Side=side.capitalize(), Other=other.capitalize())


def spoken_duration(seconds: float) -> str:
    """``10`` -> "10 seconds", ``90`` -> "1 minute 30 seconds": how the coach says a length."""
    minutes, rest = divmod(round(seconds), 60)
    parts = []
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    if rest or not minutes:
        parts.append(f"{rest} second{'s' if rest != 1 else ''}")
    return " ".join(parts)


@dataclass
class _Builder:
    speech_seconds: SpeechTimer
    pace: float
    cursor: float = 0.0
    segments: list[Segment] = field(default_factory=list)
    labels: dict[str, object] = field(default_factory=dict)

    def context(self, **labels: object) -> None:
        self.labels = labels

    def add(self, kind: SegmentKind, start: float, seconds: float, **extra: object) -> Segment:
        segment = Segment(kind, round(start, 3), round(seconds, 3), **{**self.labels, **extra})  # type: ignore[arg-type]
        self.segments.append(segment)
        return segment

    def say(self, text: str, role: Role) -> None:
        seconds = self.speech_seconds(text)
        self.add("speech", self.cursor, seconds, text=text, role=role)
        self.cursor += seconds + GAP_AFTER_SPEECH_SECONDS * self.pace

    def tone(self, tone: ToneKind) -> None:
        self.add("tone", self.cursor, TONE_SECONDS[tone], tone=tone)
        self.cursor += TONE_SECONDS[tone] + GAP_AFTER_SPEECH_SECONDS * self.pace / 2

    def silence(self, kind: SegmentKind, seconds: float, role: Role | None = None) -> None:
        if seconds > 0:
            self.add(kind, self.cursor, seconds, role=role)
            self.cursor += seconds

    def hold(self, level: Level, side: Side | None) -> None:
        """A hold of exactly ``hold_seconds`` from the start tone's onset to the end tone's onset."""
        assert level.hold_seconds is not None
        start, length = self.cursor, level.hold_seconds
        self.add("hold", start, length)
        self.add("tone", start, TONE_SECONDS["hold_start"], tone="hold_start")
        for cue in level.cues:
            text = fill_sides(cue.text, side)
            self.add("speech", start + cue.at_seconds, self.speech_seconds(text), text=text, role="cue")
        for count in _countdown_numbers(level):
            slot_start = start + length - count * COUNTDOWN_SLOT_SECONDS
            if level.countdown and level.countdown.style == "tick":
                self.add("countdown", slot_start, TONE_SECONDS["tick"], tone="tick", count=count)
            else:
                self.add("countdown", slot_start, self.speech_seconds(str(count)), text=str(count), count=count)
        self.cursor = start + length
        self.add("tone", self.cursor, TONE_SECONDS["hold_end"], tone="hold_end")
        self.cursor += TONE_SECONDS["hold_end"] + GAP_AFTER_SPEECH_SECONDS * self.pace

    def reps(self, reps: int, pace_seconds: float) -> None:
        self.add("tone", self.cursor, TONE_SECONDS["hold_start"], tone="hold_start")
        self.cursor += TONE_SECONDS["hold_start"]
        for count in range(1, reps + 1):
            text = str(count)
            self.add("rep", self.cursor, pace_seconds, text=text, count=count)
            self.cursor += pace_seconds
        self.add("tone", self.cursor, TONE_SECONDS["hold_end"], tone="hold_end")
        self.cursor += TONE_SECONDS["hold_end"] + GAP_AFTER_SPEECH_SECONDS * self.pace


def _countdown_numbers(level: Level) -> Iterable[int]:
    if level.countdown is None:
        return ()
    return range(level.countdown.seconds, 0, -1)
