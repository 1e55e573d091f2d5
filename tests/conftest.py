"""Shared fixtures: the event loop backend and the real services the suite runs against.

Real services are named by environment variables. On a laptop without them the tests that need them are skipped,
visibly; under CI (CI=true) a missing or unreachable service fails those tests instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from framecast.adapters.clock import FakeClock, SystemClock
from framecast.adapters.sql.migrate import upgrade_async
from framecast.adapters.sql.tables import outbox
from framecast.api.app import create_app, server_config
from framecast.bootstrap import Container, build_container
from framecast.domain.events import DomainEvent
from framecast.domain.users import User
from framecast.ports import EventHandler
from framecast.services.accounts import create_token, ensure_user
from framecast.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def require_service(env_var: str) -> str:
    """Return the service URL from `env_var`; skip locally, fail under CI, when it is not configured."""
    url = os.environ.get(env_var)
    if url:
        return url
    message = f"{env_var} is not set"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: CI must run this test against the real service")
    pytest.skip(message)


@pytest.fixture(scope="session")
def run_id() -> str:
    """A token unique to this test run, for database names and key prefixes that must not collide."""
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_service("FRAMECAST_TEST_REDIS_URL")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """An admin URL (postgresql+asyncpg://...) to a server where the tests may create databases."""
    return require_service("FRAMECAST_TEST_POSTGRES_URL")


# -- a real framecast server on loopback -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def _postgres_template(postgres_url: str, run_id: str) -> Iterator[str]:
    """A migrated template database; each test clones it (CREATE DATABASE ... TEMPLATE) in a few milliseconds."""
    name = f"framecast_tmpl_{run_id}"

    async def create() -> None:
        admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        await upgrade_async(_with_database(postgres_url, name))

    # Session fixtures are built outside the tests' event loops: run each coroutine on a loop of its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, create()).result()
        yield name
        pool.submit(asyncio.run, _drop_database(postgres_url, name)).result()


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def _drop_database(admin_url: str, name: str) -> None:
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Every test that uses the database runs twice: on SQLite and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'framecast.db'}"
        return
    admin_url: str = request.getfixturevalue("postgres_url")
    template: str = request.getfixturevalue("_postgres_template")
    name = f"framecast_t_{secrets.token_hex(6)}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    await admin.dispose()
    yield _with_database(admin_url, name)
    await _drop_database(admin_url, name)


@pytest.fixture
def clock() -> SystemClock:
    return SystemClock()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    port = free_port()
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        host="127.0.0.1",
        port=port,
        secret_key="test-secret-" + secrets.token_hex(8),
        sweep_interval_seconds=0.05,
        # Most tests upload bytes that are not video; the processing tests turn the worker on themselves.
        serve_workers=False,
    )


@pytest.fixture
async def container(settings: Settings, clock: SystemClock | FakeClock) -> AsyncIterator[Container]:
    built = await build_container(settings, clock=clock)
    try:
        yield built
    finally:
        await built.aclose()


@dataclass
class Server:
    """A framecast server running in this event loop, and an authenticated owner."""

    container: Container
    url: str
    user: User
    token: str

    @property
    def ws_base(self) -> str:
        return self.url.replace("http://", "ws://")

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {token or self.token}"}, timeout=10
        )

    async def new_user(self, email: str) -> tuple[User, str]:
        c = self.container
        user = await ensure_user(uow=c.uow, clock=c.clock, email=email)
        return user, await create_token(uow=c.uow, clock=c.clock, user=user)


@contextlib.asynccontextmanager
async def serving(container: Container) -> AsyncIterator[str]:
    """Run uvicorn on the container's configured port until the block exits; yields the base URL."""
    settings = container.settings
    config = server_config(create_app(container), settings, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield settings.resolved_public_url
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def served(container: Container) -> AsyncIterator[Server]:
    """`container` served on loopback, with an owner account and its API token."""
    user = await ensure_user(uow=container.uow, clock=container.clock, email="owner@example.com")
    token = await create_token(uow=container.uow, clock=container.clock, user=user)
    async with serving(container) as url:
        yield Server(container=container, url=url, user=user, token=token)


@contextlib.asynccontextmanager
async def server_of(settings: Settings) -> AsyncIterator[Server]:
    """A container built from `settings` and served (see `served`); closed on exit."""
    container = await build_container(settings)
    try:
        async with served(container) as server:
            yield server
    finally:
        await container.aclose()


@pytest.fixture
async def server(container: Container) -> AsyncIterator[Server]:
    async with served(container) as served_server:
        yield served_server


async def drive_to_uploading(base_url: str, token: str) -> tuple[str, str]:
    """Create a recording, record and stop it over the control channel; return its id and UPLOAD_READY's URL."""
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as http:
        response = await http.post("/api/v1/recordings", json={"recording_type": "screen"})
    assert response.status_code == 201, response.text
    recording = response.json()
    async with websockets.connect(recording["ws_url"], compression=None) as ws:
        await ws.recv()
        for seq, kind in enumerate(("RECORDING_STARTED", "RECORDING_STOPPED"), start=1):
            await ws.send(json.dumps({"type": kind, "seq": seq, "data": {}}))
        while (message := json.loads(await ws.recv()))["type"] != "UPLOAD_READY":
            pass
    return recording["id"], message["data"]["upload_url"]


async def outbox_order(container: Container) -> dict[str, list[str]]:
    """Each subject's event ids in outbox order: the order every consumer must apply them in."""
    async with container.engine.connect() as conn:
        rows = await conn.execute(select(outbox.c.subject, outbox.c.event_id).order_by(outbox.c.position))
        order: dict[str, list[str]] = defaultdict(list)
        for subject, event_id in rows:
            order[subject].append(event_id)
    return dict(order)


# -- the browser recorder's cutters, run with node (tests/js/recorder_*.mjs) --------------------------------------

ESBUILD = Path(__file__).parents[1] / "frontend" / "node_modules" / "esbuild"


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with the front end's dependencies installed (esbuild bundles the recorder's modules)."""
    found = shutil.which("node")
    if found is None or not ESBUILD.is_dir():
        if os.environ.get("CI"):
            pytest.fail("node and the front end's npm dependencies (make setup) are needed")
        pytest.skip("node or the front end's npm dependencies are missing (make setup)")
    return found


def run_recorder_script(node: str, script: str, path: Path, *args: str) -> list[dict[str, Any]]:
    """Run tests/js/`script` on `path`; the JSON objects it prints, one per line."""
    done = subprocess.run(
        [node, str(Path(__file__).parent / "js" / script), str(path), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


# -- a Kafka-protocol broker (scripts/services/tansu.sh) -----------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_url() -> str:
    """A kafka://host:port event bus URL; tests name their own topics (and so consumer groups) to never collide."""
    return require_service("FRAMECAST_TEST_KAFKA_URL")


# -- an S3 service (scripts/services/ceph-rgw.sh) -------------------------------------------------------------------


@dataclass(frozen=True)
class S3Service:
    """An S3 endpoint and its credentials, from FRAMECAST_TEST_S3_URL = http://ACCESS_KEY:SECRET_KEY@host:port."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )

    def options(self, bucket: str, prefix: str = "") -> Any:
        """S3Options for the adapters (framecast.adapters.blobs.s3) on `bucket` under `prefix`."""
        from framecast.adapters.blobs.s3 import S3Options

        return S3Options(
            bucket=bucket,
            prefix=prefix,
            endpoint_url=self.endpoint_url,
            region=self.region,
            addressing_style="path",
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
        )

    def settings(self, bucket: str, prefix: str = "framecast") -> dict[str, Any]:
        """Settings that keep framecast's blobs and uploads in `bucket` under `prefix` (for Settings.model_copy)."""
        from pydantic import SecretStr

        return {
            "storage_url": f"s3://{bucket}/{prefix}",
            "s3_endpoint_url": self.endpoint_url,
            "s3_region": self.region,
            "s3_addressing_style": "path",
            "s3_access_key_id": self.access_key_id,
            "s3_secret_access_key": SecretStr(self.secret_access_key),
        }


@pytest.fixture(scope="session")
def s3_url() -> str:
    return require_service("FRAMECAST_TEST_S3_URL")


@pytest.fixture(scope="session")
def s3_service(s3_url: str) -> S3Service:
    parsed = httpx.URL(s3_url)
    if not parsed.username or not parsed.password:
        pytest.fail("FRAMECAST_TEST_S3_URL must carry the keys: http://ACCESS_KEY:SECRET_KEY@host:port")
    return S3Service(
        endpoint_url=f"{parsed.scheme}://{parsed.host}:{parsed.port or 80}",
        access_key_id=parsed.username,
        secret_access_key=parsed.password,
    )


@pytest.fixture
def s3_client(s3_service: S3Service) -> Iterator[Any]:
    """A boto3 client of the service, to look at (or tamper with) what framecast stored."""
    client = s3_service.client()
    yield client
    client.close()


@pytest.fixture
def s3_bucket(s3_service: S3Service, run_id: str) -> Iterator[str]:
    """A fresh bucket for one test, emptied (objects and unfinished multipart uploads) and removed afterwards."""
    name = f"framecast-{run_id}-{secrets.token_hex(4)}"
    client = s3_service.client()
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            if keys := [{"Key": item["Key"]} for item in page.get("Contents", [])]:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=name)
        client.close()


class PublishedEvents:
    """An event bus that only keeps what a relay publishes to it (for tests of the outbox relay)."""

    def __init__(self) -> None:
        self.published: list[DomainEvent] = []

    def subscribe(self, consumer: str, handler: EventHandler) -> None:
        raise AssertionError(f"{consumer} subscribed to a bus that only records what is published")

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        self.published += events
