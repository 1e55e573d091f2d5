"""Event delivery: the outbox relay and de-duplicating subscribers.

Delivery is at least once: the relay marks an event dispatched only after the bus took it, so a crash in between
sends it again. Subscribers wrapped by `deduplicated` apply each event id once: the claim and the handler's writes
share one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from framecast.domain.events import DomainEvent
from framecast.ports import Clock, EventBus, EventHandler, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

TransactionalHandler = Callable[[DomainEvent, UnitOfWork], Awaitable[None]]


def deduplicated(*, consumer: str, handler: TransactionalHandler, uow: UnitOfWorkFactory) -> EventHandler:
    """Wrap `handler` so that `consumer` applies each event id at most once (it must not commit itself)."""

    async def handle(event: DomainEvent) -> None:
        async with uow() as tx:
            if not await tx.outbox.claim_for(consumer, event.id):
                return
            await handler(event, tx)
            await tx.commit()

    return handle


class OutboxRelay:
    """Moves committed events from the outbox to the bus, in commit order."""

    def __init__(self, *, uow: UnitOfWorkFactory, bus: EventBus, clock: Clock, batch: int = 100) -> None:
        self._uow = uow
        self._bus = bus
        self._clock = clock
        self._batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask for a pass now rather than at the next poll (called after commits that wrote events)."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Dispatch what is pending; stops at the first event the bus refuses so order is kept. Returns the count."""
        async with self._uow() as tx:
            pending = await tx.outbox.pending(limit=self._batch)
        sent: list[int] = []
        try:
            for entry in pending:
                await self._bus.publish([entry.event])
                sent.append(entry.position)
        finally:
            if sent:
                async with self._uow() as tx:
                    await tx.outbox.mark_dispatched(sent, at=self._clock.now())
                    await tx.commit()
        return len(sent)

    async def run(self, *, poll_seconds: float = 1.0) -> None:
        """Relay forever; errors are logged and retried, so a failing subscriber delays but never loses events."""
        while True:
            try:
                while await self.relay_once() == self._batch:
                    pass
            except Exception:
                log.exception("outbox relay pass failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll_seconds)
