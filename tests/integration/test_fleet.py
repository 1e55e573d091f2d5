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


async def test_two_patches_to_one_upload_on_two_instances_never_interleave(fleet: list[Container]) -> None:
    """The upload lock lives in Redis: B's PATCH waits for A's to end, then finds the offset moved (409), and a HEAD
    on B meanwhile answers from the stored bytes without waiting."""
    a, b = fleet
    user = await ensure_user(uow=a.uow, clock=a.clock, email="owner@example.com")
    headers = {"Authorization": f"Bearer {await create_token(uow=a.uow, clock=a.clock, user=user)}"}
    tus = {"Tus-Resumable": "1.0.0"}
    patch = {**tus, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    metadata = "filename " + base64.b64encode(b"talk.mp4").decode()
    first_chunk_sent = asyncio.Event()
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"aaaa"
        first_chunk_sent.set()
        await release.wait()
        yield b"aaaaa"

    async with (
        serving(a) as url_a,
        serving(b) as url_b,
        httpx.AsyncClient(base_url=url_a, headers=headers, timeout=30) as http_a,
        httpx.AsyncClient(base_url=url_b, headers=headers, timeout=30) as http_b,
    ):
        created = await http_a.post(
            "/api/v1/uploads/", headers={**tus, "Upload-Length": "9", "Upload-Metadata": metadata}
        )
        assert created.status_code == 201
        path = httpx.URL(created.headers["Location"]).path
        slow = asyncio.create_task(http_a.patch(path, headers=patch, content=slow_body()))
        await first_chunk_sent.wait()
        rival = asyncio.create_task(http_b.patch(path, headers=patch, content=b"bbbbbbbbb"))
        head = await http_b.head(path, headers=tus)
        assert head.status_code == 200
        assert int(head.headers["Upload-Offset"]) in (0, 4)  # what A's PATCH has stored so far, never B's bytes
        await asyncio.sleep(0.5)
        assert not rival.done()  # B waits for A's lock rather than writing beside it
        release.set()
        assert (await slow).status_code == 204
        assert (await rival).status_code == 409
        done = await http_b.head(path, headers=tus)
        assert done.headers["Upload-Offset"] == "9"
        upload_id = path.rstrip("/").rsplit("/", 1)[1]
        async with b.uow() as tx:
            recording_id = (await tx.uploads.get(upload_id)).recording_id
        assert recording_id is not None
        async with b.uow() as tx:
            recording = await tx.recordings.get(recording_id)
        assert recording.upload_key is not None
        assert b"".join([chunk async for chunk in b.blobs.open(recording.upload_key)]) == b"aaaaaaaaa"


async def test_readiness_reports_each_dependency_and_names_the_one_that_is_down(
    fleet: list[Container], settings: Settings
) -> None:
    a, _ = fleet
    async with serving(a) as url, httpx.AsyncClient(base_url=url) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "live_state": "ok", "locks": "ok"}
    cut_off = await build_container(settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"}))
    try:
        async with serving(cut_off) as url, httpx.AsyncClient(base_url=url) as http:
            down = await http.get("/readyz")
    finally:
        await cut_off.aclose()
    assert down.status_code == 503
    checks = down.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["live_state"].startswith("unreachable")
    assert checks["locks"].startswith("unreachable")
