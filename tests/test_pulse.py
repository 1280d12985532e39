"""The private PulseAudio server the live-sound tests use (tests/pulse.py): the coach's stream
reaches ``out.monitor``, paplay into ``mic`` reaches ``mic.monitor``, recordings read back."""

from __future__ import annotations

import os
import signal
import time
import wave
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.pulse import (
    MIC_MONITOR,
    MIC_SINK,
    OUT_MONITOR,
    PulseError,
    PulseServer,
    missing_programs,
    read_wav,
)

RATE_HZ = 22050


def tone(frequency_hz: float, seconds: float, rate_hz: int = RATE_HZ, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    return (amplitude * 32767 * np.sin(2 * np.pi * frequency_hz * t)).astype(np.int16)


def loud_seconds(samples: np.ndarray, rate_hz: int = RATE_HZ, threshold: int = 3000) -> float:
    """From the first to the last sample louder than ``threshold``."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    return float(loud[-1] - loud[0] + 1) / rate_hz if len(loud) else 0.0


def dominant_hz(samples: np.ndarray, rate_hz: int = RATE_HZ) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate_hz)[np.argmax(spectrum)])


def write_wav(path: Path, samples: np.ndarray, rate_hz: int = RATE_HZ) -> Path:
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate_hz)
        file.writeframes(samples.astype("<i2").tobytes())
    return path


def test_server_has_the_sinks_and_defaults(pulse: PulseServer) -> None:
    info = pulse.pactl("info")
    assert "Default Sink: out" in info
    assert f"Default Source: {MIC_MONITOR}" in info
    sinks = pulse.pactl("list", "short", "sinks")
    assert [line.split("\t")[1] for line in sinks.splitlines()] == ["out", "mic"]
    assert "44100Hz" in sinks
    assert os.environ["PULSE_SERVER"] == pulse.env["PULSE_SERVER"]


def test_sounddevice_stream_is_heard_on_out_monitor(sounddevice_pulse: ModuleType, pulse: PulseServer,
                                                     tmp_path: Path) -> None:
    lead = np.zeros(RATE_HZ // 2, np.int16)
    sound = np.concatenate([lead, tone(1000, 0.5)])
    position = 0

    def callback(outdata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        nonlocal position
        chunk = sound[position:position + frames]
        outdata[:len(chunk), 0] = chunk
        outdata[len(chunk):] = 0
        position += frames

    with pulse.record(OUT_MONITOR, tmp_path / "heard.wav") as recording:
        # Half a second of silence first: PulseAudio can drop the first tens of milliseconds of
        # a new stream (more so on a busy machine), with no underflow flag in the callback.
        with sounddevice_pulse.OutputStream(samplerate=RATE_HZ, channels=1, dtype="int16", callback=callback,
                                            latency=0.1):
            deadline = time.monotonic() + 10
            while position < len(sound) + RATE_HZ // 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        time.sleep(0.3)  # the tail of the tone through the sink and into the recording
    heard = recording.samples()
    assert dominant_hz(heard) == pytest.approx(1000, abs=5)
    assert loud_seconds(heard) == pytest.approx(0.5, abs=0.01)


def test_paplay_into_mic_is_heard_on_mic_monitor(pulse: PulseServer, tmp_path: Path) -> None:
    # Led by silence: like any new stream, paplay's can lose its first few milliseconds.
    speech = write_wav(tmp_path / "speech.wav", np.concatenate([np.zeros(RATE_HZ // 4, np.int16), tone(440, 0.6)]))
    with pulse.record(MIC_MONITOR, tmp_path / "mic.wav") as recording:
        pulse.play(speech, MIC_SINK)
        time.sleep(0.2)
    heard = recording.samples()
    assert dominant_hz(heard) == pytest.approx(440, abs=5)
    assert loud_seconds(heard) == pytest.approx(0.6, abs=0.01)


def test_recording_of_a_silent_sink_is_silent_and_as_long_as_it_ran(pulse: PulseServer, tmp_path: Path) -> None:
    with pulse.record(MIC_MONITOR, tmp_path / "quiet.wav") as recording:
        time.sleep(1.0)
    heard = recording.samples()
    assert np.abs(heard.astype(np.int32)).max() < 50
    assert len(heard) / RATE_HZ == pytest.approx(1.0, abs=0.15)


def test_stereo_recording_has_two_columns(pulse: PulseServer, tmp_path: Path) -> None:
    with pulse.record(MIC_MONITOR, tmp_path / "stereo.wav", rate_hz=44100, channels=2) as recording:
        time.sleep(0.3)
    assert recording.samples().shape[1] == 2


def test_read_wav_mends_the_header_of_a_killed_recording(pulse: PulseServer, tmp_path: Path) -> None:
    speech = write_wav(tmp_path / "speech.wav", tone(440, 0.3))
    recording = pulse.record(MIC_MONITOR, tmp_path / "killed.wav")
    pulse.play(speech, MIC_SINK)
    time.sleep(0.2)
    assert recording._process is not None
    recording._process.send_signal(signal.SIGKILL)  # no chance to write the sizes
    recording._process.wait()
    data = (tmp_path / "killed.wav").read_bytes()
    assert int.from_bytes(data[40:44], "little") == 0  # parecord leaves the data size 0
    rate_hz, heard = read_wav(tmp_path / "killed.wav")
    assert rate_hz == RATE_HZ
    assert dominant_hz(heard) == pytest.approx(440, abs=5)
    recording.stop()


@pytest.mark.skipif(bool(missing_programs()), reason="pulseaudio not installed: apt-get install pulseaudio pulseaudio-utils")
def test_a_second_server_starts_and_stops_cleanly() -> None:
    with PulseServer() as server:
        process = server._process
        folder = server.folder
        assert server.running and folder is not None and server.socket.exists()
    assert process is not None and process.poll() is not None
    assert not folder.exists()
    server.stop()  # twice is fine


@pytest.mark.skipif(bool(missing_programs()), reason="pulseaudio not installed: apt-get install pulseaudio pulseaudio-utils")
def test_a_server_that_cannot_start_says_why_with_its_log() -> None:
    server = PulseServer(sink_rate_hz=0)
    with pytest.raises(PulseError, match="(?s)exited with status 1.*pulseaudio log.*Invalid sample rate '0'"):
        server.start()
    assert server.folder is None and not server.running
