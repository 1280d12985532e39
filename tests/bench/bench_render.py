"""Benchmark of ``coach render``: wall time, the bare cost of its parts, and peak memory.

A script, not a test (pytest collects only ``test_*.py``). Run it from the repository root on
an otherwise idle machine; the full run takes about six minutes on two cores::

    .venv/bin/python tests/bench/bench_render.py                 # N=5, voices system and joe
    .venv/bin/python tests/bench/bench_render.py --quick         # N=1: check that it works
    .venv/bin/python tests/bench/bench_render.py --out bench.json          # table, and JSON to a file
    .venv/bin/python tests/bench/bench_render.py --json > bench.json       # JSON on stdout instead

The table goes to stdout (or, with ``--json``, the JSON does), progress to stderr. Everything is
written under one temporary folder, which is also ``COACH_HOME`` for the benchmark and every
process it starts, so the user's own folder, phrase cache and voice profiles are never touched
(bundled profiles and routines only); the folder is removed at the end.

What the numbers mean (seconds are wall time, ``time.perf_counter`` in this process, median
of N runs with the spread min-max beside it; runs are interleaved, run 1 of every case before
run 2 of any). Before each measurement the benchmark waits (up to two minutes) until other
processes use less than a quarter of a core, and it records the CPU seconds other processes
used during each measurement ("others' CPU"): a run with a large number there is suspect.

Timing, routine ``piriformis`` (about 22 minutes of audio), per voice profile:

- ``cold mp3`` / ``cold wav``: ``render()`` into an empty phrase cache with a fresh voice
  (``CachedVoice(make_voice(profile), PhraseCache(<empty folder>))``), as ``coach render`` does
  on first use: engine start (the system voice's worker, Piper's model load) and every phrase
  synthesized and stored are included. Closing the voice afterwards is not. Python imports
  (Piper, onnxruntime, lameenc) are done once up front, so no run pays them; the CLI timings
  include them.
- ``warm mp3`` / ``warm wav``: the same with every phrase already in the cache, and a fresh
  voice whose engine is never started (checked: no cache misses, no worker).
- Each render is split into ``phrases`` (speaking or loading the phrases), ``audio`` (mixing
  and encoding every block, writing it out) and ``finish`` (LAME's flush, ID3 tags, fsync and
  rename), timed through the renderer's progress callbacks.
- ``bare synth``: a fresh voice without a cache (``make_voice(profile).synthesize(text)`` for
  each of ``build_plan(routine).phrases()``), engine start included; ``first phrase`` is the
  first phrase alone, mostly engine start (worker start or model load).
- ``bare lame``: LAME (lameenc) at the renderer's settings encoding that voice's cold WAV render,
  in the renderer's block size, into memory: the encoding work any MP3 render must do.
- Ratios: cold MP3 / (bare synth + bare LAME), target <= 1.3 for the system voice; warm WAV /
  cold WAV, target <= 0.1 for joe; warm WAV / cold MP3 and warm MP3 / cold MP3 for
  information. Ratios are of the medians; the first is also given per run.

Memory (one fresh child process per case, run once each: peak RSS is nearly deterministic), in
MiB (2^20 bytes): ``peak`` is the child's peak resident set (``VmHWM``; not ``ru_maxrss``,
which on Linux starts a child at its parent's size), ``worker`` the system voice's engine
process (its ``VmHWM`` just before it is closed), ``total`` their sum. Routines are piriformis
with rounds raised to a ~30-minute session and cut down to a ~10-minute one (planned with the
clip lengths the timing part measured; each case prints the length it rendered). Baselines: a
child that imports the same modules, loads the 30-minute routine and builds its plan; per
voice, one that also makes the voice and synthesizes one phrase (for joe: the model loaded),
and one that synthesizes every phrase of the routine without keeping them (the engine's own
peak). ``+base`` is what a render adds over the import baseline, or for a cold render with
joe, whose model lives in the render process, over the one-phrase engine baseline. Target:
<= 200 MB for the 30-minute routine. Streaming: warm WAV renders of the ~10- and ~30-minute
routines should peak alike.

CLI: one end-to-end ``coach render piriformis -o x.mp3 --voice V`` as a subprocess with a
fresh ``COACH_HOME`` (cold) and then again (warm): interpreter start and imports included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import yaml

from coach.audiofile import MP3_BIT_RATE_KBPS, MP3_QUALITY
from coach.catalog import resolve_routine
from coach.errors import CoachError
from coach.home import HOME_VARIABLE
from coach.plan import PlanOptions, build_plan, estimate_speech_seconds
from coach.render import BLOCK_SAMPLES, render
from coach.routine import Routine
from coach.script import load_routine
from coach.speech.cache import CachedVoice, PhraseCache, default_cache_dir
from coach.speech.profiles import VoiceProfile, make_voice, resolve_profile

ROUTINE_ID = "piriformis"
LONG_TARGET_SECONDS = 30 * 60
SHORT_TARGET_SECONDS = 10 * 60
DEFAULT_RUNS = 5
DEFAULT_VOICES = ("system", "joe")
RENDER_CASES = ("cold_mp3", "cold_wav", "warm_mp3", "warm_wav")
MEMORY_TARGET_MB = 200
COLD_RATIO_TARGET = 1.3
WARM_RATIO_TARGET = 0.1
KIB_PER_MIB = 1024  # ru_maxrss is in KiB on Linux


# -- timing helpers ------------------------------------------------------------------------------


def _busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (all cores; steal and idle excluded)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (the system voice's worker)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextlib.contextmanager
def others_cpu() -> Iterator[list[float]]:
    """Yields a list that afterwards holds the CPU seconds other processes used meanwhile.

    The benchmark cannot keep other people's jobs off a shared machine, but it can see them:
    a run during which others used a lot of CPU is suspect.
    """
    found: list[float] = []
    busy, own = _busy_cpu_seconds(), _own_cpu_seconds()
    yield found
    found.append(max(0.0, (_busy_cpu_seconds() - busy) - (_own_cpu_seconds() - own)))


QUIET_CPU_FRACTION = 0.25
"""Other processes' CPU use, as a fraction of one core, below which the machine counts as idle."""
QUIET_WAIT_MAX_SECONDS = 120.0


def wait_for_quiet() -> float:
    """Wait (at most QUIET_WAIT_MAX_SECONDS) until other processes leave the CPUs alone; seconds waited."""
    started = time.perf_counter()
    while True:
        with others_cpu() as others:
            time.sleep(0.5)
        if others[0] / 0.5 < QUIET_CPU_FRACTION:
            return time.perf_counter() - started
        waited = time.perf_counter() - started
        if waited > QUIET_WAIT_MAX_SECONDS:
            cores = others[0] / 0.5
            log(f"the machine is still busy after {waited:.0f} s (others use {cores:.1f} cores); measuring anyway")
            return waited


def peak_rss_mib(pid: int | str = "self") -> float:
    """The process's peak resident set (VmHWM), in MiB.

    Not ``ru_maxrss``: on Linux a child's ``ru_maxrss`` starts at its parent's RSS when it
    was forked (the kernel keeps the old image's peak across exec), so a child of this large
    process would report this process's size.
    """
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / KIB_PER_MIB
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


@dataclass
class _PhaseClock:
    """A RenderProgress that notes when the phrases are done and when the last block is written."""

    phrases_done_at: float | None = None
    audio_done_at: float | None = None

    def phrases(self, done: int, total: int) -> None:
        if done == total:
            self.phrases_done_at = time.perf_counter()

    def audio(self, done_samples: int, total_samples: int) -> None:
        if done_samples == total_samples:
            self.audio_done_at = time.perf_counter()


@dataclass
class RenderTiming:
    seconds: float
    phrases_seconds: float
    audio_seconds: float
    finish_seconds: float
    close_seconds: float
    duration_seconds: float
    hits: int
    misses: int
    others_cpu_seconds: float

    def to_json(self) -> dict[str, float | int]:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in self.__dict__.items()}


def timed_render(routine: Routine, profile: VoiceProfile, output: Path, cache_dir: Path, *, warm: bool) -> RenderTiming:
    """One render through a fresh cached voice; the voice is closed afterwards, outside the timing.

    ``warm``: every phrase must come from the cache and the engine must never start.
    """
    voice = CachedVoice(make_voice(profile), PhraseCache(cache_dir))
    clock = _PhaseClock()
    with others_cpu() as others:
        try:
            started = time.perf_counter()
            result = render(routine, PlanOptions(), voice, output, voice_name=profile.name, progress=clock)
            ended = time.perf_counter()
            worker_started = getattr(voice.voice, "worker_pid", None) is not None
        finally:
            closing = time.perf_counter()
            voice.close()
            close_seconds = time.perf_counter() - closing
    assert clock.phrases_done_at is not None and clock.audio_done_at is not None
    timing = RenderTiming(
        seconds=ended - started,
        phrases_seconds=clock.phrases_done_at - started,
        audio_seconds=clock.audio_done_at - clock.phrases_done_at,
        finish_seconds=ended - clock.audio_done_at,
        close_seconds=close_seconds,
        duration_seconds=result.duration_seconds,
        hits=voice.hits,
        misses=voice.misses,
        others_cpu_seconds=others[0],
    )
    if warm and (timing.misses or worker_started):
        raise RuntimeError(f"warm render with {profile.name} missed {timing.misses} phrases or started the engine")
    if not warm and timing.hits:
        raise RuntimeError(f"cold render with {profile.name} found {timing.hits} phrases in its cache")
    return timing


@dataclass
class SynthTiming:
    seconds: float
    first_phrase_seconds: float
    phrases: int
    speech_seconds: float
    """Total length of the synthesized clips (trimmed), for a real-time factor."""
    others_cpu_seconds: float
    clip_seconds: dict[str, float] = field(repr=False)


def bare_synth(routine: Routine, profile: VoiceProfile) -> SynthTiming:
    """Every unique phrase of the routine through a fresh voice, no cache; engine start included."""
    phrases = build_plan(routine).phrases()
    voice = make_voice(profile)
    clip_seconds = {}
    with others_cpu() as others:
        try:
            started = time.perf_counter()
            first_done = started
            for number, text in enumerate(phrases):
                clip_seconds[text] = voice.synthesize(text).seconds
                if number == 0:
                    first_done = time.perf_counter()
            ended = time.perf_counter()
        finally:
            voice.close()
    return SynthTiming(ended - started, first_done - started, len(phrases), sum(clip_seconds.values()),
                       others[0], clip_seconds)


def read_wav_samples(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2"), wav.getframerate()


@dataclass
class LameTiming:
    seconds: float
    mp3_bytes: int
    others_cpu_seconds: float


def bare_lame(samples: np.ndarray, sample_rate_hz: int) -> LameTiming:
    """Encode ``samples`` as the renderer does, block by block, into memory (bytes counted, not kept)."""
    import lameenc

    with others_cpu() as others:
        started = time.perf_counter()
        encoder = lameenc.Encoder()
        encoder.set_channels(1)
        encoder.set_in_sample_rate(sample_rate_hz)
        encoder.set_out_sample_rate(sample_rate_hz)
        encoder.set_bit_rate(MP3_BIT_RATE_KBPS)
        encoder.set_quality(MP3_QUALITY)
        encoder.silence()
        mp3_bytes = 0
        for start in range(0, len(samples), BLOCK_SAMPLES):
            mp3_bytes += len(encoder.encode(samples[start : start + BLOCK_SAMPLES].tobytes()))
        mp3_bytes += len(encoder.flush())
        seconds = time.perf_counter() - started
    return LameTiming(seconds, mp3_bytes, others[0])


def spread(values: list[float]) -> dict[str, object]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "runs": [round(value, 4) for value in values],
    }


# -- routines of a given length ------------------------------------------------------------------


def routine_document(target_seconds: float, speech_seconds: Callable[[str], float], folder: Path) -> tuple[dict, float]:
    """Piriformis made ``target_seconds`` long or just over: (YAML document, planned seconds).

    Longer: rounds raised one exercise at a time, in turn. Shorter: one round each and only as
    many exercises, from the first, as reach the target.
    """
    source = resolve_routine(ROUTINE_ID).path
    original = yaml.safe_load(source.read_text(encoding="utf-8"))

    def planned(document: dict) -> float:
        path = folder / "length-probe.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return build_plan(load_routine(path, "length-probe"), PlanOptions(), speech_seconds).total_seconds

    def with_rounds(exercise: dict, rounds: int) -> None:
        exercise["rounds"] = rounds
        easier = exercise.get("easier") or {}
        if "rounds" in easier:  # the loader refuses an easier level with more rounds
            easier["rounds"] = min(easier["rounds"], rounds)

    document = yaml.safe_load(yaml.safe_dump(original))
    if planned(document) >= target_seconds:
        for exercise in document["exercises"]:
            with_rounds(exercise, 1)
        exercises = document["exercises"]
        for count in range(1, len(exercises) + 1):
            document["exercises"] = exercises[:count]
            if planned(document) >= target_seconds:
                break
    else:
        turn = 0
        while planned(document) < target_seconds:
            exercise = document["exercises"][turn % len(document["exercises"])]
            with_rounds(exercise, exercise["rounds"] + 1)
            turn += 1
    return document, planned(document)


def write_routine(document: dict, path: Path) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


# -- memory: one child process per case ----------------------------------------------------------


def memory_child(case: dict[str, str]) -> dict[str, object]:
    """Run one memory case in this (fresh) process and report its peak RSS."""
    started = time.perf_counter()
    routine = load_routine(Path(case["routine_path"]), case["routine_id"])
    plan = build_plan(routine)
    report: dict[str, object] = {"planned_seconds": plan.total_seconds}
    worker_peak_mib = 0.0
    if case["kind"] in ("engine", "engine_all"):
        engine = make_voice(resolve_profile(case["voice"]))
        try:
            for text in plan.phrases()[: 1 if case["kind"] == "engine" else None]:
                engine.synthesize(text)  # not kept: this measures the engine alone
            worker_peak_mib = _worker_peak_mib(engine)
        finally:
            engine.close()
    elif case["kind"] == "render":
        profile = resolve_profile(case["voice"])
        voice = CachedVoice(make_voice(profile), PhraseCache(Path(case["cache_dir"])))
        try:
            result = render(routine, PlanOptions(), voice, Path(case["output"]), voice_name=profile.name)
            worker_peak_mib = _worker_peak_mib(voice.voice)
        finally:
            voice.close()
        report.update(duration_seconds=result.duration_seconds, hits=voice.hits, misses=voice.misses)
    report["seconds"] = time.perf_counter() - started
    report["peak_mib"] = peak_rss_mib()
    report["worker_peak_mib"] = worker_peak_mib
    return report


def _worker_peak_mib(voice: object) -> float:
    """The system voice's engine worker's peak RSS, read while it still runs; 0 without a worker."""
    pid = getattr(voice, "worker_pid", None)
    return peak_rss_mib(pid) if pid is not None else 0.0


def run_memory_case(case: dict[str, str]) -> dict[str, object]:
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-case", json.dumps(case)]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"memory case {case} failed:\n{finished.stderr}")
    return json.loads(finished.stdout.splitlines()[-1])


# -- the benchmark -------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Bench:
    home: Path
    voices: tuple[str, ...]
    runs: int
    parts: frozenset[str]
    results: dict[str, object] = field(default_factory=dict)

    def scratch(self, name: str) -> Path:
        path = self.home / name
        path.mkdir(parents=True)
        return path

    def run(self) -> dict[str, object]:
        profiles = {name: resolve_profile(name) for name in self.voices}
        ref = resolve_routine(ROUTINE_ID)
        routine = load_routine(ref.path, ref.id)
        plan = build_plan(routine)
        self.results["meta"] = self.meta()
        self.results["routine"] = {
            "id": routine.id,
            "planned_seconds_estimated": round(plan.total_seconds, 3),
            "unique_phrases": len(plan.phrases()),
            "unique_phrase_characters": sum(len(text) for text in plan.phrases()),
        }
        clip_seconds: dict[str, float] = {}
        if "timing" in self.parts:
            clip_seconds = self.timing(routine, profiles)
        if "memory" in self.parts:
            self.memory(profiles, clip_seconds)
        if "cli" in self.parts:
            self.cli()
        self.results["meta"]["load_average_end"] = os.getloadavg()  # type: ignore[index]
        return self.results

    def meta(self) -> dict[str, object]:
        return {
            "runs": self.runs,
            "voices": list(self.voices),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_start": os.getloadavg(),
            "versions": {name: _version(name) for name in ("lameenc", "numpy", "piper-tts", "onnxruntime", "pyttsx3")},
            "mp3": {"bit_rate_kbps": MP3_BIT_RATE_KBPS, "quality": MP3_QUALITY},
            "block_samples": BLOCK_SAMPLES,
            "temp_filesystem": _filesystem_type(self.home),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def timing(self, routine: Routine, profiles: dict[str, VoiceProfile]) -> dict[str, float]:
        """Runs 1-N of every case, interleaved; returns each phrase's longest clip over the voices."""
        # Imported once up front so that no run pays a first import the others do not; the CLI
        # timings below include them.
        import lameenc  # noqa: F401
        if any(profile.engine == "piper" for profile in profiles.values()):
            import piper  # noqa: F401

        renders: dict[str, dict[str, list[RenderTiming]]] = {
            name: {case: [] for case in RENDER_CASES} for name in profiles}
        synths: dict[str, list[SynthTiming]] = {name: [] for name in profiles}
        lames: dict[str, list[LameTiming]] = {name: [] for name in profiles}
        waited_seconds = 0.0
        for run in range(1, self.runs + 1):
            for name, profile in profiles.items():
                folder = self.scratch(f"timing-{run}-{name}")
                try:
                    mp3_cache, wav_cache = folder / "cache-mp3", folder / "cache-wav"
                    steps = (
                        ("cold_mp3", mp3_cache, "cold.mp3"), ("cold_wav", wav_cache, "cold.wav"),
                        ("warm_mp3", mp3_cache, "warm.mp3"), ("warm_wav", mp3_cache, "warm.wav"),
                    )
                    for case, cache_dir, file_name in steps:
                        waited_seconds += wait_for_quiet()
                        timing = timed_render(routine, profile, folder / file_name, cache_dir,
                                              warm=case.startswith("warm"))
                        renders[name][case].append(timing)
                        log(f"run {run}/{self.runs} {name:6} {case:10} {timing.seconds:6.2f} s"
                            f"  (others used {timing.others_cpu_seconds:.2f} CPU s)")
                    waited_seconds += wait_for_quiet()
                    synth = bare_synth(routine, profile)
                    synths[name].append(synth)
                    log(f"run {run}/{self.runs} {name:6} bare synth {synth.seconds:6.2f} s"
                        f"  (others used {synth.others_cpu_seconds:.2f} CPU s)")
                    samples, rate_hz = read_wav_samples(folder / "cold.wav")
                    waited_seconds += wait_for_quiet()
                    lame = bare_lame(samples, rate_hz)
                    lames[name].append(lame)
                    log(f"run {run}/{self.runs} {name:6} bare lame  {lame.seconds:6.2f} s"
                        f"  (others used {lame.others_cpu_seconds:.2f} CPU s)")
                finally:
                    _remove_tree(folder)

        timing_json: dict[str, object] = {"waited_for_quiet_seconds": round(waited_seconds, 1)}
        for name in profiles:
            cases: dict[str, object] = {
                case: {
                    "seconds": spread([t.seconds for t in renders[name][case]]),
                    "phrases_seconds": spread([t.phrases_seconds for t in renders[name][case]]),
                    "audio_seconds": spread([t.audio_seconds for t in renders[name][case]]),
                    "finish_seconds": spread([t.finish_seconds for t in renders[name][case]]),
                    "close_seconds": spread([t.close_seconds for t in renders[name][case]]),
                    "others_cpu_seconds": spread([t.others_cpu_seconds for t in renders[name][case]]),
                    "duration_seconds": renders[name][case][0].duration_seconds,
                    "hits": renders[name][case][0].hits,
                    "misses": renders[name][case][0].misses,
                }
                for case in RENDER_CASES
            }
            synth_runs = synths[name]
            cases["bare_synth"] = {
                "seconds": spread([s.seconds for s in synth_runs]),
                "first_phrase_seconds": spread([s.first_phrase_seconds for s in synth_runs]),
                "others_cpu_seconds": spread([s.others_cpu_seconds for s in synth_runs]),
                "phrases": synth_runs[0].phrases,
                "speech_seconds": round(synth_runs[0].speech_seconds, 3),
            }
            cases["bare_lame"] = {
                "seconds": spread([lame.seconds for lame in lames[name]]),
                "others_cpu_seconds": spread([lame.others_cpu_seconds for lame in lames[name]]),
                "mp3_bytes": lames[name][0].mp3_bytes,
            }

            def median(case: str, cases: dict[str, object] = cases) -> float:
                return cases[case]["seconds"]["median"]  # type: ignore[index]

            bare_sum = median("bare_synth") + median("bare_lame")
            cases["bare_sum_seconds"] = round(bare_sum, 4)
            cases["ratios"] = {
                "cold_mp3_over_bare": round(median("cold_mp3") / bare_sum, 3),
                "warm_wav_over_cold_wav": round(median("warm_wav") / median("cold_wav"), 3),
                "warm_wav_over_cold_mp3": round(median("warm_wav") / median("cold_mp3"), 3),
                "warm_mp3_over_cold_mp3": round(median("warm_mp3") / median("cold_mp3"), 3),
                "cold_mp3_over_bare_per_run": [
                    round(cold.seconds / (synth.seconds + lame.seconds), 3)
                    for cold, synth, lame in zip(renders[name]["cold_mp3"], synth_runs, lames[name])
                ],
            }
            timing_json[name] = cases
        self.results["timing"] = timing_json

        longest: dict[str, float] = {}
        for synth_runs in synths.values():
            for text, seconds in synth_runs[0].clip_seconds.items():
                longest[text] = max(longest.get(text, 0.0), seconds)
        return longest

    def memory(self, profiles: dict[str, VoiceProfile], clip_seconds: dict[str, float]) -> None:
        routines_dir = self.scratch("memory-routines")
        # Real clip lengths where the timing part measured them (the longest over the voices),
        # so that the rendered sessions, not just the estimates, reach the targets.
        def timer(text: str) -> float:
            return clip_seconds.get(text) or estimate_speech_seconds(text)

        routines = {}
        for label, target in (("30min", LONG_TARGET_SECONDS), ("10min", SHORT_TARGET_SECONDS)):
            document, planned_seconds = routine_document(target, timer, routines_dir)
            path = routines_dir / f"{ROUTINE_ID}-{label}.yaml"
            write_routine(document, path)
            routines[label] = {
                "path": str(path),
                "id": path.stem,
                "planned_seconds": round(planned_seconds, 3),
                "rounds": [exercise["rounds"] for exercise in document["exercises"]],
            }
            log(f"memory: {path.stem}: {len(document['exercises'])} exercises, rounds {routines[label]['rounds']}, "
                f"planned {planned_seconds / 60:.2f} min")

        def case(kind: str, label: str, **extra: str) -> dict[str, object]:
            spec = {"kind": kind, "routine_path": routines[label]["path"], "routine_id": routines[label]["id"], **extra}
            wait_for_quiet()
            report = run_memory_case(spec)
            described = f"{kind} {extra.get('voice', '')} {label} {Path(extra.get('output', '')).suffix}"
            log(f"memory: {described.strip():28} peak {report['peak_mib']:6.1f} MiB, "
                f"worker {report['worker_peak_mib']:5.1f} MiB, {report['seconds']:6.2f} s")
            return report

        memory_json: dict[str, object] = {"routines": routines, "baseline": case("baseline", "30min")}
        for name, profile in profiles.items():
            folder = self.scratch(f"memory-{name}")
            try:
                voice_json: dict[str, object] = {
                    "engine": profile.engine,
                    "engine_baseline": case("engine", "30min", voice=name),
                    "engine_all_phrases": case("engine_all", "30min", voice=name),
                }
                for label, kinds in (("30min", ("mp3", "wav")), ("10min", ("wav",))):
                    for kind in kinds:
                        cache_dir = str(folder / f"cache-{label}-{kind}")
                        for state in ("cold", "warm"):
                            output = str(folder / f"{label}-{state}.{kind}")
                            voice_json[f"{state}_{kind}_{label}"] = case(
                                "render", label, voice=name, cache_dir=cache_dir, output=output)
                            Path(output).unlink()
                memory_json[name] = voice_json
            finally:
                _remove_tree(folder)
        self.results["memory"] = memory_json

    def cli(self) -> None:
        coach = Path(sys.executable).with_name("coach")
        command = [str(coach)] if coach.exists() else [sys.executable, "-c", "from coach.cli import main; main()"]
        cli_json: dict[str, object] = {}
        for name in self.voices:
            home = self.scratch(f"cli-{name}")
            try:
                environment = {**os.environ, HOME_VARIABLE: str(home / "coach-home")}
                output = home / "x.mp3"
                args = [*command, "render", ROUTINE_ID, "-o", str(output), "--voice", name]
                seconds = {}
                for state in ("cold", "warm"):
                    wait_for_quiet()
                    with others_cpu() as others:
                        started = time.perf_counter()
                        finished = subprocess.run(args, env=environment, capture_output=True, text=True, check=False)
                        seconds[state] = round(time.perf_counter() - started, 4)
                    seconds[f"{state}_others_cpu_seconds"] = round(others[0], 3)
                    if finished.returncode != 0:
                        raise RuntimeError(f"{' '.join(args)} failed: {finished.stderr}")
                    log(f"cli: {name:6} {state}: {seconds[state]:6.2f} s")
                cli_json[name] = {"command": f"coach render {ROUTINE_ID} -o x.mp3 --voice {name}", **seconds}
            finally:
                _remove_tree(home)
        self.results["cli"] = cli_json


# -- the table -----------------------------------------------------------------------------------


def table(results: dict) -> str:
    meta, lines = results["meta"], []
    add = lines.append
    add(f"coach render benchmark: N={meta['runs']} runs per timing (median, min-max), {meta['date']}")
    add(f"{meta['platform']}, {meta['cpus']} CPUs, Python {meta['python']}, temp on {meta['temp_filesystem']}; "
        f"load average start {_load(meta['load_average_start'])}, end {_load(meta['load_average_end'])}")
    add(f"MP3: {meta['mp3']['bit_rate_kbps']} kbit/s, LAME -q {meta['mp3']['quality']}; "
        f"versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}")
    routine = results["routine"]
    add(f"routine {routine['id']}: {routine['unique_phrases']} unique phrases, "
        f"{routine['unique_phrase_characters']} characters, "
        f"planned (estimated speech) {routine['planned_seconds_estimated'] / 60:.2f} min")

    if "timing" in results:
        timing = results["timing"]
        add(f"timing: waited {timing['waited_for_quiet_seconds']:.0f} s in all "
            "for other processes to leave the CPUs alone")
        for name, cases in ((key, value) for key, value in timing.items() if isinstance(value, dict)):
            add("")
            minutes = cases["cold_mp3"]["duration_seconds"] / 60
            add(f"== timing, voice {name}: rendered {minutes:.2f} min of audio; seconds ==")
            add(f"{'case':11} {'median':>8} {'min-max':>15}   {'phrases':>8} {'audio':>7} {'finish':>7}   "
                f"{'hits/misses':>11}   others' CPU s (max)")
            for case in RENDER_CASES:
                row = cases[case]
                add(f"{case.replace('_', ' '):11} {_median(row['seconds'])}   "
                    f"{row['phrases_seconds']['median']:8.2f} {row['audio_seconds']['median']:7.2f} "
                    f"{row['finish_seconds']['median']:7.2f}   {row['hits']:>5}/{row['misses']:<5}   "
                    f"{row['others_cpu_seconds']['max']:.2f}")
            synth = cases["bare_synth"]
            add(f"{'bare synth':11} {_median(synth['seconds'])}   "
                f"first phrase {synth['first_phrase_seconds']['median']:.2f}; "
                f"{synth['phrases']} phrases = {synth['speech_seconds']:.1f} s of speech, "
                f"{synth['speech_seconds'] / synth['seconds']['median']:.0f}x real time   "
                f"{synth['others_cpu_seconds']['max']:.2f}")
            lame = cases["bare_lame"]
            add(f"{'bare lame':11} {_median(lame['seconds'])}   "
                f"{cases['cold_wav']['duration_seconds'] / lame['seconds']['median']:.0f}x real time, "
                f"{lame['mp3_bytes'] / 1e6:.1f} MB of MP3{'':24}{lame['others_cpu_seconds']['max']:.2f}")
            add(f"{'bare sum':11} {cases['bare_sum_seconds']:8.2f}")
            ratios = cases["ratios"]
            cold_ratio, warm_ratio = ratios["cold_mp3_over_bare"], ratios["warm_wav_over_cold_wav"]
            target_cold = f"target <= {COLD_RATIO_TARGET}: {_verdict(cold_ratio <= COLD_RATIO_TARGET)}" \
                if name == "system" else "info; the target is for system"
            target_warm = f"target <= {WARM_RATIO_TARGET}: {_verdict(warm_ratio <= WARM_RATIO_TARGET)}" \
                if name == "joe" else "info; the target is for joe"
            add(f"ratio cold mp3 / bare sum = {ratios['cold_mp3_over_bare']:.3f}  ({target_cold}); "
                f"per run {', '.join(f'{r:.3f}' for r in ratios['cold_mp3_over_bare_per_run'])}")
            add(f"ratio warm wav / cold wav = {ratios['warm_wav_over_cold_wav']:.3f}  ({target_warm})")
            add(f"ratio warm wav / cold mp3 = {ratios['warm_wav_over_cold_mp3']:.3f}  (info)")
            add(f"ratio warm mp3 / cold mp3 = {ratios['warm_mp3_over_cold_mp3']:.3f}  (info)")

    if "memory" in results:
        memory = results["memory"]
        add("")
        add("== peak memory (VmHWM), one fresh process per case, run once; MiB ==")
        for routine_info in memory["routines"].values():
            add(f"routine {routine_info['id']}: rounds {routine_info['rounds']}, "
                f"planned {routine_info['planned_seconds'] / 60:.2f} min")
        baseline = memory["baseline"]
        add(f"baseline (import coach, load routine, build plan): {baseline['peak_mib']:.1f}")
        limit_mib = MEMORY_TARGET_MB * 1e6 / 2**20
        add(f"{'voice':6} {'case':16} {'rendered':>9} {'peak':>7} {'+base':>7} {'worker':>7} {'total':>7} "
            f"{'seconds':>8}")
        for name in (key for key in memory if key not in ("routines", "baseline")):
            voice_rows = memory[name]
            engine = voice_rows["engine_baseline"]
            engine_in_process = voice_rows["engine"] == "piper"  # the system voice's engine runs in its worker
            add(f"{name:6} {'engine baseline':16} {'':>9} {engine['peak_mib']:7.1f} "
                f"{engine['peak_mib'] - baseline['peak_mib']:+7.1f} {engine['worker_peak_mib']:7.1f} "
                f"{engine['peak_mib'] + engine['worker_peak_mib']:7.1f} {engine['seconds']:8.2f}")
            every = voice_rows["engine_all_phrases"]
            add(f"{name:6} {'engine, all':16} {'':>9} {every['peak_mib']:7.1f} "
                f"{every['peak_mib'] - baseline['peak_mib']:+7.1f} {every['worker_peak_mib']:7.1f} "
                f"{every['peak_mib'] + every['worker_peak_mib']:7.1f} {every['seconds']:8.2f}")
            for key, row in voice_rows.items():
                if not isinstance(row, dict) or key.startswith("engine"):
                    continue
                base = engine["peak_mib"] if key.startswith("cold") and engine_in_process else baseline["peak_mib"]
                total = row["peak_mib"] + row["worker_peak_mib"]
                note = ""
                if "30min" in key:
                    note = f"  {'within' if total <= limit_mib else 'OVER'} 200 MB"
                add(f"{name:6} {key.replace('_', ' '):16} {row['duration_seconds'] / 60:8.2f}m "
                    f"{row['peak_mib']:7.1f} {row['peak_mib'] - base:+7.1f} {row['worker_peak_mib']:7.1f} "
                    f"{total:7.1f} {row['seconds']:8.2f}{note}")
        add(f"peak: the render process; worker: the system voice's engine process (0 when not started); "
            f"total: their sum, compared with 200 MB = {limit_mib:.1f} MiB")
        add("+base: peak over the engine baseline for cold renders with joe (the model is in-process), "
            "else over the import baseline")

    if "cli" in results:
        add("")
        add("== CLI end to end (subprocess, run once each: fresh COACH_HOME, then again); seconds ==")
        for row in results["cli"].values():
            add(f"{row['command']:48} cold {row['cold']:7.2f}   warm {row['warm']:6.2f}   "
                f"others' CPU s {row['cold_others_cpu_seconds']:.2f} / {row['warm_others_cpu_seconds']:.2f}")
    return "\n".join(lines)


def _median(values: dict) -> str:
    return f"{values['median']:8.2f} {values['min']:7.2f}-{values['max']:<7.2f}"


def _verdict(passed: bool) -> str:
    return "met" if passed else "NOT MET"


def _load(averages: list[float]) -> str:
    return "/".join(f"{value:.2f}" for value in averages)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _filesystem_type(path: Path) -> str:
    """The type of the file system holding ``path`` (fsync costs differ: tmpfs is free)."""
    best, kind = "", "unknown"
    with contextlib.suppress(OSError), open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and str(path).startswith(fields[1]) and len(fields[1]) > len(best):
                best, kind = fields[1], fields[2]
    return kind


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def bench_home() -> Iterator[Path]:
    """A temporary folder set as COACH_HOME, removed afterwards (also on Ctrl-C and SIGTERM)."""
    previous = os.environ.get(HOME_VARIABLE)
    previous_term = signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    with tempfile.TemporaryDirectory(prefix="coach-bench-") as folder:
        home = Path(folder)
        os.environ[HOME_VARIABLE] = str(home / "coach-home")
        try:
            # coach reads COACH_HOME when asked, not at import; make sure it still does.
            if home not in default_cache_dir().parents:
                raise RuntimeError(f"the phrase cache is at {default_cache_dir()}, outside the benchmark's {home}")
            yield home
        finally:
            if previous is None:
                os.environ.pop(HOME_VARIABLE, None)
            else:
                os.environ[HOME_VARIABLE] = previous
            signal.signal(signal.SIGTERM, previous_term)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help=f"runs per timing (default {DEFAULT_RUNS})")
    parser.add_argument("--voices", default=",".join(DEFAULT_VOICES), help="voice profiles, comma-separated")
    parser.add_argument("--quick", action="store_true", help="one run of everything, to check the script works")
    parser.add_argument("--parts", default="timing,memory,cli", help="which parts: timing, memory, cli")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout instead of the table")
    parser.add_argument("--out", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--memory-case", help=argparse.SUPPRESS)  # a child process runs one case
    args = parser.parse_args(argv)
    if args.memory_case:
        print(json.dumps(memory_child(json.loads(args.memory_case))))
        return
    runs = 1 if args.quick else args.runs
    if runs < 1:
        parser.error("--runs must be at least 1")
    voices = tuple(name.strip() for name in args.voices.split(",") if name.strip())
    parts = frozenset(part.strip() for part in args.parts.split(","))
    if not parts <= {"timing", "memory", "cli"}:
        parser.error("--parts takes timing, memory and cli")
    try:
        with bench_home() as home:
            results = Bench(home, voices, runs, parts).run()
    except CoachError as error:  # an unknown voice profile, a voice that is not installed
        sys.exit(f"error: {error}")
    results["meta"]["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(table(results))


if __name__ == "__main__":
    main()
