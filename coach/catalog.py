"""Finding routines: by path, in the user folder, or bundled with coach."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

from coach.errors import RoutineNotFound
from coach.home import user_routines_dir

Origin = Literal["user", "bundled", "file"]
SCRIPT_SUFFIXES = (".yaml", ".yml")


def bundled_scripts_dir() -> Path:
    """Inside an installed wheel the scripts sit in the package; in a checkout, beside it."""
    package = Path(__file__).resolve().parent
    installed = package / "_bundled" / "scripts"
    return installed if installed.is_dir() else package.parent / "scripts"


@dataclass(frozen=True)
class RoutineRef:
    id: str
    path: Path
    origin: Origin


def available_routines() -> list[RoutineRef]:
    """User routines first; a user routine with a bundled routine's id replaces it."""
    found: dict[str, RoutineRef] = {}
    for origin, folder in (("user", user_routines_dir()), ("bundled", bundled_scripts_dir())):
        for path in _scripts_in(folder):
            found.setdefault(path.stem, RoutineRef(path.stem, path, origin))  # type: ignore[arg-type]
    return sorted(found.values(), key=lambda ref: (ref.origin != "bundled", ref.id))


def resolve_routine(name: str) -> RoutineRef:
    """``name`` is a routine id (``piriformis``) or the path of a script file."""
    path = Path(name).expanduser()
    looks_like_path = path.suffix in SCRIPT_SUFFIXES or len(path.parts) > 1
    if looks_like_path or path.is_file():
        if not path.exists():
            raise RoutineNotFound(f"{name}: no such file; check the path, or run 'coach list' for routine ids")
        return RoutineRef(path.stem, path, "file")
    routines = available_routines()
    for ref in routines:
        if ref.id == name:
            return ref
    near = difflib.get_close_matches(name, [ref.id for ref in routines], n=1)
    hint = f"did you mean '{near[0]}'?" if near else "run 'coach list' to see them"
    raise RoutineNotFound(f"no routine named '{name}'; {hint}")


def _scripts_in(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        return iter(())
    return (path for path in sorted(folder.iterdir()) if path.suffix in SCRIPT_SUFFIXES and path.is_file())
