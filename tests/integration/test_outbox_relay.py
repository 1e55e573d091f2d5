"""What keeps many outbox relays safe on PostgreSQL: one relay publishes at a time, the lock dies with its holder,
and one recording's events become visible to relays only in commit order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from conftest import PublishedEvents
from framecast.adapters.sql.outbox import SqlRelayLock
from framecast.bootstrap import Container
from framecast.domain.events import DomainEvent
from framecast.services.events import OutboxRelay

pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
TIMEOUT = 10.0


def progress(subject: str, percent: int) -> DomainEvent:
    """An event written without touching the recording's row, like processing progress."""
    return DomainEvent(type="processing_progress", subject=subject, time=datetime.now(UTC), data={"percent": percent})


# pg_locks covers the whole server: these look at this test's database only.
WAITERS = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
TERMINATE_HOLDERS = text(
    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


async def someone_waits_for_an_advisory_lock(container: Container) -> bool:
    async with container.engine.connect() as conn:
        return int((await conn.execute(WAITERS)).scalar_one()) > 0


async def until(check: Callable[[], Awaitable[bool]], *, timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


async def test_a_second_relay_stands_by_while_the_first_holds_the_lock(container: Container) -> None:
    async with container.uow() as tx:
        await tx.outbox.append([progress("r1", 1)])
        await tx.commit()
    bus = PublishedEvents()
    relay = OutboxRelay(uow=container.uow, bus=bus, clock=container.clock, lock=SqlRelayLock(container.engine))
    async with SqlRelayLock(container.engine).hold() as held:
        assert held
        assert await relay.relay_once() is None  # another instance's relay is at work: publish nothing
        async with SqlRelayLock(container.engine).hold() as again:
            assert not again
    assert bus.published == []
    assert await relay.relay_once() == 1
    assert [e.subject for e in bus.published] == ["r1"]


async def test_the_lock_of_a_relay_whose_connection_died_is_free_again(container: Container) -> None:
    lock = SqlRelayLock(container.engine)
    holder = lock.hold()
    assert await holder.__aenter__()
    async with container.engine.connect() as conn:
        await conn.execute(TERMINATE_HOLDERS)
        await conn.commit()
    async with lock.hold() as held:
        assert held
    with pytest.raises(DBAPIError):  # the dead holder learns it when it lets go: its relay pass fails, retried
        await holder.__aexit__(None, None, None)


async def test_a_subjects_later_event_is_not_visible_before_an_earlier_one_commits(container: Container) -> None:
    """The commit-order problem: the first writer inserted position 1 and has not committed; a second writer of the
    same recording must not commit position 2 before it, or a relay would publish 2 and only later 1."""
    first = container.uow()
    await first.__aenter__()
    try:
        await first.outbox.append([progress("rec", 1)])

        async def second_writer() -> None:
            async with container.uow() as tx:
                await tx.outbox.append([progress("rec", 2)])
                await tx.commit()

        second = asyncio.create_task(second_writer())
        await until(lambda: someone_waits_for_an_advisory_lock(container))  # the second waits for the first
        async with container.uow() as tx:
            assert await tx.outbox.pending(limit=10) == []
        await first.commit()
    finally:
        await first.__aexit__(None, None, None)
    await asyncio.wait_for(second, TIMEOUT)
    async with container.uow() as tx:
        pending = await tx.outbox.pending(limit=10)
    assert [entry.event.data["percent"] for entry in pending] == [1, 2]


async def test_other_recordings_writers_do_not_wait_for_each_other(container: Container) -> None:
    first = container.uow()
    await first.__aenter__()
    try:
        await first.outbox.append([progress("one", 1)])
        async with asyncio.timeout(TIMEOUT), container.uow() as tx:
            await tx.outbox.append([progress("another", 1)])
            await tx.commit()
    finally:
        await first.__aexit__(None, None, None)
