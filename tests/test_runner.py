"""The real-time runner against a real sound server: a private PulseAudio with null sinks.

The runner plays into the sink ``out``; the tests record its monitor and compare what was
heard with ``coach render`` of the same session, sample for sample where it can be.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


from coach.catalog import resolve_routine
from coach.plan import Plan, PlanOptions
from coach.session.engine import PAUSED
from coach.session.events import Command
from coach.speech.tones import make_tone
from coach.script import load_routine
from coach.session.events import CommandReceived, SessionEnded
from tests.live_check import best_lag, play_live, snr_db, tone_errors
from tests.pulse import PulseServer
from tests.speech_check import needs_system_voice

pytestmark = [needs_system_voice]


def routine(name: str):
    return load_routine(resolve_routine(name).path)


def test_live_session_sounds_like_its_render(pulse: PulseServer, sounddevice_pulse: object, tmp_path: Path) -> None:
    run = play_live(pulse, routine("quick"), PlanOptions(), tmp_path)
    assert run.events[-1] == SessionEnded(run.events[-1].at_t, "completed")
    offset = best_lag(run.recording, run.reference)
    errors = tone_errors(run, offset)
    assert len(errors) == 10  # 2 holds: start and end tones, 3 ticks each
    worst = max(abs(error) for _, error in errors)
    assert worst <= 0.02, errors  # every tone where the render has it, to 20 ms
    # Not only the tones: the whole session is the render, through two resamplings.
    assert snr_db(run.recording[offset:], run.reference) > 15
    assert run.stats.starved_callbacks == 0


def test_pause_is_heard_at_once_and_the_hold_keeps_its_length(
        pulse: PulseServer, sounddevice_pulse: object, tmp_path: Path) -> None:
    pause_for = 6.0

    def presses(plan: Plan) -> list[tuple[float, Command]]:
        hold = next(s for s in plan.segments if s.kind == "hold")
        # After the start tone, before the first countdown tick: the hold is silent here.
        return [(hold.start + 0.7, "pause"), (hold.start + 0.7 + pause_for, "resume")]

    run = play_live(pulse, routine("quick"), PlanOptions(), tmp_path, commands=presses)
    assert [e.command for e in run.events if isinstance(e, CommandReceived)] == ["pause", "resume"]
    plan, rate = run.spoken.plan, run.rate
    hold = next(s for s in plan.segments if s.kind == "hold")
    origin = run.events[0].at_t
    offset = best_lag(run.recording, run.reference[: round(hold.start * rate)])  # before the pause

    def index(t: float) -> int:
        return offset + round((t - origin) * rate)

    (paused_at, _), (resumed_at, _) = run.submitted
    loud = np.flatnonzero(np.abs(run.recording[index(paused_at):].astype(np.int32)) > 1000)
    heard_after = loud[0] / rate
    assert heard_after < 0.5  # the "Paused" prompt; tests/bench/bench_live.py measures it properly
    prompt = run.spoken.clips[PAUSED].seconds
    quiet = run.recording[index(paused_at) + round((heard_after + prompt + 0.2) * rate): index(resumed_at)]
    assert len(quiet) > rate and np.abs(quiet.astype(np.int32)).max() < 300  # no ticks while paused

    def onset(tone: str, after: int) -> int:
        samples = make_tone(tone, rate).samples  # type: ignore[arg-type]
        window = run.recording[after: after + 8 * rate]
        return after + best_lag(window, samples)

    started = onset("hold_start", index(origin + hold.start) - rate // 10)
    ended = onset("hold_end", index(resumed_at))
    held = (ended - started) / rate - (resumed_at - paused_at)
    assert held == pytest.approx(hold.seconds, abs=0.05)  # the hold is its scripted length, pause aside


def test_a_device_that_cannot_play_is_one_line_naming_coach_devices(
        pulse: PulseServer, sounddevice_pulse: object) -> None:
    from coach.audio.player import Player
    from coach.errors import CoachError

    with pytest.raises(CoachError, match=r"audio device 999: .*coach devices"):
        Player(22050, device=999).open()
