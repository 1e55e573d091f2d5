"""The LiveState contract, run against the in-memory adapter and against Redis."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from framecast.adapters.live.memory import MemoryLiveState
from framecast.adapters.live.redis import connect_redis_live_state
from framecast.ports import LiveSession, LiveState


@dataclass
class Fleet:
    """The adapter under test, a second instance sharing its state (the same object for memory), and leak probes."""

    live: LiveState
    peer: LiveState
    local_subscribers: Callable[[str], int]
    server_subscribers: Callable[[str], Awaitable[int]] | None = None


@pytest.fixture(params=["memory", "redis"])
async def fleet(request: pytest.FixtureRequest, run_id: str) -> AsyncIterator[Fleet]:
    if request.param == "memory":
        memory = MemoryLiveState()
        yield Fleet(live=memory, peer=memory, local_subscribers=memory.subscriber_count)
        await memory.close()
        return
    url: str = request.getfixturevalue("redis_url")
    prefix = f"framecast-test:{run_id}:{secrets.token_hex(4)}:"
    admin = Redis.from_url(url)

    async def server_subscribers(recording_id: str) -> int:
        [(_, count)] = await admin.pubsub_numsub(f"{prefix}control:{recording_id}")
        return int(count)

    live = connect_redis_live_state(url, prefix=prefix)
    peer = connect_redis_live_state(url, prefix=prefix)
    try:
        yield Fleet(
            live=live, peer=peer, local_subscribers=live.subscriber_count, server_subscribers=server_subscribers
        )
    finally:
        await live.close()
        await peer.close()
        keys = [key async for key in admin.scan_iter(match=f"{prefix}*")]
        if keys:
            await admin.delete(*keys)
        await admin.aclose()


def a_session(recording_id: str = "rec-1", **changes: Any) -> LiveSession:
    session = LiveSession(
        recording_id=recording_id,
        status="RECORDING",
        instance_id="instance-a",
        last_seen=datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC),
    )
    return replace(session, **changes)


async def next_message(messages: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    with anyio.fail_after(5):
        return await anext(messages)


# -- sessions -------------------------------------------------------------------------------------------------------


async def test_put_then_get_returns_every_field(fleet: Fleet) -> None:
    session = a_session()
    await fleet.live.put(session, ttl_seconds=60)

    assert await fleet.peer.get("rec-1") == session


async def test_last_seen_round_trips_from_any_timezone(fleet: Fleet) -> None:
    paris = timezone(timedelta(hours=1))
    session = a_session(last_seen=datetime(2026, 3, 4, 6, 0, tzinfo=paris), instance_id=None)
    await fleet.live.put(session, ttl_seconds=60)

    stored = await fleet.peer.get("rec-1")
    assert stored == session
    assert stored.last_seen is not None
    assert stored.last_seen.utcoffset() is not None


async def test_optional_fields_may_be_empty(fleet: Fleet) -> None:
    session = a_session(instance_id=None, last_seen=None)
    await fleet.live.put(session, ttl_seconds=60)

    assert await fleet.live.get("rec-1") == session


async def test_unknown_recording_has_no_session(fleet: Fleet) -> None:
    assert await fleet.live.get("nobody") is None


async def test_put_replaces_the_earlier_session(fleet: Fleet) -> None:
    await fleet.live.put(a_session(), ttl_seconds=60)
    await fleet.peer.put(a_session(status="PAUSED", instance_id="instance-b"), ttl_seconds=60)

    assert await fleet.live.get("rec-1") == a_session(status="PAUSED", instance_id="instance-b")


async def test_delete_removes_only_that_session(fleet: Fleet) -> None:
    await fleet.live.put(a_session("rec-1"), ttl_seconds=60)
    await fleet.live.put(a_session("rec-2"), ttl_seconds=60)

    await fleet.peer.delete("rec-1")
    await fleet.peer.delete("never-existed")

    assert await fleet.live.get("rec-1") is None
    assert await fleet.live.get("rec-2") == a_session("rec-2")


async def test_session_expires_after_its_ttl(fleet: Fleet) -> None:
    await fleet.live.put(a_session(), ttl_seconds=1)
    assert await fleet.live.get("rec-1") is not None

    await anyio.sleep(1.2)

    assert await fleet.live.get("rec-1") is None


@pytest.mark.parametrize(
    ("session", "ttl_seconds"),
    [(a_session(), 0), (a_session(last_seen=datetime(2026, 1, 1)), 60)],
    ids=["ttl-under-a-second", "naive-last-seen"],
)
async def test_put_refuses_what_cannot_be_stored_faithfully(
    fleet: Fleet, session: LiveSession, ttl_seconds: int
) -> None:
    with pytest.raises(ValueError, match=r"ttl_seconds|timezone"):
        await fleet.live.put(session, ttl_seconds=ttl_seconds)

    assert await fleet.live.get(session.recording_id) is None


# -- control messages -----------------------------------------------------------------------------------------------


async def test_published_message_reaches_a_subscriber(fleet: Fleet) -> None:
    message = {"type": "FORCE_STOP", "data": {"reason": "requested", "by": ["admin", 1, None, 2.5, True]}}
    async with fleet.live.subscribe("rec-1") as messages:
        await fleet.peer.publish("rec-1", message)

        assert await next_message(messages) == message


async def test_every_subscriber_gets_its_own_copy(fleet: Fleet) -> None:
    async with fleet.live.subscribe("rec-1") as first, fleet.peer.subscribe("rec-1") as second:
        await fleet.live.publish("rec-1", {"type": "FORCE_STOP", "data": {}})

        received = await next_message(first)
        received["data"]["tampered"] = True

        assert await next_message(second) == {"type": "FORCE_STOP", "data": {}}


async def test_messages_for_another_recording_are_not_received(fleet: Fleet) -> None:
    async with fleet.live.subscribe("rec-1") as messages:
        await fleet.peer.publish("rec-2", {"n": "for rec-2"})
        await fleet.peer.publish("rec-1", {"n": "for rec-1"})

        # Delivery is in publish order, so had rec-2's message leaked it would come first.
        assert await next_message(messages) == {"n": "for rec-1"}


async def test_messages_published_before_subscribing_are_not_delivered(fleet: Fleet) -> None:
    await fleet.peer.publish("rec-1", {"n": 1})
    async with fleet.live.subscribe("rec-1") as messages:
        await fleet.peer.publish("rec-1", {"n": 2})

        assert await next_message(messages) == {"n": 2}


async def test_messages_arrive_in_publish_order(fleet: Fleet) -> None:
    async with fleet.live.subscribe("rec-1") as messages:
        for n in range(50):
            await fleet.peer.publish("rec-1", {"n": n})

        assert [(await next_message(messages))["n"] for _ in range(50)] == list(range(50))


async def test_leaving_the_block_unsubscribes(fleet: Fleet) -> None:
    async with fleet.live.subscribe("rec-1") as messages, fleet.live.subscribe("rec-1"):
        assert fleet.local_subscribers("rec-1") == 2
    await fleet.peer.publish("rec-1", {"n": "too late"})

    assert [message async for message in messages] == []
    assert fleet.local_subscribers("rec-1") == 0
    if fleet.server_subscribers is not None:
        with anyio.fail_after(5):
            # The server's count has no event to wait on; UNSUBSCRIBE is sent on leaving, not awaited.
            while await fleet.server_subscribers("rec-1"):  # noqa: ASYNC110
                await anyio.sleep(0.01)


async def test_resubscribing_after_leaving_works(fleet: Fleet) -> None:
    for n in range(3):
        async with fleet.live.subscribe("rec-1") as messages:
            await fleet.peer.publish("rec-1", {"n": n})

            assert await next_message(messages) == {"n": n}


async def test_close_ends_open_subscriptions(fleet: Fleet) -> None:
    async with fleet.live.subscribe("rec-1") as messages:
        await fleet.live.close()

        assert [message async for message in messages] == []

    with pytest.raises(RuntimeError, match="closed"):
        async with fleet.live.subscribe("rec-1"):
            pass


async def test_publish_refuses_a_message_that_is_not_json(fleet: Fleet) -> None:
    with pytest.raises(TypeError):
        await fleet.live.publish("rec-1", {"at": datetime.now(UTC)})


# -- health ---------------------------------------------------------------------------------------------------------


async def test_ping_succeeds_when_the_backing_service_is_up(fleet: Fleet) -> None:
    await fleet.live.ping()


async def test_ping_raises_when_redis_is_unreachable() -> None:
    live = connect_redis_live_state("redis://127.0.0.1:1/0", prefix="unreachable:")
    try:
        with pytest.raises(RedisConnectionError):
            await live.ping()
    finally:
        await live.close()
