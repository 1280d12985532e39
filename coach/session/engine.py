"""The live session as a pure state machine over the plan.

It never reads a clock, sleeps or touches a device: time ``t`` arrives with every call (the
runner's monotonic seconds; tests pass numbers) and the answer is a list of actions. Plan time
and runner time are tied by one number: while running, ``plan time = t - origin``; while
paused the plan position is held. Every plan sound is emitted once, ``lookahead_seconds``
ahead, carrying the runner time at which it must start, so the runner places samples exactly
where ``coach render`` would, however late its next call comes.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace
from collections.abc import Sequence

from coach.plan import (
    GAP_AFTER_SPEECH_SECONDS, MAX_PACE, MIN_PACE, Plan, PlanOptions, Segment, SpeechTimer,
    build_plan, estimate_speech_seconds, spoken_duration,
)
from coach.routine import Routine, Side
from coach.session.events import (
    COMMANDS, Action, Command, CommandReceived, Ended, EndReason, ExerciseFinished, Outcome,
    Phase, Play, Record, Say, SessionEnded, SessionStarted, SetVolume, Status, StopAudio,
    SymptomReported,
)

DEFAULT_LOOKAHEAD_SECONDS = 0.5
VOLUME_STEP_DB = 3.0
MIN_VOLUME_DB = -24.0
MAX_VOLUME_DB = 9.0
PACE_STEP = 0.25
PREVIOUS_GRACE_SECONDS = 5.0
"""Like a media player: "previous" within this long of an exercise's start goes to the one before."""
_EPSILON = 1e-6

EASING = "Easing off. Let the stretch go a little."
EASING_DERIVED = "Use less force. The holds are shorter now."
EASING_MOVE_ON = "Easing off. Let's leave this one for today, and move on."
EASING_ENOUGH = "Easing off. That is enough of this one."
PAUSED = "Paused. Say resume when you are ready."
CONFIRM_STOP = "Do you want to stop? Say stop again to end the session, or resume to carry on."
STOPPED = "Session stopped. Take a moment before you get up."
RED_FLAG = (
    "Please stop now, and rest in a comfortable position. Sharp or shooting pain, losing feeling "
    "in a leg, or new trouble with bladder or bowel control should be checked by a clinician. "
    "Contact your clinician today, or get urgent care if it is severe or getting worse. "
    "The session has ended."
)
LOUDEST = "That is as loud as I go."
QUIETEST = "That is as quiet as I go."
SLOWER = "A little slower."
FASTER = "A little faster."
SLOWEST = "That is as slow as I go."
FASTEST = "That is as fast as I go."


@dataclass(frozen=True)
class _Unit:
    """One exercise on one side: what the history records as done, eased or skipped."""

    exercise: str
    side: Side | None
    start: float
    end: float


class _Layout:
    """Look-ups over one plan: sounds in start order, holds, units, the sequential timeline."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.total_seconds = plan.total_seconds  # Plan computes it on each call
        segments = plan.segments
        self.sounds: list[Segment] = [s for s in segments if s.sounds]
        self.sound_starts = [s.start for s in self.sounds]
        # A span runs from a start tone's onset to its end tone's onset: a hold, or a block of reps.
        self.spans: list[tuple[float, float]] = []
        opened: float | None = None
        for segment in segments:
            if segment.tone == "hold_start":
                opened = segment.start
            elif segment.tone == "hold_end" and opened is not None:
                self.spans.append((opened, segment.start))
                opened = None
        holds = [s for s in segments if s.kind == "hold"]
        # Everything that follows one after the other: not what sounds inside a hold.
        self.timeline: list[Segment] = [
            s for s in segments
            if not any(h is not s and h.start <= s.start < h.end for h in holds)
        ]
        self.timeline_starts = [s.start for s in self.timeline]
        closing = [s for s in segments if s.role == "closing"]
        self.closing_start = closing[0].start if closing else self.total_seconds
        self.units = self._units()
        self.unit_starts = [unit.start for unit in self.units]

    def _units(self) -> list[_Unit]:
        body = [s for s in self.plan.segments if s.exercise is not None and s.role != "closing"]
        order: dict[str, list[Side | None]] = {}
        for segment in body:
            sides = order.setdefault(segment.exercise, [])  # type: ignore[arg-type]
            if segment.side is not None and segment.side not in sides:
                sides.append(segment.side)
        starts: list[tuple[str, Side | None, float]] = []
        for exercise, sides in order.items():
            first = min(s.start for s in body if s.exercise == exercise)
            for index, side in enumerate(sides or [None]):
                start = first if index == 0 else min(
                    s.start for s in body if s.exercise == exercise and s.side == side)
                starts.append((exercise, side, start))
        ends = [start for _, _, start in starts[1:]] + [self.closing_start]
        return [_Unit(exercise, side, start, end) for (exercise, side, start), end in zip(starts, ends, strict=True)]

    def unit_index(self, plan_t: float) -> int:
        """-1 before the first exercise, ``len(units)`` in the closing words, else the unit's index."""
        if plan_t >= self.closing_start - _EPSILON:
            return len(self.units)
        return bisect.bisect_right(self.unit_starts, plan_t + _EPSILON) - 1

    def unit_of(self, exercise: str, side: Side | None) -> int:
        for index, unit in enumerate(self.units):
            if unit.exercise == exercise and unit.side == side:
                return index
        raise KeyError((exercise, side))

    def exercise_start(self, exercise: str) -> float:
        return min(unit.start for unit in self.units if unit.exercise == exercise)

    def next_exercise_start(self, exercise: str) -> float:
        later = [unit.start for unit in self.units if unit.start > self.exercise_start(exercise)
                 and unit.exercise != exercise]
        return min(later, default=self.closing_start)

    def span_at(self, plan_t: float) -> tuple[float, float] | None:
        for start, end in self.spans:
            if start - _EPSILON <= plan_t < end - _EPSILON:
                return start, end
        return None

    def timeline_index(self, plan_t: float) -> int:
        return max(0, bisect.bisect_right(self.timeline_starts, plan_t + _EPSILON) - 1)

    def first(self, **labels: object) -> Segment | None:
        for segment in self.plan.segments:
            if segment.role != "closing" and all(getattr(segment, k) == v for k, v in labels.items()):
                return segment
        return None

    def round_at(self, plan_t: float, unit: _Unit) -> int | None:
        segment = self.timeline[self.timeline_index(plan_t)]
        if segment.exercise == unit.exercise and segment.side == unit.side and segment.role != "closing":
            return segment.round
        return None


_Preamble = Sequence[str | Segment]
"""Sounds said at once before a jump lands: live prompts (text) and plan phrases (segments)."""


class SessionEngine:
    """A live session of ``routine``: call ``start``, then ``advance`` often and ``command`` on input.

    Holds no reference to a clock or a device; every method takes the runner time ``t``.
    """

    def __init__(self, routine: Routine, options: PlanOptions = PlanOptions(),
                 speech_seconds: SpeechTimer = estimate_speech_seconds, *,
                 lookahead_seconds: float = DEFAULT_LOOKAHEAD_SECONDS) -> None:
        self.routine = routine
        self.speech_seconds = speech_seconds
        self.lookahead_seconds = lookahead_seconds
        self._layout = _Layout(build_plan(routine, options, speech_seconds))
        self._phase: Phase = "ready"
        self._origin = 0.0
        self._floor = 0.0  # plan time a jump landed on; held there while its preamble plays
        self._held = 0.0  # plan time while paused
        self._cursor = 0  # next sound to emit
        self._unit = -1
        self._tingled: set[str] = set()
        self._volume_db = 0.0
        self._last: Command | None = None

    # --- public ---------------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        return self._layout.plan

    @property
    def phase(self) -> Phase:
        return self._phase

    @staticmethod
    def live_phrases() -> tuple[str, ...]:
        """The fixed live-only prompts, for a runner to synthesize before the session starts.

        Only the answer to "time" is made up on the spot.
        """
        return (EASING, f"{EASING} {EASING_DERIVED}", EASING_MOVE_ON, EASING_ENOUGH, PAUSED,
                CONFIRM_STOP, STOPPED, RED_FLAG, LOUDEST, QUIETEST, SLOWER, FASTER, SLOWEST, FASTEST)

    def start(self, t: float) -> list[Action]:
        if self._phase != "ready":
            return []
        self._phase = "running"
        self._origin = t
        actions: list[Action] = [Record(SessionStarted(t, self.routine.id, self.plan.options))]
        return actions + self._emit(t)

    def advance(self, t: float) -> list[Action]:
        """Time moved on to ``t``: the sounds now within the lookahead, and what has finished."""
        if self._phase != "running":
            return []
        actions = self._emit(t)
        actions += self._finish_units(t, self._position(t))
        if t - self._origin >= self._layout.total_seconds - _EPSILON:
            actions += self._end(t, "completed")
        return actions

    def command(self, t: float, name: Command, heard: str | None = None) -> list[Action]:
        """A key or a voice command at ``t``; ``heard`` is the words recognized, for the history.

        While paused or asked to confirm a stop, the commands that move (next, previous, repeat,
        tingling) also resume: after saying "next" a person expects to hear the next thing.
        Commands before ``start`` or after the end do nothing.
        """
        if name not in COMMANDS:
            raise ValueError(f"unknown command {name!r}; commands are: {', '.join(COMMANDS)}")
        if self._phase in ("ready", "ended"):
            return []
        self._last = name
        actions: list[Action] = [Record(CommandReceived(t, name, heard))]
        if self._phase == "running":
            actions += self.advance(t)
            if self._phase == "ended":  # the session ran out before the command arrived
                return actions
        return actions + getattr(self, f"_on_{name}")(t, heard)

    def interrupt(self, t: float) -> list[Action]:
        """The person ended the session outside the commands (Ctrl-C, SIGTERM): its end, silently.

        Only the records: the runner is closing the audio already.
        """
        if self._phase in ("ready", "ended"):
            return []
        return [action for action in self._end(t, "stopped") if isinstance(action, Record)]

    def status(self, t: float) -> Status:
        layout = self._layout
        plan_t = self._position(t)
        index = layout.unit_index(plan_t)
        unit = layout.units[index] if 0 <= index < len(layout.units) else None
        exercise = self.routine.exercise(unit.exercise) if unit else None
        easier = bool(exercise and exercise.id in self.plan.options.easier)
        span = layout.span_at(plan_t) if self._phase != "ended" else None
        return Status(
            phase=self._phase,
            routine_title=self.routine.title,
            exercise_id=exercise.id if exercise else None,
            exercise_name=exercise.name if exercise else None,
            side=unit.side if unit else None,
            round=layout.round_at(plan_t, unit) if unit else None,
            rounds=(exercise.easier if easier else exercise.normal).rounds if exercise else None,
            intensity=("easier" if easier else "normal") if exercise else None,
            hold_seconds_left=round(span[1] - plan_t, 3) if span else None,
            session_seconds_left=round(max(0.0, self._layout.total_seconds - plan_t), 3),
            volume_db=self._volume_db,
            pace=self.plan.options.pace,
            last_command=self._last,
        )

    # --- time ------------------------------------------------------------------------------

    def _position(self, t: float) -> float:
        """The plan time at runner time ``t``."""
        if self._phase == "ready":
            return 0.0
        if self._phase == "ended":
            return self._layout.total_seconds
        if self._phase == "running":
            return min(max(t - self._origin, self._floor), self._layout.total_seconds)
        return self._held

    def _emit(self, t: float) -> list[Action]:
        sounds, actions = self._layout.sounds, []
        horizon = t - self._origin + self.lookahead_seconds
        while self._cursor < len(sounds) and sounds[self._cursor].start <= horizon + _EPSILON:
            segment = sounds[self._cursor]
            self._cursor += 1
            at_t = self._origin + segment.start
            if at_t >= t:
                actions.append(Play(segment, at_t))
            elif at_t + segment.seconds > t:  # the runner was late: take it up where it is now
                actions.append(Play(segment, t, round(t - at_t, 6)))
        return actions

    def _jump(self, t: float, plan_t: float, preamble: _Preamble = (), *,
              take_up: bool = False) -> list[Action]:
        """Stop the audio and carry on from ``plan_t`` once ``preamble`` has been said.

        ``take_up``: sounds already under way at ``plan_t`` (a cue in a hold) continue from
        where they were cut, rather than being dropped.
        """
        actions: list[Action] = [StopAudio()]
        at_t = t
        for item in preamble:
            if isinstance(item, str):
                actions.append(Say(item, at_t))
                at_t += self.speech_seconds(item) + GAP_AFTER_SPEECH_SECONDS
            else:
                actions.append(Play(item, at_t))
                at_t += item.seconds + GAP_AFTER_SPEECH_SECONDS * self.plan.options.pace
        plan_t = min(max(plan_t, 0.0), self._layout.total_seconds)
        self._phase = "running"
        self._origin = at_t - plan_t
        self._floor = plan_t
        sounds = self._layout.sounds
        self._cursor = bisect.bisect_left(self._layout.sound_starts, plan_t - _EPSILON)
        if take_up:
            for segment in sounds[: self._cursor]:
                if segment.start < plan_t < segment.end - _EPSILON:
                    actions.append(Play(segment, at_t, round(plan_t - segment.start, 6)))
        self._unit = self._layout.unit_index(plan_t)
        actions += self._emit(t)
        if at_t - self._origin >= self._layout.total_seconds - _EPSILON and not preamble:
            actions += self._end(t, "completed")
        return actions

    def _resume_point(self, plan_t: float) -> float:
        """Where to take up after an interruption at ``plan_t``.

        A phrase cut off mid-sentence is said again from its start: a listener with eyes closed
        cannot pick up half a sentence, and it costs only its own length. Inside a hold the hold
        timer simply continues, so the prescribed hold length is kept to the millisecond.
        """
        layout = self._layout
        segment = layout.timeline[layout.timeline_index(plan_t)]
        if segment.kind == "speech" and segment.start < plan_t < segment.end:
            return segment.start
        return plan_t

    def _hold_position(self, t: float, phase: Phase) -> list[Action]:
        if self._phase == "running":
            self._held = self._position(t)
        self._phase = phase
        return [StopAudio()]

    # --- history ---------------------------------------------------------------------------

    def _outcome(self, exercise: str) -> Outcome:
        return "eased" if exercise in self.plan.options.easier else "done"

    def _finish_units(self, t: float, plan_t: float) -> list[Action]:
        index = self._layout.unit_index(plan_t)
        actions: list[Action] = []
        for finished in range(max(self._unit, 0), index):
            unit = self._layout.units[finished]
            actions.append(Record(ExerciseFinished(t, unit.exercise, unit.side, self._outcome(unit.exercise))))
        self._unit = max(self._unit, index)
        return actions

    def _skip_rest_of(self, t: float, exercise: str, current: Outcome) -> list[Action]:
        """Record the current unit as ``current`` and the exercise's later sides as skipped."""
        actions: list[Action] = []
        for index, unit in enumerate(self._layout.units):
            if unit.exercise == exercise and index >= self._unit:
                outcome = current if index == self._unit else "skipped"
                actions.append(Record(ExerciseFinished(t, unit.exercise, unit.side, outcome)))
        return actions

    def _end(self, t: float, reason: EndReason) -> list[Action]:
        if self._phase == "ended":
            return []
        actions: list[Action] = []
        if reason != "completed" and 0 <= self._unit < len(self._layout.units):
            unit = self._layout.units[self._unit]
            actions.append(Record(ExerciseFinished(t, unit.exercise, unit.side, "skipped")))
        self._phase = "ended"
        return actions + [Record(SessionEnded(t, reason)), Ended(reason)]

    def _current_unit(self, plan_t: float) -> _Unit | None:
        index = self._layout.unit_index(plan_t)
        return self._layout.units[index] if 0 <= index < len(self._layout.units) else None

    # --- commands --------------------------------------------------------------------------

    def _on_pause(self, t: float, heard: str | None) -> list[Action]:
        if self._phase == "paused":
            return []
        if self._phase == "confirm_stop":
            self._phase = "paused"
            return [StopAudio(), Say(PAUSED, t)]
        return self._hold_position(t, "paused") + [Say(PAUSED, t)]

    def _on_resume(self, t: float, heard: str | None) -> list[Action]:
        if self._phase == "running":
            return []
        return self._jump(t, self._resume_point(self._held), take_up=True)

    def _on_stop(self, t: float, heard: str | None) -> list[Action]:
        if self._phase == "confirm_stop":
            return [StopAudio(), Say(STOPPED, t)] + self._end(t, "stopped")
        return self._hold_position(t, "confirm_stop") + [Say(CONFIRM_STOP, t)]

    def _on_end_session(self, t: float, heard: str | None) -> list[Action]:
        # Two explicit words are unlikely to be misheard, so no confirmation is asked.
        return [StopAudio(), Say(STOPPED, t)] + self._end(t, "stopped")

    def _on_next(self, t: float, heard: str | None) -> list[Action]:
        plan_t = self._position(t)
        span = self._layout.span_at(plan_t)
        if span is not None:  # end the hold now: straight to its end tone
            return self._jump(t, span[1])
        unit = self._current_unit(plan_t)
        if unit is None:
            if plan_t < (self._layout.unit_starts or [self._layout.closing_start])[0]:
                return self._jump(t, self._layout.unit_starts[0] if self._layout.units else self._layout.closing_start)
            return [StopAudio()] + self._end(t, "completed")  # "next" during the closing words
        actions = self._skip_rest_of(t, unit.exercise, "skipped")
        return actions + self._jump(t, self._layout.next_exercise_start(unit.exercise))

    def _on_previous(self, t: float, heard: str | None) -> list[Action]:
        layout, plan_t = self._layout, self._position(t)
        unit = self._current_unit(plan_t)
        if unit is None:
            after_all = plan_t >= layout.closing_start - _EPSILON and layout.units
            return self._jump(t, layout.exercise_start(layout.units[-1].exercise) if after_all else 0.0)
        start = layout.exercise_start(unit.exercise)
        if plan_t - start < PREVIOUS_GRACE_SECONDS:
            earlier = [u for u in layout.units if u.start < start]
            start = layout.exercise_start(earlier[-1].exercise) if earlier else 0.0
        return self._jump(t, start)

    def _on_repeat(self, t: float, heard: str | None) -> list[Action]:
        layout, plan_t = self._layout, self._position(t)
        unit = self._current_unit(plan_t)
        if unit is not None:
            round_number = layout.round_at(plan_t, unit)
            instructions = layout.first(exercise=unit.exercise, side=unit.side, role="instructions")
            if round_number is not None and instructions is not None:
                round_start = layout.first(exercise=unit.exercise, side=unit.side, round=round_number)
                assert round_start is not None
                return self._jump(t, round_start.start, [instructions])
            if instructions is not None:
                return self._jump(t, instructions.start)
        # Outside an exercise: say the current phrase again.
        segment = layout.timeline[layout.timeline_index(plan_t)]
        return self._jump(t, segment.start)

    def _on_time(self, t: float, heard: str | None) -> list[Action]:
        return [Say(self.time_words(t), t)]

    def time_words(self, t: float) -> str:
        """What the coach answers to "time": what is left of the hold and of the session."""
        status = self.status(t)
        words = []
        if status.hold_seconds_left is not None:
            words.append(f"{spoken_duration(math.ceil(status.hold_seconds_left - _EPSILON))} left in this hold.")
        left = status.session_seconds_left
        if left > 90:
            words.append(f"About {round(left / 60)} minutes left in the session.")
        else:
            words.append(f"{spoken_duration(math.ceil(left - _EPSILON))} left in the session.")
        return " ".join(words)

    def _on_louder(self, t: float, heard: str | None) -> list[Action]:
        return self._volume(t, VOLUME_STEP_DB)

    def _on_quieter(self, t: float, heard: str | None) -> list[Action]:
        return self._volume(t, -VOLUME_STEP_DB)

    def _volume(self, t: float, step_db: float) -> list[Action]:
        wanted = self._volume_db + step_db
        if not MIN_VOLUME_DB <= wanted <= MAX_VOLUME_DB:
            return [Say(LOUDEST if step_db > 0 else QUIETEST, t)]
        self._volume_db = wanted
        return [SetVolume(wanted)]

    def _on_slower(self, t: float, heard: str | None) -> list[Action]:
        return self._pace(t, PACE_STEP)

    def _on_faster(self, t: float, heard: str | None) -> list[Action]:
        return self._pace(t, -PACE_STEP)

    def _pace(self, t: float, step: float) -> list[Action]:
        options = self.plan.options
        pace = round(options.pace + step, 3)
        if not MIN_PACE <= pace <= MAX_PACE:
            return [Say(SLOWEST if step > 0 else FASTEST, t)]
        old, plan_t = self._layout, self._position(t)
        index = old.timeline_index(plan_t)
        self._layout = _Layout(build_plan(self.routine, replace(options, pace=pace), self.speech_seconds))
        new_plan_t = self._matching_point(old, index, plan_t)
        if self._phase != "running":  # paused: the new pace waits for resume
            self._held = new_plan_t
            self._unit = self._layout.unit_index(new_plan_t)
            return [Say(SLOWER if step > 0 else FASTER, t)]
        ack = SLOWER if step > 0 else FASTER
        if self._layout.span_at(new_plan_t) is not None:
            # Pace never changes a hold: keep its timing, and say so over the silence.
            return self._jump(t, new_plan_t, take_up=True) + [Say(ack, t)]
        return self._jump(t, self._resume_point(new_plan_t), [ack], take_up=True)

    def _matching_point(self, old: _Layout, index: int, plan_t: float) -> float:
        """The same point of the routine in the new plan: pace changes lengths, never order."""
        new = self._layout
        if len(new.timeline) != len(old.timeline):  # cannot happen with pace alone; be safe
            unit = old.unit_index(plan_t)
            return new.units[unit].start if 0 <= unit < len(new.units) else 0.0
        before, after = old.timeline[index], new.timeline[index]
        offset = plan_t - before.start
        if before.kind == "rest" and before.seconds > 0:
            offset *= after.seconds / before.seconds
        return after.start + min(offset, after.seconds)

    def _on_tingling(self, t: float, heard: str | None) -> list[Action]:
        plan_t = self._position(t)
        unit = self._current_unit(plan_t)
        symptom = Record(SymptomReported(t, "tingling", unit.exercise if unit else None,
                                         unit.side if unit else None, heard))
        if unit is None:  # title, safety or closing words: nothing to ease
            return [symptom, Say(EASING, t)]
        exercise = self.routine.exercise(unit.exercise)
        if exercise.id in self._tingled or exercise.id in self.plan.options.easier:
            # A second report, or one at the easier level already: there is nothing gentler.
            self._tingled.add(exercise.id)
            actions = [symptom] + self._skip_rest_of(t, exercise.id, "eased")
            return actions + self._jump(t, self._layout.next_exercise_start(exercise.id), [EASING_MOVE_ON])
        self._tingled.add(exercise.id)
        round_number = self._layout.round_at(plan_t, unit)
        end_tone = self._layout.first(exercise=unit.exercise, side=unit.side, round=round_number, tone="hold_end")
        if round_number is not None and end_tone is not None and plan_t >= end_tone.start - _EPSILON:
            round_number += 1  # resting after a round: the next one is the one to ease
        options = replace(self.plan.options, easier=self.plan.options.easier | {exercise.id})
        self._layout = new = _Layout(build_plan(self.routine, options, self.speech_seconds))
        self._unit = new.unit_of(unit.exercise, unit.side)
        easing = EASING if exercise.easier_is_scripted else f"{EASING} {EASING_DERIVED}"
        instructions = new.first(exercise=unit.exercise, side=unit.side, role="instructions")
        if round_number is None:  # still being told what to do: tell it again, the easier way
            target = instructions.start if instructions else new.units[self._unit].start
            return [symptom] + self._jump(t, target, [easing])
        if round_number <= exercise.easier.rounds:
            round_start = new.first(exercise=unit.exercise, side=unit.side, round=round_number)
            assert round_start is not None
            preamble: list[str | Segment] = [easing] + ([instructions] if instructions else [])
            return [symptom] + self._jump(t, round_start.start, preamble)
        # The easier level has done its rounds already: this side is over.
        finished = Record(ExerciseFinished(t, unit.exercise, unit.side, "eased"))
        following = new.units[self._unit].end
        return [symptom, finished] + self._jump(t, following, [EASING_ENOUGH])

    def _on_red_flag(self, t: float, heard: str | None) -> list[Action]:
        unit = self._current_unit(self._position(t))
        symptom = Record(SymptomReported(t, "red_flag", unit.exercise if unit else None,
                                         unit.side if unit else None, heard))
        return [StopAudio(), Say(RED_FLAG, t), symptom] + self._end(t, "red_flag")
