"""Tones made in code: the chimes that mark holds and side switches, and the countdown tick.

The listener lies on a mat with eyes closed, so each tone must be told apart at once and must
never startle. They differ on several cues at the same time, not just one:

- ``hold_start``: two notes going *up* (E5 -> A5), bright chime, short (0.4 s). "Begin."
- ``hold_end``: the same two notes going *down* (A5 -> E5), softer bell that rings longer
  (0.6 s). "Let go." The falling interval is the universal "done" cue.
- ``side_switch``: *three* quick notes, lower (A4 -> E5 -> A4), in a wooden, marimba-like
  timbre (0.9 s). Note count, register and timbre all differ from the two chimes.
- ``tick``: one soft woodblock "tock" (80 ms) with no held pitch, well below the chimes, so
  it sits under a spoken count instead of competing with it.

Every note has a raised-cosine attack and an exponential decay, and every tone ends with a
raised-cosine fade, so the first and last samples are zero: no clicks at the edges. Each tone
is scaled to an exact peak level, so nothing clips. Lengths are exactly
``round(TONE_SECONDS[kind] * sample_rate_hz)`` samples, because the plan times everything with
``TONE_SECONDS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral

import numpy as np

from coach.plan import TONE_SECONDS, ToneKind
from coach.speech.clip import Clip

# Levels. -6 dBFS leaves headroom when a tone overlaps speech in the mix and is clearly audible
# without being loud; the tick sits 8 dB lower because it repeats every second during counts.
CHIME_PEAK_DBFS = -6.0
TICK_PEAK_DBFS = -14.0

# Edges. 8 ms is slower than a struck bell (1-2 ms) on purpose: the onset stays clear but soft.
# The tick needs a crisper onset to read as a "tock", yet 5 ms still keeps it click-free.
CHIME_ATTACK_SECONDS = 0.008
TICK_ATTACK_SECONDS = 0.005
# A closing fade makes the last sample exactly zero whatever the note is still doing.
CHIME_END_FADE_SECONDS = 0.02
TICK_END_FADE_SECONDS = 0.01

# Partials as (ratio to the note, level). Higher partials also decay faster (decay / ratio),
# as in real struck instruments, so each note starts bright and mellows.
CHIME_PARTIALS: tuple[tuple[float, float], ...] = ((1.0, 1.0), (2.0, 0.3), (3.0, 0.1))
# Fewer, weaker overtones: a rounder, calmer sound for "let go".
SOFT_BELL_PARTIALS: tuple[tuple[float, float], ...] = ((1.0, 1.0), (2.0, 0.15))
# A marimba bar's first overtone sits two octaves up; that gap gives the woody colour.
MARIMBA_PARTIALS: tuple[tuple[float, float], ...] = ((1.0, 1.0), (4.0, 0.25))

# hold_start: a rising perfect fourth, E5 -> A5; the second note enters before the first dies
# so the two read as one gesture.
HOLD_START_NOTES_HZ = (660.0, 880.0)
HOLD_START_ONSETS_SECONDS = (0.0, 0.15)
HOLD_START_DECAY_SECONDS = 0.12

# hold_end: the same fourth falling, A5 -> E5, spaced wider and ringing longer (calmer).
HOLD_END_NOTES_HZ = (880.0, 660.0)
HOLD_END_ONSETS_SECONDS = (0.0, 0.22)
HOLD_END_DECAY_SECONDS = 0.2

# side_switch: "ding-dong-ding" a fifth apart, an octave below the chimes' first note.
SIDE_SWITCH_NOTES_HZ = (440.0, 660.0, 440.0)
SIDE_SWITCH_ONSETS_SECONDS = (0.0, 0.15, 0.3)
SIDE_SWITCH_DECAY_SECONDS = 0.12

# tick: two inharmonic modes (as in a wooden block) decaying within ~30 ms, so the ear hears a
# knock, not a note. Around 1 kHz the ear is sensitive, so a low level is enough.
TICK_MODES_HZ = (1000.0, 2500.0)
TICK_MODE_LEVELS = (1.0, 0.3)
TICK_DECAY_SECONDS = 0.012

# Partials this close to the Nyquist frequency are dropped rather than aliased.
MAX_PARTIAL_FRACTION_OF_RATE = 0.45

INT16_FULL_SCALE = 32767


@dataclass(frozen=True)
class _Note:
    hz: float
    onset_seconds: float
    decay_seconds: float


def make_tone(kind: ToneKind, sample_rate_hz: int) -> Clip:
    """The tone ``kind`` at ``sample_rate_hz``, exactly ``TONE_SECONDS[kind]`` long (rounded to a sample).

    The same ``Clip`` (with read-only samples) is returned for the same arguments.
    """
    if kind not in TONE_SECONDS:
        raise ValueError(f"unknown tone {kind!r}; use one of: {', '.join(TONE_SECONDS)}")
    if isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, Integral) or sample_rate_hz <= 0:
        raise ValueError(f"sample rate must be a positive whole number of hertz, got {sample_rate_hz!r}")
    # int(): numpy integers are accepted, and share the cache entry of the equal plain int.
    return _make_tone(kind, int(sample_rate_hz))


@lru_cache(maxsize=64)
def _make_tone(kind: ToneKind, sample_rate_hz: int) -> Clip:
    n_samples = round(TONE_SECONDS[kind] * sample_rate_hz)
    t_seconds = np.arange(n_samples, dtype=np.float64) / sample_rate_hz
    if kind == "tick":
        wave = _tick(t_seconds, sample_rate_hz)
        peak_dbfs, fade_seconds = TICK_PEAK_DBFS, TICK_END_FADE_SECONDS
    else:
        wave = _chime(kind, t_seconds, sample_rate_hz)
        peak_dbfs, fade_seconds = CHIME_PEAK_DBFS, CHIME_END_FADE_SECONDS
    wave *= _end_fade(n_samples, round(fade_seconds * sample_rate_hz))
    samples = _to_int16(wave, peak_dbfs)
    samples.flags.writeable = False
    return Clip(samples, sample_rate_hz)


def _chime(kind: ToneKind, t_seconds: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    if kind == "hold_start":
        notes = _notes(HOLD_START_NOTES_HZ, HOLD_START_ONSETS_SECONDS, HOLD_START_DECAY_SECONDS)
        partials = CHIME_PARTIALS
    elif kind == "hold_end":
        notes = _notes(HOLD_END_NOTES_HZ, HOLD_END_ONSETS_SECONDS, HOLD_END_DECAY_SECONDS)
        partials = SOFT_BELL_PARTIALS
    else:
        notes = _notes(SIDE_SWITCH_NOTES_HZ, SIDE_SWITCH_ONSETS_SECONDS, SIDE_SWITCH_DECAY_SECONDS)
        partials = MARIMBA_PARTIALS
    wave = np.zeros_like(t_seconds)
    for note in notes:
        for ratio, level in partials:
            wave += level * _struck_sine(
                t_seconds, note.hz * ratio, note.onset_seconds, note.decay_seconds / ratio,
                CHIME_ATTACK_SECONDS, sample_rate_hz,
            )
    return wave


def _tick(t_seconds: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    wave = np.zeros_like(t_seconds)
    for hz, level in zip(TICK_MODES_HZ, TICK_MODE_LEVELS):
        wave += level * _struck_sine(t_seconds, hz, 0.0, TICK_DECAY_SECONDS, TICK_ATTACK_SECONDS, sample_rate_hz)
    return wave


def _notes(notes_hz: tuple[float, ...], onsets_seconds: tuple[float, ...], decay_seconds: float) -> tuple[_Note, ...]:
    return tuple(_Note(hz, onset, decay_seconds) for hz, onset in zip(notes_hz, onsets_seconds, strict=True))


def _struck_sine(t_seconds: np.ndarray, hz: float, onset_seconds: float, decay_seconds: float,
                 attack_seconds: float, sample_rate_hz: int) -> np.ndarray:
    """A sine starting at zero phase at ``onset_seconds``, raised-cosine attack, exponential decay."""
    if hz >= MAX_PARTIAL_FRACTION_OF_RATE * sample_rate_hz:
        return np.zeros_like(t_seconds)
    local = t_seconds - onset_seconds
    sounding = local >= 0.0
    local = np.where(sounding, local, 0.0)
    attack = np.where(local < attack_seconds, 0.5 * (1.0 - np.cos(np.pi * local / attack_seconds)), 1.0)
    envelope = np.where(sounding, attack * np.exp(-local / decay_seconds), 0.0)
    return envelope * np.sin(2.0 * np.pi * hz * local)


def _end_fade(n_samples: int, fade_samples: int) -> np.ndarray:
    """Ones, then a half-cosine down to exactly zero at the last sample."""
    gain = np.ones(n_samples)
    fade_samples = min(fade_samples, n_samples)
    if fade_samples >= 2:
        gain[-fade_samples:] = 0.5 * (1.0 + np.cos(np.pi * np.arange(fade_samples) / (fade_samples - 1)))
    return gain


def _to_int16(wave: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Scale so the peak lands on ``peak_dbfs``; well below full scale, so rounding cannot clip."""
    peak = float(np.max(np.abs(wave)))
    if peak == 0.0:
        return np.zeros(len(wave), dtype=np.int16)
    target = INT16_FULL_SCALE * 10.0 ** (peak_dbfs / 20.0)
    return np.round(wave * (target / peak)).astype(np.int16)
