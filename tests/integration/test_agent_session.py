"""The Recording Agent against a real framecast server, replaying a clip as its capture device (`--source`).

The agent's parts run for real: ffmpeg captures into the spool, the control channel speaks WebSocket, the uploader
sends live segments (or tus, after stop and for imports), and the server plays what arrives. The desktop devices
(Xvfb, PulseAudio) are in tests/e2e; faults on the way (corrupt segments, lost answers, a killed agent) are in
test_agent_live.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from test_processing import probe, recording, wait_until

import media_clips
from conftest import Server
from framecast.agent.capture import CaptureSpec, Platform
from framecast.agent.client import Recordings
from framecast.agent.live import LiveClient
from framecast.agent.recorder import Options, Recorder, State
from framecast.agent.recovery import recover
from framecast.agent.spool import Spool
from framecast.agent.tus import TusClient
from framecast.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'framecast.db'}"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A short prepare timeout lets a test watch a session expire; every other test starts within a second.
    return settings.model_copy(
        update={"serve_workers": True, "worker_concurrency": 1, "media_threads": 1, "prepare_timeout_seconds": 4}
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return media_clips.video(tmp_path_factory.mktemp("clips") / "source.mp4", size="640x360", seconds=12.0)


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=30
    ) as client:
        yield client


def recorder_for(http: httpx.AsyncClient, spool: Path, clip: Path, **options: Any) -> Recorder:
    spec = CaptureSpec(source=clip, source_speed=options.pop("speed", 1.0))
    return Recorder(
        options=Options(spec=spec, platform=Platform.LINUX, ffmpeg=media_clips.FFMPEG, **options),
        recordings=Recordings(http),
        tus=TusClient(http),
        live=LiveClient(http),
        spool=Spool(spool),
    )


def playable(body: dict[str, Any]) -> bool:
    if body["status"] == "FAILED":
        raise AssertionError(body["failure_reason"])
    return body["status"] == "READY"


async def raw_upload(server: Server, recording_id: str) -> Path:
    """The file the server assembled from the agent's tus parts."""
    folder = server.container.settings.data_dir / "blobs" / "recordings" / recording_id / "raw"
    (path,) = folder.iterdir()
    return path


def live_runs(server: Server, recording_id: str, target: Path) -> list[Path]:
    """Each run the server stored from the agent's live segments, joined back into one file: init, then segments."""
    media = server.container.settings.data_dir / "blobs" / "recordings" / recording_id / "media"
    (generation,) = [folder for folder in media.iterdir() if (folder / "play").is_dir()]
    target.mkdir(parents=True, exist_ok=True)
    joined = []
    for run in sorted((generation / "play").glob("r*")):
        path = target / f"{run.name}.mp4"
        path.write_bytes(b"".join(p.read_bytes() for p in [run / "init.mp4", *sorted(run.glob("*.m4s"))]))
        joined.append(path)
    return joined


async def job_kinds(server: Server, recording_id: str) -> set[str]:
    async with server.container.uow() as tx:
        return {job.kind for job in await tx.jobs.list_for_recording(recording_id)}


async def test_a_recording_with_a_pause_arrives_whole_and_plays(
    server: Server, http: httpx.AsyncClient, tmp_path: Path, clip: Path
) -> None:
    recorder = recorder_for(http, tmp_path / "spool", clip, title="With a pause")
    await recorder.start()
    session = asyncio.create_task(recorder.run())
    await asyncio.sleep(3)
    sent_while_recording = recorder.sent_bytes
    watchable = await recording(server, recorder.recording_id)
    recorder.pause()
    await asyncio.sleep(1.5)
    assert (await recording(server, recorder.recording_id))["status"] == "PAUSED"
    recorder.resume()
    await asyncio.sleep(3)
    recorder.stop()
    outcome = await session

    assert outcome.state is State.DONE
    assert sent_while_recording > 0, "nothing was uploaded while recording"
    assert watchable["playback"]["live"] is True, "the recording was watchable while it recorded"
    body = await recording(server, recorder.recording_id)
    assert body["status"] == "READY", "the last segment made it READY: no processing between stop and the link"
    assert outcome.share_url == body["share_url"]
    assert "media.playable" not in await job_kinds(server, recorder.recording_id)
    assert body["title"] == "With a pause"
    assert body["segment_count"] == 2
    # The agent's clock against what plays: replaying a file, ffmpeg reads each run's first half second at once
    # (its -re burst), so the media runs ahead of the clock by up to about a second a run.
    assert abs(body["client_duration_ms"] - body["duration_ms"]) < 2500
    runs = live_runs(server, recorder.recording_id, tmp_path / "stored")
    assert len(runs) == 2, "one stretch of segments per run, the pause between them"
    played = 0.0
    for run in runs:
        media = probe(run)
        assert media["video"]["codec"] == "h264"
        assert media["audio"]["codec"] == "aac"
        played += media["duration_s"]
    # The length is what plays: the two runs end to end, the pause not in it (about 6 s recorded, 1.5 s paused).
    assert body["duration_ms"] == pytest.approx(played * 1000, abs=150)
    assert 5000 <= body["duration_ms"] <= 8000
    assert list((tmp_path / "spool").iterdir()) == [], "an uploaded recording leaves nothing in the spool"


async def test_what_was_captured_during_the_pause_is_not_in_the_recording(
    server: Server, http: httpx.AsyncClient, tmp_path: Path, clip: Path
) -> None:
    """A source resumes where it paused: the recording is the clip's first 2 s then its next 2 s, nothing skipped."""
    recorder = recorder_for(http, tmp_path / "spool", clip, speed=1.0)
    await recorder.start()
    session = asyncio.create_task(recorder.run())
    await asyncio.sleep(2)
    recorder.pause()
    await asyncio.sleep(2)
    recorder.resume()
    await asyncio.sleep(2)
    recorder.stop()
    await session
    body = await wait_until(server, recorder.recording_id, playable)
    playable_ms = body["client_duration_ms"]
    assert 3000 <= playable_ms <= 5500


async def test_a_force_stop_from_the_server_ends_the_recording_on_the_agent(
    server: Server, http: httpx.AsyncClient, tmp_path: Path, clip: Path
) -> None:
    recorder = recorder_for(http, tmp_path / "spool", clip)
    await recorder.start()
    session = asyncio.create_task(recorder.run())
    await asyncio.sleep(2.5)
    response = await http.post(f"/api/v1/recordings/{recorder.recording_id}/stop")
    assert response.status_code == 200, response.text
    async with asyncio.timeout(30):
        outcome = await session
    assert outcome.state is State.DONE
    assert "requested" in outcome.message
    body = await wait_until(server, recorder.recording_id, playable)
    assert body["stop_reason"] == "requested"


async def test_cancel_leaves_nothing_anywhere(
    server: Server, http: httpx.AsyncClient, tmp_path: Path, clip: Path
) -> None:
    recorder = recorder_for(http, tmp_path / "spool", clip)
    await recorder.start()
    session = asyncio.create_task(recorder.run())
    await asyncio.sleep(3)
    assert recorder.sent_bytes > 0
    recorder.cancel()
    outcome = await session
    assert outcome.state is State.CANCELLED
    assert (await recording(server, recorder.recording_id))["status"] == "ABORTED"
    assert list((tmp_path / "spool").iterdir()) == []
    media = server.container.settings.data_dir / "blobs" / "recordings" / recorder.recording_id / "media"
    async with asyncio.timeout(10):
        while media.exists() and any(path.is_file() for path in media.rglob("*")):  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # the segments sent so far go when the server hears of the abort


async def test_uploading_after_stop_sends_nothing_while_recording(
    server: Server, http: httpx.AsyncClient, tmp_path: Path, clip: Path
) -> None:
    recorder = recorder_for(http, tmp_path / "spool", clip, live_upload=False, duration_s=3.0)
    await recorder.start()
    session = asyncio.create_task(recorder.run())
    await asyncio.sleep(2)
    assert recorder.sent_bytes == 0
    outcome = await session
    assert outcome.state is State.DONE
    await wait_until(server, recorder.recording_id, playable)


async def test_a_source_replayed_faster_than_real_time_keeps_its_length(
    server: Server, http: httpx.AsyncClient, tmp_path: Path, clip: Path
) -> None:
    recorder = recorder_for(http, tmp_path / "spool", clip, speed=0.0)
    await recorder.start()
    outcome = await recorder.run()  # the source runs out: the recording stops by itself
    assert outcome.state is State.DONE
    body = await recording(server, recorder.recording_id)
    assert body["status"] == "READY"
    (run,) = live_runs(server, recorder.recording_id, tmp_path / "stored")
    assert abs(float(probe(run)["duration_s"]) - 12.0) < 0.3


@pytest.mark.parametrize("live", [True, False], ids=["live-segments", "tus"])
async def test_recovery_stops_the_recording_and_uploads_the_whole_fragments(
    server: Server, http: httpx.AsyncClient, tmp_path: Path, clip: Path, live: bool
) -> None:
    """What a dead agent leaves: a recording the server still thinks is RECORDING, and a run cut mid-fragment. A
    journal from before live segments (tus) is finished the way it was begun."""
    recorder = recorder_for(http, tmp_path / "capture", clip, speed=0.0, live_upload=False)
    await recorder.start()
    await recorder.run()
    captured = await raw_upload(server, recorder.recording_id)

    created = (await http.post("/api/v1/recordings", json={"recording_type": "screen", "title": "crashed"})).json()
    async with websockets.connect(created["ws_url"]) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "RECORDING_STARTED", "seq": 1, "data": {}}))
        assert json.loads(await ws.recv())["type"] == "ACK"
    spool = Spool(tmp_path / "spool")
    entry = spool.create(
        server=server.url, recording_id=created["id"], recording_type="screen", title="crashed", live=live
    )
    entry.journal.seq = 1
    run = entry.new_run()
    whole = captured.read_bytes()
    entry.path(run).write_bytes(whole[: len(whole) * 2 // 3])  # killed mid-write
    entry.release()

    (found,) = list(spool.unfinished())
    outcome = await recover(found, recordings=Recordings(http), tus=TusClient(http), live=LiveClient(http))
    assert outcome.state is State.DONE
    if live:
        body = await recording(server, created["id"])
        assert body["status"] == "READY"
        (stored,) = live_runs(server, created["id"], tmp_path / "stored")
    else:
        body = await wait_until(server, created["id"], playable)
        stored = await raw_upload(server, created["id"])
    assert body["stop_reason"] == "stopped"
    assert 5.0 <= float(probe(stored)["duration_s"]) <= 9.0, "the whole fragments before the cut arrived"
    assert list((tmp_path / "spool").iterdir()) == []


async def test_a_recording_whose_session_expired_is_uploaded_as_a_new_one(
    server: Server, http: httpx.AsyncClient, tmp_path: Path, clip: Path
) -> None:
    """The server gave up on a session that never started (the agent could not tell it in time): what the agent
    captured still arrives, as an import, and the expired recording stays as it was."""
    recorder = recorder_for(http, tmp_path / "capture", clip, speed=0.0, live_upload=False)
    await recorder.start()
    await recorder.run()
    captured = (await raw_upload(server, recorder.recording_id)).read_bytes()

    created = (await http.post("/api/v1/recordings", json={"recording_type": "screen", "title": "late"})).json()
    expired = await wait_until(server, created["id"], lambda body: body["status"] == "EXPIRED", timeout=30)
    spool = Spool(tmp_path / "spool")
    entry = spool.create(
        server=server.url, recording_id=created["id"], recording_type="screen", title="late", live=True
    )
    entry.path(entry.new_run()).write_bytes(captured)
    entry.release()

    (found,) = list(spool.unfinished())
    outcome = await recover(found, recordings=Recordings(http), tus=TusClient(http), live=LiveClient(http))
    assert outcome.state is State.DONE
    assert outcome.recording_id != created["id"]
    body = await wait_until(server, outcome.recording_id, playable)
    assert body["title"] == "late"
    assert outcome.share_url == body["share_url"]
    assert (await recording(server, created["id"]))["status"] == expired["status"]
