"""The capture command, read without running ffmpeg: what each platform records, and what it refuses and why."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from framecast.agent.capture import (
    CaptureSpec,
    Encoding,
    Platform,
    Region,
    Unsupported,
    capture_argv,
    current_platform,
)

OUT = Path("spool") / "run-1.mp4"
LINUX, MACOS, WINDOWS = Platform.LINUX, Platform.MACOS, Platform.WINDOWS
FRAGMENTED = "+frag_keyframe+empty_moov+default_base_moof"


def argv(spec: CaptureSpec, platform: Platform = LINUX, encoding: Encoding | None = None) -> list[str]:
    if encoding is None:
        return capture_argv(spec, output=OUT, platform=platform, ffmpeg="ffmpeg")
    return capture_argv(spec, output=OUT, platform=platform, ffmpeg="ffmpeg", encoding=encoding)


def has_run(command: list[str], *items: str) -> bool:
    """True when `items` appear in `command` one after another."""
    n = len(items)
    return any(command[i : i + n] == list(items) for i in range(len(command) - n + 1))


def value(command: list[str], option: str) -> str:
    return command[command.index(option) + 1]


def inputs(command: list[str]) -> list[list[str]]:
    """The options of each input, from just after the previous input up to and including its -i target."""
    found, start = [], command.index("-y") + 1
    for i, item in enumerate(command):
        if item == "-i":
            found.append(command[start : i + 2])
            start = i + 2
    return found


def graph(command: list[str]) -> str:
    return value(command, "-filter_complex")


# -- every command ---------------------------------------------------------------------------------------------------

EVERY_PLATFORM_SPECS = [
    (LINUX, CaptureSpec(screen=True, display=":0", camera="/dev/video0", mic="default", system_audio="x.monitor")),
    (MACOS, CaptureSpec(screen=True, camera="0", mic="0", system_audio="BlackHole 2ch")),
    (WINDOWS, CaptureSpec(screen=True, camera="Integrated Camera", mic="Microphone", system_audio="Stereo Mix")),
]


@pytest.mark.parametrize(("platform", "spec"), EVERY_PLATFORM_SPECS)
def test_one_quiet_process_that_q_on_stdin_can_stop(platform: Platform, spec: CaptureSpec) -> None:
    command = argv(spec, platform)
    assert command[:6] == ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-y"]
    assert "-nostdin" not in command
    assert command[-1] == f"file:{OUT}"


@pytest.mark.parametrize(("platform", "spec"), EVERY_PLATFORM_SPECS)
def test_every_device_gets_a_deep_queue_before_its_format(platform: Platform, spec: CaptureSpec) -> None:
    for options in inputs(argv(spec, platform)):
        assert options[:4] == ["-thread_queue_size", "1024", "-f", options[3]]


@pytest.mark.parametrize(("platform", "spec"), EVERY_PLATFORM_SPECS)
def test_output_is_one_growing_fragmented_mp4(platform: Platform, spec: CaptureSpec) -> None:
    command = argv(spec, platform)
    assert has_run(command, "-f", "mp4", "-movflags", FRAGMENTED, "-frag_duration", "2000000", "-flush_packets", "1")
    assert command.count("-map") == 2
    assert has_run(command, "-map", "[v]", "-map", "[a]")


def test_video_is_h264_with_a_keyframe_exactly_every_interval_at_a_constant_rate() -> None:
    command = argv(CaptureSpec(screen=True, display=":0", fps=30))
    assert has_run(command, "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "high")
    assert has_run(command, "-pix_fmt", "yuv420p", "-crf", "23", "-maxrate", "8000000", "-bufsize", "16000000")
    assert has_run(command, "-g", "60", "-keyint_min", "60", "-sc_threshold", "0")
    assert has_run(command, "-force_key_frames", "expr:gte(t,n_forced*2)", "-fps_mode", "cfr", "-r", "30")


def test_encoding_settings_reach_the_command() -> None:
    encoding = Encoding(
        preset="ultrafast", crf=28, max_video_bitrate=4_000_000, keyframe_seconds=1.5, audio_bitrate=96_000,
        audio_rate=44_100, threads=4,
    )  # fmt: skip
    command = argv(CaptureSpec(screen=True, display=":0", mic="default", fps=25), encoding=encoding)
    assert has_run(command, "-preset", "ultrafast")
    assert has_run(command, "-crf", "28")
    assert has_run(command, "-maxrate", "4000000", "-bufsize", "8000000")
    assert has_run(command, "-g", "38", "-keyint_min", "38")  # 25 fps x 1.5 s
    assert value(command, "-force_key_frames") == "expr:gte(t,n_forced*1.5)"
    assert value(command, "-frag_duration") == "1500000"
    assert has_run(command, "-c:a", "aac", "-b:a", "96000", "-ar", "44100")
    assert has_run(command, "-threads", "4", "-f", "mp4")


def test_threads_are_left_to_ffmpeg_by_default() -> None:
    assert "-threads" not in argv(CaptureSpec(screen=True, display=":0"))


@pytest.mark.parametrize(
    "encoding",
    [
        {"crf": 52},
        {"keyframe_seconds": 0},
        {"max_video_bitrate": 0},
        {"audio_rate": -1},
        {"threads": -1},
    ],
)
def test_nonsense_encodings_are_refused(encoding: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        Encoding(**encoding)  # type: ignore[arg-type]


def test_output_names_are_never_read_as_options_or_protocols() -> None:
    command = capture_argv(CaptureSpec(mic="default"), output=Path("-odd:name.mp4"), platform=LINUX)
    assert command[-1] == "file:-odd:name.mp4"


# -- Linux -----------------------------------------------------------------------------------------------------------


def test_linux_screen_is_x11grab_of_the_display_rounded_to_even_sides() -> None:
    command = argv(CaptureSpec(screen=True, display=":0.0"))
    assert inputs(command) == [
        ["-thread_queue_size", "1024", "-f", "x11grab", "-framerate", "30", "-draw_mouse", "1", "-i", ":0.0"]
    ]
    assert graph(command) == "[0:v:0]scale=trunc(iw/2)*2:trunc(ih/2)*2[v]"
    assert value(command, "-map") == "[v]"
    assert "-c:a" not in command


def test_linux_region_is_a_size_and_an_offset_on_the_display() -> None:
    command = argv(CaptureSpec(screen=True, display=":1", region=Region.parse("1280x720+10+20"), fps=15))
    assert has_run(command, "-f", "x11grab", "-framerate", "15", "-video_size", "1280x720", "-draw_mouse", "1")
    assert has_run(command, "-i", ":1+10,20")
    assert graph(command) == "[0:v:0]null[v]"  # the region's sides are already even


@pytest.mark.parametrize(("window", "decimal"), [("0x3a00007", "60817415"), ("60817415", "60817415")])
def test_linux_window_is_an_x_window_id(window: str, decimal: str) -> None:
    command = argv(CaptureSpec(window=window, display=":0"))
    assert has_run(command, "-window_id", decimal, "-draw_mouse", "1", "-i", ":0")


@pytest.mark.parametrize("window", ["Firefox", "0xZZ", "0", "-5"])
def test_linux_window_must_be_an_id(window: str) -> None:
    with pytest.raises(ValueError, match="X window id"):
        argv(CaptureSpec(window=window, display=":0"))


def test_linux_screen_needs_a_display_and_says_wayland_cannot_be_captured() -> None:
    with pytest.raises(ValueError, match=r"DISPLAY.*Wayland.*browser recorder"):
        argv(CaptureSpec(screen=True))


def test_linux_camera_is_v4l2_at_the_frame_rate() -> None:
    command = argv(CaptureSpec(camera="/dev/video2", fps=24))
    assert inputs(command) == [
        ["-thread_queue_size", "1024", "-f", "v4l2", "-framerate", "24", "-timestamps", "abs", "-i", "/dev/video2"]
    ]
    assert graph(command) == "[0:v:0]scale=trunc(iw/2)*2:trunc(ih/2)*2[v]"
    assert has_run(command, "-r", "24")


def test_linux_microphone_is_a_pulse_source_and_alsa_when_asked() -> None:
    assert inputs(argv(CaptureSpec(mic="default")))[0][2:] == ["-f", "pulse", "-i", "default"]
    assert inputs(argv(CaptureSpec(mic="alsa:hw:0")))[0][2:] == ["-f", "alsa", "-i", "hw:0"]


def test_linux_system_audio_is_a_monitor_source_mixed_with_the_microphone() -> None:
    command = argv(CaptureSpec(mic="default", system_audio="alsa_output.pci.analog-stereo.monitor"))
    assert [options[2:] for options in inputs(command)] == [
        ["-f", "pulse", "-i", "default"],
        ["-f", "pulse", "-i", "alsa_output.pci.analog-stereo.monitor"],
    ]
    assert graph(command) == (
        "[0:a:0]aresample=async=1:first_pts=0[a0];[1:a:0]aresample=async=1:first_pts=0[a1];"
        "[a0][a1]amix=inputs=2:duration=longest:normalize=0[a]"
    )


def test_linux_system_audio_must_name_its_monitor() -> None:
    with pytest.raises(ValueError, match="monitor source") as refused:
        argv(CaptureSpec(screen=True, display=":0", system_audio=""))
    assert not isinstance(refused.value, Unsupported)


def test_audio_only_has_no_video_and_fragments_by_duration() -> None:
    command = argv(CaptureSpec(mic="default"))
    assert graph(command) == "[0:a:0]aresample=async=1:first_pts=0[a]"
    assert command.count("-map") == 1
    assert value(command, "-map") == "[a]"
    assert not {"-c:v", "-r", "-g", "-pix_fmt", "-fps_mode"} & set(command)
    # frag_keyframe would cut at every audio packet: each one is a keyframe.
    assert has_run(command, "-movflags", "+empty_moov+default_base_moof", "-frag_duration", "2000000")


def test_screen_and_camera_put_the_camera_in_a_bubble_bottom_right() -> None:
    command = argv(CaptureSpec(screen=True, display=":0", camera="/dev/video0", mic="default"))
    assert graph(command).split(";") == [
        "[0:v:0]scale=trunc(iw/2)*2:trunc(ih/2)*2[screen]",
        # A quarter of the screen's width, the camera's own aspect, even sides.
        "[1:v:0][screen]scale2ref=w='trunc(iw/8)*2':h='trunc(ow/mdar/2)*2'[bubble][base]",
        "[base][bubble]overlay=x='main_w-overlay_w-main_w/40':y='main_h-overlay_h-main_w/40'[v]",
        "[2:a:0]aresample=async=1:first_pts=0[a]",
    ]


# -- macOS -----------------------------------------------------------------------------------------------------------


def test_macos_screen_carries_the_microphone_on_one_avfoundation_input() -> None:
    command = argv(CaptureSpec(screen=True, display="1", mic="0"), MACOS)
    assert inputs(command) == [
        ["-thread_queue_size", "1024", "-f", "avfoundation", "-framerate", "30", "-capture_cursor", "1", "-i", "1:0"]
    ]
    assert graph(command).split(";") == [
        "[0:v:0]scale=trunc(iw/2)*2:trunc(ih/2)*2[v]",
        "[0:a:0]aresample=async=1:first_pts=0[a]",
    ]


def test_macos_screen_defaults_to_the_main_screen_without_audio() -> None:
    assert inputs(argv(CaptureSpec(screen=True), MACOS))[0][-1] == "Capture screen 0:none"


def test_macos_region_is_a_crop() -> None:
    command = argv(CaptureSpec(screen=True, display="1", region=Region.parse("800x600+100+50")), MACOS)
    assert graph(command) == "[0:v:0]crop=800:600:100:50[v]"


def test_macos_camera_takes_the_microphone_when_there_is_no_screen() -> None:
    command = argv(CaptureSpec(camera="FaceTime HD Camera", mic="MacBook Pro Microphone"), MACOS)
    assert inputs(command)[0][-1] == "FaceTime HD Camera:MacBook Pro Microphone"
    assert "-capture_cursor" not in command


def test_macos_screen_camera_and_loopback_audio() -> None:
    command = argv(CaptureSpec(screen=True, display="2", camera="0", mic="0", system_audio="BlackHole 2ch"), MACOS)
    assert [options[-1] for options in inputs(command)] == ["2:0", "0:none", ":BlackHole 2ch"]
    assert "amix=inputs=2" in graph(command)
    assert "[0:a:0]" in graph(command)
    assert "[2:a:0]" in graph(command)


def test_macos_microphone_alone_is_an_audio_only_input() -> None:
    command = argv(CaptureSpec(mic="0"), MACOS)
    assert inputs(command) == [["-thread_queue_size", "1024", "-f", "avfoundation", "-i", ":0"]]
    assert "-c:v" not in command


def test_macos_cannot_capture_one_window_and_says_to_use_a_region() -> None:
    with pytest.raises(Unsupported, match="region"):
        argv(CaptureSpec(window="Safari"), MACOS)


def test_macos_system_audio_needs_a_loopback_device() -> None:
    with pytest.raises(Unsupported, match="BlackHole"):
        argv(CaptureSpec(screen=True, system_audio=""), MACOS)


def test_macos_device_names_with_a_colon_are_refused() -> None:
    with pytest.raises(ValueError, match="index"):
        argv(CaptureSpec(mic="Headset: left"), MACOS)


# -- Windows ---------------------------------------------------------------------------------------------------------


def test_windows_screen_is_gdigrab_of_the_desktop() -> None:
    command = argv(CaptureSpec(screen=True, display="1"), WINDOWS)
    assert inputs(command) == [
        ["-thread_queue_size", "1024", "-f", "gdigrab", "-framerate", "30", "-draw_mouse", "1", "-i", "desktop"]
    ]


def test_windows_region_is_an_offset_and_a_size() -> None:
    command = argv(CaptureSpec(screen=True, region=Region(width=640, height=480, y=200)), WINDOWS)
    assert has_run(command, "-offset_x", "0", "-offset_y", "200", "-video_size", "640x480", "-draw_mouse", "1")
    assert graph(command) == "[0:v:0]null[v]"


def test_windows_window_is_found_by_its_title() -> None:
    command = argv(CaptureSpec(window="Untitled - Notepad"), WINDOWS)
    assert has_run(command, "-i", "title=Untitled - Notepad")


def test_windows_camera_and_microphones_are_dshow_devices() -> None:
    spec = CaptureSpec(camera="Integrated Camera", mic="Microphone (Realtek Audio)", system_audio="Stereo Mix")
    command = argv(spec, WINDOWS)
    assert [options[2:] for options in inputs(command)] == [
        ["-f", "dshow", "-i", "video=Integrated Camera"],
        ["-f", "dshow", "-i", "audio=Microphone (Realtek Audio)"],
        ["-f", "dshow", "-i", "audio=Stereo Mix"],
    ]


def test_windows_system_audio_needs_a_loopback_device() -> None:
    with pytest.raises(Unsupported, match=r"WASAPI.*Stereo Mix"):
        argv(CaptureSpec(screen=True, system_audio=""), WINDOWS)


# -- a file replayed as a device -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("speed", "readrate"), [(0, None), (1.0, "1"), (4, "4"), (2.5, "2.5")])
def test_source_is_read_at_its_speed(speed: float, readrate: str | None) -> None:
    command = argv(CaptureSpec(source=Path("demo.mp4"), source_speed=speed))
    assert inputs(command) == [[*(["-readrate", readrate] if readrate else []), "-i", "file:demo.mp4"]]


def test_source_resumes_at_its_offset_and_keeps_what_streams_it_has() -> None:
    command = argv(CaptureSpec(source=Path("demo.mp4"), source_offset_s=12.5, source_speed=0))
    assert inputs(command) == [["-ss", "12.5", "-i", "file:demo.mp4"]]
    assert has_run(command, "-map", "0:v:0?", "-map", "0:a:0?")
    assert has_run(command, "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", "-af", "aresample=async=1:first_pts=0")
    assert "-filter_complex" not in command
    assert "-thread_queue_size" not in command
    assert has_run(command, "-movflags", FRAGMENTED)


def test_source_replaces_the_devices() -> None:
    with pytest.raises(ValueError, match="not both"):
        argv(CaptureSpec(source=Path("demo.mp4"), mic="default"))


@pytest.mark.parametrize(("speed", "offset"), [(-1.0, 0.0), (float("nan"), 0.0), (1.0, -3.0)])
def test_source_speed_and_offset_cannot_be_negative(speed: float, offset: float) -> None:
    with pytest.raises(ValueError, match="source"):
        argv(CaptureSpec(source=Path("demo.mp4"), source_speed=speed, source_offset_s=offset))


# -- refusals --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", list(Platform))
def test_nothing_to_capture(platform: Platform) -> None:
    with pytest.raises(ValueError, match="nothing to capture"):
        argv(CaptureSpec(display=":0"), platform)


@pytest.mark.parametrize("fps", [0, 121, -30])
def test_frame_rate_outside_1_to_120(fps: int) -> None:
    with pytest.raises(ValueError, match="from 1 to 120"):
        argv(CaptureSpec(screen=True, display=":0", fps=fps))


@pytest.mark.parametrize("fps", [1, 120])
def test_frame_rate_limits_are_allowed(fps: int) -> None:
    assert has_run(argv(CaptureSpec(screen=True, display=":0", fps=fps)), "-r", str(fps))


@pytest.mark.parametrize("platform", list(Platform))
def test_a_window_is_captured_whole_not_cut_to_a_region(platform: Platform) -> None:
    spec = CaptureSpec(screen=True, window="0x1", display=":0", region=Region(width=64, height=64))
    with pytest.raises(ValueError, match="not both"):
        argv(spec, platform)


def test_a_region_needs_the_screen() -> None:
    with pytest.raises(ValueError, match="screen as well"):
        argv(CaptureSpec(camera="/dev/video0", region=Region(width=64, height=64)))


@pytest.mark.parametrize("field", ["camera", "mic", "window"])
def test_blank_device_names_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match="blank"):
        argv(CaptureSpec(screen=True, display=":0", **{field: " "}))  # type: ignore[arg-type]


def test_unsupported_is_a_value_error() -> None:
    assert issubclass(Unsupported, ValueError)


# -- regions, recording types, platforms -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("1280x720+10+20", Region(width=1280, height=720, x=10, y=20)),
        ("1280x720", Region(width=1280, height=720)),
        (" 16x16+0+0 ", Region(width=16, height=16)),
    ],
)
def test_region_parse(text: str, region: Region) -> None:
    assert Region.parse(text) == region


@pytest.mark.parametrize("text", ["1280", "1280x", "1280x720+10", "1280x720-10-20", "x720", "big", "1280*720"])
def test_region_parse_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"WIDTHxHEIGHT\+X\+Y"):
        Region.parse(text)


@pytest.mark.parametrize("text", ["1281x720", "1280x721", "14x720", "1280x8"])
def test_region_sides_must_be_even_and_at_least_16(text: str) -> None:
    with pytest.raises(ValueError, match="even and at least 16"):
        Region.parse(text)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        (CaptureSpec(screen=True), "screen"),
        (CaptureSpec(window="0x1", mic="default"), "screen"),
        (CaptureSpec(source=Path("demo.mp4")), "screen"),
        (CaptureSpec(camera="/dev/video0", mic="default"), "camera"),
        (CaptureSpec(screen=True, camera="/dev/video0"), "screen_camera"),
        (CaptureSpec(mic="default", system_audio="x.monitor"), "audio"),
    ],
)
def test_recording_type(spec: CaptureSpec, kind: str) -> None:
    assert spec.recording_type == kind


@pytest.mark.parametrize(
    ("sys_platform", "platform"),
    [("linux", LINUX), ("darwin", MACOS), ("win32", WINDOWS), ("freebsd14", LINUX)],
)
def test_current_platform(monkeypatch: pytest.MonkeyPatch, sys_platform: str, platform: Platform) -> None:
    monkeypatch.setattr(sys, "platform", sys_platform)
    assert current_platform() is platform


def test_linux_devices_keep_their_offsets_from_the_start_of_the_run() -> None:
    """A microphone that opens after the screen starts later in the file, not at 0 beside the first frame."""
    command = capture_argv(
        CaptureSpec(screen=True, display=":0", mic="default"),
        output=Path("run.mp4"),
        platform=Platform.LINUX,
        epoch=1700000000.25,
    )
    assert "-copyts" in command
    chains = graph(command).split(";")
    assert chains[0] == "[0:v:0]setpts=PTS-1700000000.250000/TB[screen_t]"
    assert chains[1] == "[1:a:0]asetpts=PTS-1700000000.250000/TB[audio_t0]"
    assert "[screen_t]scale=trunc(iw/2)*2:trunc(ih/2)*2[v]" in chains
    assert "[audio_t0]aresample=async=1:first_pts=0[a]" in chains


def test_other_platforms_clocks_are_not_the_wall_clock_so_nothing_is_shifted() -> None:
    command = capture_argv(
        CaptureSpec(screen=True, mic="Microphone"), output=Path("run.mp4"), platform=Platform.WINDOWS, epoch=1.0
    )
    assert "-copyts" not in command
    assert "setpts" not in graph(command)
