"""Tiny generated media files for the processing tests, made with the same ffmpeg framecast finds.

Each clip is a few seconds of test pattern and tone, small enough that the whole ladder encodes in a second or two.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from framecast.adapters.media.ffmpeg import locate_ffmpeg

FFMPEG = locate_ffmpeg()


def _ffmpeg(args: Sequence[str], *, stdout: Path | None = None) -> None:
    command = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args]
    if stdout is None:
        subprocess.run(command, check=True)
    else:
        with stdout.open("wb") as out:
            subprocess.run(command, check=True, stdout=out)


def video(
    target: Path,
    *,
    size: str = "320x180",
    seconds: float = 3.0,
    rate: int = 30,
    audio: bool = True,
    vcodec: Sequence[str] = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30"),
    acodec: Sequence[str] = ("-c:a", "aac"),
    extra: Sequence[str] = (),
    pattern: str = "testsrc2",
) -> Path:
    """A test-pattern video of `seconds` (with a 440 Hz tone unless `audio` is False)."""
    inputs = ["-f", "lavfi", "-i", f"{pattern}=s={size}:r={rate}:d={seconds}"]
    maps = ["-map", "0:v"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={seconds}"]
        maps += ["-map", "1:a", *acodec]
    _ffmpeg([*inputs, *maps, *vcodec, *extra, "-t", str(seconds), str(target)])
    return target


def audio_only(target: Path, *, seconds: float = 3.0) -> Path:
    _ffmpeg(["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={seconds}", "-c:a", "aac", str(target)])
    return target


def variable_rate(target: Path, *, seconds: float = 3.0) -> Path:
    """Frames at irregular intervals (as screen recorders produce when little moves)."""
    return video(
        target,
        seconds=seconds,
        extra=("-vf", "select='lt(mod(n,10),4)'", "-fps_mode", "vfr"),
    )


def media_recorder_webm(target: Path, *, seconds: float = 3.0) -> Path:
    """VP8 + Opus WebM written to a pipe, as MediaRecorder writes it: no duration and no cues in the header."""
    _ffmpeg(
        [
            "-f", "lavfi", "-i", f"testsrc2=s=320x180:r=30:d={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={seconds}",
            "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "500k",
            "-c:a", "libopus", "-f", "webm", "pipe:1",
        ],
        stdout=target,
    )  # fmt: skip
    return target


def black_then_pattern(target: Path, *, black_seconds: float = 2.0, seconds: float = 4.0) -> Path:
    """A recording that opens on black frames (a camera warming up): the poster must not be one of them."""
    _ffmpeg(
        [
            "-f", "lavfi", "-i", f"color=black:s=320x180:r=30:d={black_seconds}",
            "-f", "lavfi", "-i", f"testsrc2=s=320x180:r=30:d={seconds - black_seconds}",
            "-filter_complex", "[0][1]concat=n=2:v=1:a=0,format=yuv420p",
            "-c:v", "libx264", "-preset", "ultrafast", str(target),
        ]
    )  # fmt: skip
    return target


def fragmented(target: Path, *, seconds: float = 6.0, size: str = "320x180", start: float = 0.0) -> Path:
    """A fragmented MP4 as the desktop agent writes it: ftyp and an empty moov, then a moof + mdat every 2 s, each
    starting on a keyframe. `start` shifts the pattern (a second run of the same recording looks different)."""
    _ffmpeg(
        [
            "-f", "lavfi", "-i", f"testsrc2=s={size}:r=30:d={seconds + start}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={seconds + start}",
            "-ss", str(start),
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
            "-c:a", "aac", "-t", str(seconds),
            "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "2000000",
            str(target),
        ]
    )  # fmt: skip
    return target


def split_fragments(path: Path) -> tuple[bytes, list[bytes]]:
    """A fragmented MP4's init segment (ftyp + moov) and its media segments (one moof + mdat each)."""
    from framecast.domain.fmp4 import boxes

    data = path.read_bytes()
    top = list(boxes(data))
    first = next(i for i, box in enumerate(top) if box.kind == "moof")
    init = data[: top[first].start]
    segments = [data[box.start : top[i + 1].end] for i, box in enumerate(top) if box.kind == "moof"]
    return init, segments


def live_webm(
    target: Path,
    *,
    seconds: float = 6.0,
    size: str = "320x180",
    codec: str = "libvpx",
    video: bool = True,
    bitrate: str = "500k",
) -> Path:
    """A WebM as a browser's MediaRecorder streams it (written to a pipe: unknown sizes, no cues), with a keyframe
    every second as framecast's recorder asks for, and a cluster every second."""
    picture = (
        ["-f", "lavfi", "-i", f"testsrc2=s={size}:r=30:d={seconds}"] if video else []
    )  # fmt: skip
    encode = (
        ["-c:v", codec, "-deadline", "realtime", "-cpu-used", "8", "-b:v", bitrate, "-g", "30"] if video else []
    )  # fmt: skip
    _ffmpeg(
        [
            *picture,
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={seconds}",
            *encode,
            "-c:a", "libopus", "-cluster_time_limit", "1000", "-f", "webm", "pipe:1",
        ],
        stdout=target,
    )  # fmt: skip
    return target


def split_webm(path: Path, *, min_seconds: float = 1.8) -> tuple[bytes, list[bytes]]:
    """A WebM's header (the bytes before the first Cluster) and its live segments: runs of whole Clusters, each
    starting with a Cluster whose first video block is a keyframe and lasting at least `min_seconds`."""
    data = path.read_bytes()
    clusters = list(_clusters(data))
    header = data[: clusters[0][0]]
    has_video = any(keyframe is not None for *_, keyframe in clusters)
    segments: list[bytes] = []
    start, start_time = clusters[0][0], clusters[0][2]
    for begin, _, time, keyframe in clusters[1:]:
        # A cluster with no video block cannot start a segment: its picture carries on from the one before.
        cut = keyframe if has_video else True
        if cut and time - start_time >= min_seconds * 1000:
            segments.append(data[start:begin])
            start, start_time = begin, time
    segments.append(data[start:])
    return header, segments


def _clusters(data: bytes) -> list[tuple[int, int, int, bool | None]]:
    """(start, end, timecode in ms, whether its first video block is a keyframe: None without one) of each
    Cluster, unknown sizes included. Track 1 is the video (ffmpeg and Chromium number the video first)."""

    def number(at: int, marker: bool) -> tuple[int, int]:
        length = 1
        while not data[at] & (0x80 >> (length - 1)):
            length += 1
        value = data[at] & (0xFF >> length) if marker else data[at]
        for byte in data[at + 1 : at + length]:
            value = value << 8 | byte
        return value, length

    def element(at: int) -> tuple[int, int, int]:
        ident, a = number(at, False)
        size, b = number(at + a, True)
        unknown = size == (1 << (7 * b)) - 1
        return ident, at + a + b, -1 if unknown else at + a + b + size

    out = []
    _, _, at = element(0)  # the EBML header
    _, at, _ = element(at)  # into the Segment
    while at < len(data):
        ident, body, end = element(at)
        if ident != 0x1F43B675:
            at = end
            continue
        time, keyframe, child = 0, None, body
        while child < len(data) and (end < 0 or child < end):
            kind, payload, child_end = element(child)
            if kind == 0x1F43B675:
                break
            if kind == 0xE7:
                time = int.from_bytes(data[payload:child_end], "big")
            elif kind == 0xA3 and keyframe is None and number(payload, True)[0] == 1:
                keyframe = bool(data[payload + number(payload, True)[1] + 2] & 0x80)
            child = child_end
        out.append((at, child, time, keyframe))
        at = child
    return out
