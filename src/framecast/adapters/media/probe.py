"""Probe a media file with PyAV in a child process: `python -m framecast.adapters.media.probe FILE` prints JSON.

Why a child process: demuxers parse hostile bytes, so a crash or a hang in them must cost a subprocess (killed at
its timeout), never the server. Why PyAV rather than ffprobe: the ffmpeg that ships on PyPI (imageio-ffmpeg) has
no ffprobe, and PyAV wheels carry their own libavformat, so probing works on a fresh `pip install` too.

The demuxer whitelist and `file`-only protocol whitelist mean a playlist or concat list cannot make the probe open
another file; `enable_drefs` stays off so QuickTime references to external files are not followed either.
"""

from __future__ import annotations

import itertools
import json
import sys
from fractions import Fraction
from typing import Any

import av
import av.error

from framecast.domain.media import ACCEPTED_DEMUXERS, MAX_FRAME_RATE

# Codecs of pictures: a "video" of one such frame is a still image, not a recording.
IMAGE_CODECS = frozenset({"png", "mjpeg", "bmp", "gif", "webp", "tiff", "jpeg2000", "jpegls", "apng"})


def open_options() -> dict[str, str]:
    return {
        "protocol_whitelist": "file",
        "format_whitelist": ",".join(ACCEPTED_DEMUXERS),
        "enable_drefs": "0",
    }


def probe(path: str) -> dict[str, Any]:
    """What the file holds, as plain JSON-able data (the parent turns it into a MediaInfo)."""
    with av.open(path, options=open_options()) as container:
        result: dict[str, Any] = {
            "format_name": container.format.name,
            "duration_s": container.duration / 1_000_000 if container.duration else None,
            "video": None,
            "audio": None,
            "still_image": False,
        }
        videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        audios = list(container.streams.audio)
        if videos:
            stream = videos[0]
            ctx = stream.codec_context
            rate = _frame_rate(container, stream)
            result["video"] = {
                "codec": ctx.name,
                "width": ctx.width,
                "height": ctx.height,
                "frame_rate": float(rate),
                "pixel_format": ctx.format.name if ctx.format else "",
                "rotation": _rotation(container, stream),
            }
            result["still_image"] = ctx.name in IMAGE_CODECS and (stream.frames or 0) <= 1
        if audios:
            actx = audios[0].codec_context
            result["audio"] = {"codec": actx.name, "sample_rate": actx.sample_rate, "channels": actx.layout.nb_channels}
        if result["duration_s"] is None and (videos or audios):
            result["duration_s"] = _demuxed_duration(container, [*videos[:1], *audios[:1]])
    return result


def _frame_rate(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """Frames per second: the header's average rate, else measured from the packets' timestamps.

    MediaRecorder's WebM says nothing about its rate, and FFmpeg's guess then falls back to the 1 kHz time base
    whenever frame timing is irregular (as screen capture and pauses make it): 1000 fps, which no player shows.
    """
    if _plausible(stream.average_rate):
        return float(stream.average_rate or 0)
    measured = _measured_rate(container, stream)
    if measured:
        return measured
    for guess in (stream.guessed_rate, stream.base_rate):
        if _plausible(guess):
            return float(guess or 0)
    return 0.0


def _plausible(rate: Fraction | None) -> bool:
    return rate is not None and 0 < rate <= MAX_FRAME_RATE


def _measured_rate(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    """One over the median gap between frames, from demuxed packets (no decoding), when that is plausible: the
    median, so a pause or a stall in the capture does not drag the rate down as an average would."""
    stamps: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and packet.size:
                stamps.append(packet.pts)
    except av.error.FFmpegError:
        return None
    finally:
        container.seek(0)
    gaps = sorted(b - a for a, b in itertools.pairwise(sorted(stamps)) if b > a)
    if not gaps or stream.time_base is None:
        return None
    median = float(gaps[len(gaps) // 2] * stream.time_base)
    rate = 1 / median if median > 0 else 0.0
    return round(rate, 3) if 0 < rate <= MAX_FRAME_RATE else None


def _rotation(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """The display rotation, read from the first decoded frame (PyAV exposes it there); 0 when none decodes."""
    try:
        for frame in container.decode(stream):
            return round(frame.rotation or 0) % 360
    except av.error.FFmpegError:
        return 0
    finally:
        container.seek(0)
    return 0


def _demuxed_duration(container: av.container.InputContainer, streams: list[Any]) -> float | None:
    """The length of a file whose header does not say (MediaRecorder WebM): the end of its last packet."""
    end = 0.0
    for packet in container.demux(streams):
        if packet.pts is None or packet.time_base is None:
            continue
        stop = float((packet.pts + (packet.duration or 0)) * packet.time_base)
        end = max(end, stop)
    start = min((float(s.start_time * s.time_base) for s in streams if s.start_time is not None), default=0.0)
    return end - start if end > 0 else None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m framecast.adapters.media.probe FILE", file=sys.stderr)
        return 64
    try:
        print(json.dumps(probe(argv[1])))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
