"""Exercise scripts (YAML) -> ``Routine``: the one loader, whose errors name file, line and fix.

The rules here are the format's definition; ``coach/schema/routine.schema.json`` mirrors them
for editors, and a test keeps the two in step.
"""

from __future__ import annotations

import difflib
import math
import re
import string
from dataclasses import replace
from pathlib import Path
from typing import Callable, TypeVar

from coach.duration import parse_duration_seconds
from coach.errors import ScriptError
from coach.routine import SIDES, Countdown, Cue, Exercise, Level, Routine, Side
from coach.yamlread import Located, read_document, short_value as _short

ROUTINE_KEYS = ("title", "description", "source", "safety", "exercises")
EXERCISE_KEYS = (
    "name", "id", "say", "check", "hold", "reps", "pace", "rounds", "rest", "settle",
    "sides", "cues", "countdown", "between", "easier",
)
EASIER_KEYS = ("say", "check", "hold", "reps", "pace", "rounds", "rest", "between", "cues", "countdown")
CUE_KEYS = ("at", "say")
COUNTDOWN_KEYS = ("seconds", "style")
COUNTDOWN_STYLES = ("speak", "tick")
PLACEHOLDERS = ("side", "other", "Side", "Other")

DEFAULT_ROUNDS = 1
DEFAULT_REST_SECONDS = 5.0
DEFAULT_SETTLE_SECONDS = 3.0
DEFAULT_PACE_SECONDS = 3.0

# Bounds that catch typos (a hold of 1000 s, 300 rounds) rather than express clinical limits.
MAX_EXERCISES = 40
MAX_HOLD_SECONDS = 600.0
MAX_REST_SECONDS = 600.0
MAX_SETTLE_SECONDS = 120.0
MIN_PACE_SECONDS = 1.0
MAX_PACE_SECONDS = 30.0
MAX_ROUNDS = 20
MAX_REPS = 100
MAX_CUES = 20
MAX_COUNTDOWN_SECONDS = 10
MAX_TEXT_CHARS = 1200

DERIVED_EASIER_HOLD_FRACTION = 2 / 3
"""With no scripted ``easier``, holds (and reps) are a third shorter."""

_ID_PATTERN = re.compile(r"\w[\w-]*")

T = TypeVar("T")


def load_routine(path: Path | str, routine_id: str | None = None) -> Routine:
    """Load and validate the script at ``path``. Its id is the file stem unless given."""
    path = Path(path)
    document = read_document(path)
    return FieldReader(path).routine(document, routine_id or path.stem)


class FieldReader:
    """Validation with the file path at hand, so each check can raise a located error.

    Shared by every YAML file coach reads (scripts here, voice profiles in speech/profiles.py).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, line: int, message: str) -> ScriptError:
        return ScriptError(self.path, line, message)

    # -- structure -------------------------------------------------------------------------

    def mapping(self, located: Located, what: str, known: tuple[str, ...]) -> dict[str, Located]:
        if not isinstance(located.value, dict):
            raise self.fail(located.line, f"{what} must be a mapping of keys ({', '.join(known[:4])}, ...), "
                                          f"got {kind_of(located.value)}")
        for key, value in located.value.items():
            if key not in known:
                raise self.fail(value.line, _unknown_key_message(key, what, known))
        return located.value

    def require(self, fields: dict[str, Located], key: str, parent: Located, what: str) -> Located:
        if key not in fields:
            raise self.fail(parent.line, f"{what} has no '{key}'; add {key}: ...")
        return fields[key]

    def text(self, located: Located, what: str, placeholders_allowed: bool) -> str:
        value = located.value
        if not isinstance(value, str):
            raise self.fail(located.line, f"{what} must be text, got {kind_of(value)}; put it in quotes")
        text = " ".join(value.split())
        if not text:
            raise self.fail(located.line, f"{what} is empty; write the text or remove the key")
        if len(text) > MAX_TEXT_CHARS:
            raise self.fail(located.line, f"{what} is {len(text)} characters; keep a spoken line under "
                                          f"{MAX_TEXT_CHARS} (split it into cues)")
        has_placeholders = self._check_placeholders(located.line, text, what, placeholders_allowed)
        # Texts without placeholders are never formatted later, so undo the {{ }} escapes now.
        return text if has_placeholders else text.replace("{{", "{").replace("}}", "}")

    def _check_placeholders(self, line: int, text: str, what: str, allowed: bool) -> bool:
        """Raise for a placeholder that is unknown, decorated or not allowed; say whether there are any."""
        try:
            fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(text)
                      if name is not None]
        except ValueError:
            raise self.fail(line, f"{what} has an unmatched {{ or }}; write {{{{ or }}}} for a literal brace") from None
        for name, spec, conversion in fields:
            if name in PLACEHOLDERS and (spec or conversion):
                raise self.fail(line, f"{what} decorates {{{name}}}; write just {{{name}}}")
            if name not in PLACEHOLDERS:
                near = difflib.get_close_matches(name, PLACEHOLDERS, n=1)
                hint = f"did you mean {{{near[0]}}}?" if near else "the placeholders are {side} and {other}"
                raise self.fail(line, f"{what} uses the unknown placeholder {{{name}}}; {hint}")
            if not allowed:
                raise self.fail(line, f"{what} uses {{{name}}} but the exercise has no sides; "
                                      "add sides: [right, left] or write the side out")
        return bool(fields)

    def whole(self, located: Located, what: str, low: int, high: int) -> int:
        value = located.value
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(located.line, f"{what} must be a whole number, got {kind_of(located.value)}")
        if not low <= value <= high:
            raise self.fail(located.line, f"{what} must be between {low} and {high}, got {value}")
        return value

    def seconds(self, located: Located, what: str, low: float, high: float, zero_ok: bool = False) -> float:
        try:
            value = parse_duration_seconds(located.value)
        except ValueError as error:
            raise self.fail(located.line, f"{what}: {error}") from None
        if value < 0 or (value == 0 and not zero_ok):
            bound = "0 or more" if zero_ok else "more than 0"
            raise self.fail(located.line, f"{what} must be {bound} seconds, got {located.value!r}")
        if value < low and value != 0:
            raise self.fail(located.line, f"{what} must be at least {low:g} seconds, got {located.value!r}")
        if value > high:
            raise self.fail(located.line, f"{what} must be at most {high:g} seconds, got {located.value!r}")
        return value

    def optional(self, fields: dict[str, Located], key: str, read: Callable[[Located], T], default: T) -> T:
        return read(fields[key]) if key in fields else default

    # -- the format --------------------------------------------------------------------------

    def routine(self, document: Located, routine_id: str) -> Routine:
        fields = self.mapping(document, "the script", ROUTINE_KEYS)
        title = self.text(self.require(fields, "title", document, "the script"), "title", False)
        exercises_at = self.require(fields, "exercises", document, "the script")
        if not isinstance(exercises_at.value, list) or not exercises_at.value:
            raise self.fail(exercises_at.line, "exercises must be a list with at least one exercise (- name: ...)")
        if len(exercises_at.value) > MAX_EXERCISES:
            raise self.fail(exercises_at.line, f"has {len(exercises_at.value)} exercises; split it into routines "
                                               f"of at most {MAX_EXERCISES}")
        exercises = tuple(self.exercise(item, number) for number, item in enumerate(exercises_at.value, start=1))
        seen: dict[str, Exercise] = {}
        for exercise in exercises:
            if exercise.id in seen:
                raise self.fail(exercise.line, f"exercise id '{exercise.id}' is used twice (also on line "
                                               f"{seen[exercise.id].line}); give one a different name or id")
            seen[exercise.id] = exercise
        return Routine(
            id=routine_id,
            title=title,
            description=self.optional(fields, "description", lambda v: self.text(v, "description", False), ""),
            source=self.optional(fields, "source", lambda v: self.text(v, "source", False), ""),
            safety=self.optional(fields, "safety", lambda v: self.text(v, "safety", False), ""),
            exercises=exercises,
            path=self.path,
        )

    def exercise(self, located: Located, number: int) -> Exercise:
        fields = self.mapping(located, f"exercise {number}", EXERCISE_KEYS)
        name = self.text(self.require(fields, "name", located, f"exercise {number}"), f"exercise {number} name", False)
        what = f"exercise {number} ({name})"
        sides = self.optional(fields, "sides", lambda v: self.sides(v, what), ())
        normal = self.level(fields, what, bool(sides), base=None)
        easier_is_scripted = "easier" in fields
        if easier_is_scripted:
            easier_fields = self.mapping(fields["easier"], f"{what} easier", EASIER_KEYS)
            easier = self.level(easier_fields, f"{what} easier", bool(sides), base=normal)
            self.no_harder(easier, normal, fields["easier"], what)
        else:
            easier = derived_easier(normal)
        exercise_id = self.optional(fields, "id", lambda v: self.identifier(v, what), _slug(name) or f"exercise-{number}")
        return Exercise(
            id=exercise_id,
            name=name,
            sides=sides,
            settle_seconds=self.optional(
                fields, "settle", lambda v: self.seconds(v, f"{what} settle", 0, MAX_SETTLE_SECONDS, zero_ok=True),
                DEFAULT_SETTLE_SECONDS),
            normal=normal,
            easier=easier,
            easier_is_scripted=easier_is_scripted,
            line=located.line,
        )

    def level(self, fields: dict[str, Located], what: str, has_sides: bool, base: Level | None) -> Level:
        """Read the per-level keys; for ``easier`` (``base`` given) a missing key inherits the normal value."""
        def text(key: str) -> str | None:
            return self.text(fields[key], f"{what} {key}", has_sides) if key in fields else None

        hold = (self.seconds(fields["hold"], f"{what} hold", 0.5, MAX_HOLD_SECONDS) if "hold" in fields else None)
        reps = self.whole(fields["reps"], f"{what} reps", 1, MAX_REPS) if "reps" in fields else None
        if hold is not None and reps is not None:
            raise self.fail(fields["reps"].line, f"{what} has both hold and reps; a hold is timed, reps are "
                                                 "counted: keep one")
        if base is None and hold is None and reps is None:
            line = min(item.line for item in fields.values())
            raise self.fail(line, f"{what} has neither hold nor reps; add hold: 10 (seconds) or reps: 8")
        if base is not None:
            if hold is not None and base.hold_seconds is None:
                raise self.fail(fields["hold"].line, f"{what} has a hold but the normal exercise counts reps; use reps")
            if reps is not None and base.reps is None:
                raise self.fail(fields["reps"].line, f"{what} has reps but the normal exercise is a hold; use hold")
            hold = base.hold_seconds if hold is None and reps is None else hold
            reps = base.reps if reps is None and hold is None else reps

        pace = self.optional(fields, "pace", lambda v: self.seconds(v, f"{what} pace", MIN_PACE_SECONDS,
                                                                    MAX_PACE_SECONDS), None)
        if pace is not None and reps is None:
            raise self.fail(fields["pace"].line, f"{what} has a pace but no reps; pace is the seconds per rep")
        countdown = (self.countdown(fields["countdown"], what) if "countdown" in fields
                     else (base.countdown if base else None))
        cues = self.cues(fields["cues"], what, has_sides) if "cues" in fields else None
        if hold is None:
            for key in ("cues", "countdown"):
                if key in fields:
                    raise self.fail(fields[key].line, f"{what} has {key} but no hold; {key} belong to timed holds")
        else:
            if countdown is not None and countdown.seconds >= hold:
                if "countdown" in fields:
                    raise self.fail(fields["countdown"].line, f"{what} countdown of {countdown.seconds} seconds "
                                                              f"must be shorter than the {hold:g}-second hold")
                countdown = _fitting_countdown(countdown, hold)  # inherited from a longer normal hold
            for cue in cues or ():
                if cue.at_seconds >= hold:
                    raise self.fail(cue.line, f"{what} has a cue at {cue.at_seconds:g} seconds, not inside the "
                                          f"{hold:g}-second hold; move it earlier")
        if cues is None:
            inherited = base.cues if base else ()
            cues = tuple(cue for cue in inherited if hold is not None and cue.at_seconds < hold)

        return Level(
            say=text("say") or (base.say if base else ""),
            check=text("check") or (base.check if base else ""),
            hold_seconds=hold,
            reps=reps,
            pace_seconds=pace or (base.pace_seconds if base else DEFAULT_PACE_SECONDS),
            rounds=self.optional(fields, "rounds", lambda v: self.whole(v, f"{what} rounds", 1, MAX_ROUNDS),
                                 base.rounds if base else DEFAULT_ROUNDS),
            rest_seconds=self.optional(
                fields, "rest", lambda v: self.seconds(v, f"{what} rest", 0, MAX_REST_SECONDS, zero_ok=True),
                base.rest_seconds if base else DEFAULT_REST_SECONDS),
            between=text("between") or (base.between if base else ""),
            cues=cues,
            countdown=countdown,
        )

    def no_harder(self, easier: Level, normal: Level, located: Located, what: str) -> None:
        """The easier level is what the coach falls back to after tingling: it must never ask for more."""
        checks = (
            ("hold", easier.hold_seconds, normal.hold_seconds),
            ("reps", easier.reps, normal.reps),
            ("rounds", easier.rounds, normal.rounds),
        )
        for key, easy, hard in checks:
            if easy is not None and hard is not None and easy > hard:
                line = located.value[key].line if key in located.value else located.line  # type: ignore[union-attr]
                raise self.fail(line, f"{what} easier {key} ({easy:g}) is more than the normal {key} ({hard:g}); "
                                      "the easier version must not ask for more")

    def sides(self, located: Located, what: str) -> tuple[Side, ...]:
        if isinstance(located.value, str):
            raise self.fail(located.line, f"{what} sides must be a list, e.g. sides: [right, left]")
        if not isinstance(located.value, list) or not located.value:
            raise self.fail(located.line, f"{what} sides must be a list of right and/or left, e.g. [right, left]")
        sides: list[Side] = []
        for item in located.value:
            if item.value not in SIDES:
                raise self.fail(item.line, f"{what} has the side {kind_of(item.value)}; sides are right and left")
            if item.value in sides:
                raise self.fail(item.line, f"{what} lists the side {item.value} twice")
            sides.append(item.value)  # type: ignore[arg-type]
        return tuple(sides)

    def cues(self, located: Located, what: str, has_sides: bool) -> tuple[Cue, ...]:
        if not isinstance(located.value, list):
            raise self.fail(located.line, f"{what} cues must be a list of - at: 5 / say: ... items")
        if len(located.value) > MAX_CUES:
            raise self.fail(located.line, f"{what} has {len(located.value)} cues; at most {MAX_CUES}")
        cues = []
        for number, item in enumerate(located.value, start=1):
            fields = self.mapping(item, f"{what} cue {number}", CUE_KEYS)
            at = self.seconds(self.require(fields, "at", item, f"{what} cue {number}"), f"{what} cue {number} at",
                              0, MAX_HOLD_SECONDS)
            text = self.text(self.require(fields, "say", item, f"{what} cue {number}"), f"{what} cue {number} say",
                             has_sides)
            for earlier in cues:
                if earlier.at_seconds == at:
                    raise self.fail(item.line, f"{what} has two cues at {at:g} seconds (also line {earlier.line}); "
                                               "give each its own time")
            cues.append(Cue(at, text, item.line))
        return tuple(sorted(cues, key=lambda cue: cue.at_seconds))

    def countdown(self, located: Located, what: str) -> Countdown:
        if isinstance(located.value, dict):
            fields = self.mapping(located, f"{what} countdown", COUNTDOWN_KEYS)
            seconds_at = self.require(fields, "seconds", located, f"{what} countdown")
            style_at = fields.get("style")
            style = style_at.value if style_at else "speak"
            if style not in COUNTDOWN_STYLES:
                raise self.fail(style_at.line if style_at else located.line,
                                f"{what} countdown style must be speak or tick, got {kind_of(style)}")
            return Countdown(self.whole(seconds_at, f"{what} countdown seconds", 1, MAX_COUNTDOWN_SECONDS), style)
        return Countdown(self.whole(located, f"{what} countdown", 1, MAX_COUNTDOWN_SECONDS), "speak")

    def identifier(self, located: Located, what: str) -> str:
        value = located.value
        if not isinstance(value, str) or not _ID_PATTERN.fullmatch(value):
            raise self.fail(located.line, f"{what} id must be one word of letters, digits and dashes, "
                                          f"e.g. figure-four; got {kind_of(value)}")
        return value


def derived_easier(normal: Level) -> Level:
    """The easier level when a script gives none: holds and reps a third shorter."""
    hold = None
    if normal.hold_seconds is not None:
        hold = max(1.0, float(round(normal.hold_seconds * DERIVED_EASIER_HOLD_FRACTION)))
    reps = None if normal.reps is None else max(1, math.ceil(normal.reps * DERIVED_EASIER_HOLD_FRACTION))
    countdown = normal.countdown
    if hold is not None and countdown is not None and countdown.seconds >= hold:
        countdown = _fitting_countdown(countdown, hold)
    cues = tuple(cue for cue in normal.cues if hold is not None and cue.at_seconds < hold)
    return replace(normal, hold_seconds=hold, reps=reps, cues=cues, countdown=countdown)


def _fitting_countdown(countdown: Countdown, hold_seconds: float) -> Countdown | None:
    seconds = math.ceil(hold_seconds) - 1
    return replace(countdown, seconds=seconds) if seconds >= 1 else None


def _unknown_key_message(key: object, what: str, known: tuple[str, ...]) -> str:
    near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    if near:
        return f"{what} has the unknown key {_short(key)}; did you mean '{near[0]}'?"
    return f"{what} has the unknown key {_short(key)}; the keys are {', '.join(known)}"


def _slug(name: str) -> str:
    return re.sub(r"[\W_]+", "-", name.lower()).strip("-")


def kind_of(value: object) -> str:
    """How a message names a value of the wrong type: "nothing", "a list", "the text 'x'"..."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no value)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the text {_short(value)}" if isinstance(value, str) else _short(value)
