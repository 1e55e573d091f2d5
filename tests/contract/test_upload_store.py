"""The UploadStore contract (with concatenation), run against every adapter: today the local-file one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from framecast.adapters.blobs.files import FileBlobStore, FileUploadStore
from framecast.domain.uploads import OffsetMismatch
from framecast.ports import BlobStore, ConcatenatingUploadStore


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


@pytest.fixture(params=["files"])
def store(request: pytest.FixtureRequest, tmp_path: Path, blobs: FileBlobStore) -> ConcatenatingUploadStore:
    return FileUploadStore(tmp_path / "uploads", blobs=blobs)


async def chunks(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def read(blobs: BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in blobs.open(key)])


async def test_appends_grow_the_offset_and_finish_moves_the_bytes(
    store: ConcatenatingUploadStore, blobs: BlobStore
) -> None:
    await store.create("u1")
    assert await store.offset("u1") == 0
    assert await store.append("u1", offset=0, chunks=chunks(b"abc", b"de"), limit=100) == 5
    assert await store.append("u1", offset=5, chunks=chunks(b"fg"), limit=100) == 7
    assert await store.finish("u1", key="recordings/r/raw/u1") == 7
    assert await read(blobs, "recordings/r/raw/u1") == b"abcdefg"
    with pytest.raises(FileNotFoundError):
        await store.offset("u1")


async def test_an_append_at_the_wrong_offset_writes_nothing(store: ConcatenatingUploadStore) -> None:
    await store.create("u1")
    await store.append("u1", offset=0, chunks=chunks(b"abc"), limit=100)
    with pytest.raises(OffsetMismatch) as raised:
        await store.append("u1", offset=2, chunks=chunks(b"xyz"), limit=100)
    assert raised.value.expected == 3
    assert await store.offset("u1") == 3


async def test_an_append_reads_at_most_its_limit(store: ConcatenatingUploadStore) -> None:
    await store.create("u1")
    assert await store.append("u1", offset=0, chunks=chunks(b"abc", b"def"), limit=4) == 4


async def test_what_arrived_before_a_failing_body_is_kept(store: ConcatenatingUploadStore) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"abc"
        raise ConnectionResetError

    await store.create("u1")
    with pytest.raises(ConnectionResetError):
        await store.append("u1", offset=0, chunks=failing(), limit=100)
    assert await store.offset("u1") == 3


async def test_a_discarded_upload_takes_no_more_bytes(store: ConcatenatingUploadStore) -> None:
    await store.create("u1")
    await store.discard("u1")
    await store.discard("u1")  # absent is not an error
    with pytest.raises(FileNotFoundError):
        await store.append("u1", offset=0, chunks=chunks(b"abc"), limit=100)


async def test_parts_concatenate_in_order(store: ConcatenatingUploadStore, blobs: BlobStore) -> None:
    for name, data in (("p1", b"one "), ("p2", b"two "), ("p3", b"three")):
        await store.create(name)
        await store.append(name, offset=0, chunks=chunks(data), limit=100)
    assert await store.concatenate("final", parts=["p3", "p1", "p2"]) == 13
    await store.finish("final", key="k")
    assert await read(blobs, "k") == b"threeone two "
    assert await store.offset("p1") == 4  # parts are left for the caller to discard


@pytest.mark.parametrize("upload_id", ["../escape", "a/b", ""])
async def test_ids_that_are_not_plain_names_are_refused(store: ConcatenatingUploadStore, upload_id: str) -> None:
    with pytest.raises(ValueError, match="not an upload id"):
        await store.create(upload_id)
