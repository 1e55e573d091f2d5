"""Build the one ffmpeg command that records a run: every requested device in, one growing fragmented MP4 out.

Pure functions: nothing here runs ffmpeg or looks at devices (`devices.py` finds what exists). Needs ffmpeg 5.1 or
later (`-readrate`, `-fps_mode`, x11grab `-window_id`).

- Linux: X11 only. x11grab for the screen, a region or one window; v4l2 cameras; PulseAudio sources for the
  microphone and, through a sink's monitor source, for system audio; ALSA as "alsa:hw:0" for an ffmpeg built with it
  (the PyPI ffmpeg has pulse, not alsa). Wayland cannot be captured (x11grab under XWayland sees only X11 apps): a
  Wayland session needs the browser recorder.
- macOS: avfoundation for screen, camera and microphone; a region is a crop. No single-window capture, and system
  audio only through a loopback device the user installed (BlackHole).
- Windows: gdigrab for the desktop, a region or a window by title; dshow for camera and microphone. System audio only
  through a loopback dshow device ("Stereo Mix", virtual-audio-capturer): ffmpeg has no WASAPI loopback input.

The output is append-only (ftyp, an empty moov, then a moof/mdat pair per keyframe interval), so the uploader can send
it while ffmpeg writes, and a run stopped with `q` on ffmpeg's stdin still ends on a whole, playable fragment.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

WAYLAND = "a Wayland session needs the browser recorder (x11grab under XWayland sees only X11 apps)"
# Live devices deliver faster than the default 8-packet queue drains while the encoder warms up.
DEVICE_QUEUE = ["-thread_queue_size", "1024"]
EVEN_SIZE = "scale=trunc(iw/2)*2:trunc(ih/2)*2"
# Devices drop samples under load; filling the gaps keeps the audio continuous and on the video's clock.
AUDIO_RESYNC = "aresample=async=1:first_pts=0"
# Loom's bubble: the camera at a quarter of the screen's width, bottom right. scale2ref rather than scale's `rw`,
# which needs ffmpeg 7.1; in scale2ref `iw` is the reference (the screen) and `mdar` the camera's aspect.
BUBBLE_SCALE = "scale2ref=w='trunc(iw/8)*2':h='trunc(ow/mdar/2)*2'"
BUBBLE_PLACE = "overlay=x='main_w-overlay_w-main_w/40':y='main_h-overlay_h-main_w/40'"
MAC_MAIN_SCREEN = "Capture screen 0"


class Platform(StrEnum):
    LINUX = "linux"
    MACOS = "macos"
    WINDOWS = "windows"


def current_platform() -> Platform:
    """The platform this process runs on; anything not macOS or Windows is taken to run X11 like Linux."""
    if sys.platform == "darwin":
        return Platform.MACOS
    if sys.platform in ("win32", "cygwin"):
        return Platform.WINDOWS
    return Platform.LINUX


class Unsupported(ValueError):
    """What was asked cannot be captured on this platform; the message says so plainly and what to do instead."""


_REGION = re.compile(r"(\d+)x(\d+)(?:\+(\d+)\+(\d+))?")


@dataclass(frozen=True, kw_only=True)
class Region:
    """A rectangle of the screen in pixels, from its top-left corner; sides even and at least 16."""

    width: int
    height: int
    x: int = 0
    y: int = 0

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise ValueError(
                f"region {self.width}x{self.height}: width and height must be even and at least 16 pixels "
                "(H.264 video needs even sides)"
            )
        if self.x < 0 or self.y < 0:
            raise ValueError(f"region offset +{self.x}+{self.y}: the offset cannot be negative")

    @classmethod
    def parse(cls, text: str) -> Region:
        """Read "1280x720+10+20" (size and offset) or "1280x720" (at the top-left corner)."""
        match = _REGION.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"region {text!r}: write it as WIDTHxHEIGHT+X+Y, e.g. 1280x720+0+0, or WIDTHxHEIGHT")
        width, height, x, y = match.groups()
        return cls(width=int(width), height=int(height), x=int(x or 0), y=int(y or 0))

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True, kw_only=True)
class CaptureSpec:
    """What one run records: devices (by the ids `devices.list_devices` gives), or a file replayed as if live."""

    screen: bool = False
    display: str | None = None  # the X display (":0.0"), an avfoundation screen ("1"); gdigrab takes the desktop
    window: str | None = None  # an X window id (decimal or 0x hex) or a Windows window title; not on macOS
    region: Region | None = None
    camera: str | None = None  # /dev/videoN, an avfoundation index or name, a dshow name
    mic: str | None = None  # a PulseAudio source ("default") or "alsa:hw:0", an avfoundation index or name, dshow name
    system_audio: str | None = None  # a PulseAudio monitor source, else a loopback device (BlackHole, Stereo Mix)
    fps: int = 30
    source: Path | None = None  # a file replayed instead of devices
    source_offset_s: float = 0.0  # where in the source this run starts: a resumed run continues the file
    source_speed: float = 1.0  # 1.0 = real time, like a device; 0 = as fast as possible

    @property
    def recording_type(self) -> str:
        """ "screen", "camera", "screen_camera" or "audio"; a window and a source file count as the screen."""
        screen = self.screen or self.window is not None or self.source is not None
        if screen and self.camera is not None:
            return "screen_camera"
        if screen:
            return "screen"
        return "camera" if self.camera is not None else "audio"


@dataclass(frozen=True, kw_only=True)
class Encoding:
    """How a run is encoded: bitrates in bits per second, `threads` 0 leaves the count to ffmpeg."""

    preset: str = "veryfast"
    crf: int = 23
    max_video_bitrate: int = 8_000_000
    keyframe_seconds: float = 2.0
    audio_bitrate: int = 128_000
    audio_rate: int = 48_000
    threads: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf {self.crf}: x264 takes 0 (lossless) to 51")
        if not (math.isfinite(self.keyframe_seconds) and self.keyframe_seconds > 0):
            raise ValueError(f"keyframe interval {self.keyframe_seconds}: it must be a positive number of seconds")
        if min(self.max_video_bitrate, self.audio_bitrate, self.audio_rate) <= 0 or self.threads < 0:
            raise ValueError("bitrates and the audio rate must be positive, and threads not negative")


DEFAULT_ENCODING = Encoding()


def capture_argv(
    spec: CaptureSpec,
    *,
    output: Path,
    platform: Platform,
    ffmpeg: str = "ffmpeg",
    encoding: Encoding = DEFAULT_ENCODING,
    epoch: float | None = None,
) -> list[str]:
    """The ffmpeg command that captures `spec` into one fragmented MP4 at `output`, growing as it records.

    `epoch` is the wall-clock time (seconds since 1970) the run starts at. On Linux every device stamps its frames
    and samples with the wall clock; ffmpeg would move each device's first timestamp to 0, so a microphone that
    opens a second after the screen would play a second early. With `epoch`, timestamps are kept (-copyts) and
    counted from it: a late device starts late in the file, and the audio's head is filled with silence.

    Raises ValueError for a spec that makes no sense anywhere and Unsupported for what `platform` cannot capture.
    """
    _check(spec)
    # -nostdin is left out on purpose: the recorder stops a run by writing `q` to ffmpeg's stdin.
    head = [ffmpeg, "-hide_banner", "-nostats", "-loglevel", "error", "-y"]
    if spec.source is not None:
        # The `?` keeps a source without audio (or without video) from failing the run.
        picks = ["-map", "0:v:0?", "-map", "0:a:0?", "-vf", EVEN_SIZE, "-af", AUDIO_RESYNC]
        video, audio = _video_codec(spec.fps, encoding), _audio_codec(encoding)
        return [*head, *_source_input(spec), *picks, *video, *audio, *_output(output, encoding, video=True)]
    inputs = _Inputs()
    {Platform.LINUX: _linux, Platform.MACOS: _macos, Platform.WINDOWS: _windows}[platform](spec, inputs)
    shifts: list[str] = []
    if epoch is not None and platform is Platform.LINUX:
        head.append("-copyts")
        shifts = _shift_to(epoch, inputs)
    graph, maps = _graph(inputs)
    graph = ";".join([*shifts, graph])
    has_video = inputs.screen is not None or inputs.camera is not None
    video = _video_codec(spec.fps, encoding) if has_video else []
    audio = _audio_codec(encoding) if inputs.audio else []
    outputs = _output(output, encoding, video=has_video)
    return [*head, *inputs.argv, "-filter_complex", graph, *maps, *video, *audio, *outputs]


def _check(spec: CaptureSpec) -> None:
    devices = (spec.window, spec.camera, spec.mic, spec.system_audio)
    wants_devices = spec.screen or any(device is not None for device in devices)
    if spec.source is None and not wants_devices:
        raise ValueError(
            "nothing to capture: ask for the screen, a window, a camera, a microphone, system audio or a source file"
        )
    if spec.source is not None and (wants_devices or spec.region is not None):
        raise ValueError("a source file stands in for the capture devices: ask for the file or for devices, not both")
    if not 1 <= spec.fps <= 120:
        raise ValueError(f"{spec.fps} frames per second: choose from 1 to 120 (30 suits screen recordings)")
    if spec.region is not None and spec.window is not None:
        raise ValueError("a window is captured whole: ask for the window or for a region of the screen, not both")
    if spec.region is not None and not spec.screen:
        raise ValueError("a region is part of the screen: ask for the screen as well")
    if not (math.isfinite(spec.source_speed) and spec.source_speed >= 0):
        raise ValueError(f"source speed {spec.source_speed}: use 1 for real time, 0 for as fast as possible")
    if not (math.isfinite(spec.source_offset_s) and spec.source_offset_s >= 0):
        raise ValueError(f"source offset {spec.source_offset_s}: it must be a number of seconds from the start")
    for what, value in (("window", spec.window), ("camera", spec.camera), ("microphone", spec.mic)):
        if value is not None and not value.strip():
            raise ValueError(f"the {what} is blank: name one from the device list")


@dataclass
class _Inputs:
    """The inputs being assembled, and which stream of which input plays each part (e.g. "1:v:0")."""

    argv: list[str] = field(default_factory=list)
    count: int = 0
    screen: str | None = None
    screen_filters: list[str] = field(default_factory=list)
    screen_even: bool = False  # its size is known to be even (a region), so no rounding scale is needed
    camera: str | None = None
    audio: list[str] = field(default_factory=list)

    def add(self, argv: list[str]) -> int:
        self.argv += [*DEVICE_QUEUE, *argv]
        self.count += 1
        return self.count - 1


def _linux(spec: CaptureSpec, inputs: _Inputs) -> None:
    if spec.screen or spec.window is not None:
        if not spec.display:
            raise ValueError(f"no X display to capture: pass the session's DISPLAY, such as ':0.0' ({WAYLAND})")
        options = ["-f", "x11grab", "-framerate", str(spec.fps)]
        target = spec.display
        if spec.region is not None:
            options += ["-video_size", spec.region.size]
            target += f"+{spec.region.x},{spec.region.y}"
        if spec.window is not None:
            options += ["-window_id", _x11_window(spec.window)]
        index = inputs.add([*options, "-draw_mouse", "1", "-i", target])
        inputs.screen, inputs.screen_even = f"{index}:v:0", spec.region is not None
    if spec.camera is not None:
        # v4l2 stamps frames with the monotonic clock unless asked for the wall clock the other devices use.
        index = inputs.add(["-f", "v4l2", "-framerate", str(spec.fps), "-timestamps", "abs", "-i", spec.camera])
        inputs.camera = f"{index}:v:0"
    if spec.mic is not None:
        inputs.audio.append(f"{inputs.add(_linux_audio(spec.mic))}:a:0")
    if spec.system_audio is not None:
        if not spec.system_audio.strip():
            raise ValueError(
                "system audio on Linux is a PulseAudio monitor source: pass its name, such as "
                "'alsa_output.pci-0000_00_1f.3.analog-stereo.monitor' (the device list shows them)"
            )
        inputs.audio.append(f"{inputs.add(_linux_audio(spec.system_audio))}:a:0")


def _linux_audio(name: str) -> list[str]:
    if name.startswith("alsa:"):
        return ["-f", "alsa", "-i", name.removeprefix("alsa:")]
    return ["-f", "pulse", "-i", name]


def _x11_window(text: str) -> str:
    """The X window id in decimal, from decimal or 0x hex (as xdotool and xwininfo print it)."""
    try:
        value = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"window {text!r}: on Linux a window is an X window id, such as 0x3a00007 ({WAYLAND})")
    return str(value)


def _macos(spec: CaptureSpec, inputs: _Inputs) -> None:
    if spec.window is not None:
        raise Unsupported(
            "ffmpeg cannot capture a single window on macOS: record a region of the screen around it instead"
        )
    if spec.system_audio is not None and not spec.system_audio.strip():
        raise Unsupported(
            "macOS has no system-audio input of its own: install a loopback device such as BlackHole, send the "
            "output to it, and pass its name as the system audio"
        )
    for name in (spec.display, spec.camera, spec.mic, spec.system_audio):
        if name is not None and ":" in name:
            raise ValueError(f"device {name!r}: avfoundation cannot open a name with ':' in it; pass its index")
    mic = spec.mic  # rides along with the first video device, so both share that device's clock
    if spec.screen:
        screen = spec.display or MAC_MAIN_SCREEN
        options = ["-f", "avfoundation", "-framerate", str(spec.fps), "-capture_cursor", "1"]
        index = inputs.add([*options, "-i", f"{screen}:{mic if mic is not None else 'none'}"])
        inputs.screen = f"{index}:v:0"
        if spec.region is not None:
            region = spec.region
            inputs.screen_filters = [f"crop={region.width}:{region.height}:{region.x}:{region.y}"]
            inputs.screen_even = True
        if mic is not None:
            inputs.audio.append(f"{index}:a:0")
            mic = None
    if spec.camera is not None:
        options = ["-f", "avfoundation", "-framerate", str(spec.fps)]
        index = inputs.add([*options, "-i", f"{spec.camera}:{mic if mic is not None else 'none'}"])
        inputs.camera = f"{index}:v:0"
        if mic is not None:
            inputs.audio.append(f"{index}:a:0")
            mic = None
    for audio in (mic, spec.system_audio):
        if audio is not None:
            inputs.audio.append(f"{inputs.add(['-f', 'avfoundation', '-i', f':{audio}'])}:a:0")


def _windows(spec: CaptureSpec, inputs: _Inputs) -> None:
    if spec.system_audio is not None and not spec.system_audio.strip():
        raise Unsupported(
            "ffmpeg has no WASAPI loopback input on Windows: enable a loopback recording device such as "
            "'Stereo Mix' (or install virtual-audio-capturer) and pass its name as the system audio"
        )
    if spec.screen or spec.window is not None:
        options = ["-f", "gdigrab", "-framerate", str(spec.fps)]
        if spec.region is not None:
            region = spec.region
            options += ["-offset_x", str(region.x), "-offset_y", str(region.y), "-video_size", region.size]
        target = f"title={spec.window}" if spec.window is not None else "desktop"
        index = inputs.add([*options, "-draw_mouse", "1", "-i", target])
        inputs.screen, inputs.screen_even = f"{index}:v:0", spec.region is not None
    if spec.camera is not None:
        inputs.camera = f"{inputs.add(['-f', 'dshow', '-i', f'video={spec.camera}'])}:v:0"
    for audio in (spec.mic, spec.system_audio):
        if audio is not None:
            inputs.audio.append(f"{inputs.add(['-f', 'dshow', '-i', f'audio={audio}'])}:a:0")


def _shift_to(epoch: float, inputs: _Inputs) -> list[str]:
    """Chains that count every device's timestamps from `epoch`; the inputs then name those chains' outputs."""
    chains: list[str] = []
    origin = f"{epoch:.6f}"
    if inputs.screen is not None:
        chains.append(f"[{inputs.screen}]setpts=PTS-{origin}/TB[screen_t]")
        inputs.screen = "screen_t"
    if inputs.camera is not None:
        chains.append(f"[{inputs.camera}]setpts=PTS-{origin}/TB[camera_t]")
        inputs.camera = "camera_t"
    for n, stream in enumerate(inputs.audio):
        chains.append(f"[{stream}]asetpts=PTS-{origin}/TB[audio_t{n}]")
        inputs.audio[n] = f"audio_t{n}"
    return chains


def _graph(inputs: _Inputs) -> tuple[str, list[str]]:
    """The filter graph, ending in [v] and/or [a], and the -map options that pick those."""
    chains: list[str] = []
    maps: list[str] = []
    if inputs.screen is not None:
        filters = ",".join([*inputs.screen_filters, *([] if inputs.screen_even else [EVEN_SIZE])]) or "null"
        if inputs.camera is None:
            chains.append(f"[{inputs.screen}]{filters}[v]")
        else:
            chains += [
                f"[{inputs.screen}]{filters}[screen]",
                f"[{inputs.camera}][screen]{BUBBLE_SCALE}[bubble][base]",
                f"[base][bubble]{BUBBLE_PLACE}[v]",
            ]
    elif inputs.camera is not None:
        chains.append(f"[{inputs.camera}]{EVEN_SIZE}[v]")
    if chains:
        maps += ["-map", "[v]"]
    if len(inputs.audio) == 1:
        chains.append(f"[{inputs.audio[0]}]{AUDIO_RESYNC}[a]")
    elif inputs.audio:
        # Each device is resynced before mixing: amix counts samples and would shift everything after a gap.
        chains += [f"[{stream}]{AUDIO_RESYNC}[a{n}]" for n, stream in enumerate(inputs.audio)]
        labels = "".join(f"[a{n}]" for n in range(len(inputs.audio)))
        chains.append(f"{labels}amix=inputs={len(inputs.audio)}:duration=longest:normalize=0[a]")
    if inputs.audio:
        maps += ["-map", "[a]"]
    return ";".join(chains), maps


def _source_input(spec: CaptureSpec) -> list[str]:
    argv: list[str] = []
    if spec.source_speed > 0:
        argv += ["-readrate", _number(spec.source_speed)]
    if spec.source_offset_s > 0:
        argv += ["-ss", _number(spec.source_offset_s)]
    return [*argv, "-i", f"file:{spec.source}"]  # file: as for the output


def _video_codec(fps: int, encoding: Encoding) -> list[str]:
    gop = str(max(1, round(fps * encoding.keyframe_seconds)))
    return [
        "-c:v", "libx264", "-preset", encoding.preset,
        # zerolatency: no B-frames and no lookahead, so less delay and CPU while the person records.
        "-tune", "zerolatency", "-profile:v", "high", "-pix_fmt", "yuv420p",
        "-crf", str(encoding.crf),
        "-maxrate", str(encoding.max_video_bitrate), "-bufsize", str(2 * encoding.max_video_bitrate),
        # A keyframe exactly every interval, never more often: each fragment then holds the same stretch of time.
        "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
        "-force_key_frames", f"expr:gte(t,n_forced*{_number(encoding.keyframe_seconds)})",
        "-fps_mode", "cfr", "-r", str(fps),
    ]  # fmt: skip


def _audio_codec(encoding: Encoding) -> list[str]:
    return ["-c:a", "aac", "-b:a", str(encoding.audio_bitrate), "-ar", str(encoding.audio_rate)]


def _output(output: Path, encoding: Encoding, *, video: bool) -> list[str]:
    """Threads, then the fragmented MP4: ftyp and an empty moov up front, then only ever moof/mdat pairs."""
    threads = ["-threads", str(encoding.threads)] if encoding.threads > 0 else []
    # Every audio packet is a keyframe, so without video frag_keyframe could cut a fragment per packet.
    flags = "+frag_keyframe+empty_moov+default_base_moof" if video else "+empty_moov+default_base_moof"
    frag_us = str(round(encoding.keyframe_seconds * 1_000_000))
    # file: keeps a name such as "concat:x" or "-x.mp4" from being read as a protocol or an option.
    container = ["-f", "mp4", "-movflags", flags, "-frag_duration", frag_us, "-flush_packets", "1"]
    return [*threads, *container, f"file:{output}"]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
