"""A clip: mono 16-bit PCM at a known sample rate; what voices and tones produce."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True, eq=False)
class Clip:
    """``samples`` is a 1-D ``numpy.int16`` array of mono PCM at ``sample_rate_hz``."""

    samples: np.ndarray
    sample_rate_hz: int

    def __post_init__(self) -> None:
        if self.samples.dtype != np.int16 or self.samples.ndim != 1:
            raise ValueError(f"a clip holds 1-D int16 samples, got {self.samples.dtype} with {self.samples.ndim} dims")
        if self.sample_rate_hz <= 0:
            raise ValueError(f"sample rate must be positive, got {self.sample_rate_hz}")

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate_hz


class Voice(Protocol):
    """A speech engine behind one small interface: text in, clip out.

    Implementations are created explicitly (never at import time), synthesize into memory or a
    file (never play audio themselves) and release their engine in ``close``.
    """

    @property
    def sample_rate_hz(self) -> int: ...

    def cache_key(self) -> str:
        """Everything that changes the sound for a given text (engine, version, voice, rate...)."""
        ...

    def synthesize(self, text: str) -> Clip: ...

    def close(self) -> None: ...
