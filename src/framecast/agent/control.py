"""The agent's end of the WebSocket control channel (docs/protocol.md): kept connected, messages delivered once.

Every message gets a seq the spool has recorded before it is sent, and stays pending until the server acknowledges it.
After a dropped connection the channel reconnects with backoff (a fresh `ws_url` from the recording), learns where the
recording stands from READY, and sends what is still pending with the same seqs: the server applies a seq once and
acknowledges a repeat again, so nothing is applied twice or lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from framecast.agent.client import Backoff, Recordings, ServerError

log = logging.getLogger(__name__)
# The server's close codes for a ticket it refuses and a recording it does not have (or that is not ours).
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
OPEN_STATUSES = frozenset({"PREPARING", "RECORDING", "PAUSED"})


class ControlError(Exception):
    """The server refused a message (`code` from the protocol: invalid_transition, bad_message, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Command:
    """Something the server decided: `FORCE_STOP` (reason), `SESSION_EXPIRED`, `SESSION_CLOSED` (status), or
    `STOPPED_WHILE_AWAY` (READY found the recording no longer capturing)."""

    type: str
    detail: str = ""


class ControlChannel:
    """One recording's control channel; `run()` keeps it connected until `close()` or the session ends."""

    def __init__(
        self,
        *,
        recordings: Recordings,
        recording_id: str,
        ws_url: str,
        next_seq: Callable[[], int],
        on_command: Callable[[Command], None],
        backoff: Backoff | None = None,
    ) -> None:
        self._recordings = recordings
        self._recording_id = recording_id
        self._ws_url = ws_url
        self._next_seq = next_seq
        self._on_command = on_command
        self._backoff = backoff or Backoff()
        self._pending: dict[int, tuple[str, asyncio.Future[str]]] = {}
        self._ws: ClientConnection | None = None
        self._closing = False
        self.status: str | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0

    async def send(self, type_: str, data: dict[str, Any] | None = None) -> str:
        """Send a message and wait for its ACK, however many reconnects that takes; returns the new status.

        Raises ControlError when the server refuses it (nothing changed on the server).
        """
        seq = self._next_seq()
        frame = json.dumps({"type": type_, "seq": seq, "data": data or {}})
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[seq] = (frame, done)
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(frame)  # if this fails, the reconnect sends it
        try:
            return await done
        finally:
            self._pending.pop(seq, None)

    async def run(self) -> None:
        """Stay connected until `close()`, the session ends (closed, expired) or the recording is gone."""
        attempt = 0
        while not self._closing:
            try:
                async with connect(self._ws_url, open_timeout=10, ping_interval=20, ping_timeout=20) as ws:
                    attempt = 0
                    if await self._serve(ws):
                        return
            except InvalidStatus as exc:
                log.info("control channel refused: HTTP %s", exc.response.status_code)
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                log.info("control channel lost: %s", exc)
            finally:
                self._ws = None
                self.connected.clear()
            if self._closing:
                return
            attempt += 1
            self.reconnects += 1
            await asyncio.sleep(self._backoff.delay(attempt))
            if not await self._refresh_url():
                return

    async def close(self) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None:
            await ws.close()
        for _, done in self._pending.values():
            if not done.done():
                done.set_exception(ControlError("closed", "the control channel was closed"))

    async def _serve(self, ws: ClientConnection) -> bool:
        """Read frames until the connection drops (False) or the session is over (True)."""
        async for raw in ws:
            message = json.loads(raw)
            kind, data = message.get("type"), message.get("data") or {}
            if kind == "READY":
                self.status = str(data.get("status"))
                self._ws = ws
                self.connected.set()
                if self.status not in OPEN_STATUSES:
                    self._on_command(Command("STOPPED_WHILE_AWAY", self.status))
                for seq in sorted(self._pending):
                    await ws.send(self._pending[seq][0])
            elif kind == "ACK":
                self.status = str(data.get("status"))
                self._resolve(int(data["seq"]), result=self.status)
            elif kind == "ERROR":
                error = ControlError(str(data.get("code")), str(data.get("message")))
                if data.get("seq") is not None:
                    self._resolve(int(data["seq"]), error=error)
                else:
                    log.warning("control channel error: %s", error)
            elif kind == "FORCE_STOP":
                self.status = "UPLOADING"
                self._on_command(Command("FORCE_STOP", str(data.get("reason", "requested"))))
            elif kind in ("SESSION_EXPIRED", "SESSION_CLOSED"):
                self._on_command(Command(kind, str(data.get("status", ""))))
                return True
        code = ws.close_code or 0
        if code in (CLOSE_NOT_FOUND, CLOSE_UNAUTHORIZED):
            self._on_command(Command("SESSION_CLOSED", "NOT_FOUND" if code == CLOSE_NOT_FOUND else "UNAUTHORIZED"))
            return True
        return False

    def _resolve(self, seq: int, *, result: str | None = None, error: Exception | None = None) -> None:
        entry = self._pending.get(seq)
        if entry is None or entry[1].done():
            return
        if error is not None:
            entry[1].set_exception(error)
        else:
            entry[1].set_result(result or "")

    async def _refresh_url(self) -> bool:
        """A fresh ws_url (the ticket in the old one may have expired); False when there is no session to rejoin."""
        try:
            recording = await self._recordings.get(self._recording_id)
        except ServerError as exc:
            if exc.status == 404:
                self._on_command(Command("SESSION_CLOSED", "DELETED"))
                return False
            return True  # the server is up but unwell: try the old URL again after the next wait
        except httpx.TransportError:
            return True  # still unreachable
        url = recording.get("ws_url")
        if not url:
            self.status = str(recording.get("status"))
            self._on_command(Command("STOPPED_WHILE_AWAY", self.status))
            return False
        self._ws_url = str(url)
        return True
