"""Event bus on Kafka (aiokafka): one topic, CloudEvents 1.0 JSON in structured mode, keyed by recording.

Wire contract (docs/events.md): the value is the event's CloudEvents JSON object plus the `partitionkey` extension,
the key is its subject (the recording id) in UTF-8, and the `content-type` header says
`application/cloudevents+json; charset=UTF-8`. Partitions are chosen like Kafka's own default partitioner
(murmur2 of the key), so one recording's events share a partition and keep their order there.

Publishing waits for every replica (acks=all). Each consumer name is a consumer group that reads the whole topic and
commits an offset only after its handler returned: a crash redelivers, never skips. Handlers are wrapped by
`deduplicated`, which makes that exactly once in effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.partitioner import DefaultPartitioner

from framecast.domain.events import DomainEvent
from framecast.ports import EventHandler

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
HEADERS = [("content-type", CONTENT_TYPE.encode())]
# One produce request carries at most a broker's default message.max.bytes (1 MiB); half leaves room to spare.
MAX_BATCH_BYTES = 512 * 1024
PING_TIMEOUT_SECONDS = 5.0
# Kafka answers a fetch as soon as records arrive, but some Kafka-protocol brokers (Tansu) only when the wait is
# over: there the wait bounds delivery latency. 100 ms keeps that small for ten idle fetches a second per group.
FETCH_MAX_WAIT_MS = 100
COMMIT_ON_STOP_SECONDS = 5.0


def encode(event: DomainEvent) -> bytes:
    """The record value: the event as a CloudEvents JSON object, with the partitioning extension's key."""
    envelope = event.to_cloudevent()
    envelope["partitionkey"] = event.subject
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def decode(value: bytes | None) -> DomainEvent:
    """Parse a record value written by `encode`; raises ValueError for anything else."""
    try:
        envelope = json.loads(value or b"")
        if not isinstance(envelope, dict) or envelope.get("specversion") != "1.0":
            raise ValueError("not a CloudEvents 1.0 JSON object")
        return DomainEvent.from_cloudevent(envelope)
    except (KeyError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"not a framecast event: {error!r}") from error


def retry_delay(failures: int, *, first: float = 0.1, cap: float = 30.0) -> float:
    """Seconds to wait after the `failures`-th failure in a row: doubling from `first`, at most `cap`."""
    return float(min(cap, first * 2 ** max(0, failures - 1)))


class KafkaEventBus:
    """EventBus on one Kafka topic; `start()` connects, creates the topic when missing and runs the consumers."""

    def __init__(
        self,
        *,
        servers: Sequence[str],
        topic: str,
        partitions: int = 12,
        replication_factor: int = 1,
        client_id: str = "framecast",
        session_timeout_seconds: float = 10.0,
    ) -> None:
        self._servers = list(servers)
        self._topic = topic
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._client_id = client_id
        self._session_timeout_ms = int(session_timeout_seconds * 1000)
        self._partitioner = DefaultPartitioner()
        self._producer: AIOKafkaProducer | None = None
        self._groups: dict[str, GroupConsumer] = {}

    def group_id(self, consumer: str) -> str:
        """The consumer group of `consumer`: named after the topic too, so deployments sharing a cluster (each
        with its own topic) never share a group."""
        return f"{self._topic}.{consumer}"

    def subscribe(self, consumer: str, handler: EventHandler) -> None:
        """Deliver every event to `handler` through the consumer group of `consumer` (one handler per name)."""
        if consumer in self._groups:
            raise ValueError(f"consumer {consumer!r} is subscribed already: one handler per consumer group")
        group = GroupConsumer(name=consumer, handler=handler, connect=lambda: self._consumer(consumer))
        self._groups[consumer] = group
        if self._producer is not None:
            group.start()

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Return once the broker has every event (acks=all), each partition's in the order given.

        A partition's events go in as few batches as fit, each sent only after the one before was acknowledged:
        when one fails, no later event of that partition is written, so a retry of the whole call (what the relay
        does) repeats events but never lets a later one of a recording land first.
        """
        if not events:
            return
        producer = self._running_producer()
        partitions = sorted(await producer.partitions_for(self._topic))
        chains: dict[int, list[DomainEvent]] = {}
        for event in events:
            chains.setdefault(self._partitioner(event.subject.encode(), partitions, partitions), []).append(event)
        results = await asyncio.gather(
            *(self._send_in_order(producer, partition, chain) for partition, chain in chains.items()),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _send_in_order(self, producer: AIOKafkaProducer, partition: int, events: list[DomainEvent]) -> None:
        batch = producer.create_batch()
        for event in events:
            record = {"timestamp": None, "key": event.subject.encode(), "value": encode(event), "headers": HEADERS}
            if batch.append(**record) is None:  # full: send it, then start the next (a first record always fits)
                await (await producer.send_batch(batch, self._topic, partition=partition))
                batch = producer.create_batch()
                batch.append(**record)
        await (await producer.send_batch(batch, self._topic, partition=partition))

    async def start(self) -> None:
        """Create the topic when missing, connect the producer and start one consumer per subscription.

        Raises when the broker cannot be reached; calling it again then retries. Consumers reconnect by themselves
        once started.
        """
        if self._producer is not None:
            return
        await self._ensure_topic()
        producer = AIOKafkaProducer(
            bootstrap_servers=self._servers,
            client_id=self._client_id,
            acks="all",
            # Off: Tansu has no idempotent producer, and order does not depend on it (see `publish`).
            enable_idempotence=False,
            max_batch_size=MAX_BATCH_BYTES,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer
        for group in self._groups.values():
            group.start()

    async def _ensure_topic(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._servers, client_id=self._client_id)
        try:
            await admin.start()
            if self._topic in await admin.list_topics():
                return
            topic = NewTopic(self._topic, num_partitions=self._partitions, replication_factor=self._replication_factor)
            response = await admin.create_topics([topic])
            for _name, code, message, *_ in response.topic_errors:
                error = for_code(code)
                if code and error is not TopicAlreadyExistsError:  # another instance created it meanwhile: fine
                    raise error(f"cannot create Kafka topic {self._topic!r}: {message}")
            log.info("created Kafka topic %s with %d partitions", self._topic, self._partitions)
        finally:
            await admin.close()

    def _consumer(self, consumer: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            self._topic,
            bootstrap_servers=self._servers,
            client_id=self._client_id,
            group_id=self.group_id(consumer),
            enable_auto_commit=False,
            # A group with no committed offset starts from the oldest event kept, so nothing published before it
            # first joined is missed (its handlers skip what they already applied).
            auto_offset_reset="earliest",
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(100, self._session_timeout_ms // 3),
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )

    def _running_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("the Kafka event bus is not started")
        return self._producer

    async def ping(self) -> None:
        """Raise when the broker does not answer a metadata request, or the topic is gone."""
        producer = self._running_producer()
        metadata = await asyncio.wait_for(producer.client.fetch_all_metadata(), PING_TIMEOUT_SECONDS)
        if self._topic not in metadata.topics():
            raise KafkaError(f"Kafka topic {self._topic!r} does not exist")

    async def close(self) -> None:
        """Stop the consumers (offsets of what they handled are committed already) and the producer."""
        for group in self._groups.values():
            await group.stop()
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


class GroupConsumer:
    """This process's member of one consumer group: handles each partition's events in order, one at a time.

    A handler that raises is retried with growing pauses: the partition is rewound to the failed event and paused,
    so nothing after it is handled first, while the group's other partitions go on. Offsets are committed after
    each batch, up to the last event handled.
    """

    def __init__(self, *, name: str, handler: EventHandler, connect: Callable[[], AIOKafkaConsumer]) -> None:
        self._name = name
        self._handler = handler
        self._connect = connect
        self._task: asyncio.Task[None] | None = None
        self._failures: dict[TopicPartition, int] = {}
        self._resume_at: dict[TopicPartition, float] = {}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"kafka-consumer-{self._name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        """Consume until cancelled; a consumer that fails (broker gone, fenced) is replaced after a pause."""
        failures = 0
        while True:
            consumer: AIOKafkaConsumer = self._connect()
            try:
                await consumer.start()
                failures = 0
                await self._consume(consumer)
            except Exception:  # whatever broke, a fresh consumer resumes from the committed offsets
                failures += 1
                log.exception("Kafka consumer %s failed; reconnecting", self._name)
            finally:
                self._failures.clear()
                self._resume_at.clear()
                await self._stop(consumer)
            await asyncio.sleep(retry_delay(failures, first=0.5))

    async def _stop(self, consumer: AIOKafkaConsumer) -> None:
        try:
            await consumer.stop()
        except Exception:
            log.warning("Kafka consumer %s did not stop cleanly", self._name, exc_info=True)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wait = self._resume_due(consumer, now=loop.time())
            batches = await consumer.getmany(timeout_ms=int(wait * 1000), max_records=500)
            handled = await asyncio.gather(*(self._handle(consumer, tp, records) for tp, records in batches.items()))
            offsets = {tp: offset for tp, offset in zip(batches, handled, strict=True) if offset is not None}
            if not offsets:
                continue
            try:
                await self._commit(consumer, offsets)
            except (CommitFailedError, IllegalStateError) as error:
                # The group moved partitions meanwhile: their new owner starts from the last committed offset and
                # delivers those events again, which the handlers skip.
                log.warning("consumer %s could not commit after a rebalance: %s", self._name, error)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Commit `offsets`; when stopped meanwhile, let the commit finish first (briefly), so what was handled is
        not delivered again, and the consumer is not closed under a request still in flight."""
        commit = asyncio.ensure_future(consumer.commit(offsets))
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            await asyncio.wait([commit], timeout=COMMIT_ON_STOP_SECONDS)
            if commit.done() and not commit.cancelled() and commit.exception() is not None:
                log.warning("consumer %s could not commit while stopping: %s", self._name, commit.exception())
            raise

    async def _handle(self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: Sequence[Any]) -> int | None:
        """Handle `records` (one partition's, in order) up to the first failure; the offset to commit, if any."""
        next_offset: int | None = None
        for record in records:
            try:
                event = decode(record.value)
            except ValueError:
                log.error("consumer %s skips an undecodable record at %s offset %d", self._name, tp, record.offset)
                next_offset = record.offset + 1
                continue
            try:
                await self._handler(event)
            except Exception:
                self._failures[tp] = failures = self._failures.get(tp, 0) + 1
                delay = retry_delay(failures)
                log.exception(
                    "consumer %s failed on event %s (%s); retry %d in %.1f s",
                    self._name,
                    event.id,
                    event.type,
                    failures,
                    delay,
                )
                with contextlib.suppress(IllegalStateError):  # revoked meanwhile: its new owner retries it
                    consumer.seek(tp, record.offset)
                    consumer.pause(tp)
                    self._resume_at[tp] = asyncio.get_running_loop().time() + delay
                return next_offset
            self._failures.pop(tp, None)
            next_offset = record.offset + 1
        return next_offset

    def _resume_due(self, consumer: AIOKafkaConsumer, *, now: float, poll: float = 1.0) -> float:
        """Resume the paused partitions whose pause is over; returns how long the next poll may wait."""
        assigned = consumer.assignment()
        for tp, at in list(self._resume_at.items()):
            if tp not in assigned:  # revoked: whoever owns it now starts from its committed offset
                del self._resume_at[tp]
            elif at <= now:
                consumer.resume(tp)
                del self._resume_at[tp]
        return max(0.01, min([poll, *(at - now for at in self._resume_at.values())]))
