"""HLS master playlists: what a player needs to pick a rendition."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framecast.domain.hls import (
    AAC_LC,
    Variant,
    audio_codec_of,
    codec_of,
    h264_high_codec,
    master_playlist,
    measured_bandwidth,
    segment_uris,
)


@pytest.mark.parametrize(
    ("width", "height", "fps", "codec"),
    [
        (640, 360, 30, "avc1.64001e"),
        (1280, 720, 30, "avc1.64001f"),
        (1280, 720, 60, "avc1.640020"),
        (1920, 1080, 30, "avc1.640028"),
        (1920, 1080, 60, "avc1.64002a"),
        (3840, 2160, 30, "avc1.640033"),
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


def test_an_audio_only_rendition_is_listed_without_a_picture_size_or_frame_rate() -> None:
    audio = Variant("audio/index.m3u8", 140_000, 131_000, 0, 0, 0.0, AAC_LC)
    assert master_playlist([audio]).splitlines()[3:] == [
        '#EXT-X-STREAM-INF:BANDWIDTH=140000,AVERAGE-BANDWIDTH=131000,CODECS="mp4a.40.2"',
        "audio/index.m3u8",
    ]


# -- codec strings of streams framecast passes through --------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "expected"),
    [
        ("h264", "avc1.640028"),
        ("hevc", "hvc1.1.6.L120.90"),
        ("vp9", "vp09.00.40.08"),
        ("av1", "av01.0.08M.08"),
    ],
)
def test_codec_of_names_a_video_stream_as_rfc_6381_does(codec: str, expected: str) -> None:
    assert codec_of(codec, width=1920, height=1080, frame_rate=30) == expected


def test_codec_of_an_h264_stream_depends_on_its_size_and_rate() -> None:
    assert codec_of("h264", width=640, height=360, frame_rate=30) == "avc1.64001e"
    assert codec_of("h264", width=1920, height=1080, frame_rate=60) == "avc1.64002a"


@pytest.mark.parametrize(
    ("codec", "expected"),
    [
        ("aac", "mp4a.40.2"),
        ("opus", "Opus"),
        ("mp3", "mp4a.40.34"),
        ("ac3", "ac-3"),
        ("eac3", "ec-3"),
        ("flac", "fLaC"),
    ],
)
def test_audio_codec_of_names_an_audio_stream_as_rfc_6381_does(codec: str, expected: str) -> None:
    assert audio_codec_of(codec) == expected


@pytest.mark.parametrize(("width", "height", "codec"), [(1920, 1080, "avc1.640028"), (1280, 720, "avc1.64001f")])
def test_a_low_frame_rate_screen_recording_is_labelled_with_a_level_that_fits_its_frame_size(
    width: int, height: int, codec: str
) -> None:
    assert h264_high_codec(width=width, height=height, frame_rate=10) == codec


# -- measuring a rendition's bandwidth ------------------------------------------------------------------------------


def media_playlist(*segments: tuple[str, float]) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:4", "#EXT-X-PLAYLIST-TYPE:VOD"]
    lines.append('#EXT-X-MAP:URI="init.mp4"')
    for uri, seconds in segments:
        lines += [f"#EXTINF:{seconds:.6f},", uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def test_segment_uris_lists_the_media_segments_in_order_without_the_init_segment() -> None:
    playlist = media_playlist(("seg_00000.m4s", 4.0), ("seg_00001.m4s", 4.0), ("seg_00002.m4s", 1.5))
    assert segment_uris(playlist) == ["seg_00000.m4s", "seg_00001.m4s", "seg_00002.m4s"]


def test_segment_uris_ignores_blank_lines_and_line_endings() -> None:
    playlist = "#EXTM3U\r\n\r\n#EXTINF:4.0,\r\nseg_00000.m4s\r\n\r\n#EXT-X-ENDLIST\r\n"
    assert segment_uris(playlist) == ["seg_00000.m4s"]


def test_measured_bandwidth_is_the_busiest_segment_and_the_overall_average() -> None:
    playlist = media_playlist(("a.m4s", 4.0), ("b.m4s", 4.0), ("c.m4s", 2.0))
    peak, average = measured_bandwidth(playlist, {"a.m4s": 500_000, "b.m4s": 1_000_000, "c.m4s": 250_000})
    assert peak == 1_000_000 * 8 // 4
    assert average == 1_750_000 * 8 // 10


def test_a_short_last_segment_does_not_set_the_peak() -> None:
    playlist = media_playlist(("a.m4s", 4.0), ("b.m4s", 4.0), ("c.m4s", 0.2))
    sizes = {"a.m4s": 500_000, "b.m4s": 1_000_000, "c.m4s": 200_000}  # c alone would be 8 Mbit/s
    peak, average = measured_bandwidth(playlist, sizes)
    assert peak == 2_000_000
    assert average == int(1_700_000 * 8 / 8.2)


def test_a_rendition_of_only_short_segments_is_still_measured() -> None:
    peak, average = measured_bandwidth(media_playlist(("a.m4s", 0.3)), {"a.m4s": 30_000})
    assert peak == average == 800_000


@given(
    st.lists(
        st.tuples(st.floats(min_value=0.01, max_value=6.0), st.integers(min_value=0, max_value=50_000_000)),
        min_size=1,
        max_size=40,
    )
)
def test_the_peak_is_never_below_the_average(segments: list[tuple[float, int]]) -> None:
    playlist = media_playlist(*[(f"seg_{i:05d}.m4s", seconds) for i, (seconds, _) in enumerate(segments)])
    sizes = {f"seg_{i:05d}.m4s": size for i, (_, size) in enumerate(segments)}
    peak, average = measured_bandwidth(playlist, sizes)
    assert peak >= average >= 0


@pytest.mark.parametrize(
    "playlist", ["", "#EXTM3U\n#EXT-X-ENDLIST\n", '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXT-X-ENDLIST\n']
)
def test_a_playlist_without_segments_cannot_be_measured(playlist: str) -> None:
    with pytest.raises(ValueError, match="no timed segments"):
        measured_bandwidth(playlist, {})
