"""Durations as people write them in scripts: ``10``, ``2.5``, ``"90s"``, ``"1m30s"``, ``"2m"``."""

from __future__ import annotations

import math
import re

_UNITS = re.compile(
    r"""^\s*
    (?:(?P<h>\d+(?:\.\d+)?)\s*h)?\s*
    (?:(?P<m>\d+(?:\.\d+)?)\s*m(?:in)?)?\s*
    (?:(?P<s>\d+(?:\.\d+)?)\s*s(?:ec)?)?
    \s*$""",
    re.VERBOSE,
)
_PLAIN = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")

DURATION_HELP = 'write seconds as a number (10) or a string like "90s" or "1m30s"'


def parse_duration_seconds(value: object) -> float:
    """Return the duration in seconds, or raise ``ValueError`` saying what is accepted.

    Booleans are refused even though Python counts them as numbers: ``hold: yes`` is a typo,
    not one second.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a duration, got {_describe(value)}; {DURATION_HELP}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value)
    else:
        raise ValueError(f"expected a duration, got {_describe(value)}; {DURATION_HELP}")
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite duration; {DURATION_HELP}")
    return seconds


def _parse_text(text: str) -> float:
    if _PLAIN.match(text):
        return float(text)
    match = _UNITS.match(text)
    if not match or not any(match.group(unit) for unit in "hms"):
        raise ValueError(f"cannot read {text!r} as a duration; {DURATION_HELP}")
    hours, minutes, seconds = (float(match.group(unit) or 0) for unit in "hms")
    return hours * 3600 + minutes * 60 + seconds


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no value)"
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    return f"{type(value).__name__} {value!r}"


def format_duration(seconds: float) -> str:
    """``75.0`` -> ``"1m15s"``, the form scripts use; whole seconds shown without decimals."""
    whole_minutes, rest = divmod(round(seconds, 1), 60)
    rest_text = f"{rest:g}s" if rest else ""
    if whole_minutes:
        return f"{int(whole_minutes)}m{rest_text}"
    return rest_text or "0s"


def clock(seconds: float) -> str:
    """``75.4`` -> ``"1:15"`` for timelines (whole seconds, cut down); ``h:mm:ss`` from an hour."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
