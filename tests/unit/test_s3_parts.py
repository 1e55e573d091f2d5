"""How partial uploads are laid end to end into one S3 multipart upload (concatenation_plan), without S3."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framecast.adapters.blobs.s3_parts import Span, concatenation_plan

MIB = 1024 * 1024
MIN_PART = 5 * MIB
PART = 8 * MIB


def test_sources_of_a_part_or_more_are_copied_inside_s3() -> None:
    assert concatenation_plan([6 * MIB, 20 * MIB], min_part=MIN_PART, part_size=PART) == [
        Span(0, 0, 6 * MIB, copied=True),
        Span(1, 0, 20 * MIB, copied=True),
    ]


def test_small_sources_are_read_into_a_part() -> None:
    assert concatenation_plan([3 * MIB, 4 * MIB], min_part=MIN_PART, part_size=PART) == [
        Span(0, 0, 3 * MIB, copied=False),
        Span(1, 0, 4 * MIB, copied=False),
    ]


def test_a_part_begun_by_small_sources_is_completed_from_the_next_and_the_rest_copied() -> None:
    assert concatenation_plan([3 * MIB, 20 * MIB], min_part=MIN_PART, part_size=PART) == [
        Span(0, 0, 3 * MIB, copied=False),
        Span(1, 0, 5 * MIB, copied=False),
        Span(1, 5 * MIB, 20 * MIB, copied=True),
    ]


def test_copies_are_cut_at_the_largest_copy() -> None:
    plan = concatenation_plan([12 * MIB], min_part=MIN_PART, part_size=PART, max_copy=5 * MIB)
    assert plan == [Span(0, 0, 5 * MIB, True), Span(0, 5 * MIB, 10 * MIB, True), Span(0, 10 * MIB, 12 * MIB, False)]


@given(st.lists(st.integers(min_value=0, max_value=30 * MIB), max_size=8))
def test_every_byte_is_planned_once_in_order_and_every_copied_part_is_a_valid_part(sizes: list[int]) -> None:
    plan = concatenation_plan(sizes, min_part=MIN_PART, part_size=PART, max_copy=12 * MIB)
    covered = [(span.source, span.start, span.end) for span in plan]
    expected_position = {source: 0 for source in range(len(sizes))}
    for source, start, end in covered:
        assert start == expected_position[source] < end
        expected_position[source] = end
    assert [expected_position[s] for s in range(len(sizes))] == sizes
    assert [span.source for span in plan] == sorted(span.source for span in plan)
    buffered = 0
    for span in plan:
        if span.copied:
            assert buffered == 0, "a copied part may not follow buffered bytes"
            assert MIN_PART <= span.end - span.start <= 12 * MIB
        else:
            buffered = (buffered + span.end - span.start) % PART


@pytest.mark.parametrize("sizes", [[], [0, 0]])
def test_nothing_to_concatenate_is_an_empty_plan(sizes: list[int]) -> None:
    assert concatenation_plan(sizes, min_part=MIN_PART, part_size=PART) == []
