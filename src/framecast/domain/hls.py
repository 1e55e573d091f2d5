"""HLS master playlists (RFC 8216) for CMAF renditions: the text players read to choose a rendition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# H.264 levels (ITU-T H.264 table A-1): the most macroblocks per second and per frame each allows, with its
# level_idc as CODECS spells it. A rendition's level must fit both its rate and its frame size.
_H264_LEVELS: tuple[tuple[str, int, int, str], ...] = (
    ("3", 40_500, 1_620, "1e"),
    ("3.1", 108_000, 3_600, "1f"),
    ("3.2", 216_000, 5_120, "20"),
    ("4", 245_760, 8_192, "28"),
    ("4.2", 522_240, 8_704, "2a"),
    ("5", 589_824, 22_080, "32"),
    ("5.1", 983_040, 36_864, "33"),
    ("5.2", 2_073_600, 36_864, "34"),
)
AAC_LC = "mp4a.40.2"


def h264_level(*, width: int, height: int, frame_rate: float) -> tuple[str, str]:
    """The lowest H.264 level (name, level_idc in hex) that carries this frame size at this rate."""
    frame = ((width + 15) // 16) * ((height + 15) // 16)
    per_second = frame * frame_rate
    for name, max_per_second, max_frame, idc in _H264_LEVELS:
        if per_second <= max_per_second and frame <= max_frame:
            return name, idc
    name, _, _, idc = _H264_LEVELS[-1]
    return name, idc


def h264_high_codec(*, width: int, height: int, frame_rate: float) -> str:
    """The RFC 6381 CODECS value of H.264 High at the lowest level that carries this size and rate."""
    return f"avc1.6400{h264_level(width=width, height=height, frame_rate=frame_rate)[1]}"


@dataclass(frozen=True, slots=True)
class Variant:
    """One rendition as the master playlist lists it; `uri` is relative to the master playlist."""

    uri: str
    bandwidth: int
    average_bandwidth: int
    width: int
    height: int
    frame_rate: float
    codecs: str


def master_playlist(variants: Sequence[Variant]) -> str:
    """The master playlist listing `variants` best first; raises ValueError when there are none."""
    if not variants:
        raise ValueError("a master playlist needs at least one rendition")
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for v in sorted(variants, key=lambda v: -v.bandwidth):
        attributes = f"BANDWIDTH={v.bandwidth},AVERAGE-BANDWIDTH={v.average_bandwidth}"
        if v.width and v.height:  # an audio-only rendition has neither size nor frame rate
            attributes += f",RESOLUTION={v.width}x{v.height}"
        if v.codecs:
            attributes += f',CODECS="{v.codecs}"'
        if v.frame_rate:
            attributes += f",FRAME-RATE={v.frame_rate:.3f}"
        lines.append(f"#EXT-X-STREAM-INF:{attributes}")
        lines.append(v.uri)
    return "\n".join(lines) + "\n"


# Codec strings for streams framecast passes through unchanged (the first playable remux). The profile and level
# of a stream framecast did not encode are not known exactly; these name the common case, which players accept
# for choosing a rendition and which they then read precisely from the init segment.
_PASSTHROUGH_VIDEO = {"hevc": "hvc1.1.6.L120.90", "vp9": "vp09.00.40.08", "av1": "av01.0.08M.08"}
_PASSTHROUGH_AUDIO = {"aac": AAC_LC, "opus": "Opus", "mp3": "mp4a.40.34", "ac3": "ac-3", "eac3": "ec-3", "flac": "fLaC"}


def codec_of(codec: str, *, width: int, height: int, frame_rate: float) -> str:
    if codec == "h264":
        return h264_high_codec(width=width, height=height, frame_rate=frame_rate)
    return _PASSTHROUGH_VIDEO.get(codec, codec)


def audio_codec_of(codec: str) -> str:
    return _PASSTHROUGH_AUDIO.get(codec, codec)


def segment_uris(playlist: str) -> list[str]:
    """The media segment URIs of a media playlist, in order (the init segment is not among them)."""
    return [line.strip() for line in playlist.splitlines() if line.strip() and not line.startswith("#")]


def measured_bandwidth(playlist: str, sizes: dict[str, int]) -> tuple[int, int]:
    """(peak, average) bits per second of a rendition, from its segments' sizes and #EXTINF durations: the
    BANDWIDTH and AVERAGE-BANDWIDTH its master-playlist entry must carry (RFC 8216 section 4.3.4.2)."""
    duration: float | None = None
    peak = 0.0
    total_bits = 0
    total_seconds = 0.0
    for line in playlist.splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            duration = float(line[len("#EXTINF:") :].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            bits = sizes[line] * 8
            total_bits += bits
            total_seconds += duration
            if duration >= 0.5:  # a short last segment says little about the peak rate
                peak = max(peak, bits / duration)
            duration = None
    if total_seconds <= 0:
        raise ValueError("the playlist lists no timed segments")
    average = total_bits / total_seconds
    return int(max(peak, average)), int(average)
