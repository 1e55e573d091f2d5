"""The scale-out stack with real servers on loopback: two `framecast serve` instances and two `framecast worker`
processes on PostgreSQL, Redis, Kafka (Tansu) and S3 (Ceph radosgw). A recording session is stopped from the
instance that does not hold its WebSocket and uploads through one instance, then resumes on the other; clips are
imported through both while one serve instance (with its relay and consumers) and the worker holding a job are
killed with SIGKILL. Every recording still ends READY, and every event reaches each consumer group, in order per
recording, applied exactly once.

The test process watches the topic as one more consumer group, through `deduplicated` like framecast's own handlers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import func, select
from tusclient.client import TusClient
from tusclient.uploader import Uploader

import media_clips
from conftest import S3Service, free_port, outbox_order
from framecast.adapters.sql.tables import jobs, outbox, processed_events
from framecast.bootstrap import Container, build_container
from framecast.domain.events import RAW_VIDEO_UPLOADED, DomainEvent
from framecast.ports import BrokeredEventBus, UnitOfWork
from framecast.services.accounts import create_token, ensure_user
from framecast.services.events import deduplicated
from framecast.settings import Settings
from processes import framecast

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True),
]

CLIPS = 6
TIMEOUT = 240.0
CHUNK = 3 * 1024 * 1024  # tuspy's PATCH size: parts and tails of S3 multipart uploads both happen


def environment(settings: Settings, *, name: str, shared: Path, port: int | None = None) -> dict[str, str]:
    """What a `serve` (with a port) or `worker` process of the fleet is started with: every setting shared but its
    name, port and scratch folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMECAST_")}
    assert settings.database_url is not None
    assert settings.redis_url is not None
    assert settings.s3_endpoint_url is not None
    assert settings.s3_access_key_id is not None
    assert settings.s3_secret_access_key is not None
    env |= {
        "FRAMECAST_DATA_DIR": str(shared / name),
        "FRAMECAST_DATABASE_URL": settings.database_url,
        "FRAMECAST_REDIS_URL": settings.redis_url,
        "FRAMECAST_REDIS_PREFIX": settings.redis_prefix,
        "FRAMECAST_STORAGE_URL": settings.storage_url or "",
        "FRAMECAST_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "FRAMECAST_S3_ADDRESSING_STYLE": settings.s3_addressing_style,
        "FRAMECAST_S3_ACCESS_KEY_ID": settings.s3_access_key_id,
        "FRAMECAST_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key.get_secret_value(),
        "FRAMECAST_EVENT_BUS_URL": settings.event_bus_url,
        "FRAMECAST_KAFKA_TOPIC": settings.kafka_topic,
        "FRAMECAST_KAFKA_PARTITIONS": str(settings.kafka_partitions),
        "FRAMECAST_KAFKA_SESSION_TIMEOUT_SECONDS": str(settings.kafka_session_timeout_seconds),
        "FRAMECAST_SECRET_KEY": settings.secret_key or "",
        "FRAMECAST_INSTANCE_ID": name,
        "FRAMECAST_SERVE_WORKERS": "false",  # jobs are the workers' business
        "FRAMECAST_WORKER_CONCURRENCY": "1",
        "FRAMECAST_JOB_LEASE_SECONDS": "3",
        "FRAMECAST_MEDIA_THREADS": "1",
    }
    if port is not None:
        env |= {"FRAMECAST_HOST": "127.0.0.1", "FRAMECAST_PORT": str(port)}
    return env


@contextlib.asynccontextmanager
async def process(command: str, env: dict[str, str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`framecast COMMAND` for the block; a server is yielded once /healthz answers."""
    async with framecast(command, env, log) as child:
        if "FRAMECAST_PORT" in env:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{env['FRAMECAST_PORT']}") as http:

                async def healthy() -> bool:
                    with contextlib.suppress(httpx.TransportError):
                        return (await http.get("/healthz")).status_code == 200
                    assert child.returncode is None, log.read_text()[-2000:]
                    return False

                await eventually(healthy, timeout=60)
        yield child


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


async def record_stop_elsewhere_and_upload_across(urls: dict[str, str], token: str, clip: Path) -> str:
    """A session whose WebSocket is held by A is stopped by a request to B; its upload starts on A, resumes on B."""
    auth = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=urls["a"], headers=auth) as http_a,
        httpx.AsyncClient(base_url=urls["b"], headers=auth) as http_b,
    ):
        recording = (await http_a.post("/api/v1/recordings", json={"recording_type": "screen"})).json()
        assert recording["ws_url"].startswith(urls["a"].replace("http", "ws"))
        async with websockets.connect(recording["ws_url"], compression=None) as ws:
            assert json.loads(await ws.recv())["type"] == "READY"
            await ws.send(json.dumps({"type": "RECORDING_STARTED", "seq": 1, "data": {}}))
            assert json.loads(await ws.recv())["data"]["status"] == "RECORDING"
            stopped = await http_b.post(f"/api/v1/recordings/{recording['id']}/stop")
            assert stopped.json()["status"] == "UPLOADING"
            async with asyncio.timeout(10):
                assert json.loads(await ws.recv()) == {"type": "FORCE_STOP", "data": {"reason": "requested"}}
                ready = json.loads(await ws.recv())
            assert ready["type"] == "UPLOAD_READY"
    upload_url = ready["data"]["upload_url"]
    assert upload_url.startswith(urls["a"])

    def upload() -> None:  # tuspy blocks: run in a thread
        with clip.open("rb") as stream:
            first = Uploader(file_stream=stream, client=TusClient(upload_url), chunk_size=CHUNK)
            first.upload(stop_at=CHUNK + 1024)  # a part and the start of a tail, through A
            on_b = str(first.url).replace(urls["a"], urls["b"])
            Uploader(file_stream=stream, client=TusClient(upload_url), url=on_b, chunk_size=CHUNK).upload()

    await asyncio.to_thread(upload)
    return str(recording["id"])


async def scalar(container: Container, query: Any) -> Any:
    async with container.engine.connect() as conn:
        return (await conn.execute(query)).scalar()


@pytest.fixture
def settings(
    settings: Settings, kafka_url: str, redis_url: str, s3_service: S3Service, s3_bucket: str, run_id: str
) -> Settings:
    return settings.model_copy(
        update={
            "event_bus_url": kafka_url,
            "kafka_topic": f"framecast-e2e-{run_id}-{secrets.token_hex(4)}",
            "kafka_partitions": 4,
            "kafka_session_timeout_seconds": 2.0,
            "redis_url": redis_url,
            "redis_prefix": f"framecast-test:{run_id}:{secrets.token_hex(4)}:",
            **s3_service.settings(s3_bucket),
        }
    )


async def test_the_fleet_loses_and_repeats_nothing_when_a_serve_instance_and_a_worker_are_killed(
    settings: Settings, tmp_path: Path
) -> None:
    clips = [media_clips.video(tmp_path / f"clip-{i}.mp4", size="320x180", seconds=2.0) for i in range(CLIPS)]
    recorded = media_clips.video(
        tmp_path / "recorded.mp4", size="640x360", seconds=3.0, extra=("-vf", "noise=alls=60:allf=t")
    )
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
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

        def env(name: str) -> dict[str, str]:
            return environment(settings, name=name, shared=tmp_path, port=ports.get(name))

        async with (
            process("serve", env("a"), tmp_path / "a.log") as doomed,
            process("serve", env("b"), tmp_path / "b.log"),
            process("worker", env("w1"), tmp_path / "w1.log") as w1,
            process("worker", env("w2"), tmp_path / "w2.log") as w2,
        ):
            workers = {"w1": w1, "w2": w2}
            recordings = [await record_stop_elsewhere_and_upload_across(urls, token, recorded)]
            for i, clip in enumerate(clips[: CLIPS // 2]):
                recordings.append(await import_clip(urls["ab"[i % 2]], token, clip))

            # Kill the first worker seen holding a job, and serve instance A (its relay and consumers) with it.
            running = select(jobs.c.lease_owner).where(jobs.c.status == "RUNNING").limit(1)
            holder: list[str] = []

            async def a_job_is_running() -> bool:
                owner = await scalar(watcher, running)
                if owner:
                    holder.append(owner.split("-", 1)[0])
                return bool(owner)

            await eventually(a_job_is_running, timeout=60)
            killed = workers[holder[0]]
            for victim in (killed, doomed):
                victim.send_signal(signal.SIGKILL)
                await victim.wait()
            for clip in clips[CLIPS // 2 :]:
                recordings.append(await import_clip(urls["b"], token, clip))

            async with httpx.AsyncClient(base_url=urls["b"], headers={"Authorization": f"Bearer {token}"}) as http:

                async def all_ready() -> bool:
                    bodies = [(await http.get(f"/api/v1/recordings/{rid}")).json() for rid in recordings]
                    assert not [b["failure_reason"] for b in bodies if b["status"] == "FAILED"]
                    return all(b["status"] == "READY" for b in bodies)

                await eventually(all_ready)
                # What the killed worker held was finished by the other.
                retried = select(func.count()).select_from(jobs).where(jobs.c.attempts > 1)
                assert await scalar(watcher, retried) >= 1
                played = await http.get(f"/api/v1/recordings/{recordings[0]}")
                master = await http.get(played.json()["playback"]["hls_url"], follow_redirects=True)
                assert master.status_code == 200
                assert "#EXT-X-STREAM-INF" in master.text
            # READY comes before the ladder: wait for the last job, so no event is still to come.
            unfinished = select(func.count()).select_from(jobs).where(jobs.c.status.in_(["QUEUED", "RUNNING"]))
            await eventually(lambda: _zero(scalar(watcher, unfinished)))
            pending = select(func.count()).select_from(outbox).where(outbox.c.dispatched_at.is_(None))
            await eventually(lambda: _zero(scalar(watcher, pending)))
            expected = await outbox_order(watcher)
            every = {event_id for ids in expected.values() for event_id in ids}
            await eventually(lambda: _true(every <= {event.id for event in applied}))

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
        assert await scalar(watcher, uploads) == await scalar(watcher, handled) == CLIPS + 1
    finally:
        await watcher.aclose()


async def _zero(count: Awaitable[int]) -> bool:
    return await count == 0


async def _true(value: bool) -> bool:
    return value
