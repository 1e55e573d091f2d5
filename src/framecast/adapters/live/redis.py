"""Live session state in Redis, shared by every instance of a fleet."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from framecast.adapters.live.memory import LocalFanout, Subscription, check_put
from framecast.ports import LiveSession


def connect_redis_live_state(url: str, *, prefix: str) -> RedisLiveState:
    """Build a RedisLiveState for `url` (redis:// or rediss://); connects lazily, on first use."""
    return RedisLiveState(Redis.from_url(url), prefix=prefix)


def encode_session(session: LiveSession) -> str:
    last_seen = None if session.last_seen is None else session.last_seen.astimezone(UTC).isoformat()
    return json.dumps(
        {
            "recording_id": session.recording_id,
            "status": session.status,
            "instance_id": session.instance_id,
            "last_seen": last_seen,
        }
    )


def decode_session(raw: str | bytes) -> LiveSession:
    data = json.loads(raw)
    last_seen = data["last_seen"]
    return LiveSession(
        recording_id=data["recording_id"],
        status=data["status"],
        instance_id=data["instance_id"],
        last_seen=None if last_seen is None else datetime.fromisoformat(last_seen),
    )


class RedisLiveState:
    """LiveState on Redis: sessions as JSON strings with a TTL, control messages as JSON over pub/sub.

    Keys are `{prefix}session:{recording_id}` and channels `{prefix}control:{recording_id}`, so deployments (or test
    runs) can share a server. One pub/sub connection per instance carries every subscription; a reader task hands
    its messages to the local subscribers. When that connection drops, open subscriptions raise the RedisError (a
    message published meanwhile is lost) and the next subscribe opens a new connection. Owns `client`: close()
    closes it.
    """

    def __init__(self, client: Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._local = LocalFanout()
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        # One event per SUBSCRIBE in flight, by channel, set when the server confirms it (confirmations come in order).
        self._confirmations: dict[str, deque[asyncio.Event]] = {}
        # redis-py's PubSub connects lazily and is not safe for two commands racing to connect it.
        self._commands = asyncio.Lock()
        self._closed = False

    async def put(self, session: LiveSession, *, ttl_seconds: int) -> None:
        """Store `session` for `ttl_seconds` (at least 1), replacing any earlier one for the recording."""
        check_put(session, ttl_seconds=ttl_seconds)
        await self._client.set(self._session_key(session.recording_id), encode_session(session), ex=ttl_seconds)

    async def get(self, recording_id: str) -> LiveSession | None:
        raw = await self._client.get(self._session_key(recording_id))
        return None if raw is None else decode_session(raw)

    async def delete(self, recording_id: str) -> None:
        await self._client.delete(self._session_key(recording_id))

    async def publish(self, recording_id: str, message: dict[str, Any]) -> None:
        await self._client.publish(self._channel(recording_id), json.dumps(message))

    @asynccontextmanager
    async def subscribe(self, recording_id: str) -> AsyncIterator[Subscription]:
        """Listen for messages published for `recording_id` while the block is open; raises RuntimeError after close.

        Entering waits for the server to confirm the SUBSCRIBE, so a publish from any instance after that is seen.
        """
        if self._closed:
            raise RuntimeError("RedisLiveState is closed")
        channel = self._channel(recording_id)
        subscription, first = self._local.add(recording_id)
        try:
            if first:
                await self._send_subscribe(channel)
            pending = self._confirmations.get(channel)
            if pending:
                await pending[-1].wait()
            yield subscription
        finally:
            if self._local.remove(recording_id, subscription):
                async with self._commands:
                    if self._pubsub is not None:  # None once the connection failed or closed
                        await self._pubsub.unsubscribe(channel)

    def subscriber_count(self, recording_id: str) -> int:
        """Subscriptions open in this process for `recording_id`."""
        return self._local.count(recording_id)

    async def ping(self) -> None:
        """Raise redis.exceptions.ConnectionError (or another RedisError) when Redis does not answer."""
        await self._client.ping()

    async def close(self) -> None:
        """End every subscription, then close the pub/sub connection and the client."""
        self._closed = True
        self._stop_listening(error=None)
        if self._reader is not None:
            self._reader.cancel()
            with suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves PubSub.aclose unannotated
            self._pubsub = None
        await self._client.aclose()

    async def _send_subscribe(self, channel: str) -> None:
        async with self._commands:
            if self._pubsub is None:
                self._pubsub = self._client.pubsub()
            confirmed = asyncio.Event()
            pending = self._confirmations.setdefault(channel, deque())
            # Queued before sending: the reader may see the confirmation before subscribe() returns here.
            pending.append(confirmed)
            try:
                await self._pubsub.subscribe(channel)
            except BaseException:
                pending.remove(confirmed)  # no confirmation will come for it
                if not pending:
                    del self._confirmations[channel]
                raise
            if self._reader is None:
                # Started only now: redis-py refuses to read from a PubSub that has never subscribed.
                self._reader = asyncio.create_task(self._relay(self._pubsub))

    async def _relay(self, pubsub: PubSub) -> None:
        """Hand every message on `pubsub` to local subscribers until cancelled or the connection fails."""
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is not None:
                    self._dispatch(message)
        except RedisError as error:
            self._stop_listening(error=error)
            self._pubsub = self._reader = None
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        if isinstance(channel, bytes):
            channel = channel.decode()
        if message["type"] == "subscribe":
            pending = self._confirmations.get(channel)
            if pending:
                pending.popleft().set()
                if not pending:
                    del self._confirmations[channel]
        elif message["type"] == "message":
            self._local.deliver(channel.removeprefix(f"{self._prefix}control:"), message["data"])

    def _stop_listening(self, *, error: Exception | None) -> None:
        """End every open subscription (with `error`, if any) and release everyone waiting for a confirmation."""
        self._local.end_all(error)
        for pending in self._confirmations.values():
            for confirmed in pending:
                confirmed.set()
        self._confirmations.clear()

    def _session_key(self, recording_id: str) -> str:
        return f"{self._prefix}session:{recording_id}"

    def _channel(self, recording_id: str) -> str:
        return f"{self._prefix}control:{recording_id}"
