"""Bytes on their way into an S3 multipart upload: a stream cut into parts, and the plan that assembles several
uploads into one with as few bytes as possible passing through framecast."""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio

from framecast.adapters.blobs.s3_client import MAX_COPY, Multipart, Part, bounded_gather

PARTS_IN_FLIGHT = 3  # parts one append uploads at once: one S3 connection takes about 2/3 of what three take
# Parts are recorded (a PUT of the tail's record) once this much has landed, and when an append ends: a crash loses
# at most this much plus the parts in flight, which the client sends again.
CONFIRM_EVERY = 64 * 1024 * 1024


class Buffers:
    """Part buffers for reuse: a fresh `bytearray(size)` is zeroed and page-faulted in, which cost as much CPU as the
    rest of a PATCH's handling; a reused one is written over. At most `keep` wait here between uses."""

    def __init__(self, size: int, *, keep: int) -> None:
        self.size = size
        self._keep = keep
        self._free: list[bytearray] = []

    def take(self) -> bytearray:
        return self._free.pop() if self._free else bytearray(self.size)

    def give(self, buffer: bytearray) -> None:
        if len(self._free) < self._keep and len(buffer) == self.size:
            self._free.append(buffer)


class PartWriter:
    """Cut written bytes into parts and upload each the moment it is full, `in_flight` at a time.

    Parts upload while the next ones fill, so a stream is held up by S3 only when `in_flight` parts are on their
    way (one S3 connection takes a part at about two thirds of what three do). Each byte is in memory once, in a
    buffer from `buffers`. Parts are numbered on from `next_number`; `uploaded` lists those S3 confirmed, in order,
    and `confirmed(uploaded)` is awaited whenever it grew, before the writer goes on: a part is counted only once it
    and every part before it are in S3. Bytes short of a whole part stay buffered for the caller: `send_remainder()`
    makes them a (last) part, `remainder()` shows them (for the tail object). When an upload fails the parts after
    it are dropped (storing them would leave a gap; those S3 took anyway are orphans, which s3_uploads.py expects)
    and the failure is raised by the call that notices it. `close()` hands the buffers back.
    """

    def __init__(
        self,
        upload: Multipart,
        *,
        next_number: int,
        buffers: Buffers,
        confirmed: Callable[[Sequence[Part]], Awaitable[None]],
        in_flight: int = PARTS_IN_FLIGHT,
        confirm_every: int = CONFIRM_EVERY,
    ) -> None:
        self._upload = upload
        self._buffers = buffers
        self._part_size = buffers.size
        self._confirmed = confirmed
        self._limit = in_flight
        self._confirm_every = confirm_every
        self._next = next_number
        self._buffer: bytearray | None = None
        self._filled = 0
        self._flight: collections.deque[tuple[asyncio.Task[Part], bytearray]] = collections.deque()
        self._landed: list[Part] = []  # in S3, not yet confirmed
        self.uploaded: list[Part] = []

    @property
    def buffered(self) -> int:
        return self._filled

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            if self._buffer is None:
                self._buffer = self._buffers.take()
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

    def remainder(self) -> memoryview:
        """The buffered bytes (valid until the next write or `close`)."""
        return memoryview(self._buffer or b"")[: self._filled]

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
        """Wait for every part in flight (and its confirmation); if one failed, drop the rest and raise."""
        while self._flight:
            await self._land()
        await self._confirm()

    def close(self) -> None:
        """Hand the buffer back; parts still in flight are cancelled (their buffers are not reused)."""
        for task, _ in self._flight:
            task.cancel()
        self._flight.clear()
        if self._buffer is not None:
            self._buffers.give(self._buffer)
        self._buffer, self._filled = None, 0

    async def _send(self) -> None:
        while len(self._flight) >= self._limit:
            await self._land()
        assert self._buffer is not None
        data = memoryview(self._buffer)[: self._filled]
        self._flight.append((asyncio.create_task(self._upload.upload_part(self._next, data)), self._buffer))
        self._next += 1
        # The buffer in flight must not change until S3 has it: the next bytes go to another one.
        self._buffer, self._filled = None, 0

    async def _land(self) -> None:
        """Wait for the oldest part in flight and take every later one already done too; confirm them once they
        add up to `confirm_every` bytes (`settle` confirms the rest)."""
        task, buffer = self._flight.popleft()
        try:
            landed = [await task]
        except BaseException:
            self._filled = 0
            self.close()
            with anyio.CancelScope(shield=True):
                await self._confirm()  # what S3 took before the failure is kept
            raise
        self._buffers.give(buffer)
        while self._flight and _succeeded(self._flight[0][0]):
            task, buffer = self._flight.popleft()
            landed.append(task.result())
            self._buffers.give(buffer)
        self._landed += landed
        if sum(part.size for part in self._landed) >= self._confirm_every:
            await self._confirm()

    async def _confirm(self) -> None:
        if self._landed:
            self.uploaded += self._landed
            self._landed = []
            try:
                await self._confirmed(self.uploaded)
            except BaseException:
                self._filled = 0
                self.close()
                raise


def _succeeded(task: asyncio.Task[Part]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


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
