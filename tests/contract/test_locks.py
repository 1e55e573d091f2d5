"""The Locks contract, run against the in-process adapter and against Redis (two instances sharing it)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from framecast.adapters.locks.memory import MemoryLocks
from framecast.adapters.locks.redis import RedisLocks, connect_redis_locks
from framecast.ports import Locks

TTL = 0.6  # Redis: a lock's time-to-live, renewed while held; short so a dead holder's lock goes quickly


@dataclass
class Pair:
    """The adapter under test and a second instance sharing its state (the same object in memory)."""

    locks: Locks
    peer: Locks


@pytest.fixture(params=["memory", "redis"])
async def pair(request: pytest.FixtureRequest, run_id: str) -> AsyncIterator[Pair]:
    if request.param == "memory":
        memory = MemoryLocks()
        yield Pair(memory, memory)
        return
    url: str = request.getfixturevalue("redis_url")
    prefix = f"framecast-test:{run_id}:{secrets.token_hex(4)}:"
    first, second = (connect_redis_locks(url, prefix=prefix, ttl=TTL) for _ in range(2))
    try:
        yield Pair(first, second)
    finally:
        await first.close()
        await second.close()


async def test_a_held_lock_keeps_everyone_else_out_until_it_is_released(pair: Pair) -> None:
    order: list[str] = []
    async with pair.locks.hold("upload:a", wait=1):
        assert await pair.peer.busy("upload:a")

        async def second() -> None:
            async with pair.peer.hold("upload:a", wait=5):
                order.append("second")

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.2)
        order.append("first done")
    await asyncio.wait_for(waiting, 5)
    assert order == ["first done", "second"]
    assert not await pair.locks.busy("upload:a")


async def test_waiting_longer_than_wait_raises_timeout_and_takes_nothing(pair: Pair) -> None:
    async with pair.locks.hold("upload:a", wait=1):
        with pytest.raises(TimeoutError):
            async with pair.peer.hold("upload:a", wait=0.1):
                pytest.fail("the lock was had twice")
        assert await pair.locks.busy("upload:a")
    async with pair.peer.hold("upload:a", wait=0.1):
        pass


async def test_locks_with_other_names_do_not_wait_for_each_other(pair: Pair) -> None:
    async with pair.locks.hold("upload:a", wait=1), pair.peer.hold("upload:b", wait=0.1):
        assert await pair.locks.busy("upload:b")
    assert not await pair.peer.busy("upload:b")


async def test_an_error_in_the_block_releases_the_lock(pair: Pair) -> None:
    with pytest.raises(ValueError, match="boom"):
        async with pair.locks.hold("upload:a", wait=1):
            raise ValueError("boom")
    async with pair.peer.hold("upload:a", wait=0.1):
        pass


async def test_redis_a_lock_held_longer_than_its_ttl_is_renewed(redis_url: str, run_id: str) -> None:
    prefix = f"framecast-test:{run_id}:{secrets.token_hex(4)}:"
    first, second = (connect_redis_locks(redis_url, prefix=prefix, ttl=TTL) for _ in range(2))
    try:
        async with first.hold("upload:a", wait=1):
            await asyncio.sleep(TTL * 3)
            with pytest.raises(TimeoutError):
                async with second.hold("upload:a", wait=TTL):
                    pytest.fail("a renewed lock was taken")
    finally:
        await first.close()
        await second.close()


async def test_redis_the_lock_of_a_holder_that_died_expires(redis_url: str, run_id: str) -> None:
    """A killed instance renews nothing: its lock is free again after the TTL, not held forever."""
    prefix = f"framecast-test:{run_id}:{secrets.token_hex(4)}:"
    doomed = Redis.from_url(redis_url)
    assert await doomed.lock(f"{prefix}lock:upload:a", timeout=TTL).acquire()  # held, never renewed nor released
    await doomed.aclose()
    survivor = RedisLocks(Redis.from_url(redis_url), prefix=prefix, ttl=TTL)
    try:
        assert await survivor.busy("upload:a")
        async with survivor.hold("upload:a", wait=TTL * 5):
            pass
    finally:
        await survivor.close()
