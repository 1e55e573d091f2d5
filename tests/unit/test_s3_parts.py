"""How bytes are cut into parts in flight (PartWriter) and how partial uploads are laid end to end into one S3
multipart upload (concatenation_plan), without S3: a multipart upload in memory whose parts land when the test says
(the contract and recovery tests run the writer against a real service)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framecast.adapters.blobs.s3_client import Multipart, Part
from framecast.adapters.blobs.s3_parts import Buffers, PartWriter, Span, concatenation_plan

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


class HeldParts:
    """A multipart upload whose UploadPart calls wait until the test lets them land (or fail)."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.bytes: dict[int, bytes] = {}
        self.gates: dict[int, asyncio.Future[None]] = {}

    async def upload_part(self, number: int, data: bytes | bytearray | memoryview) -> Part:
        self.started.append(number)
        gate = self.gates.setdefault(number, asyncio.get_running_loop().create_future())
        await gate
        self.bytes[number] = bytes(data)
        return Part(number, len(data), f"etag-{number}")

    def land(self, number: int, error: Exception | None = None) -> None:
        gate = self.gates.setdefault(number, asyncio.get_running_loop().create_future())
        if error is None:
            gate.set_result(None)
        else:
            gate.set_exception(error)


async def settled_loop() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def writer(parts: HeldParts, records: list[list[int]], *, in_flight: int, confirm_every: int) -> PartWriter:
    async def confirmed(uploaded: Sequence[Part]) -> None:
        records.append([part.number for part in uploaded])

    return PartWriter(
        cast(Multipart, cast(Any, parts)),
        next_number=1,
        buffers=Buffers(4, keep=2),
        confirmed=confirmed,
        in_flight=in_flight,
        confirm_every=confirm_every,
    )


async def test_parts_upload_a_few_at_a_time_and_are_recorded_in_order() -> None:
    parts, records = HeldParts(), list[list[int]]()
    write = writer(parts, records, in_flight=2, confirm_every=1)
    writing = asyncio.create_task(write.write(b"aaaabbbbccccdd"))
    await settled_loop()
    assert parts.started == [1, 2]  # the third part waits for a free slot, holding the writer up
    assert not writing.done()
    parts.land(2)  # out of order: nothing can be recorded before part 1
    await settled_loop()
    assert records == []
    assert parts.started == [1, 2]
    parts.land(1)
    await writing
    assert records == [[1, 2]]  # both at once: part 2 had landed already
    assert parts.started == [1, 2, 3]
    parts.land(3)
    await write.settle()
    assert records[-1] == [1, 2, 3]
    assert bytes(write.remainder()) == b"dd"  # short of a part: left to the caller
    assert [parts.bytes[n] for n in (1, 2, 3)] == [b"aaaa", b"bbbb", b"cccc"]


async def test_parts_are_recorded_once_enough_have_landed_and_when_the_writer_settles() -> None:
    parts, records = HeldParts(), list[list[int]]()
    write = writer(parts, records, in_flight=1, confirm_every=8)
    for number in range(1, 4):
        parts.land(number)
    await write.write(b"aaaabbbbcccc")
    await settled_loop()
    assert records == [[1, 2]]  # 8 bytes landed
    await write.settle()
    assert records == [[1, 2], [1, 2, 3]]


async def test_a_failed_part_keeps_the_parts_before_it_and_drops_those_after_even_if_they_landed() -> None:
    parts, records = HeldParts(), list[list[int]]()
    write = writer(parts, records, in_flight=3, confirm_every=1000)
    await write.write(b"aaaabbbbcccc")
    parts.land(1)
    parts.land(3)
    parts.land(2, OSError("connection reset"))
    with pytest.raises(OSError, match="connection reset"):
        await write.settle()
    assert records == [[1]]
    assert [part.number for part in write.uploaded] == [1]
    assert write.buffered == 0
