"""Locks shared by a fleet, on Redis (redis-py's Lock: SET NX with a token, released by a script that checks it).

A lock is taken with a short time-to-live and renewed while its block runs, so a long PATCH keeps it and an instance
killed mid-request gives it up within `ttl` seconds instead of blocking the upload until someone intervenes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

log = logging.getLogger(__name__)


def connect_redis_locks(url: str, *, prefix: str, ttl: float = 10.0) -> RedisLocks:
    """RedisLocks on `url` (redis:// or rediss://); connects lazily, on first use."""
    return RedisLocks(Redis.from_url(url), prefix=prefix, ttl=ttl)


class RedisLocks:
    """Keys are `{prefix}lock:{name}`. Owns `client`: close() closes it."""

    def __init__(self, client: Redis, *, prefix: str, ttl: float = 10.0, poll: float = 0.02) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl = ttl
        self._poll = poll

    async def busy(self, name: str) -> bool:
        return bool(await self._client.exists(self._key(name)))

    @contextlib.asynccontextmanager
    async def hold(self, name: str, *, wait: float) -> AsyncIterator[None]:
        lock = self._client.lock(self._key(name), timeout=self._ttl, sleep=self._poll, blocking_timeout=wait)
        if not await lock.acquire():
            raise TimeoutError(f"lock {name} is held elsewhere")
        done = asyncio.Event()
        keeper = asyncio.create_task(self._keep(lock, name, done), name=f"lock-keeper:{name}")
        try:
            yield
        finally:
            # Asked to stop rather than cancelled: cancelling redis-py in the middle of a command can leave the
            # command's future pending for good, and this block waiting on it with the lock's user.
            done.set()
            await keeper
            with contextlib.suppress(LockError):  # it expired: someone else may hold it now, and that is theirs
                await lock.release()

    async def _keep(self, lock: Lock, name: str, done: asyncio.Event) -> None:
        """Renew the lock's time-to-live every third of it until `done` is set."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=self._ttl / 3)
                return
            try:
                await lock.reacquire()
            except LockError:
                log.warning("lost lock %s: it expired before it could be renewed", name)
                return
            except RedisError:
                log.warning("could not renew lock %s; trying again", name, exc_info=True)

    async def ping(self) -> None:
        """Raise a RedisError when Redis does not answer."""
        await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()

    def _key(self, name: str) -> str:
        return f"{self._prefix}lock:{name}"
