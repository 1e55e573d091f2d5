"""Range headers: the one range asked for, clamped to the file; what cannot be served; what is ignored."""

from __future__ import annotations

import pytest

from framecast.api.byte_ranges import ByteRange, RangeNotSatisfiable, parse_range


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=10-10", 10, 11),
        ("bytes=900-", 900, 1000),
        ("bytes=900-5000", 900, 1000),
        ("bytes=-100", 900, 1000),
        ("bytes=-5000", 0, 1000),
        ("bytes=999-", 999, 1000),
        (" Bytes = 5-9 ", 5, 10),
        ("bytes=5-9,", 5, 10),
    ],
)
def test_one_range_is_served_clamped_to_the_file(header: str, start: int, end: int) -> None:
    assert parse_range(header, 1000) == ByteRange(start=start, end=end, size=1000)


def test_the_content_range_names_the_last_byte_not_the_end() -> None:
    wanted = parse_range("bytes=10-19", 1000)
    assert wanted is not None
    assert (wanted.content_range, wanted.length) == ("bytes 10-19/1000", 10)


@pytest.mark.parametrize(
    "header",
    [None, "", "bytes=", "bytes=-", "bytes=9-5", "bytes=a-b", "bytes=1-2-3", "items=0-5", "bytes=0-1,5-6", "bytes 0-5"],
)
def test_missing_foreign_malformed_and_multiple_ranges_mean_the_whole_file(header: str | None) -> None:
    assert parse_range(header, 1000) is None


@pytest.mark.parametrize(("header", "size"), [("bytes=1000-", 1000), ("bytes=5000-6000", 1000), ("bytes=-0", 1000)])
def test_a_range_wholly_past_the_end_cannot_be_satisfied(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=0-0", "bytes=-1"])
def test_no_range_of_an_empty_file_can_be_satisfied(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 0)
