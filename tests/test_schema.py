"""The JSON Schema for editors (coach/schema/routine.schema.json) stays in step with the loader.

The loader (``coach.script.load_routine``) defines the format; the schema mirrors it so editors
can complete keys and flag mistakes. The schema may be more lenient than the loader (it cannot
express "a cue must fall inside the hold"), but it must never reject a script the loader accepts,
and it must know exactly the keys the loader knows.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from coach import script
from coach.duration import parse_duration_seconds
from coach.errors import ScriptError
from coach.script import load_routine

REPO = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO / "coach" / "schema" / "routine.schema.json"
BUNDLED = sorted((REPO / "scripts").glob("*.yaml"))
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def schema_errors(instance: object) -> list[str]:
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in VALIDATOR.iter_errors(instance)]


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by two keys out twice: the loader refuses anchors and aliases."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def dump(document: object) -> str:
    return yaml.dump(document, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True)


def write_yaml(path: Path, document: object) -> Path:
    path.write_text(dump(document), encoding="utf-8")
    return path


def loader_accepts(path: Path) -> bool:
    try:
        load_routine(path)
    except ScriptError:
        return False
    return True


# -- the schema itself and the bundled scripts ---------------------------------------------------

def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_there_are_bundled_scripts() -> None:
    assert len(BUNDLED) >= 3, BUNDLED


@pytest.mark.parametrize("path", BUNDLED, ids=lambda path: path.name)
def test_bundled_script_validates_against_the_schema(path: Path) -> None:
    load_routine(path)  # the loader accepts it (raises otherwise) ...
    instance = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert schema_errors(instance) == []  # ... and so does the schema


# -- the keys at each level equal the loader's key tuples ----------------------------------------

def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s (``#/$defs/...``) the way a validator does."""
    seen = set()
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local references are expected, got {ref}"
        assert ref not in seen, f"reference loop at {ref}"
        seen.add(ref)
        node = SCHEMA
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def routine_node() -> dict[str, Any]:
    return resolve(SCHEMA)


def exercise_node() -> dict[str, Any]:
    return resolve(routine_node()["properties"]["exercises"]["items"])


def easier_node() -> dict[str, Any]:
    return resolve(exercise_node()["properties"]["easier"])


def cue_node() -> dict[str, Any]:
    return resolve(resolve(exercise_node()["properties"]["cues"])["items"])


def countdown_node() -> dict[str, Any]:
    countdown = resolve(exercise_node()["properties"]["countdown"])
    objects = [resolve(branch) for branch in countdown.get("anyOf", countdown.get("oneOf", [countdown]))
               if resolve(branch).get("type") == "object"]
    assert len(objects) == 1, "the countdown schema should have exactly one mapping form"
    return objects[0]


LEVELS: list[tuple[str, Callable[[], dict[str, Any]], tuple[str, ...]]] = [
    ("routine", routine_node, script.ROUTINE_KEYS),
    ("exercise", exercise_node, script.EXERCISE_KEYS),
    ("easier", easier_node, script.EASIER_KEYS),
    ("cue", cue_node, script.CUE_KEYS),
    ("countdown", countdown_node, script.COUNTDOWN_KEYS),
]


@pytest.mark.parametrize(("level", "node", "keys"), LEVELS, ids=[level for level, _, _ in LEVELS])
def test_schema_allows_exactly_the_loader_keys(level: str, node: Callable[[], dict[str, Any]],
                                               keys: tuple[str, ...]) -> None:
    schema = node()
    assert schema.get("type") == "object", level
    # Without additionalProperties: false the schema would allow any key at all.
    assert schema.get("additionalProperties") is False, level
    assert "patternProperties" not in schema, level
    assert sorted(schema["properties"]) == sorted(keys), level
    assert set(schema.get("required", ())) <= set(keys), level


def test_easier_level_shares_its_definitions_with_the_exercise() -> None:
    exercise, easier = exercise_node()["properties"], easier_node()["properties"]
    for key in script.EASIER_KEYS:
        assert resolve(easier[key]) == resolve(exercise[key]), key


# -- explicit cases ----------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "title": "Test routine",
    "exercises": [
        {
            "name": "Figure four",
            "sides": ["right", "left"],
            "say": "Cross your {side} foot over your {other} knee.",
            "hold": 20,
            "countdown": {"seconds": 3, "style": "tick"},
            "cues": [{"at": 5, "say": "Breathe."}],
            "easier": {"hold": 10},
        },
        {"name": "Bridge", "reps": 8, "pace": 4},
    ],
}


def edited(edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    edit(document)
    return document


def test_base_document_is_accepted_by_both(tmp_path: Path) -> None:
    assert loader_accepts(write_yaml(tmp_path / "base.yaml", BASE))
    assert schema_errors(BASE) == []


REJECTED = {
    "unknown top-level key": lambda d: d.update(author="me"),
    "unknown exercise key": lambda d: d["exercises"][0].update(hodl=10),
    "unknown easier key": lambda d: d["exercises"][0]["easier"].update(sides=["right"]),
    "unknown cue key": lambda d: d["exercises"][0]["cues"][0].update(when=3),
    "unknown countdown key": lambda d: d["exercises"][0]["countdown"].update(volume=3),
    "hold as text 'ten'": lambda d: d["exercises"][0].update(hold="ten"),
    "sides [up]": lambda d: d["exercises"][0].update(sides=["up"]),
    "sides twice right": lambda d: d["exercises"][0].update(sides=["right", "right"]),
    "hold and reps": lambda d: d["exercises"][1].update(hold=10),
    "neither hold nor reps": lambda d: d["exercises"][1].pop("reps"),
    "no title": lambda d: d.pop("title"),
    "empty title": lambda d: d.update(title="   "),
    "no exercises": lambda d: d.update(exercises=[]),
    "reps 0": lambda d: d["exercises"][1].update(reps=0),
    "reps 2.5": lambda d: d["exercises"][1].update(reps=2.5),
    "rounds as yes": lambda d: d["exercises"][1].update(rounds=True),
    "countdown 11": lambda d: d["exercises"][0].update(countdown=11),
    "countdown style loud": lambda d: d["exercises"][0]["countdown"].update(style="loud"),
    "cue without say": lambda d: d["exercises"][0]["cues"][0].pop("say"),
    "id with a space": lambda d: d["exercises"][0].update(id="figure four"),
    "41 exercises": lambda d: d.update(exercises=[{"name": f"Exercise {n}", "hold": 10} for n in range(41)]),
    "21 cues": lambda d: d["exercises"][0].update(hold=30, cues=[{"at": n, "say": "x"} for n in range(1, 22)]),
    "reps 101": lambda d: d["exercises"][1].update(reps=101),
    "rounds 21": lambda d: d["exercises"][1].update(rounds=21),
    "countdown 0": lambda d: d["exercises"][0].update(countdown=0),
    "exercises as a mapping": lambda d: d.update(exercises=d["exercises"][1]),
    "easier as text": lambda d: d["exercises"][0].update(easier="gentler"),
}


@pytest.mark.parametrize("edit", REJECTED.values(), ids=REJECTED.keys())
def test_schema_rejects(tmp_path: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    document = edited(edit)
    assert schema_errors(document) != []
    # The schema is never stricter than the loader, so the loader must refuse these too.
    assert not loader_accepts(write_yaml(tmp_path / "rejected.yaml", document))


ACCEPTED = {
    "reps written 8.0": lambda d: d["exercises"][1].update(reps=8.0),
    "rounds written 2.0": lambda d: d["exercises"][1].update(rounds=2.0),
    "countdown written 3.0": lambda d: d["exercises"][0].update(countdown=3.0),
    "countdown as a number": lambda d: d["exercises"][0].update(countdown=3),
    "countdown without style": lambda d: d["exercises"][0]["countdown"].pop("style"),
    "hold 1m30s": lambda d: d["exercises"][0].update(hold="1m30s"),
    "hold ' 90 s '": lambda d: d["exercises"][0].update(hold=" 90 s "),
    "hold 2.5": lambda d: d["exercises"][0].update(hold=2.5, cues=[{"at": 1, "say": "x"}], countdown=1,
                                                   easier={"hold": 0.5}),
    "hold 1min": lambda d: d["exercises"][0].update(hold="1min"),
    "hold '20'": lambda d: d["exercises"][0].update(hold="20"),
    "pace 2.5s": lambda d: d["exercises"][1].update(pace="2.5s"),
    "rest 0": lambda d: d["exercises"][1].update(rest=0),
    "settle 0": lambda d: d["exercises"][1].update(settle=0),
    "cue at 2s": lambda d: d["exercises"][0]["cues"][0].update(at="2s"),
    "sides [left]": lambda d: d["exercises"][0].update(sides=["left"]),
    "id with digits and dashes": lambda d: d["exercises"][0].update(id="fig-4_b"),
    "id with an accent": lambda d: d["exercises"][0].update(id="étirement"),
    "easier with only say": lambda d: d["exercises"][1].update(easier={"say": "Slower."}),
    "easier empty mapping": lambda d: d["exercises"][1].update(easier={}),
    "every routine key": lambda d: d.update(description="D.", source="S.", safety="Go gently."),
    "40 exercises": lambda d: d.update(exercises=[{"name": f"Exercise {n}", "hold": 10} for n in range(40)]),
    "20 cues": lambda d: d["exercises"][0].update(hold=30, cues=[{"at": n, "say": "x"} for n in range(1, 21)]),
    "hold 600, countdown 10": lambda d: d["exercises"][0].update(hold=600, countdown=10),
    "hold 0.5": lambda d: d["exercises"].__setitem__(0, {"name": "Knee hug", "hold": 0.5}),
    "reps 100, rounds 20, pace 30": lambda d: d["exercises"][1].update(reps=100, rounds=20, pace=30),
    "pace 1": lambda d: d["exercises"][1].update(pace=1),
    "rest 600, settle 120": lambda d: d["exercises"][1].update(rest=600, settle=120),
    "title of 1200 characters": lambda d: d.update(title="x" * 1200),
    "text with {{braces}}": lambda d: d.update(title="Use {{braces}}"),
}


@pytest.mark.parametrize("edit", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_schema_accepts_what_the_loader_accepts(tmp_path: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    path = write_yaml(tmp_path / "accepted.yaml", edited(edit))
    load_routine(path)  # raises if the loader refuses: then the case itself is wrong
    assert schema_errors(yaml.safe_load(path.read_text(encoding="utf-8"))) == []


# -- property: the schema is never stricter than the loader ---------------------------------------

ALL_KEYS = sorted(set(script.ROUTINE_KEYS + script.EXERCISE_KEYS + script.EASIER_KEYS
                      + script.CUE_KEYS + script.COUNTDOWN_KEYS))

SCALARS = st.one_of(
    st.integers(-5, 1000),
    st.integers(),
    st.floats(),  # includes nan, inf, -0.0
    st.booleans(),
    st.none(),
    st.sampled_from(["90s", "1m30s", "2m", "abc", "ten", "", " ", "0", "-1", "1e999", "10 s", "1h",
                     "0.5", "right", "left", "up", "speak", "tick", "{side}", "a-b"]),
    st.text(max_size=8),
)
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from([*ALL_KEYS, "zzz"]), inner,
                                                                max_size=3),
    max_leaves=5,
)


def one_in(times: int) -> st.SearchStrategy[bool]:
    """True one time in ``times``; examples shrink to False."""
    return st.sampled_from([False] * (times - 1) + [True])


@dataclass(frozen=True)
class Field:
    """The values one key can get: ``valid`` ones the loader takes on their own (edge values
    included; rules across keys may still refuse them) and ``invalid`` ones, a plausible mistake
    or a value of any type at all."""

    valid: st.SearchStrategy[Any]
    invalid: st.SearchStrategy[Any]


def field(valid: st.SearchStrategy[Any], mistakes: st.SearchStrategy[Any]) -> Field:
    return Field(valid, st.one_of(mistakes, JUNK))


class Faults:
    """How many mistakes the document being drawn may still get, so that many documents load."""

    def __init__(self, left: int) -> None:
        self.left = left

    def take(self, draw: st.DrawFn, odds: int) -> bool:
        if self.left and draw(one_in(odds)):
            self.left -= 1
            return True
        return False

    def value(self, draw: st.DrawFn, field: Field) -> Any:
        return draw(field.invalid if self.take(draw, 4) else field.valid)


PLAIN_TEXT = st.one_of(
    st.sampled_from(["Knee hug", "Lie on your back.", "Note: relax", "Étirement doux", " padded\n text ",
                     "x" * 1200, "Use {{braces}}", "1", "yes", "- dash", "# hash"]),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="{}"), min_size=1, max_size=12)
    .filter(lambda text: text.strip()),
)
TEXT_MISTAKES = st.sampled_from(["", "   ", "\u00a0\t", "{sid}", "{", "}", "{0}", "x" * 1201, "{side}"])
TEXT = field(PLAIN_TEXT, TEXT_MISTAKES)
SPOKEN = field(  # placeholders are fine when the exercise has sides
    st.one_of(PLAIN_TEXT, st.sampled_from(["Cross your {side} foot over your {other} knee.", "{Side}, then {Other}."])),
    TEXT_MISTAKES,
)
@st.composite
def duration_text(draw: st.DrawFn, low: int, high: int) -> str:
    """A duration the way people write it: "45", "90s", "1m30s", "1 min 5 sec", " 0h2m ", "2.5s"."""
    seconds = draw(st.integers(low, high))
    minutes, rest = divmod(seconds, 60)
    space = draw(st.sampled_from(["", " "]))
    form = draw(st.sampled_from(["units", "units", "plain", "decimal"]))
    if form == "plain":
        text = str(seconds)
    elif form == "decimal":
        text = f"{seconds}.5{space}{draw(st.sampled_from(['', 's', 'sec']))}" if seconds < high else f"{seconds}.0"
    else:
        parts = [f"0{space}h"] if draw(one_in(6)) else []
        if minutes:
            parts.append(f"{minutes}{space}{draw(st.sampled_from(['m', 'min']))}")
        if rest or not minutes:
            parts.append(f"{rest}{space}{draw(st.sampled_from(['s', 'sec']))}")
        text = space.join(parts)
    return draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", " "]))


HOLD = field(
    st.one_of(st.integers(10, 60), duration_text(10, 600),
              st.sampled_from([0.5, 600, 600.0, "1m", "90s", " 45 s ", "1m30s", "20", "12.5", "10sec", "1min",
                               "\u0661\u0662"])),
    st.one_of(st.sampled_from([0, -1, 0.4, 601, "ten", "abc", "", "1e999", "10m", "1m30", "1h", "-5"]),
              st.floats()),
)
EASIER_HOLD = field(st.integers(3, 10) | st.sampled_from([0.5, 1]), st.sampled_from([0, 700, "long"]))
EASIER_CUE_AT = field(st.sampled_from([0.5, 1, "1.5s", 2]), st.sampled_from([0, -1, 700]))
EASIER_COUNTDOWN = field(st.one_of(st.integers(1, 2), st.fixed_dictionaries({"seconds": st.integers(1, 2)},
                                                                            optional={"style": st.just("tick")})),
                         st.sampled_from([0, 11, {"style": "tick"}]))
CUE_AT = field(st.integers(1, 9) | duration_text(1, 8) | st.sampled_from(["5s", 2.5, 0.5]),
               st.sampled_from([0, -1, 700, "soon"]))
PACE = field(st.integers(1, 30) | duration_text(1, 29) | st.sampled_from([1.5, "2.5s", "30"]),
             st.sampled_from([0, 0.5, 31, "fast"]))
REST = field(st.integers(0, 600) | duration_text(0, 599) | st.sampled_from([0.0, "1m", "0s"]),
             st.sampled_from([-1, 601, "long"]))
SETTLE = field(st.integers(0, 120) | duration_text(0, 119) | st.sampled_from([0.0, "2m"]),
               st.sampled_from([-1, 121, "soon"]))
WHOLE_MISTAKES = st.sampled_from([0, -1, 101, 2.5, "3", True, 1e300, None])
REPS = field(st.integers(5, 100) | st.just(8.0), WHOLE_MISTAKES)
EASIER_REPS = field(st.integers(1, 5), WHOLE_MISTAKES)
ROUNDS = field(st.integers(1, 20) | st.just(2.0), WHOLE_MISTAKES)
EASIER_ROUNDS = field(st.sampled_from([1, 1.0]), WHOLE_MISTAKES)
COUNTDOWN = field(
    st.one_of(st.integers(1, 5) | st.just(3.0),
              st.fixed_dictionaries({"seconds": st.integers(1, 5), "style": st.sampled_from(["speak", "tick"])}),
              st.fixed_dictionaries({"seconds": st.integers(1, 5)}, optional={"style": st.just("tick")})),
    st.sampled_from([0, 11, "3", {"style": "tick"}, {"seconds": 3, "style": "loud"}, {"seconds": 3, "volume": 1},
                     {"seconds": 0}]),
)


def cues_field(say: Field, at: Field = CUE_AT, most: int = 4) -> Field:
    cue = st.fixed_dictionaries({"at": at.valid, "say": say.valid})
    return field(
        st.lists(cue, max_size=most, unique_by=lambda item: parse_duration_seconds(item["at"])),
        st.one_of(st.lists(st.fixed_dictionaries({}, optional={"at": st.one_of(CUE_AT.valid, CUE_AT.invalid),
                                                               "say": say.invalid, "when": st.just(3)}),
                           min_size=1, max_size=2),
                  st.lists(cue, min_size=21, max_size=21),
                  st.sampled_from([{"at": 5, "say": "x"}, "at 5 say breathe"])),
    )


SIDES = field(
    st.sampled_from([["right", "left"], ["left", "right"], ["right"], ["left"]]),
    st.sampled_from([["up"], ["right", "right"], [], "right", ["Right"], ["right", "left", "right"]]),
)
IDENTIFIER = field(
    st.one_of(st.sampled_from(["fig4", "figure-four", "a_b", "étirement", "x\n"]),
              st.from_regex(r"\A[a-z0-9_][a-z0-9_-]{0,6}\Z")),
    st.sampled_from(["-x", "a b", "", "a.b", 3, "x-\n-"]),
)


def level_fields(spoken: Field) -> dict[str, Field]:
    return {"say": spoken, "check": spoken, "hold": HOLD, "reps": REPS, "pace": PACE, "rounds": ROUNDS,
            "rest": REST, "between": spoken, "cues": cues_field(spoken), "countdown": COUNTDOWN}


def exercise_fields(spoken: Field) -> dict[str, Field]:
    return {**level_fields(spoken), "name": TEXT, "id": IDENTIFIER, "sides": SIDES, "settle": SETTLE}


def easier_fields(spoken: Field) -> dict[str, Field]:
    return {**level_fields(spoken), "hold": EASIER_HOLD, "reps": EASIER_REPS, "rounds": EASIER_ROUNDS,
            "cues": cues_field(spoken, EASIER_CUE_AT, 2), "countdown": EASIER_COUNTDOWN}


FIELDS = {  # by whether the exercise has sides, which allows {side} placeholders in spoken text
    has_sides: (exercise_fields(SPOKEN if has_sides else TEXT), easier_fields(SPOKEN if has_sides else TEXT))
    for has_sides in (False, True)
}
ROUTINE_FIELDS = {"title": TEXT, "description": TEXT, "source": TEXT, "safety": TEXT}
STRANGE_KEYS = st.sampled_from(["zzz", "hodl", "Title", "side", "note", *ALL_KEYS])
ONLY_FOR = {"pace": "reps", "cues": "hold", "countdown": "hold"}  # keys that belong to one kind of exercise


def keyed(draw: st.DrawFn, faults: Faults, fields: dict[str, Field], usual: tuple[str, ...],
          optional: tuple[str, ...], optional_odds: int = 3) -> dict[str, Any]:
    """A mapping with the ``usual`` keys (unless a fault drops one), a random subset of the
    ``optional`` ones, and perhaps (a fault) a key the loader does not know at this level."""
    document: dict[str, Any] = {}
    for key in usual:
        if not faults.take(draw, 12):
            document[key] = faults.value(draw, fields[key])
    for key in optional:
        if draw(one_in(optional_odds)):
            document[key] = faults.value(draw, fields[key])
    if faults.take(draw, 12):
        document[draw(STRANGE_KEYS)] = draw(JUNK)
    return document


def exercise(draw: st.DrawFn, faults: Faults) -> dict[str, Any]:
    timing = draw(st.sampled_from([("hold",), ("reps",)]))
    if faults.take(draw, 12):
        timing = draw(st.sampled_from([("hold", "reps"), ()]))
    has_sides = draw(st.booleans())
    if faults.take(draw, 12):
        has_sides = not has_sides  # placeholders without sides, or sides without placeholders (fine)
    fields, easier = FIELDS[has_sides]

    def fits(key: str) -> bool:
        return key not in ONLY_FOR or ONLY_FOR[key] in timing

    optional = tuple(key for key in script.EXERCISE_KEYS
                     if key not in ("name", "hold", "reps", "easier", "sides") and fits(key))
    if faults.take(draw, 12):
        optional += tuple(key for key in ONLY_FOR if not fits(key))
    document = keyed(draw, faults, fields, ("name", *timing), optional)
    if has_sides:
        document["sides"] = faults.value(draw, SIDES)
    if not draw(one_in(3)):
        if faults.take(draw, 12):
            document["easier"] = draw(st.one_of(st.sampled_from([None, "gentler", [], {"hold": 5, "reps": 2}]), JUNK))
        else:
            easier_timing = tuple(key for key in timing if draw(st.booleans()))
            easier_optional = tuple(key for key in script.EASIER_KEYS if key not in ("hold", "reps") and fits(key))
            document["easier"] = keyed(draw, faults, easier, easier_timing, easier_optional, optional_odds=2)
    return document


@st.composite
def routines(draw: st.DrawFn) -> object:
    """Routine documents: most are valid or nearly so, each has at most three mistakes."""
    faults = Faults(draw(st.sampled_from([0, 0, 1, 1, 2, 3])))
    if faults.take(draw, 30):
        return draw(st.one_of(st.lists(JUNK, max_size=2), JUNK))
    document = keyed(draw, faults, ROUTINE_FIELDS, ("title",), ("description", "source", "safety"))
    if faults.take(draw, 12):
        mistake = draw(st.sampled_from(["missing", "empty", "single", "too many"]))
        if mistake == "empty":
            document["exercises"] = []
        elif mistake == "single":
            document["exercises"] = exercise(draw, faults)
        elif mistake == "too many":
            document["exercises"] = [{"name": f"Exercise {number}", "hold": 10} for number in range(41)]
    else:
        document["exercises"] = [exercise(draw, faults) for _ in range(draw(st.integers(1, 3)))]
    return document


ROUTINES = routines()


def keys_used(document: object) -> set[str]:
    """``level.key`` for every key of every level in a routine document."""
    used: set[str] = set()
    if not isinstance(document, dict):
        return used
    used |= {f"routine.{key}" for key in document}
    exercises = document.get("exercises")
    for exercise in exercises if isinstance(exercises, list) else ():
        used |= {f"exercise.{key}" for key in exercise}
        easier = exercise.get("easier")
        if isinstance(easier, dict):
            used |= {f"easier.{key}" for key in easier}
        for level in (exercise, easier if isinstance(easier, dict) else {}):
            if isinstance(level.get("countdown"), dict):
                used |= {f"countdown.{key}" for key in level["countdown"]}
            for cue in level.get("cues") if isinstance(level.get("cues"), list) else ():
                used |= {f"cue.{key}" for key in cue}
    return used


def test_generator_reaches_every_key_in_documents_the_loader_accepts(tmp_path: Path) -> None:
    """Guards the property below against a generator that only makes broken documents, or never
    uses some key in a document that loads."""
    path = tmp_path / "generated.yaml"
    outcomes: list[bool] = []
    used: set[str] = set()

    # Ten documents per example: within one example Hypothesis draws them independently, so the
    # 600 documents cover the generator's range better than 600 examples that mutate each other.
    @settings(max_examples=60, database=None, deadline=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(documents=st.lists(ROUTINES, min_size=10, max_size=10))
    def sample(documents: list[object]) -> None:
        for document in documents:
            outcomes.append(loader_accepts(write_yaml(path, document)))
            if outcomes[-1]:
                used.update(keys_used(document))

    sample()
    assert sum(outcomes) >= 0.2 * len(outcomes), f"{sum(outcomes)} of {len(outcomes)} documents load"
    expected = {f"{level}.{key}" for level, _, keys in LEVELS for key in keys}
    assert sorted(expected - used) == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=ROUTINES)
def test_schema_is_never_stricter_than_the_loader(tmp_path: Path, document: object) -> None:
    path = write_yaml(tmp_path / "generated.yaml", document)
    if not loader_accepts(path):
        event("loader refuses")
        return
    event("loader accepts")
    instance = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert schema_errors(instance) == [], dump(document)
