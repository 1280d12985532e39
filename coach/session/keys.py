"""Keyboard controls: the voice commands on single keys, read from the terminal as they are typed.

``command_for_key`` is the whole key map, a pure function of the key and the engine's phase
(space pauses or resumes, depending). ``KeyReader`` puts a terminal into a cbreak-like mode
(no echo, no line buffering, but Ctrl-C still interrupts) and hands each key to a callback
from a reader thread; the callback should only enqueue (``Runner.submit`` does).
"""

from __future__ import annotations

import codecs
import os
import select
import sys
import termios
import threading
from collections.abc import Callable
from typing import Self, TextIO

from coach.session.events import Command, Phase

_KEYS: dict[str, Command] = {
    "n": "next",
    "p": "previous",
    "r": "repeat",
    "t": "tingling",
    "s": "stop",
    "q": "stop",
    "+": "louder",
    "=": "louder",  # the same key as "+" without shift on most layouts
    "-": "quieter",
    "_": "quieter",
    "?": "time",
    "h": "time",
}

KEY_HELP = "space pause/resume  n next  p back  r repeat  t tingling  +/- volume  ? time  s stop"
"""The key map in one line, for the display's footer."""

ESCAPE_SECONDS = 0.05
"""How long after a lone ESC byte the rest of an escape sequence may still arrive (as curses' ESCDELAY)."""
_STOP_JOIN_SECONDS = 1.0


def command_for_key(key: str, phase: Phase) -> Command | None:
    """The command a key gives in ``phase``, or None for a key that means nothing.

    Space toggles: it pauses a running session and resumes a paused one, or one asked to
    confirm a stop. A second "s" (or "q") confirms the stop; the engine asks first.
    """
    if key == " ":
        if phase == "running":
            return "pause"
        if phase in ("paused", "confirm_stop"):
            return "resume"
        return None
    return _KEYS.get(key.lower()) if len(key) == 1 else None


class EscapeFilter:
    """Drops terminal escape sequences (arrow keys, function keys, Alt+key) from typed characters.

    Feed characters one at a time; ``feed`` answers the key to pass on, or None. A lone ESC
    cannot be told from the start of a sequence until the next character or a short silence:
    after ``ESCAPE_SECONDS`` with nothing more, call ``timeout`` (``pending`` says when).
    """

    def __init__(self) -> None:
        self._state = ""  # "" plain text, "esc" after ESC, "csi" inside ESC [ ..., "ss3" after ESC O

    @property
    def pending(self) -> bool:
        return self._state != ""

    def timeout(self) -> None:
        self._state = ""

    def feed(self, char: str) -> str | None:
        state = self._state
        if state == "":
            if char == "\x1b":
                self._state = "esc"
                return None
            return char
        if state == "esc":
            if char == "[":
                self._state = "csi"
            elif char == "O":
                self._state = "ss3"
            elif char != "\x1b":  # Alt+key: ignored, as is a doubled ESC
                self._state = ""
            return None
        if state == "csi":
            if "\x40" <= char <= "\x7e":  # a final byte ends the sequence; parameters come before it
                self._state = ""
            return None
        self._state = ""  # ss3: one character, e.g. ESC O P for F1 or ESC O A for an arrow key
        return None


class KeyReader:
    """Calls ``on_key(key)`` for every key typed on ``fd`` (a descriptor or a file; default ``sys.stdin``).

    Use as a context manager. On a terminal it turns off echo and line buffering, keeps the
    signal keys (Ctrl-C still raises KeyboardInterrupt, Ctrl-Z still suspends), and reads on a
    daemon thread; leaving the block stops the thread and puts back the terminal's settings
    exactly as they were, whatever ended the block. Anything else (a pipe, /dev/null, a
    process in the background) is left alone: ``active`` is False and ``inactive_reason`` says why.

    Keys are characters decoded as UTF-8, escape sequences removed; ``on_key`` runs on the reader
    thread, so it should only hand the key on. End of input (the terminal closed) ends the
    thread quietly: ``reading`` turns False.
    """

    def __init__(self, on_key: Callable[[str], None], fd: int | TextIO | None = None) -> None:
        self._on_key = on_key
        self._source = fd
        self._fd: int | None = None
        self._saved: list | None = None
        self._stop_r: int | None = None
        self._stop_w: int | None = None
        self._thread: threading.Thread | None = None
        self._inactive_reason: str | None = "not started"

    @property
    def active(self) -> bool:
        """True from enter to exit when ``fd`` is this process's terminal: its settings are changed, to be restored."""
        return self._saved is not None

    @property
    def inactive_reason(self) -> str | None:
        """Why keys are not read, in words for the person ("standard input is not a terminal"); None when active."""
        return None if self.active else self._inactive_reason

    @property
    def reading(self) -> bool:
        """True while the reader thread runs: False before enter, after exit, and after end of input."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Self:
        fd = self._terminal_fd()
        if fd is None:
            return self
        saved = termios.tcgetattr(fd)
        cbreak = [list(item) if isinstance(item, list) else item for item in saved]
        cbreak[3] &= ~(termios.ECHO | termios.ICANON)  # lflag; ISIG stays, so Ctrl-C is a signal
        cbreak[6][termios.VMIN] = 1
        cbreak[6][termios.VTIME] = 0
        self._stop_r, self._stop_w = os.pipe()
        self._fd, self._saved = fd, saved  # from here on, close() undoes everything
        try:
            # TCSAFLUSH: keys typed before the session started (while the terminal still
            # buffered lines) are dropped rather than acted on late.
            termios.tcsetattr(fd, termios.TCSAFLUSH, cbreak)
            self._thread = threading.Thread(target=self._read, args=(fd, self._stop_r), name="coach-keys",
                                            daemon=True)
            self._thread.start()
        except BaseException:  # SIGTERM's SystemExit may land here too: the terminal must come back
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and restore the terminal; safe to call twice."""
        if self._saved is None:
            return
        thread, fd, saved = self._thread, self._fd, self._saved
        self._saved = None
        self._inactive_reason = "closed"
        try:
            if self._stop_w is not None:
                os.write(self._stop_w, b"x")
            if thread is not None:
                thread.join(_STOP_JOIN_SECONDS)
        finally:
            self._restore(fd, saved)
            if thread is None or not thread.is_alive():  # else it may still select on them
                for pipe_fd in (self._stop_r, self._stop_w):
                    if pipe_fd is not None:
                        os.close(pipe_fd)
            self._stop_r = self._stop_w = None

    def _terminal_fd(self) -> int | None:
        source = sys.stdin if self._source is None else self._source
        try:
            fd = source if isinstance(source, int) else source.fileno()
        except (AttributeError, ValueError, OSError):  # None, closed, or pytest's stand-in stdin
            self._inactive_reason = "standard input is not a terminal"
            return None
        if not os.isatty(fd):
            self._inactive_reason = "standard input is not a terminal"
            return None
        try:
            foreground = os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:  # a terminal, but not this process's controlling one: nothing to compete with
            foreground = True
        if not foreground:
            # Reading would stop the process (SIGTTIN), and the terminal belongs to another job.
            self._inactive_reason = "running in the background"
            return None
        return fd

    @staticmethod
    def _restore(fd: int | None, saved: list) -> None:
        # TCSAFLUSH rather than TCSADRAIN: both wait for the output (the display's last frame) to
        # be written, but TCSAFLUSH also drops keys typed and not yet read, so an "n" or "q"
        # pressed as the session ended does not land on the shell's command line.
        try:
            termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
        except termios.error:
            pass  # the terminal is gone (hung up): there is nothing left to restore

    def _read(self, fd: int, stop_fd: int) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        escapes = EscapeFilter()
        while True:
            try:
                ready, _, _ = select.select([fd, stop_fd], [], [], ESCAPE_SECONDS if escapes.pending else None)
            except (OSError, ValueError):  # the stop pipe closed under us after a slow join
                return
            if stop_fd in ready:
                return
            if not ready:  # silence after ESC: it was a lone Escape key, which means nothing
                escapes.timeout()
                continue
            try:
                data = os.read(fd, 1024)
            except BlockingIOError:
                continue
            except OSError:  # EIO: the terminal was closed; the same as end of input
                return
            if not data:
                return
            for char in decoder.decode(data):
                key = escapes.feed(char)
                if key is not None:
                    self._on_key(key)
