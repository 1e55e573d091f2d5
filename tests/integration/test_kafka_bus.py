"""The Kafka event bus against a real Kafka-protocol broker (Tansu): order per recording across partitions, consumer
groups, redelivery applied once, handler retries, restarts from committed offsets, two relays on one database, and a
recording processed to READY on a Kafka-configured server."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import func, select

import media_clips
from conftest import Server, free_port, outbox_order
from framecast.adapters.bus.kafka import CONTENT_TYPE, KafkaEventBus
from framecast.adapters.sql.tables import outbox
from framecast.bootstrap import Container, build_container
from framecast.domain.events import DomainEvent
from framecast.domain.recordings import Recording, RecordingType
from framecast.ports import EventBus, UnitOfWork
from framecast.services.accounts import ensure_user
from framecast.services.events import OutboxRelay, deduplicated
from framecast.settings import Settings, parse_kafka_url

TIMEOUT = 60.0
PARTITIONS = 4


@pytest.fixture
def settings(settings: Settings, kafka_url: str, run_id: str) -> Settings:
    """The suite's settings on Kafka: a topic of this test's own (so consumer groups of their own too), and a short
    session timeout so a closed consumer's partitions move on quickly."""
    return settings.model_copy(
        update={
            "event_bus_url": kafka_url,
            "kafka_topic": f"framecast-test-{run_id}-{secrets.token_hex(4)}",
            "kafka_partitions": PARTITIONS,
            "kafka_session_timeout_seconds": 2.0,
            "serve_workers": True,
            "media_threads": 2,
        }
    )


def kafka_bus(container: Container) -> KafkaEventBus:
    assert isinstance(container.bus, KafkaEventBus)
    return container.bus


# -- observing consumers ---------------------------------------------------------------------------------------------


@dataclass
class Seen:
    """What one consumer was handed (every delivery) and what it applied (after de-duplication), in order."""

    delivered: list[DomainEvent] = field(default_factory=list)
    applied: list[DomainEvent] = field(default_factory=list)

    def applied_ids(self) -> list[str]:
        return [event.id for event in self.applied]


def listen(
    container: Container,
    consumer: str,
    *,
    fail: Callable[[DomainEvent], bool] | None = None,
    seen: Seen | None = None,
) -> Seen:
    """Subscribe `consumer` the way framecast's own handlers are: through `deduplicated`; `fail` makes it raise.
    Pass the `seen` of a member on another instance to log the whole group in one place."""
    seen = seen or Seen()

    async def apply(event: DomainEvent, tx: UnitOfWork) -> None:
        if fail is not None and fail(event):
            raise RuntimeError(f"handler refused {event.type}")
        seen.applied.append(event)

    once = deduplicated(consumer=consumer, handler=apply, uow=container.uow)

    async def deliver(event: DomainEvent) -> None:
        seen.delivered.append(event)
        await once(event)

    container.bus.subscribe(consumer, deliver)
    return seen


async def eventually(condition: Callable[[], Awaitable[bool] | bool], *, timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while True:
            result = condition()
            if await result if isinstance(result, Awaitable) else result:
                return
            await asyncio.sleep(0.05)


# -- making events ---------------------------------------------------------------------------------------------------

Change = Callable[[Recording, object], None]
SESSION: list[Change] = [
    lambda r, at: r.start(at=at),
    lambda r, at: r.pause(at=at),
    lambda r, at: r.resume(at=at),
]


async def record_sessions(containers: Sequence[Container], count: int) -> list[str]:
    """Create `count` recordings and take each through start, pause, resume and stop, the recordings' steps
    interleaved and each step on the next container in turn; returns the recording ids."""
    first = containers[0]
    user = await ensure_user(uow=first.uow, clock=first.clock, email="owner@example.com")
    ids = [
        (await containers[i % len(containers)].recordings.create(owner=user, recording_type=RecordingType.SCREEN)).id
        for i in range(count)
    ]

    async def session(index: int, recording_id: str) -> None:
        for seq, change in enumerate(SESSION, start=1):
            services = containers[(index + seq) % len(containers)].recordings
            await services.apply(owner_id=user.id, recording_id=recording_id, seq=seq, change=change)
        await containers[index % len(containers)].recordings.force_stop(owner_id=None, recording_id=recording_id)

    await asyncio.gather(*(session(i, rid) for i, rid in enumerate(ids)))
    return ids


async def pending_count(container: Container) -> int:
    async with container.engine.connect() as conn:
        query = select(func.count()).select_from(outbox).where(outbox.c.dispatched_at.is_(None))
        return int((await conn.execute(query)).scalar_one())


async def drained(container: Container) -> bool:
    return await pending_count(container) == 0


def by_subject(events: Sequence[DomainEvent], *, first_copies: bool = False) -> dict[str, list[str]]:
    """Event ids per subject in the order given; with `first_copies`, repeats of an id are left out."""
    order: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for event in events:
        if first_copies and event.id in seen:
            continue
        seen.add(event.id)
        order[event.subject].append(event.id)
    return dict(order)


def total(order: dict[str, list[str]]) -> int:
    return sum(len(ids) for ids in order.values())


# -- reading the topic as another program would --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def raw_reader(settings: Settings, *, group: str | None = None) -> AsyncIterator[AIOKafkaConsumer]:
    """A plain consumer of the whole topic, outside any group unless `group` is given (then not subscribed either:
    it can only read that group's committed offsets)."""
    servers = settings.kafka_servers
    assert servers is not None
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(settings.kafka_topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        yield consumer
    finally:
        await consumer.stop()


async def read_topic(settings: Settings, count: int) -> list[tuple[int, object]]:
    """The first `count` records of the topic as (partition, record), each partition's in offset order."""
    records: list[tuple[int, object]] = []
    async with raw_reader(settings) as consumer:
        async with asyncio.timeout(TIMEOUT):
            while len(records) < count:
                for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                    records += [(tp.partition, record) for record in batch]
    return records


async def committed_reaches(settings: Settings, group: str, count: int) -> bool:
    """Whether `group` has committed offsets past `count` records in all (the topic's every record, once each)."""
    async with raw_reader(settings, group=group) as consumer:
        offsets = [await consumer.committed(tp) for tp in consumer.assignment()]
    return sum(offset or 0 for offset in offsets) >= count


# -- the tests ------------------------------------------------------------------------------------------------------


async def test_each_recordings_events_arrive_in_commit_order_across_partitions(container: Container) -> None:
    seen = listen(container, "order")
    container.start_background()
    await record_sessions([container], 8)
    expected = await outbox_order(container)
    await eventually(lambda: len(seen.applied) == total(expected))
    assert by_subject(seen.applied) == expected
    assert by_subject(seen.delivered, first_copies=True) == expected

    records = await read_topic(container.settings, total(expected))
    partitions = {subject: {p for p, r in records if r.key.decode() == subject} for subject in expected}
    assert all(len(used) == 1 for used in partitions.values())  # one recording, one partition
    assert len(set().union(*partitions.values())) > 1  # and the recordings spread over several


async def test_the_wire_format_is_structured_cloudevents_keyed_by_recording(container: Container) -> None:
    container.start_background()
    [recording_id] = await record_sessions([container], 1)
    expected = await outbox_order(container)
    records = [record for _, record in await read_topic(container.settings, total(expected))]
    assert [r.key for r in records] == [recording_id.encode()] * len(records)
    assert all(dict(r.headers)["content-type"] == CONTENT_TYPE.encode() for r in records)
    envelopes = [json.loads(r.value) for r in records]
    assert [e["id"] for e in envelopes] == expected[recording_id]
    first = envelopes[0]
    assert first["specversion"] == "1.0"
    assert first["type"] == "recording_created"
    assert first["source"] == "/framecast"
    assert first["subject"] == first["partitionkey"] == recording_id
    assert first["datacontenttype"] == "application/json"
    assert first["time"].endswith("Z")
    assert first["data"]["recording_id"] == recording_id


async def test_every_consumer_group_sees_every_event_once(container: Container) -> None:
    groups = [listen(container, "search-index"), listen(container, "notifications")]
    container.start_background()
    await record_sessions([container], 3)
    expected = await outbox_order(container)
    await eventually(lambda: all(len(seen.applied) == total(expected) for seen in groups))
    for seen in groups:
        assert by_subject(seen.applied) == expected


class PublishesThenDies:
    """A bus that the relay's process dies on right after the broker took a batch, before it is marked."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    def subscribe(self, consumer: str, handler: Callable[[DomainEvent], Awaitable[None]]) -> None:
        self._bus.subscribe(consumer, handler)

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        await self._bus.publish(events)
        raise ConnectionResetError("the relay's process died before marking the batch dispatched")


async def test_a_relay_dying_between_publish_and_mark_causes_duplicates_each_applied_once(
    container: Container,
) -> None:
    seen = listen(container, "dedup")
    bus = kafka_bus(container)
    await bus.start()
    await record_sessions([container], 3)
    expected = await outbox_order(container)

    dying = OutboxRelay(uow=container.uow, bus=PublishesThenDies(bus), clock=container.clock)
    with pytest.raises(ConnectionResetError):
        await dying.relay_once()
    assert await pending_count(container) == total(expected)  # nothing lost: all still pending
    assert await container.relay.relay_once() == total(expected)  # the next relay sends it all again
    assert await pending_count(container) == 0

    await eventually(lambda: len(seen.delivered) == 2 * total(expected))
    assert by_subject(seen.delivered, first_copies=True) == expected
    assert by_subject(seen.applied) == expected  # every copy delivered, each event applied once


async def test_a_failing_handler_is_retried_without_loss_or_reordering(container: Container) -> None:
    refusals: list[str] = []

    def flaky(event: DomainEvent) -> bool:
        if event.type == "recording_paused" and refusals.count(event.id) < 3:
            refusals.append(event.id)
            return True
        return False

    seen = listen(container, "flaky", fail=flaky)
    container.start_background()
    await record_sessions([container], 4)
    expected = await outbox_order(container)
    await eventually(lambda: len(seen.applied) == total(expected))
    assert len(refusals) == 3 * 4
    assert by_subject(seen.applied) == expected
    assert len(seen.applied_ids()) == len(set(seen.applied_ids()))


async def test_a_restarted_consumer_resumes_from_its_committed_offsets(
    container: Container, settings: Settings
) -> None:
    before = listen(container, "resume")
    container.start_background()
    await record_sessions([container], 2)
    first = await outbox_order(container)
    await eventually(lambda: len(before.applied) == total(first))
    group = kafka_bus(container).group_id("resume")
    await eventually(lambda: committed_reaches(settings, group, total(first)))
    await container.aclose()  # the instance goes away; its member leaves the group

    second = await build_container(settings)
    try:
        after = listen(second, "resume")
        second.start_background()
        await record_sessions([second], 2)
        new = {s: ids for s, ids in (await outbox_order(second)).items() if s not in first}
        await eventually(lambda: len(after.applied) == total(new))
        assert by_subject(after.delivered) == new  # nothing the group had committed came again
        assert by_subject(after.applied) == new
    finally:
        await second.aclose()


ON_POSTGRES = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@ON_POSTGRES
async def test_two_instances_relaying_at_once_publish_every_event_once_in_order(settings: Settings) -> None:
    first = await build_container(settings.model_copy(update={"instance_id": "a"}))
    second = await build_container(settings.model_copy(update={"instance_id": "b", "port": free_port()}))
    try:
        fleet = Seen()  # one group with a member on each instance: the partitions are split between them
        listen(first, "fleet", seen=fleet)
        listen(second, "fleet", seen=fleet)
        audit = listen(second, "audit")
        first.start_background()
        second.start_background()
        await record_sessions([first, second], 12)
        expected = await outbox_order(first)
        await eventually(lambda: len(fleet.applied) == total(expected) and len(audit.applied) == total(expected))
        assert by_subject(fleet.applied) == expected
        assert by_subject(audit.applied) == expected
        assert by_subject(audit.delivered, first_copies=True) == expected
        await eventually(lambda: drained(first))
    finally:
        await first.aclose()
        await second.aclose()


# -- the whole flow ------------------------------------------------------------------------------------------------


async def import_clip(server: Server, path: Path) -> str:
    """Upload `path` as an import (tus creation-with-upload); returns the new recording's id."""
    data = path.read_bytes()
    async with server.client() as http:
        response = await http.post(
            "/api/v1/uploads/",
            content=data,
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Length": str(len(data)),
                "Upload-Metadata": "filename " + base64.b64encode(b"clip.mp4").decode(),
                "Content-Type": "application/offset+octet-stream",
            },
        )
    assert response.status_code == 201, response.text
    return response.headers["Framecast-Recording-Id"]


@ON_POSTGRES
async def test_an_upload_to_a_server_on_kafka_is_processed_to_ready(server: Server, tmp_path: Path) -> None:
    recording_id = await import_clip(server, media_clips.video(tmp_path / "clip.mp4", size="320x180", seconds=2.0))

    async def ready() -> bool:
        async with server.client() as http:
            body = (await http.get(f"/api/v1/recordings/{recording_id}")).json()
        assert body["status"] != "FAILED", body["failure_reason"]
        return bool(body["status"] == "READY")

    await eventually(ready, timeout=120)
    await eventually(lambda: drained(server.container))


async def test_ping_answers_only_for_a_started_bus_on_a_live_broker(kafka_url: str, run_id: str) -> None:
    bus = KafkaEventBus(servers=parse_kafka_url(kafka_url), topic=f"framecast-test-{run_id}-{secrets.token_hex(4)}")
    with pytest.raises(RuntimeError, match="not started"):
        await bus.ping()
    await bus.start()
    try:
        await bus.ping()
    finally:
        await bus.close()
    nowhere = KafkaEventBus(servers=[f"127.0.0.1:{free_port()}"], topic="framecast-test-unreachable")
    with pytest.raises(KafkaConnectionError):
        await nowhere.start()
