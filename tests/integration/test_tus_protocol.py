"""The tus 1.0.0 endpoint at the protocol level, against a real server, on SQLite and PostgreSQL.

Every refused request is followed by a check that nothing changed: the offset, the stored bytes, the rows.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import anyio
import httpx
import pytest
import websockets
from sqlalchemy import func, select
from websockets.asyncio.client import ClientConnection

from conftest import Server, drive_to_uploading
from framecast.adapters.clock import FakeClock
from framecast.adapters.sql.tables import outbox, uploads
from framecast.services.tickets import UPLOAD_TICKET, Grant, Tickets
from framecast.settings import Settings

MAX = 256 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
STREAM = {**TUS, "Content-Type": "application/offset+octet-stream"}


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings a test changes by parametrizing `overrides`."""
    return {}


@pytest.fixture
def settings(settings: Settings, overrides: dict[str, Any]) -> Settings:
    return settings.model_copy(update={"max_upload_bytes": MAX, **overrides})


# -- helpers ---------------------------------------------------------------------------------------------------------


async def uploading_recording(server: Server, token: str | None = None) -> tuple[str, str]:
    return await drive_to_uploading(server.url, token or server.token)


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


async def create(http: httpx.AsyncClient, url: str, length: int | None, **headers: str) -> str:
    sizes = {"Upload-Length": str(length)} if length is not None else {"Upload-Defer-Length": "1"}
    response = await http.post(url, headers={**TUS, **sizes, **headers})
    assert response.status_code == 201, response.text
    return str(response.headers["location"])


async def offset(http: httpx.AsyncClient, location: str) -> int:
    response = await http.head(location, headers=TUS)
    assert response.status_code == 200
    return int(response.headers["upload-offset"])


def stored(server: Server, location: str) -> bytes | None:
    """The bytes the server holds for an unfinished upload, None when it holds none."""
    path = server.container.settings.data_dir / "uploads" / location.rsplit("/", 1)[-1]
    return path.read_bytes() if path.exists() else None


async def recording_of(server: Server, recording_id: str) -> dict[str, Any]:
    async with server.client() as http:
        return dict((await http.get(f"/api/v1/recordings/{recording_id}")).json())


async def raw_video(server: Server, recording_id: str) -> bytes:
    recording = await server.container.recordings.get(owner_id=server.user.id, recording_id=recording_id)
    assert recording.upload_key is not None
    return b"".join([chunk async for chunk in server.container.blobs.open(recording.upload_key)])


async def count_uploads(server: Server) -> int:
    async with server.container.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(uploads))).scalar_one())


async def outbox_events(server: Server, type_: str) -> list[dict[str, Any]]:
    async with server.container.engine.connect() as conn:
        rows = await conn.execute(select(outbox.c.data).where(outbox.c.type == type_))
        return [dict(row) for row in rows.scalars()]


# -- discovery and version ---------------------------------------------------------------------------------------


async def test_options_advertises_version_extensions_and_limits(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.options("/api/v1/uploads/")
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-resumable"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "checksum",
        "termination",
        "expiration",
        "concatenation",
    }
    assert response.headers["tus-max-size"] == str(MAX)
    assert response.headers["tus-checksum-algorithm"] == "sha1,sha256"


async def test_requests_without_tus_resumable_1_0_0_get_412_and_change_nothing(server: Server) -> None:
    _, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        location = await create(http, url, 10)
        await http.patch(location, content=b"abc", headers={**STREAM, "Upload-Offset": "0"})
        for sent in ({}, {"Tus-Resumable": "0.2.2"}):
            responses = [
                await http.post(url, headers={**sent, "Upload-Length": "10"}),
                await http.head(location, headers=sent),
                await http.patch(
                    location,
                    content=b"def",
                    headers={**sent, "Content-Type": STREAM["Content-Type"], "Upload-Offset": "3"},
                ),
                await http.delete(location, headers=sent),
            ]
            for response in responses:
                assert response.status_code == 412
                assert response.headers["tus-version"] == "1.0.0"
                assert response.headers["tus-resumable"] == "1.0.0"
            assert responses[0].json()["error"]["code"] == "unsupported_version"
        assert await offset(http, location) == 3
    assert await count_uploads(server) == 1
    assert stored(server, location) == b"abc"


# -- a whole upload -----------------------------------------------------------------------------------------------


async def test_upload_ready_url_takes_the_recording_to_processing(server: Server) -> None:
    recording_id, url = await uploading_recording(server)
    data = os.urandom(100_000)
    async with httpx.AsyncClient() as http:
        location = await create(http, url, len(data), **{"Upload-Metadata": f"filename {b64('talk.webm')},private"})
        assert location.startswith(f"{server.url}/api/v1/uploads/")
        assert len(location.rsplit("/", 1)[-1]) == 32  # 128 random bits
        first = await http.patch(location, content=data[:60_000], headers={**STREAM, "Upload-Offset": "0"})
        assert first.status_code == 204
        assert first.headers["upload-offset"] == "60000"
        assert "upload-expires" in first.headers
        head = await http.head(location, headers=TUS)
        assert head.status_code == 200
        assert head.headers["upload-offset"] == "60000"
        assert head.headers["upload-length"] == str(len(data))
        assert head.headers["cache-control"] == "no-store"
        assert head.headers["upload-metadata"] == f"filename {b64('talk.webm')},private"
        assert head.headers["tus-resumable"] == "1.0.0"
        assert (await recording_of(server, recording_id))["status"] == "UPLOADING"
        last = await http.patch(location, content=data[60_000:], headers={**STREAM, "Upload-Offset": "60000"})
        assert last.status_code == 204
        assert last.headers["upload-offset"] == str(len(data))
        assert "upload-expires" not in last.headers
    assert (await recording_of(server, recording_id))["status"] == "PROCESSING"
    assert await raw_video(server, recording_id) == data
    assert stored(server, location) is None  # moved, not copied
    [event] = await outbox_events(server, "raw_video_uploaded")
    upload_id = location.rsplit("/", 1)[-1]
    assert event["key"] == f"recordings/{recording_id}/raw/{upload_id}"
    assert event["size"] == len(data)


async def test_creation_with_upload_sends_the_first_bytes_with_the_post(server: Server) -> None:
    recording_id, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        response = await http.post(url, content=b"hello", headers={**STREAM, "Upload-Length": "11"})
        assert response.status_code == 201
        assert response.headers["upload-offset"] == "5"
        location = response.headers["location"]
        await http.patch(location, content=b" world", headers={**STREAM, "Upload-Offset": "5"})
    assert await raw_video(server, recording_id) == b"hello world"


async def test_deferred_length_is_declared_by_a_later_patch(server: Server) -> None:
    recording_id, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        location = await create(http, url, None)
        head = await http.head(location, headers=TUS)
        assert head.headers["upload-defer-length"] == "1"
        assert "upload-length" not in head.headers
        await http.patch(location, content=b"a" * 1000, headers={**STREAM, "Upload-Offset": "0"})
        assert (await recording_of(server, recording_id))["status"] == "UPLOADING"
        response = await http.patch(
            location, content=b"b" * 500, headers={**STREAM, "Upload-Offset": "1000", "Upload-Length": "1500"}
        )
        assert response.status_code == 204
    assert await raw_video(server, recording_id) == b"a" * 1000 + b"b" * 500


def checksum(algorithm: str, chunk: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, chunk).digest()).decode()}"


async def test_checksums_are_verified_and_a_mismatch_discards_the_chunk(server: Server) -> None:
    recording_id, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        location = await create(http, url, 8)

        async def send(chunk: bytes, at: int, upload_checksum: str) -> httpx.Response:
            headers = {**STREAM, "Upload-Offset": str(at), "Upload-Checksum": upload_checksum}
            return await http.patch(location, content=chunk, headers=headers)

        assert (await send(b"abcd", 0, checksum("sha1", b"abcd"))).status_code == 204
        for algorithm in ("sha1", "sha256"):
            bad = await send(b"efgh", 4, checksum(algorithm, b"XXXX"))
            assert bad.status_code == 460
            assert bad.json()["error"]["code"] == "checksum_mismatch"
            assert bad.headers["tus-resumable"] == "1.0.0"
            assert await offset(http, location) == 4
            assert stored(server, location) == b"abcd"
        unknown = await send(b"efgh", 4, "md5 AAAA")
        assert unknown.status_code == 400
        assert "md5" in unknown.json()["error"]["message"]
        assert stored(server, location) == b"abcd"
        assert (await send(b"efgh", 4, checksum("sha256", b"efgh"))).status_code == 204
    assert await raw_video(server, recording_id) == b"abcdefgh"


async def test_termination_deletes_the_upload_and_its_bytes(server: Server) -> None:
    _, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        location = await create(http, url, 10)
        await http.patch(location, content=b"12345", headers={**STREAM, "Upload-Offset": "0"})
        response = await http.delete(location, headers=TUS)
        assert response.status_code == 204
        assert response.headers["tus-resumable"] == "1.0.0"
        assert (await http.head(location, headers=TUS)).status_code == 404
        gone = await http.patch(location, content=b"67890", headers={**STREAM, "Upload-Offset": "5"})
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "not_found"
    assert stored(server, location) is None
    assert await count_uploads(server) == 0


# -- refusals that change nothing ---------------------------------------------------------------------------------


async def test_wrong_offset_is_409_and_wrong_content_type_is_415(server: Server) -> None:
    _, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        location = await create(http, url, 10)
        await http.patch(location, content=b"abc", headers={**STREAM, "Upload-Offset": "0"})
        for sent_offset in ("0", "2", "4"):
            conflict = await http.patch(location, content=b"def", headers={**STREAM, "Upload-Offset": sent_offset})
            assert conflict.status_code == 409
            assert conflict.json()["error"]["code"] == "offset_mismatch"
        for content_type in ("application/octet-stream", "text/plain"):
            wrong = await http.patch(
                location, content=b"def", headers={**TUS, "Content-Type": content_type, "Upload-Offset": "3"}
            )
            assert wrong.status_code == 415
            assert wrong.json()["error"]["code"] == "unsupported_media_type"
        missing = await http.patch(location, content=b"def", headers=STREAM)
        assert missing.status_code == 400
        assert await offset(http, location) == 3
    assert stored(server, location) == b"abc"


async def test_too_long_is_413_before_anything_is_stored(server: Server) -> None:
    recording_id, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        response = await http.post(url, headers={**TUS, "Upload-Length": str(MAX + 1)})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_large"
        assert str(MAX) in response.json()["error"]["message"]
        with_body = await http.post(url, content=b"x" * 100, headers={**STREAM, "Upload-Length": str(MAX + 1)})
        assert with_body.status_code == 413
        assert await count_uploads(server) == 0
        assert not list((server.container.settings.data_dir / "uploads").glob("*"))
        location = await create(http, url, 10)
        longer = await http.patch(location, content=b"x" * 11, headers={**STREAM, "Upload-Offset": "0"})
        assert longer.status_code == 413
        assert await offset(http, location) == 0
    assert stored(server, location) == b""
    assert (await recording_of(server, recording_id))["status"] == "UPLOADING"


async def test_a_deferred_upload_growing_past_the_maximum_is_cut_at_the_limit(server: Server) -> None:
    _, url = await uploading_recording(server)
    sent = os.urandom(MAX + 64 * 1024)

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: the server finds out as the bytes arrive
        for start in range(0, len(sent), 16 * 1024):
            yield sent[start : start + 16 * 1024]

    async with httpx.AsyncClient() as http:
        location = await create(http, url, None)
        response = await http.patch(location, content=streamed(), headers={**STREAM, "Upload-Offset": "0"})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_large"
        kept = await offset(http, location)
    assert 0 < kept <= MAX
    assert stored(server, location) == sent[:kept]


async def test_ticket_problems_are_401_or_404(server: Server, settings: Settings) -> None:
    recording_id, url = await uploading_recording(server)
    ticket = url.split("ticket=", 1)[1]
    long_ago = FakeClock(server.container.clock.now() - settings.limits.upload_timeout - timedelta(minutes=1))
    old = Tickets(secret_key=str(settings.secret_key), clock=long_ago)
    expired = old.issue(UPLOAD_TICKET, Grant(user_id=server.user.id, recording_id=recording_id))
    unknown = server.container.tickets.issue(UPLOAD_TICKET, Grant(user_id=server.user.id, recording_id="nope"))
    base = f"{server.url}/api/v1/uploads/"
    async with httpx.AsyncClient() as http:
        for bad, status, says in [
            (ticket[:-2] + ("AA" if not ticket.endswith("AA") else "BB"), 401, "not valid"),
            ("garbage", 401, "not valid"),
            (expired, 401, "expired"),
            (unknown, 404, "not found"),
        ]:
            response = await http.post(f"{base}?ticket={bad}", headers={**TUS, "Upload-Length": "10"})
            assert response.status_code == status, response.text
            assert says in response.json()["error"]["message"]
        anonymous = await http.post(base, headers={**TUS, "Upload-Length": "10"})
        assert anonymous.status_code == 401
    assert await count_uploads(server) == 0


async def test_bearer_uploads_bind_to_the_callers_recording_only(server: Server) -> None:
    mine, _ = await uploading_recording(server)
    _, other_token = await server.new_user("other@example.com")
    theirs, _ = await uploading_recording(server, other_token)
    async with server.client() as http:
        refused = await http.post(
            "/api/v1/uploads/", headers={**TUS, "Upload-Length": "3", "Upload-Metadata": f"recording_id {b64(theirs)}"}
        )
        assert refused.status_code == 404
        assert await count_uploads(server) == 0
        location = await create(http, "/api/v1/uploads/", 3, **{"Upload-Metadata": f"recording_id {b64(mine)}"})
        await http.patch(location, content=b"abc", headers={**STREAM, "Upload-Offset": "0"})
    assert await raw_video(server, mine) == b"abc"


async def test_a_bearer_upload_without_a_recording_imports_a_video(server: Server) -> None:
    async with server.client() as http:
        response = await http.post(
            "/api/v1/uploads/",
            content=b"the video",
            headers={**STREAM, "Upload-Length": "9", "Upload-Metadata": f"filename {b64('Quarterly review.mp4')}"},
        )
        assert response.status_code == 201
        recording_id = response.headers["framecast-recording-id"]
    recording = await recording_of(server, recording_id)
    assert recording["title"] == "Quarterly review.mp4"
    assert recording["status"] == "PROCESSING"
    assert recording["settings"] == {"source": "import"}
    assert await raw_video(server, recording_id) == b"the video"


async def test_uploads_only_while_the_recording_is_uploading(server: Server) -> None:
    async with server.client() as http:
        preparing = (await http.post("/api/v1/recordings", json={"recording_type": "screen"})).json()["id"]
        refused = await http.post(
            "/api/v1/uploads/",
            headers={**TUS, "Upload-Length": "3", "Upload-Metadata": f"recording_id {b64(preparing)}"},
        )
        assert refused.status_code == 409
        assert "PREPARING" in refused.json()["error"]["message"]
    _, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        first, second = await create(http, url, 3), await create(http, url, 3)
        await http.patch(second, content=b"a", headers={**STREAM, "Upload-Offset": "0"})
        await http.patch(first, content=b"abc", headers={**STREAM, "Upload-Offset": "0"})
        late = await http.patch(second, content=b"bc", headers={**STREAM, "Upload-Offset": "1"})
        assert late.status_code == 409
        assert late.json()["error"]["code"] == "not_uploading"
        assert await offset(http, second) == 1
        assert (await http.post(url, headers={**TUS, "Upload-Length": "3"})).status_code == 409
    assert stored(server, second) == b"a"
    assert await count_uploads(server) == 2


async def test_deleting_the_recording_ends_its_upload(server: Server) -> None:
    recording_id, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        location = await create(http, url, 10)
        await http.patch(location, content=b"abc", headers={**STREAM, "Upload-Offset": "0"})
        async with server.client() as api:
            assert (await api.delete(f"/api/v1/recordings/{recording_id}")).status_code == 204
        # gone at once, bytes and all, before any later request touches it
        assert stored(server, location) is None
        assert await count_uploads(server) == 0
        response = await http.patch(location, content=b"def", headers={**STREAM, "Upload-Offset": "3"})
        assert response.status_code == 404
        assert (await http.head(location, headers=TUS)).status_code == 404
    assert stored(server, location) is None
    assert await count_uploads(server) == 0


@pytest.mark.parametrize("overrides", [{"upload_expiry_seconds": 0.2}])
async def test_abandoned_uploads_expire_and_are_cleaned_up(server: Server) -> None:
    _, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        location = await create(http, url, 10)
        response = await http.patch(location, content=b"abc", headers={**STREAM, "Upload-Offset": "0"})
        assert response.headers["upload-expires"].endswith(" GMT")
        for _ in range(100):
            if (await http.head(location, headers=TUS)).status_code == 404:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the abandoned upload was never removed")
    assert stored(server, location) is None
    assert await count_uploads(server) == 0


async def test_bad_creation_requests_are_refused_and_create_nothing(server: Server) -> None:
    _, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        for headers in [
            {"Upload-Length": "-1"},
            {"Upload-Length": "ten"},
            {"Upload-Length": "10", "Upload-Defer-Length": "1"},
            {"Upload-Defer-Length": "2"},
            {},
            {"Upload-Length": "10", "Upload-Metadata": "filename not*base64"},
            {"Upload-Length": "10", "Upload-Concat": "final;"},
        ]:
            response = await http.post(url, headers={**TUS, **headers})
            assert response.status_code == 400, headers
            assert response.json()["error"]["code"] == "bad_request"
        wrong_type = await http.post(url, content=b"abc", headers={**TUS, "Upload-Length": "3"})
        assert wrong_type.status_code == 415
    assert await count_uploads(server) == 0


# -- concatenation ------------------------------------------------------------------------------------------------


async def test_partial_uploads_are_assembled_by_a_final_upload(server: Server) -> None:
    recording_id, url = await uploading_recording(server)
    pieces = [os.urandom(30_000), os.urandom(20_000), os.urandom(1)]
    async with httpx.AsyncClient() as http:
        parts = []
        for piece in pieces:
            part = await create(http, url, len(piece), **{"Upload-Concat": "partial"})
            await http.patch(part, content=piece, headers={**STREAM, "Upload-Offset": "0"})
            assert (await http.head(part, headers=TUS)).headers["upload-concat"] == "partial"
            parts.append(part)
        assert (await recording_of(server, recording_id))["status"] == "UPLOADING"  # parts never complete it
        unfinished = await create(http, url, 5, **{"Upload-Concat": "partial"})
        refused = await http.post(url, headers={**TUS, "Upload-Concat": f"final;{parts[0]} {unfinished}"})
        assert refused.status_code == 400
        assert await count_uploads(server) == 4
        relative = [p.removeprefix(server.url) for p in parts]
        final = await http.post(url, headers={**TUS, "Upload-Concat": "final;" + " ".join(relative)})
        assert final.status_code == 201, final.text
        head = await http.head(final.headers["location"], headers=TUS)
        assert head.headers["upload-offset"] == head.headers["upload-length"] == str(sum(map(len, pieces)))
        assert head.headers["upload-concat"] == "final;" + " ".join(relative)
        for part in parts:
            assert (await http.head(part, headers=TUS)).status_code == 404
            assert stored(server, part) is None
    assert (await recording_of(server, recording_id))["status"] == "PROCESSING"
    assert await raw_video(server, recording_id) == b"".join(pieces)
    assert len(await outbox_events(server, "raw_video_uploaded")) == 1


# -- uploading while recording -----------------------------------------------------------------------------------


class Control:
    """A recording's control channel; every message sent waits for its ACK."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._seq = 0

    async def send(self, type_: str) -> str:
        """Send `type_` and return the status the server acknowledged."""
        self._seq += 1
        await self._ws.send(json.dumps({"type": type_, "seq": self._seq, "data": {}}))
        while (message := json.loads(await self._ws.recv()))["type"] != "ACK":
            assert message["type"] != "ERROR", message
        return str(message["data"]["status"])


@contextlib.asynccontextmanager
async def preparing(server: Server, token: str | None = None) -> AsyncIterator[tuple[str, Control]]:
    """A new recording, still PREPARING, with its control channel open."""
    async with server.client(token) as http:
        recording = (await http.post("/api/v1/recordings", json={"recording_type": "screen"})).json()
    async with websockets.connect(recording["ws_url"], compression=None) as ws:
        await ws.recv()  # READY
        yield recording["id"], Control(ws)


def part_of(recording_id: str) -> dict[str, str]:
    """Creation headers of a part bound to a recording, its length declared later (the file is still growing)."""
    return {"Upload-Concat": "partial", "Upload-Metadata": f"recording_id {b64(recording_id)}"}


async def send_part(http: httpx.AsyncClient, location: str, fragments: list[bytes], *, sent: int = 0) -> None:
    """PATCH `fragments` in turn from offset `sent`, declaring the length with the last one."""
    for i, fragment in enumerate(fragments):
        headers = {**STREAM, "Upload-Offset": str(sent)}
        if i == len(fragments) - 1:
            headers["Upload-Length"] = str(sent + len(fragment))
        response = await http.patch(location, content=fragment, headers=headers)
        assert response.status_code == 204, response.text
        sent += len(fragment)


async def test_a_part_is_refused_before_the_recording_starts(server: Server) -> None:
    async with preparing(server) as (recording_id, _), server.client() as http:
        refused = await http.post(
            "/api/v1/uploads/", headers={**TUS, "Upload-Defer-Length": "1", **part_of(recording_id)}
        )
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "not_uploading"
        assert "PREPARING" in refused.json()["error"]["message"]
        assert "RECORDING, PAUSED or UPLOADING" in refused.json()["error"]["message"]
    assert await count_uploads(server) == 0


async def test_parts_sent_while_recording_are_assembled_after_stop(server: Server) -> None:
    first, second = [os.urandom(20_000), os.urandom(7)], [os.urandom(9_000), os.urandom(11_000)]
    async with preparing(server) as (recording_id, control), server.client() as http:
        assert await control.send("RECORDING_STARTED") == "RECORDING"
        one = await create(http, "/api/v1/uploads/", None, **part_of(recording_id))
        await http.patch(one, content=first[0], headers={**STREAM, "Upload-Offset": "0"})
        assert await control.send("RECORDING_PAUSED") == "PAUSED"
        await send_part(http, one, first[1:], sent=len(first[0]))
        head = await http.head(one, headers=TUS)
        assert head.headers["upload-offset"] == head.headers["upload-length"] == str(len(b"".join(first)))
        assert await control.send("RECORDING_RESUMED") == "RECORDING"
        two = await create(http, "/api/v1/uploads/", None, **part_of(recording_id))
        await send_part(http, two, second)
        bound = {"Upload-Metadata": f"recording_id {b64(recording_id)}"}
        early = await http.post("/api/v1/uploads/", headers={**TUS, "Upload-Concat": f"final;{one} {two}", **bound})
        assert early.status_code == 409  # a final upload completes the recording: only after stop
        assert early.json()["error"]["code"] == "not_uploading"
        whole = await http.post("/api/v1/uploads/", headers={**TUS, "Upload-Length": "3", **bound})
        assert whole.status_code == 409
        assert await count_uploads(server) == 2
        assert (stored(server, one), stored(server, two)) == (b"".join(first), b"".join(second))
        assert (await recording_of(server, recording_id))["status"] == "RECORDING"
        assert await control.send("RECORDING_STOPPED") == "UPLOADING"
        final = await http.post("/api/v1/uploads/", headers={**TUS, "Upload-Concat": f"final;{one} {two}", **bound})
        assert final.status_code == 201, final.text
    assert (await recording_of(server, recording_id))["status"] == "PROCESSING"
    assert await raw_video(server, recording_id) == b"".join(first + second)
    [event] = await outbox_events(server, "raw_video_uploaded")
    assert event["parts"] == [len(b"".join(first)), len(b"".join(second))]


async def test_a_part_for_another_users_recording_is_404(server: Server) -> None:
    _, other_token = await server.new_user("other@example.com")
    async with preparing(server, other_token) as (theirs, control), server.client() as http:
        await control.send("RECORDING_STARTED")
        refused = await http.post("/api/v1/uploads/", headers={**TUS, "Upload-Defer-Length": "1", **part_of(theirs)})
        assert refused.status_code == 404
    assert await count_uploads(server) == 0


async def test_parts_of_an_aborted_recording_take_no_more_bytes_and_go_with_it(server: Server) -> None:
    async with preparing(server) as (recording_id, control), server.client() as http:
        await control.send("RECORDING_STARTED")
        location = await create(http, "/api/v1/uploads/", None, **part_of(recording_id))
        await http.patch(location, content=b"abc", headers={**STREAM, "Upload-Offset": "0"})
        assert await control.send("RECORDING_ABORTED") == "ABORTED"
        refused = await http.patch(location, content=b"def", headers={**STREAM, "Upload-Offset": "3"})
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "not_uploading"
        assert await offset(http, location) == 3
        assert stored(server, location) == b"abc"
        assert (await http.delete(f"/api/v1/recordings/{recording_id}")).status_code == 204
    assert stored(server, location) is None
    assert await count_uploads(server) == 0


async def test_a_part_whose_recording_was_deleted_meanwhile_is_removed_on_its_next_patch(server: Server) -> None:
    """A part created as the recording is deleted escapes the clean-up; it is not free for another recording."""
    async with preparing(server) as (recording_id, control), server.client() as http:
        await control.send("RECORDING_STARTED")
        location = await create(http, "/api/v1/uploads/", None, **part_of(recording_id))
        await http.patch(location, content=b"abc", headers={**STREAM, "Upload-Offset": "0"})
        await server.container.recordings.delete(owner_id=server.user.id, recording_id=recording_id)
        gone = await http.patch(location, content=b"def", headers={**STREAM, "Upload-Offset": "3"})
        assert gone.status_code == 404
    assert stored(server, location) is None
    assert await count_uploads(server) == 0


# -- durability and concurrency -----------------------------------------------------------------------------------


async def slow(data: bytes, *, pieces: int, pause: float) -> AsyncIterator[bytes]:
    step = len(data) // pieces
    for start in range(0, len(data), step):
        yield data[start : start + step]
        await asyncio.sleep(pause)


async def test_concurrent_patches_to_one_upload_never_interleave(server: Server) -> None:
    recording_id, url = await uploading_recording(server)
    a, b = b"A" * 40_000, b"B" * 40_000
    async with httpx.AsyncClient() as http:
        location = await create(http, url, 80_000)
        headers = {**STREAM, "Upload-Offset": "0", "Content-Length": "40000"}
        first, second = await asyncio.gather(
            http.patch(location, content=slow(a, pieces=8, pause=0.02), headers=headers),
            http.patch(location, content=slow(b, pieces=8, pause=0.02), headers=headers),
        )
        assert sorted([first.status_code, second.status_code]) == [204, 409]
        assert stored(server, location) in (a, b)
        assert await offset(http, location) == 40_000
    assert (await recording_of(server, recording_id))["status"] == "UPLOADING"


async def test_a_dropped_connection_keeps_what_arrived(server: Server) -> None:
    _, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        location = await create(http, url, 100_000)
    path = location.removeprefix(server.url)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.container.settings.port)
    writer.write(
        f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: 100000\r\n\r\n".encode()
        + b"z" * 30_000
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    async with httpx.AsyncClient() as http:
        for _ in range(50):
            if await offset(http, location) == 30_000:
                break
            await asyncio.sleep(0.05)
        assert await offset(http, location) == 30_000
        resumed = await http.patch(location, content=b"y" * 70_000, headers={**STREAM, "Upload-Offset": "30000"})
        assert resumed.status_code == 204
    del reader


async def test_the_stored_bytes_are_the_truth_when_the_row_lags(server: Server) -> None:
    """After a crash mid-PATCH the file holds more than the row says: HEAD and PATCH go by the file."""
    recording_id, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        location = await create(http, url, 10)
        await http.patch(location, content=b"abc", headers={**STREAM, "Upload-Offset": "0"})
        path = server.container.settings.data_dir / "uploads" / location.rsplit("/", 1)[-1]
        async with await anyio.open_file(path, "ab") as f:  # what a killed server wrote but never recorded
            await f.write(b"defg")
        assert await offset(http, location) == 7
        stale = await http.patch(location, content=b"defghij", headers={**STREAM, "Upload-Offset": "3"})
        assert stale.status_code == 409
        await http.patch(location, content=b"hij", headers={**STREAM, "Upload-Offset": "7"})
    assert await raw_video(server, recording_id) == b"abcdefghij"


async def test_a_patch_without_a_head_goes_by_the_stored_bytes_when_the_row_lags(server: Server) -> None:
    """A PATCH at the row's offset is checked against the store (no HEAD before it): 409, and the row catches up;
    a PATCH at the stored offset is taken although the row says less."""
    recording_id, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        location = await create(http, url, 12)
        await http.patch(location, content=b"abc", headers={**STREAM, "Upload-Offset": "0"})
        path = server.container.settings.data_dir / "uploads" / location.rsplit("/", 1)[-1]
        async with await anyio.open_file(path, "ab") as f:  # what a killed server wrote but never recorded
            await f.write(b"def")
        stale = await http.patch(location, content=b"xyz", headers={**STREAM, "Upload-Offset": "3"})
        assert stale.status_code == 409
        async with server.container.uow() as tx:
            assert (await tx.uploads.get(location.rsplit("/", 1)[-1])).offset == 6
        async with await anyio.open_file(path, "ab") as f:  # again, and this time the client knows
            await f.write(b"ghi")
        taken = await http.patch(location, content=b"jkl", headers={**STREAM, "Upload-Offset": "9"})
        assert taken.status_code == 204
        assert taken.headers["upload-offset"] == "12"
    assert await raw_video(server, recording_id) == b"abcdefghijkl"


async def test_a_patch_refused_for_its_offset_declares_no_length(server: Server) -> None:
    """The row lags the store, the PATCH goes by the row and declares the deferred length: 409, and no length."""
    _, url = await uploading_recording(server)
    async with httpx.AsyncClient() as http:
        location = await create(http, url, None)
        await http.patch(location, content=b"abc", headers={**STREAM, "Upload-Offset": "0"})
        path = server.container.settings.data_dir / "uploads" / location.rsplit("/", 1)[-1]
        async with await anyio.open_file(path, "ab") as f:  # what a killed server wrote but never recorded
            await f.write(b"def")
        refused = await http.patch(
            location, content=b"xyz", headers={**STREAM, "Upload-Offset": "3", "Upload-Length": "6"}
        )
        assert refused.status_code == 409
        head = await http.head(location, headers=TUS)
        assert head.headers["upload-offset"] == "6"
        assert "upload-length" not in head.headers
        assert head.headers["upload-defer-length"] == "1"
