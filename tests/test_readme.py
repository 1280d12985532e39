"""The README's quick start and example are run, so they cannot rot."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from coach.plan import build_plan
from coach.script import load_routine
from coach.speech.profiles import load_profile
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert block, "the quick start has a sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_two_commands_and_the_second_is_ci() -> None:
    setup, tests = quick_start_commands()
    assert setup.startswith("./setup.sh && ")
    assert (REPO / "setup.sh").stat().st_mode & 0o111
    assert tests == "bash .ci/run"
    assert "pytest" in (REPO / ".ci" / "run").read_text()


def test_quick_start_main_job_renders_the_piriformis_mp3(tmp_path: Path) -> None:
    """The part after setup.sh, with this environment's coach in place of .venv/bin/coach, run
    in an empty folder; the MP3 it writes is read back with its chapters."""
    from mutagen.id3 import ID3
    from mutagen.mp3 import MP3

    setup, _ = quick_start_commands()
    main_job = shlex.split(setup.split("&&", 1)[1])
    assert main_job[0] == ".venv/bin/coach"
    coach = str(Path(sys.executable).with_name("coach"))
    done = subprocess.run([coach, *main_job[1:]], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env={**os.environ})
    assert done.returncode == 0, done.stderr
    output = tmp_path / "piriformis.mp3"
    assert done.stdout.strip() == "piriformis.mp3"
    assert 15 * 60 < MP3(output).info.length < 30 * 60
    chapters = sorted(ID3(output).getall("CHAP"), key=lambda chapter: chapter.start_time)
    routine = load_routine(REPO / "scripts" / "piriformis.yaml")
    assert [str(c.sub_frames["TIT2"]) for c in chapters] == ["Introduction", *(e.name for e in routine.exercises)]


def test_annotated_example_is_a_valid_script(tmp_path: Path) -> None:
    (example,) = [block for block in fenced_blocks("yaml") if "exercises:" in block]
    path = tmp_path / "morning.yaml"
    path.write_text(example, encoding="utf-8")
    routine = load_routine(path)
    assert [exercise.id for exercise in routine.exercises] == ["figure-four", "slow-lunges"]
    plan = build_plan(routine)
    assert [s.seconds for s in plan.segments if s.kind == "hold"] == [10] * 6


def test_bundled_routine_ids_in_readme_exist() -> None:
    for routine_id in ("piriformis", "leg-numbness", "quick"):
        assert f"`{routine_id}`" in README
        assert (REPO / "scripts" / f"{routine_id}.yaml").is_file()


def test_voice_profile_example_is_a_valid_profile(tmp_path: Path) -> None:
    (example,) = [block for block in fenced_blocks("yaml") if block.startswith("engine:")]
    path = tmp_path / "slow.yaml"
    path.write_text(example, encoding="utf-8")
    profile = load_profile(path)
    assert (profile.engine, profile.voice, profile.rate_wpm, profile.volume, profile.pitch) == (
        "pyttsx3", "gmw/en-us", 140, 0.8, 40)
