"""Benchmark of live sessions (``coach run``): timing against the render, key latency, CPU.

A script, not a test. It starts its own private PulseAudio server (tests/pulse.py), plays
sessions through the real runner and player into the null sink ``out``, records ``out.monitor``
with parecord and compares the recording with ``coach render`` of the same session (same clips,
same plan). About 13 minutes with the defaults::

    .venv/bin/python tests/bench/bench_live.py                  # 10-minute session, 20 key presses
    .venv/bin/python tests/bench/bench_live.py --minutes 2 --presses 6   # a quick check
    .venv/bin/python tests/bench/bench_live.py --out live.json

What is measured:

- Boundary error: every tone (hold start and end chimes, countdown ticks, side switches) of the
  session is found in the recording by cross-correlation with the tone itself, within 100 ms of
  where the render has it. The render is aligned with the recording once, on the session's
  first minute, so an error late in the session includes any drift. p50/p99/max of |error|.
- Drift: the median error of the tones in the last minute of the session (same alignment).
- Key press to audible: a routine with one long silent hold; "pause" is submitted to the runner
  (as the key reader does) at silent moments, "resume" 3.5 s later. Latency is from the press to
  the first sample of the "Paused" prompt in the recording, both on the stream's clock: the
  press is stamped with ``Player.now()``, the sample being heard at that moment, from
  PortAudio's DAC time (which matched the monitor to 5 ms when the sink was measured). Also once
  "tingling" to its "Easing off" answer. The key reader's own path (select on the terminal,
  one queue put) is not in it.
- CPU: process CPU seconds (all threads) over wall seconds while the session plays, against the
  bare cost of the same stream: a PortAudio stream at the same settings whose callback writes
  zeros, for the same length of time.

The leg-numbness routine (12.6 minutes) with the system voice, ended by ``end_session`` after
``--minutes``. Everything runs under a temporary ``COACH_HOME``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from coach.audio.player import DEFAULT_LATENCY_SECONDS  # noqa: E402
from coach.catalog import resolve_routine  # noqa: E402
from coach.plan import PlanOptions  # noqa: E402
from coach.script import load_routine  # noqa: E402
from coach.session.engine import EASING, PAUSED  # noqa: E402
from coach.session.events import Command  # noqa: E402
from tests.live_check import LiveRun, best_lag, play_live, tone_errors  # noqa: E402
from tests.pulse import PulseServer, reinitialize_portaudio  # noqa: E402

ONSET_LEVEL = 200
"""A response starts at its first sample above this (of 32767): holds are digital silence, so
any sound there is the response; a higher level would count its soft first milliseconds as late."""

LONG_HOLD = """\
title: Latency check
exercises:
  - name: Long hold
    say: Hold still.
    hold: {seconds}
    rounds: 1
"""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def timing(pulse: PulseServer, minutes: float, work: Path, latency_seconds: float) -> dict[str, object]:
    routine = load_routine(resolve_routine("leg-numbness").path)
    run = play_live(pulse, routine, PlanOptions(), work,
                    commands=lambda plan: [(minutes * 60.0, "end_session")], latency_seconds=latency_seconds)
    rate = run.rate
    first = run.reference[: 60 * rate]
    offset = best_lag(run.recording[: 90 * rate], first)
    errors = [(start, error) for start, error in tone_errors(run, offset) if start < minutes * 60.0 - 1.0]
    magnitudes = sorted(abs(error) for _, error in errors)
    if not magnitudes:
        raise SystemExit(f"no tones in the first {minutes:g} minutes; use --minutes 3 or more")
    last = [error for start, error in errors if start >= minutes * 60.0 - 60.0]
    return {
        "session_seconds": round(run.seconds, 1),
        "tones": len(errors),
        "boundary_error_ms": {
            "p50": round(1000 * statistics.median(magnitudes), 2),
            "p99": round(1000 * float(np.percentile(magnitudes, 99)), 2),
            "max": round(1000 * magnitudes[-1], 2),
        },
        "drift_ms_last_minute": round(1000 * statistics.median(last), 2) if last else None,
        "cpu_percent_of_a_core": round(100 * run.cpu_seconds / run.seconds, 2),
        "player": _stats(run),
    }


def latency(pulse: PulseServer, presses: int, work: Path, latency_seconds: float) -> dict[str, object]:
    cycle = 5.0
    path = work / "long-hold.yaml"
    path.write_text(LONG_HOLD.format(seconds=round(presses * cycle + 8)), encoding="utf-8")
    routine = load_routine(path)

    def schedule(plan: object) -> list[tuple[float, Command]]:
        hold = next(s for s in plan.segments if s.kind == "hold")  # type: ignore[attr-defined]
        at = hold.start + 1.0
        out: list[tuple[float, Command]] = []
        for k in range(presses):
            out += [(at + k * cycle, "pause"), (at + k * cycle + 3.5, "resume")]
        out.append((at + presses * cycle, "tingling"))
        return out

    run = play_live(pulse, routine, PlanOptions(), work, commands=schedule, latency_seconds=latency_seconds)
    rate = run.rate
    hold = next(s for s in run.spoken.plan.segments if s.kind == "hold")
    # The plan changes after "tingling"; before it, the reference is the session as planned.
    offset = best_lag(run.recording[: round((hold.start + 3) * rate)], run.reference[: round(hold.start * rate)])
    origin = run.events[0].at_t
    found: dict[str, list[float]] = {"pause": [], "tingling": []}
    for pressed_at, command in run.submitted:
        if command not in found:
            continue
        start = offset + round((pressed_at - origin) * rate)
        loud = np.flatnonzero(np.abs(run.recording[start: start + 2 * rate].astype(np.int32)) > ONSET_LEVEL)
        if len(loud):
            found[command].append(loud[0] / rate)
    pauses = sorted(found["pause"])
    return {
        "presses": len(pauses),
        "answered": f"{len(pauses)}/{presses}",
        "pause_to_audible_ms": {
            "p50": round(1000 * statistics.median(pauses), 1),
            "p95": round(1000 * float(np.percentile(pauses, 95)), 1),
            "max": round(1000 * pauses[-1], 1),
        },
        "tingling_to_easing_ms": round(1000 * found["tingling"][0], 1) if found["tingling"] else None,
        "prompts": [PAUSED, EASING],
        "player": _stats(run),
    }


def bare_stream(seconds: float, rate: int, latency_seconds: float) -> dict[str, float]:
    import sounddevice

    def silence(outdata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        outdata.fill(0)

    with sounddevice.OutputStream(samplerate=rate, channels=1, dtype="int16", blocksize=0,
                                  latency=latency_seconds, callback=silence):
        cpu, wall = time.process_time(), time.monotonic()
        time.sleep(seconds)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    return {"seconds": round(wall, 1), "cpu_percent_of_a_core": round(100 * cpu / wall, 2)}


def _stats(run: LiveRun) -> dict[str, object]:
    stats = run.stats
    return {"callbacks": stats.callbacks, "device_underflows": stats.device_underflows,
            "starved_callbacks": stats.starved_callbacks, "late_sounds": stats.late_sounds,
            "frames_per_callback": stats.max_frames}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the timing session")
    parser.add_argument("--presses", type=int, default=20, help="pause presses in the latency session")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY_SECONDS,
                        help="the output latency asked of PortAudio (coach's setting by default)")
    parser.add_argument("--keys-only", action="store_true", help="only the key-latency session")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coach-bench-live-") as folder:
        work = Path(folder)
        os.environ["COACH_HOME"] = str(work / "home")
        with PulseServer() as pulse:
            os.environ.update(pulse.env)
            reinitialize_portaudio()
            log(f"latency: {args.presses} presses")
            keys = latency(pulse, args.presses, work, args.latency)
            result: dict[str, object] = {"latency_setting_seconds": args.latency, "keys": keys}
            if not args.keys_only:
                log(f"timing: a {args.minutes:g}-minute session")
                timed = timing(pulse, args.minutes, work, args.latency)
                log("bare stream")
                bare = bare_stream(min(timed["session_seconds"], 120.0), 22050, args.latency)  # type: ignore[arg-type]
                cpu_ratio = timed["cpu_percent_of_a_core"] / max(bare["cpu_percent_of_a_core"], 0.01)  # type: ignore[operator]
                result.update(timing=timed, bare_stream=bare, cpu_ratio_to_bare_stream=round(cpu_ratio, 2))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
