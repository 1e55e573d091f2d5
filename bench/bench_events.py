"""Events on Kafka: throughput through the outbox relay, and latency from commit to a consumer's handler.

events: a framecast container on the Kafka event bus (a Kafka-protocol broker: FRAMECAST_BENCH_KAFKA_URL, else the
Tansu that scripts/services/tansu.sh starts on 127.0.0.1:9092) and its database (FRAMECAST_DATABASE_URL, else
SQLite in a temporary folder). Two consumer groups read the topic: one with a plain handler, one through
`deduplicated` (a claim row per event in the database, as framecast's own handlers). Throughput: N events (20,000;
2,000 with --quick) on 2,000 recordings are committed to the outbox first, then one relay publishes them all; the
time until the relay has published them, and until each group has handled them. Latency: events committed one at a
time, about 100 a second, each waking the relay as a commit does; from commit to each group's handler.

The named baseline is a bare aiokafka producer and consumer in the same run, on a topic of its own with as many
partitions: the same records (same keys and values), sent with send() and acks=all, read by one consumer group that
parses each value (with framecast's fetch wait, which bounds latency on Tansu); for latency, send_and_wait() one at a
time at the same pace, from before the send to the handler.

    python -m bench events [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.runner import REPO_ROOT, Latency, Table
from framecast.adapters.bus.kafka import FETCH_MAX_WAIT_MS, HEADERS, KafkaEventBus, encode
from framecast.adapters.sql.outbox import SqlRelayLock
from framecast.bootstrap import Container, build_container
from framecast.domain.events import DomainEvent
from framecast.ports import EventBus, EventHandler, UnitOfWork
from framecast.services.events import OutboxRelay, deduplicated
from framecast.settings import Settings

PARTITIONS = 12
EVENTS_PER_RECORDING = 10
APPEND_BATCH = 500
PACE_SECONDS = 0.01
TIMEOUT = 600.0
GROUPS = ("plain", "deduplicated")


def kafka_url() -> str:
    """The broker to use: FRAMECAST_BENCH_KAFKA_URL, else the local Tansu (started when nothing answers)."""
    if url := os.environ.get("FRAMECAST_BENCH_KAFKA_URL"):
        return url
    script = REPO_ROOT / "scripts" / "services" / "tansu.sh"
    line = subprocess.run([str(script)], check=True, capture_output=True, text=True).stdout.strip()
    return line.split("=", 1)[1]


def sample_events(count: int) -> list[DomainEvent]:
    """`count` events shaped like framecast's, EVENTS_PER_RECORDING per recording, interleaved across them."""
    recordings = [str(uuid.uuid4()) for _ in range(max(1, count // EVENTS_PER_RECORDING))]
    return [
        DomainEvent(
            type="recording_paused",
            subject=(subject := recordings[i % len(recordings)]),
            time=datetime.now(UTC),
            data={"recording_id": subject, "status": "PAUSED", "segment": i, "elapsed_ms": 1000 * i},
        )
        for i in range(count)
    ]


class Arrivals:
    """When each event id first reached a handler (perf_counter), and a wait for a set of them (one waiter at a time;
    constant work per arrival, so the bench's own bookkeeping stays out of the figures)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._missing: set[str] = set()
        self._complete = asyncio.Event()

    def arrived(self, event_id: str) -> None:
        if event_id in self.at:
            return
        self.at[event_id] = time.perf_counter()
        if event_id in self._missing:
            self._missing.discard(event_id)
            if not self._missing:
                self._complete.set()

    async def wait_for(self, ids: Sequence[str]) -> float:
        """Wait until every id in `ids` arrived; returns when the last did."""
        self._missing = {i for i in ids if i not in self.at}
        if self._missing:
            self._complete.clear()
            await asyncio.wait_for(self._complete.wait(), TIMEOUT)
        return max(self.at[i] for i in ids)


class CountingBus:
    """The container's bus, noting when the relay's publishes reach a target count."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self.published = 0
        self.target = 0
        self.reached = asyncio.Event()
        self.reached_at = 0.0

    def subscribe(self, consumer: str, handler: EventHandler) -> None:
        self._bus.subscribe(consumer, handler)

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        await self._bus.publish(events)
        self.published += len(events)
        if self.target and self.published >= self.target and not self.reached.is_set():
            self.reached_at = time.perf_counter()
            self.reached.set()


# -- framecast -------------------------------------------------------------------------------------------------------


@dataclass
class Framecast:
    """A container on Kafka, a relay of our own (counting what it publishes) and the groups' arrivals."""

    container: Container
    relay: OutboxRelay
    bus: CountingBus
    arrivals: dict[str, Arrivals]


@contextlib.asynccontextmanager
async def framecast(url: str, data_dir: Path, *, groups: Sequence[str]) -> AsyncIterator[Framecast]:
    settings = Settings(
        data_dir=data_dir,
        database_url=os.environ.get("FRAMECAST_DATABASE_URL"),
        event_bus_url=url,
        kafka_topic=f"framecast-bench-{secrets.token_hex(4)}",
        kafka_partitions=PARTITIONS,
        secret_key="bench-" + secrets.token_hex(8),
        serve_workers=False,
    )
    container = await build_container(settings)
    arrivals = {name: Arrivals() for name in groups}
    for name, arrived in arrivals.items():
        container.bus.subscribe(f"bench-{name}", handler_for(name, arrived, container))
    assert isinstance(container.bus, KafkaEventBus)
    await container.bus.start()
    bus = CountingBus(container.bus)
    relay = OutboxRelay(uow=container.uow, bus=bus, clock=container.clock, lock=SqlRelayLock(container.engine))
    try:
        yield Framecast(container, relay, bus, arrivals)
    finally:
        await container.aclose()


def handler_for(group: str, arrivals: Arrivals, container: Container) -> EventHandler:
    """A plain handler, or one applied once through `deduplicated` like framecast's own."""

    async def plain(event: DomainEvent) -> None:
        arrivals.arrived(event.id)

    async def claimed(event: DomainEvent, tx: UnitOfWork) -> None:
        arrivals.arrived(event.id)

    if group == "plain":
        return plain
    return deduplicated(consumer=f"bench-{group}", handler=claimed, uow=container.uow)


async def fill(container: Container, events: Sequence[DomainEvent]) -> None:
    """Commit `events` to the outbox, APPEND_BATCH to a transaction."""
    for start in range(0, len(events), APPEND_BATCH):
        async with container.uow() as tx:
            await tx.outbox.append(events[start : start + APPEND_BATCH])
            await tx.commit()


@contextlib.asynccontextmanager
async def relaying(relay: OutboxRelay) -> AsyncIterator[None]:
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def relay_alone(url: str, count: int) -> float:
    """Seconds for the relay to publish `count` events already in the outbox, with no consumer in the process."""
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        async with framecast(url, Path(tmp) / "data", groups=()) as run:
            await fill(run.container, sample_events(count))
            run.bus.target = count
            started = time.perf_counter()
            async with relaying(run.relay):
                await asyncio.wait_for(run.bus.reached.wait(), TIMEOUT)
            return run.bus.reached_at - started


async def end_to_end(url: str, count: int, pings: int) -> tuple[dict[str, float], dict[str, Latency]]:
    """With both groups consuming in the same process (as in `serve`): seconds from the relay's start until it has
    published `count` events and until each group has handled them; then latency from commit to each handler."""
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        async with framecast(url, Path(tmp) / "data", groups=GROUPS) as run:
            warm_up = sample_events(1)
            await fill(run.container, warm_up)
            async with relaying(run.relay):  # both groups have joined and read the topic
                for group in run.arrivals.values():
                    await group.wait_for([warm_up[0].id])
            events = sample_events(count)
            await fill(run.container, events)
            run.bus.target = run.bus.published + count
            ids = [e.id for e in events]
            started = time.perf_counter()
            async with relaying(run.relay):
                seconds = {name: await group.wait_for(ids) - started for name, group in run.arrivals.items()}
                await run.bus.reached.wait()
                seconds["relay"] = run.bus.reached_at - started

                committed: dict[str, float] = {}
                for event in sample_events(pings):
                    await fill(run.container, [event])
                    committed[event.id] = time.perf_counter()
                    run.relay.wake()  # what a commit's on_events hook does
                    await asyncio.sleep(PACE_SECONDS)
                latency = {}
                for name, group in run.arrivals.items():
                    await group.wait_for(list(committed))
                    latency[name] = Latency.of([group.at[i] - at for i, at in committed.items()])
    return seconds, latency


# -- the baseline: bare aiokafka ----------------------------------------------------------------------------------


async def baseline_run(url: str, count: int, pings: int) -> tuple[dict[str, float], Latency]:
    servers = Settings(event_bus_url=url).kafka_servers
    assert servers is not None
    topic = f"framecast-bench-bare-{secrets.token_hex(4)}"
    # The same topic set-up as framecast's (created with PARTITIONS partitions); the bus is only used for that.
    creator = KafkaEventBus(servers=servers, topic=topic, partitions=PARTITIONS)
    await creator.start()
    await creator.close()
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=False)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=servers,
        group_id=f"{topic}.bare",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    arrivals = Arrivals()

    async def consume() -> None:
        while True:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                for record in records:
                    arrivals.arrived(json.loads(record.value)["id"])

    async def send(events: Sequence[DomainEvent]) -> None:
        futures = [await producer.send(topic, encode(e), key=e.subject.encode(), headers=HEADERS) for e in events]
        await asyncio.gather(*futures)

    await producer.start()
    await consumer.start()
    reader = asyncio.create_task(consume())
    try:
        warm_up = sample_events(1)
        await send(warm_up)
        await arrivals.wait_for([e.id for e in warm_up])

        events = sample_events(count)
        started = time.perf_counter()
        await send(events)
        seconds = {"relay": time.perf_counter() - started}
        seconds["plain"] = await arrivals.wait_for([e.id for e in events]) - started

        sent: dict[str, float] = {}
        for event in sample_events(pings):
            sent[event.id] = time.perf_counter()
            await producer.send_and_wait(topic, encode(event), key=event.subject.encode(), headers=HEADERS)
            await asyncio.sleep(PACE_SECONDS)
        await arrivals.wait_for(list(sent))
        latency = Latency.of([arrivals.at[i] - at for i, at in sent.items()])
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await consumer.stop()
        await producer.stop()
    return seconds, latency


# -- the tables ------------------------------------------------------------------------------------------------------


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}"


async def events(quick: bool) -> list[Table]:
    count, pings = (2_000, 200) if quick else (20_000, 1_000)
    url = kafka_url()
    alone = await relay_alone(url, count)
    framecast_seconds, framecast_latency = await end_to_end(url, count, pings)
    bare_seconds, bare_latency = await baseline_run(url, count, pings)
    database = (os.environ.get("FRAMECAST_DATABASE_URL") or "sqlite").split("+", 1)[0].split(":", 1)[0]

    throughput = Table(
        f"events: {count:,} events on {count // EVENTS_PER_RECORDING:,} recordings, {PARTITIONS} partitions, "
        f"outbox on {database}",
        ["path", "published in s", "published/s", "handled in s", "handled/s"],
    )
    throughput.add(
        "framecast: outbox -> relay -> Kafka (no consumer running)", f"{alone:.2f}", rate(count, alone), "", ""
    )
    for name in GROUPS:
        throughput.add(
            f"framecast: outbox -> relay -> Kafka -> {name} handler",
            f"{framecast_seconds['relay']:.2f}",
            rate(count, framecast_seconds["relay"]),
            f"{framecast_seconds[name]:.2f}",
            rate(count, framecast_seconds[name]),
        )
    throughput.add(
        "baseline: bare aiokafka producer -> consumer",
        f"{bare_seconds['relay']:.2f}",
        rate(count, bare_seconds["relay"]),
        f"{bare_seconds['plain']:.2f}",
        rate(count, bare_seconds["plain"]),
    )
    throughput.notes.append(
        "The outbox is filled first, then the relay started; 'published' is the relay's last publish acknowledged "
        "(acks=all), 'handled' the group's last handler call. The handler rows run the relay and both groups in one "
        "process (as `serve` does), so they share its CPU."
    )

    latency = Table(
        f"events: latency, {pings:,} events one at a time (~{1 / PACE_SECONDS:.0f}/s), ms",
        ["path", "n", "p50", "p95", "p99", "max"],
    )
    for name in GROUPS:
        latency.add(f"framecast: commit -> {name} handler", *framecast_latency[name].cells())
    latency.add("baseline: send -> handler", *bare_latency.cells())
    return [throughput, latency]
