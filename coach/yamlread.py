"""Read one YAML document defensively and keep the line of every value.

Scripts come from people (and sometimes from a file picked by mistake), so everything a YAML
file can do to a loader is refused here with a message that names the line: huge or binary
files, text that is not UTF-8, tab indentation, anchors and aliases (the "billion laughs"
bomb), deep nesting (recursion limits), tags that ask for objects, several documents.
PyYAML's safe loader is used and nothing is ever constructed beyond plain scalars.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from coach.errors import ScriptError

MAX_SCRIPT_BYTES = 256 * 1024
"""A routine is a few kilobytes; anything far larger was picked by mistake."""

MAX_NESTING_DEPTH = 8
"""The format nests four levels deep (routine > exercises > exercise > easier > cues > cue)."""

# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_OTHER_UNICODE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"),
)
# What YAML (and PyYAML's line numbers) count as a line break, and the characters it refuses.
_LINE_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)


@dataclass(frozen=True)
class FileKind:
    """What the file being read is, as the reader's messages name it."""

    noun: str  # "script"
    long_noun: str  # "routine script"
    item: str  # what one file holds: "routine"
    empty_hint: str  # what an empty file lacks


SCRIPT = FileKind("script", "routine script", "routine", "a script needs at least a title and exercises")


@dataclass(frozen=True)
class Located:
    """A plain value (str, int, float, bool, None, list of Located, dict of str to Located) and
    the 1-based line it starts on."""

    value: object
    line: int


def read_document(path: Path, kind: FileKind = SCRIPT) -> Located:
    """Load ``path`` as one YAML document. Raises ``ScriptError`` for anything unusable."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SCRIPT_BYTES + 1)
    except IsADirectoryError:
        raise ScriptError(path, 1, f"is a folder, not a {kind.noun} file; give the path of a .yaml file") from None
    except FileNotFoundError:
        raise ScriptError(path, 1, "no such file; check the path") from None
    except OSError as error:
        raise ScriptError(path, 1, f"cannot be read ({error.strerror}); check its permissions") from None
    text = _decode(path, data, kind)
    return parse_document(path, text, kind)


def parse_document(path: Path, text: str, kind: FileKind = SCRIPT) -> Located:
    """Parse YAML ``text`` (already decoded) that came from ``path``."""
    _refuse_unprintable(path, text)
    _refuse_tab_indentation(path, text)
    _scan_events(path, text, kind)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:  # the event scan parses the same text, so this is a safety net
        raise _syntax_error(path, error) from None
    if node is None:
        raise ScriptError(path, 1, f"the file is empty; {kind.empty_hint}")
    return _to_located(path, node)


def _decode(path: Path, data: bytes, kind: FileKind) -> str:
    if len(data) > MAX_SCRIPT_BYTES:
        raise ScriptError(
            path, 1, f"is larger than {MAX_SCRIPT_BYTES // 1024} KB; a {kind.long_noun} is a small text file"
        )
    for bom, encoding in _OTHER_UNICODE_BOMS:
        if data.startswith(bom):
            raise ScriptError(path, 1, f"is {encoding} text; save the file as UTF-8")
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise ScriptError(path, line, f"is a binary file, not a YAML text {kind.noun}")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ScriptError(
            path, line, f"is not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8"
        ) from None


def _refuse_unprintable(path: Path, text: str) -> None:
    match = _NOT_PRINTABLE.search(text)
    if match:
        line = len(_LINE_BREAKS.findall(text, 0, match.start())) + 1
        raise ScriptError(path, line, f"contains the control character U+{ord(match.group()):04X}; remove it")


def _refuse_tab_indentation(path: Path, text: str) -> None:
    for number, line in enumerate(_LINE_BREAKS.split(text), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            raise ScriptError(path, number, "is indented with a tab; YAML needs spaces for indentation")


def _scan_events(path: Path, text: str, kind: FileKind) -> None:
    """Walk the parser's event stream (iterative, so no recursion) before building any tree."""
    depth = 0
    documents = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            line = event.start_mark.line + 1
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise ScriptError(
                    path, line, "uses a YAML anchor or alias (& or *); write the value out in full instead"
                )
            tag = getattr(event, "tag", None)
            if tag not in (None, "!") and tag not in _PLAIN_TAGS:
                raise ScriptError(path, line, f"uses the YAML tag {tag!r}; remove it, {kind.noun}s hold plain values only")
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise ScriptError(path, line, f"holds a second YAML document (---); put one {kind.item} in each file")
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_NESTING_DEPTH:
                    raise ScriptError(
                        path, line, f"nests deeper than {MAX_NESTING_DEPTH} levels; the {kind.noun} format is much flatter"
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError as error:
        raise _syntax_error(path, error) from None


def _syntax_error(path: Path, error: yaml.YAMLError) -> ScriptError:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = mark.line + 1 if mark is not None else 1
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    hint = _SYNTAX_HINTS.get(_hint_key(problem), "check the indentation and quoting on this line or the one above")
    return ScriptError(path, line, f"YAML syntax error: {problem}; {hint}")


_SYNTAX_HINTS = {
    "mapping values": 'put text that contains ": " in quotes, e.g. say: "Note: relax"',
    "could not find expected ':'": "a key needs a colon after it, e.g. hold: 10",
    "found undefined alias": "remove the * alias and write the value out",
    "found unexpected end of stream": "a quote or bracket is not closed",
    "found character": "remove the character or put the text in quotes",
}


def _hint_key(problem: str) -> str:
    for key in _SYNTAX_HINTS:
        if key in problem:
            return key
    return ""


def _to_located(path: Path, node: yaml.Node) -> Located:
    """Turn a composed node tree into ``Located`` values. Depth is bounded by the event scan."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Located] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ScriptError(path, key_line, "a key must be a plain word, not a list or mapping")
            key = _scalar(path, key_node)
            if not isinstance(key, str):
                raise ScriptError(path, key_line, f"the key {short_value(key)} must be a word, e.g. hold or say")
            if key in mapping:
                raise ScriptError(
                    path, key_line, f"the key {short_value(key)} appears twice (first on line {first_line[key]}); keep one"
                )
            first_line[key] = key_line
            mapping[key] = _to_located(path, value_node)
        return Located(mapping, line)
    if isinstance(node, yaml.SequenceNode):
        return Located([_to_located(path, item) for item in node.value], line)
    return Located(_scalar(path, node), line)


def _scalar(path: Path, node: yaml.Node) -> object:
    """A plain value; YAML's implicit types can fail here (a date like 2024-02-30, ``=``, ``<<``)."""
    try:
        # A fresh constructor each time: a shared one caches every node it built, and with it the file.
        return yaml.constructor.SafeConstructor().construct_object(node)
    except (yaml.YAMLError, ValueError, OverflowError, IndexError, KeyError, TypeError):
        # PyYAML's scalar constructors raise all of these for explicit tags with bad text (!!int '').
        line = node.start_mark.line + 1
        raise ScriptError(path, line, f"cannot read the value {short_value(node.value)}; put it in quotes") from None


def short_value(value: object) -> str:
    """A value quoted for a one-line message: repr keeps line breaks escaped; long values are cut."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
