"""Plan + voice -> one stream of PCM blocks -> audio files (``coach render``).

The stages, each usable on its own (a live session will reuse the first three):

1. ``speak_phrases``: every distinct phrase of the plan through the voice (the phrase cache
   makes a second render cheap), then the plan again with the clips' real lengths;
2. ``place``: each sound of the plan pinned to a sample offset;
3. ``mix``: blocks of int16 samples, summed from whatever sounds overlap each block, so memory
   stays flat however long the session is;
4. ``render``: blocks into a WAV or MP3 file (or one file per chapter and a playlist), under a
   temporary name until the whole file is done.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Protocol, Sequence

import numpy as np

from coach.audiofile import AtomicOutputs, AudioFormat, Chapter, Tags, audio_format, write_audio, write_id3, write_playlist
from coach.errors import CoachError
from coach.plan import Plan, PlanOptions, Segment, build_plan
from coach.routine import Routine
from coach.speech.clip import Clip, Voice
from coach.speech.tones import make_tone

BLOCK_SAMPLES = 16384
"""Samples mixed at a time: 0.74 s at 22.05 kHz; large enough that numpy's per-call cost vanishes."""

INTRODUCTION_TITLE = "Introduction"


class RenderProgress(Protocol):
    """Told how far a render has got; the CLI draws bars on stderr with it."""

    def phrases(self, done: int, total: int) -> None: ...

    def audio(self, done_samples: int, total_samples: int) -> None: ...


@dataclass(frozen=True)
class Placement:
    """One sound at a sample offset: a phrase, a tone or a countdown number."""

    start_sample: int
    samples: np.ndarray
    segment: Segment

    @property
    def end_sample(self) -> int:
        return self.start_sample + len(self.samples)


@dataclass(frozen=True)
class SpokenPlan:
    """A plan timed with real clip lengths, and those clips."""

    plan: Plan
    clips: Mapping[str, Clip]
    sample_rate_hz: int

    @property
    def total_samples(self) -> int:
        return round(self.plan.total_seconds * self.sample_rate_hz)


@dataclass(frozen=True)
class RenderResult:
    output: Path
    """The audio file, or the playlist when split."""
    files: tuple[Path, ...]
    voice: str
    sample_rate_hz: int
    total_samples: int
    chapters: tuple[Chapter, ...]
    plan: Plan

    @property
    def duration_seconds(self) -> float:
        return self.total_samples / self.sample_rate_hz

    def to_json(self) -> dict[str, object]:
        return {
            "output": str(self.output),
            "files": [str(path) for path in self.files],
            "duration_seconds": round(self.duration_seconds, 3),
            "voice": self.voice,
            "sample_rate_hz": self.sample_rate_hz,
            "chapters": [chapter.to_json() for chapter in self.chapters],
        }


def speak_phrases(routine: Routine, options: PlanOptions, voice: Voice,
                  progress: RenderProgress | None = None) -> SpokenPlan:
    """Synthesize the plan's phrases, then lay the plan out again with their real lengths.

    Which phrases a plan says never depends on how long they are, so an estimated plan gives
    the full list up front.
    """
    clips = speak(build_plan(routine, options).phrases(), voice, progress)
    plan = build_plan(routine, options, speech_seconds=lambda text: clips[text].seconds)
    return SpokenPlan(plan, clips, clip_rate(clips, voice))


def speak(phrases: Sequence[str], voice: Voice, progress: RenderProgress | None = None) -> dict[str, Clip]:
    """Each phrase through ``voice`` (a cached voice loads it), telling ``progress`` as it goes."""
    clips: dict[str, Clip] = {}
    for done, text in enumerate(phrases):
        if progress is not None:
            progress.phrases(done, len(phrases))
        clips[text] = voice.synthesize(text)
    if progress is not None:
        progress.phrases(len(phrases), len(phrases))
    return clips


def clip_rate(clips: Mapping[str, Clip], voice: Voice) -> int:
    """The one sample rate of ``clips``: a stream has one rate, a clip at another would play wrong."""
    rates = {clip.sample_rate_hz for clip in clips.values()}
    if len(rates) > 1:
        raise CoachError(f"the voice produced phrases at different sample rates ({sorted(rates)} Hz); "
                         "clear the phrase cache with: coach cache clear")
    # Every plan says at least its title, so there is a clip to take the rate from; asking the
    # voice instead would start the system engine's worker even when every phrase is cached.
    return rates.pop() if rates else voice.sample_rate_hz


def place(spoken: SpokenPlan) -> list[Placement]:
    """Every sound of the plan at its sample offset, in start order, cut at the session's end.

    Offsets are the plan's start times (milliseconds) rounded to the nearest sample, so a hold
    from its start tone to its end tone is its scripted length to the sample. Cutting at the end
    only ever shortens the last phrase's trailing silence by the plan's millisecond rounding.
    """
    rate, total = spoken.sample_rate_hz, spoken.total_samples
    placements = []
    for segment in spoken.plan.segments:
        samples = sound_of(segment, spoken.clips, rate)
        if samples is None or not len(samples):
            continue
        start = round(segment.start * rate)
        placements.append(Placement(start, samples[: max(0, total - start)], segment))
    return placements


def sound_of(segment: Segment, clips: Mapping[str, Clip], rate: int) -> np.ndarray | None:
    if segment.tone is not None:  # tones, and countdowns in the tick style
        return make_tone(segment.tone, rate).samples
    if segment.spoken_text is not None:
        return clips[segment.spoken_text].samples
    return None  # holds and rests are silence


def mix(placements: Sequence[Placement], total_samples: int,
        block_samples: int = BLOCK_SAMPLES) -> Iterator[np.ndarray]:
    """The session as consecutive int16 blocks, exactly ``total_samples`` long in all.

    Sounds that overlap (a cue over a countdown, a tone under a phrase) are summed and clipped
    to 16 bits; between sounds the blocks are digital silence.
    """
    pending = sorted(placements, key=lambda placement: placement.start_sample)
    next_index, active = 0, []
    for block_start in range(0, total_samples, block_samples):
        block_end = min(block_start + block_samples, total_samples)
        while next_index < len(pending) and pending[next_index].start_sample < block_end:
            active.append(pending[next_index])
            next_index += 1
        block = np.zeros(block_end - block_start, dtype=np.int32)
        still_sounding = []
        for placement in active:
            low, high = max(placement.start_sample, block_start), min(placement.end_sample, block_end)
            if high > low:
                block[low - block_start : high - block_start] += placement.samples[
                    low - placement.start_sample : high - placement.start_sample]
            if placement.end_sample > block_end:
                still_sounding.append(placement)
        active = still_sounding
        yield np.clip(block, -32768, 32767).astype(np.int16)


def chapters_of(plan: Plan) -> tuple[Chapter, ...]:
    """An introduction (title and safety notice), then one chapter per exercise, covering the session.

    An exercise's chapter runs from its announcement to the next one's; the last one takes the
    closing words.
    """
    starts: list[tuple[str, float]] = []
    seen: set[str] = set()
    names = {exercise.id: exercise.name for exercise in plan.routine.exercises}
    for segment in plan.segments:
        if segment.exercise is not None and segment.exercise not in seen:
            seen.add(segment.exercise)
            starts.append((names[segment.exercise], segment.start))
    if not starts or starts[0][1] > 0:
        starts.insert(0, (INTRODUCTION_TITLE, 0.0))
    ends = [start for _, start in starts[1:]] + [plan.total_seconds]
    return tuple(Chapter(title, start, end) for (title, start), end in zip(starts, ends))


def render(routine: Routine, options: PlanOptions, voice: Voice, output: Path, *, voice_name: str,
           split: bool = False, progress: RenderProgress | None = None) -> RenderResult:
    """Render the routine to ``output`` (``.wav`` or ``.mp3``), or with ``split`` to one file per
    chapter beside it plus an ``.m3u`` playlist at ``output`` with the suffix ``.m3u``."""
    kind = audio_format(output)
    spoken = speak_phrases(routine, options, voice, progress)
    chapters = chapters_of(spoken.plan)
    blocks = _reporting(mix(place(spoken), spoken.total_samples), spoken.total_samples, progress)
    with AtomicOutputs() as outputs:
        if split:
            files = _write_split(outputs, output, kind, blocks, spoken, chapters, routine.title)
            playlist = output.with_suffix(".m3u")
            with outputs.open(playlist) as (file, _):
                write_playlist(file, [(path.name, chapter.end_seconds - chapter.start_seconds, chapter.title)
                                      for path, chapter in zip(files, chapters)])
        else:
            files, playlist = [output], None
            with outputs.open(output) as (file, temporary):
                write_audio(kind, file, spoken.sample_rate_hz, blocks)
            if kind == "mp3":
                write_id3(temporary, Tags(routine.title, routine.title), chapters)
        outputs.commit()
    return RenderResult(playlist or output, tuple(files), voice_name, spoken.sample_rate_hz,
                        spoken.total_samples, chapters, spoken.plan)


def _write_split(outputs: AtomicOutputs, output: Path, kind: AudioFormat, blocks: Iterable[np.ndarray],
                 spoken: SpokenPlan, chapters: Sequence[Chapter], album: str) -> list[Path]:
    """One file per chapter, cut from the single mixed stream at the chapters' first samples."""
    rate = spoken.sample_rate_hz
    bounds = [round(chapter.start_seconds * rate) for chapter in chapters[1:]] + [spoken.total_samples]
    stream = _Resplitter(iter(blocks))
    files = []
    for number, (chapter, end_sample) in enumerate(zip(chapters, bounds), start=1):
        path = output.with_name(f"{output.stem}-{number:02d}-{_slug(chapter.title)}{output.suffix}")
        with outputs.open(path) as (file, temporary):
            write_audio(kind, file, rate, stream.until(end_sample))
        if kind == "mp3":
            write_id3(temporary, Tags(chapter.title, album, (number, len(chapters))))
        files.append(path)
    return files


class _Resplitter:
    """Re-cuts a stream of blocks at given sample positions."""

    def __init__(self, blocks: Iterator[np.ndarray]) -> None:
        self._blocks = blocks
        self._held: np.ndarray | None = None
        self._position = 0  # samples handed out so far

    def until(self, end_sample: int) -> Iterator[np.ndarray]:
        while self._position < end_sample:
            block = self._held if self._held is not None else next(self._blocks, None)
            self._held = None
            if block is None:
                return
            take = end_sample - self._position
            if len(block) > take:
                block, self._held = block[:take], block[take:]
            self._position += len(block)
            yield block


def _reporting(blocks: Iterator[np.ndarray], total_samples: int,
               progress: RenderProgress | None) -> Iterator[np.ndarray]:
    done = 0
    for block in blocks:
        yield block
        done += len(block)
        if progress is not None:
            progress.audio(done, total_samples)


def _slug(title: str) -> str:
    """A file-name-safe form of a chapter title: "Figure-four stretch (lying)" -> "figure-four-stretch-lying"."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:40].strip("-") or "part"
