"""The "system" voice: the platform's speech engine through pyttsx3 (espeak-ng on Linux).

pyttsx3 runs in a worker process (``coach.speech._pyttsx3_worker``) that owns one engine with
fixed voice, rate, volume and pitch; this module sends it one phrase at a time, reads the WAV it
saved and hands back a trimmed :class:`~coach.speech.clip.Clip`. A worker that dies is
restarted on the next phrase; one that hangs is killed and restarted once, then the phrase
fails with a :class:`~coach.errors.CoachError` that says what to do.

"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import os
import queue
import subprocess
import sys
import sysconfig
import tempfile
import threading
import weakref
from importlib import metadata
from pathlib import Path
from typing import IO, NamedTuple, Sequence

import numpy as np

import coach
from coach.errors import CoachError
from coach.speech import _pyttsx3_worker as protocol
from coach.speech.clip import Clip
from coach.speech.pcm import KEEP_SILENCE_SECONDS, SILENCE_THRESHOLD, read_wav_clip, trim_silence

INSTALL_PYTTSX3 = "pip install pyttsx3"
INSTALL_ESPEAK_NG = "install espeak-ng: apt-get install espeak-ng"

# espeak-ng's base pitch scale (espeakPITCH): 0 to 100, 50 being each voice's normal.
MIN_PITCH = 0
MAX_PITCH = 100


class EngineVoice(NamedTuple):
    """A voice the system engine offers, as ``coach voices`` lists it."""

    id: str
    name: str
    languages: tuple[str, ...]


def list_engine_voices(*, timeout_seconds: float = 30.0) -> list[EngineVoice]:
    """The voices of the system speech engine (ids go into a voice profile's ``voice_id``)."""
    _require_engine()
    command = [*_DEFAULT_WORKER_COMMAND, "--list-voices"]
    try:
        finished = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, env=_worker_environment(), timeout=timeout_seconds
        )
    except subprocess.TimeoutExpired:
        raise CoachError(f"the system speech engine did not list its voices within {timeout_seconds:g} s; {_FIX_ENGINE}") from None
    answer = _parse_answer(finished.stdout.splitlines()[0] if finished.stdout else b"")
    if answer.get("event") != "voices":
        raise _answer_error(answer, finished.stderr.decode("utf-8", "replace"))
    return [EngineVoice(v["id"], v["name"], tuple(v["languages"])) for v in answer["voices"]]


class SystemVoice:
    """The platform speech engine through pyttsx3, in a worker process with fixed settings.

    ``voice_id`` is an engine voice id (``gmw/en-us`` with espeak-ng; None for the engine's
    default), ``rate_wpm`` the speaking rate in words per minute, ``volume`` from 0.0 to 1.0,
    ``pitch`` espeak-ng's base pitch from 0 to 100 (50 is its normal; None leaves the voice's
    own). pyttsx3's macOS and Windows drivers ignore ``pitch``.
    ``timeout_seconds`` bounds the worker's start and each phrase. ``worker_command`` replaces
    ``python -m coach.speech._pyttsx3_worker`` (tests hand in a worker that hangs); the
    settings are appended to it as options.

    Nothing starts until the first phrase (or ``sample_rate_hz``); ``close`` ends the worker.
    """

    def __init__(
        self,
        voice_id: str | None,
        rate_wpm: int,
        volume: float,
        *,
        pitch: int | None = None,
        timeout_seconds: float = 30.0,
        worker_command: Sequence[str] | None = None,
    ) -> None:
        if rate_wpm <= 0:
            raise ValueError(f"rate_wpm must be positive, got {rate_wpm}")
        if not 0.0 <= volume <= 1.0:
            raise ValueError(f"volume must be between 0.0 and 1.0, got {volume}")
        if pitch is not None and not MIN_PITCH <= pitch <= MAX_PITCH:
            raise ValueError(f"pitch must be between {MIN_PITCH} and {MAX_PITCH}, got {pitch}")
        self.voice_id = voice_id
        self.rate_wpm = int(rate_wpm)
        self.volume = float(volume)
        self.pitch = None if pitch is None else int(pitch)
        self._timeout_seconds = timeout_seconds
        self._worker_command = list(worker_command) if worker_command is not None else None
        self._worker: _Worker | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._phrases = 0
        self._lock = threading.Lock()

    @property
    def sample_rate_hz(self) -> int:
        """The engine's output rate (22050 Hz for espeak-ng); starts the worker to find out."""
        with self._lock:
            return self._running_worker().sample_rate_hz

    @property
    def worker_pid(self) -> int | None:
        """The worker's process id, or None while no worker runs."""
        worker = self._worker
        return worker.pid if worker is not None and worker.alive() else None

    def cache_key(self) -> str:
        """Engine and driver, pyttsx3 and espeak-ng versions, voice, rate, volume and pitch, as JSON."""
        return json.dumps(
            {
                "engine": "pyttsx3",
                "driver": _driver_name(),
                "pyttsx3": _pyttsx3_version(),
                "espeak-ng": _espeak_ng_version() if _driver_name() == "espeak" else None,
                "voice_id": self.voice_id,
                "rate_wpm": self.rate_wpm,
                "volume": self.volume,
                "pitch": self.pitch,
                "trim": [SILENCE_THRESHOLD, KEEP_SILENCE_SECONDS],
            },
            sort_keys=True,
        )

    def synthesize(self, text: str) -> Clip:
        """Speak ``text`` into a clip, trimmed of the engine's padding; blank text gives an empty clip."""
        with self._lock:
            if not text.strip():
                return Clip(np.zeros(0, dtype=np.int16), self._running_worker().sample_rate_hz)
            if self._scratch is None:
                self._scratch = tempfile.TemporaryDirectory(prefix="coach-system-voice-")
            self._phrases += 1
            path = Path(self._scratch.name) / f"phrase-{self._phrases}.wav"
            try:
                self._save_with_one_restart(text, path)
                clip = read_wav_clip(path)
            finally:
                path.unlink(missing_ok=True)
        return trim_silence(clip)

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.stop()
                self._worker = None
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None

    def __enter__(self) -> SystemVoice:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _save_with_one_restart(self, text: str, path: Path) -> None:
        for attempt in (1, 2):
            worker = self._running_worker()
            try:
                worker.save(text, path)
                return
            except _WorkerLost as lost:
                worker.kill()  # it may hang: no grace period
                self._worker = None
                if attempt == 2:
                    raise CoachError(
                        f"the system speech engine failed twice while saying {_quote(text)}: {lost}; "
                        f"{_FIX_ENGINE}{_log_excerpt(lost.log)}"
                    ) from None

    def _running_worker(self) -> _Worker:
        if self._worker is not None and self._worker.alive():
            return self._worker
        if self._worker is not None:  # died between phrases (killed, crashed): start afresh
            self._worker.stop()
            self._worker = None
        if self._worker_command is None:
            _require_engine()
        options = ["--rate-wpm", str(self.rate_wpm), "--volume", repr(self.volume)]
        options += ["--finish-timeout-seconds", repr(0.9 * self._timeout_seconds)]
        if self.voice_id is not None:
            options += ["--voice-id", self.voice_id]
        if self.pitch is not None:
            options += ["--pitch", str(self.pitch)]
        command = [*(self._worker_command or _DEFAULT_WORKER_COMMAND), *options]
        self._worker = _Worker.start(command, self._timeout_seconds, self.voice_id)
        return self._worker


_DEFAULT_WORKER_COMMAND = (sys.executable, "-m", "coach.speech._pyttsx3_worker")
_FIX_ENGINE = (
    "check that the engine works with: espeak-ng -w /tmp/coach-test.wav hello; "
    "reinstall it with: apt-get install --reinstall espeak-ng libespeak-ng1"
)


class _WorkerLost(Exception):
    """The worker died, hung or failed a phrase; worth one restart."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


class _Worker:
    """One worker process: requests on its stdin, answers read by a thread into a queue."""

    def __init__(self, process: subprocess.Popen[bytes], log: IO[bytes], timeout_seconds: float) -> None:
        self._process = process
        self._log = log
        self._timeout_seconds = timeout_seconds
        self._answers: queue.Queue[bytes | None] = queue.Queue()
        self.pid = process.pid
        self.sample_rate_hz = 0
        threading.Thread(target=_copy_lines, args=(process.stdout, self._answers), daemon=True).start()
        # Ends the process if its SystemVoice is dropped without close(), and at interpreter exit.
        self._finalizer = weakref.finalize(self, _end_process, process, log)

    @classmethod
    def start(cls, command: list[str], timeout_seconds: float, voice_id: str | None) -> _Worker:
        log = tempfile.TemporaryFile(prefix="coach-system-voice-log-")
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=_worker_environment(),
                start_new_session=True,  # Ctrl+C in the terminal is the parent's to handle
            )
        except OSError as error:
            log.close()
            raise CoachError(f"cannot start the system speech engine ({command[0]}): {error}") from None
        worker = cls(process, log, timeout_seconds)
        try:
            answer = worker._next_answer("start")
        except _WorkerLost as lost:
            worker.kill()
            raise CoachError(f"the system speech engine did not start: {lost}; {_FIX_ENGINE}{_log_excerpt(lost.log)}") from None
        if answer.get("event") != "ready":
            log_text = worker.log_text()
            worker.stop()
            raise _answer_error(answer, log_text, voice_id)
        worker.sample_rate_hz = int(answer["sample_rate_hz"])
        return worker

    def alive(self) -> bool:
        return self._process.poll() is None

    def save(self, text: str, path: Path) -> None:
        request = json.dumps({"text": text, "path": str(path)}) + "\n"
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(request.encode("ascii"))
            self._process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise _WorkerLost(f"the worker had ended (exit status {self._process.poll()})", self.log_text()) from None
        answer = self._next_answer(f"saying {_quote(text)}")
        if answer.get("event") != "saved":
            raise _WorkerLost(str(answer.get("message", answer)), self.log_text())

    def stop(self) -> None:
        """Close its input (a healthy worker then ends by itself) and wait; kill it after 2 s."""
        self._finalizer()

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._finalizer()

    def log_text(self) -> str:
        try:
            self._log.seek(0)
            return self._log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _next_answer(self, doing: str) -> dict[str, object]:
        try:
            line = self._answers.get(timeout=self._timeout_seconds)
        except queue.Empty:
            raise _WorkerLost(f"no answer within {self._timeout_seconds:g} s while {doing}", self.log_text()) from None
        if line is None:
            raise _WorkerLost(f"the worker ended while {doing} (exit status {self._process.poll()})", self.log_text())
        return _parse_answer(line)


def _copy_lines(stream: IO[bytes], answers: queue.Queue[bytes | None]) -> None:
    try:
        for line in stream:
            answers.put(line)
    finally:
        answers.put(None)  # end of stream: the worker is gone
        stream.close()


def _end_process(process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    if process.poll() is None:
        try:
            assert process.stdin is not None
            process.stdin.close()  # a healthy worker ends at end of input
            process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
    if process.stdin is not None:  # stdout is closed by the thread that reads it
        try:
            process.stdin.close()
        except OSError:
            pass
    log.close()


def _parse_answer(line: bytes) -> dict[str, object]:
    try:
        answer = json.loads(line)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return {"event": "failed", "kind": "protocol", "message": f"unexpected answer {line[:200]!r}"}
    return answer


def _answer_error(answer: dict[str, object], log: str, voice_id: str | None = None) -> CoachError:
    kind, message = answer.get("kind"), answer.get("message", "no answer")
    if kind == protocol.NO_PYTTSX3:
        return CoachError(f"the system voice needs pyttsx3, which is not installed: {INSTALL_PYTTSX3}")
    if kind == protocol.NO_ENGINE and sys.platform.startswith("linux"):
        return CoachError(f"{message}; {INSTALL_ESPEAK_NG}")
    if kind == protocol.BAD_VOICE:
        return CoachError(f"the system speech engine has no voice {voice_id!r}; `coach voices` lists the ones it has")
    return CoachError(f"the system speech engine failed: {message}; {_FIX_ENGINE}{_log_excerpt(log)}")


def _require_engine() -> None:
    """Fail early, naming the fix, when pyttsx3 or (on Linux) espeak-ng is missing."""
    _pyttsx3_version()
    if _driver_name() == "espeak" and _espeak_ng_version() is None:
        raise CoachError(f"the system voice needs the espeak-ng speech engine; {INSTALL_ESPEAK_NG}")


def _pyttsx3_version() -> str:
    try:
        return metadata.version("pyttsx3")
    except metadata.PackageNotFoundError:
        raise CoachError(f"the system voice needs pyttsx3, which is not installed: {INSTALL_PYTTSX3}") from None


def _driver_name() -> str:
    """The driver pyttsx3 picks by default on this platform."""
    return {"darwin": "nsss", "win32": "sapi5"}.get(sys.platform, "espeak")


@functools.cache
def _espeak_ng_version() -> str | None:
    """libespeak-ng's version ("1.51"), or None when the library is not installed."""
    for name in (ctypes.util.find_library("espeak-ng"), "libespeak-ng.so.1", "libespeak-ng.1.dylib"):
        if not name:
            continue
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        info = library.espeak_Info  # returns the version; needs no initialisation
        info.restype = ctypes.c_char_p
        info.argtypes = [ctypes.c_void_p]
        version = info(None)
        return version.decode("ascii", "replace") if version else "unknown"
    return None


def _worker_environment() -> dict[str, str]:
    """The parent's environment, with this copy of coach importable by ``python -m``.

    An installed coach is found in site-packages anyway; a source tree (an editable install,
    whose .pth file ``python -S`` skips, or a checkout on ``sys.path``) is put on PYTHONPATH.
    """
    environment = dict(os.environ)
    source_root = Path(coach.__file__).resolve().parent.parent
    site_packages = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    if source_root not in site_packages:
        paths = [str(source_root), *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
        environment["PYTHONPATH"] = os.pathsep.join(paths)
    return environment


def _quote(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _log_excerpt(log: str) -> str:
    lines = [line for line in log.strip().splitlines() if line.strip()]
    return f" (engine said: {' | '.join(lines[-3:])[-400:]})" if lines else ""
