"""The speech commands end to end: ``coach voices``, ``coach cache``, exact timing in ``coach show``
after a render, and the render progress bar on a real terminal (a pseudo-terminal)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.speech_check import needs_piper, needs_system_voice

COACH = [sys.executable, "-m", "coach.cli"]


def run_coach(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COACH, *args], capture_output=True, text=True, timeout=600)


@needs_system_voice
def test_voices_lists_profiles_engine_voices_and_the_default(coach_home: Path) -> None:
    (coach_home / "voices").mkdir(parents=True)
    (coach_home / "voices" / "slow.yaml").write_text(
        "engine: pyttsx3\nvoice: gmw/en-us\nrate_wpm: 120\nvolume: 0.8\npitch: 40\n", encoding="utf-8")
    finished = run_coach("voices", "--json")
    assert finished.returncode == 0, finished.stderr
    listing = json.loads(finished.stdout)
    profiles = {profile["name"]: profile for profile in listing["profiles"]}
    assert {"system", "joe", "slow"} <= set(profiles)
    assert profiles["slow"]["origin"] == "user" and profiles["slow"]["pitch"] == 40
    assert profiles["system"]["origin"] == "bundled"
    engines = {engine["engine"]: engine for engine in listing["engines"]}
    assert "gmw/en-us" in {voice["id"] for voice in engines["pyttsx3"]["voices"]}
    assert listing["default"] in profiles
    text = run_coach("voices")
    assert text.returncode == 0
    assert "  slow    pyttsx3 gmw/en-us, 120 wpm, volume 0.8, pitch 40  (yours)" in text.stdout.splitlines()


@needs_piper
def test_joe_is_the_default_voice_when_it_is_installed() -> None:
    assert json.loads(run_coach("voices", "--json").stdout)["default"] == "joe"


def test_a_broken_user_profile_is_skipped_with_one_line_naming_file_and_line(coach_home: Path) -> None:
    (coach_home / "voices").mkdir(parents=True)
    broken = coach_home / "voices" / "broken.yaml"
    broken.write_text("engine: pyttsx3\nvoice: gmw/en-us\nrate_wpm: fast\nvolume: 0.8\n", encoding="utf-8")
    finished = run_coach("voices", "--json")
    assert finished.returncode == 0
    assert "broken" not in {profile["name"] for profile in json.loads(finished.stdout)["profiles"]}
    warnings = finished.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith(f"Warning: skipping {broken}:3: ")


def test_an_unknown_voice_is_one_line_exit_1() -> None:
    finished = run_coach("render", "quick", "--voice", "sytem")
    assert finished.returncode == 1
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and "no voice profile named 'sytem'; did you mean 'system'?" in lines[0]


@needs_system_voice
def test_show_is_exact_once_the_routine_is_cached(tmp_path: Path) -> None:
    before = json.loads(run_coach("show", "quick", "--voice", "system", "--json").stdout)
    assert (before["speech_timing"], before["voice"]) == ("estimated", "system")
    rendered = run_coach("render", "quick", "--voice", "system", "-o", str(tmp_path / "q.wav"), "--json")
    assert rendered.returncode == 0, rendered.stderr
    after = json.loads(run_coach("show", "quick", "--voice", "system", "--json").stdout)
    assert after["speech_timing"] == "exact"
    assert after["total_seconds"] == json.loads(rendered.stdout)["duration_seconds"]
    easier = json.loads(run_coach("show", "quick", "--voice", "system", "--easier", "--json").stdout)
    assert easier["speech_timing"] == "estimated"  # the easier level says other phrases, not cached yet


@needs_system_voice
def test_cache_info_and_clear_count_the_phrases(tmp_path: Path) -> None:
    empty = json.loads(run_coach("cache", "info", "--json").stdout)
    assert (empty["phrases"], empty["bytes"]) == (0, 0)
    assert run_coach("render", "quick", "--voice", "system", "-o", str(tmp_path / "q.wav")).returncode == 0
    phrases = json.loads(run_coach("show", "quick", "--json").stdout)["plan"]
    spoken = {segment["text"] for segment in phrases if segment["kind"] in ("speech", "countdown", "rep")
              and "text" in segment}
    full = json.loads(run_coach("cache", "info", "--json").stdout)
    assert full["phrases"] == len(spoken) and full["bytes"] > 0
    cleared = run_coach("cache", "clear")
    assert cleared.returncode == 0
    assert cleared.stderr.startswith(f"Removed {len(spoken)} phrases (")
    assert json.loads(run_coach("cache", "info", "--json").stdout)["phrases"] == 0
    again = json.loads(run_coach("show", "quick", "--voice", "system", "--json").stdout)
    assert again["speech_timing"] == "estimated"


@needs_system_voice
def test_render_draws_a_progress_bar_on_a_terminal_and_keeps_stdout_for_data(tmp_path: Path) -> None:
    target = tmp_path / "q.wav"
    leader, follower = pty.openpty()
    process = subprocess.Popen([*COACH, "render", "quick", "--voice", "system", "-o", str(target)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    terminal = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the other end closed: the process is done
            break
        if not chunk:
            break
        terminal += chunk
    stdout, _ = process.communicate(timeout=120)
    os.close(leader)
    assert process.returncode == 0
    assert stdout.decode().strip() == str(target)  # data only
    shown = terminal.decode("utf-8", "replace")
    assert "Speaking 9 phrases" in shown and f"Writing {target}" in shown
    assert "100%" in shown


@needs_system_voice
def test_render_says_one_line_on_stderr_when_it_is_not_a_terminal(tmp_path: Path) -> None:
    finished = run_coach("render", "quick", "--voice", "system", "-o", str(tmp_path / "q.wav"))
    assert finished.returncode == 0, finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(" with the system voice, 2 chapters"), lines
