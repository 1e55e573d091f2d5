"""The tus upload manager: every run of a recording goes up as a tus partial upload, then a final one assembles them.

Recordings go up as live segments while they are captured (segments.py); tus carries what is uploaded after stop
(`--upload-after-stop`), what becomes an import (an expired session), and journals from before live segments. With
`live`, a run's bytes are sent as soon as they form whole MP4 boxes. Every request is retried with backoff while the
server is unreachable or restarting; an upload resumes from the server's offset (HEAD), and one the server lost
(expired) is sent again from the spool. Runs upload in parallel, up to `parallel` at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from framecast.agent import fmp4
from framecast.agent.client import ServerError, retrying
from framecast.agent.spool import Entry, Run
from framecast.agent.tus import OffsetConflict, Position, TusClient

log = logging.getLogger(__name__)
# Bigger PATCHes are faster on the server (docs/protocol.md); a fragment of a 1080p capture is 0.5-2 MiB.
CHUNK_BYTES = 8 * 1024 * 1024
POLL_SECONDS = 0.25


class UploadRefused(Exception):
    """The server will not take this recording's upload (the message says why); retrying will not help."""


class Upload(Protocol):
    """What the recorder needs of an upload manager: tus parts (`Uploader`) or live segments (`SegmentUploader`)."""

    capturing: asyncio.Event

    @property
    def sent(self) -> int: ...

    def captured(self) -> int: ...

    def follow(self, run: Run) -> None: ...

    def closed(self, run: Run) -> None: ...

    async def finish(self) -> str: ...

    async def discard(self) -> None: ...


class Uploader:
    """Uploads one spooled recording. With `live`, each run is sent while it grows; otherwise only from `finish`.

    `recording_id` None makes it an import: the server creates a new recording for the final upload.
    """

    def __init__(
        self,
        *,
        entry: Entry,
        tus: TusClient,
        recording_id: str | None,
        live: bool = True,
        parallel: int = 2,
        on_retry: Callable[[BaseException, float], None] | None = None,
    ) -> None:
        self._entry = entry
        self._tus = tus
        self._recording_id = recording_id
        self._live = live
        self._slots = asyncio.Semaphore(parallel)
        self._on_retry = on_retry
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._sent: dict[str, int] = {}
        self._closed: dict[str, asyncio.Event] = {}
        # Parts bound to a recording are taken once the server knows it is capturing (RECORDING_STARTED acknowledged).
        self.capturing = asyncio.Event()
        self.capturing.set()

    @property
    def sent(self) -> int:
        """Bytes the server has acknowledged, over every run."""
        return sum(self._sent.values())

    def captured(self) -> int:
        return captured_bytes(self._entry)

    def follow(self, run: Run) -> None:
        """Start sending a run that is being captured (live mode), or note it for `finish`."""
        self._closed.setdefault(run.file, asyncio.Event())
        if run.closed:
            self._closed[run.file].set()
        if self._live and run.file not in self._tasks:
            self._tasks[run.file] = asyncio.create_task(self._send(run))

    def closed(self, run: Run) -> None:
        """The run's capture ended and its length is in the journal: send the rest and declare the length."""
        self._closed.setdefault(run.file, asyncio.Event()).set()

    async def finish(self) -> str:
        """Send whatever is left of every run, then assemble them; returns the recording's id."""
        for run in self._entry.journal.runs:
            self.follow(run)
            self.closed(run)
            if run.file not in self._tasks:
                self._tasks[run.file] = asyncio.create_task(self._send(run))
        await asyncio.gather(*self._tasks.values())
        parts = [run.upload_url for run in self._entry.journal.runs if run.length and run.upload_url]
        if not parts:
            raise UploadRefused("nothing was captured: there is no video to upload")
        metadata = {"filename": "recording.mp4"}
        if self._recording_id is not None:
            metadata["recording_id"] = self._recording_id
        else:
            metadata["title"] = self._entry.journal.title or "Recording"
        try:
            named = await retrying(lambda: self._tus.create_final(parts, metadata=metadata), on_retry=self._on_retry)
        except ServerError as exc:
            raise UploadRefused(exc.message) from exc
        recording_id = self._recording_id or named
        if recording_id is None:
            raise UploadRefused("the server did not say which recording the import became")
        return recording_id

    async def discard(self) -> None:
        """Stop sending and remove the parts from the server (a cancelled recording)."""
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        for run in self._entry.journal.runs:
            if run.upload_url:
                try:
                    await self._tus.terminate(run.upload_url)
                except (ServerError, OSError) as exc:
                    log.info("could not remove %s: %s", run.upload_url, exc)

    async def _send(self, run: Run) -> None:
        path = self._entry.path(run)
        closed = self._closed[run.file]
        await self.capturing.wait()
        async with self._slots:
            position = await self._start(run)
            offset, declared = position.offset, position.length is not None
            scan: fmp4.Scan | None = None
            while True:
                is_closed = closed.is_set()
                if is_closed:
                    end = run.length or 0
                else:
                    scan = fmp4.scan(path, since=scan)
                    end = scan.complete
                if run.length == 0 and is_closed:
                    return  # an empty run (paused at once, a device that never delivered): not a part
                while offset < end or (is_closed and not declared):
                    size = min(CHUNK_BYTES, end - offset)
                    last = is_closed and offset + size == end
                    data = await asyncio.to_thread(_read, path, offset, size)
                    position = await self._patch(run, offset, data, length=end if last else None)
                    offset, declared = position.offset, position.length is not None
                    self._sent[run.file] = offset
                if is_closed:
                    return
                try:
                    async with asyncio.timeout(POLL_SECONDS):
                        await closed.wait()
                except TimeoutError:
                    pass

    async def _start(self, run: Run) -> Position:
        """The run's upload and the server's offset in it; a new upload when there is none or the server lost it."""
        if run.upload_url is not None:
            url = run.upload_url
            try:
                position = await retrying(lambda: self._tus.position(url), on_retry=self._on_retry)
                self._sent[run.file] = position.offset
                return position
            except ServerError as exc:
                if exc.status != 404:
                    raise UploadRefused(exc.message) from exc
                log.info("the server no longer has %s; sending the run again", url)
        metadata = {"filename": run.file}
        if self._recording_id is not None:
            metadata["recording_id"] = self._recording_id
        try:
            run.upload_url = await retrying(
                lambda: self._tus.create_partial(metadata=metadata), on_retry=self._on_retry
            )
        except ServerError as exc:
            raise UploadRefused(exc.message) from exc
        self._entry.save()
        self._sent[run.file] = 0
        return Position(0, None)

    async def _patch(self, run: Run, offset: int, data: bytes, *, length: int | None) -> Position:
        url = run.upload_url
        assert url is not None

        async def attempt() -> int:
            return await self._tus.patch(url, offset=offset, data=data, length=length)

        try:
            new_offset = await retrying(attempt, on_retry=self._on_retry)
        except OffsetConflict as exc:
            # The server has more or less than we thought (a PATCH that landed but whose answer was lost, or a
            # server restored from a crash): go on from its offset; the loop re-reads the spool from there.
            return exc.position
        except ServerError as exc:
            raise UploadRefused(exc.message) from exc
        return Position(new_offset, length)


def captured_bytes(entry: Entry) -> int:
    """Bytes captured so far over every run: a closed run's whole length, the growing file of the one capturing."""
    total = 0
    for run in entry.journal.runs:
        with contextlib.suppress(FileNotFoundError):
            total += run.length if run.length is not None else entry.path(run).stat().st_size
    return total


def _read(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def make_durable(path: Path) -> None:
    """fsync what ffmpeg has written so far: the spool must survive the machine, not only the agent."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
