"""Scrub previews: how many thumbnails a recording gets, their size, and the WebVTT track players read."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framecast.domain.storyboard import MAX_TILES, TILE_WIDTH, Storyboard, plan, webvtt

CUE_TIMING = re.compile(r"^(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})$")
CUE_TILE = re.compile(r"^storyboard\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)$")


def millis(hours: str, minutes: str, seconds: str, ms: str) -> int:
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(ms)


def cues(track: str) -> list[tuple[int, int, tuple[int, int, int, int]]]:
    """(start ms, end ms, (x, y, w, h)) of every cue, checking the track's shape on the way."""
    lines = track.split("\n")
    assert lines[:2] == ["WEBVTT", ""]
    found = []
    body = lines[2:]
    for i in range(0, len(body) - 2, 3):
        timing, tile, blank = body[i : i + 3]
        assert blank == ""
        t = CUE_TIMING.match(timing)
        x = CUE_TILE.match(tile)
        assert t, timing
        assert x, tile
        start, end = millis(*t.groups()[:4]), millis(*t.groups()[4:])
        xywh = (int(x[1]), int(x[2]), int(x[3]), int(x[4]))
        found.append((start, end, xywh))
    return found


def track(duration_s: float, width: int = 1920, height: int = 1080) -> tuple[Storyboard, str]:
    board = plan(duration_s=duration_s, width=width, height=height)
    return board, webvtt(board, image="storyboard.jpg", duration_s=duration_s)


# -- plan -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("duration", "count"), [(0.4, 1), (1.0, 1), (7.25, 8), (30.0, 30), (99.0, 99), (100.0, 100)])
def test_a_short_recording_gets_one_tile_per_second(duration: float, count: int) -> None:
    board = plan(duration_s=duration, width=1280, height=720)
    assert board.interval == 1.0
    assert board.count == count


@pytest.mark.parametrize("duration", [100.5, 150.2, 600.0, 2 * 3600.0, 12 * 3600.0])
def test_a_long_recording_gets_at_most_a_hundred_tiles_spread_over_its_whole_length(duration: float) -> None:
    board = plan(duration_s=duration, width=1280, height=720)
    assert board.count <= MAX_TILES
    assert board.count * board.interval >= duration
    assert (board.count - 1) * board.interval < duration


def test_a_two_hour_recording_gets_a_hundred_tiles() -> None:
    board = plan(duration_s=2 * 3600.0, width=1920, height=1080)
    assert (board.count, board.interval) == (100, 72.0)
    assert (board.columns, board.rows) == (10, 10)


@pytest.mark.parametrize(
    ("width", "height", "tile_height"),
    [(1920, 1080, 90), (1280, 720, 90), (640, 480, 120), (1080, 1920, 284), (720, 1280, 284), (853, 480, 90)],
)
def test_tiles_keep_the_picture_shape_at_an_even_height(width: int, height: int, tile_height: int) -> None:
    board = plan(duration_s=10.0, width=width, height=height)
    assert board.tile_width == TILE_WIDTH
    assert board.tile_height == tile_height


@pytest.mark.parametrize(("duration", "columns", "rows"), [(4.0, 4, 1), (10.0, 10, 1), (25.0, 10, 3), (7200.0, 10, 10)])
def test_the_sprite_is_at_most_ten_tiles_wide(duration: float, columns: int, rows: int) -> None:
    board = plan(duration_s=duration, width=1280, height=720)
    assert (board.columns, board.rows) == (columns, rows)


@pytest.mark.parametrize(
    ("duration", "width", "height"), [(0.0, 1280, 720), (-3.0, 1280, 720), (10.0, 0, 720), (10.0, 1280, 0)]
)
def test_a_storyboard_needs_a_length_and_a_size(duration: float, width: int, height: int) -> None:
    with pytest.raises(ValueError, match="positive length and size"):
        plan(duration_s=duration, width=width, height=height)


@given(
    duration=st.floats(min_value=0.001, max_value=12 * 3600.0),
    width=st.integers(min_value=16, max_value=8192),
    height=st.integers(min_value=16, max_value=8192),
)
def test_every_plan_fits_the_limits_and_covers_the_recording(duration: float, width: int, height: int) -> None:
    board = plan(duration_s=duration, width=width, height=height)
    assert 1 <= board.count <= MAX_TILES
    assert board.interval >= 1.0
    assert board.count * board.interval >= round(duration, 3)  # to the millisecond, WebVTT's resolution
    assert board.tile_width % 2 == 0
    assert board.tile_height % 2 == 0
    assert 2 <= board.tile_width <= TILE_WIDTH
    assert 2 <= board.tile_height <= 320  # a very tall video's tile fits in height; a sprite stays under 65535 px
    # The tile keeps the video's shape (to the pixel the even rounding allows).
    assert abs(board.tile_height * width - board.tile_width * height) <= 2 * max(width, height) or 2 in (
        board.tile_width,
        board.tile_height,
    )
    assert 1 <= board.columns <= 10
    assert board.rows == math.ceil(board.count / board.columns)


# -- webvtt ---------------------------------------------------------------------------------------------------------


def test_the_track_is_webvtt_with_one_cue_per_tile() -> None:
    board, text = track(7.25)
    assert text.startswith("WEBVTT\n\n")
    assert len(cues(text)) == board.count == 8


def test_cues_run_from_zero_to_exactly_the_end_with_the_last_one_clipped() -> None:
    _, text = track(7.25)
    found = cues(text)
    assert found[0][0] == 0
    assert [end for _, end, _ in found[:-1]] == [start for start, _, _ in found[1:]]
    assert found[-1][:2] == (7000, 7250)
    assert "00:00:07.000 --> 00:00:07.250" in text


def test_tiles_walk_the_sprite_row_by_row() -> None:
    board, text = track(25.0)
    tiles = [xywh for _, _, xywh in cues(text)]
    assert tiles[0] == (0, 0, 160, 90)
    assert tiles[1] == (160, 0, 160, 90)
    assert tiles[9] == (1440, 0, 160, 90)
    assert tiles[10] == (0, 90, 160, 90)
    assert tiles[24] == (4 * 160, 2 * 90, 160, 90)
    assert board.rows == 3


def test_portrait_tiles_are_addressed_at_their_own_height() -> None:
    _, text = track(12.0, width=1080, height=1920)
    tiles = [xywh for _, _, xywh in cues(text)]
    assert tiles[10] == (0, 284, 160, 284)


def test_timestamps_past_an_hour_are_written_in_hours() -> None:
    board, text = track(7200.5)
    assert board.interval == 72.5
    assert "\n00:59:12.500 --> 01:00:25.000\n" in text
    assert text.rstrip("\n").split("\n")[-2] == "01:59:37.500 --> 02:00:00.500"


@given(st.integers(min_value=1, max_value=12 * 3600 * 1000))
def test_every_track_covers_the_recording_without_gaps_or_empty_cues(duration_ms: int) -> None:
    board, text = track(duration_ms / 1000)
    found = cues(text)
    assert len(found) == board.count
    assert found[0][0] == 0
    assert found[-1][1] == duration_ms
    assert all(start < end for start, end, _ in found)
    assert [end for _, end, _ in found[:-1]] == [start for start, _, _ in found[1:]]
    for i, (_, _, (x, y, w, h)) in enumerate(found):
        assert (x, y) == ((i % board.columns) * w, (i // board.columns) * h)
        assert y < board.rows * h


def test_a_length_just_past_a_tile_boundary_gives_no_empty_cue() -> None:
    _, text = track(60.0004)
    assert all(start < end for start, end, _ in cues(text))
