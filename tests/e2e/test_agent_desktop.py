"""`framecast record` as a person runs it: a real X screen (Xvfb), a real PulseAudio microphone hearing a tone, a
real `framecast serve` process, and the agent as a process of its own, in a terminal or killed with -9."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from test_upload_crash import serve

from conftest import free_port
from desktop import Desktop, desktop

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

WORKERS = {"FRAMECAST_SERVE_WORKERS": "true", "FRAMECAST_WORKER_CONCURRENCY": "1", "FRAMECAST_MEDIA_THREADS": "1"}
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def screen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desktop]:
    with desktop(tmp_path_factory.mktemp("desktop")) as running:
        yield running


@dataclass
class Site:
    url: str
    token: str
    data_dir: Path
    port: int
    log: Path

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    data_dir, port, log = tmp_path / "data", free_port(), tmp_path / "serve.log"
    async with serve(data_dir, port, log, settings=WORKERS) as process:
        assert process.stdout is not None
        token = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode().strip()
        yield Site(f"http://127.0.0.1:{port}", token, data_dir, port, log)


def agent_env(screen: Desktop, site: Site, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMECAST_")}
    return (
        env
        | screen.env
        | {
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "FRAMECAST_SERVER": site.url,
            "FRAMECAST_TOKEN": site.token,
        }
    )


async def agent(env: dict[str, str], *args: str, stdin: int | None = None, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as stderr:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "framecast",
            "record",
            *args,
            stdin=stdin if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
        )


async def newest(site: Site, *, status: str | None = None) -> dict[str, Any]:
    """The newest recording once there is one (in `status`, if given)."""
    async with site.http() as http, asyncio.timeout(TIMEOUT):
        while True:
            items = (await http.get("/api/v1/recordings", params={"limit": 1})).json()["items"]
            if items and (status is None or items[0]["status"] == status):
                return dict(items[0])
            await asyncio.sleep(0.1)


async def until(site: Site, recording_id: str, *statuses: str) -> dict[str, Any]:
    async with site.http() as http, asyncio.timeout(TIMEOUT):
        while True:
            body: dict[str, Any] = (await http.get(f"/api/v1/recordings/{recording_id}")).json()
            if body["status"] in statuses:
                return body
            if body["status"] == "FAILED":
                raise AssertionError(body["failure_reason"])
            await asyncio.sleep(0.2)


async def playable_seconds(site: Site, recording: dict[str, Any]) -> tuple[float, str]:
    """How long the published rendition plays (its playlist's EXTINFs) and the master playlist's CODECS."""
    master_url = recording["playback"]["hls_url"]
    async with httpx.AsyncClient(timeout=30) as http:
        master = (await http.get(master_url)).text
        uri = next(line for line in master.splitlines() if line and not line.startswith("#"))
        playlist = (await http.get(master_url.rsplit("/", 1)[0] + "/" + uri)).text
    seconds = sum(
        float(line.split(":", 1)[1].rstrip(",")) for line in playlist.splitlines() if line.startswith("#EXTINF:")
    )
    return seconds, master


async def finish(process: asyncio.subprocess.Process, log: Path) -> str:
    """Wait for the agent to exit 0 and return the last line it printed (the share link)."""
    assert process.stdout is not None
    async with asyncio.timeout(TIMEOUT):
        out = await process.stdout.read()
        code = await process.wait()
    assert code == 0, f"the agent exited {code}:\n{log.read_text(errors='replace')[-3000:]}"
    return out.decode().strip().splitlines()[-1]


async def test_record_ten_seconds_with_a_pause_from_a_terminal(screen: Desktop, site: Site, tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    terminal, keyboard = pty.openpty()  # the agent reads single keys from a terminal, as from a person
    process = await agent(
        agent_env(screen, site, tmp_path),
        "--screen",
        "--mic",
        screen.monitor,
        "--title",
        "Pause",
        stdin=keyboard,
        log=log,
    )
    os.close(keyboard)
    try:
        recording = await newest(site, status="RECORDING")
        await asyncio.sleep(5)
        os.write(terminal, b"p")
        await until(site, recording["id"], "PAUSED")
        await asyncio.sleep(3)
        os.write(terminal, b"p")
        await until(site, recording["id"], "RECORDING")
        await asyncio.sleep(5)
        os.write(terminal, b"s")
        share_url = await finish(process, log)
    finally:
        os.close(terminal)
        with contextlib.suppress(ProcessLookupError):
            process.kill()

    assert share_url == recording["share_url"]
    body = await until(site, recording["id"], "READY")
    assert body["segment_count"] == 2
    assert 9_000 <= body["duration_ms"] <= 11_500, body["duration_ms"]
    seconds, master = await playable_seconds(site, body)
    assert 9.0 <= seconds <= 11.5, f"the video lasts {seconds} s; the pause must not be in it"
    assert "mp4a" in master, "the recording has an audio stream"


async def test_kill_9_mid_recording_then_recover(screen: Desktop, site: Site, tmp_path: Path) -> None:
    log, env = tmp_path / "agent.log", agent_env(screen, site, tmp_path)
    process = await agent(env, "--screen", "--mic", screen.monitor, "--no-input", "--duration", "120", log=log)
    recording = await newest(site, status="RECORDING")
    await asyncio.sleep(7)
    (capture,) = psutil.Process(process.pid).children()
    process.send_signal(signal.SIGKILL)
    await process.wait()
    gone, _ = await asyncio.to_thread(psutil.wait_procs, [capture], timeout=15)
    assert gone, "ffmpeg outlived the agent that was killed"

    recovery = await agent(env, "--recover", log=log)
    assert process.stdout is not None
    async with asyncio.timeout(TIMEOUT):
        assert await recovery.wait() == 0, log.read_text(errors="replace")[-3000:]
    assert "recovered" in log.read_text()
    body = await until(site, recording["id"], "READY")
    seconds, master = await playable_seconds(site, body)
    assert 5.0 <= seconds <= 8.5, f"{seconds} s of the ~7 s captured before the kill arrived"
    assert "mp4a" in master
    assert not any((tmp_path / "data" / "framecast" / "spool").iterdir()), "the spool is empty once recovered"


async def test_the_agent_rides_out_a_server_restart(screen: Desktop, tmp_path: Path) -> None:
    data_dir, port, serve_log, log = tmp_path / "server", free_port(), tmp_path / "serve.log", tmp_path / "agent.log"
    async with serve(data_dir, port, serve_log, settings=WORKERS) as first:
        assert first.stdout is not None
        token = (await asyncio.wait_for(first.stdout.readline(), timeout=30)).decode().strip()
        site = Site(f"http://127.0.0.1:{port}", token, data_dir, port, serve_log)
        process = await agent(
            agent_env(screen, site, tmp_path),
            "--screen",
            "--mic",
            screen.monitor,
            "--no-input",
            "--duration",
            "14",
            log=log,
        )
        recording = await newest(site, status="RECORDING")
        await asyncio.sleep(4)
        first.kill()  # the server dies mid-recording, connections and all
        await first.wait()
    await asyncio.sleep(2)
    async with serve(data_dir, port, serve_log, settings=WORKERS):
        share_url = await finish(process, log)
        assert share_url == recording["share_url"]
        body = await until(site, recording["id"], "READY")
        seconds, _ = await playable_seconds(site, body)
    assert 13.0 <= seconds <= 15.5, f"the video lasts {seconds} s of 14"
    assert "reconnect" not in body.get("stop_reason", ""), "the agent came back before the grace ran out"


async def test_a_stop_from_the_server_ends_the_recording_on_the_agent(
    screen: Desktop, site: Site, tmp_path: Path
) -> None:
    log = tmp_path / "agent.log"
    process = await agent(agent_env(screen, site, tmp_path), "--screen", "--no-input", "--duration", "120", log=log)
    recording = await newest(site, status="RECORDING")
    await asyncio.sleep(4)
    async with site.http() as http:
        assert (await http.post(f"/api/v1/recordings/{recording['id']}/stop")).status_code == 200
    share_url = await finish(process, log)
    assert share_url == recording["share_url"]
    assert "stopped by the server (requested)" in log.read_text()
    body = await until(site, recording["id"], "READY")
    assert body["stop_reason"] == "requested"
