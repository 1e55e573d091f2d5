"""HLS master playlists (RFC 8216) for CMAF renditions: the text players read to choose a rendition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# H.264 levels by the largest frame they allow at 30 fps (macroblocks per second), with the level_idc of CODECS.
_H264_LEVELS: tuple[tuple[int, str], ...] = (
    (40_500, "1e"),  # 3.0: up to 720x576 at 25-30 fps
    (108_000, "1f"),  # 3.1: 1280x720 at 30
    (216_000, "20"),  # 3.2: 1280x720 at 60
    (245_760, "28"),  # 4.0: 1920x1080 at 30
    (522_240, "2a"),  # 4.2: 1920x1080 at 60
    (983_040, "32"),  # 5.1: 4K at 30
)
AAC_LC = "mp4a.40.2"


def h264_high_codec(*, width: int, height: int, frame_rate: float) -> str:
    """The RFC 6381 CODECS value of H.264 High at the lowest level that carries this size and rate."""
    macroblocks_per_second = ((width + 15) // 16) * ((height + 15) // 16) * frame_rate
    for limit, level in _H264_LEVELS:
        if macroblocks_per_second <= limit:
            return f"avc1.6400{level}"
    return "avc1.640033"  # 5.2


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
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={v.bandwidth},AVERAGE-BANDWIDTH={v.average_bandwidth},"
            f'RESOLUTION={v.width}x{v.height},CODECS="{v.codecs}",FRAME-RATE={v.frame_rate:.3f}'
        )
        lines.append(v.uri)
    return "\n".join(lines) + "\n"
