"""What a person may say for each live command, per language, from ``coach/vocab/<lang>.yaml``.

Two kinds of matching, because the two mistakes cost different things:

- An ordinary command ("next", "pause"...) is taken only when the whole utterance is one of its
  phrases. "I think the next one is harder" must not skip an exercise.
- A symptom ("numb", "pins and needles", "sharp pain"...) is taken wherever its words appear in
  the utterance, as whole words in order. "My foot is going numb" must ease off; an easier hold
  by mistake costs little, a missed report can cost a pressed nerve. Red-flag phrases win over
  tingling ones when both appear.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from coach.errors import ScriptError
from coach.session.events import COMMANDS, Command
from coach.yamlread import FileKind, Located, read_document

VOCAB_DIR = Path(__file__).resolve().parent.parent / "vocab"
SYMPTOMS: tuple[Command, ...] = ("red_flag", "tingling")
"""Found anywhere in an utterance, in this order of precedence."""

VOCABULARY = FileKind("vocabulary", "command vocabulary", "vocabulary",
                      "a vocabulary needs a language and its commands")


def normalize(text: str) -> str:
    """Lower case, apostrophes unified, punctuation dropped, single spaces: how phrases compare."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")
    text = re.sub(r"[^\w\s']", " ", text)
    return " ".join(word.strip("'") for word in text.split() if word.strip("'"))


@dataclass(frozen=True)
class Vocabulary:
    language: str
    phrases: dict[str, Command]
    """Normalized phrase -> canonical command."""

    def match(self, heard: str) -> Command | None:
        """The command ``heard`` means, or None (see the module docstring for the two rules)."""
        words = normalize(heard)
        if not words:
            return None
        padded = f" {words} "
        for symptom in SYMPTOMS:
            if any(f" {phrase} " in padded for phrase, command in self.phrases.items() if command == symptom):
                return symptom
        return self.phrases.get(words)

    def phrases_for(self, command: Command) -> tuple[str, ...]:
        return tuple(phrase for phrase, meant in self.phrases.items() if meant == command)


def load_vocabulary(language: str = "en", folder: Path = VOCAB_DIR) -> Vocabulary:
    """The bundled vocabulary for ``language``; a broken file names its line."""
    path = folder / f"{language}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "none"
        raise ScriptError(path, 0, f"no command vocabulary for language {language!r}; available: {known}")
    return parse_vocabulary(path, read_document(path, VOCABULARY))


def parse_vocabulary(path: Path, document: Located) -> Vocabulary:
    top = _mapping(path, document, "the file")
    language = top.get("language")
    if language is None or not isinstance(language.value, str):
        raise ScriptError(path, document.line, "add 'language: <code>', e.g. 'language: en'")
    commands = _mapping(path, top.get("commands") or Located({}, document.line), "commands")
    phrases: dict[str, Command] = {}
    for name, entry in commands.items():
        if name not in COMMANDS:
            raise ScriptError(path, entry.line, f"unknown command {name!r}; commands are: {', '.join(COMMANDS)}")
        if not isinstance(entry.value, list) or not entry.value:
            raise ScriptError(path, entry.line, f"give {name} a list of phrases, e.g. {name}: [{name}]")
        for item in entry.value:
            phrase = normalize(str(item.value)) if isinstance(item.value, (str, int)) else ""
            if not phrase:
                raise ScriptError(path, item.line, f"a phrase for {name} must be words")
            if phrases.get(phrase, name) != name:
                raise ScriptError(path, item.line,
                                  f"{phrase!r} already means {phrases[phrase]}; a phrase can mean one command")
            phrases[phrase] = name  # type: ignore[assignment]
    missing = [command for command in COMMANDS if command not in commands]
    if missing:
        raise ScriptError(path, document.line, f"no phrases for {', '.join(missing)}; every command needs one")
    return Vocabulary(language.value, phrases)


def _mapping(path: Path, node: Located, what: str) -> dict[str, Located]:
    if not isinstance(node.value, dict):
        raise ScriptError(path, node.line, f"{what} must be a mapping of names to values")
    return node.value  # type: ignore[return-value]
