"""A recording whose live segments a test sends by hand (docs/live.md), over the API and the control channel."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx
import websockets

from conftest import Server


def digest(body: bytes) -> dict[str, str]:
    return {"Content-Digest": f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"}


class Recording:
    """A recording driven over the control channel, whose segments the test sends by hand."""

    def __init__(self, server: Server, http: httpx.AsyncClient) -> None:
        self.server = server
        self.http = http
        self.id = ""
        self.seq = 0
        self.ws: Any = None

    async def start(self) -> None:
        response = await self.http.post("/api/v1/recordings", json={"recording_type": "screen", "title": "Live"})
        assert response.status_code == 201, response.text
        created = response.json()
        self.id = created["id"]
        self.ws = await websockets.connect(created["ws_url"], compression=None)
        await self.ws.recv()
        await self.send("RECORDING_STARTED")

    async def send(self, kind: str) -> None:
        self.seq += 1
        await self.ws.send(json.dumps({"type": kind, "seq": self.seq, "data": {}}))
        while json.loads(await self.ws.recv())["type"] != "ACK":
            pass

    async def put(self, run: int, index: int | None, body: bytes, **headers: str) -> httpx.Response:
        name = "init" if index is None else str(index)
        return await self.http.put(
            f"/api/v1/recordings/{self.id}/live/{run}/{name}", content=body, headers={**digest(body), **headers}
        )

    async def end(self, run: int, segments: int) -> httpx.Response:
        return await self.http.post(f"/api/v1/recordings/{self.id}/live/{run}/end", json={"segments": segments})

    async def complete(self, runs: int) -> httpx.Response:
        return await self.http.post(f"/api/v1/recordings/{self.id}/live/complete", json={"runs": runs})

    async def get(self) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/recordings/{self.id}")
        assert response.status_code == 200
        return dict(response.json())

    async def playlist(self) -> str:
        master_url = (await self.get())["playback"]["hls_url"]
        async with httpx.AsyncClient() as anonymous:
            master = await anonymous.get(master_url)
            assert master.status_code == 200
            uri = next(line for line in master.text.splitlines() if line and not line.startswith("#"))
            media = await anonymous.get(master_url.rsplit("/", 1)[0] + "/" + uri)
        assert media.status_code == 200
        return media.text


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text


def listed(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]
