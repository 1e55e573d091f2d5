"""The live playlist's rules (domain/live.py) and the fMP4 checks each segment passes (domain/fmp4.py)."""

from __future__ import annotations

import itertools
import struct

import pytest

from framecast.domain import fmp4
from framecast.domain.live import (
    Gap,
    LiveRun,
    LiveSegment,
    LiveStream,
    SegmentConflict,
    media_playlist,
)
from media_clips import fragmented, split_fragments


def run(number: int, segments: list[int], ended: int | None = None, duration: float = 2.0) -> LiveRun:
    described = LiveRun(run=number, init_sha256=f"init{number}", init_size=900, codecs="avc1.64001f", ended=ended)
    for index in segments:
        described.segments[index] = LiveSegment(number, index, 1000, f"{number}-{index}", duration)
    return described


def uris(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def test_the_playlist_lists_each_run_up_to_its_first_gap_and_grows_when_the_gap_is_filled() -> None:
    stream = LiveStream(runs={1: run(1, [0, 1, 3])})
    assert uris(media_playlist(stream, ended=False)) == ["r0001/00000.m4s", "r0001/00001.m4s"]
    stream.runs[1].segments[2] = LiveSegment(1, 2, 1000, "1-2", 2.0)
    assert uris(media_playlist(stream, ended=False))[-2:] == ["r0001/00002.m4s", "r0001/00003.m4s"]


def test_a_later_run_appears_only_after_every_run_before_it_is_ended_and_whole() -> None:
    stream = LiveStream(runs={1: run(1, [0, 1]), 2: run(2, [0])})
    assert len(uris(media_playlist(stream, ended=False))) == 2  # run 1 may still grow
    stream.runs[1].end(3)
    assert len(uris(media_playlist(stream, ended=False))) == 2  # run 1's segment 2 is missing
    assert stream.missing() == [Gap(1, 2)]
    stream.runs[1].segments[2] = LiveSegment(1, 2, 1000, "1-2", 2.0)
    playlist = media_playlist(stream, ended=False)
    assert uris(playlist)[-1] == "r0002/00000.m4s"
    # A pause is a discontinuity, and the next run brings its own init segment.
    tail = playlist.split("r0001/00002.m4s\n", 1)[1]
    assert tail.startswith('#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="r0002/init.mp4"\n')


def test_a_missing_run_holds_back_every_run_after_it() -> None:
    stream = LiveStream(runs={1: run(1, [0], ended=1), 3: run(3, [0], ended=1)})
    assert uris(media_playlist(stream, ended=False)) == ["r0001/00000.m4s"]
    stream.declare(3)
    assert stream.missing() == [Gap(2, None)]
    assert not stream.complete


def test_complete_when_every_declared_run_is_whole_and_the_playlist_then_ends() -> None:
    stream = LiveStream(runs={1: run(1, [0, 1], ended=2), 2: run(2, [0], ended=1, duration=1.5)})
    assert not stream.complete  # nothing declared yet
    stream.declare(2)
    assert stream.complete
    assert stream.duration_s() == pytest.approx(5.5)
    playlist = media_playlist(stream, ended=True)
    assert playlist.endswith("#EXT-X-ENDLIST\n")
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in playlist
    assert "#EXTINF:1.500," in playlist


def test_an_empty_run_is_skipped_and_a_recording_of_nothing_is_never_complete() -> None:
    stream = LiveStream(runs={1: run(1, [0], ended=1), 2: run(2, [], ended=0), 3: run(3, [0], ended=1)})
    stream.declare(3)
    assert stream.complete
    assert media_playlist(stream, ended=True).count("#EXT-X-DISCONTINUITY\n") == 1
    empty = LiveStream(runs={1: run(1, [], ended=0)})
    empty.declare(1)
    assert not empty.complete


def test_duplicates_are_idempotent_and_conflicting_bytes_or_counts_are_refused() -> None:
    described = run(1, [0, 1])
    assert described.admit(0, "1-0") is False  # the same bytes again
    with pytest.raises(SegmentConflict):
        described.admit(0, "other bytes")
    assert described.admit(2, "1-2") is True
    with pytest.raises(SegmentConflict):
        described.end(1)  # segment 1 is stored: the run has at least 2
    assert described.end(2) is True
    assert described.end(2) is False
    with pytest.raises(SegmentConflict):
        described.end(3)
    with pytest.raises(SegmentConflict):
        described.admit(2, "1-2")  # past the declared end
    stream = LiveStream(runs={1: described, 2: run(2, [0])})
    with pytest.raises(SegmentConflict):
        stream.declare(1)  # run 2 has segments


def test_the_target_duration_covers_the_longest_segment() -> None:
    stream = LiveStream(runs={1: run(1, [0], duration=4.6)})
    assert "#EXT-X-TARGETDURATION:5\n" in media_playlist(stream, ended=False)
    short = LiveStream(runs={1: run(1, [0], duration=1.0)})
    assert "#EXT-X-TARGETDURATION:2\n" in media_playlist(short, ended=False)


# -- fMP4 -------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[bytes]]:
    return split_fragments(fragmented(tmp_path_factory.mktemp("fmp4") / "clip.mp4", seconds=5, size="320x180"))


def test_an_init_segment_names_its_tracks_and_codecs(clip: tuple[bytes, list[bytes]]) -> None:
    init = fmp4.parse_init(clip[0])
    assert init.video is not None
    assert (init.video.width, init.video.height) == (320, 180)
    assert init.codecs.startswith("avc1.")
    assert init.codecs.endswith(",mp4a.40.2")


def test_each_segment_is_measured_from_its_samples(clip: tuple[bytes, list[bytes]]) -> None:
    init = fmp4.parse_init(clip[0])
    measured = [fmp4.parse_segment(segment, init) for segment in clip[1]]
    assert all(m.starts_with_keyframe for m in measured)
    assert sum(m.duration_s for m in measured) == pytest.approx(5.0, abs=0.1)
    for before, after in itertools.pairwise(measured):
        assert after.start_s == pytest.approx(before.start_s + before.duration_s, abs=0.05)


def test_broken_segments_are_refused_with_a_reason(clip: tuple[bytes, list[bytes]]) -> None:
    init_bytes, segments = clip
    init = fmp4.parse_init(init_bytes)
    segment = segments[1]
    mdat_at = segment.index(b"mdat") - 4
    # The mdat is 100 bytes short of what the moof's samples need.
    (size,) = struct.unpack(">I", segment[mdat_at : mdat_at + 4])
    shrunk = segment[:mdat_at] + struct.pack(">I", size - 100) + segment[mdat_at + 4 : len(segment) - 100]
    cases = {
        "cut off": segment[:-10],
        "samples outside the mdat": shrunk,
        "moof without mdat": segment[:mdat_at],
        "an init segment": init_bytes,
        "not MP4": b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
        "empty": b"",
    }
    for name, body in cases.items():
        with pytest.raises(fmp4.BadSegment):  # noqa: PT012 (the name says which case was accepted)
            fmp4.parse_segment(body, init)
            pytest.fail(f"{name} was accepted")
    with pytest.raises(fmp4.BadSegment):
        fmp4.parse_init(segment)
    with pytest.raises(fmp4.BadSegment):
        fmp4.parse_init(b"\0\0\0\x08ftyp")


def test_a_segment_of_a_track_the_init_segment_does_not_declare_is_refused(clip: tuple[bytes, list[bytes]]) -> None:
    init = fmp4.parse_init(clip[0])
    segment = clip[1][0]
    track_id_at = segment.index(b"tfhd") + 8  # after the type: version and flags, then the track id
    renumbered = segment[:track_id_at] + struct.pack(">I", 7) + segment[track_id_at + 4 :]
    with pytest.raises(fmp4.BadSegment, match="track 7"):
        fmp4.parse_segment(renumbered, init)
