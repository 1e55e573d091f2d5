"""The BlobStore contract, run against every adapter: local files and S3 (a real one, Ceph radosgw:
FRAMECAST_TEST_S3_URL)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conftest import S3Service
from framecast.adapters.blobs.files import FileBlobStore
from framecast.adapters.blobs.s3 import S3BlobStore
from framecast.adapters.blobs.s3_client import S3Bucket
from framecast.ports import BlobStore

MIB = 1024 * 1024
PART = 5 * MIB  # the S3 store's part size here: the smallest S3 allows, so big files stay small


@pytest.fixture(params=["files", "s3"])
async def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    if request.param == "files":
        yield FileBlobStore(tmp_path / "blobs")
        return
    service: S3Service = request.getfixturevalue("s3_service")
    bucket = await S3Bucket.connect(service.options(request.getfixturevalue("s3_bucket"), prefix="contract/"))
    try:
        # A small listing page, so delete_prefix has to go through several.
        yield S3BlobStore(bucket, part_size=PART, list_page=7)
    finally:
        await bucket.aclose()


async def read(blobs: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in blobs.open(key, start=start, end=end)])


async def put(blobs: BlobStore, key: str, data: bytes, tmp_path: Path) -> None:
    source = tmp_path / f"source-{os.urandom(4).hex()}"
    source.write_bytes(data)
    await blobs.put_file(key, source)


async def test_a_stored_file_has_its_size_and_bytes(blobs: BlobStore, tmp_path: Path) -> None:
    await put(blobs, "recordings/r/raw/u", b"hello, world", tmp_path)
    assert await blobs.size("recordings/r/raw/u") == 12
    assert await read(blobs, "recordings/r/raw/u") == b"hello, world"


async def test_put_replaces_the_object(blobs: BlobStore, tmp_path: Path) -> None:
    await put(blobs, "k/a", b"first version", tmp_path)
    await put(blobs, "k/a", b"second", tmp_path)
    assert await read(blobs, "k/a") == b"second"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(0, None, b"0123456789"), (3, 7, b"3456"), (9, None, b"9"), (4, 4, b""), (10, None, b""), (8, 99, b"89")],
)
async def test_open_streams_the_byte_range_asked_for(
    blobs: BlobStore, tmp_path: Path, start: int, end: int | None, expected: bytes
) -> None:
    await put(blobs, "k/digits", b"0123456789", tmp_path)
    assert await read(blobs, "k/digits", start, end) == expected


async def test_files_bigger_than_a_part_go_and_come_back_whole(blobs: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(3 * PART + 12345)
    await put(blobs, "recordings/r/media/g/download.mp4", data, tmp_path)
    assert await blobs.size("recordings/r/media/g/download.mp4") == len(data)
    target = tmp_path / "copy.mp4"
    await blobs.get_file("recordings/r/media/g/download.mp4", target)
    assert target.read_bytes() == data
    assert await read(blobs, "recordings/r/media/g/download.mp4", PART - 3, PART + 5) == data[PART - 3 : PART + 5]


async def test_an_empty_file_is_an_empty_object(blobs: BlobStore, tmp_path: Path) -> None:
    await put(blobs, "k/empty", b"", tmp_path)
    assert await blobs.size("k/empty") == 0
    assert await read(blobs, "k/empty") == b""
    await blobs.get_file("k/empty", tmp_path / "empty")
    assert (tmp_path / "empty").read_bytes() == b""


async def test_missing_objects(blobs: BlobStore, tmp_path: Path) -> None:
    assert await blobs.size("k/missing") is None
    with pytest.raises(FileNotFoundError):
        await read(blobs, "k/missing")
    with pytest.raises(FileNotFoundError):
        await read(blobs, "k/missing", 2, 5)
    with pytest.raises(FileNotFoundError):
        await blobs.get_file("k/missing", tmp_path / "copy")
    await blobs.delete("k/missing")  # absent is not an error
    assert await blobs.delete_prefix("nothing/here/") == 0


async def test_delete_removes_one_object(blobs: BlobStore, tmp_path: Path) -> None:
    await put(blobs, "k/a", b"a", tmp_path)
    await put(blobs, "k/b", b"b", tmp_path)
    await blobs.delete("k/a")
    assert await blobs.size("k/a") is None
    assert await blobs.size("k/b") == 1


async def test_delete_prefix_removes_everything_under_it_and_nothing_else(blobs: BlobStore, tmp_path: Path) -> None:
    keys = [f"recordings/r1/media/g/{rung}/seg_{i:05d}.m4s" for rung in ("720p", "360p") for i in range(12)]
    keys += ["recordings/r1/raw/u", "recordings/r1/media/g/master.m3u8"]
    for key in keys:
        await put(blobs, key, key.encode(), tmp_path)
    await put(blobs, "recordings/r10/raw/u", b"a neighbour whose name starts alike", tmp_path)
    assert await blobs.delete_prefix("recordings/r1/") == len(keys)
    assert all([await blobs.size(key) is None for key in keys])
    assert await blobs.size("recordings/r10/raw/u") is not None


async def test_a_prefix_ends_with_a_slash(blobs: BlobStore) -> None:
    with pytest.raises(ValueError, match="ends with"):
        await blobs.delete_prefix("recordings/r1")


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/absolute"])
async def test_keys_escaping_the_store_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="blob key"):
        await blobs.size(key)
