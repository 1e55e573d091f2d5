"""The encoding ladder, as data: which renditions a source gets, never above its own size.

Rungs are named by their short side ("720p" is 1280x720 landscape and 720x1280 portrait), so portrait recordings get
the same quality steps as landscape ones. Dimensions are rounded to even numbers, which H.264 4:2:0 requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rung:
    """One step of the ladder: a short side in pixels and target bitrates for 30 fps content."""

    name: str
    short_side: int
    video_kbps: int
    audio_kbps: int


DEFAULT_LADDER: tuple[Rung, ...] = (
    Rung("1080p", 1080, 5000, 128),
    Rung("720p", 720, 2800, 128),
    Rung("480p", 480, 1400, 96),
    Rung("360p", 360, 800, 96),
)

# Screen recordings are mostly static text: the same sharpness needs far fewer bits than camera footage.
SCREEN_BITRATE_FACTOR = 0.6


@dataclass(frozen=True, slots=True)
class Rendition:
    """A rung fitted to one source: exact output size and bitrates."""

    name: str
    width: int
    height: int
    video_kbps: int
    audio_kbps: int

    @property
    def bandwidth(self) -> int:
        """Peak bits per second, as HLS BANDWIDTH wants it (video capped at 1.5x its target, plus audio)."""
        return int((self.video_kbps * 1.5 + self.audio_kbps) * 1000)


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def renditions_for(
    *, width: int, height: int, screen: bool = False, ladder: Sequence[Rung] = DEFAULT_LADDER
) -> list[Rendition]:
    """The renditions for a `width` x `height` source, best first.

    Every rung whose short side fits within the source's; a source smaller than the lowest rung gets one rendition
    at its own (even-rounded) size, so nothing is ever upscaled. Raises ValueError for non-positive dimensions.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"a video has positive dimensions, not {width}x{height}")
    short, long_ = min(width, height), max(width, height)
    factor = SCREEN_BITRATE_FACTOR if screen else 1.0
    fitting = [rung for rung in sorted(ladder, key=lambda r: -r.short_side) if rung.short_side <= short]
    if not fitting:
        lowest = min(ladder, key=lambda r: r.short_side)
        fitting = [Rung(f"{_even(short)}p", _even(short), lowest.video_kbps, lowest.audio_kbps)]
    renditions = []
    for rung in fitting:
        scaled_long = _even(long_ * rung.short_side / short)
        w, h = (scaled_long, rung.short_side) if width >= height else (rung.short_side, scaled_long)
        renditions.append(Rendition(rung.name, _even(w), _even(h), int(rung.video_kbps * factor), rung.audio_kbps))
    return renditions
