"""The session engine in virtual time: whole routines in milliseconds, every command in every phase."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coach.catalog import resolve_routine
from coach.plan import PlanOptions, Segment, estimate_speech_seconds
from coach.routine import Routine
from coach.script import derived_easier, load_routine
from coach.session import Ended, Play, Record, Say, SessionEngine, SetVolume, StopAudio
from coach.session.engine import (
    EASING, EASING_DERIVED, EASING_MOVE_ON, MAX_VOLUME_DB, PAUSED, RED_FLAG, CONFIRM_STOP, LOUDEST,
)
from coach.session.events import (
    COMMANDS, CommandReceived, ExerciseFinished, SessionEnded, SessionStarted, SymptomReported,
)

TICK = 0.01
T0 = 1000.0
"""Runner time at which sessions start: anything but zero, as on a real monotonic clock."""


@cache
def routine(name: str) -> Routine:
    return load_routine(resolve_routine(name).path)


@dataclass
class Run:
    """Drives an engine in 10 ms steps and keeps every action with the time it came out."""

    engine: SessionEngine
    t: float = T0
    log: list[tuple[float, object]] = field(default_factory=list)

    @classmethod
    def of(cls, name: str, options: PlanOptions = PlanOptions(), **kwargs: object) -> Run:
        run = cls(SessionEngine(routine(name), options, estimate_speech_seconds, **kwargs))  # type: ignore[arg-type]
        run.take(run.engine.start(run.t))
        return run

    def take(self, actions: list) -> list:
        for action in actions:
            # No action ever asks for a start in the past by more than a tick.
            if isinstance(action, (Play, Say)):
                assert action.at_t >= self.t - TICK, (action, self.t)
            self.log.append((self.t, action))
        return actions

    def until(self, seconds: float) -> list:
        """Advance to ``seconds`` after the start (runner time ``T0 + seconds``), tick by tick."""
        out = []
        base = self.t
        steps = round((T0 + seconds - base) / TICK)
        for step in range(1, steps + 1):
            self.t = base + step * TICK
            out += self.take(self.engine.advance(self.t))
        return out

    def wait(self, seconds: float) -> list:
        """Advance by ``seconds`` from now, tick by tick."""
        return self.until(self.t - T0 + seconds)

    def to_end(self, limit_seconds: float = 4000.0) -> list:
        out = []
        while self.engine.phase != "ended":
            self.t += TICK
            out += self.take(self.engine.advance(self.t))
            assert self.t < T0 + limit_seconds
        return out

    def say(self, name: str, heard: str | None = None) -> list:
        return self.take(self.engine.command(self.t, name, heard))  # type: ignore[arg-type]

    def plays(self, since: float = -1.0) -> list[Play]:
        return [a for t, a in self.log if isinstance(a, Play) and t >= since]

    def records(self, kind: type) -> list:
        return [a.event for _, a in self.log if isinstance(a, Record) and isinstance(a.event, kind)]

    def status(self):
        return self.engine.status(self.t)


def sounds(plan) -> list[Segment]:
    return [s for s in plan.segments if s.tone is not None or (s.text is not None and s.kind != "hold")]


def first(plan, **labels) -> Segment:
    return next(s for s in plan.segments if all(getattr(s, k) == v for k, v in labels.items()))


# --- a whole routine -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["quick", "piriformis", "leg-numbness"])
def test_whole_routine_plays_every_sound_once_at_its_planned_time(name: str) -> None:
    run = Run.of(name)
    plan = run.engine.plan
    run.to_end()
    played = run.plays()
    assert [p.segment for p in played] == sounds(plan)  # each once, in order
    for play in played:
        assert play.at_t == pytest.approx(T0 + play.segment.start, abs=0.0005)
        assert play.from_seconds == 0.0
        assert play.at_t - 0.5 - TICK <= next(t for t, a in run.log if a is play) <= play.at_t  # ahead, not late
    assert run.t == pytest.approx(T0 + plan.total_seconds, abs=TICK)
    assert run.log[-1][1] == Ended("completed")
    assert run.records(SessionEnded)[-1].reason == "completed"
    finished = run.records(ExerciseFinished)
    assert {(e.exercise_id, e.side) for e in finished} == {
        (s.exercise, s.side) for s in plan.segments if s.kind == "hold" or s.kind == "rep"}
    assert all(e.outcome == "done" for e in finished)
    assert not any(isinstance(a, StopAudio) for _, a in run.log)


def test_a_20_minute_routine_runs_in_well_under_a_second_of_real_time() -> None:
    import time
    began = time.perf_counter()
    run = Run.of("piriformis")
    run.to_end()
    assert run.engine.plan.total_seconds > 15 * 60
    assert time.perf_counter() - began < 5.0  # generous for slow CI; ~0.5 s here


def test_carried_over_easier_level_is_run_and_recorded_as_eased() -> None:
    run = Run.of("quick", PlanOptions(easier=frozenset({"gentle-glute-squeeze"})))
    run.to_end()
    assert [e.outcome for e in run.records(ExerciseFinished)] == ["eased"]
    assert run.records(SessionStarted)[0].options.easier == {"gentle-glute-squeeze"}


def test_a_late_runner_gets_sounds_taken_up_where_they_are_now() -> None:
    run = Run.of("quick")
    plan = run.engine.plan
    safety = first(plan, role="safety")
    run.t = T0 + safety.start + 1.0  # the runner stalled for a second and a bit
    actions = run.take(run.engine.advance(run.t))
    late = next(a for a in actions if isinstance(a, Play) and a.segment == safety)
    assert late.at_t == run.t and late.from_seconds == pytest.approx(1.0)


# --- pause and resume ----------------------------------------------------------------------

def test_pause_for_30_seconds_shifts_everything_later_by_exactly_30() -> None:
    run = Run.of("quick")
    plan = run.engine.plan
    rest = next(s for s in plan.segments if s.kind == "rest" and s.role == "settle")
    run.until(rest.start + 0.5)
    paused = run.say("pause")
    assert StopAudio() in paused and Say(PAUSED, run.t) in paused
    assert run.status().phase == "paused"
    paused_at = run.t
    assert run.wait(30.0) == []  # nothing at all while paused
    mark = run.t
    assert mark - paused_at == pytest.approx(30.0, abs=1e-9)
    run.say("resume")
    run.to_end()
    after = run.plays(since=mark)
    assert [p.segment for p in after] == [s for s in sounds(plan) if s.start > rest.start]
    for play in after:
        assert play.at_t == pytest.approx(T0 + play.segment.start + 30.0, abs=0.0005)


def test_resume_says_an_interrupted_phrase_again_from_its_start() -> None:
    run = Run.of("quick")
    plan = run.engine.plan
    instructions = first(plan, role="instructions")
    run.until(instructions.start + 2.0)
    run.say("pause")
    run.until(instructions.start + 12.0)
    mark = run.t
    actions = run.say("resume")
    again = next(a for a in actions if isinstance(a, Play))
    assert again.segment == instructions and again.at_t == mark and again.from_seconds == 0.0


def test_pause_inside_a_hold_keeps_the_hold_length_exact() -> None:
    run = Run.of("quick")
    plan = run.engine.plan
    hold = first(plan, kind="hold")
    run.until(hold.start + 1.0)
    assert run.status().hold_seconds_left == pytest.approx(hold.seconds - 1.0, abs=TICK)
    run.say("pause")
    run.until(hold.start + 11.0)
    assert run.status().hold_seconds_left == pytest.approx(hold.seconds - 1.0, abs=TICK)
    resumed_at = run.t
    run.say("resume")
    run.until(hold.start + 20.0)
    end_tone = next(p for p in run.plays(since=resumed_at) if p.tone == "hold_end")
    assert end_tone.at_t == pytest.approx(resumed_at + hold.seconds - 1.0, abs=TICK)


def test_a_cue_cut_off_inside_a_hold_is_taken_up_where_it_stopped() -> None:
    run = Run.of("piriformis")
    cue = first(run.engine.plan, role="cue")
    run.until(cue.start + 0.5)
    run.say("pause")
    run.wait(3.0)
    actions = run.say("resume")
    taken_up = next(a for a in actions if isinstance(a, Play))
    assert taken_up.segment == cue and taken_up.at_t == run.t
    assert taken_up.from_seconds == pytest.approx(0.5, abs=TICK)


def test_status_follows_the_plan() -> None:
    run = Run.of("piriformis")
    assert run.engine.status(run.t).phase == "running"
    plan = run.engine.plan
    exercise = run.engine.routine.exercises[1]
    hold = first(plan, kind="hold", exercise=exercise.id, side="left", round=3)
    run.until(hold.start + 2.5)
    status = run.status()
    assert (status.exercise_id, status.exercise_name, status.side, status.round, status.rounds, status.intensity) == (
        exercise.id, exercise.name, "left", 3, 5, "normal")
    assert status.hold_seconds_left == pytest.approx(7.5, abs=TICK)
    assert status.session_seconds_left == pytest.approx(plan.total_seconds - hold.start - 2.5, abs=TICK)
    assert run.status().routine_title == run.engine.routine.title
    fresh = SessionEngine(routine("quick"))
    assert fresh.status(0.0).phase == "ready" and fresh.advance(1.0) == [] and fresh.command(1.0, "next") == []


def test_unknown_command_is_a_programming_error() -> None:
    run = Run.of("quick")
    with pytest.raises(ValueError, match="unknown command 'jump'"):
        run.engine.command(run.t, "jump")  # type: ignore[arg-type]


# --- next, previous, repeat ----------------------------------------------------------------

def test_next_inside_a_hold_ends_it_at_once() -> None:
    run = Run.of("quick")
    plan = run.engine.plan
    hold = first(plan, kind="hold")
    run.until(hold.start + 1.0)
    actions = run.say("next")
    assert actions[1] == StopAudio()
    end_tone = next(a for a in actions if isinstance(a, Play))
    assert end_tone.tone == "hold_end" and end_tone.at_t == run.t
    assert run.status().round == 1 and run.status().hold_seconds_left is None


def test_next_outside_a_hold_skips_to_the_next_exercise() -> None:
    run = Run.of("piriformis")
    plan = run.engine.plan
    instructions = first(plan, role="instructions")
    run.until(instructions.start + 1.0)
    first_id = instructions.exercise
    run.say("next")
    status = run.status()
    assert status.exercise_id != first_id and status.exercise_id is not None
    assert [(e.side, e.outcome) for e in run.records(ExerciseFinished)] == [("right", "skipped"), ("left", "skipped")]
    played = run.plays(since=run.t)
    assert played[0].text.startswith("Exercise 2 of")


def test_next_in_the_closing_words_completes_the_session() -> None:
    run = Run.of("quick")
    run.until(first(run.engine.plan, role="closing").start + 0.5)
    assert run.say("next")[-1] == Ended("completed")


def test_previous_restarts_the_exercise_or_goes_back_within_its_first_seconds() -> None:
    run = Run.of("piriformis")
    plan = run.engine.plan
    ids = [e.id for e in run.engine.routine.exercises]
    second = first(plan, exercise=ids[1], role="exercise")
    run.until(second.start + 30.0)
    run.say("previous")
    assert run.status().exercise_id == ids[1]
    assert run.plays(since=run.t)[0].segment == second
    run.until(second.start + 30.0 + 1.0)
    run.say("previous")  # within the grace seconds: the one before
    assert run.status().exercise_id == ids[0]
    assert run.plays(since=run.t)[0].segment == first(plan, exercise=ids[0], role="exercise")


def test_repeat_says_the_instructions_then_restarts_the_round() -> None:
    run = Run.of("quick")
    plan = run.engine.plan
    hold = first(plan, kind="hold", round=2)
    run.until(hold.start + 2.0)
    actions = run.say("repeat")
    plays = [a for a in actions if isinstance(a, Play)]
    instructions = first(plan, role="instructions")
    assert plays[0].segment == instructions and plays[0].at_t == run.t
    assert run.status().round == 2
    repeated_at = run.t
    run.wait(instructions.seconds + 2.0)
    announce = first(plan, round=2, role="round")
    again = next(p for p in run.plays(since=repeated_at) if p.segment == announce)
    assert again.at_t == pytest.approx(repeated_at + instructions.seconds + 0.6, abs=0.001)
    assert run.status().round == 2


# --- stop ----------------------------------------------------------------------------------

def test_stop_asks_to_confirm_and_stop_again_ends() -> None:
    run = Run.of("quick")
    run.until(10.0)
    actions = run.say("stop")
    assert StopAudio() in actions and Say(CONFIRM_STOP, run.t) in actions
    assert run.status().phase == "confirm_stop"
    assert run.until(20.0) == []
    actions = run.say("stop")
    assert actions[-1] == Ended("stopped")
    assert run.records(SessionEnded)[-1].reason == "stopped"
    assert run.status().phase == "ended"


def test_stop_then_end_session_ends_and_stop_then_resume_continues() -> None:
    run = Run.of("quick")
    run.until(10.0)
    run.say("stop")
    assert run.say("end_session")[-1] == Ended("stopped")
    run = Run.of("quick")
    run.until(10.0)
    run.say("stop")
    run.say("resume")
    assert run.status().phase == "running"
    run.to_end()
    assert run.records(SessionEnded)[-1].reason == "completed"


# --- tingling and red flags ----------------------------------------------------------------

def test_tingling_eases_the_rest_of_the_exercise_at_once() -> None:
    run = Run.of("piriformis")
    plan = run.engine.plan
    exercise = run.engine.routine.exercises[1]  # lying figure-four: hold 10, 5 rounds; easier 7, 3 rounds
    hold = first(plan, kind="hold", exercise=exercise.id, side="right", round=2)
    run.until(hold.start + 4.0)
    actions = run.say("tingling", heard="my leg is tingling")
    says = [a for a in actions if isinstance(a, Say)]
    assert says[0].text == EASING and says[0].at_t - run.t <= 1.0
    symptom = run.records(SymptomReported)[-1]
    assert (symptom.kind, symptom.exercise_id, symptom.side, symptom.heard) == (
        "tingling", exercise.id, "right", "my leg is tingling")
    status = run.status()
    assert (status.intensity, status.exercise_id, status.side, status.round, status.rounds) == (
        "easier", exercise.id, "right", 2, 3)
    # The easier instructions, then round 2 again with the easier hold length.
    first_play = next(a for a in actions if isinstance(a, Play))
    assert "half the force" in first_play.text
    run.until(hold.start + 60.0)
    starts = [p.at_t for p in run.plays() if p.tone == "hold_start" and p.at_t > T0 + hold.start]
    ends = [p.at_t for p in run.plays() if p.tone == "hold_end" and p.at_t > T0 + hold.start]
    assert ends[0] - starts[0] == pytest.approx(exercise.easier.hold_seconds, abs=0.001)
    run.to_end()
    outcomes = [(e.exercise_id, e.side, e.outcome) for e in run.records(ExerciseFinished)]
    assert (exercise.id, "right", "eased") in outcomes and (exercise.id, "left", "eased") in outcomes


def test_tingling_after_the_easier_rounds_moves_to_the_next_side() -> None:
    run = Run.of("piriformis")
    plan = run.engine.plan
    exercise = run.engine.routine.exercises[1]
    hold = first(plan, kind="hold", exercise=exercise.id, side="right", round=5)
    run.until(hold.start + 1.0)
    run.say("tingling")
    assert run.records(ExerciseFinished)[-1] == ExerciseFinished(run.t, exercise.id, "right", "eased")
    run.until(hold.start + 6.0)
    assert run.status().side == "left" and run.status().intensity == "easier"


def test_a_second_tingling_moves_on_to_the_next_exercise() -> None:
    run = Run.of("piriformis")
    plan = run.engine.plan
    exercise = run.engine.routine.exercises[1]
    run.until(first(plan, kind="hold", exercise=exercise.id, side="right").start + 2.0)
    run.say("tingling")
    run.wait(20.0)
    actions = run.say("tingling", heard="still tingling")
    assert Say(EASING_MOVE_ON, run.t) in actions
    assert len(run.records(SymptomReported)) == 2
    outcomes = [(e.side, e.outcome) for e in run.records(ExerciseFinished) if e.exercise_id == exercise.id]
    assert outcomes == [("right", "eased"), ("left", "skipped")]
    run.wait(5.0)
    assert run.status().exercise_id == run.engine.routine.exercises[2].id


def test_tingling_on_a_derived_easier_level_says_use_less_force() -> None:
    quick = routine("quick")
    exercise = quick.exercises[0]
    derived = replace(exercise, easier=derived_easier(exercise.normal), easier_is_scripted=False)
    run = Run(SessionEngine(replace(quick, exercises=(derived,))))
    run.take(run.engine.start(run.t))
    run.until(first(run.engine.plan, kind="hold").start + 1.0)
    says = [a.text for a in run.say("tingling") if isinstance(a, Say)]
    assert says == [f"{EASING} {EASING_DERIVED}"]
    assert says[0] in SessionEngine.live_phrases()
    assert run.status().intensity == "easier"


def test_tingling_in_the_rest_after_a_round_eases_the_next_round() -> None:
    run = Run.of("piriformis")
    exercise = run.engine.routine.exercises[1]
    between = first(run.engine.plan, exercise=exercise.id, side="right", round=1, role="between")
    run.until(between.start + between.seconds + 1.0)
    run.say("tingling")
    assert run.status().round == 2 and run.status().rounds == exercise.easier.rounds


def test_tingling_outside_an_exercise_is_acknowledged_and_recorded() -> None:
    run = Run.of("quick")
    run.until(0.5)
    actions = run.say("tingling", heard="pins and needles")
    assert Say(EASING, run.t) in actions and StopAudio() not in actions
    assert run.records(SymptomReported)[-1] == SymptomReported(run.t, "tingling", None, None, "pins and needles")


def test_tingling_while_paused_eases_and_carries_on() -> None:
    run = Run.of("quick")
    run.until(first(run.engine.plan, kind="hold").start + 1.0)
    run.say("pause")
    run.wait(5.0)
    run.say("tingling")
    assert run.status().phase == "running" and run.status().intensity == "easier"


def test_reps_are_a_span_that_next_ends() -> None:
    run = Run.of("leg-numbness")
    plan = run.engine.plan
    rep = first(plan, kind="rep", count=2)
    run.until(rep.start + 0.1)
    assert run.status().hold_seconds_left is not None
    actions = run.say("next")
    assert next(a for a in actions if isinstance(a, Play)).tone == "hold_end"


def test_red_flag_ends_the_session_with_advice() -> None:
    run = Run.of("quick")
    hold = first(run.engine.plan, kind="hold")
    run.until(hold.start + 1.0)
    actions = run.say("red_flag", heard="sharp pain")
    assert actions[1] == StopAudio()
    assert Say(RED_FLAG, run.t) in actions
    assert "clinician" in RED_FLAG and "bladder" in RED_FLAG
    assert actions[-1] == Ended("red_flag")
    assert run.records(SymptomReported)[-1].heard == "sharp pain"
    assert run.records(ExerciseFinished)[-1].outcome == "skipped"
    assert run.until(hold.start + 5.0) == []
    assert run.say("resume") == []


# --- time, volume, pace --------------------------------------------------------------------

def test_time_says_what_is_left_of_the_hold_and_the_session() -> None:
    run = Run.of("quick")
    plan = run.engine.plan
    hold = first(plan, kind="hold")
    run.until(hold.start + 1.5)
    (say,) = [a for a in run.say("time") if isinstance(a, Say)]
    left = round(plan.total_seconds - hold.start - 1.5)
    assert say.at_t == run.t
    assert say.text == f"4 seconds left in this hold. {left} seconds left in the session."
    run = Run.of("piriformis")
    run.until(60.0)
    (say,) = [a for a in run.say("time") if isinstance(a, Say)]
    minutes = round((run.engine.plan.total_seconds - 60) / 60)
    assert say.text == f"About {minutes} minutes left in the session."


def test_louder_and_quieter_step_3_db_within_bounds() -> None:
    run = Run.of("quick")
    assert SetVolume(3.0) in run.say("louder")
    assert SetVolume(0.0) in run.say("quieter")
    for _ in range(10):
        run.say("louder")
    assert run.status().volume_db == MAX_VOLUME_DB
    assert Say(LOUDEST, run.t) in run.say("louder")


def test_slower_replans_the_rest_and_keeps_the_place() -> None:
    run = Run.of("quick")
    plan = run.engine.plan
    rest = next(s for s in plan.segments if s.kind == "rest" and s.role == "settle")
    run.until(rest.start + 1.0)
    run.say("slower")
    status = run.status()
    assert status.pace == 1.25
    new_plan = run.engine.plan
    assert new_plan.total_seconds > plan.total_seconds
    new_rest = next(s for s in new_plan.segments if s.kind == "rest" and s.role == "settle")
    assert status.session_seconds_left == pytest.approx(new_plan.total_seconds - new_rest.start - 1.25, abs=0.01)
    run.to_end()
    assert run.records(SessionEnded)[-1].reason == "completed"
    for _ in range(10):
        run = Run.of("quick")
        run.say("faster")
    assert run.status().pace == 0.75


def test_slower_inside_a_hold_keeps_the_hold_end_where_it_was() -> None:
    run = Run.of("quick")
    hold = first(run.engine.plan, kind="hold")
    run.until(hold.start + 1.0)
    run.say("slower")
    changed_at = run.t
    run.wait(6.0)
    end_tone = next(p for p in run.plays(since=changed_at) if p.tone == "hold_end")
    assert end_tone.at_t == pytest.approx(T0 + hold.end, abs=0.001)
    assert run.engine.plan.options.pace == 1.25


# --- every command in every phase ----------------------------------------------------------

PLACES = {
    "in_speech": lambda plan: first(plan, role="instructions").start + 0.5,
    "in_settle": lambda plan: first(plan, kind="rest").start + 0.5,
    "in_round_rest": lambda plan: first(plan, kind="rest", role=None).start + 0.5,
    "in_hold": lambda plan: first(plan, kind="hold").start + 1.0,
    "in_title": lambda plan: 0.2,
    "in_closing": lambda plan: first(plan, role="closing").start + 0.5,
}


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("phase", ["running", "paused", "confirm_stop", "ended"])
@pytest.mark.parametrize("place", sorted(PLACES))
def test_every_command_in_every_phase(name: str, phase: str, place: str) -> None:
    run = Run.of("quick")
    plan = run.engine.plan
    run.until(PLACES[place](plan))
    if phase == "paused":
        run.say("pause")
    elif phase == "confirm_stop":
        run.say("stop")
    elif phase == "ended":
        run.say("end_session")
    actions = run.say(name, heard=name)
    if phase == "ended":
        assert actions == []
        return
    assert actions[0] == Record(CommandReceived(run.t, name, name))
    assert run.status().last_command == name
    if run.engine.phase in ("paused", "confirm_stop"):
        run.say("resume")
    run.to_end()
    assert run.status().phase == "ended"
    assert run.status().session_seconds_left == 0.0
    ends = run.records(SessionEnded)
    assert len(ends) == 1


# --- random command sequences --------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["quick", "piriformis"]),
       st.lists(st.tuples(st.floats(0.0, 40.0), st.sampled_from(COMMANDS)), max_size=12))
def test_random_commands_never_raise_and_end_consistently(name: str, script: list) -> None:
    run = Run.of(name)
    for wait_seconds, command in script:
        # Coarse steps keep the property fast; the lookahead covers them.
        for _ in range(int(wait_seconds / 0.25)):
            run.t += 0.25
            run.take(run.engine.advance(run.t))
        run.say(command)
        status = run.status()
        assert 0.0 <= status.session_seconds_left <= run.engine.plan.total_seconds
        assert status.phase in ("running", "paused", "confirm_stop", "ended")
        if status.hold_seconds_left is not None:
            longest = max(s.seconds for s in run.engine.plan.segments if s.kind == "hold")
            assert 0.0 < status.hold_seconds_left <= longest
    if run.status().phase in ("paused", "confirm_stop"):
        run.say("resume")
    while run.engine.phase != "ended":
        run.t += 0.25
        run.take(run.engine.advance(run.t))
        assert run.t < T0 + 20000
    assert len(run.records(SessionEnded)) == 1
    assert sum(isinstance(a, Ended) for _, a in run.log) == 1
    assert run.engine.advance(run.t + 1) == [] and run.engine.command(run.t, "resume") == []
    # Between two StopAudio, no plan sound is scheduled twice.
    scheduled: set[Segment] = set()
    for _, action in run.log:
        if isinstance(action, StopAudio):
            scheduled.clear()
        elif isinstance(action, Play):
            assert action.segment not in scheduled
            scheduled.add(action.segment)
    # History: one end, after the start; every finished exercise names a real one.
    ids = {e.id for e in run.engine.routine.exercises}
    assert all(e.exercise_id in ids and e.at_t >= T0 for e in run.records(ExerciseFinished))


# --- interrupted from outside (Ctrl-C, SIGTERM) ----------------------------------------------

def test_interrupt_records_the_end_without_a_sound() -> None:
    run = Run.of("piriformis")
    run.until(120.0)
    actions = run.take(run.engine.interrupt(run.t))
    assert all(isinstance(a, Record) for a in actions)  # no prompt: the audio is closing
    [skipped] = [a.event for a in actions if isinstance(a.event, ExerciseFinished)]
    assert skipped.outcome == "skipped"
    assert run.records(SessionEnded)[-1].reason == "stopped"
    assert run.engine.phase == "ended"
    assert run.engine.interrupt(run.t) == []  # once only


def test_interrupt_before_start_records_nothing() -> None:
    engine = SessionEngine(routine("quick"))
    assert engine.interrupt(T0) == []
