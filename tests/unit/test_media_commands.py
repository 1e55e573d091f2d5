"""ffmpeg command lines, read without running ffmpeg: what each may open, and what the ladder encode produces."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from framecast.adapters.media import commands
from framecast.adapters.media.probe import open_options
from framecast.domain.ladder import Rendition, renditions_for
from framecast.domain.media import AudioStream, MediaInfo, VideoStream

FFMPEG = "ffmpeg"
SOURCE = Path("work") / "raw"
OUT = Path("work") / "out"

# Demuxers that open other files or devices, or read pictures as video: none may ever read an upload.
DANGEROUS_DEMUXERS = {
    "hls",
    "applehttp",
    "concat",
    "image2",
    "image2pipe",
    "png_pipe",
    "jpeg_pipe",
    "tty",
    "lavfi",
    "sdp",
    "rtp",
    "rtsp",
    "dash",
    "webm_dash_manifest",
    "data",
}


def media(
    *,
    rate: float = 29.97,
    size: tuple[int, int] = (1920, 1080),
    duration_s: float | None = 12.3456,
    video: bool = True,
    audio: bool = True,
) -> MediaInfo:
    return MediaInfo(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        duration_s=duration_s,
        size=1,
        video=VideoStream("h264", size[0], size[1], rate, "yuv420p") if video else None,
        audio=AudioStream("aac", 48000, 2) if audio else None,
    )


def inputs(argv: list[str]) -> list[dict[str, str]]:
    """The options in force for each `-i`, keyed by option name, with the input itself under "-i"."""
    found: list[dict[str, str]] = []
    options: dict[str, str] = {}
    for flag, value in itertools.pairwise(argv):
        if flag == "-i":
            found.append({**options, "-i": value})
            options = {}
        elif flag.startswith("-"):
            options[flag] = value
    return found


def outputs(argv: list[str]) -> list[list[str]]:
    """The arguments of each HLS output (from the end of the previous one to its playlist)."""
    start = argv.index("-filter_complex") + 2 if "-filter_complex" in argv else argv.index("-i") + 2
    chunks, current = [], []
    for arg in argv[start:]:
        current.append(arg)
        if arg.endswith(commands.PLAYLIST_NAME):
            chunks.append(current)
            current = []
    assert current == [], f"arguments after the last output: {current}"
    return chunks


def value(chunk: list[str], flag: str) -> str:
    assert chunk.count(flag) == 1, f"{flag} appears {chunk.count(flag)} times in {chunk}"
    return chunk[chunk.index(flag) + 1]


def ladder(info: MediaInfo, renditions: list[Rendition] | None = None, *, screen: bool = False) -> list[str]:
    if renditions is None:
        assert info.video is not None
        renditions = renditions_for(width=info.video.width, height=info.video.height)
    return commands.ladder(FFMPEG, SOURCE, OUT, renditions, info, preset="veryfast", screen=screen, threads=4)


# -- what ffmpeg may open -------------------------------------------------------------------------------------------

READERS_OF_UPLOADS: dict[str, Callable[[], list[str]]] = {
    "remux_hls": lambda: commands.remux_hls(FFMPEG, SOURCE, OUT, media(), threads=2),
    "ladder": lambda: ladder(media()),
    "ladder, audio only": lambda: ladder(media(video=False), [Rendition("audio", 0, 0, 0, 128)]),
    "poster": lambda: commands.poster(FFMPEG, SOURCE, OUT / "p.jpg", start=1.0, height=720, threads=2),
    "frame_at": lambda: commands.frame_at(FFMPEG, SOURCE, OUT / "p.jpg", at=1.0, height=720, threads=2),
    "preview": lambda: commands.preview(
        FFMPEG, SOURCE, OUT / "p.webp", starts=[0.0, 5.0, 10.0, 15.0], clip=0.8, width=320, threads=2
    ),
    "storyboard": lambda: commands.storyboard(
        FFMPEG, SOURCE, OUT / "s.jpg", interval=1.0, tile_width=160, tile_height=90, columns=10, rows=3, threads=2
    ),
    "faststart_mp4": lambda: commands.faststart_mp4(FFMPEG, SOURCE, OUT / "d.mp4", threads=2),
}


@pytest.mark.parametrize("build", list(READERS_OF_UPLOADS.values()), ids=list(READERS_OF_UPLOADS))
def test_every_input_of_an_upload_is_limited_to_local_files_and_real_containers(build: Callable[[], list[str]]) -> None:
    argv = build()
    opened = inputs(argv)
    assert opened, "the command reads nothing"
    assert len(opened) == argv.count("-i")
    for options in opened:
        assert options["-i"] == str(SOURCE)
        assert options.get("-protocol_whitelist") == "file,pipe"
        demuxers = set(options["-format_whitelist"].split(","))
        assert {"mov", "mp4", "matroska", "webm"} <= demuxers
        assert not demuxers & DANGEROUS_DEMUXERS, demuxers & DANGEROUS_DEMUXERS


def test_only_the_join_of_framecasts_own_list_may_use_concat() -> None:
    listing = Path("work") / "segments" / "segments.ffconcat"
    argv = commands.concat_copy(FFMPEG, listing, OUT / "joined.mkv", threads=2)
    [options] = inputs(argv)
    assert options["-i"] == str(listing)
    assert options["-protocol_whitelist"] == "file,pipe"
    demuxers = set(options["-format_whitelist"].split(","))
    assert "concat" in demuxers
    assert not demuxers & (DANGEROUS_DEMUXERS - {"concat"})


def test_the_probe_opens_uploads_with_the_same_limits() -> None:
    options = open_options()
    assert options["protocol_whitelist"] == "file"
    assert not set(options["format_whitelist"].split(",")) & DANGEROUS_DEMUXERS
    assert options["enable_drefs"] == "0"  # QuickTime references to other files are not followed


def test_every_run_is_quiet_and_never_waits_for_a_terminal() -> None:
    argv = commands.remux_hls(FFMPEG, SOURCE, OUT, media(), threads=2)
    assert argv[0] == FFMPEG
    assert "-nostdin" in argv
    assert argv[argv.index("-progress") + 1] == "pipe:1"


# -- the ladder -----------------------------------------------------------------------------------------------------


def test_the_ladder_decodes_the_source_once_and_writes_one_hls_rendition_per_rung() -> None:
    renditions = renditions_for(width=1920, height=1080)
    argv = ladder(media(), renditions)
    assert argv.count("-i") == 1
    assert argv.count("-filter_complex") == 1
    chunks = outputs(argv)
    assert len(chunks) == len(renditions)
    assert [chunk[-1] for chunk in chunks] == [str(OUT / r.name / commands.PLAYLIST_NAME) for r in renditions]
    for chunk in chunks:
        assert value(chunk, "-f") == "hls"
        assert value(chunk, "-hls_segment_type") == "fmp4"


def test_each_rendition_is_scaled_to_its_own_size() -> None:
    renditions = renditions_for(width=1080, height=1920)
    argv = ladder(media(size=(1080, 1920)), renditions)
    graph = {chain.rsplit("[", 1)[1].rstrip("]"): chain for chain in value(argv, "-filter_complex").split(";")}
    for rendition, chunk in zip(renditions, outputs(argv), strict=True):
        label = chunk[chunk.index("-map") + 1]  # the first map of an output is its picture
        chain = graph[label.strip("[]")]
        assert f"scale={rendition.width}:{rendition.height}" in chain
        assert chunk[-1] == str(OUT / rendition.name / commands.PLAYLIST_NAME)
        assert value(chunk, "-b:v") == f"{rendition.video_kbps}k"


@pytest.mark.parametrize(
    ("rate", "fps"), [(29.97, 30), (25.0, 25), (23.976, 24), (59.94, 60), (120.0, 60), (240.0, 60)]
)
def test_keyframes_fall_every_two_seconds_of_output_at_no_more_than_60_fps(rate: float, fps: int) -> None:
    argv = ladder(media(rate=rate))
    assert value(argv, "-filter_complex").startswith(f"[0:V:0]fps={fps},")
    for chunk in outputs(argv):
        assert value(chunk, "-g") == str(2 * fps)
        assert value(chunk, "-keyint_min") == str(2 * fps)
        assert value(chunk, "-sc_threshold") == "0"


def test_every_rendition_ends_where_the_source_does() -> None:
    for chunk in outputs(ladder(media(duration_s=12.3456))):
        assert value(chunk, "-t") == "12.346"


def test_screen_recordings_are_tuned_for_sharp_text() -> None:
    camera = ladder(media())
    screen = ladder(media(), screen=True)
    assert "-tune" not in camera
    for chunk in outputs(screen):
        assert value(chunk, "-tune") == "stillimage"


def test_a_source_with_sound_gets_aac_in_every_rendition_and_one_without_gets_none() -> None:
    for chunk in outputs(ladder(media(audio=True))):
        assert chunk[chunk.index("-map") + 2 : chunk.index("-map") + 4] == ["-map", "0:a:0"]
        assert value(chunk, "-c:a") == "aac"
    silent = ladder(media(audio=False))
    assert "0:a:0" not in silent
    assert "-c:a" not in silent


def test_an_audio_recording_gets_one_aac_rendition_and_no_picture() -> None:
    audio = Rendition("audio", 0, 0, 0, 128)
    argv = ladder(media(video=False, duration_s=61.5), [audio])
    assert "-filter_complex" not in argv
    assert "-c:v" not in argv
    [chunk] = outputs(argv)
    assert value(chunk, "-map") == "0:a:0"
    assert value(chunk, "-c:a") == "aac"
    assert value(chunk, "-b:a") == "128k"
    assert value(chunk, "-t") == "61.500"
    assert chunk[-1] == str(OUT / "audio" / commands.PLAYLIST_NAME)


# -- helpers --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "fps"), [(29.97, 30), (23.976, 24), (14.7, 15), (7.4, 7), (59.94, 60), (60.0, 60), (144.0, 60), (0.3, 1)]
)
def test_variable_and_odd_rates_become_a_whole_constant_rate_of_at_most_60(rate: float, fps: int) -> None:
    assert commands.output_frame_rate(media(rate=rate)) == fps


def test_an_audio_recording_has_a_nominal_rate() -> None:
    assert commands.output_frame_rate(media(video=False)) == 30


def test_a_concat_list_names_each_segment_in_order() -> None:
    text = commands.concat_list(["segment-0000", "segment-0001", "segment 2.webm"])
    assert text == "ffconcat version 1.0\nfile 'segment-0000'\nfile 'segment-0001'\nfile 'segment 2.webm'\n"


@pytest.mark.parametrize(
    "name", ["../secret.mp4", "/etc/passwd", "a/b.mp4", "it's.mp4", "x.mp4'\nfile '/etc/passwd", "two\nlines"]
)
def test_a_concat_list_refuses_anything_but_a_plain_file_name(name: str) -> None:
    with pytest.raises(ValueError, match="not a plain file name"):
        commands.concat_list([name])


def test_a_concat_list_refuses_a_carriage_return() -> None:
    with pytest.raises(ValueError, match="not a plain file name"):
        commands.concat_list(["x.mp4\rfile other.mp4\r#"])


def test_hevc_is_remuxed_with_the_tag_apple_players_want() -> None:
    hevc = MediaInfo(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        duration_s=5.0,
        size=1,
        video=VideoStream("hevc", 1920, 1080, 30.0, "yuv420p"),
    )
    assert "hvc1" in commands.remux_hls(FFMPEG, SOURCE, OUT, hevc, threads=2)
    assert "hvc1" not in commands.remux_hls(FFMPEG, SOURCE, OUT, media(), threads=2)


def test_every_rung_is_encoded_at_the_level_its_codecs_string_names() -> None:
    from framecast.domain.hls import h264_high_codec

    info = media(size=(1920, 1080), rate=10)
    renditions = renditions_for(width=1920, height=1080)
    argv = commands.ladder(FFMPEG, SOURCE, OUT, renditions, info, preset="veryfast", screen=True, threads=2)
    levels = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-level:v"]
    codecs = [h264_high_codec(width=r.width, height=r.height, frame_rate=10) for r in renditions]
    idc = {"3": "1e", "3.1": "1f", "3.2": "20", "4": "28"}
    assert [f"avc1.6400{idc[level]}" for level in levels] == codecs
