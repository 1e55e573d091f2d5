"""The live segment API (docs/live.md): a recording's runs sent as HLS segments, one request per segment.

Each PUT carries the SHA-256 of its body (`Content-Digest`, RFC 9530), so a body damaged on the way is refused
(400 `segment_corrupt`) and sent again instead of being played.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import httpx

from framecast.agent.client import ServerError


@dataclass(frozen=True)
class RunState:
    """What the server holds of one run."""

    run: int
    init: bool
    received: frozenset[int]
    ended: int | None


@dataclass(frozen=True)
class Missing:
    """A piece the declared counts say should be there and is not; `index` None: the whole run (the server has
    neither its init segment nor its end)."""

    run: int
    index: int | None


@dataclass(frozen=True)
class LiveState:
    """The server's answer about a recording's live segments (`LiveStateOut`)."""

    status: str
    runs: dict[int, RunState]
    missing: tuple[Missing, ...]
    complete: bool

    @classmethod
    def of(cls, body: dict[str, Any]) -> LiveState:
        runs = {
            int(run["run"]): RunState(
                run=int(run["run"]),
                init=bool(run["init"]),
                received=frozenset(int(index) for index in run.get("received") or ()),
                ended=None if run.get("ended") is None else int(run["ended"]),
            )
            for run in body.get("runs") or ()
        }
        missing = tuple(
            Missing(int(item["run"]), None if item.get("index") is None else int(item["index"]))
            for item in body.get("missing") or ()
        )
        return cls(status=str(body["status"]), runs=runs, missing=missing, complete=bool(body.get("complete")))


def content_digest(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


class LiveClient:
    """Live segments on one server, as the bearer of the HTTP client's token. Errors raise ServerError."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def put(self, recording_id: str, run: int, index: int | None, data: bytes) -> dict[str, Any]:
        """Store a run's init segment (`index` None) or media segment `index`; returns `LiveSegmentOut`."""
        piece = "init" if index is None else str(index)
        headers = {"Content-Type": "video/mp4", "Content-Digest": content_digest(data)}
        response = await self._http.put(_url(recording_id, f"{run}/{piece}"), headers=headers, content=data)
        return _json(response)

    async def end(self, recording_id: str, run: int, segments: int) -> LiveState:
        """Declare that the run has segments 0..segments-1."""
        response = await self._http.post(_url(recording_id, f"{run}/end"), json={"segments": segments})
        return LiveState.of(_json(response))

    async def complete(self, recording_id: str, runs: int) -> LiveState:
        """Declare that the recording has runs 1..runs, every one ended."""
        response = await self._http.post(_url(recording_id, "complete"), json={"runs": runs})
        return LiveState.of(_json(response))

    async def state(self, recording_id: str) -> LiveState:
        return LiveState.of(_json(await self._http.get(_url(recording_id, ""))))


def _url(recording_id: str, rest: str) -> str:
    return f"/api/v1/recordings/{recording_id}/live" + (f"/{rest}" if rest else "")


def _json(response: httpx.Response) -> dict[str, Any]:
    if response.is_error:
        raise ServerError.of(response)
    body: dict[str, Any] = response.json()
    return body
