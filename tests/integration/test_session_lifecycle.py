"""Server-driven parts of a session: force stop, time limit, prepare timeout, reconnects, restarts, tickets.

The server runs on a FakeClock here, so deadlines pass when the test says and nothing waits on wall time longer
than the sweeper's 50 ms tick.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from conftest import Server, serving
from framecast.adapters.clock import FakeClock
from framecast.bootstrap import Container, build_container
from framecast.services.accounts import create_token, ensure_user
from framecast.settings import Settings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"max_duration_seconds": 600, "prepare_timeout_seconds": 900, "reconnect_grace_seconds": 30}
    )


async def create(server: Server) -> dict[str, Any]:
    async with server.client() as http:
        response = await http.post("/api/v1/recordings", json={"recording_type": "screen"})
    assert response.status_code == 201
    return dict(response.json())


async def get(server: Server, recording_id: str) -> dict[str, Any]:
    async with server.client() as http:
        return dict((await http.get(f"/api/v1/recordings/{recording_id}")).json())


async def receive(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(decode=True), timeout)))


async def send(ws: ClientConnection, type_: str, seq: int, **data: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"type": type_, "seq": seq, "data": data}))
    return await receive(ws)


async def start(ws: ClientConnection) -> None:
    assert (await receive(ws))["type"] == "READY"
    assert (await send(ws, "RECORDING_STARTED", 1))["data"]["status"] == "RECORDING"


async def test_rest_stop_pushes_force_stop_then_upload_ready(server: Server) -> None:
    recording = await create(server)
    async with websockets.connect(recording["ws_url"], compression=None) as ws:
        await start(ws)
        async with server.client() as http:
            stopped = await http.post(f"/api/v1/recordings/{recording['id']}/stop")
        assert stopped.json()["status"] == "UPLOADING"
        assert await receive(ws) == {"type": "FORCE_STOP", "data": {"reason": "requested"}}
        assert (await receive(ws))["type"] == "UPLOAD_READY"
    assert (await get(server, recording["id"]))["stop_reason"] == "requested"


async def test_time_limit_force_stops_with_exactly_the_maximum_duration(server: Server, clock: FakeClock) -> None:
    recording = await create(server)
    async with websockets.connect(recording["ws_url"], compression=None) as ws:
        await start(ws)
        clock.advance(timedelta(seconds=100))
        assert (await send(ws, "RECORDING_PAUSED", 2))["data"]["status"] == "PAUSED"
        clock.advance(timedelta(seconds=1000))  # paused time does not count towards the limit
        assert (await send(ws, "RECORDING_RESUMED", 3))["data"]["status"] == "RECORDING"
        clock.advance(timedelta(seconds=499))
        await asyncio.sleep(0.2)
        assert (await get(server, recording["id"]))["status"] == "RECORDING"
        clock.advance(timedelta(seconds=30))  # the sweep comes late: the limit still acts at its own instant
        assert await receive(ws) == {"type": "FORCE_STOP", "data": {"reason": "time_limit"}}
        assert (await receive(ws))["type"] == "UPLOAD_READY"
    stored = await get(server, recording["id"])
    assert stored["status"] == "UPLOADING"
    assert stored["duration_ms"] == 600_000
    assert stored["segment_count"] == 2


async def test_prepare_timeout_expires_the_session(server: Server, clock: FakeClock) -> None:
    recording = await create(server)
    async with websockets.connect(recording["ws_url"], compression=None) as ws:
        assert (await receive(ws))["data"]["status"] == "PREPARING"
        clock.advance(timedelta(seconds=901))
        assert (await receive(ws))["type"] == "SESSION_EXPIRED"
        await asyncio.wait_for(ws.wait_closed(), 5)
    assert (await get(server, recording["id"]))["status"] == "EXPIRED"


async def test_reconnect_mid_recording_carries_on_in_the_same_state(server: Server, clock: FakeClock) -> None:
    recording = await create(server)
    async with websockets.connect(recording["ws_url"], compression=None) as ws:
        await start(ws)
        assert (await send(ws, "RECORDING_PAUSED", 2))["data"]["status"] == "PAUSED"
    clock.advance(timedelta(seconds=10))  # within the reconnect grace
    fresh_url = (await get(server, recording["id"]))["ws_url"]
    async with websockets.connect(fresh_url, compression=None) as ws:
        ready = await receive(ws)
        assert ready["data"]["status"] == "PAUSED"
        assert ready["data"]["recording"]["segment_count"] == 1
        # the ACK for seq 2 was maybe lost: a retry is acknowledged again, not applied twice
        assert await send(ws, "RECORDING_PAUSED", 2) == {"type": "ACK", "data": {"seq": 2, "status": "PAUSED"}}
        assert (await send(ws, "RECORDING_RESUMED", 3))["data"]["status"] == "RECORDING"
        clock.advance(timedelta(seconds=60))  # connected: no grace deadline applies
        await asyncio.sleep(0.2)
        assert (await send(ws, "RECORDING_STOPPED", 4))["data"]["status"] == "UPLOADING"
    stored = await get(server, recording["id"])
    assert stored["segment_count"] == 2
    assert stored["stop_reason"] == "stopped"


async def test_client_gone_past_the_grace_period_is_stopped(server: Server, clock: FakeClock) -> None:
    recording = await create(server)
    async with websockets.connect(recording["ws_url"], compression=None) as ws:
        await start(ws)
    await asyncio.sleep(0.1)
    clock.advance(timedelta(seconds=31))
    for _ in range(50):
        stored = await get(server, recording["id"])
        if stored["status"] != "RECORDING":
            break
        await asyncio.sleep(0.05)
    assert stored["status"] == "UPLOADING"
    assert stored["stop_reason"] == "reconnect_grace"
    # measured to the end of the grace period: the last instant the client could still have been capturing offline
    assert stored["duration_ms"] == 30_000


async def test_abort_closes_the_session(server: Server) -> None:
    recording = await create(server)
    async with websockets.connect(recording["ws_url"], compression=None) as ws:
        await start(ws)
        assert (await send(ws, "RECORDING_ABORTED", 2))["data"]["status"] == "ABORTED"
        assert await receive(ws) == {"type": "SESSION_CLOSED", "data": {"status": "ABORTED"}}
        await asyncio.wait_for(ws.wait_closed(), 5)
    assert (await get(server, recording["id"]))["status"] == "ABORTED"


@pytest.mark.parametrize("tamper", ["flip", "other_recording", "expired", "missing"])
async def test_bad_tickets_are_refused(server: Server, clock: FakeClock, tamper: str) -> None:
    recording, other = await create(server), await create(server)
    url: str = recording["ws_url"]
    if tamper == "flip":
        url = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    elif tamper == "other_recording":
        url = url.replace(recording["id"], other["id"])
    elif tamper == "expired":
        clock.advance(timedelta(seconds=server.container.settings.ws_ticket_ttl_seconds + 5))
    else:
        url = url.split("?")[0]
    async with websockets.connect(url, compression=None) as ws:
        error = await receive(ws)
        assert error["type"] == "ERROR"
        assert error["data"]["code"] == "unauthorized"
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 4401
    assert (await get(server, recording["id"]))["status"] == "PREPARING"


async def test_another_users_bearer_token_sees_not_found(server: Server) -> None:
    recording = await create(server)
    _, token = await server.new_user("eve@example.com")
    url = recording["ws_url"].split("?")[0]
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        error = await receive(ws)
        assert error["data"]["code"] == "not_found"
        await asyncio.wait_for(ws.wait_closed(), 5)


async def test_deadlines_survive_a_restart(container: Container, clock: FakeClock) -> None:
    user = await ensure_user(uow=container.uow, clock=clock, email="owner@example.com")
    token = await create_token(uow=container.uow, clock=clock, user=user)
    headers = {"Authorization": f"Bearer {token}"}
    async with serving(container) as url, httpx.AsyncClient(base_url=url, headers=headers) as http:
        recording = (await http.post("/api/v1/recordings", json={"recording_type": "screen"})).json()
        async with websockets.connect(recording["ws_url"], compression=None) as ws:
            await start(ws)
    # The server goes away with the session open; time passes beyond the limit while nothing runs.
    await container.aclose()
    clock.advance(timedelta(hours=2))
    restarted = await build_container(container.settings, clock=clock)
    try:
        async with serving(restarted) as url, httpx.AsyncClient(base_url=url, headers=headers) as http:
            for _ in range(50):
                stored = (await http.get(f"/api/v1/recordings/{recording['id']}")).json()
                if stored["status"] != "RECORDING":
                    break
                await asyncio.sleep(0.05)
    finally:
        await restarted.aclose()
    assert stored["status"] == "UPLOADING"
    # The connection dropped with the server, so the reconnect grace ran out first (30 s after the restart began).
    assert stored["stop_reason"] == "reconnect_grace"


async def test_a_stop_arriving_after_the_time_limit_does_not_lengthen_the_recording(
    server: Server, clock: FakeClock
) -> None:
    server.container.settings.sweep_interval_seconds = 3600  # no sweep runs: the message itself meets the deadline
    await asyncio.sleep(0.2)  # let the sweeper finish its current short sleep and start the long one
    recording = await create(server)
    async with websockets.connect(recording["ws_url"], compression=None) as ws:
        await start(ws)
        clock.advance(timedelta(seconds=700))
        refused = await send(ws, "RECORDING_STOPPED", 2, duration_ms=700_000)
        assert refused["type"] in ("ERROR", "FORCE_STOP")
        frames = [refused, await receive(ws), await receive(ws)]
    types = sorted(f["type"] for f in frames)
    assert types == ["ERROR", "FORCE_STOP", "UPLOAD_READY"]
    stored = await get(server, recording["id"])
    assert stored["duration_ms"] == 600_000
    assert stored["stop_reason"] == "time_limit"
