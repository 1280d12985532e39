"""The session plan: the seeds' prescriptions, the timing rules, and the options."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable

import pytest

from coach.errors import OptionError
from coach.plan import (
    COUNTDOWN_SLOT_SECONDS, GAP_AFTER_SPEECH_SECONDS, TONE_SECONDS, Plan, PlanOptions, Segment, build_plan,
    estimate_speech_seconds, spoken_duration,
)
from coach.script import load_routine
from tests.conftest import SCRIPTS

WriteScript = Callable[..., Path]


def bundled(name: str) -> Plan:
    return build_plan(load_routine(SCRIPTS / f"{name}.yaml"))


def holds(plan: Plan, exercise: str) -> list[tuple[str | None, int | None, float]]:
    return [(s.side, s.round, s.seconds) for s in plan.for_exercise(exercise) if s.kind == "hold"]


# The seed's prescriptions, per exercise: (id, hold seconds, rounds per side), all on both sides.
PIRIFORMIS = [
    ("tender-spot-massage", 60, 1),             # "one or two minutes" (the low end)
    ("lying-figure-four-stretch", 10, 5),       # "10 seconds ... four more rounds"
    ("seated-chair-figure-four-stretch", 10, 4),  # "four rounds of 10 seconds"
    ("knee-hold-butt-activation", 10, 4),       # "10 seconds for four sets"
    ("side-lying-clamshell-hold", 15, 4),       # "15 seconds for 4 rounds total"
]


def test_piriformis_follows_the_seed() -> None:
    plan = bundled("piriformis")
    assert [exercise.id for exercise in plan.routine.exercises] == [row[0] for row in PIRIFORMIS]
    for exercise_id, hold_seconds, rounds in PIRIFORMIS:
        expected = [(side, round_number, hold_seconds) for side in ("right", "left")
                    for round_number in range(1, rounds + 1)]
        assert holds(plan, exercise_id) == expected, exercise_id


def test_piriformis_massage_keeps_the_seeds_numbness_check() -> None:
    plan = bundled("piriformis")
    spoken = " ".join(s.text or "" for s in plan.for_exercise("tender-spot-massage") if s.kind == "speech")
    assert "pressing too hard" in spoken
    cues = [s for s in plan.for_exercise("tender-spot-massage") if s.role == "cue"]
    assert cues, "the massage reminds the person to check symptoms during the hold"


def test_safety_is_spoken_first_and_names_the_red_flags() -> None:
    for name in ("piriformis", "leg-numbness"):
        plan = bundled(name)
        first, second = plan.segments[0], plan.segments[1]
        assert first.role == "title" and second.role == "safety"
        assert second.text is not None
        for words in ("tingling", "clinician", "bladder", "sharp"):
            assert words in second.text, (name, words)


def test_leg_numbness_has_the_seeds_exercises() -> None:
    plan = bundled("leg-numbness")
    names = " ".join(exercise.name.lower() for exercise in plan.routine.exercises)
    for word in ("butterfly", "lunge", "cobra", "cat", "hamstring"):
        assert word in names
    lunges = next(e for e in plan.routine.exercises if "lunge" in e.name.lower())
    assert lunges.normal.reps is not None
    reps = [s for s in plan.for_exercise(lunges.id) if s.kind == "rep"]
    assert len(reps) == lunges.normal.reps * lunges.normal.rounds
    hamstring = next(e for e in plan.routine.exercises if "hamstring" in e.name.lower())
    assert {s.side for s in plan.for_exercise(hamstring.id) if s.kind == "hold"} == {"right", "left"}


def test_quick_routine_fits_in_a_minute() -> None:
    assert bundled("quick").total_seconds <= 60


@pytest.mark.parametrize("name", ["piriformis", "leg-numbness", "quick"])
def test_plan_invariants(name: str) -> None:
    plan = bundled(name)
    segments = plan.segments
    assert [s.start for s in segments] == sorted(s.start for s in segments)
    assert all(s.seconds > 0 for s in segments)
    # Every placeholder was filled.
    assert not [s.text for s in segments if s.text and ("{" in s.text or "}" in s.text)]
    # Outside holds, nothing overlaps; inside a hold, only its tone, cues and countdown.
    hold_spans = [(s.start, s.end) for s in segments if s.kind == "hold"]

    def inside_hold(segment: Segment) -> bool:
        return any(start <= segment.start < end for start, end in hold_spans)

    sequential = [s for s in segments if s.kind == "hold" or not inside_hold(s)]
    for earlier, later in zip(sequential, sequential[1:]):
        assert later.start >= earlier.end - 1e-6, (earlier, later)
    for segment in segments:
        if segment.kind == "hold":
            starts = [s for s in segments if s.start == segment.start and s.tone == "hold_start"]
            ends = [s for s in segments if abs(s.start - segment.end) < 1e-6 and s.tone == "hold_end"]
            assert len(starts) == 1 and len(ends) == 1, segment
        if segment.kind in ("countdown",) or segment.role == "cue":
            assert inside_hold(segment)
    assert plan.total_seconds == max(s.end for s in segments)
    assert segments[-1].role == "closing"


def test_exact_timeline_with_a_known_speech_timer(write_script: WriteScript) -> None:
    routine = load_routine(write_script("""
        title: T
        exercises:
          - name: A
            hold: 10
            rounds: 2
            rest: 5
            settle: 3
            countdown: 2
            cues: [{at: 4, say: Breathe.}]
    """))
    plan = build_plan(routine, speech_seconds=lambda text: 1.0)
    gap = GAP_AFTER_SPEECH_SECONDS
    # title, "Exercise 1 of 1", settle, "Round 1 of 2 ...": then the first hold starts.
    first_hold = 2 * (1 + gap) + 3 + (1 + gap)
    hold_segments = [s for s in plan.segments if s.kind == "hold"]
    assert [s.start for s in hold_segments][0] == pytest.approx(first_hold)
    after_hold = TONE_SECONDS["hold_end"] + gap
    second_hold = first_hold + 10 + after_hold + (1 + gap) + 5 + (1 + gap)
    assert hold_segments[1].start == pytest.approx(second_hold)
    assert plan.total_seconds == pytest.approx(second_hold + 10 + after_hold + 1)
    cue = next(s for s in plan.segments if s.role == "cue")
    assert cue.start == pytest.approx(first_hold + 4) and cue.text == "Breathe."
    counts = [(s.count, s.start) for s in plan.segments if s.kind == "countdown" and s.round == 1]
    assert counts == [(2, pytest.approx(first_hold + 10 - 2 * COUNTDOWN_SLOT_SECONDS)),
                      (1, pytest.approx(first_hold + 10 - COUNTDOWN_SLOT_SECONDS))]


def test_sides_fill_placeholders_and_switch_with_a_chime(write_script: WriteScript) -> None:
    routine = load_routine(write_script("""
        title: T
        exercises:
          - name: A
            hold: 5
            sides: [right, left]
            say: "{Side} foot over the {other} knee."
    """))
    plan = build_plan(routine)
    instructions = [(s.side, s.text) for s in plan.segments if s.role == "instructions"]
    assert instructions == [("right", "Right foot over the left knee."), ("left", "Left foot over the right knee.")]
    switches = [s for s in plan.segments if s.tone == "side_switch"]
    assert len(switches) == 1 and switches[0].side == "left"


def test_one_side_only(write_script: WriteScript) -> None:
    plan = build_plan(load_routine(SCRIPTS / "piriformis.yaml"), PlanOptions(sides=("left",)))
    assert {s.side for s in plan.segments if s.kind == "hold"} == {"left"}
    assert not [s for s in plan.segments if s.tone == "side_switch"]


def test_easier_level_shortens_holds_and_says_so() -> None:
    routine = load_routine(SCRIPTS / "piriformis.yaml")
    fig4 = routine.exercise("lying-figure-four-stretch")
    plan = build_plan(routine, PlanOptions(easier=frozenset({fig4.id})))
    fig4_holds = holds(plan, fig4.id)
    assert len(fig4_holds) == 2 * fig4.easier.rounds
    assert {seconds for _, _, seconds in fig4_holds} == {fig4.easier.hold_seconds}
    assert fig4.easier.hold_seconds < fig4.normal.hold_seconds
    assert any(s.role == "easing" for s in plan.for_exercise(fig4.id))
    # Other exercises keep their normal level.
    assert holds(plan, "side-lying-clamshell-hold") == holds(bundled("piriformis"), "side-lying-clamshell-hold")


def test_derived_easier_says_to_use_less_force(write_script: WriteScript) -> None:
    routine = load_routine(write_script("title: T\nexercises: [{name: A, hold: 9}]\n"))
    plan = build_plan(routine, PlanOptions(easier=frozenset({"a"})))
    assert [s.seconds for s in plan.segments if s.kind == "hold"] == [6]
    easing = next(s for s in plan.segments if s.role == "easing")
    assert "less force" in (easing.text or "")


def test_carried_over_levels_say_why() -> None:
    routine = load_routine(SCRIPTS / "piriformis.yaml")
    fig4, clam = "lying-figure-four-stretch", "side-lying-clamshell-hold"
    options = PlanOptions(easier=frozenset({fig4}), eased_last_time=frozenset({fig4}),
                          back_to_normal=frozenset({clam}))
    plan = build_plan(routine, options)
    [eased] = [s.text for s in plan.for_exercise(fig4) if s.role == "easing"]
    assert eased is not None and "Last time you reported tingling" in eased
    [restored] = [s.text for s in plan.for_exercise(clam) if s.role == "easing"]
    assert restored is not None and "back to its usual level" in restored
    # Only the announcements differ from a plain easier plan: same holds, same everything else.
    plain = build_plan(routine, PlanOptions(easier=frozenset({fig4})))
    assert holds(plan, fig4) == holds(plain, fig4) and holds(plan, clam) == holds(plain, clam)
    # Without the history's word, an easier exercise just says it is easier today.
    [note] = [s.text for s in plain.for_exercise(fig4) if s.role == "easing"]
    assert note is not None and note.startswith("This one is at the easier level today.")
    assert not [s for s in plain.for_exercise(clam) if s.role == "easing"]


def test_pace_stretches_the_gaps_but_never_a_hold() -> None:
    routine = load_routine(SCRIPTS / "leg-numbness.yaml")
    normal, slow = build_plan(routine), build_plan(routine, PlanOptions(pace=1.5))
    assert slow.total_seconds > normal.total_seconds
    assert [s.seconds for s in slow.segments if s.kind == "hold"] == [s.seconds for s in normal.segments
                                                                       if s.kind == "hold"]
    rests = lambda plan: [s.seconds for s in plan.segments if s.kind == "rest"]  # noqa: E731
    assert rests(slow) == pytest.approx([seconds * 1.5 for seconds in rests(normal)])
    reps = lambda plan: [s.seconds for s in plan.segments if s.kind == "rep"]  # noqa: E731
    assert reps(slow) == pytest.approx([seconds * 1.5 for seconds in reps(normal)])


@pytest.mark.parametrize(("options", "fragment"), [
    (PlanOptions(easier=frozenset({"nope"})), "has no exercise 'nope'"),
    (PlanOptions(pace=5), "out of range"),
    (PlanOptions(sides=()), "no sides"),
])
def test_options_that_do_not_fit(options: PlanOptions, fragment: str) -> None:
    with pytest.raises(OptionError, match=fragment):
        build_plan(load_routine(SCRIPTS / "quick.yaml"), options)


def test_phrases_are_unique_and_cover_every_spoken_segment() -> None:
    plan = bundled("piriformis")
    phrases = plan.phrases()
    assert len(phrases) == len(set(phrases))
    spoken = {s.text for s in plan.segments if s.text is not None}
    assert spoken == set(phrases)
    # Shared phrases (round announcements, countdown numbers) are synthesized once.
    assert Counter(s.text for s in plan.segments if s.text)["Round 2 of 4."] > 1


def test_speech_estimate_and_spoken_durations() -> None:
    assert estimate_speech_seconds("one two three four") == pytest.approx(0.3 + 4 * 60 / 160)
    assert spoken_duration(10) == "10 seconds"
    assert spoken_duration(60) == "1 minute"
    assert spoken_duration(90) == "1 minute 30 seconds"
    assert spoken_duration(1) == "1 second"


def test_plan_is_pure() -> None:
    routine = load_routine(SCRIPTS / "piriformis.yaml")
    assert build_plan(routine) == build_plan(routine)


def test_literal_braces_reach_the_plan_once_unescaped(write_script: WriteScript) -> None:
    routine = load_routine(write_script("""
        title: T
        exercises:
          - {name: A, hold: 5, say: "Say {{this}}."}
          - {name: B, hold: 5, sides: [left], say: "{Side}: {{that}}."}
    """))
    said = [s.text for s in build_plan(routine).segments if s.role == "instructions"]
    assert said == ["Say {this}.", "Left: {that}."]
