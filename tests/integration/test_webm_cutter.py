"""The browser recorder's WebM cutter (frontend/src/recorder/webm.ts), run with node on WebM made by ffmpeg.

Firefox records WebM, and it goes up as live segments the server transcodes one by one: a header, then segments of
whole Clusters of about two seconds, each after the first starting on a video keyframe. Whatever pieces the stream
arrives in, the header and segments must be the recorded bytes, cut only where a segment can be played on its own.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import imageio_ffmpeg  # type: ignore[import-untyped]
import pytest

from conftest import run_recorder_script

SEGMENT = 0x18538067
CLUSTER = 0x1F43B675
CUES = 0x1C53BB6B
INFO = 0x1549A966
TIMECODE_SCALE = 0x2AD7B1
TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
TRACK_TYPE = 0x83
TIMECODE = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
REFERENCE_BLOCK = 0xFB
SEGMENT_CHILDREN = {CLUSTER, CUES, 0x1254C367, 0x114D9B74, INFO, TRACKS, 0x1043A770, 0x1941A469}
UNKNOWN_SIZE = bytes([0x01]) + bytes([0xFF]) * 7  # as MediaRecorder writes the Segment's and each Cluster's size
MIN_SECONDS = 1.8


# -- a little EBML, to check what the cutter made ------------------------------------------------------------------


class Element(NamedTuple):
    id: int
    start: int
    body: int
    end: int


def header(data: bytes, at: int) -> tuple[int, int, int | None]:
    """The element at `at`: its ID, where its body starts and its size (None: unknown)."""
    id_length = 9 - data[at].bit_length()
    size_length = 9 - data[at + id_length].bit_length()
    body = at + id_length + size_length
    size = int.from_bytes(data[at + id_length : body]) & ((1 << (7 * size_length)) - 1)
    return int.from_bytes(data[at : at + id_length]), body, None if size == (1 << (7 * size_length)) - 1 else size


def elements(data: bytes, start: int, end: int) -> Iterator[Element]:
    """The elements from `start` to `end`; an unknown-size Cluster ends where a Segment child starts."""
    at = start
    while at < end:
        element, body, size = header(data, at)
        if size is not None:
            stop = body + size
        elif element != CLUSTER:
            stop = end
        else:
            stop = body
            while stop < end and header(data, stop)[0] not in SEGMENT_CHILDREN:
                _, child_body, child_size = header(data, stop)
                stop = child_body + (child_size or 0)
        yield Element(element, at, body, stop)
        at = stop


def children(data: bytes, parent: Element, wanted: int) -> list[Element]:
    return [child for child in elements(data, parent.body, min(parent.end, len(data))) if child.id == wanted]


def uint(data: bytes, element: Element) -> int:
    return int.from_bytes(data[element.body : element.end])


def segment_of(data: bytes) -> Element:
    return next(element for element in elements(data, 0, len(data)) if element.id == SEGMENT)


def read_header(init: bytes) -> tuple[int | None, int]:
    """The video track's number (None without video) and the timecode scale, from the header."""
    segment = segment_of(init)
    scale = [
        uint(init, field) for info in children(init, segment, INFO) for field in children(init, info, TIMECODE_SCALE)
    ]
    for tracks in children(init, segment, TRACKS):
        for entry in children(init, tracks, TRACK_ENTRY):
            fields = {field.id: uint(init, field) for field in elements(init, entry.body, entry.end)}
            if fields.get(TRACK_TYPE) == 1:
                return fields[TRACK_NUMBER], next(iter(scale), 1_000_000)
    return None, next(iter(scale), 1_000_000)


class ClusterInfo(NamedTuple):
    timecode: int
    #: whether its first video block (its first block, without video) is a keyframe; None: it has no such block
    starts_on_keyframe: bool | None


def cluster_info(data: bytes, cluster: Element, video: int | None) -> ClusterInfo:
    timecode = 0
    for child in elements(data, cluster.body, cluster.end):
        if child.id == TIMECODE:
            timecode = uint(data, child)
        elif child.id in (SIMPLE_BLOCK, BLOCK_GROUP):
            block = child if child.id == SIMPLE_BLOCK else children(data, child, BLOCK)[0]
            track_length = 9 - data[block.body].bit_length()
            track = int.from_bytes(data[block.body : block.body + track_length]) & ((1 << (7 * track_length)) - 1)
            if video is None or track == video:
                if child.id == SIMPLE_BLOCK:
                    return ClusterInfo(timecode, bool(data[block.body + track_length + 2] & 0x80))
                return ClusterInfo(timecode, not children(data, child, REFERENCE_BLOCK))
    return ClusterInfo(timecode, None)


def vint(value: int) -> bytes:
    return ((1 << 56) | value).to_bytes(8)


def element_id(element: int) -> bytes:
    return element.to_bytes((element.bit_length() + 7) // 8)


VIDEO_TRACK = 1  # ffmpeg numbers its tracks in the order they are mapped


def as_media_recorder(data: bytes, *, block_groups: bool = False, audio_clusters: bool = False) -> bytes:
    """The same WebM as MediaRecorder writes it: the Segment and every Cluster of unknown size, no Cues.

    With `block_groups`, each video SimpleBlock becomes a BlockGroup (a ReferenceBlock marking the ones that are not
    keyframes), as other muxers write them. With `audio_clusters`, the audio blocks a Cluster starts with go into a
    Cluster of their own (with the same Timecode), as Chromium writes when the picture stands still."""
    out = bytearray()
    for top in elements(data, 0, len(data)):
        if top.id != SEGMENT:
            out += data[top.start : top.end]
            continue
        out += element_id(SEGMENT) + UNKNOWN_SIZE
        for child in elements(data, top.body, top.end):
            if child.id == CUES:
                continue
            if child.id != CLUSTER:
                out += data[child.start : child.end]
                continue
            out += element_id(CLUSTER) + UNKNOWN_SIZE
            video_yet = False
            for part in elements(data, child.body, child.end):
                block = data[part.body : part.end]
                video = part.id == SIMPLE_BLOCK and block[0] == 0x80 | VIDEO_TRACK
                if audio_clusters and video and not video_yet:
                    timecode = children(data, child, TIMECODE)[0]
                    out += element_id(CLUSTER) + UNKNOWN_SIZE + data[timecode.start : timecode.end]
                video_yet = video_yet or video
                if not (block_groups and video):
                    out += data[part.start : part.end]
                    continue
                inner = element_id(BLOCK) + vint(len(block)) + block[:3] + bytes([block[3] & 0x7F]) + block[4:]
                if not block[3] & 0x80:
                    inner += element_id(REFERENCE_BLOCK) + vint(1) + b"\xff"  # the frame before
                out += element_id(BLOCK_GROUP) + vint(len(inner)) + inner
    return bytes(out)


# -- the files ------------------------------------------------------------------------------------------------------


def ffmpeg(target: Path, *args: str) -> Path:
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args, str(target)]
    subprocess.run(command, check=True, timeout=60)
    return target


PATTERN = ("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000")
# -live 1 writes no Cues, but still gives every Cluster its size.
LIVE = ("-c:a", "libopus", "-f", "webm", "-live", "1")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """WebM files by name, the video ones with Clusters that start on frames that are not keyframes."""
    folder = tmp_path_factory.mktemp("webm")
    vp8 = ffmpeg(
        folder / "vp8-known-sizes.webm",
        *PATTERN, "-t", "7", "-c:v", "libvpx", "-b:v", "200k", "-g", "30", "-deadline", "good", "-cpu-used", "5",
        *LIVE, "-cluster_time_limit", "1000",
    )  # fmt: skip
    vp9 = ffmpeg(
        folder / "vp9-source.webm",
        *PATTERN, "-t", "7", "-c:v", "libvpx-vp9", "-b:v", "200k", "-g", "45", "-deadline", "realtime",
        "-cpu-used", "8", *LIVE, "-cluster_time_limit", "500",
    )  # fmt: skip
    audio = ffmpeg(folder / "audio-source.webm", *PATTERN[4:], "-t", "5", *LIVE, "-cluster_time_limit", "500")
    made = {"vp8 known sizes": vp8}
    for name, source, options in (
        ("vp8 as MediaRecorder", vp8, {}),
        ("vp8 in BlockGroups", vp8, {"block_groups": True}),
        ("vp8 with audio-only Clusters", vp8, {"audio_clusters": True}),
        ("vp9 as MediaRecorder, keyframes every 1.5 s", vp9, {}),
        ("audio only", audio, {}),
    ):
        made[name] = folder / f"{name.split(',')[0].replace(' ', '-')}.webm"
        made[name].write_bytes(as_media_recorder(source.read_bytes(), **options))
    return made


def cut(node: str, path: Path, *args: str) -> list[dict[str, Any]]:
    return run_recorder_script(node, "recorder_webm.mjs", path, *args)


# -- the tests ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "vp8 known sizes",
        "vp8 as MediaRecorder",
        "vp8 in BlockGroups",
        "vp8 with audio-only Clusters",
        "vp9 as MediaRecorder, keyframes every 1.5 s",
        "audio only",
    ],
)
@pytest.mark.parametrize(("seed", "max_piece"), [("1", "70000"), ("2", "300")], ids=["large pieces", "small pieces"])
def test_the_stream_is_cut_into_a_header_and_segments_of_whole_clusters_starting_on_keyframes(
    node: str, clips: dict[str, Path], tmp_path: Path, name: str, seed: str, max_piece: str
) -> None:
    """The header is everything before the first Cluster; each segment is whole Clusters, ends at the first Cluster
    after 1.8 s that starts on a video keyframe (any Cluster, without video), and says how long it plays."""
    data = clips[name].read_bytes()
    events = cut(node, clips[name], "--seed", seed, "--max-piece", max_piece, "--out", str(tmp_path))
    assert events[0]["event"] == "init", events
    assert events[-1] == {"event": "end"}, events
    segments = events[1:-1]
    assert [event["index"] for event in segments] == list(range(len(segments)))
    init = (tmp_path / "init.webm").read_bytes()
    bodies = [(tmp_path / f"{index:05d}.webm").read_bytes() for index in range(len(segments))]
    assert init + b"".join(bodies) == data
    assert [len(body) for body in bodies] == [event["size"] for event in segments]

    video, scale = read_header(init)
    assert (video is None) == (name == "audio only")
    assert children(init, segment_of(init), CLUSTER) == []
    starts: list[int] = []
    for index, body in enumerate(bodies):
        clusters = list(elements(body, 0, len(body)))
        assert {cluster.id for cluster in clusters} == {CLUSTER}, f"segment {index} holds more than Clusters"
        info = [cluster_info(body, cluster, video) for cluster in clusters]
        starts.append(info[0].timecode)
        if index > 0:
            assert info[0].starts_on_keyframe, f"segment {index} does not start on a keyframe"
        # It ends at the first Cluster it could: none inside it could start a segment 1.8 s after its own start.
        for inner in info[1:]:
            assert not (inner.starts_on_keyframe and (inner.timecode - info[0].timecode) * scale / 1e9 >= MIN_SECONDS)
    for index, event in enumerate(segments[:-1]):
        lasts = (starts[index + 1] - starts[index]) * scale / 1e9
        assert lasts >= MIN_SECONDS, segments
        assert event["seconds"] == pytest.approx(lasts)
    assert len(segments) >= 3, segments


@pytest.mark.parametrize("name", ["vp8 as MediaRecorder", "audio only"])
def test_a_stream_in_one_byte_pieces_is_cut_the_same(node: str, clips: dict[str, Path], name: str) -> None:
    """MediaRecorder's chunks split elements anywhere, even inside an ID or a size."""
    assert cut(node, clips[name], "--max-piece", "1") == cut(node, clips[name], "--max-piece", "5000000")


def test_bytes_that_are_not_webm_are_refused_before_anything_is_cut(node: str, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.webm"
    garbage.write_bytes(random.Random(7).randbytes(50_000))
    [event] = cut(node, garbage)
    assert event["event"] == "error", event
    assert event["name"] == "WebmError"


def test_a_stream_cut_short_is_refused(node: str, clips: dict[str, Path], tmp_path: Path) -> None:
    """One that ends inside a block, and one that ends before its first Cluster (nothing to play)."""
    data = clips["vp8 as MediaRecorder"].read_bytes()
    clusters = children(data, segment_of(data), CLUSTER)
    last_block = children(data, clusters[-1], SIMPLE_BLOCK)[-1]
    for size in (last_block.body + 5, clusters[0].start):
        short = tmp_path / f"short-{size}.webm"
        short.write_bytes(data[:size])
        events = cut(node, short)
        assert events[-1]["event"] == "error", events
        assert events[-1]["name"] == "WebmError"
