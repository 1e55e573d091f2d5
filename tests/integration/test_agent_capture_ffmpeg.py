"""The capture command run by a real ffmpeg: a replayed file (and, where Xvfb exists, a real X screen) becomes one
append-only fragmented MP4 that plays, whether the run reaches the end or is stopped with `q`."""

from __future__ import annotations

import itertools
import os
import re
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import av
import imageio_ffmpeg  # type: ignore[import-untyped]
import pytest

from desktop import require_programs
from framecast.agent.capture import CaptureSpec, Platform, Region, capture_argv

FFMPEG = str(imageio_ffmpeg.get_ffmpeg_exe())
CLIP_SECONDS = 6
GUARD_SECONDS = 60  # only against a hang; nothing here is timed
STOP_AFTER_SECONDS = 2.5


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six seconds of test pattern (640x360, 30 fps) and tone, H.264 and AAC in an ordinary MP4."""
    target = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=s=640x360:r=30:d={CLIP_SECONDS}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={CLIP_SECONDS}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(target),
        ],
        check=True,
        timeout=GUARD_SECONDS,
    )  # fmt: skip
    return target


def capture(spec: CaptureSpec, output: Path) -> None:
    argv = capture_argv(spec, output=output, platform=Platform.LINUX, ffmpeg=FFMPEG)
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=GUARD_SECONDS, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def capture_then_quit(spec: CaptureSpec, output: Path) -> list[bytes]:
    """Run the capture, press `q` after a while as the recorder does; returns what the file held along the way."""
    argv = capture_argv(spec, output=output, platform=Platform.LINUX, ffmpeg=FFMPEG)
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: list[bytes] = []
    deadline = time.monotonic() + STOP_AFTER_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.25)
        if output.exists():
            seen.append(output.read_bytes())
    _, stderr = process.communicate(b"q", timeout=GUARD_SECONDS)
    assert process.returncode == 0, stderr.decode(errors="replace")
    return seen


def top_level_boxes(path: Path) -> list[str]:
    """The types of the file's top-level MP4 boxes, checking that they tile the file exactly."""
    data = path.read_bytes()
    kinds, at = [], 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1:  # a 64-bit size follows the type
            (size,) = struct.unpack(">Q", data[at + 8 : at + 16])
            header = 16
        elif size == 0:  # the box runs to the end of the file
            size = len(data) - at
        assert size >= header, f"box {kind!r} at {at} is shorter than its header"
        assert at + size <= len(data), f"box {kind!r} at {at} runs past the end of the file"
        kinds.append(kind.decode("latin-1"))
        at += size
    return kinds


def assert_append_only_fragments(path: Path, *, at_least: int) -> None:
    kinds = " ".join(top_level_boxes(path))
    assert re.fullmatch(r"ftyp moov( moof mdat)+( mfra)?", kinds), kinds
    assert kinds.count("moof") >= at_least, kinds


def probe(path: Path) -> tuple[list[str], list[str], float]:
    """Video codecs, audio codecs and the duration in seconds, as a player sees them."""
    with av.open(str(path)) as container:
        video = [stream.codec_context.name for stream in container.streams.video]
        audio = [stream.codec_context.name for stream in container.streams.audio]
        assert container.duration is not None
        return video, audio, container.duration / 1_000_000


def keyframe_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            float(packet.pts * stream.time_base)
            for packet in container.demux(stream)
            if packet.is_keyframe and packet.pts is not None
        ]


def test_a_replayed_file_becomes_fragments_of_two_seconds(clip: Path, tmp_path: Path) -> None:
    output = tmp_path / "run.mp4"
    capture(CaptureSpec(source=clip, source_speed=0), output)
    assert_append_only_fragments(output, at_least=3)
    video, audio, seconds = probe(output)
    assert (video, audio) == (["h264"], ["aac"])
    assert seconds == pytest.approx(CLIP_SECONDS, abs=0.3)
    # The clip's audio opens with 21 ms of AAC priming, which shifts its video by that much: hence the tolerance.
    keyframes = keyframe_times(output)
    assert [b - a for a, b in itertools.pairwise(keyframes)] == pytest.approx([2.0, 2.0], abs=0.05)


def test_a_resumed_replay_starts_at_its_offset(clip: Path, tmp_path: Path) -> None:
    output = tmp_path / "run.mp4"
    capture(CaptureSpec(source=clip, source_speed=0, source_offset_s=3), output)
    assert_append_only_fragments(output, at_least=2)
    _, _, seconds = probe(output)
    assert seconds == pytest.approx(CLIP_SECONDS - 3, abs=0.3)


def test_q_on_stdin_ends_the_run_in_a_playable_file_that_only_grew(clip: Path, tmp_path: Path) -> None:
    output = tmp_path / "run.mp4"
    seen = capture_then_quit(CaptureSpec(source=clip, source_speed=1.0), output)
    assert_append_only_fragments(output, at_least=1)
    final = output.read_bytes()
    assert any(seen), "ffmpeg wrote nothing while it ran"
    assert all(final.startswith(earlier) for earlier in seen), "bytes already written were rewritten"
    video, audio, seconds = probe(output)
    assert (video, audio) == (["h264"], ["aac"])
    # Real time, plus the half second ffmpeg reads ahead before pacing itself.
    assert 1.5 <= seconds <= STOP_AFTER_SECONDS + 1.0


@pytest.fixture
def x_display() -> Iterator[str]:
    """A virtual X screen of 1280x720 on a free display number."""
    require_programs("Xvfb")  # skips locally, fails under CI
    read, write = os.pipe()
    argv = ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x720x24", "-nolisten", "tcp"]
    server = subprocess.Popen(argv, pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()  # Xvfb writes the number once it accepts clients; EOF if it died
    try:
        if not number:
            pytest.fail("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=GUARD_SECONDS)


@pytest.mark.parametrize(("region", "size"), [(None, (1280, 720)), (Region.parse("640x360+32+16"), (640, 360))])
def test_an_x_screen_is_captured_until_q(
    x_display: str, tmp_path: Path, region: Region | None, size: tuple[int, int]
) -> None:
    output = tmp_path / "screen.mp4"
    capture_then_quit(CaptureSpec(screen=True, display=x_display, region=region), output)
    assert_append_only_fragments(output, at_least=1)
    with av.open(str(output)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", *size)
        assert not container.streams.audio
