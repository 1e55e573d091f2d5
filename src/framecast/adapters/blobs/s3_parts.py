"""Bytes on their way into an S3 multipart upload: a stream cut into parts, and the plan that assembles several
uploads into one with as few bytes as possible passing through framecast."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from framecast.adapters.blobs.s3_client import MAX_COPY, Multipart, Part, bounded_gather


class PartWriter:
    """Cut written bytes into parts of `part_size` and upload each the moment it is full.

    One part uploads while the next one fills, so a stream is not held up by S3 and at most two part buffers exist;
    each byte is in memory once (a short last buffer is truncated in place, never copied). Parts are numbered on
    from `next_number`; `uploaded` lists those S3 confirmed, and `confirmed(uploaded)` is awaited after each one,
    before the next starts uploading. Bytes short of a whole part stay buffered for the caller: `send_remainder()`
    makes them a (last) part, `take_remainder()` hands them over (for the tail object). When an upload fails the
    bytes after it are dropped (storing them would leave a gap) and the failure is raised by the call that notices it.
    """

    def __init__(
        self,
        upload: Multipart,
        *,
        next_number: int,
        part_size: int,
        confirmed: Callable[[Sequence[Part]], Awaitable[None]],
    ) -> None:
        self._upload = upload
        self._part_size = part_size
        self._confirmed = confirmed
        self._next = next_number
        self._buffer = bytearray(part_size)
        self._spare: bytearray | None = None
        self._filled = 0
        self._in_flight: tuple[asyncio.Task[Part], bytearray] | None = None
        self.uploaded: list[Part] = []

    @property
    def buffered(self) -> int:
        return self._filled

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            piece = view[: self._part_size - self._filled]
            self._buffer[self._filled : self._filled + len(piece)] = piece
            self._filled += len(piece)
            view = view[len(piece) :]
            if self._filled == self._part_size:
                await self._send()

    async def send_remainder(self) -> None:
        """Upload what is buffered as a part of its own (S3 takes a short part only as the last), and wait for it."""
        if self._filled:
            await self._send()
        await self.settle()

    def take_remainder(self) -> bytearray:
        """The buffered bytes, handed over; the writer is empty afterwards."""
        remainder = self._buffer
        del remainder[self._filled :]  # truncated in place, not copied
        self._buffer, self._filled = bytearray(), 0
        return remainder

    async def copy(self, ranges: Sequence[tuple[str, int, int]]) -> None:
        """Append (object, start, end) byte ranges as parts copied inside S3, a few at a time; nothing may be
        buffered. Confirmed once all are in."""
        if self._filled:
            raise RuntimeError("a copied part cannot follow buffered bytes")
        await self.settle()
        jobs = [
            functools.partial(self._upload.copy_part, self._next + i, source, start=start, end=end)
            for i, (source, start, end) in enumerate(ranges)
        ]
        self.uploaded += await bounded_gather(jobs)
        self._next += len(ranges)
        await self._confirmed(self.uploaded)

    async def settle(self) -> None:
        """Wait for the part in flight (and its confirmation); if either failed, drop what is buffered and raise."""
        if self._in_flight is None:
            return
        (task, data), self._in_flight = self._in_flight, None
        try:
            self.uploaded.append(await task)
            await self._confirmed(self.uploaded)
        except BaseException:
            self._filled = 0
            task.cancel()
            raise
        if len(data) == self._part_size:
            self._spare = data  # S3 has it: the buffer can take the part after next

    async def _send(self) -> None:
        await self.settle()
        data = self._buffer
        del data[self._filled :]  # a short last part: truncated in place, not copied
        self._in_flight = (asyncio.create_task(self._upload.upload_part(self._next, data)), data)
        self._next += 1
        # The buffer in flight must not change until S3 has it: fill another one meanwhile.
        self._buffer, self._spare, self._filled = self._spare or bytearray(self._part_size), None, 0


@dataclass(frozen=True, slots=True)
class Span:
    """Bytes [start, end) of the source numbered `source`: copied inside S3 as one part, or read into the buffer."""

    source: int
    start: int
    end: int
    copied: bool


def concatenation_plan(sizes: Sequence[int], *, min_part: int, part_size: int, max_copy: int = MAX_COPY) -> list[Span]:
    """How to lay sources of `sizes` bytes end to end into a multipart upload (tusd's question for concatenation).

    S3 copies a byte range of an object into a part (UploadPartCopy), but every part except the last must be at
    least 5 MiB. So a stretch of at least `min_part` bytes met with an empty buffer is copied (at most `max_copy` per
    part); everything else -- small sources, the bytes that complete a part already begun -- is read through a
    part buffer of `part_size` that the writer sends whenever it fills. At most one part's worth of any source is
    read, except for sources smaller than `min_part`, which are read whole.
    """
    spans: list[Span] = []
    buffered = 0
    for source, size in enumerate(sizes):
        position = 0
        while position < size:
            left = size - position
            if buffered == 0 and left >= min_part:
                end = position + min(left, max_copy)
                spans.append(Span(source, position, end, copied=True))
            else:
                end = position + min(left, part_size - buffered)
                spans.append(Span(source, position, end, copied=False))
                buffered = (buffered + end - position) % part_size
            position = end
    return spans
