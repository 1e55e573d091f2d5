"""Live segments over HTTP (docs/live.md): the playlist grows while recording, READY the instant the last segment
lands, and every bad segment is refused without touching what is stored."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Server
from live_client import Recording, digest, listed, refused
from media_clips import FFMPEG, fragmented, split_fragments

pytestmark = pytest.mark.anyio


@pytest.fixture
async def live(server: Server) -> Any:
    async with server.client() as http:
        recording = Recording(server, http)
        await recording.start()
        try:
            yield recording
        finally:
            await recording.ws.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, list[bytes]]]:
    folder = tmp_path_factory.mktemp("live")
    return [
        split_fragments(fragmented(folder / "run1.mp4", seconds=6)),
        split_fragments(fragmented(folder / "run2.mp4", seconds=4, start=10)),
    ]


async def test_the_playlist_grows_while_recording_and_ends_the_instant_the_last_segment_lands(
    live: Recording, runs: list[tuple[bytes, list[bytes]]]
) -> None:
    (init1, segments1), (init2, segments2) = runs
    assert (await live.get())["playback"]["hls_url"] is None  # nothing to watch yet

    assert (await live.put(1, None, init1)).status_code == 201
    recording = await live.get()
    assert recording["status"] == "RECORDING"
    assert recording["playback"]["live"] is True
    assert listed(await live.playlist()) == []

    response = await live.put(1, 0, segments1[0])
    assert response.status_code == 201, response.text
    assert response.json()["duration_ms"] == pytest.approx(2000, abs=50)
    # Out of order: segment 2 waits for segment 1, then both appear.
    assert (await live.put(1, 2, segments1[2])).status_code == 201
    assert listed(await live.playlist()) == ["r0001/00000.m4s"]
    assert (await live.put(1, 1, segments1[1])).status_code == 201
    playlist = await live.playlist()
    assert listed(playlist) == ["r0001/00000.m4s", "r0001/00001.m4s", "r0001/00002.m4s"]
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in playlist
    assert "#EXT-X-ENDLIST" not in playlist

    # A pause ends run 1; run 2 follows a discontinuity with its own init segment.
    await live.send("RECORDING_PAUSED")
    for index in range(3, len(segments1)):
        assert (await live.put(1, index, segments1[index])).status_code == 201
    assert (await live.end(1, len(segments1))).status_code == 200
    await live.send("RECORDING_RESUMED")
    assert (await live.put(2, None, init2)).status_code == 201
    assert (await live.put(2, 0, segments2[0])).status_code == 201
    playlist = await live.playlist()
    assert "#EXT-X-DISCONTINUITY" in playlist
    assert 'URI="r0002/init.mp4"' in playlist
    assert listed(playlist)[-1] == "r0002/00000.m4s"

    await live.send("RECORDING_STOPPED")
    completion = await live.complete(2)
    assert completion.status_code == 200
    # Run 2 is not ended yet: the recording waits for it and says so.
    assert completion.json()["complete"] is False
    assert (await live.get())["status"] == "UPLOADING"
    for index in range(1, len(segments2) - 1):
        assert (await live.put(2, index, segments2[index])).status_code == 201
    state = (await live.end(2, len(segments2))).json()
    assert state["missing"] == [{"run": 2, "index": len(segments2) - 1}]
    assert state["complete"] is False

    assert (await live.put(2, len(segments2) - 1, segments2[-1])).status_code == 201
    recording = await live.get()
    assert recording["status"] == "READY"
    assert recording["playback"]["live"] is False
    playlist = await live.playlist()
    assert playlist.rstrip().endswith("#EXT-X-ENDLIST")
    assert len(listed(playlist)) == len(segments1) + len(segments2)

    # A real HLS client reads the finished link from end to end: 10 s of video, the pause not in it.
    # (The server runs in this event loop: the client must not block it.)
    probe = await asyncio.create_subprocess_exec(
        FFMPEG, "-v", "error", "-protocol_whitelist", "http,tcp", "-i", recording["playback"]["hls_url"],
        "-map", "0:v", "-f", "null", "-", stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, errors = await asyncio.wait_for(probe.communicate(), timeout=120)
    assert probe.returncode == 0, errors.decode()
    durations = [float(line.split(":")[1].rstrip(",")) for line in playlist.splitlines() if line.startswith("#EXTINF")]
    assert sum(durations) == pytest.approx(10.0, abs=0.2)


async def test_duplicates_are_idempotent_and_conflicts_corruption_and_strangers_are_refused(
    live: Recording, runs: list[tuple[bytes, list[bytes]]], server: Server
) -> None:
    (init1, segments1), (init2, _) = runs
    response = await live.put(1, 0, segments1[0])
    refused(response, 409, "init_missing")
    assert (await live.put(1, None, init1)).status_code == 201
    assert (await live.put(1, None, init1)).status_code == 200
    other = init1[:12] + b"\x00\x00\x00\x01" + init1[16:]  # another ftyp minor version: valid, but other bytes
    response = await live.put(1, None, other)
    refused(response, 409, "segment_conflict")

    assert (await live.put(1, 0, segments1[0])).status_code == 201
    again = await live.put(1, 0, segments1[0])
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    response = await live.put(1, 0, segments1[1])
    refused(response, 409, "segment_conflict")

    # Damaged on the way: the digest no longer matches.
    damaged = bytearray(segments1[1])
    damaged[len(damaged) // 2] ^= 0xFF
    response = await live.http.put(
        f"/api/v1/recordings/{live.id}/live/1/1", content=bytes(damaged), headers=digest(segments1[1])
    )
    refused(response, 400, "segment_corrupt")
    # Whole but broken: a moof whose samples point past its mdat, a cut-off segment, an init segment, not video.
    cut = segments1[1][: len(segments1[1]) - 100]
    for bad in (cut, init1, b"GIF89a not a video at all", segments1[1][8:]):
        response = await live.put(1, 1, bad)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "segment_corrupt"
    response = await live.http.put(f"/api/v1/recordings/{live.id}/live/1/1", content=segments1[1])
    refused(response, 400, "digest_missing")

    _, token = await server.new_user("stranger@example.com")
    async with server.client(token) as other:
        response = await other.put(
            f"/api/v1/recordings/{live.id}/live/1/1", content=segments1[1], headers=digest(segments1[1])
        )
    assert response.status_code == 404

    # Nothing of that changed what is stored.
    state = (await live.http.get(f"/api/v1/recordings/{live.id}/live")).json()
    assert state["runs"] == [{"run": 1, "init": True, "segments": 1, "received": [0], "ended": None}]
    assert listed(await live.playlist()) == ["r0001/00000.m4s"]

    # Completion waits for stop; a segment past the declared end is refused.
    response = await live.complete(1)
    refused(response, 409, "not_accepting_segments")
    assert (await live.end(1, 1)).status_code == 200
    response = await live.put(1, 1, segments1[1])
    refused(response, 409, "segment_conflict")
    await live.send("RECORDING_STOPPED")
    assert (await live.complete(1)).json()["complete"] is True
    assert (await live.put(1, 0, segments1[0])).status_code == 200  # a retry after READY is still fine
    response = await live.put(2, None, init2)
    refused(response, 409, "not_accepting_segments")


async def test_a_cancelled_live_recording_keeps_nothing(
    live: Recording, runs: list[tuple[bytes, list[bytes]]], server: Server
) -> None:
    init, segments = runs[0]
    assert (await live.put(1, None, init)).status_code == 201
    assert (await live.put(1, 0, segments[0])).status_code == 201
    folder = Path(server.container.settings.blob_root) / "recordings" / live.id / "media"
    assert any(folder.rglob("*.m4s"))
    await live.send("RECORDING_ABORTED")
    for _ in range(100):
        if not any(folder.rglob("*.m4s")):
            break
        await asyncio.sleep(0.1)
    assert not any(folder.rglob("*.m4s"))
    aborted = await live.get()
    assert aborted["status"] == "ABORTED"
    assert aborted["playback"]["hls_url"] is None


async def test_after_ready_the_ladder_is_built_from_the_segments_and_swapped_in(
    server: Server, runs: list[tuple[bytes, list[bytes]]]
) -> None:
    server.container.start_worker()
    async with server.client() as http:
        recording = Recording(server, http)
        await recording.start()
        init, segments = runs[0]
        assert (await recording.put(1, None, init)).status_code == 201
        for index, segment in enumerate(segments):
            assert (await recording.put(1, index, segment)).status_code == 201
        await recording.end(1, len(segments))
        await recording.send("RECORDING_STOPPED")
        assert (await recording.complete(1)).json()["complete"] is True
        await recording.ws.close()

        for _ in range(600):
            done = await recording.get()
            stages = done["processing"] or {}
            if all(stages.get(stage, {}).get("status") == "SUCCEEDED" for stage in ("source", "ladder", "pictures")):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the ladder and pictures never finished: {done['processing']}")
        async with httpx.AsyncClient() as anonymous:
            master = (await anonymous.get(done["playback"]["hls_url"])).text
        assert "play/index.m3u8" not in master, master
        assert "p/index.m3u8" in master, master
        assert done["status"] == "READY"
        assert done["playback"]["poster_url"]
        # The live rendition stays where it was, for anyone still playing it.
        assert listed(await recording.playlist())
