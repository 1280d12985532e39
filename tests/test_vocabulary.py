"""The command vocabulary: whole-utterance commands, symptoms found anywhere, data checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from coach.errors import ScriptError
from coach.session.events import COMMANDS
from coach.session.vocabulary import load_vocabulary, normalize

EN = load_vocabulary("en")


def test_every_command_has_phrases_and_its_own_name() -> None:
    for command in COMMANDS:
        assert EN.phrases_for(command), command
    for command in COMMANDS:
        if command != "red_flag" and command != "end_session":
            assert EN.match(command) == command


@pytest.mark.parametrize("heard, command", [
    ("Numb", "tingling"),
    ("pins and needles", "tingling"),
    ("that's too much", "tingling"),
    ("my foot is going numb", "tingling"),
    ("Pins and needles, in my calf.", "tingling"),
    ("I have a sharp pain", "red_flag"),
    ("I can't feel my leg", "red_flag"),
    ("I can\u2019t feel my leg", "red_flag"),
    ("problem with my bladder", "red_flag"),
    ("numb and a sharp pain", "red_flag"),  # a red flag wins over tingling
    ("go on", "resume"),
    ("Skip!", "next"),
    ("end session", "end_session"),
])
def test_synonyms(heard: str, command: str) -> None:
    assert EN.match(heard) == command


@pytest.mark.parametrize("heard", [
    "I think the next one is harder",  # a sentence with a command word is not a command
    "stop it now please",
    "",
    "paws",
    "numbers",  # symptoms match whole words only
    "tinkling",
])
def test_not_commands(heard: str) -> None:
    assert EN.match(heard) is None


def test_normalize() -> None:
    assert normalize("  Can\u2019t   FEEL, my leg! ") == "can't feel my leg"


def test_unknown_language_names_the_choices() -> None:
    with pytest.raises(ScriptError, match="available: en"):
        load_vocabulary("xx")


@pytest.mark.parametrize("text, fragment", [
    ("commands: {}\n", "language"),
    ("language: en\ncommands:\n  jump: [jump]\n", "unknown command 'jump'"),
    ("language: en\ncommands:\n  pause: []\n", "list of phrases"),
    ("language: en\ncommands:\n  pause: [pause]\n  next: [Pause]\n", "already means pause"),
    ("language: en\ncommands:\n  pause: [pause]\n", "no phrases for resume"),
])
def test_broken_vocabulary_names_its_line(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "en.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ScriptError, match=fragment) as caught:
        load_vocabulary("en", tmp_path)
    assert str(tmp_path / "en.yaml") in str(caught.value)
