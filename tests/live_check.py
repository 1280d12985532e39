"""Play a routine through the real runner into the private PulseAudio server and compare what
the sink's monitor heard with ``coach render`` of the same session; shared by the runner tests
and the live benchmark (tests/bench/bench_live.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from coach.audio.player import DEFAULT_LATENCY_SECONDS, Player, PlayerStats
from coach.plan import Plan, PlanOptions
from coach.render import SpokenPlan, mix, place
from coach.routine import Routine
from coach.session.engine import SessionEngine
from coach.session.events import Command, Event, Status
from coach.session.runner import Runner, speak_session_phrases, speech_timer
from coach.speech.cache import CachedVoice, PhraseCache, default_cache_dir
from coach.speech.clip import Clip
from coach.speech.profiles import make_voice, resolve_profile
from tests.pulse import OUT_MONITOR, PulseServer


class _Silent:
    def update(self, status: Status) -> None:
        pass

    def note(self, text: str) -> None:
        pass


@dataclass
class LiveRun:
    """What one live session did: the monitor's recording, the engine's plan, the events."""

    recording: np.ndarray
    rate: int
    reference: np.ndarray
    """``render``'s mix of the plan the session ended with (the same clips), as int16."""
    spoken: SpokenPlan
    events: list[Event]
    stats: PlayerStats
    submitted: list[tuple[float, Command]] = field(default_factory=list)
    """(runner time, command) for each command submitted; runner time is stream seconds."""
    seconds: float = 0.0
    """Wall time the session took."""
    cpu_seconds: float = 0.0
    """This process's CPU time over the session (all threads)."""


def session_clips(routine: Routine, options: PlanOptions, voice_name: str = "system") -> tuple[CachedVoice, dict[str, Clip]]:
    voice = CachedVoice(make_voice(resolve_profile(voice_name)), PhraseCache(default_cache_dir()))
    return voice, speak_session_phrases(routine, options, voice)


Presses = Callable[[Plan], Sequence[tuple[float, Command]]]


def play_live(pulse: PulseServer, routine: Routine, options: PlanOptions, workdir: Path, *,
              commands: Presses = lambda plan: (), voice_name: str = "system",
              latency_seconds: float = DEFAULT_LATENCY_SECONDS) -> LiveRun:
    """Run ``routine`` live into the sink ``out`` while recording ``out.monitor``.

    ``commands`` gives, for the session's plan, (seconds after the session's start, command) to
    submit from another thread, as a key press would be. Seconds are on the session clock and
    keep running through a pause.
    """
    voice, clips = session_clips(routine, options, voice_name)
    rate = next(iter(clips.values())).sample_rate_hz
    engine = SessionEngine(routine, options, speech_timer(clips))
    events: list[Event] = []
    submitted: list[tuple[float, Command]] = []
    with pulse.record(OUT_MONITOR, workdir / "heard.wav", rate_hz=rate) as recording:
        with Player(rate, latency_seconds=latency_seconds) as player:
            runner = Runner(engine, player, clips, voice, record=events.append, display=_Silent())
            started = time.monotonic()
            presses = commands(engine.plan)

            def press() -> None:
                while not events:  # the session's start time is its first event
                    time.sleep(0.005)
                origin = events[0].at_t
                for after, command in presses:
                    while player.now() < origin + after:
                        time.sleep(0.002)
                    submitted.append((player.now(), command))
                    runner.submit(command)

            presser = threading.Thread(target=press, daemon=True)
            presser.start()
            cpu = time.process_time()
            runner.run()
            cpu = time.process_time() - cpu
            seconds = time.monotonic() - started
            presser.join(timeout=1.0)
            stats = player.stats
        time.sleep(0.3)  # the monitor lags the sink a little
    voice.close()
    spoken = SpokenPlan(engine.plan, clips, rate)
    reference = np.concatenate(list(mix(place(spoken), spoken.total_samples)))
    return LiveRun(recording.samples(), rate, reference, spoken, events, stats, submitted, seconds, cpu)


def best_lag(haystack: np.ndarray, needle: np.ndarray) -> int:
    """The offset of ``needle`` in ``haystack`` with the highest cross-correlation (FFT)."""
    size = 1 << (len(haystack) + len(needle)).bit_length()
    spectrum = np.fft.rfft(haystack.astype(np.float64), size) * np.conj(np.fft.rfft(needle.astype(np.float64), size))
    correlation = np.fft.irfft(spectrum, size)[: len(haystack) - len(needle) + 1]
    return int(np.argmax(correlation))


def tone_errors(run: LiveRun, offset: int, search_seconds: float = 0.1) -> list[tuple[float, float]]:
    """For each tone of the plan: (planned seconds, error seconds) of where it was heard.

    ``offset``: where the reference's sample 0 is in the recording. Each tone is looked for
    within ``search_seconds`` of its planned place by cross-correlation with the tone itself.
    """
    rate, search = run.rate, round(search_seconds * run.rate)
    found = []
    for placement in place(run.spoken):
        if placement.segment.tone is None:
            continue
        planned = offset + placement.start_sample
        lo = max(0, planned - search)
        window = run.recording[lo: planned + len(placement.samples) + search]
        if len(window) < len(placement.samples):
            continue
        lag = best_lag(window, placement.samples)
        found.append((placement.segment.start, (lo + lag - planned) / rate))
    return found


def snr_db(recorded: np.ndarray, reference: np.ndarray) -> float:
    """How closely ``recorded`` (already aligned) matches ``reference``, gain fitted by least squares."""
    ref = reference.astype(np.float64)
    got = recorded[: len(ref)].astype(np.float64)
    gain = float(np.dot(got, ref) / max(np.dot(ref, ref), 1.0))
    residual = got - gain * ref
    return float(10 * np.log10(np.dot(gain * ref, gain * ref) / max(np.dot(residual, residual), 1e-9)))
