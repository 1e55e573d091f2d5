"""The transactional outbox: events are inserted in the same transaction as the state change they describe.

Order per subject. `position` is taken at insert, and transactions may commit in another order than they inserted:
one that inserted 10 can commit after one that inserted 11, and a relay that read and published 11 sees 10 only on
a later pass. Across recordings that is harmless (no order is promised between them). Within one recording it is
prevented: every writer of a subject's events holds a lock on that subject from before its insert until it commits,
so a later writer inserts only after the earlier one committed, and a committed event's same-subject predecessors
are always committed (and so read first, or already dispatched). Writers that save the recording hold its row lock
anyway (the UPDATE of the optimistic version check, see recordings.py, blocks a second writer until the first
commits, and then fails it); the subject lock taken in `append` covers the writers that touch no row, such as
processing progress, and costs the others nothing. SQLite needs none of this: it has one writer at a time, from its
first write to its commit.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from framecast.adapters.sql.tables import outbox, processed_events
from framecast.domain.events import DomainEvent
from framecast.ports import OutboxEntry

# PostgreSQL advisory locks in their two-int4-key form (a key space apart from single bigint keys): the first key
# names what is locked.
_SUBJECT_LOCKS = 0x46435355  # "FCSU": one lock per event subject (hashed), held by its writers until commit
_RELAY_LOCKS = 0x4643524C  # "FCRL": the one outbox relay lock
_RELAY = 1


def _subject_key(subject: str) -> int:
    """A stable int4 for `subject`; two subjects sharing one only serialise their writers a little more."""
    crc = zlib.crc32(subject.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class SqlOutbox:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def append(self, events: Sequence[DomainEvent]) -> None:
        """Insert `events`; on PostgreSQL first lock their subjects until commit (see the module docstring).

        Callers append right before committing, so a writer holding subject locks never waits for anything but
        other subject locks, and those are taken in one global order: no deadlock.
        """
        if not events:
            return
        if self._conn.dialect.name == "postgresql":
            for key in sorted({_subject_key(e.subject) for e in events}):
                await self._conn.execute(
                    text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": _SUBJECT_LOCKS, "key": key}
                )
        await self._conn.execute(
            insert(outbox),
            [{"event_id": e.id, "type": e.type, "subject": e.subject, "time": e.time, "data": e.data} for e in events],
        )

    async def pending(self, *, limit: int) -> Sequence[OutboxEntry]:
        query = select(outbox).where(outbox.c.dispatched_at.is_(None)).order_by(outbox.c.position).limit(limit)
        rows = (await self._conn.execute(query)).mappings()
        return [
            OutboxEntry(
                position=row["position"],
                event=DomainEvent(
                    id=row["event_id"], type=row["type"], subject=row["subject"], time=row["time"], data=row["data"]
                ),
            )
            for row in rows
        ]

    async def mark_dispatched(self, positions: Sequence[int], *, at: datetime) -> None:
        if positions:
            await self._conn.execute(update(outbox).where(outbox.c.position.in_(positions)).values(dispatched_at=at))

    async def prune(self, *, dispatched_before: datetime, limit: int) -> int:
        query = (
            select(outbox.c.position, outbox.c.event_id)
            .where(outbox.c.dispatched_at < dispatched_before)
            .order_by(outbox.c.position)
            .limit(limit)
        )
        rows = (await self._conn.execute(query)).all()
        if rows:
            event_ids = [row.event_id for row in rows]
            await self._conn.execute(delete(processed_events).where(processed_events.c.event_id.in_(event_ids)))
            await self._conn.execute(delete(outbox).where(outbox.c.position.in_([row.position for row in rows])))
        return len(rows)

    async def claim_for(self, consumer: str, event_id: str) -> bool:
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(processed_events).values(consumer=consumer, event_id=event_id).on_conflict_do_nothing()
        )
        result = await self._conn.execute(statement)
        return result.rowcount == 1


class SqlRelayLock:
    """The outbox relay's lock: a transaction-scoped PostgreSQL advisory lock on a connection of its own.

    Why this and not the `Locks` port: the lock lives in the database that holds the outbox, needs no other service,
    and is released exactly when its holder's session ends (a killed instance's connection drops, the lock goes),
    never on a timer while a slow holder may still be publishing. The connection sits idle in a transaction for a
    relay pass; it writes nothing, so it holds back no vacuum. SQLite serves one process, where the relay's own
    in-process lock suffices: no lock here.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        if self._engine.dialect.name != "postgresql":
            yield True
            return
        async with self._engine.connect() as conn, conn.begin():
            taken = await conn.scalar(
                text("SELECT pg_try_advisory_xact_lock(:space, :key)"), {"space": _RELAY_LOCKS, "key": _RELAY}
            )
            yield bool(taken)
