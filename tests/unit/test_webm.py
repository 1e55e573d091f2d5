"""The WebM header and cluster checks of live WebM runs (domain/webm.py), on EBML built byte by byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from framecast.adapters.media import commands
from framecast.domain import webm
from framecast.domain.fmp4 import BadSegment

UNKNOWN = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def element(ident: int, payload: bytes, *, unknown: bool = False) -> bytes:
    size = UNKNOWN if unknown else b"\x01" + len(payload).to_bytes(7, "big")  # an 8-byte size field
    return ident.to_bytes((ident.bit_length() + 7) // 8, "big") + size + payload


def uint(ident: int, value: int) -> bytes:
    return element(ident, value.to_bytes(4, "big"))


def track(number: int, kind: int, codec: str, *, size: tuple[int, int] | None = None) -> bytes:
    fields = uint(webm.TRACK_NUMBER, number) + uint(webm.TRACK_TYPE, kind) + element(webm.CODEC_ID, codec.encode())
    if size is not None:
        fields += element(webm.VIDEO, uint(webm.PIXEL_WIDTH, size[0]) + uint(webm.PIXEL_HEIGHT, size[1]))
    return element(webm.TRACK_ENTRY, fields)


def header(*tracks: bytes, scale: int = 1_000_000) -> bytes:
    return (
        element(webm.EBML, element(webm.DOC_TYPE, b"webm"))
        + element(webm.SEGMENT, b"", unknown=True)
        + element(webm.INFO, uint(webm.TIMECODE_SCALE, scale))
        + element(webm.TRACKS, b"".join(tracks))
    )


def block(track_number: int, *, key: bool, grouped: bool = False) -> bytes:
    body = bytes([0x80 | track_number]) + b"\x00\x00" + bytes([0x80 if key and not grouped else 0]) + b"frame"
    if grouped:
        reference = b"" if key else element(webm.REFERENCE_BLOCK, b"\xff")
        return element(webm.BLOCK_GROUP, element(webm.BLOCK, body) + reference)
    return element(webm.SIMPLE_BLOCK, body)


def cluster(time: int, *blocks: bytes, unknown: bool = True) -> bytes:
    return element(webm.CLUSTER, uint(webm.TIMECODE, time) + b"".join(blocks), unknown=unknown)


SCREEN = header(track(1, 1, "V_VP9", size=(2560, 1440)), track(2, 2, "A_OPUS"))


def test_a_header_says_its_tracks_and_the_live_picture_fits_in_1080p() -> None:
    parsed = webm.parse_header(SCREEN)
    assert parsed.video == webm.WebmTrack(number=1, kind="video", codec="V_VP9", width=2560, height=1440)
    assert parsed.audio is not None
    assert parsed.live_size == (1920, 1080)
    assert webm.parse_header(header(track(1, 2, "A_OPUS"))).live_size == (0, 0)
    assert webm.fit(1001, 563, (1920, 1080)) == (1000, 562)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x00\x00\x00\x00", BadSegment),
        (element(webm.EBML, element(webm.DOC_TYPE, b"mp4")), BadSegment),
        (header(), BadSegment),
        (SCREEN + cluster(0, block(1, key=True)), BadSegment),
        (SCREEN[:-3], BadSegment),
        (header(track(1, 1, "V_VP8", size=(640, 360)), track(2, 2, "A_VORBIS")), webm.UnsupportedMedia),
        (header(track(1, 1, "V_THEORA", size=(640, 360))), webm.UnsupportedMedia),
        (header(track(1, 1, "V_VP8", size=(640, 360)), track(2, 1, "V_VP8", size=(640, 360))), webm.UnsupportedMedia),
        (header(track(1, 17, "S_TEXT/UTF8")), webm.UnsupportedMedia),
        (header(track(1, 1, "V_VP8", size=(0, 0))), BadSegment),
    ],
    ids=[
        "not-ebml",
        "not-webm",
        "no-tracks",
        "holds-a-cluster",
        "cut-short",
        "vorbis",
        "theora",
        "two-videos",
        "subtitles",
        "no-size",
    ],
)
def test_bad_headers_are_refused_with_what_is_wrong(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        webm.parse_header(data)


def test_a_segment_of_unknown_size_clusters_starting_on_a_keyframe_is_taken() -> None:
    parsed = webm.parse_header(SCREEN)
    # Chromium starts a cluster with audio; what counts is the first video block.
    body = cluster(2000, block(2, key=True), block(1, key=True), block(1, key=False)) + cluster(
        3000, block(2, key=True), block(1, key=False)
    )
    assert webm.parse_segment(body, parsed) == webm.WebmSegment(clusters=2, start_s=2.0)
    grouped = cluster(4000, block(1, key=True, grouped=True), unknown=False)
    assert webm.parse_segment(grouped, parsed).start_s == 4.0


@pytest.mark.parametrize(
    "body",
    [
        b"",
        cluster(0, block(1, key=False)),
        cluster(0, block(2, key=True), block(1, key=False, grouped=True)),
        cluster(0, block(1, key=True))[:-2],
        cluster(0, block(1, key=True), unknown=False)[:-2],
        element(webm.INFO, b"") + cluster(0, block(1, key=True)),
        element(webm.CLUSTER, block(1, key=True)),
    ],
    ids=["empty", "delta-first", "grouped-delta-first", "cut-short", "known-cut-short", "not-a-cluster", "no-time"],
)
def test_segments_that_would_not_decode_on_their_own_are_refused(body: bytes) -> None:
    with pytest.raises(BadSegment):
        webm.parse_segment(body, webm.parse_header(SCREEN))


def test_audio_only_segments_may_start_at_any_cluster() -> None:
    voice = webm.parse_header(header(track(1, 2, "A_OPUS")))
    assert webm.parse_segment(cluster(500, block(1, key=False)), voice).clusters == 1


def test_the_live_transcode_keeps_timestamps_and_makes_one_init_segment_for_every_segment() -> None:
    argv = commands.live_transcode("ffmpeg", Path("in.webm"), Path("out.mp4"), size=(1280, 720), threads=2)
    assert "-copyts" in argv
    assert argv[argv.index("-bf") + 1] == "0"
    assert "+bitexact" in argv
    assert argv[argv.index("-c:a") + 1] == "copy"
    assert "scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:-1:-1,setsar=1" in argv
    audio = commands.live_transcode("ffmpeg", Path("in.webm"), Path("out.mp4"), size=(0, 0), threads=2)
    assert "libx264" not in audio
