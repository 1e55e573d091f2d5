"""Kill -9 `framecast serve` in the middle of an upload, start it again on the same data, finish the upload.

The server runs as a real process (python -m framecast serve) on SQLite in a temporary DATA_DIR.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from conftest import drive_to_uploading, free_port

pytestmark = pytest.mark.slow

SIZE = 50 * 1024 * 1024
PIECE = 256 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
STREAM = {**TUS, "Content-Type": "application/offset+octet-stream"}


@contextlib.asynccontextmanager
async def serve(
    data_dir: Path, port: int, log: Path, *, settings: Mapping[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run `framecast serve` until the block ends (or the test kills it); yields once /healthz answers.

    `settings` are FRAMECAST_ variables on top of the defaults below."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMECAST_")}
    env |= {
        "FRAMECAST_DATA_DIR": str(data_dir),
        "FRAMECAST_HOST": "127.0.0.1",
        "FRAMECAST_PORT": str(port),
        "FRAMECAST_SECRET_KEY": "e2e-upload-crash-secret",
        # The uploaded bytes are random, not a video: processing would fail them; this test is about the bytes.
        "FRAMECAST_SERVE_WORKERS": "false",
    }
    env |= dict(settings or {})
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "framecast", "serve", env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                if process.returncode is not None:
                    pytest.fail(f"framecast serve exited with {process.returncode}: see {log}")
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"framecast serve did not answer /healthz: see {log}")
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()


def query(database: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(database)) as db:
        return list(db.execute(sql, params))


async def test_an_upload_survives_kill_9_and_resumes_from_the_durable_offset(tmp_path: Path) -> None:
    data_dir, port, log = tmp_path / "data", free_port(), tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    source = os.urandom(SIZE)
    sent = 0

    async def slow_body() -> AsyncIterator[bytes]:
        nonlocal sent
        for start in range(0, SIZE, PIECE):
            yield source[start : start + PIECE]
            sent += PIECE
            await asyncio.sleep(0.01)

    async with serve(data_dir, port, log) as process:
        assert process.stdout is not None
        token = (await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode().strip()
        recording_id, url = await drive_to_uploading(base, token)
        async with httpx.AsyncClient(timeout=30) as http:
            created = await http.post(url, headers={**TUS, "Upload-Length": str(SIZE)})
            location = created.headers["location"]
            partial = data_dir / "uploads" / location.rsplit("/", 1)[-1]
            headers = {**STREAM, "Upload-Offset": "0", "Content-Length": str(SIZE)}
            patch = asyncio.create_task(http.patch(location, content=slow_body(), headers=headers))
            for _ in range(1000):  # until the server has written some megabytes of it
                if (await anyio.Path(partial).stat()).st_size >= 4 * 1024 * 1024:
                    break
                await asyncio.sleep(0.01)
            process.kill()  # SIGKILL, mid-body: no shutdown, no finally blocks, nothing recorded
            await process.wait()
            with pytest.raises(httpx.TransportError):
                await patch
    assert 0 < (await anyio.Path(partial).stat()).st_size < sent <= SIZE
    database = data_dir / "framecast.db"
    [(recorded,)] = await anyio.to_thread.run_sync(query, database, 'SELECT "offset" FROM uploads')
    assert recorded == 0  # the PATCH never finished: the row knows nothing of the bytes in the file

    async with serve(data_dir, port, log), httpx.AsyncClient(timeout=30) as http:
        head = await http.head(location, headers=TUS)
        assert head.status_code == 200
        offset = int(head.headers["upload-offset"])
        assert offset > 0
        assert await anyio.Path(partial).read_bytes() == source[:offset]
        resumed = await http.patch(location, content=source[offset:], headers={**STREAM, "Upload-Offset": str(offset)})
        assert resumed.status_code == 204, resumed.text
        assert resumed.headers["upload-offset"] == str(SIZE)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as api:
            recording = (await api.get(f"{base}/api/v1/recordings/{recording_id}")).json()
    assert recording["status"] == "PROCESSING"
    raw = data_dir / "blobs" / "recordings" / recording_id / "raw" / location.rsplit("/", 1)[-1]
    assert hashlib.sha256(await anyio.Path(raw).read_bytes()).hexdigest() == hashlib.sha256(source).hexdigest()
    events = await anyio.to_thread.run_sync(
        query, database, "SELECT data FROM outbox WHERE type = ? AND subject = ?", "raw_video_uploaded", recording_id
    )
    assert [json.loads(data)["size"] for (data,) in events] == [SIZE]
