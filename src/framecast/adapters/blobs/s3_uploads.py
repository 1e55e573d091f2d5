"""tus uploads in progress on S3: one multipart upload per tus upload, plus a tail object (docs/storage.md).

Upload `u` is two keys under `{prefix}uploads/u/`:

- `data`: the key of the upload's S3 multipart upload, which takes each part as soon as it has arrived; an object
  once the upload is sealed (by finish or concatenate).
- `tail`: the bytes after the last part, too few to be a part yet (S3 rejects parts under 5 MiB except the last),
  and in its metadata the upload's record: the multipart upload's id, how many parts come before the tail and their
  total size, and the upload's state (open, sealed, discarding). It is made with the upload and removed last.

The offset is the recorded size of the parts plus the tail's. An append reads the tail (one GET), folds it into the
next part, uploads parts a few at a time as they fill (s3_parts.PartWriter), rewrites the tail's record as parts are
confirmed in order (the bytes folded into them gone), and once more at the end with the bytes left over. Nothing
lives on local disk or in memory between calls, so any instance continues an upload another began.

The record is written after the parts it counts, so it never claims bytes S3 does not hold. A crash before a part
is recorded leaves the previous tail, which still describes the upload exactly: the offset is lower than what
reached S3 (the client resends from it), and the parts S3 holds beyond the record -- orphans, numbered from
parts + 1, at most as many as were in flight -- are replaced by the next parts as the upload goes on; any left when
it is sealed are completed after its bytes (see `_seal`). S3's own list of parts (ListParts: a request per 1,000
parts, and 45 ms on Ceph) is therefore read only to complete the upload. Callers serialise calls on one upload
(services/upload_locks.py).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import anyio

from framecast.adapters.blobs.s3_client import (
    MAX_COPY,
    MIN_PART,
    READ_CHUNK,
    UPLOADS,
    Multipart,
    Part,
    S3Bucket,
    blob_key,
)
from framecast.adapters.blobs.s3_parts import PARTS_IN_FLIGHT, Buffers, PartWriter, concatenation_plan
from framecast.domain.uploads import OffsetMismatch, UploadError

_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class _State(StrEnum):
    OPEN = "open"  # takes bytes
    SEALED = "sealed"  # its parts, the tail among them, are (being) completed into `data`: it takes no more bytes
    DISCARDING = "discarding"  # being removed: it no longer exists for anyone, and a discard cut short goes on


@dataclass(frozen=True, slots=True)
class _Record:
    """What the tail's metadata says about its upload."""

    multipart_id: str
    parts: int  # parts before the tail, numbered 1..parts
    parts_size: int
    state: _State = _State.OPEN

    def metadata(self) -> dict[str, str]:
        return {
            "multipart": self.multipart_id,
            "parts": str(self.parts),
            "parts-size": str(self.parts_size),
            "state": self.state.value,
        }

    @classmethod
    def read(cls, head: dict[str, Any], upload_id: str) -> _Record:
        """The record in a tail's HEAD or GET answer; raises FileNotFoundError for an upload being discarded."""
        metadata = head.get("Metadata", {})
        try:
            record = cls(
                metadata["multipart"], int(metadata["parts"]), int(metadata["parts-size"]), _State(metadata["state"])
            )
        except (KeyError, ValueError):
            raise RuntimeError(f"upload {upload_id} has a tail without a readable record: {metadata!r}") from None
        if record.state is _State.DISCARDING:
            raise FileNotFoundError(f"upload {upload_id} was discarded")
        return record


class S3UploadStore:
    """UploadStore with concatenation on S3. Parts are `min_part` to `part_size` bytes (the last may be shorter)."""

    def __init__(
        self,
        bucket: S3Bucket,
        *,
        part_size: int,
        min_part: int = MIN_PART,
        copy_limit: int = MAX_COPY,
        in_flight: int = PARTS_IN_FLIGHT,
    ) -> None:
        if not MIN_PART <= min_part <= part_size:
            raise ValueError(f"parts need {MIN_PART} <= min_part ({min_part}) <= part_size ({part_size})")
        self._bucket = bucket
        self._part_size = part_size
        self._in_flight = in_flight
        self._buffers = Buffers(part_size, keep=in_flight + 1)
        self._min_part = min_part
        self._copy_limit = copy_limit

    async def create(self, upload_id: str) -> None:
        await self._create(upload_id)

    async def offset(self, upload_id: str) -> int:
        """The durable size of the upload; raises FileNotFoundError when there is none (finished or discarded)."""
        record, tail = await self._head(upload_id)
        return record.parts_size + tail

    async def append(self, upload_id: str, *, offset: int, chunks: AsyncIterator[bytes], limit: int) -> int:
        """Write `chunks` at `offset` (the current size) and return the new size; raises OffsetMismatch.

        Parts go to S3 as they fill; before returning, the rest is stored as a last part (when it is big enough)
        or as the new tail. If `chunks` raises, what arrived is kept just the same and the error propagates; if S3
        fails, nothing after the failed write is kept and its error propagates.
        """
        response = await self._bucket.get(_key(upload_id, "tail"))
        async with response["Body"] as tail:
            record, tail_size = _Record.read(response, upload_id), int(response["ContentLength"])
            if record.parts_size + tail_size != offset:
                raise OffsetMismatch(expected=record.parts_size + tail_size, got=offset)
            if record.state is _State.SEALED:
                return await _refuse_bytes(upload_id, offset, chunks, limit)
            writer = self._writer(upload_id, record)
            # The tail is shorter than a part, so this never sends one: it is where the next part begins.
            while piece := await tail.read(READ_CHUNK):
                await writer.write(piece)
        written = 0
        try:
            async for chunk in chunks:
                piece = memoryview(chunk)[: limit - written]
                await writer.write(piece)
                written += len(piece)
                if written >= limit:
                    break
        finally:
            # Also when the body failed or the request was cancelled: whatever arrived is kept.
            with anyio.CancelScope(shield=True):
                await self._keep(upload_id, writer, record, tail_before=tail_size)
        return offset + written

    async def finish(self, upload_id: str, *, key: str) -> int:
        """Seal the upload into one object, copy it to blob `key` and remove the upload; returns the size.

        S3 has no rename, and a multipart upload's key is fixed when it is created: before the blob key is known (a
        partial upload, say, is bound to its recording only when the final upload is made). So the parts are
        completed under the upload's own `data` key and copied to `key` inside S3 (CopyObject, or UploadPartCopy
        ranges beyond 5 GiB): no byte passes through framecast, and Ceph copies by reference. Every step may be
        repeated, so a finish cut short by a crash is completed by the next call (the service makes it when it
        reconciles the upload).
        """
        key = blob_key(key)
        source, size = await self._seal(upload_id)
        if source is None:
            await self._bucket.put(key, b"")
        else:
            await self._bucket.copy(source, key, size=size, copy_limit=self._copy_limit)
        await self.discard(upload_id)
        return size

    async def discard(self, upload_id: str) -> None:
        """Mark the upload discarding (from then on it does not exist), abort its multipart upload and remove its
        objects, the tail last, so that a discard cut short is completed by the next; an absent upload is no error."""
        tail = _key(upload_id, "tail")
        head = await self._bucket.head(tail)
        if head is None:
            return
        try:
            record = _Record.read(head, upload_id)
        except FileNotFoundError:  # a discard cut short: carry on with it
            metadata = head["Metadata"]
            record = _Record(metadata["multipart"], 0, 0, _State.DISCARDING)
        else:
            record = dataclasses.replace(record, state=_State.DISCARDING)
            await self._bucket.put(tail, b"", Metadata=record.metadata())
        await self._multipart(upload_id, record).abort()
        await self._bucket.delete([_key(upload_id, "data")])
        await self._bucket.delete([tail])

    async def concatenate(self, upload_id: str, *, parts: Sequence[str]) -> int:
        """Create `upload_id` from the bytes of `parts`, in order. The parts are left for the caller to discard;
        those with whole parts are sealed on the way (completed into one object, they take no more bytes).

        Stretches of at least a part are copied inside S3 (UploadPartCopy, a few at a time); only what is too short
        to be a part of its own -- partial uploads under 5 MiB, the bytes that complete a part begun by the previous
        one -- is read through framecast (concatenation_plan). A final upload shorter than a part ends up in its
        tail. A concatenation cut short leaves a final upload that never completes (the caller lets it expire and
        discards it), so parts copied at once may outrun the record there.
        """
        _checked(upload_id)
        sources = [await self._seal(part) for part in parts]
        await self.discard(upload_id)  # a final upload is made afresh, as a file would be overwritten
        record = await self._create(upload_id)
        writer = self._writer(upload_id, record)
        sizes = [size for _, size in sources]
        plan = concatenation_plan(sizes, min_part=self._min_part, part_size=self._part_size, max_copy=self._copy_limit)
        keys = [key for key, _ in sources]
        copies: list[tuple[str, int, int]] = []  # runs of copied spans go together, a few at a time
        for span in plan:
            source = keys[span.source]
            assert source is not None  # only empty sources have no object, and they have no spans
            if span.copied:
                copies.append((source, span.start, span.end))
                continue
            if copies:
                await writer.copy(copies)
                copies = []
            async for chunk in self._bucket.chunks(source, start=span.start, end=span.end):
                await writer.write(chunk)
        if copies:
            await writer.copy(copies)
        await self._keep(upload_id, writer, record, tail_before=0)
        return sum(sizes)

    # -- the record ------------------------------------------------------------------------------------------------

    async def _create(self, upload_id: str) -> _Record:
        tail = _key(upload_id, "tail")
        if await self._bucket.head(tail) is not None:
            raise FileExistsError(f"upload {upload_id} exists")
        async with self._bucket.multipart(_key(upload_id, "data")) as multipart:
            record = _Record(multipart.upload_id, parts=0, parts_size=0)
            await self._bucket.put(tail, b"", Metadata=record.metadata())
            return record
        raise AssertionError("unreachable")

    async def _head(self, upload_id: str) -> tuple[_Record, int]:
        """The upload's record and tail size; raises FileNotFoundError when there is no such upload."""
        head = await self._bucket.head(_key(upload_id, "tail"))
        if head is None:
            raise FileNotFoundError(f"no upload {upload_id}")
        return _Record.read(head, upload_id), int(head["ContentLength"])

    def _multipart(self, upload_id: str, record: _Record) -> Multipart:
        return Multipart(self._bucket, _key(upload_id, "data"), record.multipart_id)

    def _writer(self, upload_id: str, record: _Record) -> PartWriter:
        """A writer of the parts after those `record` counts, which records the parts S3 confirms (with an empty
        tail: the tail's bytes went into the first one)."""

        async def confirmed(parts: Sequence[Part]) -> None:
            await self._bucket.put(_key(upload_id, "tail"), b"", Metadata=_grown(record, parts).metadata())

        return PartWriter(
            self._multipart(upload_id, record),
            next_number=record.parts + 1,
            buffers=self._buffers,
            confirmed=confirmed,
            in_flight=self._in_flight,
        )

    async def _keep(self, upload_id: str, writer: PartWriter, record: _Record, *, tail_before: int) -> None:
        """Make what `writer` holds durable: the parts in flight, then the rest as a last part when it is big enough,
        else as the new tail; then release the writer."""
        try:
            await writer.settle()  # raises if a part failed: then nothing after it may be stored
            if writer.buffered >= self._min_part:
                await writer.send_remainder()
            if writer.buffered and (writer.uploaded or writer.buffered != tail_before):
                grown = _grown(record, writer.uploaded)
                await self._bucket.put(_key(upload_id, "tail"), writer.remainder(), Metadata=grown.metadata())
        finally:
            writer.close()

    async def _seal(self, upload_id: str) -> tuple[str | None, int]:
        """The upload's bytes as (the start of) one object: its key (None for an empty upload) and size.

        With no parts the tail alone is the upload, and it is used as it is. Otherwise the tail becomes the last part
        (S3 allows it to be short, even empty), replacing any orphan part there, the record says sealed, and the
        parts are completed into `data`. Each step is safe to repeat.

        Ceph completes a multipart upload only with every part it holds, so orphan parts beyond the tail's number
        (left by a crash while several parts were in flight) go into the object too, after the upload's bytes: the
        tail's part is then padded to the smallest whole part, and the object is longer than the upload, which its
        readers allow for (they read `size` bytes from its start).
        """
        record, tail = await self._head(upload_id)
        multipart = self._multipart(upload_id, record)
        if record.state is _State.OPEN:
            if record.parts == 0:
                return (_key(upload_id, "tail"), tail) if tail else (None, 0)
            last = record.parts + 1
            held = await multipart.parts()
            if held is None:
                raise RuntimeError(f"upload {upload_id}: its multipart upload is gone but its record is open")
            if any(part.number > last for part in held) and tail < self._min_part:
                padded = bytearray(self._min_part)
                padded[:tail] = b"".join([chunk async for chunk in self._bucket.chunks(_key(upload_id, "tail"))])
                await multipart.upload_part(last, padded)
            elif tail:
                await multipart.copy_part(last, _key(upload_id, "tail"), start=0, end=tail)
            else:
                await multipart.upload_part(last, b"")
            record = _Record(record.multipart_id, last, record.parts_size + tail, _State.SEALED)
            await self._bucket.put(_key(upload_id, "tail"), b"", Metadata=record.metadata())
        parts = await multipart.parts()
        if parts is not None:
            counted = parts[: record.parts]
            numbered = [part.number for part in counted] == list(range(1, record.parts + 1))
            padding = sum(part.size for part in counted) - record.parts_size
            if not numbered or not 0 <= padding <= (self._min_part if len(parts) > record.parts else 0):
                raise RuntimeError(f"upload {upload_id}: S3 holds other parts than its record says: {parts}")
            await multipart.complete(parts)
        elif await self._bucket.head(_key(upload_id, "data")) is None:
            raise FileNotFoundError(f"upload {upload_id} was discarded")
        return _key(upload_id, "data"), record.parts_size


def _grown(record: _Record, parts: Sequence[Part]) -> _Record:
    """`record` counting `parts` too."""
    return dataclasses.replace(
        record, parts=record.parts + len(parts), parts_size=record.parts_size + sum(part.size for part in parts)
    )


def _checked(upload_id: str) -> str:
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise ValueError(f"not an upload id: {upload_id!r}")
    return upload_id


def _key(upload_id: str, name: str) -> str:
    return f"{UPLOADS}{_checked(upload_id)}/{name}"


async def _refuse_bytes(upload_id: str, size: int, chunks: AsyncIterator[bytes], limit: int) -> int:
    """A sealed upload takes an empty append (a client confirming it is done), never bytes."""
    async for chunk in chunks:
        if chunk[:limit]:
            raise UploadError(f"upload {upload_id} was assembled and takes no more bytes")
    return size
