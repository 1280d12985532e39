"""The sound devices PortAudio offers, and choosing one by number or name.

PortAudio (through sounddevice) lists its devices once, when it starts: on Linux its ALSA host
API finds the ``pulse`` and ``default`` devices only while a PulseAudio or PipeWire server
answers. The listing is therefore a snapshot taken at the first use of this module.

Every function takes the sounddevice module as ``portaudio``; tests hand in a fake with the same
``query_devices``, ``query_hostapis`` and ``PortAudioError``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any, Literal

from coach.errors import CoachError, OptionError

Kind = Literal["output", "input"]

SEE_DEVICES = "see `coach devices`"
INSTALL_PORTAUDIO = "install it with `apt-get install libportaudio2` (Debian, Ubuntu)"
NO_DEVICE_HINT = ("check that a sound server (PulseAudio or PipeWire) is running and that ALSA's pulse "
                  "plugin is installed (`apt-get install libasound2-plugins`)")


@dataclass(frozen=True)
class Device:
    """One PortAudio device. A device can have both outputs and inputs (ALSA's ``pulse`` does)."""

    index: int
    """PortAudio's device number: what `coach devices` shows and ``--device 3`` picks."""
    name: str
    host_api: str
    max_output_channels: int
    max_input_channels: int
    default_sample_rate_hz: float
    is_default: bool
    """The default output device."""
    is_default_input: bool

    @property
    def is_output(self) -> bool:
        return self.max_output_channels > 0

    @property
    def is_input(self) -> bool:
        return self.max_input_channels > 0


def load_sounddevice(import_module: Callable[[str], ModuleType] = importlib.import_module) -> ModuleType:
    """Import sounddevice, turning a missing PortAudio library into a CoachError that names the fix."""
    try:
        return import_module("sounddevice")
    except OSError as error:  # sounddevice raises OSError('PortAudio library not found')
        raise CoachError(f"the PortAudio sound library is missing ({error}); {INSTALL_PORTAUDIO}") from None
    except ImportError as error:
        raise CoachError(f"live sound needs sounddevice, which is not installed ({error}); "
                         "install it with `pip install sounddevice`") from None


def all_devices(portaudio: Any = None) -> list[Device]:
    """Every device PortAudio listed, outputs and inputs, by number."""
    portaudio = portaudio if portaudio is not None else load_sounddevice()
    host_apis = [api["name"] for api in portaudio.query_hostapis()]
    default_output = _default_index(portaudio, "output")
    default_input = _default_index(portaudio, "input")
    devices = []
    for info in portaudio.query_devices():
        index = int(info["index"])
        host_api = int(info["hostapi"])
        devices.append(Device(
            index=index,
            name=str(info["name"]),
            host_api=host_apis[host_api] if 0 <= host_api < len(host_apis) else str(host_api),
            max_output_channels=int(info["max_output_channels"]),
            max_input_channels=int(info["max_input_channels"]),
            default_sample_rate_hz=float(info["default_samplerate"]),
            is_default=index == default_output,
            is_default_input=index == default_input,
        ))
    return devices


def output_devices(portaudio: Any = None) -> list[Device]:
    """The devices that can play sound."""
    return [device for device in all_devices(portaudio) if device.is_output]


def input_devices(portaudio: Any = None) -> list[Device]:
    """The devices that can record sound (a microphone, a monitor of a sink)."""
    return [device for device in all_devices(portaudio) if device.is_input]


def choose_output(spec: str | None, portaudio: Any = None) -> Device:
    """The output device ``spec`` names: None for the default one, a number ("3"), or a part
    of its name, any case ("pulse"). A name that is a whole device name wins over devices that
    merely contain it.

    Raises CoachError (exit 1) when there is no output device at all or no default one, and
    OptionError (exit 2) when ``spec`` matches no output device or more than one.
    """
    return _choose(spec, "output", all_devices(portaudio))


def choose_input(spec: str | None, portaudio: Any = None) -> Device:
    """The input device ``spec`` names; the same rules as :func:`choose_output`."""
    return _choose(spec, "input", all_devices(portaudio))


def format_devices(devices: Sequence[Device]) -> str:
    """A table for `coach devices`: number, name, host API, channels, rate and which is default."""
    if not devices:
        return f"no audio devices found; {NO_DEVICE_HINT}"
    rows = [("#", "name", "host API", "outputs", "inputs", "rate (Hz)", "default")]
    for device in devices:
        default = [kind for kind, yes in (("output", device.is_default), ("input", device.is_default_input)) if yes]
        rows.append((str(device.index), device.name, device.host_api, str(device.max_output_channels),
                     str(device.max_input_channels), f"{device.default_sample_rate_hz:g}", ", ".join(default)))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    right = {0, 3, 4, 5}  # numbers line up on the right
    lines = []
    for row in rows:
        cells = [cell.rjust(width) if column in right else cell.ljust(width)
                 for column, (cell, width) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def devices_text(as_json: bool = False, portaudio: Any = None) -> str:
    """What `coach devices [--json]` prints on stdout.

    With no device at all, the table form raises CoachError (exit 1) with the fix; the JSON
    form is an empty list.
    """
    devices = all_devices(portaudio)
    if as_json:
        return json.dumps([{**asdict(device), "is_output": device.is_output, "is_input": device.is_input}
                           for device in devices], indent=2, ensure_ascii=False)
    if not devices:
        raise CoachError(f"no audio devices found; {NO_DEVICE_HINT}")
    return format_devices(devices)


def _choose(spec: str | None, kind: Kind, devices: list[Device]) -> Device:
    usable = [device for device in devices if _has(device, kind)]
    if not usable:
        raise CoachError(f"no audio {kind} device found; {NO_DEVICE_HINT}, and {SEE_DEVICES}")
    if spec is None or not spec.strip():
        for device in usable:
            if device.is_default if kind == "output" else device.is_default_input:
                return device
        raise CoachError(f"there is no default audio {kind} device; choose one by number or name ({SEE_DEVICES})")
    wanted = spec.strip()
    if wanted.isdigit():
        index = int(wanted)
        for device in devices:
            if device.index == index:
                if not _has(device, kind):
                    raise OptionError(f"audio device {index} ({device.name}) has no {kind}s; {SEE_DEVICES}")
                return device
        raise OptionError(f"there is no audio device number {index}; {SEE_DEVICES}")
    folded = wanted.casefold()
    exact = [device for device in usable if device.name.casefold() == folded]
    matches = exact or [device for device in usable if folded in device.name.casefold()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise OptionError(f"no audio {kind} device matches '{wanted}'; {SEE_DEVICES}")
    listed = ", ".join(f"{device.index} ({device.name})" for device in matches)
    raise OptionError(f"'{wanted}' matches {len(matches)} audio {kind} devices: {listed}; "
                      f"give its number or more of its name ({SEE_DEVICES})")


def _has(device: Device, kind: Kind) -> bool:
    return device.is_output if kind == "output" else device.is_input


def _default_index(portaudio: Any, kind: Kind) -> int:
    """The default device's number, or -1 when PortAudio has none (no server, no card)."""
    try:
        return int(portaudio.query_devices(kind=kind)["index"])
    except (portaudio.PortAudioError, ValueError):
        return -1
