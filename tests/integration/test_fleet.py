"""Two framecast instances sharing one database and Redis behave as one service."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from conftest import free_port, serving
from framecast.bootstrap import Container, build_container
from framecast.services.accounts import create_token, ensure_user
from framecast.settings import Settings
from media_clips import fragmented, split_fragments

pytestmark = pytest.mark.redis


@pytest.fixture
async def fleet(settings: Settings, redis_url: str, run_id: str) -> AsyncIterator[list[Container]]:
    prefix = f"framecast-test:{run_id}:{secrets.token_hex(4)}:"
    shared = settings.model_copy(update={"redis_url": redis_url, "redis_prefix": prefix})
    first = await build_container(shared.model_copy(update={"instance_id": "a"}))
    second = await build_container(shared.model_copy(update={"instance_id": "b", "port": free_port()}))
    try:
        yield [first, second]
    finally:
        await first.aclose()
        await second.aclose()


async def receive(ws: websockets.ClientConnection) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(decode=True), 5)))


async def test_a_stop_on_one_instance_reaches_the_client_connected_to_the_other(fleet: list[Container]) -> None:
    a, b = fleet
    user = await ensure_user(uow=a.uow, clock=a.clock, email="owner@example.com")
    headers = {"Authorization": f"Bearer {await create_token(uow=a.uow, clock=a.clock, user=user)}"}
    async with (
        serving(a) as url_a,
        serving(b) as url_b,
        httpx.AsyncClient(base_url=url_a, headers=headers) as http_a,
        httpx.AsyncClient(base_url=url_b, headers=headers) as http_b,
    ):
        recording = (await http_a.post("/api/v1/recordings", json={"recording_type": "screen"})).json()
        async with websockets.connect(recording["ws_url"], compression=None) as ws:
            assert (await receive(ws))["type"] == "READY"
            await ws.send(json.dumps({"type": "RECORDING_STARTED", "seq": 1, "data": {}}))
            assert (await receive(ws))["data"]["status"] == "RECORDING"
            live = await b.live.get(recording["id"])
            assert live is not None
            assert (live.status, live.instance_id) == ("RECORDING", "a")

            stopped = await http_b.post(f"/api/v1/recordings/{recording['id']}/stop")
            assert stopped.json()["status"] == "UPLOADING"
            assert await receive(ws) == {"type": "FORCE_STOP", "data": {"reason": "requested"}}
            assert (await receive(ws))["type"] == "UPLOAD_READY"


async def test_a_viewer_on_one_instance_sees_the_live_playlist_grow_as_segments_land_on_the_other(
    fleet: list[Container], tmp_path: Path
) -> None:
    a, b = fleet
    init, segments = split_fragments(fragmented(tmp_path / "run.mp4", seconds=8))
    user = await ensure_user(uow=a.uow, clock=a.clock, email="owner@example.com")
    headers = {"Authorization": f"Bearer {await create_token(uow=a.uow, clock=a.clock, user=user)}"}

    def put(http: httpx.AsyncClient, recording_id: str, name: str, body: bytes) -> Any:
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        return http.put(
            f"/api/v1/recordings/{recording_id}/live/1/{name}",
            content=body,
            headers={"Content-Digest": f"sha-256=:{digest}:"},
        )

    async with (
        serving(a) as url_a,
        serving(b) as url_b,
        httpx.AsyncClient(base_url=url_a, headers=headers) as http_a,
        httpx.AsyncClient(base_url=url_b, headers=headers) as http_b,
        httpx.AsyncClient() as viewer,
    ):
        recording = (await http_a.post("/api/v1/recordings", json={"recording_type": "screen"})).json()
        async with websockets.connect(recording["ws_url"], compression=None) as ws:
            await receive(ws)
            await ws.send(json.dumps({"type": "RECORDING_STARTED", "seq": 1, "data": {}}))
            await receive(ws)
            assert (await put(http_a, recording["id"], "init", init)).status_code == 201
            # The viewer asks instance B; every other segment goes to instance A.
            master = (await http_b.get(f"/api/v1/recordings/{recording['id']}")).json()["playback"]["hls_url"]
            assert master.startswith(url_b)
            playlist = master.rsplit("/", 1)[0] + "/play/index.m3u8"
            for index, segment in enumerate(segments):
                http = http_a if index % 2 == 0 else http_b
                assert (await put(http, recording["id"], str(index), segment)).status_code == 201
                listed = [line for line in (await viewer.get(playlist)).text.splitlines() if line.endswith(".m4s")]
                assert len(listed) == index + 1
            await http_a.post(f"/api/v1/recordings/{recording['id']}/live/1/end", json={"segments": len(segments)})
            await ws.send(json.dumps({"type": "RECORDING_STOPPED", "seq": 2, "data": {}}))
            while (await receive(ws))["type"] != "ACK":
                pass
            completed = await http_b.post(f"/api/v1/recordings/{recording['id']}/live/complete", json={"runs": 1})
            assert completed.json()["complete"] is True
            assert (await viewer.get(playlist)).text.rstrip().endswith("#EXT-X-ENDLIST")
