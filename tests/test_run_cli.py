"""`coach run` end to end: a real terminal (a pty), a real sound server, the real history.

Each session is a tiny routine (one exercise, one short hold) so that a whole run takes
seconds; the keys are typed into the terminal as a person would.
"""

from __future__ import annotations

import csv
import io
import os
import select
import signal
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from coach.history import CarryOver
from coach.plan import PlanOptions
from coach.session.live import with_carry_over
from tests.pulse import PulseServer
from tests.speech_check import needs_system_voice

REPO = Path(__file__).resolve().parent.parent
COACH = [sys.executable, "-m", "coach.cli"]
TIMEOUT_SECONDS = 90.0

# Make the pty the child's controlling terminal, as a shell would, then become coach.
_LAUNCH = ("import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
           "os.execv(sys.executable, [sys.executable, '-m', 'coach.cli', *sys.argv[1:]])")

TINY = """\
title: Tiny
exercises:
  - name: Squeeze
    say: Squeeze gently.
    hold: 6
    rounds: 1
"""


class Terminal:
    """``coach ARGS`` on a pseudo-terminal; everything it writes is kept in ``output``."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, self.slave = os.openpty()
        self.original = termios.tcgetattr(self.slave)
        self.proc = subprocess.Popen([sys.executable, "-c", _LAUNCH, *args], stdin=self.slave,
                                     stdout=self.slave, stderr=self.slave, env=env, cwd=REPO, close_fds=True)
        self._output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                if select.select([self.master], [], [], 0.1)[0]:
                    data = os.read(self.master, 65536)
                    if not data:
                        return
                    self._output += data
                elif self.proc.poll() is not None:
                    return
            except OSError:
                return

    @property
    def output(self) -> str:
        return self._output.decode("utf-8", errors="replace")

    def wait_for(self, text: str, timeout: float = TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert time.monotonic() < deadline and self.proc.poll() is None, \
                f"waited for {text!r}; exit {self.proc.poll()}; output tail: {self.output[-2000:]!r}"
            time.sleep(0.05)

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def finish(self, timeout: float = TIMEOUT_SECONDS) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=2.0)
        return code

    def attributes(self) -> list:
        return termios.tcgetattr(self.slave)


@pytest.fixture
def env(pulse: PulseServer, coach_home: Path) -> dict[str, str]:
    return dict(pulse.environ(), COACH_HOME=str(coach_home), PYTHONPATH=str(REPO), COLUMNS="100", LINES="40",
                TERM="xterm-256color")


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY, encoding="utf-8")
    return path


def history_rows(env: dict[str, str]) -> list[dict[str, str]]:
    done = subprocess.run([*COACH, "history", "--csv"], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(io.StringIO(done.stdout)))


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    started: list[Terminal] = []
    yield started
    for terminal in started:
        if terminal.proc.poll() is None:
            terminal.proc.kill()
            terminal.proc.wait(timeout=10)
        os.close(terminal.master)
        os.close(terminal.slave)


@needs_system_voice
def test_tingling_key_eases_at_once_and_the_next_session_starts_easier(
        env: dict[str, str], tiny: Path, terminals: list[Terminal]) -> None:
    first = Terminal(["run", str(tiny), "--voice", "system"], env)
    terminals.append(first)
    first.wait_for("left in this hold")
    first.type("t")
    first.wait_for("Tingling reported")
    assert first.finish() == 0
    [row] = history_rows(env)
    assert (row["exercise_id"], row["level"], row["outcome"], row["tingling_reports"]) == \
        ("squeeze", "normal", "eased", "1")
    assert row["session_end"] == "completed"

    second = Terminal(["run", str(tiny), "--voice", "system"], env)
    terminals.append(second)
    second.wait_for("easier")  # the panel shows the level
    assert second.finish() == 0
    rows = history_rows(env)
    assert [(r["level"], r["outcome"]) for r in rows] == [("normal", "eased"), ("easier", "eased")]


@needs_system_voice
def test_stop_twice_ends_the_session_and_restores_the_terminal(
        env: dict[str, str], tiny: Path, terminals: list[Terminal]) -> None:
    run = Terminal(["run", str(tiny), "--voice", "system"], env)
    terminals.append(run)
    run.wait_for("left in this hold")
    assert not run.attributes()[3] & termios.ECHO  # keys are read one by one, not echoed
    run.type("s")
    run.wait_for("Stop?")
    run.type("s")
    assert run.finish() == 0
    [row] = history_rows(env)
    assert (row["outcome"], row["session_end"]) == ("skipped", "stopped")
    assert run.attributes() == run.original  # the terminal is as it was


@needs_system_voice
def test_history_survives_kill_9_mid_session(env: dict[str, str], tiny: Path) -> None:
    # Not a terminal: plain log lines, no keys.
    proc = subprocess.Popen([*COACH, "run", str(tiny), "--voice", "system"], env=env, cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while "Squeeze" not in (line := proc.stdout.readline()):
            assert line and time.monotonic() < deadline, "the session never reached its exercise"
        assert "\x1b" not in line  # plain lines off a terminal
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    done = subprocess.run([*COACH, "history"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "interrupted" in done.stdout, done.stdout + done.stderr
    [row] = history_rows(env)
    assert row["session_end"] == "interrupted" and row["outcome"] == "not reached"


def test_run_without_a_sound_server_names_coach_devices(tmp_path: Path, coach_home: Path) -> None:
    env = dict(os.environ, PULSE_SERVER=f"unix:{tmp_path}/no-such-socket", COACH_HOME=str(coach_home),
               PYTHONPATH=str(REPO))
    done = subprocess.run([*COACH, "run", "quick", "--voice", "system"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    if "no audio" not in done.stderr and done.returncode == 0:
        pytest.skip("this machine has a sound card PortAudio finds without a server")
    assert done.returncode == 1
    [line] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert "coach devices" in line and "Traceback" not in done.stderr


def test_carry_over_sets_the_options() -> None:
    carry = CarryOver(easier=frozenset({"a"}), eased_last_time=frozenset({"a"}), back_to_normal=frozenset({"b"}))
    options = with_carry_over(PlanOptions(easier=frozenset({"c"})), carry)
    assert options.easier == {"a", "c"}
    assert options.eased_last_time == {"a"} and options.back_to_normal == {"b"}
    # Asked for easier by hand: not announced as back to normal.
    assert with_carry_over(PlanOptions(easier=frozenset({"b"})), carry).back_to_normal == frozenset()
