"""What this machine can capture: screens, windows, cameras, microphones and system-audio sources.

Each platform is asked the way ffmpeg sees it (avfoundation and dshow list their own devices) or through the usual
tools (pactl, xdotool, /sys). The parsers are pure and tested on sample outputs; a tool that is missing, fails or
hangs means fewer devices, never an exception.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from framecast.agent.capture import MAC_MAIN_SCREEN, Platform

KINDS = ("screen", "window", "camera", "microphone", "system_audio")
Runner = Callable[[list[str]], tuple[int, str, str]]
RUN_TIMEOUT_SECONDS = 10.0
# Audio inputs that carry what the computer plays, by the names their installers give them.
_LOOPBACK = re.compile(
    r"blackhole|soundflower|loopback|stereo mix|what u hear|wave out mix|virtual-audio-capturer|cable output", re.I
)
_X11GRAB_SIZE = re.compile(r"Stream #\d+:\d+.*?: Video: .*?, (\d{2,5})x(\d{2,5})\b")
_AVFOUNDATION = re.compile(r"\[(\d+)\] (.+?)\s*$")
_DSHOW_NEW = re.compile(r'\]\s+"(.+)" \(([a-z, ]+)\)\s*$')
_DSHOW_OLD = re.compile(r'\]\s+"(.+)"\s*$')


@dataclass(frozen=True, kw_only=True)
class Device:
    """One thing to capture; `id` is what `framecast record` takes for it (--display, --window, --camera, ...).

    `default` marks what to use when none is named: the system's default where the platform tells (PulseAudio, the X
    display, the main Mac screen), else the first of its kind listed.
    """

    kind: str  # one of KINDS
    id: str
    name: str
    default: bool = False
    detail: str = ""


def list_devices(
    *,
    platform: Platform,
    ffmpeg: str,
    run: Runner | None = None,
    env: Mapping[str, str] | None = None,
    sys_root: Path = Path("/sys"),
) -> list[Device]:
    """Every device found, screens first; `run(argv)` returns (exit code, stdout, stderr)."""
    env = os.environ if env is None else env
    run = run or _subprocess_runner(env)
    if platform is Platform.MACOS:
        _, _, err = run([ffmpeg, "-hide_banner", "-f", "avfoundation", "-list_devices", "true", "-i", ""])
        return parse_avfoundation_devices(err)
    if platform is Platform.WINDOWS:
        _, _, err = run([ffmpeg, "-hide_banner", "-list_devices", "true", "-f", "dshow", "-i", "dummy"])
        screen = Device(kind="screen", id="desktop", name="The whole desktop (all monitors)", default=True)
        return [screen, *parse_dshow_devices(err)]
    return [*_x11(ffmpeg=ffmpeg, run=run, env=env), *v4l2_cameras(sys_root), *_pulse(run)]


def _subprocess_runner(env: Mapping[str, str]) -> Runner:
    def run(argv: list[str]) -> tuple[int, str, str]:
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=RUN_TIMEOUT_SECONDS,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except FileNotFoundError:
            return 127, "", "not found"
        except subprocess.TimeoutExpired:
            return 124, "", "timed out"
        except OSError as error:  # not executable, and the like: the tool is as good as missing
            return 126, "", str(error)
        return done.returncode, done.stdout, done.stderr

    return run


# -- Linux -----------------------------------------------------------------------------------------------------------


def _x11(*, ffmpeg: str, run: Runner, env: Mapping[str, str]) -> list[Device]:
    display = env.get("DISPLAY", "")
    if not display:
        return []  # no X session (or a pure Wayland one): nothing x11grab could see
    _, _, err = run([ffmpeg, "-hide_banner", "-f", "x11grab", "-i", display, "-frames:v", "1", "-f", "null", "-"])
    size = parse_x11grab_size(err)
    if size is None:
        return []  # ffmpeg could not open the display (or has no x11grab): it could not record it either
    name = f"X display {display}"
    if env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland":
        name += " (XWayland: only X11 apps show; use the browser recorder for the rest)"
    screen = Device(kind="screen", id=display, name=name, default=True, detail=size)
    return [screen, *_x11_windows(run)]


def _x11_windows(run: Runner) -> list[Device]:
    code, out, _ = run(["xdotool", "search", "--onlyvisible", "--name", "."])
    if code != 0:
        return []  # no xdotool, or no window matched
    windows = []
    for window_id in out.split():
        if not window_id.isdigit():
            continue
        code, title, _ = run(["xdotool", "getwindowname", window_id])
        if code == 0 and title.strip():
            windows.append(Device(kind="window", id=window_id, name=title.strip()))
    return windows


def parse_x11grab_size(stderr: str) -> str | None:
    """The screen size ("1920x1080") from ffmpeg's description of an x11grab input, or None."""
    match = _X11GRAB_SIZE.search(stderr)
    return f"{match[1]}x{match[2]}" if match else None


def v4l2_cameras(sys_root: Path) -> list[Device]:
    """Video capture nodes under `sys_root`/class/video4linux, main node of each camera only."""
    folder = sys_root / "class" / "video4linux"
    try:
        nodes = [node for node in folder.iterdir() if re.fullmatch(r"video\d+", node.name)]
    except OSError:
        return []
    cameras = []
    for node in sorted(nodes, key=lambda node: int(node.name.removeprefix("video"))):
        # A UVC camera also exposes a metadata node with index 1, which cannot capture.
        if _read(node / "index") not in ("", "0"):
            continue
        name = _read(node / "name") or node.name
        cameras.append(Device(kind="camera", id=f"/dev/{node.name}", name=name))
    return _defaults(cameras)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _pulse(run: Runner) -> list[Device]:
    code, out, _ = run(["pactl", "list", "short", "sources"])
    if code != 0:
        return []  # no pactl, or no PulseAudio/PipeWire server to ask
    source_code, source, _ = run(["pactl", "get-default-source"])
    sink_code, sink, _ = run(["pactl", "get-default-sink"])
    return parse_pactl_sources(
        out,
        default_source=source.strip() if source_code == 0 else None,
        default_sink=sink.strip() if sink_code == 0 else None,
    )


def parse_pactl_sources(
    text: str, *, default_source: str | None = None, default_sink: str | None = None
) -> list[Device]:
    """Microphones and system-audio monitors from `pactl list short sources`, microphones first.

    A `.monitor` source plays back what a sink outputs: system audio. The default sink's monitor is the default
    system audio; `pactl get-default-source` and `get-default-sink` name the defaults.
    """
    devices = []
    for line in text.splitlines():
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) < 2 or not fields[0].strip().isdigit():
            continue
        name = fields[1].strip()
        detail = fields[3].strip() if len(fields) > 3 else ""
        if name.endswith(".monitor"):
            kind, default = "system_audio", default_sink is not None and name == f"{default_sink}.monitor"
        else:
            kind, default = "microphone", name == default_source
        devices.append(Device(kind=kind, id=name, name=name, default=default, detail=detail))
    return _defaults(devices)


# -- macOS -----------------------------------------------------------------------------------------------------------


def parse_avfoundation_devices(stderr: str) -> list[Device]:
    """Screens, cameras, microphones and loopback inputs from `ffmpeg -f avfoundation -list_devices true -i ""`.

    Ids are avfoundation's indexes, which capture takes for a screen, a camera or audio alike.
    """
    devices = []
    section = ""
    for line in stderr.splitlines():
        if "AVFoundation video devices" in line:
            section = "video"
            continue
        if "AVFoundation audio devices" in line:
            section = "audio"
            continue
        match = _AVFOUNDATION.search(line)
        if match is None or not section:
            continue
        index, name = match.groups()
        if section == "video":
            kind = "screen" if name.startswith("Capture screen ") else "camera"
        else:
            kind = "system_audio" if _LOOPBACK.search(name) else "microphone"
        devices.append(Device(kind=kind, id=index, name=name, default=name == MAC_MAIN_SCREEN))
    return _defaults(devices)


# -- Windows ---------------------------------------------------------------------------------------------------------


def parse_dshow_devices(stderr: str) -> list[Device]:
    """Cameras, microphones and loopback inputs from `ffmpeg -list_devices true -f dshow -i dummy`.

    Reads both ffmpeg's current listing (`"name" (video)`) and the older one under "DirectShow video devices" and
    "DirectShow audio devices" headings. Ids are the device names, which dshow opens by.
    """
    found: list[tuple[str, str]] = []  # (media type, name) in listing order
    section = ""
    for line in stderr.splitlines():
        if "Alternative name" in line:
            continue
        if "DirectShow video devices" in line:
            section = "video"
            continue
        if "DirectShow audio devices" in line:
            section = "audio"
            continue
        if match := _DSHOW_NEW.search(line):
            found += [(media.strip(), match[1]) for media in match[2].split(",")]
        elif section and (match := _DSHOW_OLD.search(line)):
            found.append((section, match[1]))
    devices = []
    for media, name in found:
        if media == "video":
            devices.append(Device(kind="camera", id=name, name=name))
        elif media == "audio":
            kind = "system_audio" if _LOOPBACK.search(name) else "microphone"
            devices.append(Device(kind=kind, id=name, name=name))
    return _defaults(devices)


def _defaults(devices: list[Device]) -> list[Device]:
    """`devices` grouped by kind in listing order; where none of a kind is the default, the first one is."""
    ordered = sorted(devices, key=lambda device: KINDS.index(device.kind))
    marked = {device.kind for device in ordered if device.default}
    result = []
    for device in ordered:
        if device.kind not in marked:
            marked.add(device.kind)
            device = dataclasses.replace(device, default=True)
        result.append(device)
    return result
