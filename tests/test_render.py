"""``coach render`` and the renderer: real voices, real files, read back by real tools.

The files are read back with the standard library's ``wave``, mutagen, and ffprobe/ffmpeg; the
speech in them is checked by PocketSphinx. Nothing here fakes an engine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest

from coach.audiofile import MP3_DECODER_DELAY_SAMPLES, MP3_FRAME_SAMPLES, TEMP_MARKER
from coach.catalog import resolve_routine
from coach.plan import PlanOptions, Segment
from coach.render import Placement, chapters_of, mix, place, render, speak_phrases
from coach.routine import Routine
from coach.script import load_routine
from coach.speech.cache import CachedVoice, PhraseCache, default_cache_dir
from coach.speech.clip import Clip
from coach.speech.piper_voice import PiperVoice
from coach.speech.system_voice import SystemVoice
from coach.speech.tones import make_tone
from tests.speech_check import needs_piper, needs_pocketsphinx, needs_system_voice, phrase_recognizer

COACH = [sys.executable, "-m", "coach.cli"]
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None,
                                  reason="ffmpeg is not installed: apt-get install ffmpeg (setup.sh does)")

# A routine with everything the renderer places: sides (and the side-switch chime), a cue inside
# a hold, a spoken countdown, a ticking countdown, and a rep exercise.
SAMPLER = """
    title: Render sampler
    safety: Stop if anything hurts.
    exercises:
      - name: Figure four stretch
        sides: [right, left]
        say: Cross your {side} ankle over your other knee.
        hold: 6
        rounds: 2
        rest: 2
        settle: 1
        countdown: 3
        cues:
          - at: 1
            say: Breathe out slowly.
      - name: Knee squeeze
        say: Squeeze your knees together.
        hold: 4
        settle: 1
        countdown: {seconds: 2, style: tick}
      - name: Heel slides
        say: Slide your heel towards you and back.
        reps: 3
        pace: 2
        settle: 1
"""


def run_coach(*args: str, cwd: Path | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COACH, *args], capture_output=True, text=True, cwd=cwd, timeout=600, **kwargs)


def routine_named(name: str) -> Routine:
    ref = resolve_routine(name)
    return load_routine(ref.path, ref.id)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2"), wav.getframerate()


def ffprobe(path: Path) -> dict:
    finished = subprocess.run(["ffprobe", "-v", "error", "-show_chapters", "-show_format", "-show_streams",
                               "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return json.loads(finished.stdout)


def decode_mp3(path: Path) -> np.ndarray:
    """The MP3's samples as any player decodes them (ffmpeg, s16le, no resampling)."""
    finished = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-acodec", "pcm_s16le", "-"],
                              capture_output=True, check=True)
    return np.frombuffer(finished.stdout, "<i2")


@pytest.fixture(scope="module")
def system_voice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CachedVoice]:
    """espeak-ng's phrases vary by a few milliseconds from call to call, so renders that are
    compared with each other share one phrase cache, as repeated renders do for a user."""
    cache = PhraseCache(tmp_path_factory.mktemp("phrase-cache"))
    with CachedVoice(SystemVoice("gmw/en-us", 160, 0.9), cache) as voice:
        yield voice


@pytest.fixture(scope="module")
def sampler(tmp_path_factory: pytest.TempPathFactory) -> Routine:
    import textwrap

    path = tmp_path_factory.mktemp("sampler") / "sampler.yaml"
    path.write_text(textwrap.dedent(SAMPLER).lstrip("\n"), encoding="utf-8")
    return load_routine(path, "sampler")


@pytest.fixture(scope="module")
def sampler_wav(tmp_path_factory: pytest.TempPathFactory, sampler: Routine, system_voice: CachedVoice):
    path = tmp_path_factory.mktemp("render") / "sampler.wav"
    result = render(sampler, PlanOptions(), system_voice, path, voice_name="system")
    samples, rate = read_wav(path)
    return result, samples, rate


# --- timing, to the sample -------------------------------------------------------------------------


@needs_system_voice
def test_the_wav_is_as_long_as_the_plan_to_the_sample(sampler_wav) -> None:
    result, samples, rate = sampler_wav
    assert rate == result.sample_rate_hz == 22050
    assert len(samples) == result.total_samples == round(result.plan.total_seconds * rate)


@needs_system_voice
def test_the_plan_is_timed_with_the_real_clip_lengths(sampler: Routine, system_voice: CachedVoice) -> None:
    spoken = speak_phrases(sampler, PlanOptions(), system_voice)
    for segment in spoken.plan.segments:
        if segment.kind == "speech":
            assert segment.seconds == pytest.approx(spoken.clips[segment.text].seconds, abs=0.0005)


@needs_system_voice
def test_every_tone_sits_exactly_where_the_plan_puts_it(sampler_wav) -> None:
    """Find each chime in the rendered audio by matching its exact samples."""
    result, samples, rate = sampler_wav
    tones = [segment for segment in result.plan.segments if segment.tone in ("hold_start", "hold_end", "side_switch")]
    assert {segment.tone for segment in tones} == {"hold_start", "hold_end", "side_switch"}
    for segment in tones:
        tone = make_tone(segment.tone, rate).samples
        start = round(segment.start * rate)
        window = samples[start : start + len(tone)].astype(np.int32)
        # Speech may overlap the tail of a tone (never its start), so compare the first 50 ms.
        head = round(0.05 * rate)
        assert np.array_equal(window[:head], tone[:head].astype(np.int32)), (segment, start)


@needs_system_voice
def test_holds_are_their_scripted_length_from_start_tone_to_end_tone(sampler_wav) -> None:
    result, _, rate = sampler_wav
    plan = result.plan
    holds = [segment for segment in plan.segments if segment.kind == "hold"]
    assert len(holds) == 2 * 2 + 1
    for hold in holds:
        starts = [s for s in plan.segments if s.tone == "hold_start" and s.start == hold.start]
        ends = [s for s in plan.segments if s.tone == "hold_end" and abs(s.start - hold.end) < 0.0015]
        assert starts and ends
        span = round(ends[0].start * rate) - round(starts[0].start * rate)
        assert abs(span - round(hold.seconds * rate)) <= 1  # millisecond rounding of the plan, at most


@needs_system_voice
def test_holds_are_silent_apart_from_their_cues_countdowns_and_tones(sampler_wav) -> None:
    """Inside a hold only the sounds the plan puts there may sound; everything else is digital zero."""
    result, samples, rate = sampler_wav
    plan = result.plan
    for hold in (segment for segment in plan.segments if segment.kind == "hold"):
        inside = [s for s in plan.segments if s.kind in ("speech", "countdown", "tone")
                  and hold.start <= s.start < hold.end]
        assert inside, hold
        quiet = np.ones(round(hold.seconds * rate), dtype=bool)
        base = round(hold.start * rate)
        for sound in inside:
            first = round(sound.start * rate) - base
            quiet[max(0, first - 1) : first + round(sound.seconds * rate) + 2] = False
            assert np.any(samples[base + first : base + first + round(sound.seconds * rate)] != 0), sound
        stretch = samples[base : base + len(quiet)]
        assert np.count_nonzero(stretch[quiet]) == 0
        assert quiet.mean() > 0.3  # most of a hold is silence: the person is holding still


@needs_system_voice
def test_a_cue_never_moves_a_hold(sampler: Routine, system_voice: CachedVoice) -> None:
    """The same routine without its cue has every hold at the same length."""
    spoken = speak_phrases(sampler, PlanOptions(), system_voice)
    hold_lengths = [s.seconds for s in spoken.plan.segments if s.kind == "hold"]
    assert hold_lengths == [6, 6, 6, 6, 4]


def test_mixing_sums_overlaps_clips_and_streams_in_blocks() -> None:
    loud = np.full(10, 30000, dtype=np.int16)
    quiet = np.arange(1, 6, dtype=np.int16)
    dummy = Segment("speech", 0.0, 0.0)
    placements = [Placement(3, loud, dummy), Placement(8, quiet, dummy), Placement(20, quiet, dummy),
                  Placement(11, loud[:1], dummy)]
    blocks = list(mix(placements, 23, block_samples=4))
    assert [len(block) for block in blocks] == [4, 4, 4, 4, 4, 3]
    joined = np.concatenate(blocks).astype(np.int32)
    expected = np.zeros(23, dtype=np.int32)
    expected[3:13] += 30000
    expected[8:13] += np.arange(1, 6)
    expected[20:23] += np.arange(1, 4)  # cut at the end
    expected[11] += 30000
    assert np.array_equal(joined, np.clip(expected, -32768, 32767))
    assert joined[11] == 32767  # 30000 + 4 + 30000 clips at 16 bits instead of wrapping round


@needs_system_voice
def test_place_never_reaches_past_the_end(sampler: Routine, system_voice: CachedVoice) -> None:
    spoken = speak_phrases(sampler, PlanOptions(), system_voice)
    placements = place(spoken)
    assert max(p.end_sample for p in placements) <= spoken.total_samples
    assert max(p.end_sample for p in placements) >= spoken.total_samples - round(0.001 * spoken.sample_rate_hz)


# --- MP3 and chapters ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sampler_mp3(tmp_path_factory: pytest.TempPathFactory, sampler: Routine, system_voice: CachedVoice):
    path = tmp_path_factory.mktemp("render") / "sampler.mp3"
    return render(sampler, PlanOptions(), system_voice, path, voice_name="system"), path


@needs_system_voice
@needs_ffmpeg
def test_the_mp3_is_as_long_as_the_plan_within_encoder_padding(sampler_mp3) -> None:
    result, path = sampler_mp3
    decoded = decode_mp3(path)
    extra = len(decoded) - result.total_samples
    # LAME adds its delay at the start and pads the end to a whole frame.
    assert MP3_DECODER_DELAY_SAMPLES <= extra <= MP3_DECODER_DELAY_SAMPLES + 2 * MP3_FRAME_SAMPLES
    stream = ffprobe(path)["streams"][0]
    assert (stream["codec_name"], stream["channels"], int(stream["sample_rate"])) == ("mp3", 1, 22050)


@needs_system_voice
@needs_ffmpeg
def test_the_mp3_sounds_like_the_wav(sampler_mp3, sampler_wav) -> None:
    """Decoded MP3 and WAV line up after LAME's delay: the speech and tones are where they were."""
    _, path = sampler_mp3
    _, wav_samples, _ = sampler_wav
    decoded = decode_mp3(path)[MP3_DECODER_DELAY_SAMPLES : MP3_DECODER_DELAY_SAMPLES + len(wav_samples)]
    reference = wav_samples.astype(np.float64)
    error = decoded.astype(np.float64) - reference
    signal_to_noise_db = 10 * np.log10(np.sum(reference**2) / np.sum(error**2))
    assert signal_to_noise_db > 10  # a misaligned or garbled file scores below 0 dB


@needs_system_voice
def test_mp3_chapters_read_back_with_mutagen(sampler_mp3, sampler: Routine) -> None:
    from mutagen.id3 import ID3
    from mutagen.mp3 import MP3

    result, path = sampler_mp3
    tags = ID3(path)
    chapters = sorted(tags.getall("CHAP"), key=lambda chapter: chapter.start_time)  # mutagen writes them by size
    titles = [str(chapter.sub_frames["TIT2"]) for chapter in chapters]
    assert titles == ["Introduction", "Figure four stretch", "Knee squeeze", "Heel slides"]
    toc = tags.getall("CTOC")[0]
    assert toc.child_element_ids == [chapter.element_id for chapter in chapters]
    plan = result.plan
    for chapter, exercise in zip(chapters[1:], sampler.exercises):
        announcement = next(s for s in plan.segments if s.exercise == exercise.id)
        assert announcement.text.startswith("Exercise ")
        assert chapter.start_time == round(announcement.start * 1000)
    assert chapters[0].start_time == 0
    assert chapters[-1].end_time == round(plan.total_seconds * 1000)
    assert all(a.end_time == b.start_time for a, b in zip(chapters, chapters[1:]))
    assert str(tags["TIT2"]) == "Render sampler"
    assert MP3(path).info.length == pytest.approx(plan.total_seconds, abs=0.2)


@needs_system_voice
@needs_ffmpeg
def test_mp3_chapters_read_back_with_ffprobe(sampler_mp3) -> None:
    result, path = sampler_mp3
    found = sorted(ffprobe(path)["chapters"], key=lambda chapter: float(chapter["start_time"]))
    expected = [chapter.to_json() for chapter in result.chapters]
    assert [(c["tags"]["title"], float(c["start_time"]), float(c["end_time"])) for c in found] == [
        (c["title"], c["start"], c["end"]) for c in expected]


def test_chapters_cover_the_session_without_gaps(sampler: Routine) -> None:
    from coach.plan import build_plan

    plan = build_plan(sampler)
    chapters = chapters_of(plan)
    assert chapters[0].start_seconds == 0 and chapters[-1].end_seconds == plan.total_seconds
    assert all(a.end_seconds == b.start_seconds for a, b in zip(chapters, chapters[1:]))
    assert len(chapters) == 1 + len(sampler.exercises)


# --- intelligibility -------------------------------------------------------------------------------


def _rendered_phrase(samples: np.ndarray, rate: int, segment: Segment) -> Clip:
    start = round(segment.start * rate)
    return Clip(samples[start : start + round(segment.seconds * rate)].copy(), rate)


@needs_system_voice
@needs_pocketsphinx
def test_speech_in_the_rendered_file_is_understood(sampler_wav) -> None:
    result, samples, rate = sampler_wav
    candidates = ["switch sides left side", "breathe out slowly", "stop if anything hurts", "relax",
                  "squeeze your knees together", "right side first"]
    recognize = phrase_recognizer(candidates)
    wanted = {"Breathe out slowly.", "Switch sides. Left side.", "Squeeze your knees together."}
    segments = {s.text: s for s in result.plan.segments if s.kind == "speech" and s.text in wanted}
    assert len(segments) == len(wanted)
    for text, segment in segments.items():
        heard = recognize(_rendered_phrase(samples, rate, segment))
        assert heard == text.lower().replace(".", "").replace(",", ""), text


# --- both voices, through the command ------------------------------------------------------------


@pytest.mark.parametrize("voice", [pytest.param("system", marks=needs_system_voice),
                                   pytest.param("joe", marks=needs_piper)])
def test_coach_render_writes_the_quick_routine_with_each_voice(tmp_path: Path, voice: str) -> None:
    finished = run_coach("render", "quick", "--voice", voice, "-o", str(tmp_path / "quick.wav"), "--json")
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    assert set(summary) >= {"output", "duration_seconds", "voice", "chapters"}
    assert summary["voice"] == voice and summary["output"] == str(tmp_path / "quick.wav")
    samples, rate = read_wav(tmp_path / "quick.wav")
    assert len(samples) / rate == pytest.approx(summary["duration_seconds"], abs=0.0005)
    assert 20 < summary["duration_seconds"] < 90
    assert [c["title"] for c in summary["chapters"]] == ["Introduction", "Gentle glute squeeze"]
    assert np.abs(samples.astype(np.int32)).max() > 8000  # speech at a sensible level


@needs_piper
@needs_pocketsphinx
def test_the_joe_render_is_understood(tmp_path: Path, sampler: Routine) -> None:
    cache = PhraseCache(default_cache_dir())
    with CachedVoice(PiperVoice(), cache) as voice:
        result = render(sampler, PlanOptions(sides=("left",)), voice, tmp_path / "joe.wav", voice_name="joe")
    samples, rate = read_wav(tmp_path / "joe.wav")
    assert len(samples) == result.total_samples
    recognize = phrase_recognizer(["left side", "breathe out slowly", "squeeze your knees together", "relax"])
    segment = next(s for s in result.plan.segments if s.text == "Breathe out slowly.")
    assert recognize(_rendered_phrase(samples, rate, segment)) == "breathe out slowly"


@needs_system_voice
def test_a_second_render_comes_from_the_cache_and_is_identical(tmp_path: Path) -> None:
    first = run_coach("render", "quick", "--voice", "system", "-o", str(tmp_path / "one.wav"))
    assert first.returncode == 0, first.stderr
    second = run_coach("render", "quick", "--voice", "system", "-o", str(tmp_path / "two.wav"))
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "one.wav").read_bytes() == (tmp_path / "two.wav").read_bytes()
    assert first.stdout.strip() == str(tmp_path / "one.wav")


@needs_system_voice
def test_split_writes_one_file_per_chapter_and_a_playlist(tmp_path: Path, write_script: Callable[..., Path]) -> None:
    script = write_script(SAMPLER, "sampler.yaml")
    finished = run_coach("render", str(script), "--voice", "system", "--split", "-o", str(tmp_path / "s.wav"), "--json")
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    assert summary["output"] == str(tmp_path / "s.m3u")
    files = [Path(name) for name in summary["files"]]
    assert [path.name for path in files] == ["s-01-introduction.wav", "s-02-figure-four-stretch.wav",
                                             "s-03-knee-squeeze.wav", "s-04-heel-slides.wav"]
    lengths = [len(read_wav(path)[0]) for path in files]
    rate = 22050
    assert sum(lengths) == round(summary["duration_seconds"] * rate)
    for length, chapter in zip(lengths, summary["chapters"]):
        assert length / rate == pytest.approx(chapter["end"] - chapter["start"], abs=0.001)
    playlist = (tmp_path / "s.m3u").read_text(encoding="utf-8").splitlines()
    assert playlist[0] == "#EXTM3U"
    assert [line for line in playlist if not line.startswith("#")] == [path.name for path in files]
    assert not (tmp_path / "s.wav").exists()


@needs_system_voice
@needs_ffmpeg
def test_split_mp3_files_carry_titles_and_track_numbers(tmp_path: Path) -> None:
    finished = run_coach("render", "quick", "--voice", "system", "--split", "-o", str(tmp_path / "q.mp3"))
    assert finished.returncode == 0, finished.stderr
    names = finished.stdout.split()
    assert names[-1] == str(tmp_path / "q.m3u")
    tags = ffprobe(Path(names[1]))["format"]["tags"]
    assert (tags["title"], tags["album"], tags["track"]) == ("Gentle glute squeeze", "Quick try", "2/2")


# --- errors and interruptions ----------------------------------------------------------------------


def test_an_unknown_output_type_is_refused_before_any_work(tmp_path: Path) -> None:
    finished = run_coach("render", "quick", "-o", str(tmp_path / "quick.ogg"))
    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'quick.ogg'}: coach writes .wav or .mp3 files; end the output name with one of them"]


@needs_system_voice
@pytest.mark.parametrize("where, says", [
    ("missing/quick.wav", "does not exist; create it first"),
    ("a-file/quick.wav", "a-file is a file, not a folder; check the output path"),
])
def test_an_unwritable_output_is_one_line_and_exit_1(tmp_path: Path, where: str, says: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    finished = run_coach("render", "quick", "--voice", "system", "-o", str(tmp_path / where))
    assert finished.returncode == 1
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: cannot write {tmp_path / where}: ") and says in lines[0]


def _set_file_size_limit() -> None:
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes then fail with EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


@needs_system_voice
def test_running_out_of_space_is_one_line_exit_1_and_leaves_no_file(tmp_path: Path) -> None:
    """The file-size limit makes writes fail half way, as a full disk does (EFBIG for ENOSPC)."""
    folder = tmp_path / "out"
    folder.mkdir()
    # Speak the phrases first: under the limit the speech engine's own files would fail first.
    assert run_coach("render", "quick", "--voice", "system", "-o", str(tmp_path / "warm.wav")).returncode == 0
    finished = subprocess.run([*COACH, "render", "quick", "--voice", "system", "-o", str(folder / "q.wav")],
                              capture_output=True, text=True, timeout=300, preexec_fn=_set_file_size_limit)
    assert finished.returncode == 1
    lines = finished.stderr.strip().splitlines()
    assert lines[-1].startswith(f"Error: cannot write {folder / 'q.wav'}: File too large; "), lines
    assert list(folder.iterdir()) == []


@needs_system_voice
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                    reason="mounting a tiny file system to fill needs root")
def test_a_full_disk_is_one_line_exit_1_and_leaves_no_file(tmp_path: Path) -> None:
    disk = tmp_path / "tiny"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        finished = run_coach("render", "quick", "--voice", "system", "-o", str(disk / "q.wav"))
        assert finished.returncode == 1
        lines = finished.stderr.strip().splitlines()
        assert lines == [f"Error: cannot write {disk / 'q.wav'}: No space left on device; "
                         "the disk is full; free some space or choose another output folder"]
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _wait_for_part_file(folder: Path, process: subprocess.Popen[bytes]) -> Path:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        parts = [path for path in folder.iterdir() if path.name.endswith(TEMP_MARKER) and path.stat().st_size > 0]
        if parts:
            return parts[0]
        assert process.poll() is None, "the render ended before it could be interrupted"
        time.sleep(0.01)
    raise AssertionError("no temporary file appeared")


@needs_system_voice
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_render_leaves_no_file_at_the_target(tmp_path: Path, how: signal.Signals) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "piriformis.wav"
    # A WAV of the long routine takes long enough to write that the signal lands mid-file.
    process = subprocess.Popen([*COACH, "render", "piriformis", "--voice", "system", "-o", str(target)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    part = _wait_for_part_file(folder, process)
    process.send_signal(how)
    process.communicate(timeout=60)
    assert not target.exists()
    if how != signal.SIGKILL:  # a process that could clean up did
        assert not part.exists()
        assert process.returncode != 0
    else:  # the next render to the same target removes the dead render's leftovers
        assert part.exists()
        again = run_coach("render", "quick", "--voice", "system", "-o", str(target))
        assert again.returncode == 0, again.stderr
        assert target.exists() and not part.exists()
