"""In-process event bus for the embedded default: subscribers run in this process, in subscription order."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from framecast.domain.events import DomainEvent
from framecast.ports import EventHandler

log = logging.getLogger(__name__)


class SubscriberFailed(Exception):
    """At least one subscriber raised; the event stays pending and is delivered again (to all, deduplicated)."""


class MemoryEventBus:
    def __init__(self) -> None:
        self._handlers: list[tuple[str, EventHandler]] = []

    def subscribe(self, consumer: str, handler: EventHandler) -> None:
        self._handlers.append((consumer, handler))

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            failed = []
            for consumer, handler in self._handlers:
                try:
                    await handler(event)
                except Exception:
                    log.exception("subscriber %s failed on event %s (%s)", consumer, event.id, event.type)
                    failed.append(consumer)
            if failed:
                raise SubscriberFailed(f"{', '.join(failed)} failed on event {event.id}")
