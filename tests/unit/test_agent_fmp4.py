"""Cutting a growing fragmented MP4 into live segments: only whole pieces, listed as ffmpeg appends them."""

from __future__ import annotations

import struct
from pathlib import Path

from framecast.agent import fmp4
from framecast.agent.fmp4 import Span


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


HEAD = box(b"ftyp", b"isom") + box(b"moov", b"\0" * 40)
FRAGMENT = box(b"moof", b"\0" * 24) + box(b"mdat", b"\1" * 1000)


def spans(listing: fmp4.Fragments) -> list[tuple[int, int]]:
    return [(s.start, s.end) for s in listing.segments]


def test_the_init_segment_is_the_ftyp_and_moov_and_each_moof_mdat_pair_is_a_segment(tmp_path: Path) -> None:
    path = tmp_path / "run.mp4"
    path.write_bytes(HEAD + FRAGMENT + FRAGMENT)
    listing = fmp4.fragments(path)
    assert listing.init == Span(0, len(HEAD))
    first = len(HEAD)
    assert spans(listing) == [(first, first + len(FRAGMENT)), (first + len(FRAGMENT), first + 2 * len(FRAGMENT))]
    assert not listing.corrupt


def test_a_growing_file_lists_only_whole_fragments_and_goes_on_from_where_it_stopped(tmp_path: Path) -> None:
    path = tmp_path / "run.mp4"
    path.write_bytes(HEAD[:20])
    listing = fmp4.fragments(path)
    assert listing.init is None, "the moov is not all there yet"

    path.write_bytes(HEAD)
    listing = fmp4.fragments(path, since=listing)
    assert listing.init == Span(0, len(HEAD))
    assert listing.segments == ()

    for cut in (10, 40, len(FRAGMENT) - 1):  # half a moof; a whole moof without its samples; all but one byte
        path.write_bytes(HEAD + FRAGMENT[:cut])
        listing = fmp4.fragments(path, since=listing)
        assert listing.segments == ()
        assert listing.scanned == len(HEAD), "the next listing reads the fragment from its start again"

    path.write_bytes(HEAD + FRAGMENT + FRAGMENT[:30])
    listing = fmp4.fragments(path, since=listing)
    assert spans(listing) == [(len(HEAD), len(HEAD) + len(FRAGMENT))]

    path.write_bytes(HEAD + FRAGMENT * 3)
    listing = fmp4.fragments(path, since=listing)
    assert len(listing.segments) == 3
    assert listing.segments[-1].end == path.stat().st_size
    assert fmp4.fragments(path, since=listing) == listing, "nothing new: the same listing"


def test_leading_boxes_go_with_their_segment_and_boxes_between_segments_with_none(tmp_path: Path) -> None:
    path = tmp_path / "run.mp4"
    led = box(b"styp", b"msdh") + box(b"sidx", b"\0" * 16) + FRAGMENT
    free = box(b"free", b"\0" * 8)
    trailer = box(b"mfra", b"\0" * 16)
    path.write_bytes(HEAD + led + free + FRAGMENT + trailer)
    listing = fmp4.fragments(path)
    start = len(HEAD)
    after_free = start + len(led) + len(free)
    assert spans(listing) == [(start, start + len(led)), (after_free, after_free + len(FRAGMENT))]
    assert listing.scanned == path.stat().st_size, "the trailer is read past, and belongs to no segment"


def test_leading_boxes_not_yet_followed_by_their_moof_wait_for_it(tmp_path: Path) -> None:
    path = tmp_path / "run.mp4"
    styp = box(b"styp", b"msdh")
    path.write_bytes(HEAD + styp)
    listing = fmp4.fragments(path)
    assert listing.segments == ()
    path.write_bytes(HEAD + styp + FRAGMENT)
    listing = fmp4.fragments(path, since=listing)
    assert spans(listing) == [(len(HEAD), len(HEAD) + len(styp) + len(FRAGMENT))]


def test_until_leaves_out_what_a_crash_left_past_the_last_whole_fragment(tmp_path: Path) -> None:
    path = tmp_path / "run.mp4"
    path.write_bytes(HEAD + FRAGMENT * 2)
    listing = fmp4.fragments(path, until=len(HEAD) + len(FRAGMENT) + 5)
    assert len(listing.segments) == 1


def test_garbage_ends_the_listing_and_what_came_before_stays(tmp_path: Path) -> None:
    path = tmp_path / "run.mp4"
    path.write_bytes(HEAD + FRAGMENT + b"\xff" * 64 + FRAGMENT)
    listing = fmp4.fragments(path)
    assert listing.corrupt
    assert len(listing.segments) == 1
    assert fmp4.fragments(path, since=listing) == listing


def test_boxes_out_of_order_are_corrupt(tmp_path: Path) -> None:
    moof, mdat = box(b"moof", b"\0" * 24), box(b"mdat", b"\1" * 10)
    cases = {
        "media before the moov": box(b"ftyp", b"isom") + moof + mdat,
        "a moof not followed by its mdat": HEAD + moof + box(b"free") + mdat,
        "samples no moof describes": HEAD + mdat,
        "two moofs in a row": HEAD + moof + moof + mdat,
    }
    for name, data in cases.items():
        path = tmp_path / "run.mp4"
        path.write_bytes(data)
        listing = fmp4.fragments(path)
        assert listing.corrupt, name
        assert listing.segments == (), name


def test_a_missing_file_has_no_pieces(tmp_path: Path) -> None:
    listing = fmp4.fragments(tmp_path / "nothing.mp4")
    assert listing.init is None
    assert listing.segments == ()
