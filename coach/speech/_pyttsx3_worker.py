"""The process that owns one pyttsx3 engine for ``SystemVoice``: ``python -m coach.speech._pyttsx3_worker``.

pyttsx3 keeps one engine per driver per process, prints "Audio saved to ..." on stdout, gets
the rate wrong when it changes between phrases and may return from ``runAndWait`` before the
file exists. So the engine lives here, alone, with voice, rate, volume and pitch fixed for its
whole life by the command line, and the parent talks to it over a small line protocol:

- requests on stdin, one JSON object a line: ``{"text": "...", "path": "/tmp/.../1.wav"}``;
- answers on the pipe that was stdout when the process started, one JSON object a line:
  ``{"event": "ready", "sample_rate_hz": 22050, ...}`` once, then ``{"event": "saved", "path": ...}``
  or ``{"event": "failed", "kind": ..., "message": ...}`` for each request.

Before pyttsx3 is imported, file descriptor 1 is pointed at /dev/null, so nothing the engine or
its C library prints can reach the answer channel or the parent's stdout. The worker ends at
end of input (the parent closed the pipe or died). ``--list-voices`` answers one
``{"event": "voices", "voices": [...]}`` line and exits. Only the standard library and pyttsx3
are used here, so the worker starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import wave

# Kinds of failure the parent turns into messages that name the fix.
NO_PYTTSX3 = "no-pyttsx3"
NO_ENGINE = "no-engine"
BAD_VOICE = "bad-voice"
SYNTHESIS = "synthesis"

_WARM_UP_TEXT = "ready"
_ATTEMPTS = 3


class _Answers:
    """The answer channel: the original stdout, written with ``os.write`` one whole line at a time."""

    def __init__(self) -> None:
        self._fd = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # pyttsx3's print() and anything from C now go nowhere
        os.close(devnull)

    def send(self, **answer: object) -> None:
        data = (json.dumps(answer) + "\n").encode("utf-8")
        while data:
            data = data[os.write(self._fd, data) :]


class _Failed(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _Engine:
    """One pyttsx3 engine with fixed settings that saves one phrase per ``runAndWait``."""

    def __init__(
        self,
        voice_id: str | None,
        rate_wpm: int | None,
        volume: float | None,
        pitch: int | None,
        finish_timeout_seconds: float,
    ) -> None:
        try:
            import pyttsx3
        except ImportError as error:
            raise _Failed(NO_PYTTSX3, f"pyttsx3 is not installed ({error})") from None
        try:
            self._engine = pyttsx3.init()
        except Exception as error:  # the driver raises whatever its platform library raises
            raise _Failed(NO_ENGINE, f"pyttsx3 could not start its speech engine: {error}") from None
        self.driver_name = str(getattr(self._engine, "driver_name", "") or "unknown")
        self._finish_timeout_seconds = finish_timeout_seconds
        self._finished = threading.Event()
        self._errors: list[BaseException] = []
        self._engine.connect("finished-utterance", lambda **_: self._finished.set())
        self._engine.connect("error", lambda exception=None, **_: self._errors.append(exception))
        # Set once, before the first phrase: later changes are applied unreliably.
        if voice_id is not None:
            self._engine.setProperty("voice", voice_id)
        if rate_wpm is not None:
            self._engine.setProperty("rate", rate_wpm)
        if volume is not None:
            self._engine.setProperty("volume", volume)
        if pitch is not None:  # espeak-ng's 0-100 (50 is its normal); the macOS and Windows drivers ignore it
            self._engine.setProperty("pitch", pitch)
        self._engine.runAndWait()  # nothing to say: applies the queued settings
        if self._errors:
            error = self._errors[0]
            if voice_id is not None and "voice" in str(error).lower():
                raise _Failed(BAD_VOICE, f"the speech engine has no voice {voice_id!r}")
            raise _Failed(NO_ENGINE, f"the speech engine refused its settings: {error}")

    def voices(self) -> list[dict[str, object]]:
        return [
            {"id": str(voice.id), "name": str(voice.name or voice.id), "languages": [str(language) for language in voice.languages or []]}
            for voice in self._engine.getProperty("voices")
        ]

    def save(self, text: str, path: str) -> int:
        """Synthesize ``text`` into the WAV file ``path``; return its sample rate once it is complete.

        Under load, espeak's driver has been seen (once in CI) to report a phrase finished with an
        empty file; a phrase with words must have audio, so that is retried before it is failed.
        """
        for _ in range(_ATTEMPTS):
            rate_hz, frames = self._save_once(text, path)
            if frames or not text.strip():
                return rate_hz
        raise _Failed(SYNTHESIS, f"the speech engine wrote no audio for {text[:40]!r} in {_ATTEMPTS} attempts")

    def _save_once(self, text: str, path: str) -> tuple[int, int]:
        self._finished.clear()
        self._errors.clear()
        if os.path.exists(path):
            os.remove(path)
        self._engine.save_to_file(text, path)
        self._engine.runAndWait()
        # runAndWait can return before the driver has written the file (the first call always
        # does with espeak); the driver fires finished-utterance after closing it.
        if not self._finished.wait(self._finish_timeout_seconds):
            raise _Failed(SYNTHESIS, f"the speech engine did not finish within {self._finish_timeout_seconds:g} s")
        if self._errors:
            raise _Failed(SYNTHESIS, f"the speech engine failed: {self._errors[0]}")
        return _finished_wav(path)


def _finished_wav(path: str) -> tuple[int, int]:
    """Sample rate and frame count of a finished WAV file; one still being written has fewer bytes than it says."""
    try:
        with wave.open(path, "rb") as wav:
            params = wav.getparams()
    except (OSError, EOFError, wave.Error) as error:
        raise _Failed(SYNTHESIS, f"the speech engine wrote no readable WAV file: {error}") from None
    data_bytes = params.nframes * params.nchannels * params.sampwidth
    if os.path.getsize(path) < data_bytes:
        raise _Failed(SYNTHESIS, f"the WAV file is shorter than its header says ({path})")
    return params.framerate, params.nframes


def _serve(engine: _Engine, answers: _Answers) -> None:
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
            text, path = str(request["text"]), str(request["path"])
        except (ValueError, KeyError, TypeError) as error:
            answers.send(event="failed", kind=SYNTHESIS, message=f"bad request: {error}")
            continue
        try:
            engine.save(text, path)
        except _Failed as failure:
            answers.send(event="failed", kind=failure.kind, message=failure.message)
        else:
            answers.send(event="saved", path=path)


def _warm_up(engine: _Engine) -> int:
    """Say one word into a scratch file: proves the engine works and tells its sample rate."""
    handle, path = tempfile.mkstemp(prefix="coach-warm-up-", suffix=".wav")
    os.close(handle)
    try:
        return engine.save(_WARM_UP_TEXT, path)
    finally:
        if os.path.exists(path):
            os.remove(path)


def main(argv: list[str] | None = None) -> int:
    answers = _Answers()
    parser = argparse.ArgumentParser(prog="python -m coach.speech._pyttsx3_worker")
    parser.add_argument("--voice-id")
    parser.add_argument("--rate-wpm", type=int)
    parser.add_argument("--volume", type=float)
    parser.add_argument("--pitch", type=int)
    parser.add_argument("--finish-timeout-seconds", type=float, default=20.0)
    parser.add_argument("--list-voices", action="store_true")
    options = parser.parse_args(argv)
    try:
        engine = _Engine(
            options.voice_id, options.rate_wpm, options.volume, options.pitch, options.finish_timeout_seconds
        )
        if options.list_voices:
            answers.send(event="voices", voices=engine.voices())
            return 0
        sample_rate_hz = _warm_up(engine)
    except _Failed as failure:
        answers.send(event="failed", kind=failure.kind, message=failure.message)
        return 1
    answers.send(event="ready", sample_rate_hz=sample_rate_hz, driver=engine.driver_name)
    _serve(engine, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
