"""Event retention: dispatched events and the consumers' records of them go once they are old enough, pending
events never, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select

from conftest import PublishedEvents
from framecast.adapters.clock import FakeClock
from framecast.adapters.sql.tables import outbox, processed_events
from framecast.bootstrap import Container
from framecast.domain.events import DomainEvent
from framecast.services.events import OutboxRelay


async def append(container: Container, clock: FakeClock, subject: str, count: int) -> list[DomainEvent]:
    events = [DomainEvent(type="processing_progress", subject=subject, time=clock.now(), data={}) for _ in range(count)]
    async with container.uow() as tx:
        await tx.outbox.append(events)
        await tx.commit()
    return events


async def claim(container: Container, consumer: str, events: Sequence[DomainEvent]) -> None:
    async with container.uow() as tx:
        for event in events:
            assert await tx.outbox.claim_for(consumer, event.id)
        await tx.commit()


async def stored(container: Container) -> tuple[set[str], int]:
    async with container.engine.connect() as conn:
        ids = set((await conn.execute(select(outbox.c.event_id))).scalars())
        claims = int((await conn.execute(select(func.count()).select_from(processed_events))).scalar_one())
    return ids, claims


async def test_events_dispatched_longer_ago_than_the_retention_go_with_their_claims(container: Container) -> None:
    clock = FakeClock()
    relay = OutboxRelay(uow=container.uow, bus=PublishedEvents(), clock=clock)
    old = await append(container, clock, "r1", 5)
    assert await relay.relay_once() == 5
    await claim(container, "search", old)
    await claim(container, "thumbnails", old[:2])
    clock.advance(timedelta(days=6))
    recent = await append(container, clock, "r1", 3)
    assert await relay.relay_once() == 3
    await claim(container, "search", recent)
    clock.advance(timedelta(days=2))
    pending = {event.id for event in await append(container, clock, "r2", 2)}  # never dispatched

    # Eight days after the first batch was sent, a week's retention takes it and its claims, a batch at a time.
    assert await relay.prune(older_than=timedelta(days=7), batch=2) == 5
    ids, claims = await stored(container)
    assert ids == {event.id for event in recent} | pending
    assert claims == 3
    assert await relay.prune(older_than=timedelta(days=7)) == 0

    clock.advance(timedelta(days=30))  # everything dispatched is old now; pending events stay however old
    assert await relay.prune(older_than=timedelta(days=7)) == 3
    assert await stored(container) == (pending, 0)
