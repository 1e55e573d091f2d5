"""The live upload manager: every run of a recording goes up as HLS segments, each as soon as ffmpeg finishes it.

A run's init segment (`ftyp` + `moov`) goes first, then each media segment (`moof` + `mdat`, about 2 s) the moment it
is whole on disk, numbered from 0 per run; runs are numbered from 1 in the journal's order (docs/live.md). When a run
is closed its last segments go and, at the same time, the run is ended with its segment count and the recording is
declared complete, so the server makes it READY the moment the last of them lands. At most two segments are in
flight at a time over all runs, the earliest (run, index) first.

Every request is retried with backoff while the server is unreachable or restarting. A segment refused as corrupt
(damaged on the way) is read from the spool again and resent; a segment whose run has no init segment on the server
gets the init segment first. Whatever the server says it still misses at completion is sent again from the spool.
The spool keeps every byte until the server has the whole recording, so a resumed upload (recovery) only needs the
server's own account of what it holds (`GET /live`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from framecast.agent import fmp4
from framecast.agent.client import ServerError, retrying
from framecast.agent.live import LiveClient, LiveState, Missing
from framecast.agent.spool import Entry, Run
from framecast.agent.uploader import POLL_SECONDS, UploadRefused, captured_bytes

T = TypeVar("T")
log = logging.getLogger(__name__)
# How often one segment is sent again after the server refused it as corrupt (or lacked its run's init segment).
PUT_ATTEMPTS = 5
# How often completion is asked for again after resending what the server said it missed.
COMPLETE_ATTEMPTS = 5
# The server has the whole recording once it says one of these.
DONE_STATUSES = frozenset({"READY", "PROCESSING"})


@dataclass(order=True)
class _Job:
    """One PUT waiting for a free slot; jobs are taken in (run, index) order, the init segment (-1) first."""

    run: int
    order: int
    seq: int
    index: int | None = field(compare=False)
    span: fmp4.Span = field(compare=False)
    path: Path = field(compare=False)
    done: asyncio.Future[None] = field(compare=False)


class SegmentUploader:
    """Uploads one spooled recording as live segments while it is captured. With `resume`, the server's account of
    what it already holds (a recovery) decides what is sent."""

    def __init__(
        self,
        *,
        entry: Entry,
        live: LiveClient,
        recording_id: str,
        parallel: int = 2,
        resume: bool = False,
        on_retry: Callable[[BaseException, float], None] | None = None,
    ) -> None:
        self._entry = entry
        self._live = live
        self._recording_id = recording_id
        self._parallel = parallel
        self._resume = resume
        self._on_retry = on_retry
        self._closed: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[int]] = {}
        self._listings: dict[int, fmp4.Fragments] = {}
        self._acked: dict[tuple[int, int | None], int] = {}
        self._queue: asyncio.PriorityQueue[_Job] = asyncio.PriorityQueue()
        self._workers: list[asyncio.Task[None]] = []
        self._seq = itertools.count()
        self._known: asyncio.Task[LiveState | None] | None = None
        # Segments are taken once the server knows the recording is capturing (RECORDING_STARTED acknowledged).
        self.capturing = asyncio.Event()
        self.capturing.set()

    @property
    def sent(self) -> int:
        """Bytes the server has acknowledged (or, resuming, said it holds), over every run."""
        return sum(self._acked.values())

    def captured(self) -> int:
        return captured_bytes(self._entry)

    def follow(self, run: Run) -> None:
        """Start sending a run that is being captured: each segment as soon as it is whole."""
        closed = self._closed.setdefault(run.file, asyncio.Event())
        if run.closed:
            closed.set()
        if run.file not in self._tasks:
            self._tasks[run.file] = asyncio.create_task(self._send(run))

    def closed(self, run: Run) -> None:
        """The run's capture ended and its length is in the journal: send its last segments and end it."""
        self._closed.setdefault(run.file, asyncio.Event()).set()

    async def finish(self) -> str:
        """Send and end every run, then complete the recording (resending what the server misses); returns its id."""
        runs = self._entry.journal.runs
        for run in runs:
            self.follow(run)
            self.closed(run)
        # Declared while the last pieces are still on their way, so the server makes the recording READY the moment
        # the last one lands rather than a round trip later. That answer may count pieces in flight as missing: once
        # every piece has settled, completion is asked again unless it already said READY, and that answer counts.
        early = asyncio.create_task(self._declare(len(runs)))
        try:
            counts = await _all(self._tasks.values())
            if not sum(counts):
                raise UploadRefused("nothing was captured: there is no video to upload")
            if not await early:
                await self._complete(len(runs))
        finally:
            early.cancel()
            await asyncio.gather(early, return_exceptions=True)
            await self._stop_workers()
        return self._recording_id

    async def discard(self) -> None:
        """Stop sending (a cancelled recording: the server drops its segments when it is aborted)."""
        waits: list[asyncio.Task[Any]] = [*self._tasks.values(), *([self._known] if self._known else [])]
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        await self._stop_workers()

    # -- one run -----------------------------------------------------------------------------------------------------

    def _number(self, run: Run) -> int:
        return next(n for n, each in enumerate(self._entry.journal.runs, start=1) if each.file == run.file)

    async def _send(self, run: Run) -> int:
        """Send the run's pieces as they become whole; once it is closed, end it. Returns its segment count."""
        number, path, closed = self._number(run), self._entry.path(run), self._closed[run.file]
        await self.capturing.wait()
        known = await self._learn()
        held = known.runs.get(number) if known is not None else None
        listing: fmp4.Fragments | None = None
        listed = 0
        pending: list[asyncio.Future[None]] = []
        try:
            while True:
                is_closed = closed.is_set()
                listing = fmp4.fragments(path, since=listing, until=run.length if is_closed else None)
                self._listings[number] = listing
                new = listing.segments[listed:]
                if new and (number, None) not in self._acked:
                    assert listing.init is not None, "a listing has segments only after its init segment"
                    if held is not None and held.init:
                        self._acked[(number, None)] = listing.init.size
                    else:
                        await self._submit(number, None, listing.init, path)
                for index, span in enumerate(new, start=listed):
                    if held is not None and index in held.received:
                        self._acked[(number, index)] = span.size
                    else:
                        pending.append(self._submit(number, index, span, path))
                listed = len(listing.segments)
                pending = [future for future in pending if not _succeeded(future)]
                _raise_failed(pending)
                if is_closed:
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_SECONDS):
                        await closed.wait()
            if listing.corrupt:
                log.warning("%s is not an MP4 past byte %d; sending the segments before", path, listing.scanned)
            # The run is ended while its last pieces are on their way: the server waits for them all the same.
            ending = [] if held is not None and held.ended == listed else [self._end(number, listed)]
            await _all([*pending, *ending])
        finally:
            for future in pending:
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()  # seen: the first failure is the one raised
        return listed

    async def _learn(self) -> LiveState | None:
        """The server's account of the recording, asked once, when resuming; None for a recording just started."""
        if not self._resume:
            return None
        if self._known is None:
            self._known = asyncio.create_task(self._state())
        return await asyncio.shield(self._known)

    async def _state(self) -> LiveState:
        try:
            return await retrying(lambda: self._live.state(self._recording_id), on_retry=self._on_retry)
        except ServerError as exc:
            raise UploadRefused(exc.message) from exc

    async def _end(self, number: int, segments: int) -> None:
        try:
            await retrying(lambda: self._live.end(self._recording_id, number, segments), on_retry=self._on_retry)
        except ServerError as exc:
            if exc.code == "not_accepting_segments" and await self._server_has_it():
                return  # an earlier attempt's answer was lost and the recording became READY meanwhile
            raise UploadRefused(exc.message) from exc

    async def _declare(self, runs: int) -> bool:
        """Declare the runs once, early; True if the server then has the whole recording. Any refusal is left to
        `_complete`, which asks again once every piece has settled (an early one can precede the first init segment)."""
        try:
            state = await retrying(lambda: self._live.complete(self._recording_id, runs), on_retry=self._on_retry)
        except ServerError:
            return False
        return state.status in DONE_STATUSES and not state.missing

    async def _complete(self, runs: int) -> None:
        """Declare the runs; send again what the server then says it misses, and ask again (a bounded number of
        times). A completion refused because the recording is READY already (a lost answer) is done."""
        for attempt in range(COMPLETE_ATTEMPTS + 1):
            try:
                state = await retrying(lambda: self._live.complete(self._recording_id, runs), on_retry=self._on_retry)
            except ServerError as exc:
                if exc.code == "not_accepting_segments" and await self._server_has_it():
                    return
                raise UploadRefused(exc.message) from exc
            if not state.missing:
                return
            if attempt == COMPLETE_ATTEMPTS:
                break
            log.warning("the server misses %d pieces; sending them again", len(state.missing))
            await _all([self._resend(item) for item in state.missing])
        raise UploadRefused(f"the server still misses segments after sending them {COMPLETE_ATTEMPTS} times")

    async def _server_has_it(self) -> bool:
        with contextlib.suppress(ServerError):
            return (await self._state()).status in DONE_STATUSES
        return False

    async def _resend(self, item: Missing) -> None:
        """Send again from the spool what the server misses: one segment, or a whole run (init, segments, end)."""
        listing = self._listings.get(item.run)
        if listing is None or item.run > len(self._entry.journal.runs):
            raise UploadRefused(f"the server asks for run {item.run}, which was never captured")
        path = self._entry.path(self._entry.journal.runs[item.run - 1])
        if item.index is not None:
            if item.index >= len(listing.segments):
                raise UploadRefused(f"the server asks for segment {item.index} of run {item.run}, never captured")
            await self._submit(item.run, item.index, listing.segments[item.index], path)
            return
        if listing.segments:
            assert listing.init is not None, "a listing has segments only after its init segment"
            await self._submit(item.run, None, listing.init, path)
            await _all([self._submit(item.run, i, span, path) for i, span in enumerate(listing.segments)])
        await self._end(item.run, len(listing.segments))

    # -- the PUTs ----------------------------------------------------------------------------------------------------

    def _submit(self, run: int, index: int | None, span: fmp4.Span, path: Path) -> asyncio.Future[None]:
        """Queue one piece for the next free slot; the future resolves once the server has it."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        order = -1 if index is None else index
        self._queue.put_nowait(_Job(run, order, next(self._seq), index, span, path, done))
        while len(self._workers) < self._parallel:
            self._workers.append(asyncio.create_task(self._work()))
        return done

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            if job.done.done():
                continue  # its run gave up (cancelled, or another piece was refused)
            try:
                await self._put(job.run, job.index, job.span, job.path)
            except asyncio.CancelledError:
                job.done.cancel()
                raise
            except Exception as exc:  # handed to whoever waits for the piece
                if not job.done.done():
                    job.done.set_exception(exc)
            else:
                if not job.done.done():
                    job.done.set_result(None)

    async def _put(self, run: int, index: int | None, span: fmp4.Span, path: Path) -> None:
        """PUT one piece read from the spool: again, read afresh, when refused as corrupt; after the run's init
        segment when the server lacks it."""
        for attempt in range(1, PUT_ATTEMPTS + 1):
            data = await asyncio.to_thread(_read, path, span)
            try:
                await self._put_once(run, index, data)
            except ServerError as exc:
                if attempt < PUT_ATTEMPTS and exc.code == "segment_corrupt":
                    log.warning("run %d piece %s refused as corrupt (%s); sending it again", run, index, exc.message)
                    continue
                if attempt < PUT_ATTEMPTS and exc.code == "init_missing" and index is not None:
                    init = self._listings[run].init
                    assert init is not None, "a segment is listed only after its run's init segment"
                    await self._put(run, None, init, path)
                    continue
                what = "init segment" if index is None else f"segment {index}"
                raise UploadRefused(f"the server refused the {what} of run {run}: {exc.message}") from exc
            self._acked[(run, index)] = span.size
            return

    async def _put_once(self, run: int, index: int | None, data: bytes) -> None:
        await retrying(lambda: self._live.put(self._recording_id, run, index, data), on_retry=self._on_retry)

    async def _stop_workers(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()


def _read(path: Path, span: fmp4.Span) -> bytes:
    with path.open("rb") as handle:
        handle.seek(span.start)
        data = handle.read(span.size)
    if len(data) != span.size:
        raise UploadRefused(f"{path.name} is shorter than it was: bytes {span.start}-{span.end} are gone")
    return data


def _succeeded(future: asyncio.Future[None]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def _raise_failed(pending: Iterable[asyncio.Future[None]]) -> None:
    """Raise the first failure among the pieces sent so far, so a refused run stops sending early."""
    for future in pending:
        if future.done() and not future.cancelled() and future.exception() is not None:
            future.result()


async def _all(waits: Iterable[Awaitable[T]]) -> list[T]:
    """Wait for every one; then raise the first failure, after all have settled (no failure goes unseen)."""
    done: list[T] = []
    for result in await asyncio.gather(*waits, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result
        done.append(result)
    return done
