"""The UploadStore contract (with concatenation), run against every adapter: local files and S3 (a real one, Ceph
radosgw: FRAMECAST_TEST_S3_URL).

Sizes around S3's 5 MiB minimum part matter to the S3 adapter, whose uploads are multipart uploads plus a tail
object; they are part of the contract so every adapter keeps the same promises at those edges.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import S3Service
from framecast.adapters.blobs.files import FileBlobStore, FileUploadStore
from framecast.adapters.blobs.s3 import S3BlobStore, S3UploadStore, connect_s3_storage
from framecast.domain.uploads import OffsetMismatch
from framecast.ports import BlobStore, ConcatenatingUploadStore

MIB = 1024 * 1024
MAX_UPLOAD = 10 * 1024 * MIB


@dataclass
class Stores:
    """An upload store, the blob store it finishes into, and a way to reach the same storage as another instance
    would (a new process, another machine of the fleet)."""

    store: ConcatenatingUploadStore
    blobs: BlobStore
    another_instance: Callable[[], Awaitable[ConcatenatingUploadStore]]


@pytest.fixture(params=["files", "s3"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    if request.param == "files":
        files = FileBlobStore(tmp_path / "blobs")

        async def another_file_store() -> ConcatenatingUploadStore:
            return FileUploadStore(tmp_path / "uploads", blobs=FileBlobStore(tmp_path / "blobs"))

        yield Stores(FileUploadStore(tmp_path / "uploads", blobs=files), files, another_file_store)
        return
    service: S3Service = request.getfixturevalue("s3_service")
    options = service.options(request.getfixturevalue("s3_bucket"), prefix="contract/")
    opened: list[S3BlobStore] = []

    async def connect() -> tuple[S3BlobStore, S3UploadStore]:
        blobs, uploads = await connect_s3_storage(options, max_upload=MAX_UPLOAD)
        opened.append(blobs)
        return blobs, uploads

    async def another_s3_store() -> ConcatenatingUploadStore:
        return (await connect())[1]

    s3_blobs, s3_uploads = await connect()
    try:
        yield Stores(s3_uploads, s3_blobs, another_s3_store)
    finally:
        for blobs in opened:
            await blobs.aclose()


@pytest.fixture
def store(stores: Stores) -> ConcatenatingUploadStore:
    return stores.store


@pytest.fixture
def blobs(stores: Stores) -> BlobStore:
    return stores.blobs


async def chunks(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def sliced(data: bytes, size: int) -> list[bytes]:
    """`data` as network reads of `size` bytes would deliver it."""
    return [data[start : start + size] for start in range(0, len(data), size)]


async def read(blobs: BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in blobs.open(key)])


async def append_all(store: ConcatenatingUploadStore, upload_id: str, data: bytes, *, offset: int = 0) -> int:
    return await store.append(upload_id, offset=offset, chunks=chunks(*sliced(data, 64 * 1024)), limit=len(data))


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


async def test_an_upload_id_is_created_once(store: ConcatenatingUploadStore) -> None:
    await store.create("u1")
    with pytest.raises(FileExistsError):
        await store.create("u1")


async def test_an_empty_upload_finishes_as_an_empty_object(store: ConcatenatingUploadStore, blobs: BlobStore) -> None:
    await store.create("u1")
    assert await store.append("u1", offset=0, chunks=chunks(), limit=100) == 0
    assert await store.finish("u1", key="k") == 0
    assert await blobs.size("k") == 0


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


async def test_a_body_dropped_after_several_parts_keeps_every_byte_that_arrived(
    store: ConcatenatingUploadStore, blobs: BlobStore
) -> None:
    data = os.urandom(13 * MIB + 333)
    arrived = 11 * MIB + 7

    async def dropped() -> AsyncIterator[bytes]:
        for piece in sliced(data[:arrived], 256 * 1024):
            yield piece
        raise ConnectionResetError

    await store.create("u1")
    await store.append("u1", offset=0, chunks=chunks(b"x" * 1000), limit=1000)
    with pytest.raises(ConnectionResetError):
        await store.append("u1", offset=1000, chunks=dropped(), limit=len(data))
    assert await store.offset("u1") == 1000 + arrived
    await append_all(store, "u1", data[arrived:], offset=1000 + arrived)
    await store.finish("u1", key="k")
    assert await read(blobs, "k") == b"x" * 1000 + data


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param([1, 1, 1], id="single-bytes"),
        pytest.param([5 * MIB], id="exactly-5MiB"),
        pytest.param([5 * MIB + 1], id="5MiB-plus-1"),
        pytest.param([5 * MIB - 1, 1, 1], id="crossing-5MiB-by-one"),
        pytest.param([8 * MIB, 8 * MIB], id="whole-parts"),
        pytest.param([21 * MIB + 5], id="one-big-append"),
        pytest.param([700 * 1024 + 3] * 17, id="many-small-appends"),
        pytest.param([1, 6 * MIB, 2, 4 * MIB + 999, 1], id="mixed"),
    ],
)
async def test_appends_of_any_size_store_exactly_the_bytes_sent(
    store: ConcatenatingUploadStore, blobs: BlobStore, sizes: list[int]
) -> None:
    data = os.urandom(sum(sizes))
    await store.create("u1")
    offset = 0
    for size in sizes:
        new_offset = await append_all(store, "u1", data[offset : offset + size], offset=offset)
        assert new_offset == offset + size
        assert await store.offset("u1") == new_offset
        offset = new_offset
    assert await store.finish("u1", key="recordings/r/raw/u1") == len(data)
    assert await blobs.size("recordings/r/raw/u1") == len(data)
    assert hashlib.sha256(await read(blobs, "recordings/r/raw/u1")).digest() == hashlib.sha256(data).digest()


async def test_another_instance_resumes_an_upload_where_it_stands(stores: Stores) -> None:
    data = os.urandom(12 * MIB + 12345)
    first = 9 * MIB + 17  # a whole part and a tail
    await stores.store.create("u1")
    await append_all(stores.store, "u1", data[:first])
    other = await stores.another_instance()
    assert await other.offset("u1") == first
    assert await append_all(other, "u1", data[first:], offset=first) == len(data)
    with pytest.raises(OffsetMismatch):
        await append_all(stores.store, "u1", b"late", offset=first)
    assert await stores.store.finish("u1", key="k") == len(data)
    assert await read(stores.blobs, "k") == data


async def test_a_discarded_upload_takes_no_more_bytes(store: ConcatenatingUploadStore) -> None:
    await store.create("u1")
    await append_all(store, "u1", os.urandom(6 * MIB))
    await store.discard("u1")
    await store.discard("u1")  # absent is not an error
    with pytest.raises(FileNotFoundError):
        await store.append("u1", offset=0, chunks=chunks(b"abc"), limit=100)
    with pytest.raises(FileNotFoundError):
        await store.offset("u1")


async def test_parts_concatenate_in_order(store: ConcatenatingUploadStore, blobs: BlobStore) -> None:
    for name, data in (("p1", b"one "), ("p2", b"two "), ("p3", b"three")):
        await store.create(name)
        await store.append(name, offset=0, chunks=chunks(data), limit=100)
    assert await store.concatenate("final", parts=["p3", "p1", "p2"]) == 13
    await store.finish("final", key="k")
    assert await read(blobs, "k") == b"threeone two "
    assert await store.offset("p1") == 4  # parts are left for the caller to discard


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param([3 * MIB, 4 * MIB, 1], id="all-under-5MiB"),
        pytest.param([6 * MIB, 12 * MIB + 5], id="all-over-5MiB"),
        pytest.param([2 * MIB, 9 * MIB + 1, 0, 1 * MIB, 5 * MIB, 17], id="mixed"),
    ],
)
async def test_partial_uploads_of_any_size_concatenate(
    store: ConcatenatingUploadStore, blobs: BlobStore, sizes: list[int]
) -> None:
    pieces = [os.urandom(size) for size in sizes]
    names = [f"p{i}" for i in range(len(sizes))]
    for name, piece in zip(names, pieces, strict=True):
        await store.create(name)
        await append_all(store, name, piece)
    assert await store.concatenate("final", parts=names) == sum(sizes)
    assert await store.offset("final") == sum(sizes)
    for name, size in zip(names, sizes, strict=True):
        assert await store.offset(name) == size
        await store.discard(name)
    assert await store.finish("final", key="k") == sum(sizes)
    assert await read(blobs, "k") == b"".join(pieces)


@pytest.mark.parametrize("upload_id", ["../escape", "a/b", ""])
async def test_ids_that_are_not_plain_names_are_refused(store: ConcatenatingUploadStore, upload_id: str) -> None:
    with pytest.raises(ValueError, match="not an upload id"):
        await store.create(upload_id)
