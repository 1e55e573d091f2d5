"""Finding what can be captured: each tool's output parsed from samples, and a missing tool costing only devices."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from framecast.agent import devices
from framecast.agent.capture import Platform
from framecast.agent.devices import (
    Device,
    list_devices,
    parse_avfoundation_devices,
    parse_dshow_devices,
    parse_pactl_sources,
    parse_x11grab_size,
)

PACTL_SOURCES = (
    "46\talsa_output.pci-0000_00_1f.3.analog-stereo.monitor\tPipeWire\ts32le 2ch 48000Hz\tSUSPENDED\n"
    "47\talsa_input.pci-0000_00_1f.3.analog-stereo\tPipeWire\ts32le 2ch 48000Hz\tSUSPENDED\n"
    "112\tbluez_output.AC_80_0A_12_34_56.1.monitor\tPipeWire\ts24le 2ch 48000Hz\tRUNNING\n"
    "113\tbluez_input.AC_80_0A_12_34_56.0\tPipeWire\tfloat32le 1ch 16000Hz\tSUSPENDED\n"
)

X11GRAB_STDERR = """\
[in#0/x11grab @ 0x55e9f84ae0c0] Stream #0: not enough frames to estimate rate; consider increasing probesize
Input #0, x11grab, from ':0':
  Duration: N/A, start: 1795258592.416295, bitrate: 1990656 kb/s
  Stream #0:0: Video: rawvideo (BGR[0] / 0x524742), bgr0, 1920x1080, 1990656 kb/s, 29.97 fps, 1000k tbr, 1000k tbn
Stream mapping:
  Stream #0:0 -> #0:0 (rawvideo (native) -> wrapped_avframe (native))
Output #0, null, to 'pipe:':
  Stream #0:0: Video: wrapped_avframe, bgr0(pc, gbr/unknown/unknown, progressive), 1920x1080, q=2-31, 200 kb/s
"""

AVFOUNDATION_STDERR = """\
[AVFoundation indev @ 0x7fd2f3c04580] AVFoundation video devices:
[AVFoundation indev @ 0x7fd2f3c04580] [0] FaceTime HD Camera
[AVFoundation indev @ 0x7fd2f3c04580] [1] OBS Virtual Camera
[AVFoundation indev @ 0x7fd2f3c04580] [2] Capture screen 0
[AVFoundation indev @ 0x7fd2f3c04580] [3] Capture screen 1
[AVFoundation indev @ 0x7fd2f3c04580] AVFoundation audio devices:
[AVFoundation indev @ 0x7fd2f3c04580] [0] BlackHole 2ch
[AVFoundation indev @ 0x7fd2f3c04580] [1] MacBook Pro Microphone
[AVFoundation indev @ 0x7fd2f3c04580] [2] ZoomAudioDevice
[in#0 @ 0x600000d78000] Error opening input: Input/output error
Error opening input file .
Error opening input files: Input/output error
"""

DSHOW_STDERR = r"""[dshow @ 000001f0e8a0e2c0] "Integrated Camera" (video)
[dshow @ 000001f0e8a0e2c0]   Alternative name "@device_pnp_\\?\usb#vid_04f2&pid_b6d9&mi_00#6&2e1b5b3a&0&0000#{65e8773d-8f56-11d0-a3b9-00a0c9223196}\global"
[dshow @ 000001f0e8a0e2c0] "OBS Virtual Camera" (none)
[dshow @ 000001f0e8a0e2c0]   Alternative name "@device_sw_{860BB310-5D01-11D0-BD3B-00A0C911CE86}\{A3FCE0F5-3493-419F-958A-ABA1250EC20B}"
[dshow @ 000001f0e8a0e2c0] "Microphone Array (Realtek(R) Audio)" (audio)
[dshow @ 000001f0e8a0e2c0]   Alternative name "@device_cm_{33D9A762-90C8-11D0-BD43-00A0C911CE86}\wave_{2A4C2D0E-2C3B-4F13-9A39-5E8B4E6C1D2F}"
[dshow @ 000001f0e8a0e2c0] "Stereo Mix (Realtek(R) Audio)" (audio)
[dshow @ 000001f0e8a0e2c0]   Alternative name "@device_cm_{33D9A762-90C8-11D0-BD43-00A0C911CE86}\wave_{8B1D3C2A-7E55-4E0B-A0F4-0C29D7E1B1A4}"
[dshow @ 000001f0e8a0e2c0] "AVerMedia Live Gamer" (video, audio)
[in#0 @ 000001f0e89fe500] Error opening input: Immediate exit requested
Error opening input file dummy.
"""  # noqa: E501

DSHOW_STDERR_OLD = r"""[dshow @ 0000000000352ee0] DirectShow video devices (some may be both video and audio devices)
[dshow @ 0000000000352ee0]  "Integrated Camera"
[dshow @ 0000000000352ee0]     Alternative name "@device_pnp_\\?\usb#vid_04f2&pid_b6d9&mi_00#6&2e1b5b3a#{65e8773d}\global"
[dshow @ 0000000000352ee0] DirectShow audio devices
[dshow @ 0000000000352ee0]  "Microphone (Realtek High Definition Audio)"
[dshow @ 0000000000352ee0]     Alternative name "@device_cm_{33D9A762-90C8-11D0-BD43-00A0C911CE86}\wave_{0B1E2F3A}"
[dshow @ 0000000000352ee0]  "virtual-audio-capturer"
[dshow @ 0000000000352ee0]     Alternative name "@device_sw_{33D9A762-90C8-11D0-BD43-00A0C911CE86}\{8E146464}"
dummy: Immediate exit requested
"""  # noqa: E501


def ids(found: list[Device], kind: str) -> list[str]:
    return [device.id for device in found if device.kind == kind]


def defaults(found: list[Device]) -> dict[str, str]:
    return {device.kind: device.id for device in found if device.default}


# -- parsers ---------------------------------------------------------------------------------------------------------


def test_pactl_sources_split_into_microphones_and_system_audio() -> None:
    found = parse_pactl_sources(
        PACTL_SOURCES,
        default_source="alsa_input.pci-0000_00_1f.3.analog-stereo",
        default_sink="bluez_output.AC_80_0A_12_34_56.1",
    )
    assert [(device.kind, device.id) for device in found] == [
        ("microphone", "alsa_input.pci-0000_00_1f.3.analog-stereo"),
        ("microphone", "bluez_input.AC_80_0A_12_34_56.0"),
        ("system_audio", "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor"),
        ("system_audio", "bluez_output.AC_80_0A_12_34_56.1.monitor"),
    ]
    assert defaults(found) == {
        "microphone": "alsa_input.pci-0000_00_1f.3.analog-stereo",
        "system_audio": "bluez_output.AC_80_0A_12_34_56.1.monitor",
    }
    assert found[1].detail == "float32le 1ch 16000Hz"


def test_pactl_sources_without_named_defaults_take_the_first_of_each_kind() -> None:
    found = parse_pactl_sources(PACTL_SOURCES)
    assert defaults(found) == {
        "microphone": "alsa_input.pci-0000_00_1f.3.analog-stereo",
        "system_audio": "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor",
    }


def test_pactl_noise_is_ignored() -> None:
    assert parse_pactl_sources("Connection failure: Connection refused\n\n") == []


def test_x11grab_size() -> None:
    assert parse_x11grab_size(X11GRAB_STDERR) == "1920x1080"
    assert parse_x11grab_size("[x11grab @ 0x5581] Cannot open display :0, error 1.\n") is None


def test_avfoundation_devices() -> None:
    found = parse_avfoundation_devices(AVFOUNDATION_STDERR)
    assert [(device.kind, device.id, device.name) for device in found] == [
        ("screen", "2", "Capture screen 0"),
        ("screen", "3", "Capture screen 1"),
        ("camera", "0", "FaceTime HD Camera"),
        ("camera", "1", "OBS Virtual Camera"),
        ("microphone", "1", "MacBook Pro Microphone"),
        ("microphone", "2", "ZoomAudioDevice"),
        ("system_audio", "0", "BlackHole 2ch"),
    ]
    assert defaults(found) == {"screen": "2", "camera": "0", "microphone": "1", "system_audio": "0"}


def test_dshow_devices() -> None:
    found = parse_dshow_devices(DSHOW_STDERR)
    assert [(device.kind, device.id) for device in found] == [
        ("camera", "Integrated Camera"),
        ("camera", "AVerMedia Live Gamer"),
        ("microphone", "Microphone Array (Realtek(R) Audio)"),
        ("microphone", "AVerMedia Live Gamer"),
        ("system_audio", "Stereo Mix (Realtek(R) Audio)"),
    ]
    assert defaults(found)["camera"] == "Integrated Camera"


def test_dshow_devices_in_the_older_listing() -> None:
    found = parse_dshow_devices(DSHOW_STDERR_OLD)
    assert [(device.kind, device.id) for device in found] == [
        ("camera", "Integrated Camera"),
        ("microphone", "Microphone (Realtek High Definition Audio)"),
        ("system_audio", "virtual-audio-capturer"),
    ]


# -- Linux -----------------------------------------------------------------------------------------------------------


def make_camera(sys_root: Path, node: str, name: str, index: str | None = "0") -> None:
    folder = sys_root / "class" / "video4linux" / node
    folder.mkdir(parents=True)
    (folder / "name").write_text(name + "\n")
    if index is not None:
        (folder / "index").write_text(index + "\n")


class FakeTools:
    """Answers as the named tools would; anything else is a missing program."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str, str]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        return self.answers.get(tuple(argv), (127, "", "not found"))


LINUX_TOOLS = {
    ("ffmpeg", "-hide_banner", "-f", "x11grab", "-i", ":0", "-frames:v", "1", "-f", "null", "-"): (
        0, "", X11GRAB_STDERR,
    ),
    ("xdotool", "search", "--onlyvisible", "--name", "."): (0, "62914563\n60817415\n", ""),
    ("xdotool", "getwindowname", "62914563"): (0, "Inbox - Mozilla Thunderbird\n", ""),
    ("xdotool", "getwindowname", "60817415"): (0, "Terminal\n", ""),
    ("pactl", "list", "short", "sources"): (0, PACTL_SOURCES, ""),
    ("pactl", "get-default-source"): (0, "bluez_input.AC_80_0A_12_34_56.0\n", ""),
    ("pactl", "get-default-sink"): (1, "", "No such command"),
}  # fmt: skip


def test_linux_devices(tmp_path: Path) -> None:
    make_camera(tmp_path, "video0", "Integrated Camera: Integrated C")
    make_camera(tmp_path, "video1", "Integrated Camera: Integrated C", index="1")  # its metadata node
    make_camera(tmp_path, "video10", "Cam Link 4K", index=None)
    make_camera(tmp_path, "video2", "USB Camera")
    found = list_devices(
        platform=Platform.LINUX, ffmpeg="ffmpeg", run=FakeTools(LINUX_TOOLS), env={"DISPLAY": ":0"}, sys_root=tmp_path
    )
    assert found[0] == Device(kind="screen", id=":0", name="X display :0", default=True, detail="1920x1080")
    assert [(device.id, device.name) for device in found if device.kind == "window"] == [
        ("62914563", "Inbox - Mozilla Thunderbird"),
        ("60817415", "Terminal"),
    ]
    assert ids(found, "camera") == ["/dev/video0", "/dev/video2", "/dev/video10"]
    assert next(device.name for device in found if device.kind == "camera") == "Integrated Camera: Integrated C"
    assert len(ids(found, "microphone")) == 2
    assert len(ids(found, "system_audio")) == 2
    assert defaults(found) == {
        "screen": ":0",
        "camera": "/dev/video0",
        "microphone": "bluez_input.AC_80_0A_12_34_56.0",
        "system_audio": "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor",
    }


def test_linux_without_a_display_has_no_screen_or_windows(tmp_path: Path) -> None:
    tools = FakeTools(LINUX_TOOLS)
    found = list_devices(platform=Platform.LINUX, ffmpeg="ffmpeg", run=tools, env={}, sys_root=tmp_path)
    assert {device.kind for device in found} == {"microphone", "system_audio"}
    assert not any(call[0] in ("ffmpeg", "xdotool") for call in tools.calls)


def test_linux_screen_under_wayland_says_only_x11_apps_show(tmp_path: Path) -> None:
    env = {"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}
    found = list_devices(
        platform=Platform.LINUX, ffmpeg="ffmpeg", run=FakeTools(LINUX_TOOLS), env=env, sys_root=tmp_path
    )
    assert "browser recorder" in found[0].name


def test_linux_with_every_tool_missing_finds_only_cameras(tmp_path: Path) -> None:
    make_camera(tmp_path, "video0", "USB Camera")
    found = list_devices(
        platform=Platform.LINUX, ffmpeg="ffmpeg", run=FakeTools({}), env={"DISPLAY": ":0"}, sys_root=tmp_path
    )
    assert found == [Device(kind="camera", id="/dev/video0", name="USB Camera", default=True)]


def test_linux_without_video4linux_has_no_cameras(tmp_path: Path) -> None:
    assert list_devices(platform=Platform.LINUX, ffmpeg="ffmpeg", run=FakeTools({}), env={}, sys_root=tmp_path) == []


# -- macOS and Windows -----------------------------------------------------------------------------------------------


def test_macos_asks_avfoundation() -> None:
    tools = FakeTools(
        {
            ("ffmpeg", "-hide_banner", "-f", "avfoundation", "-list_devices", "true", "-i", ""): (
                1,
                "",
                AVFOUNDATION_STDERR,
            )
        }
    )
    found = list_devices(platform=Platform.MACOS, ffmpeg="ffmpeg", run=tools)
    assert ids(found, "screen") == ["2", "3"]
    assert ids(found, "system_audio") == ["0"]


def test_windows_lists_the_desktop_and_dshow_devices() -> None:
    tools = FakeTools(
        {("ffmpeg", "-hide_banner", "-list_devices", "true", "-f", "dshow", "-i", "dummy"): (1, "", DSHOW_STDERR)}
    )
    found = list_devices(platform=Platform.WINDOWS, ffmpeg="ffmpeg", run=tools)
    assert found[0] == Device(kind="screen", id="desktop", name="The whole desktop (all monitors)", default=True)
    assert ids(found, "camera") == ["Integrated Camera", "AVerMedia Live Gamer"]


@pytest.mark.parametrize("platform", [Platform.MACOS, Platform.WINDOWS])
def test_a_missing_ffmpeg_means_fewer_devices_not_an_error(platform: Platform) -> None:
    found = list_devices(platform=platform, ffmpeg="no-such-ffmpeg-anywhere")
    assert ids(found, "camera") == []
    assert ids(found, "microphone") == []


# -- the default runner ----------------------------------------------------------------------------------------------


def test_default_runner_returns_code_and_output() -> None:
    run = devices._subprocess_runner({})
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    assert run([sys.executable, "-c", script]) == (3, "out\n", "err\n")


def test_default_runner_reports_missing_and_hung_programs(monkeypatch: pytest.MonkeyPatch) -> None:
    run = devices._subprocess_runner({})
    assert run(["no-such-program-anywhere"]) == (127, "", "not found")
    monkeypatch.setattr(devices, "RUN_TIMEOUT_SECONDS", 0.2)
    assert run([sys.executable, "-c", "import time; time.sleep(10)"])[0] == 124
