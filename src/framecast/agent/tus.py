"""A tus 1.0.0 client for the agent: partial uploads with deferred length, checksummed PATCHes, concatenation.

Written by hand because tuspy, the Python tus client, sends whole files of known length: it has neither
creation-defer-length (a run's length is known only when it ends) nor concatenation, and it is synchronous.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from framecast.agent.client import ServerError

TUS = {"Tus-Resumable": "1.0.0"}
UPLOADS = "/api/v1/uploads/"


@dataclass(frozen=True)
class Position:
    """Where an upload stands on the server: bytes held, and its length once declared."""

    offset: int
    length: int | None


class OffsetConflict(ServerError):
    """The server holds a different offset than the request assumed; resume from `position`."""

    def __init__(self, position: Position, message: str) -> None:
        super().__init__(409, "offset_mismatch", message)
        self.position = position


def encode_metadata(metadata: Mapping[str, str]) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items())


class TusClient:
    """Uploads to one server's tus endpoint, as the bearer of the HTTP client's token."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def create_partial(self, *, metadata: Mapping[str, str]) -> str:
        """A new partial upload of a length told later; returns its absolute URL."""
        headers = {
            **TUS,
            "Upload-Defer-Length": "1",
            "Upload-Concat": "partial",
            "Upload-Metadata": encode_metadata(metadata),
        }
        response = await self._http.post(UPLOADS, headers=headers)
        if response.status_code != 201:
            raise ServerError.of(response)
        return str(self._http.base_url.join(response.headers["Location"]))

    async def position(self, url: str) -> Position:
        """Where the upload stands on the server; ServerError 404 when the server no longer has it."""
        response = await self._http.head(url, headers=TUS)
        if response.status_code != 200:
            code = "not_found" if response.status_code == 404 else "http_error"
            raise ServerError(response.status_code, code, f"HEAD {url} answered {response.status_code}")
        length = response.headers.get("Upload-Length")
        return Position(int(response.headers["Upload-Offset"]), int(length) if length is not None else None)

    async def patch(self, url: str, *, offset: int, data: bytes, length: int | None = None) -> int:
        """Append `data` at `offset` (declaring the upload's `length` if given); returns the new offset."""
        headers = {
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
        }
        if data:
            digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
            headers["Upload-Checksum"] = f"sha256 {digest}"
        if length is not None:
            headers["Upload-Length"] = str(length)
        response = await self._http.patch(url, headers=headers, content=data)
        if response.status_code == 204:
            return int(response.headers["Upload-Offset"])
        error = ServerError.of(response)
        if error.code == "offset_mismatch":
            raise OffsetConflict(await self.position(url), error.message)
        raise error

    async def create_final(self, parts: list[str], *, metadata: Mapping[str, str]) -> str | None:
        """Assemble finished parts, in order, into the final upload, which completes the recording; returns the
        recording's id as the server names it (an import learns its new recording this way)."""
        headers = {
            **TUS,
            "Upload-Concat": "final;" + " ".join(httpx.URL(part).path for part in parts),
            "Upload-Metadata": encode_metadata(metadata),
        }
        response = await self._http.post(UPLOADS, headers=headers)
        if response.status_code != 201:
            raise ServerError.of(response)
        named: str | None = response.headers.get("Framecast-Recording-Id")
        return named

    async def terminate(self, url: str) -> None:
        response = await self._http.delete(url, headers=TUS)
        if response.status_code not in (204, 404):
            raise ServerError.of(response)
