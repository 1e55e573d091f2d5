"""Live WebM (docs/live.md, "WebM runs"): a browser that records WebM sends its header and clusters as they are
recorded; the server transcodes each segment as it arrives, so the link plays live and is complete at stop."""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path

import httpx
import pytest

from conftest import Server
from framecast.domain import fmp4
from live_client import Recording, digest, listed, refused
from media_clips import FFMPEG, live_webm, split_webm

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def vp8(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[bytes]]:
    return split_webm(live_webm(tmp_path_factory.mktemp("webm") / "vp8.webm", seconds=6, size="640x360"))


async def fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as anonymous:
        response = await anonymous.get(url)
    assert response.status_code == 200, url
    return response


async def test_a_webm_recording_plays_live_and_is_whole_at_stop(server: Server, vp8: tuple[bytes, list[bytes]]) -> None:
    header, segments = vp8
    server.container.start_worker()
    async with server.client() as http:
        live = Recording(server, http)
        await live.start()
        assert (await live.put(1, None, header, **{"Content-Type": "video/webm"})).status_code == 201
        recording = await live.get()
        assert recording["playback"]["live"] is True

        # Out of order, and once twice: the playlist lists what is contiguous, the repeat changes nothing.
        first = await live.put(1, 1, segments[1])
        assert first.status_code == 201, first.text
        assert listed(await live.playlist()) == []
        assert (await live.put(1, 0, segments[0])).status_code == 201
        again = await live.put(1, 1, segments[1])
        assert (again.status_code, again.json()["duplicate"]) == (200, True)
        assert listed(await live.playlist()) == ["r0001/00000.m4s", "r0001/00001.m4s"]

        # What the master playlist promises is what the transcoded init segment holds.
        master_url = recording["playback"]["hls_url"]
        master = (await fetch(master_url)).text
        base = master_url.rsplit("/", 1)[0]
        init = fmp4.parse_init((await fetch(f"{base}/play/r0001/init.mp4")).content)
        assert f'CODECS="{init.codecs}"' in master, master
        assert init.codecs == "avc1.640029,Opus"
        assert init.video is not None
        assert (init.video.width, init.video.height) == (640, 360)

        for index in range(2, len(segments)):
            assert (await live.put(1, index, segments[index])).status_code == 201
        await live.send("RECORDING_STOPPED")
        assert (await live.end(1, len(segments))).status_code == 200
        assert (await live.complete(1)).json()["complete"] is True
        recording = await live.get()
        assert recording["status"] == "READY"
        assert recording["duration_ms"] == pytest.approx(6000, abs=300)

        # Transcoded apart, the segments still follow on from each other: each starts where the one before ends.
        playlist = await live.playlist()
        starts = []
        for name in listed(playlist):
            starts.append(fmp4.parse_segment((await fetch(f"{base}/play/{name}")).content, init))
        for before, after in itertools.pairwise(starts):
            assert after.start_s == pytest.approx(before.start_s + before.duration_s, abs=0.05)
            assert after.starts_with_keyframe

        # A real HLS client plays the finished link, picture and sound, with no error.
        player = await asyncio.create_subprocess_exec(
            FFMPEG, "-v", "error", "-protocol_whitelist", "http,tcp", "-i", recording["playback"]["hls_url"],
            "-f", "null", "-", stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, errors = await asyncio.wait_for(player.communicate(), timeout=120)
        assert player.returncode == 0, errors.decode()
        assert errors.decode().strip() == ""

        # The ladder is built afterwards from the transcoded segments.
        for _ in range(900):
            done = await live.get()
            if (done["processing"] or {}).get("ladder", {}).get("status") == "SUCCEEDED":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the ladder never finished: {done['processing']}")
        assert "p/index.m3u8" in (await fetch(done["playback"]["hls_url"])).text
        await live.ws.close()


async def test_an_audio_only_webm_goes_live_with_its_opus_as_it_is(server: Server, tmp_path: Path) -> None:
    header, segments = split_webm(live_webm(tmp_path / "voice.webm", seconds=4, video=False))
    async with server.client() as http:
        live = Recording(server, http)
        await live.start()
        assert (await live.put(1, None, header, **{"Content-Type": "audio/webm"})).status_code == 201
        for index, segment in enumerate(segments):
            assert (await live.put(1, index, segment)).status_code == 201
        await live.send("RECORDING_STOPPED")
        await live.end(1, len(segments))
        assert (await live.complete(1)).json()["complete"] is True
        recording = await live.get()
        master = (await fetch(recording["playback"]["hls_url"])).text
        assert 'CODECS="Opus"' in master
        assert recording["duration_ms"] == pytest.approx(4000, abs=300)
        await live.ws.close()


async def test_bad_webm_is_refused_and_changes_nothing(server: Server, vp8: tuple[bytes, list[bytes]]) -> None:
    header, segments = vp8
    async with server.client() as http:
        live = Recording(server, http)
        await live.start()
        # A codec the live transcode does not take: 415, and the client uploads the recording whole instead.
        flac = header.replace(b"A_OPUS", b"A_FLAC")
        refused(await live.put(1, None, flac), 415, "unsupported_media")
        # A header that runs into the first cluster.
        refused(await live.put(1, None, header + segments[0][:100]), 400, "segment_corrupt")
        assert (await live.get())["playback"]["hls_url"] is None

        assert (await live.put(1, None, header)).status_code == 201
        # Not clusters; a cluster cut short; a segment that starts between keyframes; damaged on the way.
        refused(await live.put(1, 0, b"\x00" * 64), 400, "segment_corrupt")
        refused(await live.put(1, 0, segments[0][: len(segments[0]) // 2]), 400, "segment_corrupt")
        refused(await live.put(1, 0, middle_of(segments[0])), 400, "segment_corrupt")
        damaged = bytearray(segments[0])
        damaged[-10] ^= 0xFF
        response = await live.http.put(
            f"/api/v1/recordings/{live.id}/live/1/0", content=bytes(damaged), headers=digest(segments[0])
        )
        refused(response, 400, "segment_corrupt")
        state = (await live.http.get(f"/api/v1/recordings/{live.id}/live")).json()
        assert state["runs"][0]["received"] == []

        assert (await live.put(1, 0, segments[0])).status_code == 201
        # Different bytes under a stored index.
        refused(await live.put(1, 0, segments[1]), 409, "segment_conflict")
        assert listed(await live.playlist()) == ["r0001/00000.m4s"]
        await live.ws.close()


def middle_of(segment: bytes) -> bytes:
    """The segment from its second Cluster on, whose first video frame depends on frames before it."""
    second = [m.start() for m in re.finditer(re.escape(b"\x1f\x43\xb6\x75"), segment)][1]
    return segment[second:]
