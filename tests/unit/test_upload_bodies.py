"""Upload bodies on their way to the store: never past the room they have, checksums verified before a byte goes."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from framecast.services.upload_bodies import Body, Checksum, ChecksumMismatch, Cut, UploadTooLarge, bounded, incoming


async def chunks(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def collect(iterator: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in iterator]


async def test_a_body_within_its_room_passes_whole() -> None:
    cut = Cut()
    assert await collect(bounded(chunks(b"ab", b"cd", b"e"), room=5, cut=cut)) == [b"ab", b"cd", b"e"]
    assert not cut.overflow


async def test_the_chunk_crossing_the_room_is_dropped_and_flagged() -> None:
    cut = Cut()
    assert await collect(bounded(chunks(b"ab", b"cd", b"ef"), room=5, cut=cut)) == [b"ab", b"cd"]
    assert cut.overflow


async def test_the_chunk_reaching_the_room_is_held_until_the_body_ends() -> None:
    """A body longer than the upload must not complete it with its first `room` bytes."""
    cut = Cut()
    assert await collect(bounded(chunks(b"ab", b"cde", b"f"), room=5, cut=cut)) == [b"ab"]
    assert cut.overflow


def sha256_checksum(data: bytes) -> Checksum:
    return Checksum(algorithm="sha256", digest=hashlib.sha256(data).digest())


async def test_a_checksummed_body_is_verified_before_it_is_handed_on(tmp_path: Path) -> None:
    body = Body(chunks=chunks(b"abc", b"def"), checksum=sha256_checksum(b"abcdef"))
    async with incoming(body, room=10, cut=Cut(), spool_dir=tmp_path) as verified:
        assert b"".join(await collect(verified)) == b"abcdef"
    assert [p async for p in anyio.Path(tmp_path).iterdir()] == []  # the spool leaves nothing behind


async def test_a_mismatch_hands_on_nothing(tmp_path: Path) -> None:
    body = Body(chunks=chunks(b"abc"), checksum=sha256_checksum(b"abd"))
    with pytest.raises(ChecksumMismatch, match="sha256"):
        async with incoming(body, room=10, cut=Cut(), spool_dir=tmp_path):
            pytest.fail("a body that does not match its checksum reached the store")


async def test_a_declared_length_over_the_room_is_refused_before_reading(tmp_path: Path) -> None:
    async def never() -> AsyncIterator[bytes]:
        pytest.fail("the body was read")
        yield b""

    with pytest.raises(UploadTooLarge):
        async with incoming(Body(chunks=never(), length=11), room=10, cut=Cut(), spool_dir=tmp_path):
            pass
