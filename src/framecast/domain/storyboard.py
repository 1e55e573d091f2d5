"""Scrub previews: a sprite of thumbnails and the WebVTT track that maps each stretch of time to one tile.

Players (hls.js with a thumbnails plugin, Video.js, Vidstack) read `storyboard.jpg#xywh=x,y,w,h` cues.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_TILES = 100
TILE_WIDTH = 160
MIN_INTERVAL_S = 1.0
MAX_TILE_HEIGHT = 320


@dataclass(frozen=True, slots=True)
class Storyboard:
    interval: float
    count: int
    tile_width: int
    tile_height: int
    columns: int

    @property
    def rows(self) -> int:
        return math.ceil(self.count / self.columns)


def plan(*, duration_s: float, width: int, height: int, max_tiles: int = MAX_TILES) -> Storyboard:
    """At most `max_tiles` tiles, one per second for short recordings, evenly spread for long ones."""
    duration_s = round(duration_s, 3)  # WebVTT counts milliseconds: a tile for 0.4 ms past the end would be empty
    if duration_s <= 0 or width <= 0 or height <= 0:
        raise ValueError("a storyboard needs a video with a positive length and size")
    interval = max(MIN_INTERVAL_S, math.ceil(duration_s / max_tiles * 2) / 2)  # whole or half seconds
    count = max(1, math.ceil(duration_s / interval))
    tile_width, tile_height = TILE_WIDTH, _even(TILE_WIDTH * height / width)
    if tile_height > MAX_TILE_HEIGHT:  # a very tall video: fit the tile in height instead (JPEG stops at 65535 px)
        tile_width, tile_height = _even(MAX_TILE_HEIGHT * width / height), MAX_TILE_HEIGHT
    return Storyboard(
        interval=interval, count=count, tile_width=tile_width, tile_height=tile_height, columns=min(10, count)
    )


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def webvtt(board: Storyboard, *, image: str, duration_s: float) -> str:
    """The thumbnails track: cue i covers [i * interval, (i + 1) * interval), clipped to the recording's end."""
    lines = ["WEBVTT", ""]
    duration_s = round(duration_s, 3)
    for i in range(board.count):
        start = i * board.interval
        end = min(duration_s, start + board.interval)
        if round(end, 3) <= round(start, 3):
            break
        x = (i % board.columns) * board.tile_width
        y = (i // board.columns) * board.tile_height
        lines += [
            f"{_timestamp(start)} --> {_timestamp(end)}",
            f"{image}#xywh={x},{y},{board.tile_width},{board.tile_height}",
            "",
        ]
    return "\n".join(lines)
