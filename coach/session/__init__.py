"""Live sessions: the pure engine (``engine``) and the actions and events it speaks in (``events``)."""

from coach.session.engine import SessionEngine
from coach.session.events import (
    Action, Ended, Play, Record, Say, SetVolume, Status, StopAudio,
)

__all__ = ["Action", "Ended", "Play", "Record", "Say", "SessionEngine", "SetVolume", "Status", "StopAudio"]
