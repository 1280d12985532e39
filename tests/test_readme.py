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


def test_quick_start_main_job_runs() -> None:
    """The part after setup.sh, with this environment's coach in place of .venv/bin/coach."""
    setup, _ = quick_start_commands()
    main_job = shlex.split(setup.split("&&", 1)[1])
    assert main_job[0] == ".venv/bin/coach"
    coach = str(Path(sys.executable).with_name("coach"))
    done = subprocess.run([coach, *main_job[1:]], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert "Piriformis syndrome" in done.stdout


def test_annotated_example_is_a_valid_script(tmp_path: Path) -> None:
    (example,) = fenced_blocks("yaml")
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
