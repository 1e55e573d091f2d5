"""Event delivery: the outbox relay and de-duplicating subscribers.

Delivery is at least once: the relay marks an event dispatched only after the bus took it, so a crash in between
sends it again. Subscribers wrapped by `deduplicated` apply each event id once: the claim and the handler's writes
share one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from framecast.domain.events import DomainEvent
from framecast.ports import Clock, EventBus, EventHandler, RelayLock, UnitOfWork, UnitOfWorkFactory

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
    """Moves committed events from the outbox to the bus, oldest first, one relay of the fleet at a time.

    Every instance runs one; `lock` lets one pass publish at a time across them (and the in-process lock within
    one), so relays do not send each other's batches twice over. A pass publishes a batch, waits
    for the bus to take all of it, then marks it dispatched, all under the lock: a relay killed in between leaves
    the batch pending, the lock goes with its connection, and the next relay publishes it again (duplicates, which
    consumers drop by event id, never a loss). Per-recording order needs nothing more: the outbox keeps one subject's
    events in commit order (adapters/sql/outbox.py), each pass publishes in that order, and an event is marked only
    after everything before it in its pass was taken, so the first copy of each event always comes after the first
    copy of its predecessors. That holds even with two relays at once (a holder whose database connection dropped
    mid-pass has lost the lock): they cost duplicates, never order.
    """

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        bus: EventBus,
        clock: Clock,
        lock: RelayLock | None = None,
        batch: int = 100,
    ) -> None:
        self._uow = uow
        self._bus = bus
        self._clock = clock
        self._lock = lock
        self._batch = batch
        self._wake = asyncio.Event()
        self._in_process = asyncio.Lock()

    def wake(self) -> None:
        """Ask for a pass now rather than at the next poll (called after commits that wrote events)."""
        self._wake.set()

    async def relay_once(self) -> int | None:
        """Publish up to a batch of pending events and mark them dispatched. Returns how many, or None when another
        relay holds the lock. Raises what the bus raised; nothing is marked then, so all of it is sent again."""
        if self._in_process.locked():
            return None
        async with self._in_process, self._held() as held:
            if not held:
                return None
            async with self._uow() as tx:
                pending = await tx.outbox.pending(limit=self._batch)
            if not pending:
                return 0
            await self._bus.publish([entry.event for entry in pending])
            async with self._uow() as tx:
                await tx.outbox.mark_dispatched([entry.position for entry in pending], at=self._clock.now())
                await tx.commit()
            return len(pending)

    async def prune(self, *, older_than: timedelta, batch: int = 1000) -> int:
        """Delete the events dispatched longer than `older_than` ago, with the consumers' records of them (their
        deduplication), a batch per transaction so no table is locked for long; returns how many. Safe on every
        instance at once: a row two instances both pick is deleted by one of them."""
        cutoff = self._clock.now() - older_than
        total = 0
        while True:
            async with self._uow() as tx:
                removed = await tx.outbox.prune(dispatched_before=cutoff, limit=batch)
                await tx.commit()
            total += removed
            if removed < batch:
                return total

    @contextlib.asynccontextmanager
    async def _held(self) -> AsyncIterator[bool]:
        if self._lock is None:
            yield True
            return
        async with self._lock.hold() as held:
            yield held

    async def run(self, *, poll_seconds: float = 1.0, busy_retry_seconds: float = 0.05) -> None:
        """Relay forever; errors are logged and retried, so a failing bus or subscriber delays but never loses events.

        A relay woken by a commit of its own instance while another relay holds the lock tries again shortly: the
        holder may have read the outbox before that commit.
        """
        while True:
            woken = self._wake.is_set()
            self._wake.clear()  # before the pass: a commit during it asks for another
            sent: int | None = 0
            try:
                while (sent := await self.relay_once()) == self._batch:
                    pass
            except Exception:
                log.exception("outbox relay pass failed; retrying")
            if sent is None and woken:
                self._wake.set()
                await asyncio.sleep(busy_retry_seconds)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll_seconds)
