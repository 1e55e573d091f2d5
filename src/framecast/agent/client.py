"""The agent's REST client: recordings on the server, spoken to over HTTP with a bearer token."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from framecast import __version__

T = TypeVar("T")
USER_AGENT = f"framecast-agent/{__version__}"
# Answers that say "try again": the server is restarting, busy, or another request holds the upload.
TRANSIENT_STATUSES = frozenset({408, 423, 425, 429, 500, 502, 503, 504})


class ServerError(Exception):
    """The server answered with an error; `code` and `message` are its own words."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def of(cls, response: httpx.Response) -> ServerError:
        try:
            error = response.json()["error"]
            return cls(response.status_code, str(error["code"]), str(error["message"]))
        except (ValueError, KeyError, TypeError):
            return cls(response.status_code, "http_error", response.reason_phrase or "unexpected answer")


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same request again later can succeed."""
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, ServerError) and exc.status in TRANSIENT_STATUSES


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: doubling from `first` up to `cap`, with jitter so many agents do not stampede."""

    first: float = 0.5
    cap: float = 10.0

    def delay(self, attempt: int) -> float:
        base = min(self.cap, self.first * 2 ** max(0, attempt - 1))
        return float(base * random.uniform(0.75, 1.25))


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff = Backoff(),
    attempts: int | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Run `call` until it succeeds, retrying transient failures (forever when `attempts` is None)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except (httpx.TransportError, ServerError) as exc:
            if not is_transient(exc) or (attempts is not None and attempt >= attempts):
                raise
            wait = backoff.delay(attempt)
            if on_retry is not None:
                on_retry(exc, wait)
            await asyncio.sleep(wait)


def new_http(server: str, token: str, *, timeout: float = 30.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server,
        headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
        timeout=httpx.Timeout(timeout, connect=10.0),
        follow_redirects=False,
    )


class Recordings:
    """Recordings on one server, as one user."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    @property
    def server(self) -> str:
        return str(self._http.base_url).rstrip("/")

    async def create(self, *, recording_type: str, title: str, settings: dict[str, Any]) -> dict[str, Any]:
        body = {"recording_type": recording_type, "title": title, "settings": settings}
        return await self._json(await self._http.post("/api/v1/recordings", json=body))

    async def get(self, recording_id: str) -> dict[str, Any]:
        return await self._json(await self._http.get(f"/api/v1/recordings/{recording_id}"))

    async def check_token(self) -> None:
        """Raise ServerError unless the token is accepted."""
        await self._json(await self._http.get("/api/v1/recordings", params={"limit": 1}))

    @staticmethod
    async def _json(response: httpx.Response) -> dict[str, Any]:
        if response.is_error:
            raise ServerError.of(response)
        body: dict[str, Any] = response.json()
        return body
