"""Keyboard controls: the key map, and KeyReader on a real pseudo-terminal in a child process."""

from __future__ import annotations

import io
import os
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coach.session.events import COMMANDS
from coach.session.keys import KEY_HELP, EscapeFilter, KeyReader, command_for_key

REPO = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).with_name("keys_child.py")
TIMEOUT_SECONDS = 10.0

pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs POSIX pseudo-terminals")


# --- the key map ----------------------------------------------------------------------------

FIXED = {
    "n": "next", "N": "next", "p": "previous", "P": "previous", "r": "repeat", "R": "repeat",
    "t": "tingling", "T": "tingling", "s": "stop", "S": "stop", "q": "stop", "Q": "stop",
    "+": "louder", "=": "louder", "-": "quieter", "_": "quieter",
    "?": "time", "h": "time", "H": "time",
}


@pytest.mark.parametrize("phase", ["running", "paused", "confirm_stop"])
@pytest.mark.parametrize("key, command", sorted(FIXED.items()))
def test_fixed_keys_give_their_command_in_every_phase(key: str, command: str, phase: str) -> None:
    assert command_for_key(key, phase) == command


@pytest.mark.parametrize("phase, command", [
    ("running", "pause"), ("paused", "resume"), ("confirm_stop", "resume"), ("ready", None), ("ended", None),
])
def test_space_pauses_or_resumes_by_phase(phase: str, command: str | None) -> None:
    assert command_for_key(" ", phase) == command


def test_a_second_stop_key_is_still_stop_the_engine_confirms() -> None:
    assert command_for_key("s", "confirm_stop") == command_for_key("q", "confirm_stop") == "stop"


@pytest.mark.parametrize("key", ["x", "a", "1", "\r", "\n", "\t", "\x1b", "\x7f", "é", "", "nn", "\x1b[A", "\x1bOP"])
@pytest.mark.parametrize("phase", ["running", "paused"])
def test_other_keys_mean_nothing(key: str, phase: str) -> None:
    assert command_for_key(key, phase) is None


def test_every_key_command_is_an_engine_command_and_the_help_names_the_keys() -> None:
    assert set(FIXED.values()) <= set(COMMANDS)
    assert "\n" not in KEY_HELP
    for word in ("space", "n next", "p back", "r repeat", "t tingling", "+/-", "? time", "s stop"):
        assert word in KEY_HELP


def feed_all(text: str, escapes: EscapeFilter | None = None) -> str:
    escapes = escapes or EscapeFilter()
    return "".join(key for key in map(escapes.feed, text) if key is not None)


@pytest.mark.parametrize("sequence", [
    "\x1b[A", "\x1b[B", "\x1b[C", "\x1b[D",  # arrows
    "\x1bOA", "\x1bOP",  # arrows in application mode, F1
    "\x1b[1;5A", "\x1b[15~", "\x1b[3~", "\x1b[200~",  # Ctrl+arrow, F5, Delete, paste start
    "\x1bn", "\x1b\x1b[A",  # Alt+n, Alt+arrow
])
def test_escape_sequences_give_no_keys(sequence: str) -> None:
    assert feed_all(f"r{sequence}n") == "rn"


def test_a_sequence_split_across_reads_is_still_dropped() -> None:
    escapes = EscapeFilter()
    assert feed_all("n\x1b[1;", escapes) == "n"
    assert escapes.pending
    assert feed_all("5Ap", escapes) == "p"
    assert not escapes.pending


def test_a_lone_escape_is_dropped_after_the_pause_and_the_next_key_counts() -> None:
    escapes = EscapeFilter()
    assert feed_all("\x1b", escapes) == ""
    escapes.timeout()  # the reader calls this after ESCAPE_SECONDS of silence
    assert feed_all("n", escapes) == "n"


# --- KeyReader in a child on a pseudo-terminal -----------------------------------------------

class PtyChild:
    """tests/keys_child.py with stdin and stdout on a fresh pty slave, in its own session."""

    def __init__(self, mode: str = "ctty") -> None:
        self.master, self.slave = os.openpty()
        self.original = termios.tcgetattr(self.slave)
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONIOENCODING="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), mode], stdin=self.slave, stdout=self.slave, stderr=subprocess.PIPE,
            start_new_session=True, env=env, cwd=REPO,
        )

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_until(self, marker: bytes, timeout: float = TIMEOUT_SECONDS) -> bytes:
        """Everything the child writes up to and including ``marker``."""
        got = b""
        deadline = time.monotonic() + timeout
        while marker not in got:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and not select.select([self.master], [], [], 0)[0]:
                break
            if select.select([self.master], [], [], min(left, 0.1))[0]:
                try:
                    got += os.read(self.master, 4096)
                except OSError:
                    break
        assert marker in got, f"waited for {marker!r}, got {got!r}; stderr: {self.stderr_so_far()}"
        return got

    def wait(self) -> int:
        return self.proc.wait(timeout=TIMEOUT_SECONDS)

    def stderr_so_far(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""

    def attributes(self) -> list:
        return termios.tcgetattr(self.slave)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT_SECONDS)
        if self.proc.stderr:
            self.proc.stderr.close()
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def child() -> Iterator[PtyChild]:
    started = PtyChild("ctty")
    try:
        started.read_until(b"READY active=True\r\n")
        yield started
    finally:
        started.close()


def test_keys_arrive_unechoed_and_arrow_keys_are_ignored(child: PtyChild) -> None:
    lflag = child.attributes()[3]
    assert not lflag & termios.ECHO and not lflag & termios.ICANON
    assert lflag & termios.ISIG

    child.write(b"n")
    # Exactly the child's line: an echoed "n" would come first.
    assert child.read_until(b"KEY:'n'\r\n") == b"KEY:'n'\r\n"
    child.write(b"\x1b[A\x1b[D\x1bOB" + b" ")
    assert child.read_until(b"KEY:' '\r\n") == b"KEY:' '\r\n"
    child.write("é+".encode())
    assert child.read_until(b"KEY:'+'\r\n") == b"KEY:'\\xe9'\r\nKEY:'+'\r\n"

    child.write(b"x")
    child.read_until(b"DONE")
    assert child.wait() == 0
    assert child.attributes() == child.original


def test_sigterm_restores_the_terminal(child: PtyChild) -> None:
    child.write(b"r")
    child.read_until(b"KEY:'r'")
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait() == 128 + signal.SIGTERM
    assert child.attributes() == child.original


def test_an_exception_restores_the_terminal(child: PtyChild) -> None:
    child.write(b"!")
    assert child.wait() == 1
    assert "RuntimeError: raised inside the block" in child.stderr_so_far()
    assert child.attributes() == child.original


def test_ctrl_c_interrupts_the_child_and_restores_the_terminal(child: PtyChild) -> None:
    child.write(b"\x03")
    output = child.read_until(b"interrupted")
    assert b"KEY:" not in output  # the terminal made it a signal, not a key
    assert child.wait() == 130
    assert child.attributes() == child.original


def test_the_terminal_closing_ends_reading_quietly() -> None:
    master, slave = os.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, str(CHILD), "plain"], stdin=slave, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, env=env, cwd=REPO)
    try:
        os.close(slave)
        assert select.select([proc.stdout], [], [], TIMEOUT_SECONDS)[0]
        assert proc.stdout.readline() == b"READY active=True\n"
        os.close(master)  # hang up: the child's reads now fail or see end of input
        out, err = proc.communicate(timeout=TIMEOUT_SECONDS)
        assert proc.returncode == 0, err
        assert out == b"EOF\n"
        assert err == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=TIMEOUT_SECONDS)


# --- not a terminal ---------------------------------------------------------------------------

def test_a_pipe_is_left_alone() -> None:
    read_fd, write_fd = os.pipe()
    keys: list[str] = []
    try:
        with KeyReader(keys.append, fd=read_fd) as reader:
            assert not reader.active and not reader.reading
            assert reader.inactive_reason == "standard input is not a terminal"
            os.write(write_fd, b"n")
        assert keys == []
        assert os.read(read_fd, 1) == b"n"  # nothing read it
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_dev_null_and_a_stdin_without_a_descriptor_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    with open(os.devnull) as null, KeyReader(lambda key: None, fd=null) as reader:
        assert not reader.active
    for stand_in in (io.StringIO("n"), None):  # as under pytest, or in a service
        monkeypatch.setattr(sys, "stdin", stand_in)
        with KeyReader(lambda key: None) as reader:
            assert not reader.active and reader.inactive_reason == "standard input is not a terminal"



def test_a_child_with_piped_stdin_runs_without_keys() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, str(CHILD), "plain"], input=b"n", capture_output=True,
                          env=env, cwd=REPO, timeout=TIMEOUT_SECONDS, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"READY active=False\nEOF\n"


def test_reading_in_process_from_a_pty_and_closing_twice() -> None:
    master, slave = os.openpty()
    original = termios.tcgetattr(slave)
    keys: list[str] = []
    try:
        reader = KeyReader(keys.append, fd=slave)
        with reader:
            assert reader.active and reader.reading and reader.inactive_reason is None
            os.write(master, b"np")
            deadline = time.monotonic() + TIMEOUT_SECONDS
            while len(keys) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert keys == ["n", "p"]
        assert not reader.active and not reader.reading
        reader.close()
        assert termios.tcgetattr(slave) == original
    finally:
        os.close(master)
        os.close(slave)
