"""Engine construction and the SQL unit of work."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from framecast.adapters.sql.jobs import SqlJobQueue
from framecast.adapters.sql.live import SqlLiveRepository
from framecast.adapters.sql.outbox import SqlOutbox
from framecast.adapters.sql.recordings import SqlRecordingRepository, SqlShareLinkRepository
from framecast.adapters.sql.uploads import SqlUploadRepository
from framecast.adapters.sql.users import SqlUserRepository
from framecast.domain.recordings import Recording
from framecast.ports import (
    JobQueue,
    LiveRepository,
    Outbox,
    RecordingRepository,
    ShareLinkRepository,
    UploadRepository,
    UserRepository,
)


def create_engine(url: str) -> AsyncEngine:
    """An engine tuned for `url`'s database.

    SQLite gets WAL, a busy timeout for other processes (the CLI, a migration), and a single pooled connection:
    SQLite allows one writer, and queueing writers in the pool is cheaper and fairer than retrying SQLITE_BUSY.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(url, poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0, pool_timeout=60)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


class SqlUnitOfWork:
    """One transaction; on commit, the events of every aggregate saved through it go to the outbox first."""

    recordings: RecordingRepository
    share_links: ShareLinkRepository
    users: UserRepository
    uploads: UploadRepository
    live: LiveRepository
    outbox: Outbox
    jobs: JobQueue

    def __init__(self, engine: AsyncEngine, *, on_events: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self._on_events = on_events
        self._conn: AsyncConnection | None = None
        self._seen: list[Recording] = []

    async def __aenter__(self) -> Self:
        self._conn = await self._engine.connect()
        await self._conn.begin()
        self._seen = []
        self.recordings = SqlRecordingRepository(self._conn, self._seen)
        self.share_links = SqlShareLinkRepository(self._conn)
        self.users = SqlUserRepository(self._conn)
        self.uploads = SqlUploadRepository(self._conn)
        self.live = SqlLiveRepository(self._conn)
        self.outbox = SqlOutbox(self._conn)
        self.jobs = SqlJobQueue(self._conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None

    async def commit(self) -> None:
        assert self._conn is not None
        events = [e for aggregate in self._seen for e in aggregate.events]
        await self.outbox.append(events)
        await self._conn.commit()
        for aggregate in self._seen:
            aggregate.events.clear()
        self._seen.clear()
        if events and self._on_events is not None:
            self._on_events()

    async def rollback(self) -> None:
        assert self._conn is not None
        await self._conn.rollback()
