"""The agent's live segments against a real server when things go wrong: bodies damaged on the way, answers lost,
connections refused, and the agent killed mid-recording then finished by `framecast record --recover`.

The faults are made on the agent's side of the wire (an httpx transport in front of the real one); the server is the
real one, in this event loop, and the killed agent a real process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from test_processing import probe, recording

import media_clips
from conftest import Server
from framecast.agent import fmp4
from framecast.agent.capture import CaptureSpec, Platform
from framecast.agent.client import Recordings
from framecast.agent.live import LiveClient
from framecast.agent.recorder import Options, Recorder, State
from framecast.agent.spool import Spool
from framecast.agent.tus import TusClient
from framecast.settings import Settings

pytestmark = pytest.mark.anyio
TIMEOUT = 60.0


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'framecast.db'}"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A live recording is READY from its segments alone; no worker is needed to play it.
    return settings.model_copy(update={"serve_workers": False})


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return media_clips.video(tmp_path_factory.mktemp("clips") / "source.mp4", size="640x360", seconds=12.0)


class Faults(httpx.AsyncBaseTransport):
    """The network between the agent and the server, breaking the requests named by path, each as often as asked:
    `corrupt` flips a byte of the body on the way, `lose_answer` lets the request through and loses the answer,
    `refuse` fails to connect. Records every answer the agent got: (method, path, status)."""

    def __init__(
        self, *, corrupt: dict[str, int] | None = None, lose_answer: dict[str, int] | None = None,
        refuse: dict[str, int] | None = None,
    ) -> None:  # fmt: skip
        self._inner = httpx.AsyncHTTPTransport()
        self._corrupt = dict(corrupt or {})
        self._lose = dict(lose_answer or {})
        self._refuse = dict(refuse or {})
        self.answers: list[tuple[str, str, int | None]] = []

    @staticmethod
    def _take(faults: dict[str, int], path: str) -> bool:
        key = next((k for k in faults if path.endswith(k)), None)
        if key is None or faults[key] == 0:
            return False
        faults[key] -= 1
        return True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "PUT" and self._take(self._refuse, path):
            self.answers.append((request.method, path, None))
            raise httpx.ConnectError("connection refused (the test's fault)", request=request)
        if request.method == "PUT" and self._take(self._corrupt, path):
            body = bytearray(request.content)
            body[len(body) // 2] ^= 0xFF
            request = httpx.Request(request.method, request.url, headers=request.headers, content=bytes(body))
        response = await self._inner.handle_async_request(request)
        self.answers.append((request.method, path, response.status_code))
        if request.method == "PUT" and self._take(self._lose, path):
            await response.aread()
            await response.aclose()
            raise httpx.ReadError("the connection dropped before the answer (the test's fault)", request=request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def statuses(self, suffix: str) -> list[int | None]:
        return [status for method, path, status in self.answers if method == "PUT" and path.endswith(suffix)]


@pytest.fixture
async def faults(server: Server) -> AsyncIterator[Faults]:
    transport = Faults(
        corrupt={"/live/1/init": 1, "/live/1/1": 2},
        lose_answer={"/live/1/2": 1},
        refuse={"/live/1/3": 1},
    )
    yield transport
    await transport.aclose()


def stored_playlist(server: Server, recording_id: str) -> tuple[str, list[Path]]:
    """The finished live playlist as the server stored it at completion, and each run joined back from its pieces."""
    media = server.container.settings.data_dir / "blobs" / "recordings" / recording_id / "media"
    (generation,) = [folder for folder in media.iterdir() if (folder / "play").is_dir()]
    runs = []
    for run in sorted((generation / "play").glob("r*")):
        joined = run.parent / f"{run.name}-joined.mp4"
        joined.write_bytes(b"".join(p.read_bytes() for p in [run / "init.mp4", *sorted(run.glob("*.m4s"))]))
        runs.append(joined)
    return (generation / "play" / "index.m3u8").read_text(), runs


def listed(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


async def live_state(http: httpx.AsyncClient, recording_id: str) -> dict[str, Any]:
    response = await http.get(f"/api/v1/recordings/{recording_id}/live")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_whole(state: dict[str, Any], playlist: str) -> None:
    """Every run ended, every segment of it stored, and the playlist lists them all, in order, with no gap."""
    assert state["complete"] is True
    assert state["missing"] == []
    expected = []
    for run in state["runs"]:
        assert run["ended"] is not None
        assert run["received"] == list(range(run["ended"])), f"run {run['run']} has a gap"
        assert run["segments"] == run["ended"]
        expected += [f"r{run['run']:04d}/{index:05d}.m4s" for index in range(run["ended"])]
    assert listed(playlist) == expected
    assert playlist.rstrip().endswith("#EXT-X-ENDLIST")


async def test_damaged_bodies_lost_answers_and_refused_connections_are_sent_again_and_leave_no_gap(
    server: Server, tmp_path: Path, clip: Path, faults: Faults
) -> None:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, transport=faults, timeout=30
    ) as http:
        spec = CaptureSpec(source=clip, source_speed=0.0)  # 12 s of clip as fast as ffmpeg goes: 6 segments at once
        recorder = Recorder(
            options=Options(spec=spec, platform=Platform.LINUX, ffmpeg=media_clips.FFMPEG, title="Faults"),
            recordings=Recordings(http),
            tus=TusClient(http),
            live=LiveClient(http),
            spool=Spool(tmp_path / "spool"),
        )
        await recorder.start()
        async with asyncio.timeout(TIMEOUT):
            outcome = await recorder.run()
        assert outcome.state is State.DONE, outcome.message
        state = await live_state(http, recorder.recording_id)

    assert faults.statuses("/live/1/init") == [400, 201], "the damaged init segment was refused, then sent again"
    assert faults.statuses("/live/1/1") == [400, 400, 201], "a segment damaged twice was read and sent again twice"
    assert faults.statuses("/live/1/2") == [201, 200], "an answer lost: sent again, taken as the duplicate it is"
    assert faults.statuses("/live/1/3") == [None, 201], "a refused connection: tried again"
    assert len(faults.statuses("/live/1/0")) == 1, "a segment that went through is sent once"
    body = await recording(server, recorder.recording_id)
    assert body["status"] == "READY"
    playlist, (run,) = stored_playlist(server, recorder.recording_id)
    assert_whole(state, playlist)
    assert len(listed(playlist)) == 6
    assert abs(float(probe(run)["duration_s"]) - 12.0) < 0.3, "every second of the clip is in what was stored"


@pytest.mark.parametrize("stopped", [False, True], ids=["still-recording", "stopped-on-the-server"])
async def test_an_agent_killed_mid_recording_is_finished_by_recover(
    server: Server, tmp_path: Path, clip: Path, stopped: bool
) -> None:
    """Killed while the server still has it RECORDING (recovery stops it), or after it was stopped on the server
    (UPLOADING: recovery only sends): either way what the server lacks goes up from the spool and it completes."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRAMECAST_")} | {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "FRAMECAST_SERVER": server.url,
        "FRAMECAST_TOKEN": server.token,
        "FRAMECAST_FFMPEG_BINARY": media_clips.FFMPEG,
    }
    log = tmp_path / "agent.log"

    async def agent(*args: str) -> asyncio.subprocess.Process:
        with log.open("ab") as stderr:
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", "framecast", "record", *args,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env,
            )  # fmt: skip

    process = await agent("--source", str(clip), "--speed", "1", "--no-input", "--title", "Killed")
    async with server.client() as http:
        async with asyncio.timeout(TIMEOUT):
            while not (items := (await http.get("/api/v1/recordings")).json()["items"]):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            recording_id = items[0]["id"]
            while not any(len(run["received"]) >= 2 for run in (await live_state(http, recording_id))["runs"]):  # noqa: ASYNC110
                await asyncio.sleep(0.1)  # two segments stored: killed while the third is being captured
        assert (await recording(server, recording_id))["playback"]["live"] is True
        captures = psutil.Process(process.pid).children()
        process.send_signal(signal.SIGKILL)
        await process.wait()
        gone, _ = await asyncio.to_thread(psutil.wait_procs, captures, timeout=15)
        assert len(gone) == len(captures), "ffmpeg outlived the agent that was killed"
        if stopped:
            assert (await http.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 200
        before = await live_state(http, recording_id)
        assert before["complete"] is False
        assert before["status"] == ("UPLOADING" if stopped else "RECORDING")

        (spooled,) = (tmp_path / "data" / "framecast" / "spool").glob("*/run-0001.mp4")
        whole = len(fmp4.fragments(spooled).segments)  # what the kill left on disk, cut at its last whole fragment
        recovery = await agent("--recover")
        async with asyncio.timeout(TIMEOUT):
            out, _ = await recovery.communicate()
        assert recovery.returncode == 0, log.read_text(errors="replace")[-3000:]
        assert "recovered" in log.read_text()
        body = await recording(server, recording_id)
        assert body["status"] == "READY", "the recovered segments completed it: READY, no processing"
        assert out.decode().strip().splitlines() == [], "--recover alone prints no link on standard output"
        state = await live_state(http, recording_id)

    playlist, (run,) = stored_playlist(server, recording_id)
    assert_whole(state, playlist)
    received_before = len(before["runs"][0]["received"])
    assert whole >= received_before >= 2
    assert len(listed(playlist)) == whole, "every whole fragment in the spool is in the recording"
    seconds = float(probe(run)["duration_s"])
    assert 2 * received_before - 0.5 <= seconds <= 12.5
    assert not any((tmp_path / "data" / "framecast" / "spool").iterdir()), "the spool is empty once recovered"
