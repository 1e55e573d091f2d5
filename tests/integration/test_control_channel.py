"""The WebSocket control channel against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from conftest import Server


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
