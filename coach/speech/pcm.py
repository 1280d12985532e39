"""PCM helpers shared by the voices: reading an engine's WAV file and trimming its padding."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from coach.errors import CoachError
from coach.speech.clip import Clip

# Samples whose magnitude is at most this count as silence: about -60 dBFS. Engines pad with
# exact zeros (espeak-ng) or with a faint hiss (Piper, around +-10), never with speech this quiet.
SILENCE_THRESHOLD = 32
# Silence kept at each end so that soft attacks and releases are not clipped.
KEEP_SILENCE_SECONDS = 0.03


def trim_silence(clip: Clip) -> Clip:
    """Cut leading and trailing silence beyond ``KEEP_SILENCE_SECONDS`` at each end.

    TTS engines pad phrases (espeak-ng adds ~350 ms at the end); the coach times the gaps
    between phrases itself. A clip that is silent throughout becomes empty.
    """
    loud = np.flatnonzero(np.abs(clip.samples.astype(np.int32)) > SILENCE_THRESHOLD)
    if loud.size == 0:
        return Clip(np.zeros(0, dtype=np.int16), clip.sample_rate_hz)
    keep = round(KEEP_SILENCE_SECONDS * clip.sample_rate_hz)
    start = max(0, int(loud[0]) - keep)
    stop = min(len(clip.samples), int(loud[-1]) + 1 + keep)
    return Clip(clip.samples[start:stop].copy(), clip.sample_rate_hz)


def read_wav_clip(path: Path | str) -> Clip:
    """Read a PCM WAV file of any width (8, 16, 24 or 32 bit) and channel count as int16 mono."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width_bytes, rate_hz = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as error:
        raise CoachError(f"cannot read the speech engine's WAV file {path}: {error}") from None
    raw = raw[: len(raw) - len(raw) % (channels * width_bytes)]  # whole frames only
    if width_bytes == 1:  # 8-bit WAV is unsigned
        samples = (np.frombuffer(raw, np.uint8).astype(np.int32) - 128) << 8
    elif width_bytes == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.int32)
    elif width_bytes == 3:  # keep the two high bytes of each little-endian 24-bit sample
        triples = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        samples = triples[:, 1:].copy().view("<i2").reshape(-1).astype(np.int32)
    elif width_bytes == 4:
        samples = np.frombuffer(raw, "<i4") >> 16
    else:
        raise CoachError(f"the speech engine wrote {8 * width_bytes}-bit samples to {path}, which coach cannot read")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).round()
    return Clip(samples.astype(np.int16), rate_hz)
