"""The user folder: routines, voices, phrase cache, history and models.

``COACH_HOME`` moves the whole folder (tests point it at a temporary directory); otherwise the
platform's usual place for application data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HOME_VARIABLE = "COACH_HOME"


def coach_home() -> Path:
    override = os.environ.get(HOME_VARIABLE)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "coach"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "coach"
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "coach"


def user_routines_dir() -> Path:
    return coach_home() / "routines"
