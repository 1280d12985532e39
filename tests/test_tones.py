"""Tones: exact lengths, safe levels, quiet edges, and that a listener can tell them apart.

Distinguishability is measured from the samples (pitch over time, note count, sustain, spectral
centroid), not read back from the design constants, so a change that makes two tones sound
alike fails here even if every constant still "looks" different.
"""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
import wave
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from coach.plan import TONE_SECONDS, ToneKind
from coach.speech.clip import Clip
from coach.speech.tones import make_tone

KINDS: tuple[ToneKind, ...] = get_args(ToneKind)
CHIMES: tuple[ToneKind, ...] = ("hold_start", "hold_end", "side_switch")
RATES_HZ = (16000, 22050, 44100, 48000)
ANALYSIS_RATE_HZ = 22050

FULL_SCALE = 32767
EDGE_SECONDS = 0.001
EDGE_MAX_DBFS = -30.0
"""The first and last millisecond stay below this: no audible click where a tone starts or stops."""
LEVEL_TOLERANCE_DB = 1.0
INTENDED_PEAK_DBFS: dict[ToneKind, float] = {
    "hold_start": -6.0, "hold_end": -6.0, "side_switch": -6.0, "tick": -14.0,
}

MIN_STEP_SEMITONES = 3.0
"""A pitch step of a minor third or more: heard as a clear rise or fall, not a wobble."""
SUSTAIN_BELOW_PEAK_DB = 20.0


def _dbfs(value: float) -> float:
    return 20.0 * math.log10(max(value, 1e-9) / FULL_SCALE)


def _semitones(to_hz: float, from_hz: float) -> float:
    return 12.0 * math.log2(to_hz / from_hz)


def _as_float(clip: Clip) -> np.ndarray:
    return clip.samples.astype(np.float64)


def _dominant_hz(signal: np.ndarray, rate_hz: int) -> float:
    """The strongest frequency in ``signal`` (Hann window, zero-padded FFT for fine bins)."""
    n_fft = 1 << max(14, math.ceil(math.log2(len(signal))) + 2)
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal)), n_fft))
    freqs_hz = np.fft.rfftfreq(n_fft, 1.0 / rate_hz)
    spectrum[freqs_hz < 50.0] = 0.0
    return float(freqs_hz[int(np.argmax(spectrum))])


def _halves_hz(clip: Clip) -> tuple[float, float]:
    x = _as_float(clip)
    middle = len(x) // 2
    return _dominant_hz(x[:middle], clip.sample_rate_hz), _dominant_hz(x[middle:], clip.sample_rate_hz)


def _frame_rms(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    starts = range(0, max(len(x) - frame, 0) + 1, hop)
    return np.array([math.sqrt(float(np.mean(x[s:s + frame] ** 2))) for s in starts])


def _pitch_segments(clip: Clip) -> list[float]:
    """Pitches of the steady notes heard in turn: a pitch track of 40 ms frames every 10 ms, over
    frames within 20 dB of the loudest, split where it jumps by more than a semitone. A run counts
    as a note only if the pitch holds for 5 frames (80 ms of sound); shorter runs are
    transitions, or a knock rather than a note."""
    rate = clip.sample_rate_hz
    x = _as_float(clip)
    frame, hop = round(0.04 * rate), round(0.01 * rate)
    rms = _frame_rms(x, frame, hop)
    track = [
        _dominant_hz(x[i * hop:i * hop + frame], rate) if rms[i] >= rms.max() * 10 ** (-SUSTAIN_BELOW_PEAK_DB / 20.0) else None
        for i in range(len(rms))
    ]
    runs: list[list[float]] = []
    previous: float | None = None
    for hz in track:
        if hz is not None and previous is not None and abs(_semitones(hz, previous)) <= 1.0:
            runs[-1].append(hz)
        elif hz is not None:
            runs.append([hz])
        previous = hz
    return [float(np.median(run)) for run in runs if len(run) >= 5]


def _sustain_seconds(clip: Clip) -> float:
    """How long the sound stays within 20 dB of its loudest 5 ms."""
    rate = clip.sample_rate_hz
    hop = round(0.005 * rate)
    rms = _frame_rms(_as_float(clip), hop, hop)
    return float(np.sum(rms >= rms.max() * 10 ** (-SUSTAIN_BELOW_PEAK_DB / 20.0))) * hop / rate


def _centroid_hz(clip: Clip) -> float:
    spectrum = np.abs(np.fft.rfft(_as_float(clip)))
    freqs_hz = np.fft.rfftfreq(len(clip.samples), 1.0 / clip.sample_rate_hz)
    return float(np.sum(freqs_hz * spectrum) / np.sum(spectrum))


def _features(clip: Clip) -> dict[str, float]:
    """Perceptual features, each divided by a step a listener notices without effort."""
    first_hz, second_hz = _halves_hz(clip)
    return {
        "duration": clip.seconds / 0.1,                                   # per 100 ms
        "centroid": _semitones(_centroid_hz(clip), 1000.0) / 3.0,        # per minor third
        "contour": _semitones(second_hz, first_hz) / MIN_STEP_SEMITONES,  # per minor third
        "notes": float(len(_pitch_segments(clip))),                       # per note
        "sustain": _sustain_seconds(clip) / 0.1,                          # per 100 ms
    }


# --- shape and level ---------------------------------------------------------------------------

@pytest.mark.parametrize("rate_hz", RATES_HZ)
@pytest.mark.parametrize("kind", KINDS)
def test_length_is_exactly_what_the_plan_times(kind: ToneKind, rate_hz: int) -> None:
    clip = make_tone(kind, rate_hz)
    assert clip.sample_rate_hz == rate_hz
    assert len(clip.samples) == round(TONE_SECONDS[kind] * rate_hz)


@pytest.mark.parametrize("rate_hz", RATES_HZ)
@pytest.mark.parametrize("kind", KINDS)
def test_level_is_as_intended_and_never_clips(kind: ToneKind, rate_hz: int) -> None:
    samples = make_tone(kind, rate_hz).samples
    assert samples.dtype == np.int16
    assert samples.ndim == 1
    assert not np.any((samples == 32767) | (samples == -32768))
    peak = int(np.max(np.abs(samples.astype(np.int32))))
    assert abs(_dbfs(peak) - INTENDED_PEAK_DBFS[kind]) <= LEVEL_TOLERANCE_DB, _dbfs(peak)


@pytest.mark.parametrize("rate_hz", RATES_HZ)
@pytest.mark.parametrize("kind", KINDS)
def test_edges_are_quiet(kind: ToneKind, rate_hz: int) -> None:
    samples = make_tone(kind, rate_hz).samples.astype(np.int32)
    edge = round(EDGE_SECONDS * rate_hz)
    assert abs(samples[0]) <= 1 and abs(samples[-1]) <= 1
    assert _dbfs(int(np.max(np.abs(samples[:edge])))) < EDGE_MAX_DBFS
    assert _dbfs(int(np.max(np.abs(samples[-edge:])))) < EDGE_MAX_DBFS


def test_tick_is_quieter_than_every_chime() -> None:
    tick_peak = np.max(np.abs(make_tone("tick", ANALYSIS_RATE_HZ).samples.astype(np.int32)))
    for kind in CHIMES:
        chime_peak = np.max(np.abs(make_tone(kind, ANALYSIS_RATE_HZ).samples.astype(np.int32)))
        assert _dbfs(int(chime_peak)) - _dbfs(int(tick_peak)) >= 6.0, kind


def test_same_arguments_give_the_same_read_only_clip() -> None:
    clip = make_tone("hold_start", 16000)
    assert make_tone("hold_start", 16000) is clip
    assert make_tone("hold_start", 22050) is not clip
    with pytest.raises(ValueError):
        clip.samples[0] = 1


def test_unknown_kind_and_bad_rate_are_refused() -> None:
    with pytest.raises(ValueError, match="hold_start, hold_end, side_switch, tick"):
        make_tone("beep", 16000)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        make_tone("tick", 0)


# --- can a listener tell them apart? -------------------------------------------------------------

@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_hold_start_rises(rate_hz: int) -> None:
    first_hz, second_hz = _halves_hz(make_tone("hold_start", rate_hz))
    assert _semitones(second_hz, first_hz) >= MIN_STEP_SEMITONES, (first_hz, second_hz)


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_hold_end_falls(rate_hz: int) -> None:
    first_hz, second_hz = _halves_hz(make_tone("hold_end", rate_hz))
    assert _semitones(second_hz, first_hz) <= -MIN_STEP_SEMITONES, (first_hz, second_hz)


def test_side_switch_has_three_notes_and_the_hold_chimes_two() -> None:
    counts = {kind: len(_pitch_segments(make_tone(kind, ANALYSIS_RATE_HZ))) for kind in CHIMES}
    assert counts == {"hold_start": 2, "hold_end": 2, "side_switch": 3}
    side_switch = _pitch_segments(make_tone("side_switch", ANALYSIS_RATE_HZ))
    steps = [abs(_semitones(b, a)) for a, b in itertools.pairwise(side_switch)]
    assert min(steps) >= MIN_STEP_SEMITONES, side_switch


def test_tick_is_short_with_no_sustained_pitch() -> None:
    tick = make_tone("tick", ANALYSIS_RATE_HZ)
    assert tick.seconds <= 0.1
    assert _sustain_seconds(tick) <= 0.05
    assert _pitch_segments(tick) == []
    for kind in CHIMES:
        assert _sustain_seconds(make_tone(kind, ANALYSIS_RATE_HZ)) >= 0.15, kind


def test_every_pair_of_tones_differs_clearly_on_more_than_one_cue() -> None:
    """At least two features differ by a noticeable step each, and the whole vectors are far
    apart, so no pair of tones leans on a single cue (length alone is easy to miss)."""
    features = {kind: _features(make_tone(kind, ANALYSIS_RATE_HZ)) for kind in KINDS}
    for a, b in itertools.combinations(KINDS, 2):
        gaps = {name: abs(features[a][name] - features[b][name]) for name in features[a]}
        clear = [name for name, gap in gaps.items() if gap >= 1.0]
        distance = math.sqrt(sum(gap ** 2 for gap in gaps.values()))
        assert len(clear) >= 2, (a, b, gaps)
        assert distance >= 3.0, (a, b, gaps)


# --- a real tool reads what we write -------------------------------------------------------------

def _write_wav(path: Path, clip: Clip) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(clip.sample_rate_hz)
        out.writeframes(clip.samples.astype("<i2").tobytes())


def _soxi(path: Path, option: str) -> str:
    sox = shutil.which("sox")
    assert sox is not None
    done = subprocess.run([sox, "--i", option, str(path)], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed (setup.sh installs it)")
@pytest.mark.parametrize("rate_hz", (16000, 44100))
@pytest.mark.parametrize("kind", KINDS)
def test_sox_reads_the_tone_as_written(kind: ToneKind, rate_hz: int, tmp_path: Path) -> None:
    clip = make_tone(kind, rate_hz)
    path = tmp_path / f"{kind}.wav"
    _write_wav(path, clip)
    assert int(_soxi(path, "-r")) == rate_hz
    assert int(_soxi(path, "-s")) == round(TONE_SECONDS[kind] * rate_hz)
    assert int(_soxi(path, "-c")) == 1
    with wave.open(str(path), "rb") as back:
        data = np.frombuffer(back.readframes(back.getnframes()), dtype="<i2")
    assert np.array_equal(data, clip.samples)
