"""Nothing but ``ScriptError`` escapes the loader, and every ScriptError reads well.

Whatever file a person points the coach at (random bytes, random text, a routine broken by a bad
edit, or something built to hurt a YAML loader), ``load_routine`` either returns a routine or
raises ``ScriptError`` whose text is one line, ``<path>:<line>: <message>``, with a line that
exists in the file.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Callable

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coach.errors import ScriptError
from coach.script import load_routine

REPO = Path(__file__).resolve().parent.parent
BUNDLED = {path.name: path.read_bytes() for path in sorted((REPO / "scripts").glob("*.yaml"),
                                                          key=lambda path: path.stat().st_size)}

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# The line breaks YAML 1.1 (and so PyYAML's error marks) counts.
_YAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def line_count(data: bytes) -> int:
    """Lines in the file as YAML counts them; a last line without a line break counts too."""
    text = data.decode("utf-8", errors="replace")
    breaks = len(_YAML_BREAK.findall(text))
    return breaks + (0 if not text or text[-1] in "\r\n\x85\u2028\u2029" else 1)


def check_error(path: Path, data: bytes, error: ScriptError) -> None:
    text = str(error)
    assert isinstance(error.line, int) and not isinstance(error.line, bool), repr(error.line)
    assert text.startswith(f"{path}:{error.line}: "), text
    assert 1 <= error.line <= line_count(data) + 1, (error.line, line_count(data), text)
    assert error.message.strip(), text
    assert "Traceback" not in text, text
    assert len(text.splitlines()) == 1, text
    assert "Located(" not in text, text  # the loader's own objects are not for people to read


def load(path: Path, data: bytes) -> ScriptError | None:
    """Write ``data`` to ``path`` and load it. Any exception but ScriptError propagates and fails the
    test; a ScriptError is checked and returned."""
    path.write_bytes(data)
    try:
        load_routine(path)
    except ScriptError as error:
        check_error(path, data, error)
        return error
    return None


def test_line_count() -> None:
    assert line_count(b"") == 0
    assert line_count(b"a") == 1
    assert line_count(b"a\n") == 1
    assert line_count(b"a\nb") == 2
    assert line_count(b"a\r\nb\r\n") == 2
    assert line_count(b"a\rb\r") == 2
    assert line_count("a\u2028b".encode()) == 2
    assert line_count(b"\n\n") == 2


# -- (a) and (b): random bytes and random text ----------------------------------------------------

@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes(tmp_path: Path, data: bytes) -> None:
    load(tmp_path / "random.yaml", data)


@FUZZ
@given(text=st.text(max_size=1000))
def test_random_text(tmp_path: Path, text: str) -> None:
    load(tmp_path / "random.yaml", text.encode("utf-8"))


# Pieces that mean something to a YAML scanner, resolver or constructor.
YAML_PIECES = [
    "\t", ":", ": ", " :", "-", "- ", "? ", ",", "[", "]", "{", "}", "#", "'", '"', "\\", "\\n", "\\x85",
    "|", ">", "|-", ">+", "&a ", "*a", "!", "!!str ", "!!int ", "!!binary ", "!!set ", "!!python/object:os.system",
    "!!float ", "!!bool ", "!!null ",
    "!local ", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "---", "...", "\n", "\r", "\r\n", "  ", "    ", "~", "null",
    "yes", "no", "on", "=", "<<", ".inf", "-.inf", ".nan", "0x_", "0b_", "0o7", "0_", "1_000", "190:20:30",
    "2024-02-30", "2024-13-45", "2001-12-14t21:59:43.10-05:00", "1e999", "1.0e+999", "-1", "0", "10", "2.5",
    "90s", "1m30s", "abc", "title", "exercises", "name", "hold", "reps", "sides", "right", "cues", "at", "say",
    "countdown", "seconds", "style", "easier", "{side}", "{x}", "é", "\u2028", "\x85", "\x0c", "\x07", "\x00",
    "\ufeff", "\U0001f600",
]
PIECE = st.one_of(st.sampled_from(YAML_PIECES), st.text(string.ascii_letters + string.digits + " ._-", max_size=4))
LINE = st.tuples(st.sampled_from(["", "", "  ", "    ", "- ", "  - "]), st.lists(PIECE, min_size=1, max_size=3),
                 st.sampled_from([": ", ":", " ", ""]), st.lists(PIECE, max_size=3)).map(
    lambda parts: parts[0] + "".join(parts[1]) + parts[2] + "".join(parts[3]))
YAML_SOUP = st.one_of(
    st.lists(PIECE, max_size=60).map("".join),  # pieces run together
    st.lists(LINE, max_size=12).map("\n".join),  # lines that look like "key: value"
)


@FUZZ
@given(text=YAML_SOUP)
def test_yaml_token_soup(tmp_path: Path, text: str) -> None:
    load(tmp_path / "soup.yaml", text.encode("utf-8"))


# -- (c): the bundled scripts, broken by random edits ------------------------------------------------

INSERTS = [piece.encode("utf-8") for piece in YAML_PIECES] + [
    b"\xff", b"\xfe", b"\xc3", b"\xef\xbb\xbf", b"&a", b"!!python/object/apply:os.system [\"true\"]", b"\t- ",
    b"\n\t", b"\n  - ", b"\n    ", b"\nzzz: 1\n", b'"a\\nb": 1\n',
]
NUMBER = re.compile(rb"\d+(?:\.\d+)?")
NUMBER_REPLACEMENTS = [b"-1", b"0", b"1e999", b'"abc"', b"abc", b"1.0e+999", b".nan", b"-.inf", b"0.4", b"601",
                       b"99999999999999999999999", b"1_0", b"0x10", b"2.", b"", b"[1]", b"{}", b"{a: 1}", b"~",
                       b"yes", b"=", b"<<", b"2024-13-45", b"0x_", b"10:61"]


def delete_slice(draw: st.DrawFn, data: bytes) -> bytes:
    start = draw(st.integers(0, len(data)))
    return data[:start] + data[start + draw(st.integers(1, 300)):]


def duplicate_slice(draw: st.DrawFn, data: bytes) -> bytes:
    start = draw(st.integers(0, len(data)))
    end = start + draw(st.integers(1, 300))
    return data[:end] + data[start:end] + data[end:]


def insert_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    at = draw(st.integers(0, len(data)))
    piece = draw(st.one_of(st.sampled_from(INSERTS), st.binary(min_size=1, max_size=8)))
    return data[:at] + piece * draw(st.integers(1, 3)) + data[at:]


def swap_lines(draw: st.DrawFn, data: bytes) -> bytes:
    lines = data.split(b"\n")
    first, second = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    lines[first], lines[second] = lines[second], lines[first]
    return b"\n".join(lines)


def replace_number(draw: st.DrawFn, data: bytes) -> bytes:
    numbers = list(NUMBER.finditer(data))
    if not numbers:
        return data
    number = numbers[draw(st.integers(0, len(numbers) - 1))]
    return data[:number.start()] + draw(st.sampled_from(NUMBER_REPLACEMENTS)) + data[number.end():]


MUTATIONS: list[Callable[[st.DrawFn, bytes], bytes]] = [
    delete_slice, duplicate_slice, insert_bytes, swap_lines, replace_number,
]


@st.composite
def mutated_scripts(draw: st.DrawFn) -> bytes:
    data = BUNDLED[draw(st.sampled_from(sorted(BUNDLED, key=lambda name: len(BUNDLED[name]))))]
    for _ in range(draw(st.integers(1, 5))):
        data = draw(st.sampled_from(MUTATIONS))(draw, data)
    return data


def test_bundled_scripts_load_unmutated(tmp_path: Path) -> None:
    assert len(BUNDLED) >= 3
    for name, data in BUNDLED.items():
        assert load(tmp_path / name, data) is None, name


@FUZZ
@given(data=mutated_scripts())
def test_mutated_bundled_scripts(tmp_path: Path, data: bytes) -> None:
    load(tmp_path / "mutated.yaml", data)


# -- (d): hostile inputs -----------------------------------------------------------------------

def billion_laughs(_: Path) -> bytes:
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"lol{level}: &lol{level} [{', '.join([f'*lol{level - 1}'] * 9)}]")
    lines.append("title: *lol9")
    return "\n".join(lines).encode()


def os_system_tag(where: str) -> Callable[[Path], bytes]:
    def build(tmp_path: Path) -> bytes:
        command = json.dumps(f"touch {tmp_path / 'pwned'}")
        tagged = f"!!python/object/apply:os.system [{command}]"
        if where == "top":
            return tagged.encode()
        return f"title: {tagged}\nexercises:\n  - name: x\n    hold: 5\n".encode()
    return build


def constant(data: bytes) -> Callable[[Path], bytes]:
    return lambda _: data


HOSTILE: list[tuple[str, Callable[[Path], bytes], tuple[str, ...], int | None]] = [
    # (id, file contents, the message names one of these, the line it names if there is one answer)
    ("billion laughs", billion_laughs, ("alias",), 1),
    ("10,000 nested [", constant(b"[" * 10_000), ("nests",), 1),
    ("100,000 nested - ", constant(b"- " * 100_000 + b"x\n"), ("nests",), 1),
    ("5 MB", constant(b"title: x\n" * (5 * 1024 * 1024 // 9)), ("larger",), 1),
    ("300 KB of comments", constant(b"# a comment, nothing more\n" * (300 * 1024 // 26)), ("larger",), 1),
    ("os.system tag, whole file", os_system_tag("top"), ("tag",), 1),
    ("os.system tag, in a value", os_system_tag("value"), ("tag",), 1),
    ("python/name tag", constant(b"title: !!python/name:os.system ''\n"), ("tag",), 1),
    ("local tag", constant(b"title: !shout hello\n"), ("tag",), 1),
    ("UTF-16 with BOM", constant("title: Stretches\nexercises: []\n".encode("utf-16")), ("UTF-8",), 1),
    ("Latin-1 with é", constant("# A routine\ntitle: Étirements\n".encode("latin-1")), ("UTF-8",), 2),
    ("NUL byte", constant(b"title: x\nsay: a\x00b\n"), ("binary",), 2),
    ("empty file", constant(b""), ("empty",), 1),
    ("whitespace only", constant(b"  \n\n    \n\n"), ("empty",), None),
    ("just ---", constant(b"---\n"), ("empty", "nothing"), None),
    ("list at top level", constant(b"- title: x\n- exercises: []\n"), ("mapping",), 1),
    ("two documents", constant(b"title: a\n---\ntitle: b\n"), ("second", "document"), 2),
    ("tab indentation", constant(b"title: x\nexercises:\n\t- name: y\n"), ("tab",), 3),
    ("control character on line 3", constant(b"title: x\nsource: y\nsafety: a\x07b\n"), ("character",), 3),
    ("form feeds, then a tab", constant(b"title: x\x0c\x0c\x0c\tsafety: y\n"), ("character",), 1),
]


@pytest.mark.parametrize(("build", "keywords", "line"), [case[1:] for case in HOSTILE],
                         ids=[case[0] for case in HOSTILE])
def test_hostile_input(tmp_path: Path, build: Callable[[Path], bytes], keywords: tuple[str, ...],
                       line: int | None) -> None:
    data = build(tmp_path)
    path = tmp_path / "hostile.yaml"
    error = load(path, data)
    assert error is not None, "the loader accepted a hostile file"
    assert any(keyword in error.message for keyword in keywords), error.message
    if line is not None:
        assert error.line == line, str(error)
    assert not (tmp_path / "pwned").exists(), "a YAML tag ran a command"


# Plain scalars that YAML's implicit resolvers turn into something other than text, and a quoted
# key holding a line break: as a key and as a value, each must load or give a sane ScriptError.
TRICKY_SCALARS = ["<<", "=", "~", "null", "yes", "1_000", "0x_", "0b_", "0o8", ".inf", ".nan", "2024-02-30",
                  "2024-13-45", "2001-12-14t21:59:43.10-05:00", "190:20:30", "!!binary AAAA", '"a\\nb"',
                  '"a\\u2028b"', "'a''b'", "!!int ''", "!!float ''", "!!bool ''", "!!bool maybe", "!!int 0x",
                  "!!float 1e"]


@pytest.mark.parametrize("scalar", TRICKY_SCALARS)
@pytest.mark.parametrize("position", ["key", "value"])
def test_tricky_scalar(tmp_path: Path, scalar: str, position: str) -> None:
    exercise = "  - name: Knee hug\n    hold: 10\n"
    if position == "key":
        text = f"title: x\n{scalar}: 1\nexercises:\n{exercise}"
    else:
        text = f"title: {scalar}\nexercises:\n{exercise}"
    error = load(tmp_path / "tricky.yaml", text.encode())
    if position == "key":  # no such key: always refused, on the key's line
        assert error is not None and error.line == 2, text
    else:  # a title that is not text is refused on its line; one that is text loads
        assert error is None or error.line == 1, str(error)


def test_os_system_payload_would_run_under_an_unsafe_loader(tmp_path: Path) -> None:
    """The tag test above is only worth something if its payload is live: PyYAML's unsafe loader
    does run it (a harmless touch in tmp_path)."""
    yaml.unsafe_load(os_system_tag("value")(tmp_path).decode())
    assert (tmp_path / "pwned").exists()


# Values of the wrong shape in every slot of an exercise: the message must describe them in the
# script's terms, on their line, and never show the loader's own objects.
SLOTS = {key: f"{key}: {{}}" for key in ("name", "id", "say", "check", "hold", "pace", "rounds", "rest", "settle",
                                        "sides", "cues", "countdown", "between", "easier")} | {
    "a side": "sides: [right, {}]",
    "countdown seconds": "countdown: {{seconds: {}}}",
    "countdown style": "countdown: {{seconds: 3, style: {}}}",
    "cue at": "cues: [{{at: {}, say: Breathe}}]",
    "cue say": "cues: [{{at: 1, say: {}}}]",
    "easier hold": "easier: {{hold: {}}}",
    "easier rounds": "easier: {{rounds: {}}}",
    "easier say": "easier: {{say: {}}}",
}
WRONG_SHAPES = ["[1]", "{a: 1}", "[[right]]", "[{at: 1}]", "[]", "{}"]


@pytest.mark.parametrize("shape", WRONG_SHAPES)
@pytest.mark.parametrize("slot", SLOTS)
def test_value_of_the_wrong_shape(tmp_path: Path, slot: str, shape: str) -> None:
    key = SLOTS[slot].split(":")[0]
    defaults = [line if not line.startswith(f"{key}:") else "rounds: 1" for line in ("name: Knee hug", "hold: 10")]
    text = "title: x\nexercises:\n  -\n" + "".join(f"    {line}\n" for line in (*defaults, SLOTS[slot].format(shape)))
    error = load(tmp_path / "shape.yaml", text.encode())
    assert error is None or error.line == 6, str(error)
