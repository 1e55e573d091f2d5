"""Kill -9 a `framecast worker` in the middle of encoding the ladder; another worker picks the job up once the
dead one's lease has expired, and the recording ends with every stage done.

Three real processes on one SQLite DATA_DIR: `serve` (with its in-process worker off) and two `worker`s in turn.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

import media_clips
from conftest import free_port
from processes import framecast

pytestmark = pytest.mark.slow

TUS = {"Tus-Resumable": "1.0.0"}


def environment(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMECAST_")}
    return env | {
        "FRAMECAST_DATA_DIR": str(data_dir),
        "FRAMECAST_HOST": "127.0.0.1",
        "FRAMECAST_PORT": str(port),
        "FRAMECAST_SECRET_KEY": "e2e-worker-kill-secret",
        "FRAMECAST_SERVE_WORKERS": "false",
        "FRAMECAST_JOB_LEASE_SECONDS": "3",
        "FRAMECAST_MEDIA_THREADS": "1",
        "FRAMECAST_X264_PRESET": "medium",
    }


async def until(check: Any, *, timeout: float, what: str) -> Any:
    """Poll `check` (the server's state is only visible over HTTP) until it answers something true."""
    async with asyncio.timeout(timeout):
        while True:
            if result := await check():
                return result
            await asyncio.sleep(0.2)


async def test_a_job_whose_worker_is_killed_finishes_on_another_worker(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = environment(data_dir, port)
    base = f"http://127.0.0.1:{port}"
    clip = media_clips.video(tmp_path / "talk.mp4", size="1280x720", seconds=20.0)

    async with framecast("serve", env, tmp_path / "serve.log") as serve:
        assert serve.stdout is not None
        token = (await asyncio.wait_for(serve.stdout.readline(), timeout=60)).decode().strip()
        http = httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with http:

            async def answering() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get("/healthz")).status_code == 200
                return False

            await until(answering, timeout=60, what="serve answers")
            data = clip.read_bytes()
            created = await http.post(
                "/api/v1/uploads/",
                content=data,
                headers={
                    **TUS,
                    "Upload-Length": str(len(data)),
                    "Upload-Metadata": "filename " + base64.b64encode(b"talk.mp4").decode(),
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            assert created.status_code == 201, created.text
            recording_id = created.headers["Framecast-Recording-Id"]

            async def stages() -> dict[str, Any]:
                response = await http.get(f"/api/v1/recordings/{recording_id}")
                body: dict[str, Any] = response.json()
                return body.get("processing") or {}

            async with framecast("worker", env, tmp_path / "worker-a.log") as first:

                async def encoding() -> bool:
                    ladder = (await stages()).get("ladder", {})
                    return ladder.get("status") == "RUNNING" and ladder.get("progress", 0) > 0

                await until(encoding, timeout=120, what="the first worker starts the ladder")
                doomed = psutil.Process(first.pid)
                encoders = [child for child in doomed.children(recursive=True) if "ffmpeg" in child.name()]
                first.send_signal(signal.SIGKILL)
                await first.wait()
                # Its ffmpeg dies with it (parent-death signal): no encode is left running as an orphan.
                _, alive = psutil.wait_procs(encoders, timeout=15)
                assert not alive

            interrupted = (await stages())["ladder"]
            assert interrupted["status"] == "RUNNING"  # as far as the database knows: only the lease can tell

            async with framecast("worker", env, tmp_path / "worker-b.log"):

                async def finished() -> dict[str, Any] | None:
                    now = await stages()
                    if all(now.get(s, {}).get("status") == "SUCCEEDED" for s in ("ladder", "pictures", "download")):
                        return now
                    return None

                done = await until(finished, timeout=300, what="the second worker finishes every stage")
            assert done["ladder"]["attempts"] == 2
            body = (await http.get(f"/api/v1/recordings/{recording_id}")).json()
            assert body["status"] == "READY"
            master = (await http.get(body["playback"]["hls_url"])).text
            assert "720p/index.m3u8" in master
