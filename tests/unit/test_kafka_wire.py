"""The Kafka event bus's pure parts: the record format other programs read, retry pauses, and the bus URL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from framecast.adapters.bus.kafka import decode, encode, retry_delay
from framecast.domain.events import DomainEvent
from framecast.settings import Settings, parse_kafka_url

EVENT = DomainEvent(
    type="recording_started",
    subject="0b7c6c9e-2f0e-4c55-9a55-3f1b1f0f2a10",
    time=datetime(2025, 3, 1, 12, 30, 5, 250000, tzinfo=UTC),
    data={"recording_id": "0b7c6c9e-2f0e-4c55-9a55-3f1b1f0f2a10", "status": "RECORDING", "title": "Ünïcode"},
)


def test_a_record_value_is_a_cloudevent_with_its_partition_key() -> None:
    envelope = json.loads(encode(EVENT))
    assert envelope == {
        "specversion": "1.0",
        "id": EVENT.id,
        "source": "/framecast",
        "type": "recording_started",
        "subject": EVENT.subject,
        "partitionkey": EVENT.subject,
        "time": "2025-03-01T12:30:05.250000Z",
        "datacontenttype": "application/json",
        "data": EVENT.data,
    }


def test_a_record_value_reads_back_as_the_same_event() -> None:
    assert decode(encode(EVENT)) == EVENT


@pytest.mark.parametrize(
    "value",
    [None, b"", b"not json", b"[1, 2]", b'{"specversion": "0.3", "id": "x"}', b'{"specversion": "1.0"}'],
)
def test_anything_but_a_framecast_cloudevent_is_refused(value: bytes | None) -> None:
    with pytest.raises(ValueError, match=r"."):
        decode(value)


def test_retry_pauses_double_up_to_a_cap() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.8]
    assert retry_delay(50) == 30.0


@pytest.mark.parametrize(
    ("url", "servers"),
    [
        ("kafka://127.0.0.1:9092", ["127.0.0.1:9092"]),
        ("kafka://kafka-1:9093,kafka-2:9093/", ["kafka-1:9093", "kafka-2:9093"]),
        ("kafka://broker", ["broker:9092"]),
    ],
)
def test_a_kafka_url_names_the_bootstrap_servers(url: str, servers: list[str]) -> None:
    assert parse_kafka_url(url) == servers
    assert Settings(event_bus_url=url).kafka_servers == servers


@pytest.mark.parametrize("url", ["kafka://", "nats://127.0.0.1:4222", "kafka://user@broker:9092", "memory"])
def test_an_unsupported_event_bus_url_is_refused_with_the_choices(url: str) -> None:
    with pytest.raises(ValueError, match=r"use memory:// or kafka://host:port"):
        Settings(event_bus_url=url).kafka_servers  # noqa: B018


def test_the_default_bus_is_in_process() -> None:
    assert Settings().kafka_servers is None
