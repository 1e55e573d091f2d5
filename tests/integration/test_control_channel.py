"""The WebSocket control channel against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from sqlalchemy import event
from websockets.asyncio.client import ClientConnection

from conftest import Server, server_of
from framecast.api import control
from framecast.settings import Settings


async def create(server: Server, **body: Any) -> dict[str, Any]:
    async with server.client() as http:
        response = await http.post("/api/v1/recordings", json={"recording_type": "screen", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def receive(ws: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(await ws.recv(decode=True)))


async def send(ws: ClientConnection, type_: str, seq: int, **data: Any) -> None:
    await ws.send(json.dumps({"type": type_, "seq": seq, "data": data}))


async def test_full_session_start_pause_resume_stop(server: Server) -> None:
    recording = await create(server, title="demo")
    async with websockets.connect(recording["ws_url"], compression=None) as ws:
        ready = await receive(ws)
        assert ready["type"] == "READY"
        assert ready["data"]["status"] == "PREPARING"
        assert ready["data"]["recording"]["id"] == recording["id"]
        for seq, (kind, status) in enumerate(
            [("RECORDING_STARTED", "RECORDING"), ("RECORDING_PAUSED", "PAUSED"), ("RECORDING_RESUMED", "RECORDING")],
            start=1,
        ):
            await send(ws, kind, seq)
            assert await receive(ws) == {"type": "ACK", "data": {"seq": seq, "status": status}}
        await send(ws, "RECORDING_STOPPED", 4, duration_ms=1234)
        assert await receive(ws) == {"type": "ACK", "data": {"seq": 4, "status": "UPLOADING"}}
        upload_ready = await receive(ws)
        assert upload_ready["type"] == "UPLOAD_READY"
        assert upload_ready["data"]["upload_url"].startswith(server.url + "/api/v1/uploads/?ticket=")
    async with server.client() as http:
        stored = (await http.get(f"/api/v1/recordings/{recording['id']}")).json()
    assert stored["status"] == "UPLOADING"
    assert stored["segment_count"] == 2
    assert stored["client_duration_ms"] == 1234
    assert stored["duration_ms"] is not None


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_message"),
        ("[1, 2]", "bad_message"),
        ('{"type": "RECORDING_STARTED"}', "bad_message"),
        ('{"type": "RECORDING_STARTED", "seq": -1}', "bad_message"),
        ('{"type": "RECORDING_STARTED", "seq": 1, "data": []}', "bad_message"),
        ('{"type": "DANCE", "seq": 1}', "bad_message"),
        ('{"type": "RECORDING_PAUSED", "seq": 1}', "invalid_transition"),
        ('{"type": "RECORDING_STOPPED", "seq": 1}', "invalid_transition"),
        ('{"type": "RECORDING_STARTED", "seq": 1, "data": {"x": "' + "a" * 70_000 + '"}}', "too_large"),
    ],
)
async def test_bad_messages_get_an_error_and_change_nothing(server: Server, frame: str, code: str) -> None:
    recording = await create(server)
    async with websockets.connect(recording["ws_url"], compression=None) as ws:
        await receive(ws)
        await ws.send(frame)
        error = await receive(ws)
        assert error["type"] == "ERROR"
        assert error["data"]["code"] == code
        # the connection is still open and the recording unchanged: a valid message still works
        await send(ws, "RECORDING_STARTED", 7)
        assert await receive(ws) == {"type": "ACK", "data": {"seq": 7, "status": "RECORDING"}}


async def test_repeated_seq_is_acknowledged_again_and_applied_once(server: Server) -> None:
    recording = await create(server)
    async with websockets.connect(recording["ws_url"], compression=None) as ws:
        await receive(ws)
        await send(ws, "RECORDING_STARTED", 1)
        await send(ws, "RECORDING_PAUSED", 2)
        await send(ws, "RECORDING_PAUSED", 2)
        acks = [await receive(ws) for _ in range(3)]
    assert [a["data"] for a in acks] == [
        {"seq": 1, "status": "RECORDING"},
        {"seq": 2, "status": "PAUSED"},
        {"seq": 2, "status": "PAUSED"},
    ]


@pytest.fixture(params=["memory", "redis"])
async def live_server(
    request: pytest.FixtureRequest, settings: Settings, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Server]:
    """A server whose idle connections refresh their live entry every 0.2 s, with live state in memory or Redis."""
    monkeypatch.setattr(control, "TOUCH_SECONDS", 0.2)
    if request.param == "redis":
        prefix = f"framecast-test-{run_id}-{secrets.token_hex(4)}:"
        settings = settings.model_copy(
            update={"redis_url": request.getfixturevalue("redis_url"), "redis_prefix": prefix}
        )
    async with server_of(settings) as server:
        yield server


async def test_an_idle_session_keeps_its_live_entry_fresh_without_reading_the_database(live_server: Server) -> None:
    server = live_server
    recording = await create(server)
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, parameters: object, *args: object) -> None:
        if recording["id"] in repr(parameters):
            statements.append(statement)

    async with websockets.connect(recording["ws_url"], compression=None) as ws:
        await receive(ws)
        await send(ws, "RECORDING_STARTED", 1)
        await receive(ws)
        started = await server.container.live.get(recording["id"])
        assert started is not None
        event.listen(server.container.engine.sync_engine, "before_cursor_execute", record)
        try:
            await asyncio.sleep(0.7)  # three keep-alives or so
        finally:
            event.remove(server.container.engine.sync_engine, "before_cursor_execute", record)
        refreshed = await server.container.live.get(recording["id"])
        assert refreshed is not None
        assert refreshed.status == started.status == "RECORDING"
        assert started.last_seen is not None
        assert refreshed.last_seen is not None
        assert refreshed.last_seen > started.last_seen
        assert statements == []  # the entry carried the status: no query about the recording

        # An entry gone (expired, or lost with a Redis restart) is written again from the database.
        await server.container.live.delete(recording["id"])
        await asyncio.sleep(0.5)
        restored = await server.container.live.get(recording["id"])
        assert restored is not None
        assert restored.status == "RECORDING"
