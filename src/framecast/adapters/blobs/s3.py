"""S3 storage: S3BlobStore for finished objects, S3UploadStore (s3_uploads.py) for tus uploads in progress.

Any S3-compatible service works (AWS, Ceph radosgw, MinIO...). Blob `key` is the object `{prefix}{key}`; uploads in
progress live under `{prefix}uploads/`, a name no blob key may start with. See docs/storage.md.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from botocore.exceptions import ClientError

from framecast.adapters.blobs.s3_client import (
    MAX_PARTS,
    MIB,
    MIN_PART,
    Part,
    S3Bucket,
    S3Options,
    blob_key,
    bounded_gather,
    error_code,
)
from framecast.adapters.blobs.s3_rules import Lifecycle, configure_bucket
from framecast.adapters.blobs.s3_uploads import S3UploadStore

__all__ = ["Lifecycle", "S3BlobStore", "S3Options", "S3UploadStore", "connect_s3_storage"]

PART_SIZE = 8 * MIB
LIST_PAGE = 1000  # keys per ListObjectsV2 page (the most S3 returns)


class S3BlobStore:
    """BlobStore and PresigningBlobStore on one bucket and prefix. Files bigger than a part move as multipart
    transfers, several parts at a time; streams are ranged GETs."""

    def __init__(self, bucket: S3Bucket, *, part_size: int = PART_SIZE, list_page: int = LIST_PAGE) -> None:
        if part_size < MIN_PART:
            raise ValueError(f"an S3 part is at least {MIN_PART} bytes, not {part_size}")
        self.bucket = bucket
        self._part_size = part_size
        self._list_page = list_page

    async def aclose(self) -> None:
        """Release the client's connections (it serves the upload store too)."""
        await self.bucket.aclose()

    async def ping(self) -> None:
        """Raise when the bucket cannot be reached (HeadBucket)."""
        await self.bucket.ping()

    async def size(self, key: str) -> int | None:
        head = await self.bucket.head(blob_key(key))
        return None if head is None else int(head["ContentLength"])

    async def open(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) with one ranged GET; a range past the end is empty, as with a file."""
        key = blob_key(key)
        if end is not None and end <= start:
            if await self.bucket.head(key) is None:
                raise FileNotFoundError(f"no blob {key!r}")
            return
        try:
            response = await self.bucket.get(key, start=start, end=end)
        except ClientError as exc:
            if error_code(exc) != "InvalidRange":
                raise
            if await self.bucket.head(key) is None:
                raise FileNotFoundError(f"no blob {key!r}") from None
            return
        async with response["Body"] as body:
            while chunk := await body.read(MIB):
                yield chunk

    async def delete(self, key: str) -> None:
        await self.bucket.delete([blob_key(key)])

    async def put_file(self, key: str, source: Path) -> None:
        """One PutObject up to a part's size, else a multipart upload of parts read from the file (a few at a
        time); `source` is left where it is."""
        key = blob_key(key)
        size = (await anyio.Path(source).stat()).st_size
        if size <= self._part_size:
            await self.bucket.put(key, await anyio.Path(source).read_bytes())
            return
        part_size = max(self._part_size, math.ceil(size / MAX_PARTS))
        fd = await anyio.to_thread.run_sync(os.open, source, os.O_RDONLY)
        try:
            async with self.bucket.multipart(key) as upload:

                async def part(number: int) -> Part:
                    start = (number - 1) * part_size
                    data = await anyio.to_thread.run_sync(os.pread, fd, min(part_size, size - start), start)
                    return await upload.upload_part(number, data)

                jobs = [functools.partial(part, number) for number in range(1, math.ceil(size / part_size) + 1)]
                await upload.complete(await bounded_gather(jobs))
        finally:
            os.close(fd)

    async def get_file(self, key: str, target: Path) -> None:
        """Write the object to `target`: a big one as ranged GETs of a part each, a few at a time."""
        key = blob_key(key)
        head = await self.bucket.head(key)
        if head is None:
            raise FileNotFoundError(f"no blob {key!r}")
        size = int(head["ContentLength"])
        fd = await anyio.to_thread.run_sync(functools.partial(os.open, target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
        try:

            async def fetch(start: int) -> None:
                end = min(start + self._part_size, size)
                position = start
                async for chunk in self.bucket.chunks(key, start=start, end=end):
                    await anyio.to_thread.run_sync(_write_at, fd, chunk, position)
                    position += len(chunk)
                if position != end:
                    raise OSError(f"blob {key!r} changed while it was read ({position} of {end} bytes)")

            await bounded_gather([functools.partial(fetch, start) for start in range(0, size, self._part_size)])
        except BaseException:
            os.close(fd)
            await anyio.Path(target).unlink(missing_ok=True)
            raise
        os.close(fd)

    async def delete_prefix(self, prefix: str) -> int:
        """List a page of keys, delete them in one request, go on after the last one; returns how many went."""
        if not prefix.endswith("/"):
            raise ValueError(f"a prefix ends with '/': {prefix!r}")
        full = self.bucket.full(blob_key(prefix, folder=True))
        removed = 0
        listing = {"Bucket": self.bucket.name, "Prefix": full, "MaxKeys": self._list_page}
        while True:
            page = await self.bucket.client.list_objects_v2(**listing)
            keys = [str(item["Key"]) for item in page.get("Contents", [])]
            if not keys:
                return removed
            await self.bucket.delete([key.removeprefix(self.bucket.prefix) for key in keys])
            removed += len(keys)
            listing["StartAfter"] = keys[-1]  # not a continuation token: the keys it would point past are gone

    async def presigned_url(
        self, key: str, *, expires_in: int, content_type: str | None = None, content_disposition: str | None = None
    ) -> str:
        headers = {}
        if content_type is not None:
            headers["ResponseContentType"] = content_type
        if content_disposition is not None:
            headers["ResponseContentDisposition"] = content_disposition
        return await self.bucket.presign(blob_key(key), expires_in=expires_in, **headers)


def _write_at(fd: int, data: bytes, position: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        view, position = view[written:], position + written


async def connect_s3_storage(
    options: S3Options,
    *,
    part_size: int = PART_SIZE,
    max_upload: int,
    lifecycle: Lifecycle | None = None,
    media_origin_url: str | None = None,
) -> tuple[S3BlobStore, S3UploadStore]:
    """Both stores on one client, the bucket's rules applied (s3_rules.configure_bucket). Upload parts are at least
    big enough for `max_upload` bytes to fit in S3's 10,000 parts. Close with `S3BlobStore.aclose()`."""
    bucket = await S3Bucket.connect(options)
    try:
        await configure_bucket(bucket, lifecycle=lifecycle, media_origin_url=media_origin_url)
    except BaseException:
        await bucket.aclose()
        raise
    min_part = max(MIN_PART, math.ceil(max_upload / (MAX_PARTS - 1)))
    blobs = S3BlobStore(bucket, part_size=part_size)
    uploads = S3UploadStore(bucket, part_size=max(part_size, min_part), min_part=min_part)
    return blobs, uploads
