"""Sounds at absolute sample positions, played through one PortAudio output stream.

The design keeps the audio callback trivial and the timing exact:

- The session's clock is the stream's: runner time ``t`` is sample ``t * rate`` of the
  stream, and ``now()`` is the sample being heard at this moment (from PortAudio's DAC time at
  the last callback, plus the monotonic time since). A sound device's clock runs a few hundred
  parts per million off ``time.monotonic()`` (300-500 ppm for PulseAudio's null sink here: 0.4 s
  over 22 minutes), so a session timed by the monotonic clock would drift from what is heard;
  timed by the stream it cannot, and it lays its sounds out exactly as ``coach render`` does.
- A feeder thread mixes a short lead (``lead_seconds``) ahead into a ring buffer; the PortAudio
  callback only copies from the ring and moves the read position on. It never mixes, allocates
  a Python object per sound, or waits on anything but a short lock held for a copy.
- A change (a new sound, stop, a volume step) rewrites the ring from a short guard past the
  read position, so a key press is heard after about that guard plus the device latency, not
  after the whole lead.
- The read position moves on by every frame the device asks for, even when the ring ran dry:
  a starved callback is a gap of silence, never a shift of everything after it.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from coach.errors import CoachError

DEFAULT_LATENCY_SECONDS = 0.1
"""Asked of PortAudio, which then picks its own block size (about 275 frames at 22.05 kHz).

Measured on PortAudio's ALSA into PulseAudio with a busy core and a thread holding the GIL:
0.05 s and 0.1 s never underflowed; 'low' (8.7 ms, 64-frame blocks) underflowed 19 times in
20 s; 'high' once. The latency PortAudio then reports matched the null sink's monitor. 0.05
rather than 0.1 because a key press must be heard within 150 ms.
"""
GUARD_FRAMES = 256
"""A change rewrites the ring from this far past the read position (12 ms at 22.05 kHz).

The callback copies under the lock, so a rewrite can never tear a block being copied; the
guard only gives the feeder time to mix the rewritten part before the next callback wants it.
"""
DEFAULT_LEAD_SECONDS = 0.25
"""How far ahead the feeder mixes: covers a feeder thread held up by the GIL or the runner."""
FADE_SECONDS = 0.008
"""Sounds cut off by a stop fade out over this long instead of clicking."""
SETTLE_TIMEOUT_SECONDS = 5.0
STEADY_SPREAD_SECONDS = 0.01


@dataclass
class _Sound:
    start: int
    samples: np.ndarray  # int16, mono

    @property
    def end(self) -> int:
        return self.start + len(self.samples)


@dataclass
class PlayerStats:
    """What went wrong, counted for the benchmark and for a warning at the end of a session."""

    callbacks: int = 0
    starved_callbacks: int = 0
    """The ring ran dry: the feeder fell behind by more than the lead."""
    device_underflows: int = 0
    """PortAudio reported an output underflow: the callback itself came too late."""
    late_sounds: int = 0
    """Sounds asked for after their start sample could still be changed; they start late."""
    max_frames: int = 0
    output_latency_seconds: float = 0.0
    """From the callback to the DAC at the last callback, as PortAudio tells it."""


def _open_output_stream(**kwargs: Any) -> Any:
    import sounddevice  # imported here: PortAudio may be missing, and only live sessions need it
    return sounddevice.OutputStream(**kwargs)


class Player:
    """Plays int16 mono sounds at runner times; ``open`` it, ``play`` into it, ``close`` it."""

    def __init__(self, sample_rate_hz: int, device: int | None = None, *,
                 latency_seconds: float = DEFAULT_LATENCY_SECONDS, lead_seconds: float = DEFAULT_LEAD_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 open_stream: Callable[..., Any] = _open_output_stream) -> None:
        self.rate = sample_rate_hz
        self._device = device
        self._latency = latency_seconds
        self._lead = round(lead_seconds * sample_rate_hz)
        self._clock = clock
        self._open_stream = open_stream
        self._ring = np.zeros(1 << (4 * self._lead).bit_length(), dtype=np.int16)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._read = 0  # next sample the callback copies
        self._written = 0  # end of the mixed part of the ring
        self._sounds: list[_Sound] = []
        self._last_end = 0  # the end of the last sound the feeder let go of
        self._gain = 1.0
        self._generation = 0
        # The clock: at monotonic time ``_heard_at`` the stream's sample ``_heard_sample`` was heard.
        self._heard_at = 0.0
        self._heard_sample = 0.0
        self._last_now = 0.0
        self._steady = threading.Event()
        self._estimates: collections.deque[float] = collections.deque(maxlen=16)
        self._closing = False
        self._stream: Any = None
        self._feeder: threading.Thread | None = None
        self.stats = PlayerStats()

    # --- lifetime --------------------------------------------------------------------------

    def open(self) -> None:
        """Start the stream; return once it plays at its steady pace."""
        # The feeder first, so the first callback finds the ring filled (with silence).
        self._feeder = threading.Thread(target=self._feed, name="coach-audio-feeder", daemon=True)
        self._feeder.start()
        try:
            self._stream = self._open_stream(
                samplerate=self.rate, channels=1, dtype="int16", blocksize=0,
                latency=self._latency, device=self._device, callback=self._callback)
            self._stream.start()
        except Exception as error:  # sounddevice.PortAudioError, or ValueError for a bad device
            self.close()
            device = self._device if self._device is not None else "(the default)"
            raise CoachError(f"cannot play on audio device {device}: {error}; "
                             "choose another with --device (see `coach devices`)") from error
        if not self._steady.wait(SETTLE_TIMEOUT_SECONDS):
            if self.stats.callbacks == 0:
                self.close()
                raise CoachError("the audio device accepted the stream but never asked for sound; "
                                 "check the sound server, or choose another device (see `coach devices`)")
            # Irregular but running: go on; the clock follows the callbacks anyway.

    def close(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._stream is not None:
            try:
                self._stream.abort()  # now, not after the buffered audio: the session is over
            finally:
                self._stream.close()
                self._stream = None
        if self._feeder is not None:
            self._feeder.join(timeout=2.0)

    def __enter__(self) -> Player:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- time ------------------------------------------------------------------------------

    def sample_of(self, t: float) -> int:
        return round(t * self.rate)

    def time_of(self, sample: int) -> float:
        return sample / self.rate

    def now(self) -> float:
        """The runner time being heard at this moment: the stream's position, in seconds.

        Never goes back: after an underflow the sink plays silence the stream did not write,
        and the clock waits for the stream rather than jump back.
        """
        with self._lock:
            heard = self._heard_sample / self.rate + (self._clock() - self._heard_at)
            # Between callbacks the estimate runs on the monotonic clock; never past what is written.
            heard = min(heard, (self._read + GUARD_FRAMES) / self.rate)
            self._last_now = max(self._last_now, heard)
            return self._last_now

    def earliest_t(self) -> float:
        """The runner time of the first sample that a change made now can still reach."""
        with self._lock:
            return self.time_of(self._read + GUARD_FRAMES)

    def idle_t(self) -> float:
        """The runner time at which everything scheduled so far has been heard."""
        with self._lock:
            return self.time_of(max((sound.end for sound in self._sounds), default=self._last_end))

    # --- sounds ----------------------------------------------------------------------------

    def play(self, samples: np.ndarray, at_t: float, from_seconds: float = 0.0) -> None:
        """Schedule ``samples`` (int16 mono) to start at runner time ``at_t``.

        ``from_seconds`` drops the sound's first part. A start that can no longer be reached
        is moved to the earliest sample that can: speech must not lose its first syllable.
        """
        skip = round(from_seconds * self.rate)
        samples = samples[skip:]
        if not len(samples):
            return
        start = self.sample_of(at_t)
        with self._changed:
            earliest = self._read + GUARD_FRAMES
            if start < earliest:
                if earliest - start > GUARD_FRAMES:  # within the guard it is just scheduling
                    self.stats.late_sounds += 1
                start = earliest
            self._sounds.append(_Sound(start, samples))
            self._rewind(start)

    def stop_all(self) -> None:
        """Silence everything scheduled or sounding, fading out what is mid-sound."""
        with self._changed:
            cut = self._read + GUARD_FRAMES
            fade = round(FADE_SECONDS * self.rate)
            kept = []
            for sound in self._sounds:
                if sound.start < cut < sound.end:
                    tail = sound.samples[: min(len(sound.samples), cut - sound.start + fade)].astype(np.float32)
                    ramp_from = cut - sound.start
                    ramp = np.linspace(1.0, 0.0, len(tail) - ramp_from, dtype=np.float32)
                    tail[ramp_from:] *= ramp
                    kept.append(_Sound(sound.start, tail.astype(np.int16)))
            self._sounds = kept
            self._rewind(cut)

    def set_gain_db(self, db: float) -> None:
        with self._changed:
            self._gain = float(10 ** (db / 20))
            self._rewind(self._read + GUARD_FRAMES)

    def _rewind(self, sample: int) -> None:
        """Have the ring mixed again from ``sample`` (lock held)."""
        self._generation += 1
        self._written = max(self._read + GUARD_FRAMES, min(self._written, sample))
        self._changed.notify()

    # --- threads ---------------------------------------------------------------------------

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # The PortAudio thread: copy, move on, note the time, nothing else.
        called_at = self._clock()
        out = outdata[:, 0]
        size = len(self._ring)
        with self._lock:
            read = self._read
            ready = min(frames, max(0, self._written - read))
            at = read % size
            first = min(ready, size - at)
            out[:first] = self._ring[at: at + first]
            out[first:ready] = self._ring[: ready - first]
            out[ready:] = 0
            self._read = read + frames
            self._written = max(self._written, self._read)
            # PortAudio's times are on its own clock (wall time here): only their difference counts.
            latency = max(0.0, time_info.outputBufferDacTime - time_info.currentTime)
            self._heard_at = called_at
            self._heard_sample = read - latency * self.rate
            stats = self.stats
            stats.callbacks += 1
            stats.max_frames = max(stats.max_frames, frames)
            stats.output_latency_seconds = latency
            if ready < frames:
                stats.starved_callbacks += 1
            if status.output_underflow:
                stats.device_underflows += 1
            if not self._steady.is_set():
                self._note_pace(called_at + latency - read / self.rate)
            self._changed.notify()

    def _note_pace(self, sample_zero_at: float) -> None:
        """Steady once the monotonic time of sample 0, seen from each callback, stops moving.

        A PulseAudio stream asks for a few blocks, then stalls while the server prebuffers (0.3 s
        here), then runs steadily; the session should start after that.
        """
        self._estimates.append(sample_zero_at)
        if len(self._estimates) == self._estimates.maxlen and \
                max(self._estimates) - min(self._estimates) < STEADY_SPREAD_SECONDS:
            self._steady.set()

    def _feed(self) -> None:
        """Keep the ring mixed ``lead`` samples ahead of the callback."""
        while True:
            with self._changed:
                while not self._closing and self._written >= self._read + self._lead - GUARD_FRAMES:
                    self._changed.wait(timeout=0.05)
                if self._closing:
                    return
                start, end, generation = self._written, self._read + self._lead, self._generation
                done = [sound.end for sound in self._sounds if sound.end <= self._read]
                self._last_end = max(done, default=self._last_end)
                self._sounds = [sound for sound in self._sounds if sound.end > self._read]
                sounds = [sound for sound in self._sounds if sound.start < end and sound.end > start]
                gain = self._gain
            block = _mix(sounds, start, end, gain)  # outside the lock: the callback never waits on it
            with self._lock:
                if generation != self._generation or self._written != start:
                    continue  # something changed meanwhile: mix again from the new position
                begin = max(start, self._read)  # a starved callback may have passed ``start``
                self._put(begin, block[begin - start:])
                self._written = end

    def _put(self, sample: int, block: np.ndarray) -> None:
        size = len(self._ring)
        at = sample % size
        first = min(len(block), size - at)
        self._ring[at: at + first] = block[:first]
        self._ring[: len(block) - first] = block[first:]


def _mix(sounds: list[_Sound], start: int, end: int, gain: float) -> np.ndarray:
    """Samples ``start``..``end`` of the sum of ``sounds``, clipped to 16 bits like ``render.mix``."""
    total = np.zeros(end - start, dtype=np.int32)
    for sound in sounds:
        lo, hi = max(start, sound.start), min(end, sound.end)
        if lo < hi:
            total[lo - start: hi - start] += sound.samples[lo - sound.start: hi - sound.start]
    if gain != 1.0:
        total = np.rint(total * gain).astype(np.int32)
    return np.clip(total, -32768, 32767).astype(np.int16)
