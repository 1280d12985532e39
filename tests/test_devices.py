"""Listing and choosing sound devices (coach/audio/devices.py): against a fake PortAudio for the
rules, and against the real one under the private PulseAudio server for what a user sees."""

from __future__ import annotations

import json
import subprocess
import sys
from types import ModuleType
from typing import Any

import pytest

from coach.audio.devices import (
    Device,
    all_devices,
    choose_input,
    choose_output,
    devices_text,
    format_devices,
    input_devices,
    load_sounddevice,
    output_devices,
)
from coach.errors import CoachError, OptionError
from tests.pulse import PulseServer, portaudio_with_environment


class FakePortAudio:
    """The part of sounddevice that devices.py uses: a fixed device list and defaults."""

    class PortAudioError(Exception):
        pass

    def __init__(self, devices: list[tuple[str, int, int]], default_output: int = -1,
                 default_input: int = -1) -> None:
        self.devices = [
            {"name": name, "index": index, "hostapi": 0, "max_output_channels": outputs,
             "max_input_channels": inputs, "default_samplerate": 44100.0}
            for index, (name, outputs, inputs) in enumerate(devices)
        ]
        self.defaults = {"output": default_output, "input": default_input}

    def query_hostapis(self) -> tuple[dict[str, Any], ...]:
        return ({"name": "ALSA"},)

    def query_devices(self, device: int | None = None, kind: str | None = None) -> Any:
        if kind is None:
            return list(self.devices)
        index = self.defaults[kind]
        if index < 0:
            raise self.PortAudioError(f"Error querying device {index}")
        return self.devices[index]


CARD = FakePortAudio(
    [("HDA Intel PCH: ALC892 Analog (hw:0,0)", 2, 2),
     ("HDA Intel PCH: HDMI 0 (hw:0,3)", 8, 0),
     ("USB Headset: Audio (hw:1,0)", 2, 1),
     ("pulse", 32, 32),
     ("pulseaudio-extra", 2, 0),
     ("default", 32, 32)],
    default_output=5, default_input=5)


# ----- the rules, against a fake -----

def test_devices_are_listed_with_host_api_and_defaults() -> None:
    devices = all_devices(CARD)
    assert [device.index for device in devices] == [0, 1, 2, 3, 4, 5]
    assert devices[1] == Device(index=1, name="HDA Intel PCH: HDMI 0 (hw:0,3)", host_api="ALSA",
                                max_output_channels=8, max_input_channels=0, default_sample_rate_hz=44100.0,
                                is_default=False, is_default_input=False)
    assert [device.index for device in output_devices(CARD)] == [0, 1, 2, 3, 4, 5]
    assert [device.index for device in input_devices(CARD)] == [0, 2, 3, 5]
    assert devices[5].is_default and devices[5].is_default_input


def test_choose_the_default_output() -> None:
    assert choose_output(None, CARD).name == "default"
    assert choose_output("  ", CARD).name == "default"


def test_choose_by_number() -> None:
    assert choose_output("2", CARD).name == "USB Headset: Audio (hw:1,0)"
    assert choose_output(" 1 ", CARD).index == 1


def test_choose_by_part_of_the_name_in_any_case() -> None:
    assert choose_output("usb", CARD).index == 2
    assert choose_output("HDMI", CARD).index == 1


def test_a_whole_name_wins_over_names_that_contain_it() -> None:
    assert choose_output("PULSE", CARD).index == 3  # not ambiguous with pulseaudio-extra


def test_an_ambiguous_name_lists_the_matches() -> None:
    with pytest.raises(OptionError) as caught:
        choose_output("hda intel", CARD)
    message = str(caught.value)
    assert message == ("'hda intel' matches 2 audio output devices: 0 (HDA Intel PCH: ALC892 Analog (hw:0,0)), "
                       "1 (HDA Intel PCH: HDMI 0 (hw:0,3)); give its number or more of its name "
                       "(see `coach devices`)")
    assert caught.value.exit_code == 2 and "\n" not in message


def test_a_name_that_matches_nothing() -> None:
    with pytest.raises(OptionError, match=r"^no audio output device matches 'bluetooth'; see `coach devices`$"):
        choose_output("bluetooth", CARD)


def test_a_number_that_is_no_device() -> None:
    with pytest.raises(OptionError, match=r"^there is no audio device number 9; see `coach devices`$"):
        choose_output("9", CARD)


def test_a_device_without_outputs_cannot_play() -> None:
    microphone_only = FakePortAudio([("speakers", 2, 0), ("mic", 0, 1)], default_output=0, default_input=1)
    with pytest.raises(OptionError, match=r"^audio device 1 \(mic\) has no outputs; see `coach devices`$"):
        choose_output("1", microphone_only)
    with pytest.raises(OptionError, match="no audio output device matches 'mic'"):
        choose_output("mic", microphone_only)
    assert choose_input(None, microphone_only).name == "mic"
    with pytest.raises(OptionError, match="audio device 0 \\(speakers\\) has no inputs"):
        choose_input("0", microphone_only)


def test_no_devices_at_all_says_check_the_sound_server() -> None:
    nothing = FakePortAudio([])
    for spec in (None, "0", "pulse"):
        with pytest.raises(CoachError) as caught:
            choose_output(spec, nothing)
        assert not isinstance(caught.value, OptionError) and caught.value.exit_code == 1
        assert str(caught.value) == (
            "no audio output device found; check that a sound server (PulseAudio or PipeWire) is running and "
            "that ALSA's pulse plugin is installed (`apt-get install libasound2-plugins`), and see `coach devices`")


def test_devices_but_no_default_one() -> None:
    no_default = FakePortAudio([("hw one", 2, 0), ("hw two", 2, 0)], default_output=-1)
    with pytest.raises(CoachError, match=r"^there is no default audio output device; choose one by number or "
                                         r"name \(see `coach devices`\)$"):
        choose_output(None, no_default)
    assert choose_output("two", no_default).index == 1


def test_a_missing_portaudio_library_names_the_package() -> None:
    def no_portaudio(name: str) -> ModuleType:
        raise OSError("PortAudio library not found")

    with pytest.raises(CoachError, match=r"^the PortAudio sound library is missing \(PortAudio library not found\); "
                                         r"install it with `apt-get install libportaudio2` \(Debian, Ubuntu\)$"):
        load_sounddevice(no_portaudio)


def test_the_table_marks_the_defaults() -> None:
    table = format_devices(all_devices(FakePortAudio([("pulse", 32, 32), ("default", 32, 32), ("hw mic", 0, 2)],
                                                     default_output=1, default_input=2)))
    assert table.splitlines() == [
        "#  name     host API  outputs  inputs  rate (Hz)  default",
        "0  pulse    ALSA           32      32      44100",
        "1  default  ALSA           32      32      44100  output",
        "2  hw mic   ALSA            0       2      44100  input",
    ]


def test_devices_text_as_json_and_when_empty() -> None:
    data = json.loads(devices_text(as_json=True, portaudio=CARD))
    assert data[5] == {"index": 5, "name": "default", "host_api": "ALSA", "max_output_channels": 32,
                       "max_input_channels": 32, "default_sample_rate_hz": 44100.0, "is_default": True,
                       "is_default_input": True, "is_output": True, "is_input": True}
    assert devices_text(as_json=True, portaudio=FakePortAudio([])) == "[]"
    with pytest.raises(CoachError, match="^no audio devices found; check that a sound server"):
        devices_text(portaudio=FakePortAudio([]))
    assert format_devices([]).startswith("no audio devices found")


# ----- the real PortAudio under the private PulseAudio server -----

def test_real_devices_under_the_private_server(sounddevice_pulse: ModuleType) -> None:
    devices = output_devices(sounddevice_pulse)
    names = [device.name for device in devices]
    assert "pulse" in names and "default" in names
    assert all(device.host_api == "ALSA" for device in devices)
    default = choose_output(None, sounddevice_pulse)
    assert default.is_default and default.name == "default"
    pulse = choose_output("PULSE", sounddevice_pulse)
    assert pulse.name == "pulse" and pulse.max_output_channels >= 1
    assert choose_output(str(pulse.index), sounddevice_pulse) == pulse
    assert choose_input(None, sounddevice_pulse).name == "default"
    with pytest.raises(OptionError, match=r"^'ul' matches 2 audio output devices: .*\(pulse\).*\(default\)"):
        choose_output("ul", sounddevice_pulse)  # pULse, defaULt
    with pytest.raises(OptionError, match="no audio output device matches 'no-such-card'"):
        choose_output("no-such-card", sounddevice_pulse)
    assert "default" in devices_text(portaudio=sounddevice_pulse)


def test_the_chosen_device_plays(sounddevice_pulse: ModuleType, pulse: PulseServer) -> None:
    device = choose_output("pulse", sounddevice_pulse)
    with sounddevice_pulse.OutputStream(samplerate=22050, channels=1, dtype="int16", device=device.index) as stream:
        assert stream.active
        assert "22050Hz" in pulse.sink_inputs()


def test_a_dead_sound_server_gives_the_no_device_error(sounddevice_pulse: ModuleType, pulse: PulseServer) -> None:
    assert pulse.folder is not None
    if any("(hw:" in device.name for device in all_devices(sounddevice_pulse)):
        pytest.skip("this machine has a sound card: PortAudio lists it even without a sound server")
    with portaudio_with_environment({"PULSE_SERVER": f"unix:{pulse.folder / 'no-such-socket'}"}):
        assert output_devices(sounddevice_pulse) == []
        with pytest.raises(CoachError, match=r"^no audio output device found; check that a sound server .*"
                                             r"see `coach devices`$") as caught:
            choose_output(None, sounddevice_pulse)
        assert caught.value.exit_code == 1
    assert choose_output(None, sounddevice_pulse).name == "default"  # the other tests get it back


def test_a_fresh_process_finds_the_server_through_its_environment(pulse: PulseServer) -> None:
    # What `coach` itself does: sounddevice imported after PULSE_SERVER is set.
    code = "from coach.audio.devices import choose_output; print(choose_output(None).name)"
    done = subprocess.run([sys.executable, "-c", code], env=pulse.environ(), capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "default"), done.stderr
