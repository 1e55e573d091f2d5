"""What a crash leaves behind in S3 in the middle of an append or a finish, made by hand in a real bucket
(FRAMECAST_TEST_S3_URL), and how S3UploadStore carries on from it: consistent offsets and exact bytes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conftest import S3Service
from framecast.adapters.blobs.s3 import S3BlobStore, S3UploadStore, connect_s3_storage
from framecast.adapters.blobs.s3_client import Multipart, Part

MIB = 1024 * 1024
PREFIX = "crash/"


@pytest.fixture
async def stores(s3_service: S3Service, s3_bucket: str) -> AsyncIterator[tuple[S3UploadStore, S3BlobStore]]:
    blobs, uploads = await connect_s3_storage(s3_service.options(s3_bucket, prefix=PREFIX), max_upload=1024 * MIB)
    try:
        yield uploads, blobs
    finally:
        await blobs.aclose()


@pytest.fixture
def s3(s3_client: Any) -> Any:
    return s3_client


async def single(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def read(blobs: S3BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in blobs.open(key)])


def tail_of(s3: Any, bucket: str, upload_id: str) -> dict[str, str]:
    """The metadata of an upload's tail: its record."""
    metadata: dict[str, str] = s3.head_object(Bucket=bucket, Key=f"{PREFIX}uploads/{upload_id}/tail")["Metadata"]
    return metadata


def multipart_of(s3: Any, bucket: str, upload_id: str) -> dict[str, str]:
    """The S3 multipart upload behind a tus upload, as its tail's record names it."""
    multipart_id = tail_of(s3, bucket, upload_id)["multipart"]
    return {"Bucket": bucket, "Key": f"{PREFIX}uploads/{upload_id}/data", "UploadId": multipart_id}


async def test_a_part_uploaded_just_before_a_crash_is_not_counted_and_is_replaced(
    stores: tuple[S3UploadStore, S3BlobStore], s3: Any, s3_bucket: str
) -> None:
    uploads, blobs = stores
    tail, more, rest = os.urandom(3 * MIB), os.urandom(3 * MIB), os.urandom(MIB + 5)
    await uploads.create("u1")
    assert await uploads.append("u1", offset=0, chunks=single(tail), limit=len(tail)) == len(tail)
    # An append folded the tail and the next bytes into part 1, then died before writing the new tail; it had
    # received a few bytes more than it put in the part.
    s3.upload_part(PartNumber=1, Body=tail + more[:-100], **multipart_of(s3, s3_bucket, "u1"))

    assert await uploads.offset("u1") == len(tail)  # the tail's record counts no part: the client resends
    end = await uploads.append("u1", offset=len(tail), chunks=single(more, rest), limit=len(more + rest))
    assert end == len(tail + more + rest)
    assert await uploads.finish("u1", key="k") == end
    assert await read(blobs, "k") == tail + more + rest


@pytest.mark.parametrize("tail_size", [0, 1000])
async def test_an_orphan_part_left_by_a_crash_is_replaced_when_sealing(
    stores: tuple[S3UploadStore, S3BlobStore], s3: Any, s3_bucket: str, tail_size: int
) -> None:
    uploads, blobs = stores
    data, tail = os.urandom(6 * MIB), os.urandom(tail_size)
    await uploads.create("u1")
    await uploads.append("u1", offset=0, chunks=single(data, tail), limit=len(data + tail))  # part 1 (and a tail)
    # The part after the record, uploaded by an append that died before recording it.
    s3.upload_part(PartNumber=2, Body=os.urandom(5 * MIB), **multipart_of(s3, s3_bucket, "u1"))

    assert await uploads.offset("u1") == len(data + tail)
    assert await uploads.finish("u1", key="k") == len(data + tail)
    assert await read(blobs, "k") == data + tail


class Crash(Exception):
    """The process dying at this point."""


@pytest.mark.parametrize("tail_size", [0, 1000])
async def test_a_finish_that_died_after_completing_the_multipart_upload_is_finished_by_the_next(
    stores: tuple[S3UploadStore, S3BlobStore], s3: Any, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tail_size: int
) -> None:
    uploads, blobs = stores
    data = os.urandom(6 * MIB + tail_size)
    await uploads.create("u1")
    await uploads.append("u1", offset=0, chunks=single(data), limit=len(data))

    async def crash(*args: object, **kwargs: object) -> None:
        raise Crash

    with monkeypatch.context() as patched:
        patched.setattr(blobs.bucket, "copy", crash)  # the multipart upload is completed; copying it dies
        with pytest.raises(Crash):
            await uploads.finish("u1", key="k")
    assert await uploads.offset("u1") == len(data)
    assert await uploads.finish("u1", key="k") == len(data)
    assert await read(blobs, "k") == data
    with pytest.raises(FileNotFoundError):
        await uploads.offset("u1")
    assert s3.list_objects_v2(Bucket=s3_bucket, Prefix=f"{PREFIX}uploads/").get("Contents", []) == []


async def test_a_discard_that_died_half_way_is_completed_by_the_next(
    stores: tuple[S3UploadStore, S3BlobStore], s3: Any, s3_bucket: str
) -> None:
    uploads, _ = stores
    await uploads.create("u1")
    await uploads.append("u1", offset=0, chunks=single(b"abc"), limit=3)
    # The discard's first steps, then a crash: the tail says discarding, the multipart upload is aborted.
    s3.put_object(
        Bucket=s3_bucket,
        Key=f"{PREFIX}uploads/u1/tail",
        Body=b"",
        Metadata={**tail_of(s3, s3_bucket, "u1"), "state": "discarding"},
    )
    s3.abort_multipart_upload(**multipart_of(s3, s3_bucket, "u1"))

    with pytest.raises(FileNotFoundError):
        await uploads.offset("u1")
    with pytest.raises(FileNotFoundError):
        await uploads.append("u1", offset=3, chunks=single(b"d"), limit=1)
    await uploads.discard("u1")
    assert s3.list_objects_v2(Bucket=s3_bucket, Prefix=f"{PREFIX}uploads/").get("Contents", []) == []


@pytest.mark.parametrize("tail_size", [0, 1000])
async def test_orphan_parts_left_by_parts_in_flight_stay_out_of_the_upload(
    stores: tuple[S3UploadStore, S3BlobStore], s3: Any, s3_bucket: str, tail_size: int
) -> None:
    uploads, blobs = stores
    data, tail = os.urandom(6 * MIB), os.urandom(tail_size)
    await uploads.create("u1")
    await uploads.append("u1", offset=0, chunks=single(data), limit=len(data))  # part 1
    await uploads.append("u1", offset=len(data), chunks=single(tail), limit=len(tail))  # the tail
    # An append with parts 2-4 in flight died after S3 took 2 and 4 (not 3), before recording either.
    for number in (2, 4):
        s3.upload_part(PartNumber=number, Body=os.urandom(5 * MIB), **multipart_of(s3, s3_bucket, "u1"))

    assert await uploads.offset("u1") == len(data + tail)
    assert await uploads.finish("u1", key="k") == len(data + tail)
    assert await read(blobs, "k") == data + tail
    assert s3.head_object(Bucket=s3_bucket, Key=f"{PREFIX}k")["ContentLength"] == len(data + tail)


async def test_an_upload_goes_on_over_orphan_parts(
    stores: tuple[S3UploadStore, S3BlobStore], s3: Any, s3_bucket: str
) -> None:
    uploads, blobs = stores
    first, more = os.urandom(6 * MIB), os.urandom(9 * MIB)
    await uploads.create("u1")
    await uploads.append("u1", offset=0, chunks=single(first), limit=len(first))
    for number in (2, 3, 4):
        s3.upload_part(PartNumber=number, Body=os.urandom(5 * MIB), **multipart_of(s3, s3_bucket, "u1"))

    # The client resends from the offset: part 2 is replaced, 3 and 4 are still orphans when the upload is sealed.
    end = await uploads.append("u1", offset=len(first), chunks=single(more), limit=len(more))
    assert end == len(first + more)
    assert await uploads.finish("u1", key="k") == end
    assert await read(blobs, "k") == first + more


async def test_a_failed_part_drops_the_parts_after_it_even_those_s3_took(
    stores: tuple[S3UploadStore, S3BlobStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, blobs = stores
    uploads = S3UploadStore(blobs.bucket, part_size=5 * MIB, in_flight=3)
    data = os.urandom(22 * MIB)
    upload_part = Multipart.upload_part
    third_in = asyncio.Event()

    async def failing_second(self: Multipart, number: int, body: Any) -> Part:
        if number == 2:
            await third_in.wait()  # fails after S3 took the part after it
            raise OSError("connection reset by S3")
        part = await upload_part(self, number, body)
        if number == 3:
            third_in.set()
        return part

    await uploads.create("u1")
    with monkeypatch.context() as patched:
        patched.setattr(Multipart, "upload_part", failing_second)
        with pytest.raises(OSError, match="connection reset"):
            await uploads.append("u1", offset=0, chunks=single(data), limit=len(data))
    offset = await uploads.offset("u1")
    assert offset == 5 * MIB  # part 1 only: nothing after the failed part is counted
    end = await uploads.append("u1", offset=offset, chunks=single(data[offset:]), limit=len(data) - offset)
    assert end == len(data)
    assert await uploads.finish("u1", key="k") == len(data)
    assert await read(blobs, "k") == data
