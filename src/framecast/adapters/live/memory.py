"""Live session state for a single process: the embedded default, and the local fan-out the Redis adapter reuses."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Self

from framecast.ports import LiveSession


def check_put(session: LiveSession, *, ttl_seconds: int) -> None:
    """Reject what Redis could not store faithfully: a TTL under one second, or a naive `last_seen`."""
    if ttl_seconds < 1:
        raise ValueError(f"ttl_seconds must be at least 1, got {ttl_seconds}")
    if session.last_seen is not None and session.last_seen.utcoffset() is None:
        raise ValueError("last_seen must be timezone-aware")


class _End:
    def __init__(self, error: Exception | None) -> None:
        self.error = error


class Subscription:
    """Messages for one subscriber, in arrival order, each decoded into the subscriber's own dict.

    Iteration ends once the subscription is ended, after any messages already queued; when it was ended by a failure
    of the backing service, iteration raises that error instead. Cancelling a wait loses nothing.
    """

    # A deque and one future rather than an asyncio.Queue: every idle connected session holds one of these, and a
    # Queue costs about 3 KiB where this costs a few hundred bytes.
    __slots__ = ("_ended", "_items", "_waiter")

    def __init__(self) -> None:
        # Unbounded on purpose: control messages are few, and a bounded queue would have to drop a FORCE_STOP.
        self._items: deque[str | bytes | _End] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False

    def deliver(self, payload: str | bytes) -> None:
        if not self._ended:
            self._items.append(payload)
            self._wake()

    def end(self, error: Exception | None = None) -> None:
        if not self._ended:
            self._ended = True
            self._items.append(_End(error))
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items[0]
        if isinstance(item, _End):  # left in place: every later call ends the same way
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        self._items.popleft()
        message: dict[str, Any] = json.loads(item)
        return message


class LocalFanout:
    """The subscriptions open in this process, by recording id."""

    def __init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = {}

    def add(self, recording_id: str) -> tuple[Subscription, bool]:
        """Open a subscription; the flag is True when it is the first for `recording_id`."""
        subscription = Subscription()
        subscriptions = self._subscriptions.setdefault(recording_id, set())
        subscriptions.add(subscription)
        return subscription, len(subscriptions) == 1

    def remove(self, recording_id: str, subscription: Subscription) -> bool:
        """End and forget a subscription; True when it was the last one open for `recording_id`."""
        subscription.end()
        subscriptions = self._subscriptions.get(recording_id)
        if subscriptions is None or subscription not in subscriptions:
            return False  # already ended by end_all()
        subscriptions.remove(subscription)
        if subscriptions:
            return False
        del self._subscriptions[recording_id]
        return True

    def deliver(self, recording_id: str, payload: str | bytes) -> None:
        for subscription in self._subscriptions.get(recording_id, ()):
            subscription.deliver(payload)

    def count(self, recording_id: str) -> int:
        return len(self._subscriptions.get(recording_id, ()))

    def end_all(self, error: Exception | None = None) -> None:
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.end(error)
        self._subscriptions.clear()


class MemoryLiveState:
    """LiveState for one process: sessions in a dict with expiry, control messages fanned out in memory.

    Behaves as RedisLiveState does: messages must be JSON-serialisable (TypeError otherwise) and every subscriber
    gets its own decoded copy. `clock` returns seconds on a monotonic scale; an entry expires `ttl_seconds` after
    its put.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: dict[str, tuple[LiveSession, float]] = {}
        self._sweep_at = 64
        self._local = LocalFanout()
        self._closed = False

    async def put(self, session: LiveSession, *, ttl_seconds: int) -> None:
        """Store `session` for `ttl_seconds` (at least 1), replacing any earlier one for the recording."""
        check_put(session, ttl_seconds=ttl_seconds)
        self._sessions[session.recording_id] = (session, self._clock() + ttl_seconds)
        if len(self._sessions) >= self._sweep_at:
            self._drop_expired()

    async def get(self, recording_id: str) -> LiveSession | None:
        entry = self._sessions.get(recording_id)
        if entry is None:
            return None
        session, expires_at = entry
        if expires_at <= self._clock():
            del self._sessions[recording_id]
            return None
        return session

    async def delete(self, recording_id: str) -> None:
        self._sessions.pop(recording_id, None)

    async def publish(self, recording_id: str, message: dict[str, Any]) -> None:
        self._local.deliver(recording_id, json.dumps(message))

    @asynccontextmanager
    async def subscribe(self, recording_id: str) -> AsyncIterator[Subscription]:
        """Listen for messages published for `recording_id` while the block is open; raises RuntimeError after close."""
        if self._closed:
            raise RuntimeError("MemoryLiveState is closed")
        subscription, _ = self._local.add(recording_id)
        try:
            yield subscription
        finally:
            self._local.remove(recording_id, subscription)

    def subscriber_count(self, recording_id: str) -> int:
        """Subscriptions open in this process for `recording_id`."""
        return self._local.count(recording_id)

    async def ping(self) -> None:
        """Do nothing: memory is always reachable."""

    async def close(self) -> None:
        """End every subscription; sessions stay readable."""
        self._closed = True
        self._local.end_all()

    def _drop_expired(self) -> None:
        now = self._clock()
        for recording_id, (_, expires_at) in list(self._sessions.items()):
            if expires_at <= now:
                del self._sessions[recording_id]
        # Sweep again only once the map has doubled, so a put costs O(1) amortised.
        self._sweep_at = max(64, 2 * len(self._sessions))
