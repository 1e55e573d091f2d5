"""The encoding ladder: the right renditions for every shape of source, never upscaled."""

from __future__ import annotations

import pytest

from framecast.domain.ladder import DEFAULT_LADDER, SCREEN_BITRATE_FACTOR, Rung, renditions_for


def sizes(width: int, height: int, ladder: tuple[Rung, ...] = DEFAULT_LADDER) -> list[tuple[str, int, int]]:
    return [(r.name, r.width, r.height) for r in renditions_for(width=width, height=height, ladder=ladder)]


def test_a_1080p_landscape_source_gets_the_whole_ladder() -> None:
    assert sizes(1920, 1080) == [
        ("1080p", 1920, 1080),
        ("720p", 1280, 720),
        ("480p", 854, 480),
        ("360p", 640, 360),
    ]


def test_a_4k_source_tops_out_at_1080p() -> None:
    assert sizes(3840, 2160)[0] == ("1080p", 1920, 1080)


def test_portrait_sources_are_laddered_by_their_short_side() -> None:
    assert sizes(1080, 1920) == [
        ("1080p", 1080, 1920),
        ("720p", 720, 1280),
        ("480p", 480, 854),
        ("360p", 360, 640),
    ]


def test_never_above_the_source() -> None:
    assert [name for name, _, _ in sizes(1280, 720)] == ["720p", "480p", "360p"]
    assert [name for name, _, _ in sizes(1000, 600)] == ["480p", "360p"]


def test_a_source_below_the_lowest_rung_keeps_its_own_size() -> None:
    assert sizes(320, 240) == [("240p", 320, 240)]


@pytest.mark.parametrize(("width", "height"), [(1921, 1081), (853, 479), (641, 361), (999, 333), (17, 9)])
def test_odd_dimensions_give_even_output_sizes_within_the_source(width: int, height: int) -> None:
    for _, w, h in sizes(width, height):
        assert w % 2 == 0
        assert h % 2 == 0
        assert min(w, h) <= min(width, height) + 1


def test_screen_recordings_need_fewer_bits() -> None:
    camera = renditions_for(width=1920, height=1080)
    screen = renditions_for(width=1920, height=1080, screen=True)
    assert [s.video_kbps for s in screen] == [int(c.video_kbps * SCREEN_BITRATE_FACTOR) for c in camera]


def test_bandwidth_covers_peak_video_and_audio() -> None:
    top = renditions_for(width=1920, height=1080)[0]
    assert top.bandwidth == int((top.video_kbps * 1.5 + top.audio_kbps) * 1000)


def test_the_ladder_is_data() -> None:
    custom = (Rung("2160p", 2160, 14000, 192), *DEFAULT_LADDER)
    assert sizes(3840, 2160, ladder=custom)[0] == ("2160p", 3840, 2160)


@pytest.mark.parametrize(("width", "height"), [(0, 1080), (1920, -1)])
def test_impossible_dimensions_are_refused(width: int, height: int) -> None:
    with pytest.raises(ValueError, match="positive dimensions"):
        renditions_for(width=width, height=height)
