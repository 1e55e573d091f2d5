"""The WebSocket control channel (docs/protocol.md): JSON text frames `{"type", "seq", "data"}`.

Errors answer with ERROR and leave both the connection and the recording as they were. Commands issued elsewhere
(a REST stop, the deadline sweeper, another instance) reach this connection through LiveState.subscribe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from framecast.api import links
from framecast.api.deps import bearer_token
from framecast.api.recordings import present
from framecast.bootstrap import Container
from framecast.domain.errors import DomainError, NotFound
from framecast.domain.recordings import Recording, RecordingStatus
from framecast.services.accounts import authenticate
from framecast.services.control import BadMessage, change_for
from framecast.services.recordings import LIVE_TTL_SECONDS
from framecast.services.tickets import WS_TICKET, InvalidTicket

MAX_MESSAGE_BYTES = 64 * 1024
TOUCH_SECONDS = 60
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404


class Channel:
    """One client's connection to one recording."""

    def __init__(self, ws: WebSocket, container: Container, owner_id: str, recording_id: str) -> None:
        self.ws = ws
        self.container = container
        self.owner_id = owner_id
        self.recording_id = recording_id
        self._send_lock = asyncio.Lock()

    async def send(self, type_: str, data: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.ws.send_text(json.dumps({"type": type_, "data": data}, default=str))

    async def error(self, code: str, message: str, seq: int | None = None) -> None:
        data: dict[str, Any] = {"code": code, "message": message}
        if seq is not None:
            data["seq"] = seq
        await self.send("ERROR", data)

    async def upload_ready(self, recording: Recording) -> None:
        expires = recording.upload_expires_at or self.container.tickets.expires_at(ttl=links.upload_ttl(self.container))
        await self.send(
            "UPLOAD_READY",
            {"upload_url": links.upload_url(self.container, recording), "expires_at": expires.isoformat()},
        )

    async def ready(self, recording: Recording) -> None:
        body = present(self.container, recording).model_dump(mode="json", exclude={"ws_url"})
        await self.send("READY", {"status": recording.status.value, "recording": body})

    async def handle(self, raw: str) -> bool:
        """Handle one client frame; returns False when the session is over and the connection should close."""
        if len(raw.encode()) > MAX_MESSAGE_BYTES:
            await self.error("too_large", f"messages are limited to {MAX_MESSAGE_BYTES} bytes")
            return True
        try:
            message = json.loads(raw)
        except json.JSONDecodeError:
            await self.error("bad_message", "the frame is not JSON")
            return True
        seq = message.get("seq") if isinstance(message, dict) else None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.error("bad_message", 'expected {"type": "...", "seq": n, "data": {...}}')
            return True
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            await self.error("bad_message", "seq must be a non-negative integer")
            return True
        data = message.get("data", {})
        if not isinstance(data, dict):
            await self.error("bad_message", "data must be an object", seq)
            return True
        try:
            change = change_for(message["type"], data, upload_timeout=self.container.settings.limits.upload_timeout)
            recording, _replay = await self.container.recordings.apply(
                owner_id=self.owner_id, recording_id=self.recording_id, seq=seq, change=change
            )
        except BadMessage as exc:
            await self.error("bad_message", str(exc), seq)
            return True
        except DomainError as exc:
            await self.error(exc.code, str(exc), seq)
            return not isinstance(exc, NotFound)
        await self.send("ACK", {"seq": seq, "status": recording.status.value})
        if recording.status is RecordingStatus.UPLOADING:
            await self.upload_ready(recording)
        if recording.status.is_terminal:
            await self.send("SESSION_CLOSED", {"status": recording.status.value})
            return False
        return True

    async def follow_commands(self, subscribed: asyncio.Event) -> None:
        """Relay commands published for this recording to the client; refresh the live entry now and then."""
        async with self.container.live.subscribe(self.recording_id) as commands:
            subscribed.set()
            while True:
                try:
                    async with asyncio.timeout(TOUCH_SECONDS):
                        command = await anext(commands)
                except TimeoutError:
                    await self._touch()
                    continue
                if not await self.relay(command):
                    await self.ws.close()
                    return

    async def relay(self, command: dict[str, Any]) -> bool:
        kind = command.get("type")
        if kind == "FORCE_STOP":
            await self.send("FORCE_STOP", {"reason": command.get("reason", "requested")})
            await self.upload_ready(await self._load())
            return True
        if kind == "SESSION_EXPIRED":
            await self.send("SESSION_EXPIRED", {})
            return False
        if kind == "SESSION_CLOSED":
            await self.send("SESSION_CLOSED", {"status": command.get("status")})
            return False
        return True

    async def _touch(self) -> None:
        """Keep this connection's live entry from expiring, without reading the database.

        Every change to the recording rewrites the entry, so its status is current: only the holder and the time
        need refreshing. Reading the recording instead cost each idle session a database transaction a minute,
        half of what 10,000 idle sessions cost (docs/benchmarks.md, "Sessions").
        """
        entry = await self.container.live.get(self.recording_id)
        if entry is None:  # expired, or the session ended: the database knows which
            await self.container.recordings.touch(await self._load())
            return
        held = replace(entry, instance_id=self.container.settings.instance_id, last_seen=self.container.clock.now())
        await self.container.live.put(held, ttl_seconds=LIVE_TTL_SECONDS)

    async def _load(self) -> Recording:
        return await self.container.recordings.get(owner_id=self.owner_id, recording_id=self.recording_id)


async def _authorize(ws: WebSocket, container: Container, recording_id: str) -> str:
    """Return the user id a ticket or bearer token grants for this recording; raises InvalidTicket."""
    ticket = ws.query_params.get("ticket")
    if ticket:
        ttl = timedelta(seconds=container.settings.ws_ticket_ttl_seconds)
        grant = container.tickets.verify(WS_TICKET, ticket, max_age=ttl)
        if grant.recording_id != recording_id:
            raise InvalidTicket("the ticket is for another recording")
        return grant.user_id
    token = bearer_token(ws)
    user = await authenticate(uow=container.uow, token=token) if token else None
    if user is None:
        raise InvalidTicket("connect with ?ticket=... from ws_url, or an Authorization: Bearer token")
    return user.id


CONTROL_PATH = re.compile(r"/api/v1/recordings/(?P<recording_id>[^/]+)/control")


def control_endpoint(container: Container) -> Callable[[Scope, Receive, Send], Awaitable[None] | None]:
    """Return a raw ASGI handler for control-channel connections, or None for any other request.

    The channel is served beside FastAPI rather than through it: a FastAPI route keeps its middleware and
    dependency machinery alive for the connection's whole life, which more than doubles the memory of an idle
    session (docs/benchmarks.md).
    """

    def route(scope: Scope, receive: Receive, send: Send) -> Awaitable[None] | None:
        if scope["type"] != "websocket" or not (match := CONTROL_PATH.fullmatch(scope["path"])):
            return None
        return serve_control(WebSocket(scope, receive, send), container, match["recording_id"])

    return route


async def serve_control(ws: WebSocket, container: Container, recording_id: str) -> None:
    """Run one control-channel connection from handshake to close."""
    await ws.accept()
    channel = Channel(ws, container, owner_id="", recording_id=recording_id)
    try:
        channel.owner_id = await _authorize(ws, container, recording_id)
    except InvalidTicket as exc:
        await channel.error("unauthorized", str(exc))
        await ws.close(CLOSE_UNAUTHORIZED)
        return
    # Subscribe before READY goes out, so a command issued right after the client hears READY is not missed.
    subscribed = asyncio.Event()
    follower = asyncio.create_task(channel.follow_commands(subscribed))
    try:
        await subscribed.wait()
        if await _greet(ws, channel):
            await _receive(ws, channel, follower)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await follower
    await container.recordings.disconnected(recording_id=recording_id)


async def _greet(ws: WebSocket, channel: Channel) -> bool:
    """Send READY (and what else the status calls for); False when the session is already over."""
    try:
        recording = await channel.container.recordings.connected(
            owner_id=channel.owner_id, recording_id=channel.recording_id
        )
    except NotFound as exc:
        await channel.error("not_found", str(exc))
        await ws.close(CLOSE_NOT_FOUND)
        return False
    await channel.ready(recording)
    if recording.status is RecordingStatus.UPLOADING:
        await channel.upload_ready(recording)
    if recording.status.is_terminal:
        await channel.send("SESSION_CLOSED", {"status": recording.status.value})
        await ws.close()
        return False
    return True


async def _receive(ws: WebSocket, channel: Channel, follower: asyncio.Task[None]) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while not follower.done():
            frame = await ws.receive()
            if frame["type"] == "websocket.disconnect":
                return
            if frame.get("text") is None:
                await channel.error("bad_message", "send JSON text frames, not binary")
            elif not await channel.handle(frame["text"]):
                await ws.close()
                return
