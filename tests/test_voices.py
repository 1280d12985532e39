"""The system (pyttsx3 + espeak-ng) and joe (Piper) voices, with the real engines.

Intelligibility is checked by PocketSphinx's bundled English model restricted to a small
grammar of coaching cues: open dictation of espeak-ng's voice is too poor to assert on.
Tests whose engine is missing skip, saying what to install.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import wave
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from coach.errors import CoachError
from coach.speech.clip import Clip
from coach.speech.piper_voice import PiperVoice
from coach.speech.pcm import KEEP_SILENCE_SECONDS, SILENCE_THRESHOLD, read_wav_clip, trim_silence
from coach.speech.system_voice import SystemVoice, list_engine_voices
from tests.speech_check import needs_espeak_ng, needs_piper, needs_pocketsphinx, needs_pyttsx3, phrase_recognizer

SENTENCE = "Now lift your arms slowly above your head and breathe in."
NOMINAL_PIPER_WPM = 160  # joe at length_scale 1.0 speaks about this fast
PHRASES = [
    "Lie on your back with your knees bent.",
    "Hold for five seconds.",
    "Now switch to the other side.",
    "Keep your shoulders relaxed.",
    "Breathe out as you lift.",
    "Slowly lower your arms.",
    "Rest for twenty seconds please.",
    "Two more to go.",
    "Turn your head to the left.",
    "Well done, that is the end of the routine.",
]
# The grammar the recognizer may choose from. Each voice is tested on cues it is understood in
# at several rates; espeak-ng's "good job take a rest" is heard only as far as "good job".
CUES = [
    "start the exercise now",
    "good job take a rest",
    "lift your arms slowly",
    "turn to the left side",
    "one two three four five",
    "breathe in and hold it",
]


def _words(text: str) -> int:
    return len(text.split())


def _rms(clip: Clip) -> float:
    return float(np.sqrt(np.mean(clip.samples.astype(np.float64) ** 2)))


def assert_speech_clip(clip: Clip, *, sample_rate_hz: int, text: str, words_per_minute: float) -> None:
    """int16 mono at the rate, about as long as the text at that pace, loud enough, trimmed."""
    assert clip.samples.dtype == np.int16 and clip.samples.ndim == 1
    assert clip.sample_rate_hz == sample_rate_hz
    expected_seconds = _words(text) / words_per_minute * 60
    assert 0.5 * expected_seconds <= clip.seconds <= 2 * expected_seconds, (clip.seconds, expected_seconds)
    assert _rms(clip) > 1000, _rms(clip)  # about -30 dBFS: speech, not silence or hiss
    loud = np.flatnonzero(np.abs(clip.samples.astype(np.int32)) > SILENCE_THRESHOLD)
    keep = round(KEEP_SILENCE_SECONDS * sample_rate_hz)
    assert loud[0] <= keep, f"{loud[0] / sample_rate_hz:.3f} s of silence at the head"
    assert len(clip.samples) - 1 - loud[-1] <= keep, f"{(len(clip.samples) - 1 - loud[-1]) / sample_rate_hz:.3f} s at the tail"


# --- shared helpers: trimming and reading WAVs ---------------------------------------------


def test_trim_silence_keeps_30_ms_of_silence_at_each_end() -> None:
    rate = 22050
    tone = (8000 * np.sin(np.arange(rate // 5) * 2 * np.pi * 440 / rate)).astype(np.int16)
    hiss = np.random.default_rng(1).integers(-SILENCE_THRESHOLD, SILENCE_THRESHOLD + 1, rate // 2).astype(np.int16)
    padded = Clip(np.concatenate([np.zeros(rate // 2, np.int16), tone, hiss]), rate)

    trimmed = trim_silence(padded)

    keep = round(KEEP_SILENCE_SECONDS * rate)
    loud = np.flatnonzero(np.abs(tone.astype(np.int32)) > SILENCE_THRESHOLD)
    assert len(trimmed.samples) == keep + (loud[-1] - loud[0] + 1) + keep
    assert np.array_equal(trimmed.samples[keep : keep + 100], tone[loud[0] : loud[0] + 100])
    assert trimmed.sample_rate_hz == rate


def test_trim_silence_leaves_a_clip_without_padding_alone_and_empties_a_silent_one() -> None:
    full = Clip(np.full(1000, 5000, np.int16), 16000)
    assert np.array_equal(trim_silence(full).samples, full.samples)
    assert len(trim_silence(Clip(np.zeros(22050, np.int16), 22050)).samples) == 0


@pytest.mark.parametrize(
    ("width_bytes", "frame_bytes", "expected"),
    [
        (1, bytes([128, 255, 0, 128]), [0, 127 << 8, -128 << 8, 0]),  # 8-bit is unsigned
        (2, np.array([1000, -2000], "<i2").tobytes(), [1000, -2000]),
        (3, bytes([0x00, 0xE8, 0x03, 0x00, 0x30, 0xF8]), [1000, -2000]),  # 24-bit: high two bytes
        (4, np.array([1000 << 16, -2000 << 16], "<i4").tobytes(), [1000, -2000]),
    ],
)
def test_read_wav_clip_converts_any_width_to_int16(tmp_path: Path, width_bytes: int, frame_bytes: bytes, expected: list[int]) -> None:
    path = tmp_path / "in.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(width_bytes)
        wav.setframerate(16000)
        wav.writeframes(frame_bytes)
    clip = read_wav_clip(path)
    assert clip.samples.dtype == np.int16 and clip.sample_rate_hz == 16000
    assert clip.samples.tolist() == expected


def test_read_wav_clip_mixes_stereo_down_to_mono(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(44100)
        wav.writeframes(np.array([1000, 3000, -32768, -32768, 100, -100], "<i2").tobytes())
    clip = read_wav_clip(path)
    assert clip.samples.tolist() == [2000, -32768, 0]
    assert clip.sample_rate_hz == 44100


# --- the system voice -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def system_voice() -> Iterator[SystemVoice]:
    voice = SystemVoice("gmw/en-us", rate_wpm=160, volume=0.8)
    yield voice
    voice.close()


@needs_pyttsx3
@needs_espeak_ng
def test_system_voice_speaks_a_sentence(system_voice: SystemVoice) -> None:
    clip = system_voice.synthesize(SENTENCE)
    assert_speech_clip(clip, sample_rate_hz=system_voice.sample_rate_hz, text=SENTENCE, words_per_minute=160)
    assert system_voice.sample_rate_hz == 22050


@needs_pyttsx3
@needs_espeak_ng
def test_system_voice_rate_changes_the_duration() -> None:
    with SystemVoice("gmw/en-us", rate_wpm=120, volume=0.8) as slow, SystemVoice("gmw/en-us", rate_wpm=240, volume=0.8) as fast:
        slow_clip, fast_clip = slow.synthesize(SENTENCE), fast.synthesize(SENTENCE)
        assert_speech_clip(slow_clip, sample_rate_hz=22050, text=SENTENCE, words_per_minute=120)
        assert_speech_clip(fast_clip, sample_rate_hz=22050, text=SENTENCE, words_per_minute=240)
        assert slow_clip.seconds > 1.6 * fast_clip.seconds
        assert slow.cache_key() != fast.cache_key()


@needs_pyttsx3
@needs_espeak_ng
def test_system_voice_says_ten_phrases_in_a_row(system_voice: SystemVoice) -> None:
    clips = [system_voice.synthesize(phrase) for phrase in PHRASES]
    for phrase, clip in zip(PHRASES, clips):
        assert_speech_clip(clip, sample_rate_hz=22050, text=phrase, words_per_minute=160)
    # a stale or repeated file (pyttsx3's known traps) would show up as two equal clips
    assert len({clip.samples.tobytes() for clip in clips}) == len(PHRASES)


@needs_pyttsx3
@needs_espeak_ng
def test_system_voice_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    with SystemVoice(None, rate_wpm=175, volume=1.0) as voice:  # a fresh worker: start-up included
        voice.synthesize("Nothing on standard output, please.")
        voice.synthesize("Not even the second time.")
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""


@needs_pyttsx3
@needs_espeak_ng
def test_system_voice_cache_key_names_engine_versions_and_settings() -> None:
    key = json.loads(SystemVoice("gmw/en-us", 160, 0.8).cache_key())
    assert key["engine"] == "pyttsx3" and key["driver"] == "espeak"
    assert key["pyttsx3"] and key["espeak-ng"]
    assert (key["voice_id"], key["rate_wpm"], key["volume"]) == ("gmw/en-us", 160, 0.8)
    assert SystemVoice("gmw/en-us", 160, 0.8).cache_key() == SystemVoice("gmw/en-us", 160, 0.8).cache_key()
    assert SystemVoice("gmw/en-us", 160, 0.8).cache_key() != SystemVoice("gmw/en-us", 161, 0.8).cache_key()
    assert SystemVoice("gmw/en-us", 160, 0.8).cache_key() != SystemVoice("gmw/en-us", 160, 0.7).cache_key()
    assert SystemVoice("gmw/en-us", 160, 0.8).cache_key() != SystemVoice("gmw/en", 160, 0.8).cache_key()


@needs_pyttsx3
@needs_espeak_ng
def test_a_killed_worker_is_restarted_on_the_next_phrase() -> None:
    with SystemVoice("gmw/en-us", rate_wpm=160, volume=0.8) as voice:
        first = voice.synthesize("Before the crash.")
        pid = voice.worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        after = voice.synthesize("After the crash.")
        assert voice.worker_pid not in (None, pid)
        assert_speech_clip(after, sample_rate_hz=22050, text="After the crash.", words_per_minute=160)
        assert first.samples.tobytes() != after.samples.tobytes()


@needs_pyttsx3
@needs_espeak_ng
def test_an_unknown_voice_id_says_where_to_find_the_ids() -> None:
    with SystemVoice("no-such-voice", rate_wpm=160, volume=0.8) as voice:
        with pytest.raises(CoachError, match="no voice 'no-such-voice'; `coach voices` lists"):
            voice.synthesize("Hello.")


@needs_pyttsx3
@needs_espeak_ng
def test_list_engine_voices_includes_american_english() -> None:
    voices = {voice.id: voice for voice in list_engine_voices()}
    assert "en-us" in voices["gmw/en-us"].languages
    assert voices["gmw/en-us"].name == "English (America)"


def test_a_hung_worker_is_killed_restarted_once_then_the_error_names_the_fix(tmp_path: Path) -> None:
    # A stand-in worker that speaks the protocol, starts fine, then never answers a phrase.
    pids = tmp_path / "pids"
    hanging_worker = [
        sys.executable,
        "-c",
        "import json, os, sys, time\n"
        f"open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
        "print(json.dumps({'event': 'ready', 'sample_rate_hz': 22050}), flush=True)\n"
        "sys.stdin.readline()\n"
        "time.sleep(120)\n",
    ]
    voice = SystemVoice(None, 160, 0.8, timeout_seconds=1.0, worker_command=hanging_worker)
    with pytest.raises(CoachError) as raised:
        voice.synthesize("Are you there?")
    message = str(raised.value)
    assert "failed twice while saying 'Are you there?'" in message
    assert "apt-get install --reinstall espeak-ng" in message
    started = [int(line) for line in pids.read_text().split()]
    assert len(started) == 2
    for pid in started:  # both were killed and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    voice.close()


def test_a_worker_without_pyttsx3_says_how_to_install_it() -> None:
    # -S leaves out site-packages, so the real worker runs where pyttsx3 is not installed.
    without_site_packages = [sys.executable, "-S", "-m", "coach.speech._pyttsx3_worker"]
    with SystemVoice(None, 160, 0.8, worker_command=without_site_packages) as voice:
        with pytest.raises(CoachError, match=r"needs pyttsx3, which is not installed: pip install pyttsx3"):
            voice.synthesize("Hello.")


# --- the joe (Piper) voice ------------------------------------------------------------------


@pytest.fixture(scope="module")
def piper_voice() -> Iterator[PiperVoice]:
    voice = PiperVoice()
    yield voice
    voice.close()


@needs_piper
def test_piper_voice_speaks_a_sentence(piper_voice: PiperVoice) -> None:
    clip = piper_voice.synthesize(SENTENCE)
    assert piper_voice.sample_rate_hz == 22050
    assert_speech_clip(clip, sample_rate_hz=22050, text=SENTENCE, words_per_minute=NOMINAL_PIPER_WPM)


@needs_piper
def test_piper_voice_joins_sentences_into_one_clip(piper_voice: PiperVoice) -> None:
    one = piper_voice.synthesize("Good job.")
    three = piper_voice.synthesize("Good job. Rest for ten seconds! Ready?")
    assert three.seconds > one.seconds + 1.0
    assert_speech_clip(three, sample_rate_hz=22050, text="Good job. Rest for ten seconds! Ready?", words_per_minute=NOMINAL_PIPER_WPM)


@needs_piper
def test_piper_voice_is_deterministic(piper_voice: PiperVoice) -> None:
    first = piper_voice.synthesize("Keep your back straight and hold.")
    second = piper_voice.synthesize("Keep your back straight and hold.")
    assert np.array_equal(first.samples, second.samples)


@needs_piper
def test_piper_length_scale_changes_the_duration_and_the_cache_key(piper_voice: PiperVoice) -> None:
    with PiperVoice(length_scale=1.5) as slow:
        slow_clip = slow.synthesize(SENTENCE)
    assert slow_clip.seconds > 1.3 * piper_voice.synthesize(SENTENCE).seconds
    assert slow.cache_key() != piper_voice.cache_key()
    assert PiperVoice(volume=0.5).cache_key() != piper_voice.cache_key()
    assert PiperVoice().cache_key() == piper_voice.cache_key()
    key = json.loads(piper_voice.cache_key())
    assert key["piper-tts"] and key["voice_version"]
    assert (key["noise_scale"], key["noise_w_scale"], key["length_scale"], key["volume"]) == (0.0, 0.0, 1.0, 1.0)


@needs_piper
def test_piper_voice_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    with PiperVoice() as voice:  # a fresh voice: loading included
        voice.synthesize("Nothing on standard output, please.")
    assert capfd.readouterr().out == ""


# --- intelligibility ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recognize_cue():
    return phrase_recognizer(CUES)


@needs_pocketsphinx
@needs_pyttsx3
@needs_espeak_ng
@pytest.mark.parametrize("cue", ["start the exercise now", "turn to the left side"])
def test_the_system_voice_is_understood(system_voice: SystemVoice, recognize_cue, cue: str) -> None:
    assert recognize_cue(system_voice.synthesize(cue.capitalize() + ".")) == cue


@needs_pocketsphinx
@needs_piper
@pytest.mark.parametrize("cue", ["good job take a rest", "start the exercise now"])
def test_the_piper_voice_is_understood(piper_voice: PiperVoice, recognize_cue, cue: str) -> None:
    assert recognize_cue(piper_voice.synthesize(cue.capitalize() + ".")) == cue
