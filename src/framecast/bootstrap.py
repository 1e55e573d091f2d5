"""The composition root: settings -> adapters -> services. The only module that names concrete adapters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from framecast.adapters.blobs.files import FileBlobStore, FileUploadStore
from framecast.adapters.bus.memory import MemoryEventBus
from framecast.adapters.clock import SystemClock
from framecast.adapters.live.memory import MemoryLiveState
from framecast.adapters.locks.memory import MemoryLocks
from framecast.adapters.media.ffmpeg import FFmpegTools, locate_ffmpeg
from framecast.adapters.sql.database import SqlUnitOfWork, create_engine
from framecast.adapters.sql.migrate import upgrade_async
from framecast.adapters.sql.outbox import SqlRelayLock
from framecast.domain import events as ev
from framecast.ports import (
    BlobStore,
    BrokeredEventBus,
    Clock,
    EventBus,
    EventHandler,
    LiveState,
    Locks,
    Pingable,
    UnitOfWorkFactory,
    UploadStore,
)
from framecast.services.events import OutboxRelay, TransactionalHandler, deduplicated
from framecast.services.live import LiveService
from framecast.services.media_links import MediaSigner
from framecast.services.processing import ProcessingService
from framecast.services.recordings import RecordingService
from framecast.services.sessions import Sessions
from framecast.services.tickets import Tickets
from framecast.services.uploads import UploadService
from framecast.settings import Settings
from framecast.workers.runner import Worker

log = logging.getLogger(__name__)


@dataclass
class Container:
    """Everything a running framecast process uses, built once from settings."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    uow: UnitOfWorkFactory
    live: LiveState
    locks: Locks
    blobs: BlobStore
    bus: EventBus
    relay: OutboxRelay
    tickets: Tickets
    media_signer: MediaSigner
    sessions: Sessions
    recordings: RecordingService
    uploads: UploadService
    processing: ProcessingService
    live_segments: LiveService
    worker: Worker
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _closed: bool = False

    async def ping_database(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def dependencies(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """A readiness probe for every service this instance depends on, by name (what /readyz reports)."""
        probes: dict[str, Callable[[], Awaitable[None]]] = {
            "database": self.ping_database,
            "live_state": self.live.ping,
        }
        for name, part in (("locks", self.locks), ("blob_storage", self.blobs), ("event_bus", self.bus)):
            if isinstance(part, Pingable):
                probes[name] = part.ping
        return probes

    def start_background(self) -> None:
        """Start the loops every instance runs: outbox relay, deadline sweeper, upload and session expiry, event
        retention (safe to run anywhere), and the job worker unless the settings leave jobs to `framecast worker`
        processes."""
        self._tasks.append(asyncio.create_task(self._relay_events(), name="outbox-relay"))
        interval = self.settings.sweep_interval_seconds
        for name, step, every in (
            ("deadline-sweeper", self.recordings.sweep, interval),
            ("upload-expiry", self.uploads.expire, interval),
            ("session-expiry", self.sessions.sweep, 3600.0),
            ("event-retention", self._prune_events, 3600.0),
        ):
            self._tasks.append(asyncio.create_task(self._every_sweep(name, step, every), name=name))
        if self.settings.serve_workers:
            self.start_worker()

    def start_worker(self) -> None:
        self._tasks.append(asyncio.create_task(self.worker.run(), name="job-worker"))

    async def _relay_events(self) -> None:
        """Connect the event bus to its broker (retrying until it answers), then relay the outbox to it forever."""
        if isinstance(self.bus, BrokeredEventBus):
            await _connect_bus(self.bus)
        await self.relay.run()

    async def _prune_events(self) -> int:
        return await self.relay.prune(older_than=timedelta(days=self.settings.event_retention_days))

    async def _every_sweep(self, name: str, step: Callable[[], Awaitable[int]], interval: float) -> None:
        while True:
            try:
                await step()
            except Exception:
                log.exception("%s failed; retrying", name)
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        """Stop the background loops and release connections; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self.worker.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if isinstance(self.bus, BrokeredEventBus):
            await self.bus.close()
        await self.live.close()
        await self.locks.close()
        if isinstance(self.blobs, _ClosingStore):
            await self.blobs.aclose()
        await self.engine.dispose()


async def build_container(settings: Settings, *, clock: Clock | None = None, migrate: bool = True) -> Container:
    """Connect to what `settings` name (migrating the database first unless told not to) and wire the services."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    if migrate:
        await upgrade_async(url)
    clock = clock or SystemClock()
    engine = create_engine(url)
    bus = _event_bus(settings)
    relay: OutboxRelay

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, on_events=relay.wake)

    relay = OutboxRelay(uow=uow, bus=bus, clock=clock, lock=SqlRelayLock(engine))
    live = await _live_state(settings)
    locks = _locks(settings)
    blobs, store = await _storage(settings)
    recordings = RecordingService(
        uow=uow, clock=clock, limits=settings.limits, live=live, blobs=blobs, instance_id=settings.instance_id
    )
    spool = settings.data_dir / "spool"
    spool.mkdir(exist_ok=True)
    uploads = UploadService(
        uow=uow,
        store=store,
        blobs=blobs,
        clock=clock,
        limits=settings.limits,
        max_size=settings.max_upload_bytes,
        ttl=timedelta(seconds=settings.upload_expiry_seconds),
        spool_dir=spool,
        locks=locks,
    )
    secret_key = settings.resolved_secret_key()
    tools = FFmpegTools(
        binary=locate_ffmpeg(settings.ffmpeg_binary), threads=settings.media_threads, preset=settings.x264_preset
    )
    processing = ProcessingService(uow=uow, clock=clock, blobs=blobs, tools=tools, scratch=settings.data_dir / "work")
    live_segments = LiveService(
        uow=uow,
        clock=clock,
        blobs=blobs,
        scratch=settings.data_dir / "work" / "live",
        transcoder=tools,
        transcodes=settings.media_threads,
    )
    worker = Worker(
        uow=uow,
        clock=clock,
        handlers=processing.handlers(),
        worker_id=f"{settings.instance_id}-{os.getpid()}",
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.job_lease_seconds,
        on_dead=processing.job_dead,
    )
    processing.on_cancel = worker.cancel_recording
    _subscribe(
        bus,
        uow,
        worker,
        {
            ev.RAW_VIDEO_UPLOADED: processing.on_raw_video_uploaded,
            ev.RECORDING_DELETED: processing.on_recording_deleted,
            ev.RECORDING_ABORTED: live_segments.on_recording_aborted,
        },
    )
    return Container(
        settings=settings,
        clock=clock,
        engine=engine,
        uow=uow,
        live=live,
        locks=locks,
        blobs=blobs,
        bus=bus,
        relay=relay,
        tickets=Tickets(secret_key=secret_key, clock=clock),
        media_signer=MediaSigner(
            secret_key=secret_key, clock=clock, ttl=timedelta(seconds=settings.media_url_ttl_seconds)
        ),
        sessions=Sessions(
            uow=uow, clock=clock, secret_key=secret_key, ttl=timedelta(seconds=settings.session_ttl_seconds)
        ),
        recordings=recordings,
        uploads=uploads,
        processing=processing,
        live_segments=live_segments,
        worker=worker,
    )


def _subscribe(
    bus: EventBus, uow: UnitOfWorkFactory, worker: Worker, handlers: dict[str, TransactionalHandler]
) -> None:
    """Subscribe each handler to its event type, applied once per event; a commit may have queued jobs, so the
    in-process worker looks at once."""
    for event_type, handler in handlers.items():
        once = deduplicated(consumer=f"processing.{event_type}", handler=handler, uow=uow)

        async def deliver(event: ev.DomainEvent, event_type: str = event_type, once: EventHandler = once) -> None:
            if event.type == event_type:
                await once(event)
                worker.wake()

        bus.subscribe(f"processing.{event_type}", deliver)


def _event_bus(settings: Settings) -> EventBus:
    """In-process delivery, or Kafka; an unsupported EVENT_BUS_URL raises ValueError (from the settings)."""
    servers = settings.kafka_servers
    if servers is None:
        return MemoryEventBus()
    from framecast.adapters.bus.kafka import KafkaEventBus

    return KafkaEventBus(
        servers=servers,
        topic=settings.kafka_topic,
        partitions=settings.kafka_partitions,
        replication_factor=settings.kafka_replication_factor,
        client_id=settings.kafka_client_id,
        session_timeout_seconds=settings.kafka_session_timeout_seconds,
    )


async def _connect_bus(bus: BrokeredEventBus) -> None:
    """Start the bus, retrying with growing pauses while its broker cannot be reached."""
    failures = 0
    while True:
        try:
            await bus.start()
            return
        except Exception:
            failures += 1
            log.exception("the event bus cannot reach its broker (attempt %d); retrying", failures)
        await asyncio.sleep(min(30.0, 0.5 * 2 ** (failures - 1)))


@runtime_checkable
class _ClosingStore(Protocol):
    """A blob store holding connections (S3) until it is closed."""

    async def aclose(self) -> None: ...


async def _storage(settings: Settings) -> tuple[BlobStore, UploadStore]:
    """Blobs and uploads in progress: files under DATA_DIR (or STORAGE_URL=file://...), else S3 (s3://bucket/prefix),
    whose bucket gets framecast's lifecycle and CORS rules on the way (docs/storage.md)."""
    location = settings.s3_location
    delivery = settings.resolved_media_delivery
    if location is None:
        files = FileBlobStore(settings.blob_root)
        return files, FileUploadStore(settings.data_dir / "uploads", blobs=files)
    from framecast.adapters.blobs.s3 import Lifecycle, S3Options, connect_s3_storage
    from framecast.adapters.blobs.s3_rules import abandoned_after_days

    secret = settings.s3_secret_access_key
    options = S3Options(
        bucket=location.bucket,
        prefix=location.prefix,
        endpoint_url=settings.s3_endpoint_url,
        public_endpoint_url=settings.s3_public_endpoint_url,
        region=settings.s3_region,
        addressing_style=settings.s3_addressing_style,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret is not None else None,
    )
    lifecycle = Lifecycle(
        infrequent_after_days=settings.s3_infrequent_after_days,
        infrequent_class=settings.s3_infrequent_storage_class,
        archive_after_days=settings.s3_archive_after_days,
        archive_class=settings.s3_archive_storage_class,
        abandoned_after_days=abandoned_after_days(
            upload_timeout_seconds=settings.upload_timeout_seconds,
            upload_expiry_seconds=settings.upload_expiry_seconds,
        ),
    )
    return await connect_s3_storage(
        options,
        part_size=settings.s3_part_size_bytes,
        max_upload=settings.max_upload_bytes,
        lifecycle=lifecycle,
        media_origin_url=settings.resolved_public_url if delivery == "redirect" else None,
    )


def _locks(settings: Settings) -> Locks:
    if settings.redis_url:
        from framecast.adapters.locks.redis import connect_redis_locks

        return connect_redis_locks(settings.redis_url, prefix=settings.redis_prefix)
    return MemoryLocks()


async def _live_state(settings: Settings) -> LiveState:
    if settings.redis_url:
        from framecast.adapters.live.redis import connect_redis_live_state

        return connect_redis_live_state(settings.redis_url, prefix=settings.redis_prefix)
    return MemoryLiveState()


@contextlib.asynccontextmanager
async def running(settings: Settings, *, clock: Clock | None = None) -> AsyncIterator[Container]:
    """A container with its background loops, closed on exit."""
    container = await build_container(settings, clock=clock)
    container.start_background()
    try:
        yield container
    finally:
        await container.aclose()
