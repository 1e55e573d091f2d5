"""The composition root: settings -> adapters -> services. The only module that names concrete adapters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from framecast.adapters.blobs.files import FileBlobStore, FileUploadStore
from framecast.adapters.bus.memory import MemoryEventBus
from framecast.adapters.clock import SystemClock
from framecast.adapters.live.memory import MemoryLiveState
from framecast.adapters.media.ffmpeg import FFmpegTools, locate_ffmpeg
from framecast.adapters.sql.database import SqlUnitOfWork, create_engine
from framecast.adapters.sql.migrate import upgrade_async
from framecast.domain import events as ev
from framecast.ports import Clock, EventBus, EventHandler, LiveState, UnitOfWorkFactory
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
    blobs: FileBlobStore
    bus: MemoryEventBus
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

    def start_background(self) -> None:
        """Start the loops every instance runs: outbox relay, deadline sweeper, upload expiry (safe to run anywhere),
        and the job worker unless the settings leave jobs to `framecast worker` processes."""
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        interval = self.settings.sweep_interval_seconds
        for name, step, every in (
            ("deadline-sweeper", self.recordings.sweep, interval),
            ("upload-expiry", self.uploads.expire, interval),
            ("session-expiry", self.sessions.sweep, 3600.0),
        ):
            self._tasks.append(asyncio.create_task(self._every_sweep(name, step, every), name=name))
        if self.settings.serve_workers:
            self.start_worker()

    def start_worker(self) -> None:
        self._tasks.append(asyncio.create_task(self.worker.run(), name="job-worker"))

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
        await self.live.close()
        await self.engine.dispose()


async def build_container(settings: Settings, *, clock: Clock | None = None, migrate: bool = True) -> Container:
    """Connect to what `settings` name (migrating the database first unless told not to) and wire the services."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.event_bus_url != "memory://":
        raise ValueError(f"FRAMECAST_EVENT_BUS_URL {settings.event_bus_url!r} is not supported: use memory://")
    url = settings.resolved_database_url
    if migrate:
        await upgrade_async(url)
    clock = clock or SystemClock()
    engine = create_engine(url)
    bus = MemoryEventBus()
    relay: OutboxRelay

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, on_events=relay.wake)

    relay = OutboxRelay(uow=uow, bus=bus, clock=clock)
    live = await _live_state(settings)
    blobs = FileBlobStore(settings.blob_root)
    recordings = RecordingService(
        uow=uow, clock=clock, limits=settings.limits, live=live, blobs=blobs, instance_id=settings.instance_id
    )
    spool = settings.data_dir / "spool"
    spool.mkdir(exist_ok=True)
    uploads = UploadService(
        uow=uow,
        store=FileUploadStore(settings.data_dir / "uploads", blobs=blobs),
        blobs=blobs,
        clock=clock,
        limits=settings.limits,
        max_size=settings.max_upload_bytes,
        ttl=timedelta(seconds=settings.upload_expiry_seconds),
        spool_dir=spool,
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
