"""Shared fixtures: every test gets its own empty user folder (COACH_HOME)."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest

from tests.pulse import PulseServer, missing_programs, portaudio_with_environment, reinitialize_portaudio

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"


@pytest.fixture(autouse=True)
def coach_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "coach-home"
    monkeypatch.setenv("COACH_HOME", str(home))
    monkeypatch.delenv("COACH_DEBUG", raising=False)
    return home


@pytest.fixture
def write_script(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write dedented YAML text to a file and return its path."""

    def write(text: str, name: str = "routine.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def pulse() -> Iterator[PulseServer]:
    """A private PulseAudio server for the whole session (see tests/pulse.py), also set in
    ``os.environ`` so that sounddevice in this process plays into its sink ``out``."""
    missing = missing_programs()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: apt-get install pulseaudio pulseaudio-utils")
    with PulseServer() as server, portaudio_with_environment(server.env, _rescan_portaudio_if_loaded):
        yield server


@pytest.fixture
def sounddevice_pulse(pulse: PulseServer) -> ModuleType:
    """sounddevice, with PortAudio's device list taken while the private server answers."""
    try:
        import sounddevice
    except OSError as error:
        reason = f"PortAudio is missing ({error}): apt-get install libportaudio2"
        if os.environ.get("CI"):
            pytest.fail(f"setup.sh did not install it: {reason}")  # CI must not skip live-sound tests
        pytest.skip(reason)
    reinitialize_portaudio()
    return sounddevice


def _rescan_portaudio_if_loaded() -> None:
    # Loaded before the server's variables were set (or after they are gone), PortAudio lists
    # the wrong devices; modules that import sounddevice later scan at import.
    if "sounddevice" in sys.modules:
        reinitialize_portaudio()
