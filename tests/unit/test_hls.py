"""HLS master playlists: what a player needs to pick a rendition."""

from __future__ import annotations

import pytest

from framecast.domain.hls import AAC_LC, Variant, h264_high_codec, master_playlist


@pytest.mark.parametrize(
    ("width", "height", "fps", "codec"),
    [
        (640, 360, 30, "avc1.64001e"),
        (1280, 720, 30, "avc1.64001f"),
        (1280, 720, 60, "avc1.640020"),
        (1920, 1080, 30, "avc1.640028"),
        (1920, 1080, 60, "avc1.64002a"),
        (3840, 2160, 30, "avc1.640032"),
    ],
)
def test_h264_high_codec_names_the_lowest_sufficient_level(width: int, height: int, fps: float, codec: str) -> None:
    assert h264_high_codec(width=width, height=height, frame_rate=fps) == codec


def variant(name: str, width: int, height: int, bandwidth: int) -> Variant:
    codecs = f"{h264_high_codec(width=width, height=height, frame_rate=30)},{AAC_LC}"
    return Variant(f"{name}/index.m3u8", bandwidth, bandwidth * 2 // 3, width, height, 29.97, codecs)


def test_master_playlist_lists_every_rendition_best_first_with_its_attributes() -> None:
    text = master_playlist([variant("360p", 640, 360, 1_300_000), variant("1080p", 1920, 1080, 7_600_000)])
    assert text.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "#EXT-X-STREAM-INF:BANDWIDTH=7600000,AVERAGE-BANDWIDTH=5066666,RESOLUTION=1920x1080,"
        'CODECS="avc1.640028,mp4a.40.2",FRAME-RATE=29.970',
        "1080p/index.m3u8",
        "#EXT-X-STREAM-INF:BANDWIDTH=1300000,AVERAGE-BANDWIDTH=866666,RESOLUTION=640x360,"
        'CODECS="avc1.64001e,mp4a.40.2",FRAME-RATE=29.970',
        "360p/index.m3u8",
    ]


def test_an_empty_master_playlist_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one rendition"):
        master_playlist([])
