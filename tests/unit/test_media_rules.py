"""Which uploads framecast turns into a video, and the sentence the uploader reads when it will not."""

from __future__ import annotations

import json
import re

import pytest

from framecast.domain.media import (
    AudioStream,
    MediaInfo,
    MediaRefused,
    MediaSet,
    VideoStream,
    can_remux,
    check,
    sniff,
)

MP4 = "mov,mp4,m4a,3gp,3g2,mj2"
WEBM = "matroska,webm"
H264 = VideoStream("h264", 1920, 1080, 30.0, "yuv420p")
AAC = AudioStream("aac", 48000, 2)

# What a Python value looks like when it leaks into a message: None, nan/inf, a constructor call, a quoted string
# (an apostrophe inside a word, as in "video's", is English), brackets, escapes.
PYTHON_REPR = re.compile(r"\bNone\b|\b(?:nan|inf)\b|\w\(|(?<![A-Za-z])'|'(?![A-Za-z])|[\"{}\[\]<>]|\\x")


def media(
    *,
    format_name: str = MP4,
    duration_s: float | None = 10.0,
    video: VideoStream | None = H264,
    audio: AudioStream | None = AAC,
    still_image: bool = False,
) -> MediaInfo:
    return MediaInfo(
        format_name=format_name,
        duration_s=duration_s,
        size=1_000_000,
        video=video,
        audio=audio,
        still_image=still_image,
    )


def refusal(info: MediaInfo) -> str:
    """The message `check` refuses `info` with, after checking it reads as a sentence and not as Python."""
    with pytest.raises(MediaRefused) as caught:
        check(info)
    message = str(caught.value)
    assert message.strip(), "a refusal must say why"
    assert not PYTHON_REPR.search(message), message
    return message


# -- check ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "info",
    [
        media(),
        media(
            format_name=WEBM, video=VideoStream("vp8", 1280, 720, 30.0, "yuv420p"), audio=AudioStream("opus", 48000, 1)
        ),
        media(format_name="mpegts"),
        media(format_name="avi", audio=None),
        media(format_name="ogg", video=None, audio=AudioStream("vorbis", 44100, 2)),
        media(format_name="mp3", video=None, audio=AudioStream("mp3", 44100, 2)),
        media(format_name="wav", video=None, audio=AudioStream("pcm_s16le", 48000, 1)),
        media(video=VideoStream("h264", 16, 16, 1.0)),
        media(video=VideoStream("h264", 8192, 8192, 240.0)),
        media(duration_s=12 * 3600.0),
        media(duration_s=0.04),
    ],
    ids=[
        "mp4",
        "webm",
        "mpegts",
        "avi without audio",
        "ogg audio",
        "mp3",
        "wav",
        "smallest size",
        "largest size and rate",
        "exactly 12 hours",
        "one frame long",
    ],
)
def test_real_recordings_are_accepted_as_they_are(info: MediaInfo) -> None:
    assert check(info) is info


@pytest.mark.parametrize(
    "demuxer", ["hls", "applehttp", "concat", "image2", "image2pipe", "png_pipe", "tty", "lavfi", "sdp", "dash", "srt"]
)
def test_formats_that_are_not_recordings_are_refused(demuxer: str) -> None:
    message = refusal(media(format_name=demuxer))
    assert "not a video" in message


def test_a_file_of_no_known_format_is_refused_as_unknown() -> None:
    assert "unknown" in refusal(media(format_name=""))


def test_a_container_with_no_streams_is_refused() -> None:
    assert "no video or audio" in refusal(media(video=None, audio=None))


def test_a_picture_is_refused_as_a_picture() -> None:
    still = VideoStream("png", 640, 480, 25.0, "rgb24")
    assert "picture" in refusal(media(format_name=WEBM, video=still, audio=None, still_image=True))


@pytest.mark.parametrize("duration", [None, 0.0, -1.0], ids=["unknown", "zero", "negative"])
def test_a_file_without_a_playable_length_is_refused(duration: float | None) -> None:
    assert "no playable length" in refusal(media(duration_s=duration))


@pytest.mark.parametrize("hours", [12.01, 13.0, 100.0])
def test_a_file_over_twelve_hours_is_refused_naming_the_limit(hours: float) -> None:
    message = refusal(media(duration_s=hours * 3600))
    assert "the limit is 12 hours" in message


def test_a_file_just_over_the_limit_is_not_told_it_lasts_as_long_as_the_limit() -> None:
    message = refusal(media(duration_s=12.4 * 3600))
    assert "lasts 12 hours" not in message


@pytest.mark.parametrize(("width", "height"), [(15, 720), (1280, 8), (8193, 720), (720, 8200), (0, 0)])
def test_a_video_outside_the_size_limits_is_refused_naming_its_size_and_the_limits(width: int, height: int) -> None:
    message = refusal(media(video=VideoStream("h264", width, height, 30.0)))
    assert f"{width}x{height}" in message
    assert "16" in message
    assert "8192" in message


@pytest.mark.parametrize("rate", [0.0, -25.0, 240.5, 1000.0])
def test_a_frame_rate_no_player_can_show_is_refused(rate: float) -> None:
    message = refusal(media(video=VideoStream("h264", 1280, 720, rate)))
    assert "frame rate" in message
    assert f"{rate:g}" in message


def test_an_audio_recording_needs_no_picture_size() -> None:
    voice = media(format_name="mov,mp4,m4a,3gp,3g2,mj2", video=None)
    assert check(voice) is voice


# -- sniff ----------------------------------------------------------------------------------------------------------

PLAYLISTS = {
    "hls": b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n",
    "hls after a BOM": b"\xef\xbb\xbf#EXTM3U\n",
    "hls after a BOM and blank lines": b"\xef\xbb\xbf \r\n\t\n  #EXTM3U\n",
    "hls in lower case": b"#extm3u\n",
    "hls in mixed case": b"#ExtM3u\n#EXTINF:1,\nx.ts\n",
}
CONCAT_LISTS = {
    "ffconcat": b"ffconcat version 1.0\nfile 'secret.mp4'\n",
    "ffconcat in capitals": b"FFCONCAT VERSION 1.0\n",
    "bare file list": b"file '/etc/passwd'\n",
    "double-quoted file list": b'file "/home/me/secret.mp4"\n',
    "file list with no space": b"file'/etc/passwd'\n",
    "file list after whitespace": b"\n\n  file 'a.mp4'\n",
}
DESCRIPTIONS = {
    "sdp": b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=stream\r\nm=video 5004 RTP/AVP 96\r\n",
    "xml": b'<?xml version="1.0" encoding="UTF-8"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">',
    "dash manifest": b'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">',
    "pls playlist": b"[playlist]\nFile1=http://example.com/a.mp3\n",
}


@pytest.mark.parametrize("header", list(PLAYLISTS.values()), ids=list(PLAYLISTS))
def test_sniff_refuses_hls_playlists(header: bytes) -> None:
    with pytest.raises(MediaRefused, match="playlist") as caught:
        sniff(header)
    assert "upload the video itself" in str(caught.value)


@pytest.mark.parametrize("header", list(CONCAT_LISTS.values()), ids=list(CONCAT_LISTS))
def test_sniff_refuses_concat_lists(header: bytes) -> None:
    with pytest.raises(MediaRefused, match="concat list"):
        sniff(header)


@pytest.mark.parametrize("header", list(DESCRIPTIONS.values()), ids=list(DESCRIPTIONS))
def test_sniff_refuses_text_descriptions_of_media(header: bytes) -> None:
    with pytest.raises(MediaRefused, match="not a video"):
        sniff(header)


REAL_HEADERS = {
    "mp4 ftyp box": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00\x00\x00\x08free" + bytes(480),
    "mp4 with a 32-byte ftyp (size byte is a space)": b"\x00\x00\x00 ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64),
    "matroska/webm EBML": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\x82\x84webm",
    "wav RIFF": b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00",
    "avi RIFF": b"RIFF\x00\x10\x00\x00AVI LIST",
    "ogg": b"OggS\x00\x02" + bytes(20),
    "mp3 with ID3": b"ID3\x04\x00\x00\x00\x00\x00\x23TSSE",
    "flv": b"FLV\x01\x05\x00\x00\x00\x09",
    "mpeg-ts": b"\x47\x40\x00\x10" + bytes(184),
    "empty": b"",
}


@pytest.mark.parametrize("header", list(REAL_HEADERS.values()), ids=list(REAL_HEADERS))
def test_sniff_lets_real_media_through(header: bytes) -> None:
    sniff(header)


# -- can_remux ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("video", "audio", "remux"),
    [
        (H264, AAC, True),
        (VideoStream("h264", 1280, 720, 30.0, "yuvj420p"), AAC, True),
        (VideoStream("vp9", 1280, 720, 30.0, "yuv420p"), AudioStream("opus", 48000, 2), True),
        (H264, None, True),
        (None, AAC, True),
        (VideoStream("vp8", 1280, 720, 30.0, "yuv420p"), AudioStream("opus", 48000, 2), False),
        (VideoStream("h264", 1280, 720, 30.0, "yuv444p"), AAC, False),
        (VideoStream("h264", 1280, 720, 30.0, "yuv420p10le"), AAC, False),
        (VideoStream("mpeg4", 1280, 720, 30.0, "yuv420p"), AAC, False),
        (H264, AudioStream("pcm_s16le", 48000, 2), False),
        (None, AudioStream("pcm_s24le", 48000, 2), False),
    ],
    ids=[
        "h264 4:2:0 + aac",
        "h264 full-range 4:2:0",
        "vp9 + opus",
        "h264 without audio",
        "aac audio only",
        "vp8 (MediaRecorder)",
        "h264 4:4:4",
        "h264 10-bit",
        "mpeg-4 part 2",
        "h264 + pcm",
        "pcm audio only",
    ],
)
def test_only_streams_browsers_play_are_remuxed_without_an_encode(
    video: VideoStream | None, audio: AudioStream | None, remux: bool
) -> None:
    assert can_remux(media(video=video, audio=audio)) is remux


# -- VideoStream ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rotation", "shown"), [(0, (1920, 1080)), (90, (1080, 1920)), (180, (1920, 1080)), (270, (1080, 1920))]
)
def test_a_rotated_phone_video_is_shown_at_its_rotated_size(rotation: int, shown: tuple[int, int]) -> None:
    assert VideoStream("h264", 1920, 1080, 30.0, "yuv420p", rotation=rotation).display_size == shown


# -- MediaSet -------------------------------------------------------------------------------------------------------


def full_media_set() -> MediaSet:
    return MediaSet(
        generation="g2",
        duration_ms=61_250,
        width=1080,
        height=1920,
        frame_rate=29.97,
        has_audio=True,
        source_key="recordings/r1/work/g2/source.mkv",
        renditions=["1080p", "720p", "480p"],
        ladder_complete=True,
        pictures=True,
        download=True,
    )


def test_a_media_set_survives_a_trip_through_json() -> None:
    original = full_media_set()
    stored = json.loads(json.dumps(original.to_dict()))
    assert MediaSet.from_dict(stored) == original


def test_a_media_set_with_defaults_round_trips() -> None:
    original = MediaSet(generation="g1", duration_ms=3000)
    assert MediaSet.from_dict(original.to_dict()) == original


@pytest.mark.parametrize("data", [{}, {"generation": ""}, {"generation": None, "duration_ms": 5}])
def test_no_generation_means_no_media_yet(data: dict[str, object]) -> None:
    assert MediaSet.from_dict(data) is None


def test_has_video_is_true_only_with_a_picture_size() -> None:
    assert full_media_set().has_video
    assert not MediaSet(generation="g1", duration_ms=3000, has_audio=True).has_video
