"""The EventBus contract, run against every adapter: in-process and Kafka (a real Kafka-protocol broker).

What services rely on: every subscriber gets every published event, and one subject's events in the order they were
published. (What happens when a handler raises differs by design: the in-process bus raises to the relay, which
publishes again; Kafka retries the handler itself. Both are covered in tests/integration.)
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from framecast.adapters.bus.kafka import KafkaEventBus
from framecast.adapters.bus.memory import MemoryEventBus
from framecast.domain.events import DomainEvent
from framecast.ports import BrokeredEventBus, EventBus
from framecast.settings import parse_kafka_url

TIMEOUT = 30.0


@pytest.fixture(params=["memory", "kafka"])
def bus(request: pytest.FixtureRequest, run_id: str) -> EventBus:
    if request.param == "memory":
        return MemoryEventBus()
    servers = parse_kafka_url(request.getfixturevalue("kafka_url"))
    topic = f"framecast-test-{run_id}-{secrets.token_hex(4)}"
    return KafkaEventBus(servers=servers, topic=topic, partitions=3, session_timeout_seconds=2)


@contextlib.asynccontextmanager
async def running(bus: EventBus) -> AsyncIterator[None]:
    if not isinstance(bus, BrokeredEventBus):
        yield
        return
    await bus.start()
    try:
        yield
    finally:
        await bus.close()


class Received:
    def __init__(self) -> None:
        self.by_subject: dict[str, list[str]] = defaultdict(list)
        self.count = 0
        self.changed = asyncio.Event()

    async def __call__(self, event: DomainEvent) -> None:
        self.by_subject[event.subject].append(event.id)
        self.count += 1
        self.changed.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while self.count < count:
                self.changed.clear()
                await self.changed.wait()


def events_on(subjects: list[str], per_subject: int) -> list[DomainEvent]:
    now = datetime.now(UTC)
    return [
        DomainEvent(type="recording_paused", subject=subject, time=now, data={"recording_id": subject, "n": n})
        for n in range(per_subject)
        for subject in subjects
    ]


async def test_every_subscriber_gets_every_event_each_subjects_in_publish_order(bus: EventBus) -> None:
    first, second = Received(), Received()
    bus.subscribe("first", first)
    bus.subscribe("second", second)
    events = events_on([f"recording-{i}" for i in range(6)], per_subject=4)
    async with running(bus):
        await bus.publish(events[:10])
        await bus.publish(events[10:])
        await bus.publish([])
        for received in (first, second):
            await received.wait_for(len(events))
    expected: dict[str, list[str]] = defaultdict(list)
    for event in events:
        expected[event.subject].append(event.id)
    assert first.by_subject == second.by_subject == expected
