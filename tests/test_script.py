"""The loader: every rule of the script format, and the message each broken rule gives."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from coach.errors import ScriptError
from coach.script import DEFAULT_PACE_SECONDS, DEFAULT_REST_SECONDS, DEFAULT_SETTLE_SECONDS, load_routine

WriteScript = Callable[..., Path]

MINIMAL = """
title: Test routine
exercises:
  - name: Knee hug
    hold: 10
"""


def load_error(write_script: WriteScript, text: str) -> ScriptError:
    path = write_script(text)
    with pytest.raises(ScriptError) as caught:
        load_routine(path)
    error = caught.value
    assert str(error).startswith(f"{path}:{error.line}: ")
    assert "\n" not in str(error)
    return error


def test_minimal_script_gets_documented_defaults(write_script: WriteScript) -> None:
    routine = load_routine(write_script(MINIMAL, "my-routine.yaml"))
    assert routine.id == "my-routine"
    assert routine.title == "Test routine"
    (exercise,) = routine.exercises
    assert exercise.id == "knee-hug"
    assert exercise.sides == ()
    assert exercise.settle_seconds == DEFAULT_SETTLE_SECONDS
    assert exercise.normal.hold_seconds == 10
    assert exercise.normal.rounds == 1
    assert exercise.normal.rest_seconds == DEFAULT_REST_SECONDS
    assert exercise.normal.reps is None
    assert exercise.normal.countdown is None


def test_full_exercise_reads_every_key(write_script: WriteScript) -> None:
    routine = load_routine(write_script("""
        title: Full
        description: All keys.
        source: A test.
        safety: Go gently.
        exercises:
          - name: Figure four
            id: fig4
            say: Cross your {side} foot over your {other} knee.
            check: Tingling in the {side} leg? Say tingling.
            hold: "1m30s"
            rounds: 3
            rest: 10s
            settle: 4
            sides: [left, right]
            cues:
              - {at: 60, say: Breathe.}
              - {at: "30s", say: "{Side} knee toward the {other} shoulder."}
            countdown: {seconds: 5, style: tick}
            between: Pull a little closer.
            easier:
              say: Half the force.
              hold: 45
              rounds: 2
          - name: Lunges
            reps: 8
            pace: 4s
    """))
    fig4, lunges = routine.exercises
    assert (routine.description, routine.source, routine.safety) == ("All keys.", "A test.", "Go gently.")
    assert fig4.id == "fig4" and fig4.sides == ("left", "right")
    assert fig4.normal.hold_seconds == 90 and fig4.normal.rounds == 3 and fig4.normal.rest_seconds == 10
    assert fig4.settle_seconds == 4
    assert [(cue.at_seconds, cue.text) for cue in fig4.normal.cues] == [
        (30, "{Side} knee toward the {other} shoulder."), (60, "Breathe.")]
    assert fig4.normal.countdown is not None and fig4.normal.countdown.style == "tick"
    assert fig4.easier_is_scripted
    # Keys the easier level leaves out keep the normal values; cues past its hold are dropped.
    assert fig4.easier.say == "Half the force."
    assert fig4.easier.hold_seconds == 45 and fig4.easier.rounds == 2
    assert fig4.easier.check == fig4.normal.check and fig4.easier.between == fig4.normal.between
    assert [cue.at_seconds for cue in fig4.easier.cues] == [30]
    assert lunges.normal.reps == 8 and lunges.normal.pace_seconds == 4 and lunges.normal.hold_seconds is None
    assert lunges.easier.reps == 6 and not lunges.easier_is_scripted


def test_folded_text_is_joined_into_one_spoken_line(write_script: WriteScript) -> None:
    routine = load_routine(write_script("""
        title: T
        exercises:
          - name: Hug
            hold: 5
            say: |
              Lie down.
              Hug your knees.
    """))
    assert routine.exercises[0].normal.say == "Lie down. Hug your knees."


def test_doubled_braces_are_literal_braces(write_script: WriteScript) -> None:
    routine = load_routine(write_script("""
        title: "Braces {{ok}}"
        exercises:
          - {name: A, hold: 5, say: "Say {{this}}."}
          - {name: B, hold: 5, sides: [left], say: "{Side}: {{that}}."}
    """))
    assert routine.title == "Braces {ok}"
    assert routine.exercises[0].normal.say == "Say {this}."
    assert routine.exercises[1].normal.say == "{Side}: {{that}}."  # filled (and unescaped) per side by the plan


def test_derived_easier_is_a_third_shorter(write_script: WriteScript) -> None:
    routine = load_routine(write_script("""
        title: T
        exercises:
          - name: Hold
            hold: 15
            rounds: 4
            countdown: 3
            cues: [{at: 12, say: Nearly.}]
    """))
    easier = routine.exercises[0].easier
    assert easier.hold_seconds == 10 and easier.rounds == 4
    assert easier.cues == ()  # a cue at 12 s no longer fits a 10 s hold
    assert easier.countdown is not None and easier.countdown.seconds == 3


def test_reps_default_pace(write_script: WriteScript) -> None:
    routine = load_routine(write_script("""
        title: T
        exercises: [{name: Squats, reps: 5}]
    """))
    assert routine.exercises[0].normal.pace_seconds == DEFAULT_PACE_SECONDS


@pytest.mark.parametrize(("text", "line", "fragment"), [
    pytest.param("title: T\nexercises:\n  - name: A\n    hodl: 10\n", 4, "did you mean 'hold'?", id="near-miss-key"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    colour: red\n", 5, "the keys are",
                 id="unknown-key"),
    pytest.param("titel: T\nexercises: [{name: A, hold: 1}]\n", 1, "did you mean 'title'?", id="routine-key"),
    pytest.param("exercises: [{name: A, hold: 1}]\n", 1, "has no 'title'", id="missing-title"),
    pytest.param("title: T\n", 1, "has no 'exercises'", id="missing-exercises"),
    pytest.param("title: T\nexercises: []\n", 2, "at least one exercise", id="no-exercises"),
    pytest.param("title: T\nexercises:\n  - hold: 10\n", 3, "has no 'name'", id="missing-name"),
    pytest.param("title: T\nexercises:\n  - name: A\n    say: Lie down.\n", 3, "neither hold nor reps",
                 id="no-hold-or-reps"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 0\n", 4, "more than 0 seconds", id="zero-hold"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: -5\n", 4, "more than 0 seconds", id="negative-hold"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: ten\n", 4, '"1m30s"', id="hold-words"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10 sekunden\n", 4, "cannot read", id="bad-duration"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: yes\n", 4, "yes/no", id="hold-bool"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: .inf\n", 4, "finite", id="hold-infinite"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 3600\n", 4, "at most 600", id="hold-huge"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    rounds: 2.5\n", 5, "whole number",
                 id="fractional-rounds"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    rounds: 0\n", 5, "between 1 and",
                 id="zero-rounds"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    rounds: '3'\n", 5, "whole number",
                 id="rounds-text"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    rest: -1\n", 5, "0 or more", id="negative-rest"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    reps: 5\n", 5, "both hold and reps",
                 id="hold-and-reps"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    pace: 2\n", 5, "pace but no reps",
                 id="pace-without-reps"),
    pytest.param("title: T\nexercises:\n  - name: A\n    reps: 5\n    countdown: 3\n", 5, "countdown but no hold",
                 id="countdown-on-reps"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 3\n    countdown: 3\n", 5, "shorter than the 3-second",
                 id="countdown-too-long"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    countdown: {seconds: 3, style: beep}\n", 5,
                 "speak or tick", id="countdown-style"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    cues:\n      - {at: 10, say: Late.}\n", 6,
                 "not inside the 10-second hold", id="cue-after-hold"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    cues:\n      - {at: 0, say: Now.}\n", 6,
                 "more than 0 seconds", id="cue-at-zero"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    cues:\n      - {at: 5}\n", 6, "has no 'say'",
                 id="cue-without-say"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    cues:\n      - {at: 5, say: A}\n"
                 "      - {at: 5, say: B}\n", 7, "two cues at 5 seconds", id="cues-same-time"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    sides: right\n", 5, "must be a list",
                 id="sides-not-list"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    sides: [right, up]\n", 5, "sides are right and left",
                 id="bad-side"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    sides: [left, left]\n", 5, "twice",
                 id="side-twice"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    say: Lift your {side} leg.\n", 5,
                 "has no sides", id="placeholder-without-sides"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    sides: [right]\n    say: Lift the {sied} leg.\n",
                 6, "did you mean {side}?", id="placeholder-typo"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    sides: [right]\n    say: Lift the {side leg.\n",
                 6, "unmatched", id="placeholder-unclosed"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    sides: [right]\n    say: The {side!r} leg.\n",
                 6, "write just {side}", id="placeholder-conversion"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    say: 12\n", 5, "must be text", id="say-number"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    say: yes\n", 5, "put it in quotes", id="say-bool"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    say: ''\n", 5, "is empty", id="say-empty"),
    pytest.param("title: [T]\nexercises: [{name: A, hold: 1}]\n", 1, "must be text", id="title-list"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    easier:\n      hold: 20\n", 6,
                 "must not ask for more", id="easier-longer"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    rounds: 2\n    easier: {rounds: 3}\n", 6,
                 "must not ask for more", id="easier-more-rounds"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    easier:\n      reps: 3\n", 6,
                 "normal exercise is a hold", id="easier-reps-for-hold"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    easier:\n      sides: [left]\n", 6,
                 "exercise 1 (A) easier has the unknown key 'sides'", id="easier-sides"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    easier: gentler\n", 5, "must be a mapping",
                 id="easier-text"),
    pytest.param("title: T\nexercises:\n  - {name: A, hold: 1}\n  - {name: a, hold: 1}\n", 4, "used twice",
                 id="duplicate-id"),
    pytest.param("title: T\nexercises:\n  - {name: A, hold: 1, id: 'two words'}\n", 3, "one word", id="bad-id"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n    hold: 20\n", 5, "appears twice (first on line 4)",
                 id="duplicate-key"),
    pytest.param("title: T\nexercises:\n  - Knee hug\n", 3, "must be a mapping", id="exercise-as-text"),
    pytest.param("- title: T\n", 1, "the script must be a mapping", id="top-level-list"),
    pytest.param("just some words\n", 1, "the script must be a mapping", id="top-level-text"),
    pytest.param("title: T\nexercises:\n  - name: A\n    hold: 10\n\tsay: x\n", 5, "tab", id="tab-indent"),
    pytest.param("title: T\nexercises:\n  - name: A\n    say: Note: relax\n    hold: 10\n", 4,
                 'put text that contains ": " in quotes', id="unquoted-colon"),
    pytest.param("title: T\nexercises:\n  - name: 'A\n    hold: 10\n", 5, "YAML syntax error", id="unclosed-quote"),
    pytest.param("title: &t T\nexercises: [{name: *t, hold: 1}]\n", 1, "anchor or alias", id="alias"),
    pytest.param("title: !!python/object:os.system T\nexercises: [{name: A, hold: 1}]\n", 1, "YAML tag",
                 id="python-tag"),
    pytest.param("title: T\nexercises: [{name: A, hold: 1}]\n---\ntitle: U\n", 3, "second YAML document",
                 id="two-documents"),
    pytest.param("", 1, "empty", id="empty"),
    pytest.param("# only a comment\n\n", 1, "empty", id="only-comments"),
    pytest.param("title: T\nexercises: " + "[" * 50 + "]" * 50 + "\n", 2, "nests deeper", id="deep-nesting"),
])
def test_bad_scripts_name_the_line_and_the_fix(write_script: WriteScript, text: str, line: int, fragment: str) -> None:
    error = load_error(write_script, text)
    assert fragment in error.message
    assert error.line == line


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "photo.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ScriptError, match="binary file"):
        load_routine(path)


def test_latin1_text_names_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: T\nexercises:\n  - name: Étirement\n    hold: 10\n".encode("latin-1"))
    with pytest.raises(ScriptError, match="not UTF-8 text .* save the file as UTF-8") as caught:
        load_routine(path)
    assert caught.value.line == 3


def test_utf8_with_bom_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_routine(path).title == "Test routine"


def test_huge_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(MINIMAL.encode() + b"#" * (4 * 1024 * 1024))
    with pytest.raises(ScriptError, match="larger than 256 KB"):
        load_routine(path)


def test_alias_bomb_is_refused_quickly(write_script: WriteScript) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    error = load_error(write_script, "\n".join(lines) + "\n")
    assert "anchor or alias" in error.message


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="no such file"):
        load_routine(tmp_path / "nope.yaml")
    with pytest.raises(ScriptError, match="is a folder"):
        load_routine(tmp_path)


def test_python_tag_never_runs(write_script: WriteScript, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write_script(f'title: !!python/object/apply:os.system ["touch {marker}"]\nexercises: []\n')
    with pytest.raises(ScriptError):
        load_routine(path)
    assert not marker.exists()


@pytest.mark.parametrize("value, seconds", [
    (10, 10), (2.5, 2.5), ('"10"', 10), ('"90s"', 90), ('"1m30s"', 90), ('"2m"', 120), ('"1m 5s"', 65),
    ('"45 sec"', 45), ('"0.5s"', 0.5),
])
def test_durations(write_script: WriteScript, value: object, seconds: float) -> None:
    routine = load_routine(write_script(f"title: T\nexercises:\n  - name: A\n    hold: {value}\n"))
    assert routine.exercises[0].normal.hold_seconds == seconds
