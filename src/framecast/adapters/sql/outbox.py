"""The transactional outbox: events are inserted in the same transaction as the state change they describe."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from framecast.adapters.sql.tables import outbox, processed_events
from framecast.domain.events import DomainEvent
from framecast.ports import OutboxEntry


class SqlOutbox:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def append(self, events: Sequence[DomainEvent]) -> None:
        if not events:
            return
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

    async def claim_for(self, consumer: str, event_id: str) -> bool:
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(processed_events).values(consumer=consumer, event_id=event_id).on_conflict_do_nothing()
        )
        result = await self._conn.execute(statement)
        return result.rowcount == 1
