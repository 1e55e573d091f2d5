"""Ports: the small Protocols that services depend on. Adapters implement them; bootstrap picks which."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from framecast.domain.events import DomainEvent
from framecast.domain.jobs import Job
from framecast.domain.ladder import Rendition
from framecast.domain.live import LiveRun, LiveSegment, LiveStream
from framecast.domain.media import MediaInfo
from framecast.domain.recordings import Recording, RecordingStatus
from framecast.domain.sharing import ShareLink
from framecast.domain.uploads import Upload
from framecast.domain.users import ApiToken, User, WebSession


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


# -- persistence ---------------------------------------------------------------------------------------------------


class RecordingRepository(Protocol):
    async def add(self, recording: Recording) -> None: ...

    async def get(self, recording_id: str, *, owner_id: str | None = None) -> Recording:
        """Load a recording; raises NotFound when absent or (with owner_id) owned by someone else."""
        ...

    async def save(self, recording: Recording) -> None:
        """Write changes; raises ConcurrentUpdate when another writer got there first."""
        ...

    async def delete(self, recording: Recording) -> None: ...

    async def list(
        self,
        *,
        owner_id: str,
        status: RecordingStatus | None,
        limit: int,
        before: tuple[datetime, str] | None,
        title: str | None = None,
    ) -> Sequence[Recording]:
        """Newest first; `before` is the (created_at, id) of the last item of the previous page; `title` keeps
        those whose title contains it, ignoring case."""
        ...

    async def due(self, *, at: datetime, limit: int) -> Sequence[str]:
        """Ids of recordings with a deadline at or before `at`."""
        ...


class UserRepository(Protocol):
    async def add(self, user: User) -> None: ...

    async def by_email(self, email: str) -> User | None: ...

    async def get(self, user_id: str) -> User: ...

    async def count(self) -> int: ...

    async def add_token(self, token: ApiToken) -> None: ...

    async def by_token_hash(self, token_hash: str) -> User | None: ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    async def add_session(self, session: WebSession) -> None: ...

    async def by_session_hash(self, token_hash: str, *, at: datetime) -> User | None:
        """The user signed in with this session, unless it has expired by `at`."""
        ...

    async def delete_session(self, token_hash: str) -> None: ...

    async def delete_sessions_of(self, user_id: str) -> None: ...

    async def delete_expired_sessions(self, *, at: datetime) -> int: ...


class ShareLinkRepository(Protocol):
    async def get(self, link_id: str) -> ShareLink:
        """Raises NotFound for an unknown link."""
        ...


class LiveRepository(Protocol):
    """A live recording's runs and segments (domain/live.py)."""

    async def stream(self, recording_id: str, *, run: int | None = None, index: int | None = None) -> LiveStream:
        """Every run and segment stored for the recording (declared_runs is the recording's business); with `run`
        only that run, and with `index` only that one of its segments (what checking one upload needs)."""
        ...

    async def add_run(self, recording_id: str, run: LiveRun, *, at: datetime) -> bool:
        """Insert the run; False when it exists already."""
        ...

    async def describe_run(self, recording_id: str, run: LiveRun) -> None:
        """Store the init segment's description on a run that exists without one."""
        ...

    async def end_run(self, recording_id: str, run: int, segments: int) -> None: ...

    async def add_segment(self, recording_id: str, segment: LiveSegment, *, at: datetime) -> bool:
        """Insert the segment; False when one exists already under its index."""
        ...


class UploadRepository(Protocol):
    async def add(self, upload: Upload) -> None: ...

    async def get(self, upload_id: str) -> Upload:
        """Raises NotFound."""
        ...

    async def save(self, upload: Upload) -> None: ...

    async def delete(self, upload: Upload) -> None: ...

    async def expired(self, *, at: datetime, limit: int) -> Sequence[str]:
        """Ids of unfinished uploads whose expiry has passed."""
        ...

    async def unfinished_for(self, recording_id: str) -> Sequence[str]:
        """Ids of the unfinished uploads bound to a recording."""
        ...


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    position: int
    event: DomainEvent


class Outbox(Protocol):
    async def append(self, events: Sequence[DomainEvent]) -> None:
        """Store events in the current transaction; they are dispatched only once it commits."""
        ...

    async def pending(self, *, limit: int) -> Sequence[OutboxEntry]:
        """Committed events not yet dispatched, oldest first; one subject's events are in commit order."""
        ...

    async def mark_dispatched(self, positions: Sequence[int], *, at: datetime) -> None: ...

    async def claim_for(self, consumer: str, event_id: str) -> bool:
        """Record that `consumer` handled `event_id`; False when it already had (deduplication)."""
        ...

    async def prune(self, *, dispatched_before: datetime, limit: int) -> int:
        """Delete up to `limit` of the oldest events dispatched before then, with the consumers' records of them;
        returns how many. Pending events are never deleted."""
        ...


class RelayLock(Protocol):
    """Lets one outbox relay publish at a time, however many instances run one."""

    def hold(self) -> AbstractAsyncContextManager[bool]:
        """Try to take the lock for the block, without waiting: True when taken, False when another relay has it.
        A holder that dies releases it."""
        ...


class JobQueue(Protocol):
    """Durable, leased background jobs, read and written in the unit of work's transaction.

    A claimed job belongs to its worker until the lease expires; the worker keeps it with heartbeats.
    """

    async def enqueue(self, job: Job) -> None:
        """Store a new job; it becomes claimable when the transaction commits."""
        ...

    async def get(self, job_id: str) -> Job:
        """Raises NotFound."""
        ...

    async def list_for_recording(self, recording_id: str) -> Sequence[Job]:
        """Every job of a recording, oldest first."""
        ...

    async def claim(self, *, worker: str, at: datetime, lease: timedelta, limit: int) -> Sequence[Job]:
        """Take up to `limit` claimable jobs for `worker` in one statement, best priority first.

        Safe with any number of concurrent claimers: no job is handed to two of them. Each claim is an attempt.
        """
        ...

    async def heartbeat(
        self,
        job_id: str,
        *,
        worker: str,
        at: datetime,
        lease: timedelta,
        progress: float | None = None,
        stage: str | None = None,
    ) -> bool:
        """Renew the lease (and store progress); False when the worker lost it: the job was cancelled or reclaimed."""
        ...

    async def finish(self, job_id: str, *, worker: str, at: datetime) -> Job:
        """Mark the job SUCCEEDED; raises InvalidTransition when `worker` no longer holds its lease."""
        ...

    async def fail(
        self, job_id: str, *, worker: str, at: datetime, error: str, transient: bool, jitter: float = 0.0
    ) -> Job:
        """Record a failed attempt: requeued with backoff, or DEAD; raises InvalidTransition like `finish`."""
        ...

    async def cancel_for_recording(self, recording_id: str, *, at: datetime) -> int:
        """Cancel the recording's queued and running jobs; returns how many were cancelled."""
        ...


class UnitOfWork(Protocol):
    """One transaction. State changes and the events of every saved aggregate commit together."""

    recordings: RecordingRepository
    share_links: ShareLinkRepository
    users: UserRepository
    uploads: UploadRepository
    live: LiveRepository
    outbox: Outbox
    jobs: JobQueue

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


# -- blobs -----------------------------------------------------------------------------------------------------------


class BlobStore(Protocol):
    """Finished, immutable objects addressed by key (raw uploads, later renditions)."""

    async def size(self, key: str) -> int | None:
        """Size in bytes, or None when there is no such object."""
        ...

    def open(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) of the object; raises FileNotFoundError when absent."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; absent objects are not an error."""
        ...

    async def put_file(self, key: str, source: Path) -> None:
        """Store the local file `source` under `key` (replacing any object there); `source` may be moved away."""
        ...

    async def get_file(self, key: str, target: Path) -> None:
        """Copy the object to the local file `target`; raises FileNotFoundError when absent."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with `prefix` (which ends with "/"); returns how many."""
        ...


@runtime_checkable
class LocalBlobStore(BlobStore, Protocol):
    """Optional capability: objects are local files, so media tools read them in place instead of a copy."""

    def path(self, key: str) -> Path: ...


@runtime_checkable
class PresigningBlobStore(BlobStore, Protocol):
    """Optional capability: hand out URLs that read an object straight from the store (S3 presigned GETs), so media
    can be answered with a redirect instead of passing through framecast."""

    async def presigned_url(
        self, key: str, *, expires_in: int, content_type: str | None = None, content_disposition: str | None = None
    ) -> str:
        """A URL that GETs `key` (Range allowed) for `expires_in` seconds without other credentials, answered with
        the given Content-Type and Content-Disposition (e.g. an attachment's file name) when they are set. Whoever
        holds the URL can read the object: callers check permissions first."""
        ...


class UploadStore(Protocol):
    """Bytes of uploads in progress (tus). Offsets are the only truth about how much arrived."""

    async def create(self, upload_id: str) -> None: ...

    async def append(self, upload_id: str, *, offset: int, chunks: AsyncIterator[bytes], limit: int) -> int:
        """Write `chunks` at `offset` (which must equal the stored size) and return the new size.

        Reads at most `limit` bytes. Whatever arrived before a dropped connection is kept, so a client resumes
        from the returned offset; bytes are durable (fsynced) before this returns.
        """
        ...

    async def offset(self, upload_id: str) -> int: ...

    async def finish(self, upload_id: str, *, key: str) -> int:
        """Move the completed upload into the BlobStore under `key`; returns its size."""
        ...

    async def discard(self, upload_id: str) -> None: ...


@runtime_checkable
class ConcatenatingUploadStore(UploadStore, Protocol):
    """Optional capability: assemble several finished partial uploads into one (tus concatenation)."""

    async def concatenate(self, upload_id: str, *, parts: Sequence[str]) -> int: ...


# -- live session state --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveSession:
    """What the fleet knows right now about a recording's control channel."""

    recording_id: str
    status: str
    instance_id: str | None
    last_seen: datetime | None


class LiveState(Protocol):
    """Fast, shared, expiring state about live sessions (memory for one process, Redis for a fleet)."""

    async def put(self, session: LiveSession, *, ttl_seconds: int) -> None: ...

    async def get(self, recording_id: str) -> LiveSession | None: ...

    async def delete(self, recording_id: str) -> None: ...

    async def publish(self, recording_id: str, message: dict[str, Any]) -> None:
        """Send a control message to whichever instance holds the recording's connection."""
        ...

    def subscribe(self, recording_id: str) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        """Listen for control messages published for `recording_id`, in publish order.

        `async with live.subscribe(rid) as messages:` returns only once the subscription is live: anything published
        afterwards, by any instance, is delivered; nothing published before is. Leaving the block unsubscribes and
        ends the iterator; `close()` ends every iterator. Iteration raises the backing service's error when the
        subscription is lost (messages may have been missed): re-read the state and subscribe again.
        """
        ...

    async def ping(self) -> None:
        """Raise when the backing service is unreachable."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Pingable(Protocol):
    """Optional capability of an adapter backed by a server: readiness checks call it."""

    async def ping(self) -> None:
        """Raise when the backing service does not answer."""
        ...


# -- locks ---------------------------------------------------------------------------------------------------------


class Locks(Protocol):
    """Mutual exclusion by name, across every process that shares the backing service (one process, or a fleet on
    Redis). A holder that dies loses its locks within seconds, so nothing stays locked by a killed instance."""

    def hold(self, name: str, *, wait: float) -> AbstractAsyncContextManager[None]:
        """Hold `name` for the block; raises TimeoutError when it could not be had within `wait` seconds."""
        ...

    async def busy(self, name: str) -> bool:
        """Whether anyone holds `name` now (a hint: it may change the moment after)."""
        ...

    async def close(self) -> None: ...


# -- events ----------------------------------------------------------------------------------------------------------

EventHandler = Callable[[DomainEvent], Awaitable[None]]


class EventBus(Protocol):
    """Delivers committed events to subscribers, at least once."""

    def subscribe(self, consumer: str, handler: EventHandler) -> None: ...

    async def publish(self, events: Sequence[DomainEvent]) -> None: ...


@runtime_checkable
class BrokeredEventBus(EventBus, Protocol):
    """Optional capability: a bus backed by a broker, connected and closed by the composition root (services only
    see EventBus)."""

    async def start(self) -> None:
        """Connect, and start delivering to the subscribers; raises when the broker cannot be reached."""
        ...

    async def ping(self) -> None:
        """Raise when the broker is unreachable."""
        ...

    async def close(self) -> None: ...


# -- media tools -------------------------------------------------------------------------------------------------------

Progress = Callable[[float], None]
"""Told the percentage (0-100) of the current step done, as often as the tool knows it."""


class LiveTranscoder(Protocol):
    """Makes one live WebM segment (its run's header followed by its clusters, in a local file) a fragmented MP4:
    an init segment then the media, H.264 video at `size` (none when `size` is (0, 0)) and the audio as it is,
    timestamps kept. The same header gives the same init segment byte for byte, whichever segment it came with.
    Raises MediaRefused when the input cannot be decoded; any other exception may pass on a retry."""

    async def transcode_live(self, source: Path, target: Path, *, size: tuple[int, int]) -> None: ...


class MediaTools(Protocol):
    """Probing and media work on local files. Raises MediaRefused for input that can never work; any other
    exception is transient (the job is retried)."""

    async def probe(self, path: Path) -> MediaInfo: ...

    async def join(self, parts: Sequence[Path], target: Path, *, duration_s: float, progress: Progress) -> None:
        """Join same-format segments (files in one folder) into one file, timestamps continuous."""
        ...

    async def remux_hls(self, source: Path, folder: Path, info: MediaInfo, *, progress: Progress) -> None:
        """The source's own streams as CMAF HLS in `folder` (index.m3u8, init.mp4, segments)."""
        ...

    async def encode_hls(
        self,
        source: Path,
        root: Path,
        renditions: Sequence[Rendition],
        info: MediaInfo,
        *,
        screen: bool,
        progress: Progress,
        fast: bool = False,
    ) -> None:
        """Every rendition from one decode, each as CMAF HLS in `root/<name>/`."""
        ...

    async def poster(self, source: Path, target: Path, info: MediaInfo) -> None: ...

    async def preview(self, source: Path, target: Path, info: MediaInfo) -> None: ...

    async def storyboard(
        self,
        source: Path,
        target: Path,
        info: MediaInfo,
        *,
        interval: float,
        tile: tuple[int, int],
        grid: tuple[int, int],
    ) -> None: ...

    async def faststart_mp4(self, source: Path, target: Path, *, duration_s: float) -> None: ...
