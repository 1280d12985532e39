"""The coach command through click's runner: exit codes, stdout data, stderr messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner, Result

from coach import __version__
from coach.cli import cli
from tests.conftest import SCRIPTS

WriteScript = Callable[..., Path]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.stdout


def test_list_json_has_every_bundled_routine() -> None:
    result = run("list", "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    ids = {row["id"] for row in rows}
    assert {"piriformis", "leg-numbness", "quick"} <= ids
    for row in rows:
        assert {"id", "title", "path", "total_seconds"} <= row.keys()
        assert Path(row["path"]).is_file() and row["total_seconds"] > 0
    quick = next(row for row in rows if row["id"] == "quick")
    assert quick["total_seconds"] <= 60


def test_list_table() -> None:
    result = run("list")
    assert result.exit_code == 0
    assert "piriformis" in result.stdout and "Piriformis syndrome" in result.stdout
    assert result.stderr == ""


def test_user_routines_are_listed_and_shadow_bundled_ones(coach_home: Path) -> None:
    folder = coach_home / "routines"
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text("title: Mine\nexercises: [{name: A, hold: 5}]\n")
    (folder / "quick.yaml").write_text("title: My quick\nexercises: [{name: B, hold: 5}]\n")
    (folder / "broken.yaml").write_text("title: Broken\nexercises: [{name: A, hodl: 5}]\n")
    result = run("list", "--json")
    assert result.exit_code == 0
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["mine"]["origin"] == "user"
    assert rows["quick"]["title"] == "My quick" and rows["quick"]["origin"] == "user"
    assert "broken" not in rows
    assert "broken.yaml:2: " in result.stderr and "did you mean 'hold'?" in result.stderr
    assert json.loads(run("show", "mine", "--json").stdout)["title"] == "Mine"


def test_show_json_shape() -> None:
    result = run("show", "piriformis", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["id"] == "piriformis" and data["title"]
    assert data["total_seconds"] == pytest.approx(max(s["start"] + s["seconds"] for s in data["plan"]), abs=0.01)
    fig4 = next(e for e in data["exercises"] if e["id"] == "lying-figure-four-stretch")
    assert fig4 | {"sides": ["right", "left"], "rounds": 5, "hold_seconds": 10, "rest_seconds": 5,
                   "reps": None} == fig4
    assert {"name", "sides", "rounds", "hold_seconds", "rest_seconds", "reps"} <= fig4.keys()
    kinds = {segment["kind"] for segment in data["plan"]}
    assert {"speech", "hold", "rest", "tone", "countdown"} <= kinds
    for segment in data["plan"]:
        assert {"kind", "start", "seconds", "exercise", "side", "round"} <= segment.keys()
        if segment["kind"] == "speech":
            assert segment["text"]


def test_show_by_path_with_options(write_script: WriteScript) -> None:
    path = write_script("""
        title: Mine
        exercises:
          - {name: Stretch, hold: 9, sides: [right, left], rounds: 2}
    """)
    data = json.loads(run("show", str(path), "--json", "--side", "left", "--easier", "--pace", "1.5").stdout)
    assert data["options"] == {"sides": ["left"], "easier": ["stretch"], "pace": 1.5}
    assert [s["seconds"] for s in data["plan"] if s["kind"] == "hold"] == [6, 6]
    assert {s["side"] for s in data["plan"] if s["kind"] == "hold"} == {"left"}


def test_show_text_timeline() -> None:
    result = run("show", "quick")
    assert result.exit_code == 0
    assert "Quick try" in result.stdout
    assert "tone    hold_start" in result.stdout and "say     Quick try." in result.stdout


def test_unknown_routine_suggests_the_near_miss() -> None:
    result = run("show", "piriformiss")
    assert result.exit_code == 1
    assert result.stderr == "Error: no routine named 'piriformiss'; did you mean 'piriformis'?\n"
    assert result.stdout == ""


def test_missing_file() -> None:
    result = run("show", "nowhere/mine.yaml")
    assert result.exit_code == 1
    assert "no such file" in result.stderr


def test_invalid_script_is_one_line_and_exit_2(write_script: WriteScript) -> None:
    path = write_script("title: T\nexercises:\n  - name: A\n    hodl: 10\n")
    result = run("show", str(path))
    assert result.exit_code == 2
    assert result.stderr == (f"Error: {path}:4: exercise 1 has the unknown key 'hodl'; did you mean 'hold'?\n")
    assert result.stdout == ""


def test_bad_pace_is_bad_input() -> None:
    result = run("show", "quick", "--pace", "9")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: pace 9 is out of range")


def test_validate_reports_each_file(write_script: WriteScript) -> None:
    good = SCRIPTS / "quick.yaml"
    bad = write_script("title: T\nexercises:\n  - name: A\n    hold: 0\n", "bad.yaml")
    result = run("validate", str(good), str(bad))
    assert result.exit_code == 2
    assert result.stdout == f"ok: {good} (1 exercise, about 0:56)\n"
    assert result.stderr == f"Error: {bad}:4: exercise 1 (A) hold must be more than 0 seconds, got 0\n"
    all_good = run("validate", *(str(path) for path in sorted(SCRIPTS.glob("*.yaml"))))
    assert all_good.exit_code == 0 and all_good.stdout.count("ok: ") == 3


def test_schema_command_prints_the_shipped_schema() -> None:
    result = run("schema")
    assert json.loads(result.stdout)["title"] == "coach exercise script"
    assert Path(run("schema", "--path").stdout.strip()).is_file()


def test_installed_entry_point_runs_without_traceback(tmp_path: Path) -> None:
    """The real console script, as a user runs it: a bad file is one line on stderr."""
    coach = Path(sys.executable).with_name("coach")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\x89PNG\x00binary")
    done = subprocess.run([str(coach), "validate", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == f"Error: {bad}:1: is a binary file, not a YAML text script\n"
    shown = subprocess.run([str(coach), "show", "quick", "--json"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == "quick"
