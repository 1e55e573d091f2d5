"""FFmpegTools on the real ffmpeg and tiny generated clips: what a probe finds, what is refused even when the checks
before ffmpeg are skipped, and that no ffmpeg outlives its timeout or its cancelled job."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import av
import psutil
import pytest

import media_clips
from framecast.adapters.media import commands
from framecast.adapters.media.ffmpeg import FFmpegTools, MediaToolError, _run, locate_ffmpeg
from framecast.domain.ladder import renditions_for
from framecast.domain.media import MediaInfo, MediaRefused, VideoStream, can_remux, check

pytestmark = pytest.mark.anyio
GUARD_SECONDS = 30.0  # only against a hang; nothing here is timed


@pytest.fixture
def tools() -> FFmpegTools:
    return FFmpegTools(binary=locate_ffmpeg(), threads=2)


def no_progress(_: float) -> None:
    pass


def ffmpeg_children(binary: str) -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if child.cmdline()[:1] == [binary]:
                found.append(child)
    return found


async def first_ffmpeg_child(binary: str) -> psutil.Process:
    while True:  # a process starting is not an event this process can wait on: poll for it
        if children := ffmpeg_children(binary):
            return children[0]
        await anyio.sleep(0.01)


def gone(pid: int) -> bool:
    """True once the process has exited and been reaped (a zombie still counts as there)."""
    return not psutil.pid_exists(pid)


def open_fifo(path: Path) -> int:
    """A named pipe at `path` and a non-blocking write end: ffmpeg reads the pipe as it would a file, and gets to
    the end only when the test closes the returned descriptor, so the test decides how fast the upload arrives."""
    os.mkfifo(path)
    return os.open(path, os.O_RDWR | os.O_NONBLOCK)  # read-write: opening never blocks waiting for a reader


async def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:  # the pipe is full until ffmpeg reads
            await anyio.sleep(0.01)


# -- probe ----------------------------------------------------------------------------------------------------------


async def test_probe_reads_an_h264_aac_mp4(tools: FFmpegTools, tmp_path: Path) -> None:
    clip = media_clips.video(tmp_path / "talk.mp4", size="320x180", seconds=3.0)
    info = await tools.probe(clip)
    assert "mp4" in info.format_name.split(",")
    assert info.video is not None
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 320, 180)
    assert info.video.frame_rate == pytest.approx(30.0)
    assert info.video.pixel_format == "yuv420p"
    assert info.video.display_size == (320, 180)
    assert info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate) == ("aac", 48000)
    assert info.duration_s == pytest.approx(3.0, abs=0.05)
    assert info.size == clip.stat().st_size
    assert check(info) is info
    assert can_remux(info)


async def test_probe_finds_the_length_of_a_media_recorder_webm_whose_header_has_none(
    tools: FFmpegTools, tmp_path: Path
) -> None:
    clip = media_clips.media_recorder_webm(tmp_path / "browser.webm", seconds=3.0)
    with av.open(str(clip)) as container:
        assert container.duration is None, "the clip must look like MediaRecorder's for this test to mean anything"
    info = await tools.probe(clip)
    assert info.format_name == "matroska,webm"
    assert info.duration_s == pytest.approx(3.0, abs=0.05)
    assert info.video is not None
    assert info.video.codec == "vp8"
    assert info.audio is not None
    assert info.audio.codec == "opus"
    assert check(info) is info
    assert not can_remux(info)


async def test_probe_sees_a_phone_video_stored_sideways_as_portrait(tools: FFmpegTools, tmp_path: Path) -> None:
    stored = media_clips.video(tmp_path / "landscape.mp4", size="320x180", seconds=1.0)
    phone = tmp_path / "phone.mp4"
    media_clips._ffmpeg(["-display_rotation", "90", "-i", str(stored), "-c", "copy", str(phone)])
    info = await tools.probe(phone)
    assert info.video is not None
    assert (info.video.width, info.video.height) == (320, 180)
    assert info.video.rotation in (90, 270)
    assert info.video.display_size == (180, 320)


@pytest.mark.parametrize(
    "content",
    [
        lambda d: b"Meeting notes\nnothing to see here\n" * 20,
        lambda d: media_clips.video(d / "whole.mp4").read_bytes()[:5000],
        lambda d: b"",
        lambda d: b"#EXTM3U\n#EXTINF:3,\nwhole.mp4\n#EXT-X-ENDLIST\n",
    ],
    ids=["text file", "truncated mp4", "empty file", "hls playlist"],
)
async def test_probe_refuses_what_is_not_a_whole_video(
    tools: FFmpegTools, tmp_path: Path, content: Callable[[Path], bytes]
) -> None:
    upload = tmp_path / "upload.mp4"
    upload.write_bytes(content(tmp_path))
    with pytest.raises(MediaRefused) as caught:
        await tools.probe(upload)
    assert "Traceback" not in str(caught.value)
    assert "video" in str(caught.value)


# -- defence in depth: the whitelists hold with sniff and probe skipped ------------------------------------------------

REFERENCING_FILES = {
    "hls playlist": ("upload.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:2,\nsecret.mp4\n#EXT-X-ENDLIST\n"),
    "ffconcat list": ("upload.ffconcat", "ffconcat version 1.0\nfile 'secret.mp4'\n"),
}
FOOLED_PROBE = MediaInfo(
    format_name="mov,mp4,m4a,3gp,3g2,mj2", duration_s=2.0, size=100, video=VideoStream("h264", 320, 180, 30.0)
)


@pytest.mark.parametrize("case", list(REFERENCING_FILES))
async def test_remux_refuses_a_file_that_points_at_another_and_writes_nothing(
    tools: FFmpegTools, tmp_path: Path, case: str
) -> None:
    media_clips.video(tmp_path / "secret.mp4", seconds=2.0)
    name, text = REFERENCING_FILES[case]
    upload = tmp_path / name
    upload.write_text(text)

    # The attack is real: without the demuxer whitelist ffmpeg follows the reference and packages the other file.
    unguarded = tmp_path / "unguarded"
    unguarded.mkdir()
    argv = commands.remux_hls(tools.binary, upload, unguarded, FOOLED_PROBE, threads=2)
    at = argv.index("-format_whitelist")
    code, _, _ = await _run([*argv[:at], *argv[at + 2 :]], timeout=GUARD_SECONDS)
    assert code == 0
    assert list(unguarded.glob("*.m4s"))

    folder = tmp_path / "play"
    with pytest.raises(MediaRefused):
        await tools.remux_hls(upload, folder, FOOLED_PROBE, progress=no_progress)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("case", list(REFERENCING_FILES))
async def test_the_probe_process_itself_refuses_a_file_that_points_at_another(tmp_path: Path, case: str) -> None:
    media_clips.video(tmp_path / "secret.mp4", seconds=2.0)
    name, text = REFERENCING_FILES[case]
    upload = tmp_path / name
    upload.write_text(text)
    code, out, _ = await _run([sys.executable, "-m", "framecast.adapters.media.probe", str(upload)], timeout=60)
    assert code == 2
    assert '"error"' in out
    assert "h264" not in out


async def test_remux_repackages_a_real_video_without_an_encode(tools: FFmpegTools, tmp_path: Path) -> None:
    clip = media_clips.video(tmp_path / "talk.mp4", seconds=5.0)
    info = await tools.probe(clip)
    folder = tmp_path / "play"
    await tools.remux_hls(clip, folder, info, progress=no_progress)
    playlist = (folder / commands.PLAYLIST_NAME).read_text()
    assert "#EXT-X-ENDLIST" in playlist
    assert (folder / "init.mp4").stat().st_size > 0
    assert len(list(folder.glob("*.m4s"))) >= 2


# -- no ffmpeg outlives its run -------------------------------------------------------------------------------------


async def test_a_run_that_outlives_its_timeout_is_stopped_and_its_process_is_gone(tools: FFmpegTools) -> None:
    endless = [tools.binary, "-hide_banner", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=s=64x64:r=10"]
    seen: set[int] = set()

    async def watch() -> None:
        while True:
            seen.update(child.pid for child in ffmpeg_children(tools.binary))
            await anyio.sleep(0.01)

    with anyio.fail_after(GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            with pytest.raises(MediaToolError, match="took longer than 1 s and was stopped"):
                await _run([*endless, "-f", "null", "-"], timeout=0.5)
            tg.cancel_scope.cancel()
    assert seen, "ffmpeg never started"
    assert all(gone(pid) for pid in seen)


async def test_cancelling_an_encode_kills_its_ffmpeg(tools: FFmpegTools, tmp_path: Path) -> None:
    clip = media_clips.video(tmp_path / "clip.mkv", seconds=4.0)
    info = await tools.probe(clip)
    data = clip.read_bytes()
    source = tmp_path / "upload.mkv"
    fd = open_fifo(source)
    encoding = anyio.Event()
    renditions = renditions_for(width=320, height=180)
    encode = asyncio.create_task(
        tools.encode_hls(source, tmp_path / "out", renditions, info, screen=False, progress=lambda _: encoding.set())
    )
    try:
        with anyio.fail_after(GUARD_SECONDS):
            child = await first_ffmpeg_child(tools.binary)
            await write_all(fd, data[: len(data) // 2])  # the rest never arrives: ffmpeg would wait for ever
            await encoding.wait()  # well into the encode: it has reported progress
            encode.cancel()
            with pytest.raises(asyncio.CancelledError):
                await encode
        assert gone(child.pid)
        assert ffmpeg_children(tools.binary) == []
    finally:
        encode.cancel()  # a no-op once the test has cancelled it; otherwise the guard fired
        with contextlib.suppress(asyncio.CancelledError):
            await encode
        os.close(fd)


async def test_encode_progress_rises_from_near_nothing_to_done(tools: FFmpegTools, tmp_path: Path) -> None:
    clip = media_clips.video(tmp_path / "clip.mkv", seconds=20.0)
    info = await tools.probe(clip)
    data = clip.read_bytes()
    source = tmp_path / "upload.mkv"
    fd = open_fifo(source)

    async def arrive_slowly() -> None:
        try:
            head = len(data) // 20
            await write_all(fd, data[:head])
            await anyio.sleep(1.2)  # ffmpeg reports every half second: its first report sees 5 % of the upload
            step = -(-(len(data) - head) // 10)
            for start in range(head, len(data), step):
                await write_all(fd, data[start : start + step])
                await anyio.sleep(0.1)
        finally:
            os.close(fd)

    reported: list[float] = []
    root = tmp_path / "out"
    renditions = renditions_for(width=320, height=180)
    with anyio.fail_after(GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            tg.start_soon(arrive_slowly)
            await tools.encode_hls(source, root, renditions, info, screen=False, progress=reported.append)
    assert len(reported) >= 3, reported
    assert reported == sorted(reported), reported
    assert reported[0] < 15, reported
    assert reported[-1] >= 99, reported
    assert all(0 <= p < 100 for p in reported), reported
    assert "#EXT-X-ENDLIST" in (root / renditions[0].name / commands.PLAYLIST_NAME).read_text()
