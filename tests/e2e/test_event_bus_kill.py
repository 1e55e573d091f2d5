"""Kill -9 one of two `framecast serve` instances (its relay, consumers and in-process worker with it) while clips are
being imported; every recording still ends READY and every event reaches each consumer group, in order per
recording, applied exactly once.

Two real processes share PostgreSQL, a Kafka-protocol broker (Tansu) and a blob folder; the test process watches the
topic as one more consumer group, through `deduplicated` like framecast's own handlers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import signal
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import media_clips
from conftest import free_port
from framecast.adapters.sql.tables import outbox, processed_events
from framecast.bootstrap import Container, build_container
from framecast.domain.events import RAW_VIDEO_UPLOADED, DomainEvent
from framecast.ports import BrokeredEventBus, UnitOfWork
from framecast.services.accounts import create_token, ensure_user
from framecast.services.events import deduplicated
from framecast.settings import Settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True),
]

CLIPS = 6
TIMEOUT = 240.0


def environment(settings: Settings, *, name: str, port: int, shared: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMECAST_")}
    assert settings.database_url is not None
    return env | {
        "FRAMECAST_DATA_DIR": str(shared / name),
        "FRAMECAST_STORAGE_URL": f"file://{shared / 'blobs'}",
        "FRAMECAST_DATABASE_URL": settings.database_url,
        "FRAMECAST_EVENT_BUS_URL": settings.event_bus_url,
        "FRAMECAST_KAFKA_TOPIC": settings.kafka_topic,
        "FRAMECAST_KAFKA_PARTITIONS": str(settings.kafka_partitions),
        "FRAMECAST_KAFKA_SESSION_TIMEOUT_SECONDS": str(settings.kafka_session_timeout_seconds),
        "FRAMECAST_SECRET_KEY": settings.secret_key or "",
        "FRAMECAST_HOST": "127.0.0.1",
        "FRAMECAST_PORT": str(port),
        "FRAMECAST_INSTANCE_ID": name,
        "FRAMECAST_SERVE_WORKERS": "true",
        "FRAMECAST_WORKER_CONCURRENCY": "2",
        "FRAMECAST_JOB_LEASE_SECONDS": "3",
        "FRAMECAST_MEDIA_THREADS": "1",
    }


@contextlib.asynccontextmanager
async def serve(env: dict[str, str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`framecast serve` until the block ends (or the test kills it); yields once /healthz answers."""
    with log.open("ab") as stderr:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "framecast", "serve", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=stderr
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{env['FRAMECAST_PORT']}") as http:

            async def healthy() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get("/healthz")).status_code == 200
                assert child.returncode is None, log.read_text()[-2000:]
                return False

            await eventually(healthy, timeout=60)
        yield child
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.wait(), timeout=15)
            except TimeoutError:
                child.kill()
                await child.wait()


async def eventually(condition: Callable[[], Awaitable[bool]], *, timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.2)


async def import_clip(base_url: str, token: str, path: Path) -> str:
    data = path.read_bytes()
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        response = await http.post(
            "/api/v1/uploads/",
            content=data,
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Length": str(len(data)),
                "Upload-Metadata": "filename " + base64.b64encode(path.name.encode()).decode(),
                "Content-Type": "application/offset+octet-stream",
            },
        )
    assert response.status_code == 201, response.text
    return response.headers["Framecast-Recording-Id"]


async def outbox_order(container: Container) -> dict[str, list[str]]:
    async with container.engine.connect() as conn:
        rows = await conn.execute(select(outbox.c.subject, outbox.c.event_id).order_by(outbox.c.position))
        order: dict[str, list[str]] = defaultdict(list)
        for subject, event_id in rows:
            order[subject].append(event_id)
    return dict(order)


async def scalar(container: Container, query: Any) -> int:
    async with container.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_killing_a_serve_instance_mid_flow_loses_and_repeats_nothing(
    settings: Settings, kafka_url: str, run_id: str, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={
            "event_bus_url": kafka_url,
            "kafka_topic": f"framecast-e2e-{run_id}-{secrets.token_hex(4)}",
            "kafka_partitions": 4,
            "kafka_session_timeout_seconds": 2.0,
        }
    )
    clips = [media_clips.video(tmp_path / f"clip-{i}.mp4", size="320x180", seconds=2.0) for i in range(CLIPS)]
    watcher = await build_container(settings)  # the test's own consumer group; it runs no relay
    applied: list[DomainEvent] = []

    async def watch(event: DomainEvent, tx: UnitOfWork) -> None:
        applied.append(event)

    watcher.bus.subscribe("watcher", deduplicated(consumer="watcher", handler=watch, uow=watcher.uow))
    assert isinstance(watcher.bus, BrokeredEventBus)
    await watcher.bus.start()
    try:
        user = await ensure_user(uow=watcher.uow, clock=watcher.clock, email="e2e@example.com")
        token = await create_token(uow=watcher.uow, clock=watcher.clock, user=user)
        ports = {"a": free_port(), "b": free_port()}
        env = {name: environment(settings, name=name, port=port, shared=tmp_path) for name, port in ports.items()}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        recordings: list[str] = []
        async with serve(env["a"], tmp_path / "a.log") as doomed, serve(env["b"], tmp_path / "b.log"):
            for i, clip in enumerate(clips[: CLIPS // 2]):
                recordings.append(await import_clip(urls["ab"[i % 2]], token, clip))
            await eventually(lambda: _true(any(e.type == RAW_VIDEO_UPLOADED for e in applied)))

            async def import_the_rest() -> None:
                for clip in clips[CLIPS // 2 :]:
                    recordings.append(await import_clip(urls["b"], token, clip))

            # Uploads are on the move through both instances' relays, consumer groups and workers: kill A now.
            rest = asyncio.create_task(import_the_rest())
            doomed.send_signal(signal.SIGKILL)
            await doomed.wait()
            await rest

            async with httpx.AsyncClient(base_url=urls["b"], headers={"Authorization": f"Bearer {token}"}) as http:

                async def all_ready() -> bool:
                    bodies = [(await http.get(f"/api/v1/recordings/{rid}")).json() for rid in recordings]
                    assert not [b["failure_reason"] for b in bodies if b["status"] == "FAILED"]
                    return all(b["status"] == "READY" for b in bodies)

                await eventually(all_ready)
            pending = select(func.count()).select_from(outbox).where(outbox.c.dispatched_at.is_(None))
            await eventually(lambda: _zero(scalar(watcher, pending)))
            expected = await outbox_order(watcher)
            await eventually(lambda: _true(len(applied) == sum(map(len, expected.values()))))

        applied_order: dict[str, list[str]] = defaultdict(list)
        for event in applied:
            applied_order[event.subject].append(event.id)
        assert dict(applied_order) == expected  # every event once, each recording's in commit order
        uploads = select(func.count()).select_from(outbox).where(outbox.c.type == RAW_VIDEO_UPLOADED)
        handled = (
            select(func.count())
            .select_from(processed_events)
            .where(processed_events.c.consumer == f"processing.{RAW_VIDEO_UPLOADED}")
        )
        assert await scalar(watcher, uploads) == await scalar(watcher, handled) == CLIPS
    finally:
        await watcher.aclose()


async def _zero(count: Awaitable[int]) -> bool:
    return await count == 0


async def _true(value: bool) -> bool:
    return value
