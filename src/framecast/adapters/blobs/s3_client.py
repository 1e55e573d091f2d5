"""One S3 bucket (and key prefix) through aiobotocore, narrowed to the calls framecast makes.

Keys given to S3Bucket are relative to the prefix; `full()` adds it. Everything here is stateless apart from the
client's connection pool, so any number of instances may share a bucket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError

MIB = 1024 * 1024
GIB = 1024 * MIB
MIN_PART = 5 * MIB  # S3 rejects parts under 5 MiB except the last
MAX_COPY = 5 * GIB  # the most one CopyObject or UploadPartCopy copies
MAX_PARTS = 10_000  # parts of one multipart upload
DELETE_BATCH = 1000  # keys of one DeleteObjects
COPY_PART = 1 * GIB  # range of each UploadPartCopy when an object is too big for one CopyObject
CONCURRENCY = 4  # requests one transfer keeps in flight (multipart puts, ranged gets, part copies)
READ_CHUNK = 1024 * 1024
UPLOADS = "uploads/"  # where uploads in progress live (s3_uploads.py); no blob key starts with it

# Error codes meaning "no such object / upload". Ceph answers ListParts on a completed upload with NoSuchKey.
_MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})
T = TypeVar("T")


def blob_key(key: str, *, folder: bool = False) -> str:
    """`key` when it names an object (or, with `folder`, a prefix) framecast may use: relative, no empty, `.` or
    `..` segments, and outside the uploads' area. Keys are server-made; a bad one is a bug, refused loudly."""
    segments = key.split("/")
    if folder:
        segments = segments[:-1]
    bad = (
        not key
        or any(segment in ("", ".", "..") for segment in segments)
        or any(ord(c) < 32 for c in key)
        or key.startswith(UPLOADS)
    )
    if bad:
        raise ValueError(f"not a blob key: {key!r}")
    return key


def is_missing(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and str(exc.response.get("Error", {}).get("Code")) in _MISSING


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True, slots=True)
class S3Options:
    """How to reach the service. Credentials left unset come from botocore's standard chain (AWS_ACCESS_KEY_ID...,
    the shared config files, instance roles)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    public_endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "auto"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    max_connections: int = 64


def client_config(options: S3Options) -> Config:
    return Config(
        signature_version="s3v4",
        # Bodies are not hashed into the signature (botocore would do it on the event loop, stalling every transfer
        # for the SHA-256 of each part); instead each carries a Content-MD5, computed in a worker thread, which the
        # signature covers and S3 checks (see `body`).
        s3={"addressing_style": options.addressing_style, "payload_signing_enabled": False},
        # No other checksums: the newer botocore default (a CRC on every request) is refused by many S3-compatible
        # services.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=options.max_connections,
        retries={"mode": "standard", "max_attempts": 5},
    )


class S3Bucket:
    """A connected client for one bucket; `aclose()` releases its connections."""

    def __init__(self, client: Any, signer: Any, options: S3Options, stack: contextlib.AsyncExitStack) -> None:
        self.client = client
        self._signer = signer  # the same credentials, for URLs viewers open (S3_PUBLIC_ENDPOINT_URL)
        self.name = options.bucket
        self.prefix = options.prefix
        self._stack = stack

    @classmethod
    async def connect(cls, options: S3Options) -> S3Bucket:
        """Create the client (no request is made: `ping` checks the bucket is there)."""
        session = get_session()
        arguments: dict[str, Any] = {
            "region_name": options.region,
            "aws_access_key_id": options.access_key_id,
            "aws_secret_access_key": options.secret_access_key,
            "config": client_config(options),
        }
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                session.create_client("s3", endpoint_url=options.endpoint_url, **arguments)
            )
            signer = client
            if options.public_endpoint_url and options.public_endpoint_url != options.endpoint_url:
                signer = await stack.enter_async_context(
                    session.create_client("s3", endpoint_url=options.public_endpoint_url, **arguments)
                )
            return cls(client, signer, options, stack.pop_all())
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self._stack.aclose()

    def full(self, key: str) -> str:
        return self.prefix + key

    # -- objects -----------------------------------------------------------------------------------------------------

    async def head(self, key: str) -> dict[str, Any] | None:
        """The object's HEAD answer (ContentLength, Metadata, ...), or None when there is no such object."""
        try:
            response: dict[str, Any] = await self.client.head_object(Bucket=self.name, Key=self.full(key))
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        return response

    async def get(self, key: str, *, start: int = 0, end: int | None = None) -> dict[str, Any]:
        """GetObject for bytes [start, end) (the whole object by default); raises FileNotFoundError when absent.

        The caller reads (or closes) response["Body"].
        """
        arguments: dict[str, Any] = {"Bucket": self.name, "Key": self.full(key)}
        if start or end is not None:
            arguments["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            response: dict[str, Any] = await self.client.get_object(**arguments)
        except ClientError as exc:
            if is_missing(exc):
                raise FileNotFoundError(f"no object {key!r} in bucket {self.name!r}") from None
            raise
        return response

    async def chunks(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) of the object; the connection is released however the iteration ends."""
        response = await self.get(key, start=start, end=end)
        async with response["Body"] as body:
            while chunk := await body.read(READ_CHUNK):
                yield chunk

    async def put(self, key: str, data: bytes | bytearray | memoryview, **extra: Any) -> str:
        """PutObject; returns the ETag."""
        response = await self.client.put_object(Bucket=self.name, Key=self.full(key), **await body(data), **extra)
        return str(response["ETag"])

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove the objects (absent ones are not an error), DELETE_BATCH per request."""
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": self.full(key)} for key in keys[start : start + DELETE_BATCH]]
            if len(batch) == 1:
                await self.client.delete_object(Bucket=self.name, Key=batch[0]["Key"])
                continue
            response = await self.client.delete_objects(Bucket=self.name, Delete={"Objects": batch, "Quiet": True})
            if errors := response.get("Errors"):
                first = errors[0]
                raise OSError(f"S3 kept {len(errors)} objects: {first.get('Key')}: {first.get('Message')}")

    async def copy(self, source: str, target: str, *, size: int, copy_limit: int = MAX_COPY) -> None:
        """Copy the first `size` bytes of object `source` (usually all of it) to `target` inside the service (no
        bytes pass through here).

        CopyObject copies a whole object of at most 5 GiB; a bigger one, or the start of one, is copied as a
        multipart upload of UploadPartCopy ranges.
        """
        origin = {"Bucket": self.name, "Key": self.full(source)}
        head = await self.head(source)
        if head is None:
            raise FileNotFoundError(f"no object {source!r} in bucket {self.name!r}")
        if size <= copy_limit and int(head["ContentLength"]) == size:
            await self.client.copy_object(
                Bucket=self.name, Key=self.full(target), CopySource=origin, MetadataDirective="REPLACE"
            )
            return
        step = min(COPY_PART, copy_limit)
        ranges = [(start, min(start + step, size)) for start in range(0, size, step)]
        async with self.multipart(target) as upload:
            jobs = [
                functools.partial(upload.copy_part, number, source, start=start, end=end)
                for number, (start, end) in enumerate(ranges, start=1)
            ]
            await upload.complete(await bounded_gather(jobs))

    # -- multipart uploads -------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def multipart(self, key: str) -> AsyncIterator[Multipart]:
        """A new multipart upload to `key`, aborted if the block raises before `complete`."""
        response = await self.client.create_multipart_upload(Bucket=self.name, Key=self.full(key))
        upload = Multipart(self, key, str(response["UploadId"]))
        try:
            yield upload
        except BaseException:
            with contextlib.suppress(Exception):
                await upload.abort()
            raise

    async def presign(self, key: str, *, expires_in: int, **response_headers: str) -> str:
        params = {"Bucket": self.name, "Key": self.full(key), **response_headers}
        url: str = await self._signer.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return url

    async def ping(self) -> None:
        await self.client.head_bucket(Bucket=self.name)


@dataclass(frozen=True, slots=True)
class Part:
    """An uploaded part of a multipart upload."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class Multipart:
    """One multipart upload (S3's UploadId) to `key`."""

    bucket: S3Bucket
    key: str
    upload_id: str

    def _arguments(self) -> dict[str, Any]:
        return {"Bucket": self.bucket.name, "Key": self.bucket.full(self.key), "UploadId": self.upload_id}

    async def upload_part(self, number: int, data: bytes | bytearray | memoryview) -> Part:
        response = await self.bucket.client.upload_part(PartNumber=number, **await body(data), **self._arguments())
        return Part(number, len(data), str(response["ETag"]))

    async def copy_part(self, number: int, source: str, *, start: int, end: int) -> Part:
        """Part `number` made of bytes [start, end) of object `source`, copied inside the service."""
        origin = {"Bucket": self.bucket.name, "Key": self.bucket.full(source)}
        response = await self.bucket.client.upload_part_copy(
            PartNumber=number, CopySource=origin, CopySourceRange=f"bytes={start}-{end - 1}", **self._arguments()
        )
        return Part(number, end - start, str(response["CopyPartResult"]["ETag"]))

    async def parts(self) -> list[Part] | None:
        """Every uploaded part, in order; None when the upload is gone (completed or aborted)."""
        found: list[Part] = []
        arguments = self._arguments()
        try:
            while True:
                response = await self.bucket.client.list_parts(**arguments)
                found += [Part(int(p["PartNumber"]), int(p["Size"]), str(p["ETag"])) for p in response.get("Parts", [])]
                if not response.get("IsTruncated"):
                    return found
                arguments["PartNumberMarker"] = response["NextPartNumberMarker"]
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise

    async def complete(self, parts: Sequence[Part]) -> None:
        listed = [{"PartNumber": part.number, "ETag": part.etag} for part in sorted(parts, key=lambda p: p.number)]
        await self.bucket.client.complete_multipart_upload(MultipartUpload={"Parts": listed}, **self._arguments())

    async def abort(self) -> None:
        """Abort the upload; one that is gone already is not an error."""
        try:
            await self.bucket.client.abort_multipart_upload(**self._arguments())
        except ClientError as exc:
            if not is_missing(exc):
                raise


async def body(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The Body and ContentMD5 arguments of a request sending `data`: small bodies as bytes, big ones streamed
    (see Body), their MD5 computed in a worker thread so the event loop goes on receiving meanwhile."""
    if len(data) <= Body.SLICE:
        return {"Body": bytes(data), "ContentMD5": _md5(data)}
    return {"Body": Body(data), "ContentMD5": await anyio.to_thread.run_sync(_md5, data)}


def _md5(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class Body:
    """Bytes in memory as a request body, never copied whole.

    aiohttp streams an async iterable in slices under flow control, where raw bytes would be handed to the socket in
    one write (their unsent rest copied into the transport's buffer, with a ResourceWarning); botocore wants a
    file-like body, which it rewinds to send again on a retry. Being file-like, it is sent with `Expect:
    100-continue` (a round trip), which is why small bodies go as plain bytes.
    """

    SLICE = 256 * 1024

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = memoryview(data)
        self._position = 0

    def __len__(self) -> int:
        return len(self._data)

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else min(len(self._data), self._position + size)
        piece = bytes(self._data[self._position : end])
        self._position = end
        return piece

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._position, len(self._data))[whence]
        self._position = max(0, min(len(self._data), base + offset))
        return self._position

    def tell(self) -> int:
        return self._position

    async def __aiter__(self) -> AsyncIterator[memoryview]:
        for start in range(0, len(self._data), self.SLICE):
            yield self._data[start : start + self.SLICE]


async def bounded_gather(jobs: Sequence[Callable[[], Awaitable[T]]], *, limit: int = CONCURRENCY) -> list[T]:
    """Run the jobs with at most `limit` at a time; results in job order. The first failure cancels the rest."""
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(run(job)) for job in jobs]
    return [task.result() for task in tasks]
