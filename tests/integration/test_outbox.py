"""The transactional outbox and in-process delivery: at least once, applied once per consumer."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from framecast.adapters.bus.memory import SubscriberFailed
from framecast.adapters.sql.tables import outbox
from framecast.bootstrap import Container
from framecast.domain.events import DomainEvent
from framecast.domain.recordings import RecordingType
from framecast.ports import UnitOfWork
from framecast.services.accounts import ensure_user
from framecast.services.events import deduplicated


async def outbox_types(container: Container) -> list[str]:
    async with container.engine.connect() as conn:
        return list((await conn.execute(select(outbox.c.type).order_by(outbox.c.position))).scalars())


async def new_recording(container: Container) -> str:
    user = await ensure_user(uow=container.uow, clock=container.clock, email="o@example.com")
    recording = await container.recordings.create(owner=user, recording_type=RecordingType.SCREEN)
    return recording.id


async def test_state_changes_and_their_events_commit_together(container: Container) -> None:
    recording_id = await new_recording(container)
    recording = await container.recordings.get(owner_id=(await owner(container)), recording_id=recording_id)
    await container.recordings.apply(
        owner_id=recording.owner_id, recording_id=recording_id, seq=1, change=lambda r, at: r.start(at=at)
    )
    await container.recordings.force_stop(owner_id=None, recording_id=recording_id)
    assert await outbox_types(container) == ["recording_created", "recording_started", "recording_finalized"]


async def owner(container: Container) -> str:
    async with container.uow() as tx:
        user = await tx.users.by_email("o@example.com")
    assert user is not None
    return user.id


async def test_a_rolled_back_change_leaves_no_event(container: Container) -> None:
    recording_id = await new_recording(container)
    async with container.uow() as tx:
        recording = await tx.recordings.get(recording_id)
        recording.abort(at=container.clock.now())
        await tx.recordings.save(recording)
        # no commit: leaving the block rolls back
    assert await outbox_types(container) == ["recording_created"]
    assert (
        await container.recordings.get(owner_id=await owner(container), recording_id=recording_id)
    ).status == "PREPARING"


async def test_relay_redelivers_until_subscribers_succeed_and_dedup_applies_once(container: Container) -> None:
    applied: list[str] = []
    attempts: list[str] = []

    async def flaky(event: DomainEvent, tx: UnitOfWork) -> None:
        attempts.append(event.type)
        if len(attempts) == 1:
            raise RuntimeError("transient failure")
        applied.append(event.type)

    container.bus.subscribe("flaky", deduplicated(consumer="flaky", handler=flaky, uow=container.uow))
    await new_recording(container)
    with pytest.raises(SubscriberFailed):  # the subscriber failed: the event stays pending
        await container.relay.relay_once()
    assert await container.relay.relay_once() == 1
    assert await container.relay.relay_once() == 0  # nothing left
    assert applied == ["recording_created"]

    # The same event delivered again (a relay that crashed before marking it) is not applied twice.
    async with container.uow() as tx:
        entries = await tx.outbox.pending(limit=10)
    assert entries == []
    async with container.engine.connect() as conn:
        row = (await conn.execute(select(outbox).limit(1))).mappings().one()
    event = DomainEvent(
        id=row["event_id"], type=row["type"], subject=row["subject"], time=row["time"], data=row["data"]
    )
    await container.bus.publish([event])
    assert applied == ["recording_created"]


async def test_background_relay_delivers_promptly_after_commit(container: Container) -> None:
    seen = asyncio.Queue[DomainEvent]()

    async def record(event: DomainEvent, tx: UnitOfWork) -> None:
        seen.put_nowait(event)

    container.bus.subscribe("probe", deduplicated(consumer="probe", handler=record, uow=container.uow))
    container.start_background()
    recording_id = await new_recording(container)
    event = await asyncio.wait_for(seen.get(), timeout=5)
    cloud = event.to_cloudevent()
    assert cloud["specversion"] == "1.0"
    assert cloud["type"] == "recording_created"
    assert cloud["subject"] == recording_id
    assert cloud["data"]["recording_id"] == recording_id
    assert DomainEvent.from_cloudevent(cloud) == event


async def test_events_keep_commit_order(container: Container) -> None:
    order: list[str] = []

    async def record(event: DomainEvent, tx: UnitOfWork) -> None:
        order.append(event.type)

    container.bus.subscribe("order", deduplicated(consumer="order", handler=record, uow=container.uow))
    recording_id = await new_recording(container)
    user_id = await owner(container)
    for seq, change in enumerate(
        [lambda r, at: r.start(at=at), lambda r, at: r.pause(at=at), lambda r, at: r.resume(at=at)], start=1
    ):
        await container.recordings.apply(owner_id=user_id, recording_id=recording_id, seq=seq, change=change)
    await container.recordings.force_stop(owner_id=user_id, recording_id=recording_id)
    await container.relay.relay_once()
    assert order == [
        "recording_created",
        "recording_started",
        "recording_paused",
        "recording_resumed",
        "recording_finalized",
    ]
