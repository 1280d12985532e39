"""The built wheel carries the routines and the schema, and works outside the checkout."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(REPO)],
                   check=True, timeout=300, capture_output=True)
    (built,) = out.glob("coach-*.whl")
    return built


def test_wheel_ships_scripts_schema_and_license(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for script in (REPO / "scripts").glob("*.yaml"):
        assert f"coach/_bundled/scripts/{script.name}" in names
    for profile in (REPO / "voices").glob("*.yaml"):
        assert f"coach/_bundled/voices/{profile.name}" in names
    assert "coach/schema/routine.schema.json" in names
    assert any(name.endswith("licenses/LICENSE") or name.endswith("LICENSE") for name in names)
    assert not [name for name in names if name.startswith("tests/")]


@pytest.mark.slow
def test_installed_wheel_finds_its_bundled_routines(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    python = target / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
                   check=True, timeout=600, capture_output=True)
    done = subprocess.run([str(target / "bin" / "coach"), "list", "--json"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {row["id"] for row in rows} == {"piriformis", "leg-numbness", "quick"}
    for row in rows:
        assert str(target) in row["path"], "bundled routines come from the installed package, not the checkout"

    # Without the neural extra the system voice is the default, and a render works end to end.
    voices = json.loads(subprocess.run([str(target / "bin" / "coach"), "voices", "--json"], capture_output=True,
                                       text=True, timeout=120, cwd=tmp_path, check=True).stdout)
    assert voices["default"] == "system"
    assert {profile["name"] for profile in voices["profiles"]} == {"system", "joe"}
    assert all(str(target) in profile["path"] for profile in voices["profiles"])
    rendered = subprocess.run([str(target / "bin" / "coach"), "render", "quick", "-o", "quick.mp3", "--json"],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    assert json.loads(rendered.stdout)["voice"] == "system"
    assert (tmp_path / "quick.mp3").stat().st_size > 10_000
    joe = subprocess.run([str(target / "bin" / "coach"), "render", "quick", "--voice", "joe"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert joe.returncode == 1
    assert joe.stderr.strip().splitlines() == [
        "Error: the voice profile 'joe' uses the joe voice, which is not installed; "
        "install with: pip install 'coach[neural]' (or use the system voice profile)"]
