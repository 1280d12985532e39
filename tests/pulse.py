"""A private PulseAudio server for tests: two null sinks on a socket in a temp folder.

The coach plays into the sink ``out`` (the default sink); tests record its monitor,
``out.monitor``, to hear what the coach played. Tests play "speech" into the sink ``mic``; its
monitor, ``mic.monitor`` (the default source), stands in for a microphone.

    with PulseServer() as pulse:
        subprocess.run([...], env=pulse.environ())   # a child process uses the private server
        with pulse.record("out.monitor", tmp_path / "heard.wav") as recording:
            ...
        samples = recording.samples()

In-process clients (sounddevice) need ``PULSE_SERVER`` in ``os.environ`` before PortAudio scans
its devices: PortAudio's ALSA finds the ``pulse`` and ``default`` devices only while a server
answers, and lists them once, at ``import sounddevice``. ``reinitialize_portaudio`` scans again.
The ``pulse`` fixture in conftest.py does both.

The daemon is a child of the test process, never daemonized: ``stop`` ends it, and on Linux the
kernel ends it too if the test process dies without cleaning up (``setpriv --pdeathsig``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np

PROGRAMS = ("pulseaudio", "pactl", "parecord", "paplay")
OUT_SINK = "out"
MIC_SINK = "mic"
OUT_MONITOR = "out.monitor"
MIC_MONITOR = "mic.monitor"
RECORD_LATENCY_MSEC = 20
"""parecord's fragment size. Its default (2 s) loses up to the last 2 s of audio when stopped."""


class PulseError(RuntimeError):
    """The private server or one of its clients failed; the message carries the daemon log."""


def missing_programs() -> list[str]:
    """The PulseAudio programs these helpers need that are not on PATH (apt pulseaudio pulseaudio-utils)."""
    return [program for program in PROGRAMS if shutil.which(program) is None]


class PulseServer:
    """A PulseAudio daemon with its own runtime folder, home, socket and null sinks.

    ``sink_rate_hz`` is the sample rate of both null sinks (a sound card's usual rate, so
    that a 22.05 kHz stream is resampled as it would be on real hardware).
    """

    def __init__(self, *, sink_rate_hz: int = 44100, start_timeout_seconds: float = 15.0) -> None:
        self.sink_rate_hz = sink_rate_hz
        self.start_timeout_seconds = start_timeout_seconds
        self.folder: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._recordings: list[Recording] = []

    # ----- life cycle -----

    def start(self) -> Self:
        if self._process is not None:
            raise PulseError("the private PulseAudio server is already running")
        missing = missing_programs()
        if missing:
            raise PulseError(f"{', '.join(missing)} not found: apt-get install pulseaudio pulseaudio-utils")
        # A short path under /tmp: a unix socket path must fit in 108 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="coach-pulse-"))
        home = self.folder / "home"
        config = home / ".config" / "pulse"
        config.mkdir(parents=True)
        # autospawn off: a client that loses this server must fail, not start the user's daemon.
        (config / "client.conf").write_text("autospawn = no\n", encoding="utf-8")
        # Our own daemon.conf replaces /etc/pulse/daemon.conf, so every machine behaves alike.
        (config / "daemon.conf").write_text(
            f"default-sample-rate = {self.sink_rate_hz}\n"
            "default-sample-channels = 2\n"
            "flat-volumes = no\n",
            encoding="utf-8")
        # The socket is loaded last: once `pactl info` answers, the sinks and defaults are set.
        script = self.folder / "server.pa"
        script.write_text(
            f"load-module module-null-sink sink_name={OUT_SINK} rate={self.sink_rate_hz}"
            " sink_properties=device.description=coach-out\n"
            f"load-module module-null-sink sink_name={MIC_SINK} rate={self.sink_rate_hz}"
            " sink_properties=device.description=coach-mic\n"
            f"set-default-sink {OUT_SINK}\n"
            f"set-default-source {MIC_MONITOR}\n"
            f"load-module module-native-protocol-unix socket={self.socket} auth-anonymous=1\n",
            encoding="utf-8")
        daemon_env = {**os.environ, **self.env, "HOME": str(home), "XDG_RUNTIME_DIR": str(self.folder),
                      "XDG_CONFIG_HOME": str(home / ".config")}
        daemon_env.pop("PULSE_SERVER", None)
        daemon_env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                _die_with_parent(
                    ["pulseaudio", "-n", "-F", str(script), "--daemonize=no", "--exit-idle-time=-1",
                     "--use-pid-file=no", "--system=no", "--realtime=no", "--high-priority=no",
                     "--log-target=stderr", "--log-level=notice"]),
                env=daemon_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every recording, then the daemon; remove the folder. Safe to call twice."""
        for recording in self._recordings:
            recording.stop()
        self._recordings.clear()
        process, self._process = self._process, None
        if process is not None:
            _end(process, signal.SIGTERM, wait_seconds=5.0)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # ----- where clients find it -----

    @property
    def socket(self) -> Path:
        return self._folder / "sock"

    @property
    def log_path(self) -> Path:
        return self._folder / "daemon.log"

    @property
    def env(self) -> dict[str, str]:
        """The variables that point a PulseAudio client (and ALSA's pulse plugin) at this server."""
        return {"PULSE_SERVER": f"unix:{self.socket}",
                "PULSE_CLIENTCONFIG": str(self._folder / "home" / ".config" / "pulse" / "client.conf")}

    def environ(self) -> dict[str, str]:
        """``os.environ`` with ``env`` on top: the ``env=`` for a child process."""
        return {**os.environ, **self.env}

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    # ----- clients -----

    def pactl(self, *args: str, timeout_seconds: float = 10.0) -> str:
        """Run ``pactl ARGS`` against this server and return its stdout; PulseError on failure."""
        done = self._run(["pactl", *args], timeout_seconds)
        if done.returncode != 0:
            raise PulseError(f"pactl {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}"
                             f"{self._log_tail()}")
        return done.stdout

    def sink_inputs(self) -> str:
        """``pactl list sink-inputs``: who plays into which sink, at what rate, resampled how."""
        return self.pactl("list", "sink-inputs")

    def play(self, path: Path | str, sink: str = MIC_SINK, *, timeout_seconds: float = 60.0) -> None:
        """Play a sound file into ``sink`` with paplay; returns once it has been played."""
        done = self._run(["paplay", f"--device={sink}", str(path)], timeout_seconds)
        if done.returncode != 0:
            raise PulseError(f"paplay {path} into {sink} failed ({done.returncode}): {done.stderr.strip()}"
                             f"{self._log_tail()}")

    def record(self, source: str, path: Path | str, *, rate_hz: int = 22050, channels: int = 1,
               start_timeout_seconds: float = 5.0) -> Recording:
        """Start recording ``source`` (e.g. ``out.monitor``) into a 16-bit WAV file.

        Returns once the first samples are on disk, so a sound played after this call is
        in the recording. Stop it with ``Recording.stop`` or a ``with`` block.
        """
        recording = Recording(self, source, Path(path), rate_hz, channels)
        self._recordings.append(recording)
        recording.wait_started(start_timeout_seconds)
        return recording

    # ----- internals -----

    @property
    def _folder(self) -> Path:
        if self.folder is None:
            raise PulseError("the private PulseAudio server is not started")
        return self.folder

    def _run(self, command: list[str], timeout_seconds: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(command, env=self.environ(), capture_output=True, text=True,
                                  timeout=timeout_seconds, check=False)
        except subprocess.TimeoutExpired as error:
            raise PulseError(f"{command[0]} did not finish within {timeout_seconds:g} s{self._log_tail()}") from error

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_seconds
        last = ""
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise PulseError(f"pulseaudio exited with status {self._process.returncode} while starting"
                                 f"{self._log_tail()}")
            if self.socket.exists():
                done = self._run(["pactl", "info"], timeout_seconds=5.0)
                if done.returncode == 0:
                    return
                last = done.stderr.strip()
            if time.monotonic() > deadline:
                raise PulseError(f"pulseaudio did not answer `pactl info` within {self.start_timeout_seconds:g} s"
                                 f"{f' ({last})' if last else ''}{self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self, lines: int = 30) -> str:
        text = self.log().strip()
        if not text:
            return ""
        return "\n--- pulseaudio log ---\n" + "\n".join(text.splitlines()[-lines:])


class Recording:
    """One ``parecord`` process writing a source into a WAV file."""

    def __init__(self, server: PulseServer, source: str, path: Path, rate_hz: int, channels: int) -> None:
        self.server = server
        self.source = source
        self.path = path
        self.rate_hz = rate_hz
        self.channels = channels
        self._stderr_path = path.with_name(path.name + ".parecord.log")
        with open(self._stderr_path, "wb") as stderr:
            self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
                _die_with_parent(
                    ["parecord", f"--device={source}", "--file-format=wav", "--format=s16le",
                     f"--rate={rate_hz}", f"--channels={channels}", f"--latency-msec={RECORD_LATENCY_MSEC}",
                     str(path)]),
                env=server.environ(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)

    def wait_started(self, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        while not (self.path.exists() and self.path.stat().st_size > _WAV_HEADER_BYTES):
            if self._process is None or self._process.poll() is not None:
                raise PulseError(f"parecord from {self.source} exited before recording anything: "
                                 f"{self._stderr().strip()}{self.server._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise PulseError(f"parecord from {self.source} recorded nothing within {timeout_seconds:g} s"
                                 f"{self.server._log_tail()}")
            time.sleep(0.01)

    def stop(self) -> Recording:
        """End parecord with SIGINT (it then writes the WAV header's sizes) and wait for it."""
        process, self._process = self._process, None
        if process is not None:
            _end(process, signal.SIGINT, wait_seconds=5.0)
        return self

    def samples(self) -> np.ndarray:
        """What was recorded, as int16: shape (frames,) when mono, else (frames, channels)."""
        self.stop()
        rate_hz, samples = read_wav(self.path)
        if rate_hz != self.rate_hz:
            raise PulseError(f"{self.path} is at {rate_hz} Hz, expected {self.rate_hz} Hz")
        return samples

    def seconds(self) -> float:
        return len(self.samples()) / self.rate_hz

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _stderr(self) -> str:
        try:
            return self._stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


_WAV_HEADER_BYTES = 44


def read_wav(path: Path | str) -> tuple[int, np.ndarray]:
    """Read a 16-bit PCM WAV file, also one whose writer died before it set the sizes.

    parecord (libsndfile) writes the RIFF and data sizes when it is stopped with SIGINT or
    SIGTERM; killed, it leaves them 0. A data chunk whose size is 0 or runs past the end of the
    file is taken to run to the end of the file.
    """
    data = Path(path).read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise PulseError(f"{path} is not a WAV file")
    position = 12
    rate_hz = channels = bits = None
    while position + 8 <= len(data):
        chunk_id = data[position:position + 4]
        size = int.from_bytes(data[position + 4:position + 8], "little")
        body = position + 8
        if chunk_id == b"fmt ":
            fmt_tag = int.from_bytes(data[body:body + 2], "little")
            channels = int.from_bytes(data[body + 2:body + 4], "little")
            rate_hz = int.from_bytes(data[body + 4:body + 8], "little")
            bits = int.from_bytes(data[body + 14:body + 16], "little")
            if fmt_tag not in (1, 0xFFFE) or bits != 16:
                raise PulseError(f"{path}: not 16-bit PCM (format {fmt_tag:#x}, {bits} bits)")
        elif chunk_id == b"data":
            if rate_hz is None or channels is None:
                raise PulseError(f"{path}: data before the fmt chunk")
            end = len(data) if size == 0 or body + size > len(data) else body + size
            end -= (end - body) % (2 * channels)
            samples = np.frombuffer(data[body:end], dtype="<i2").astype(np.int16)
            return rate_hz, samples if channels == 1 else samples.reshape(-1, channels)
        position = body + size + (size & 1)
    raise PulseError(f"{path}: no data chunk")


def reinitialize_portaudio() -> None:
    """Make sounddevice's PortAudio scan the devices again (and reread ALSA's configuration).

    PortAudio lists devices once, when initialized; ALSA's pulse plugin reads PULSE_SERVER
    only when a device is opened. Call this after changing PULSE_SERVER in ``os.environ``.
    Open streams are closed by it.
    """
    import sounddevice

    # sounddevice's own (private) pair: it keeps its count of initializations right.
    sounddevice._terminate()
    sounddevice._initialize()



@contextmanager
def portaudio_with_environment(changes: Mapping[str, str],
                               rescan: Callable[[], None] = reinitialize_portaudio) -> Iterator[None]:
    """PortAudio rescanned under changed variables; both put back afterwards, even on failure."""
    saved = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        rescan()
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        rescan()


def _end(process: subprocess.Popen[bytes], first_signal: int, wait_seconds: float) -> None:
    """Signal a child, wait for it; SIGKILL it if it lingers."""
    if process.poll() is None:
        try:
            process.send_signal(first_signal)
            process.wait(wait_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _die_with_parent(command: list[str]) -> list[str]:
    """``command`` wrapped so that the kernel sends it SIGTERM when the thread that started it
    ends (util-linux's setpriv; Linux). A plain ``preexec_fn`` would run Python between fork
    and exec, which is unsafe while PortAudio's threads run in this process."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sys.platform.startswith("linux"):
        return command
    return [setpriv, "--pdeathsig=TERM", "--", *command]
