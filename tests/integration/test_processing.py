"""The processing pipeline with real ffmpeg on tiny generated clips: import over tus, then watch the recording go
from PROCESSING to READY with a ladder, pictures and a download, or to FAILED with a reason a person understands."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import media_clips
from conftest import Server
from framecast.settings import Settings

pytestmark = pytest.mark.anyio
TUS = {"Tus-Resumable": "1.0.0"}
PROCESSING_TIMEOUT = 120.0


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Media tests run on SQLite only: the job queue's database behaviour is covered on both engines elsewhere, and
    the full flow on PostgreSQL is test_processing_postgres below."""
    return f"sqlite+aiosqlite:///{tmp_path / 'framecast.db'}"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"serve_workers": True, "worker_concurrency": 2, "media_threads": 2})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def import_file(server: Server, path: Path, *, title: str = "clip") -> str:
    """Upload `path` as an import (tus creation-with-upload); returns the new recording's id."""
    data = path.read_bytes()
    async with server.client() as http:
        response = await http.post(
            "/api/v1/uploads/",
            content=data,
            headers={
                **TUS,
                "Upload-Length": str(len(data)),
                "Upload-Metadata": f"filename {b64(title)}",
                "Content-Type": "application/offset+octet-stream",
            },
        )
    assert response.status_code == 201, response.text
    assert response.headers["Upload-Offset"] == str(len(data))
    return response.headers["Framecast-Recording-Id"]


async def import_segments(server: Server, paths: list[Path]) -> str:
    """Upload each segment as a tus partial upload, then a final upload that concatenates them."""
    async with server.client() as http:
        locations = []
        for path in paths:
            data = path.read_bytes()
            response = await http.post(
                "/api/v1/uploads/",
                content=data,
                headers={
                    **TUS,
                    "Upload-Length": str(len(data)),
                    "Upload-Concat": "partial",
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            assert response.status_code == 201, response.text
            locations.append(response.headers["Location"])
        final = await http.post(
            "/api/v1/uploads/",
            headers={**TUS, "Upload-Concat": "final;" + " ".join(locations), "Upload-Metadata": f"title {b64('3')}"},
        )
    assert final.status_code == 201, final.text
    return final.headers["Framecast-Recording-Id"]


async def recording(server: Server, recording_id: str) -> dict[str, Any]:
    async with server.client() as http:
        response = await http.get(f"/api/v1/recordings/{recording_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_until(
    server: Server, recording_id: str, done: Callable[[dict[str, Any]], bool], *, timeout: float = PROCESSING_TIMEOUT
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            body = await recording(server, recording_id)
            if done(body):
                return body
            await asyncio.sleep(0.2)


def fully_processed(body: dict[str, Any]) -> bool:
    stages = body.get("processing") or {}
    if body["status"] == "FAILED":
        raise AssertionError(f"processing failed: {body['failure_reason']}")
    return all(stages.get(s, {}).get("status") == "SUCCEEDED" for s in ("playable", "ladder", "pictures", "download"))


def failed(body: dict[str, Any]) -> bool:
    return body["status"] == "FAILED"


async def fetch(server: Server, url: str) -> bytes:
    async with server.client() as http:
        response = await http.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text[:200])
    return response.content


def probe(path: Path) -> dict[str, Any]:
    """What PyAV (libavformat, as ffprobe) reads in a file."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "framecast.adapters.media.probe", str(path)], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


async def rendition_file(server: Server, master_url: str, uri: str, target: Path) -> Path:
    """Download one rendition (init + segments) into a single fragmented MP4 for probing."""
    base = master_url.rsplit("/", 1)[0]
    playlist = (await fetch(server, f"{base}/{uri}")).decode()
    folder = uri.rsplit("/", 1)[0]
    with target.open("wb") as out:
        out.write(await fetch(server, f"{base}/{folder}/init.mp4"))
        for line in playlist.splitlines():
            if line and not line.startswith("#"):
                out.write(await fetch(server, f"{base}/{folder}/{line}"))
    return target


def master_variants(master: str) -> list[tuple[dict[str, str], str]]:
    lines = master.splitlines()
    variants = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attributes = dict(part.split("=", 1) for part in _split_attributes(line[len("#EXT-X-STREAM-INF:") :]))
            variants.append((attributes, lines[i + 1]))
    return variants


def _split_attributes(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


# -- the happy paths -------------------------------------------------------------------------------------------------


async def test_an_imported_clip_becomes_playable_then_gets_its_ladder_pictures_and_download(
    server: Server, tmp_path: Path
) -> None:
    source = media_clips.video(tmp_path / "talk.mp4", size="640x360", seconds=3.0)
    recording_id = await import_file(server, source, title="Quarterly review.mp4")

    playable = await wait_until(server, recording_id, lambda b: b["status"] in ("READY", "FAILED"))
    assert playable["status"] == "READY", playable["failure_reason"]
    assert playable["duration_ms"] == pytest.approx(3000, abs=100)
    assert playable["playback"]["hls_url"]

    first_master = (await fetch(server, playable["playback"]["hls_url"])).decode()
    assert rendition_uris(first_master) == ["play/index.m3u8"]  # the remux: no encode before it plays

    body = await wait_until(server, recording_id, fully_processed)
    master_url = body["playback"]["hls_url"]
    master = (await fetch(server, master_url)).decode()
    variants = master_variants(master)
    assert [uri for _, uri in variants] == ["360p/index.m3u8"]  # never above the source
    # A player that started on the first rendition keeps playing it after the swap.
    early = probe(await rendition_file(server, master_url, "play/index.m3u8", tmp_path / "play.mp4"))
    assert early["duration_s"] == pytest.approx(3.0, abs=0.1)
    attributes, _ = variants[0]
    assert attributes["RESOLUTION"] == "640x360"
    assert attributes["CODECS"] == '"avc1.64001e,mp4a.40.2"'
    assert float(attributes["FRAME-RATE"]) == 30.0
    assert int(attributes["BANDWIDTH"]) >= int(attributes["AVERAGE-BANDWIDTH"]) > 0

    rendition = probe(await rendition_file(server, master_url, "360p/index.m3u8", tmp_path / "360p.mp4"))
    assert rendition["video"]["codec"] == "h264"
    assert rendition["audio"]["codec"] == "aac"
    assert rendition["duration_s"] == pytest.approx(3.0, abs=0.1)

    download = tmp_path / "download.mp4"
    download.write_bytes(await fetch(server, body["playback"]["download_url"]))
    assert download.read_bytes()[4:8] == b"ftyp"
    assert b"moov" in download.read_bytes()[:4096], "faststart: the index comes before the media"
    assert probe(download)["duration_s"] == pytest.approx(3.0, abs=0.1)

    poster = await fetch(server, body["playback"]["poster_url"])
    assert poster[:3] == b"\xff\xd8\xff"
    preview = await fetch(server, body["playback"]["preview_url"])
    assert preview[:4] == b"RIFF"
    assert preview[8:12] == b"WEBP"
    vtt = (await fetch(server, body["playback"]["storyboard_url"])).decode()
    assert vtt.startswith("WEBVTT")
    assert "storyboard.jpg#xywh=0,0,160,90" in vtt

    assert {stage: s["progress"] for stage, s in body["processing"].items()} == {
        "playable": 100.0,
        "ladder": 100.0,
        "pictures": 100.0,
        "download": 100.0,
    }


def rendition_uris(master: str) -> list[str]:
    return [uri for _, uri in master_variants(master)]


CLIPS: dict[str, Callable[[Path], Path]] = {
    "portrait": lambda d: media_clips.video(d / "portrait.mp4", size="180x320"),
    "odd dimensions, VP9 in WebM": lambda d: media_clips.video(
        d / "odd.webm",
        size="321x241",
        vcodec=("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k"),
        acodec=("-c:a", "libopus"),
    ),
    "4K source": lambda d: media_clips.video(d / "4k.mp4", size="3840x2160", seconds=1.0, rate=10),
    "audio only": lambda d: media_clips.audio_only(d / "voice.m4a"),
    "video without audio": lambda d: media_clips.video(d / "silent.mp4", audio=False),
    "variable frame rate": lambda d: media_clips.variable_rate(d / "vfr.mp4"),
    "MediaRecorder WebM": lambda d: media_clips.media_recorder_webm(d / "browser.webm"),
}
EXPECTED_RUNGS = {
    "portrait": (["180p/index.m3u8"], "180x320"),
    "odd dimensions, VP9 in WebM": (["240p/index.m3u8"], "320x240"),
    "4K source": (["1080p/index.m3u8", "720p/index.m3u8", "480p/index.m3u8", "360p/index.m3u8"], "1920x1080"),
    "audio only": (["audio/index.m3u8"], None),
    "video without audio": (["180p/index.m3u8"], "320x180"),
    "variable frame rate": (["180p/index.m3u8"], "320x180"),
    "MediaRecorder WebM": (["180p/index.m3u8"], "320x180"),
}


@pytest.mark.parametrize("case", list(CLIPS))
async def test_every_kind_of_source_gets_a_valid_ladder_as_long_as_the_source(
    server: Server, tmp_path: Path, case: str
) -> None:
    source = CLIPS[case](tmp_path)
    source_duration = probe(source)["duration_s"]
    recording_id = await import_file(server, source)
    body = await wait_until(server, recording_id, fully_processed)

    master_url = body["playback"]["hls_url"]
    master = (await fetch(server, master_url)).decode()
    uris, top_resolution = EXPECTED_RUNGS[case]
    assert rendition_uris(master) == uris
    attributes, _ = master_variants(master)[0]
    assert attributes.get("RESOLUTION") == top_resolution
    for index, uri in enumerate(uris):
        rendition = probe(await rendition_file(server, master_url, uri, tmp_path / f"r{index}.mp4"))
        assert rendition["duration_s"] == pytest.approx(source_duration, abs=0.1), uri
        if top_resolution is None:
            assert rendition["video"] is None
        else:
            assert rendition["video"]["codec"] == "h264"
            assert rendition["video"]["width"] % 2 == 0
            assert rendition["video"]["height"] % 2 == 0
        assert (rendition["audio"] is not None) == (case != "video without audio")
    assert body["duration_ms"] == pytest.approx(source_duration * 1000, abs=100)
    assert (body["playback"]["poster_url"] is None) == (case == "audio only")


async def test_a_paused_recording_uploaded_as_three_segments_plays_as_one_continuous_video(
    server: Server, tmp_path: Path
) -> None:
    segments = [media_clips.video(tmp_path / f"part{i}.mp4", seconds=2.0) for i in range(3)]
    recording_id = await import_segments(server, segments)
    body = await wait_until(server, recording_id, fully_processed)
    assert body["duration_ms"] == pytest.approx(6000, abs=100)
    master_url = body["playback"]["hls_url"]
    rendition = probe(await rendition_file(server, master_url, "180p/index.m3u8", tmp_path / "joined.mp4"))
    assert rendition["duration_s"] == pytest.approx(6.0, abs=0.1)
    download = tmp_path / "download.mp4"
    download.write_bytes(await fetch(server, body["playback"]["download_url"]))
    assert probe(download)["duration_s"] == pytest.approx(6.0, abs=0.1)


async def test_the_poster_is_not_a_black_frame(server: Server, tmp_path: Path) -> None:
    recording_id = await import_file(server, media_clips.black_then_pattern(tmp_path / "dark.mp4"))
    body = await wait_until(server, recording_id, fully_processed)
    poster = tmp_path / "poster.jpg"
    poster.write_bytes(await fetch(server, body["playback"]["poster_url"]))
    assert mean_luma(poster) > 40


def mean_luma(picture: Path) -> float:
    import av

    with av.open(str(picture)) as container:
        frame = next(container.decode(video=0)).reformat(format="gray")
        plane = bytes(frame.planes[0])
    return sum(plane) / len(plane)


# -- refusals --------------------------------------------------------------------------------------------------------

SECRET = b"framecast-secret-marker-7f3a"


def secret_video(folder: Path) -> Path:
    return media_clips.video(folder / "secret.mp4", extra=("-metadata", f"comment={SECRET.decode()}"))


REFUSED: dict[str, Callable[[Path], bytes]] = {
    "truncated MP4": lambda d: media_clips.video(d / "cut.mp4").read_bytes()[:5000],
    "text file renamed .mp4": lambda d: b"Meeting notes\nnothing to see here\n" * 20,
    "HLS playlist pointing at a local file": lambda d: (
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3,\nfile://{secret_video(d)}\n#EXT-X-ENDLIST\n".encode()
    ),
    "concat list pointing at a local file": lambda d: f"ffconcat version 1.0\nfile '{secret_video(d)}'\n".encode(),
    "a PNG picture": lambda d: _png(d),
}


def _png(folder: Path) -> bytes:
    target = folder / "still.png"
    media_clips._ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=320x180:d=1", "-frames:v", "1", str(target)])
    return target.read_bytes()


@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_file_that_is_not_a_usable_video_fails_with_a_sentence_and_leaks_nothing(
    server: Server, tmp_path: Path, case: str
) -> None:
    upload = tmp_path / "upload.mp4"
    upload.write_bytes(REFUSED[case](tmp_path))
    recording_id = await import_file(server, upload)
    body = await wait_until(server, recording_id, failed)
    reason = body["failure_reason"]
    assert reason
    assert "Traceback" not in reason
    assert any(word in reason for word in ("not a video", "damaged", "picture", "playlist", "concat list")), reason
    assert body["playback"]["hls_url"] is None
    stages = body["processing"]
    assert stages["playable"]["status"] == "DEAD"
    assert stages["playable"]["attempts"] == 1, "a refused file is not retried"
    assert set(stages) == {"playable"}
    for path in server.container.settings.data_dir.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_bytes(), f"{path.name} holds bytes of a file the upload pointed at"


# -- progress, events, deletion, reprocessing --------------------------------------------------------------------------


def ffmpeg_children() -> list[Any]:
    import psutil

    return [p for p in psutil.Process().children(recursive=True) if "ffmpeg" in p.name()]


async def test_progress_is_shown_and_pushed_and_the_events_come_in_order(server: Server, tmp_path: Path) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    async def listen(event: Any) -> None:
        seen.append((event.type, event.data))

    server.container.bus.subscribe("test", listen)
    source = media_clips.video(tmp_path / "long.mp4", size="1280x720", seconds=12.0)
    recording_id = await import_file(server, source)
    percents: set[float] = set()

    def watch(body: dict[str, Any]) -> bool:
        ladder = (body.get("processing") or {}).get("ladder", {})
        if ladder.get("status") == "RUNNING":
            percents.add(ladder["progress"])
        return fully_processed(body)

    await wait_until(server, recording_id, watch)
    assert any(0 < p < 100 for p in percents), f"no progress was visible while encoding: {percents}"

    ours = [(kind, data) for kind, data in seen if data.get("recording_id") == recording_id]
    kinds = [kind for kind, _ in ours if kind != "processing_progress"]
    assert kinds[:3] == ["recording_created", "raw_video_uploaded", "video_playable"]
    assert kinds.count("rendition_ready") == 3
    assert kinds[-1] == "video_ready"
    ready = next(data for kind, data in ours if kind == "video_ready")
    assert ready["renditions"] == ["720p", "480p", "360p"]
    progress = [data for kind, data in ours if kind == "processing_progress"]
    assert progress, "progress is pushed as events"
    assert {p["stage"] for p in progress} <= {"playable", "ladder", "pictures", "download"}
    assert all(0 <= p["percent"] <= 100 for p in progress)


async def test_deleting_a_recording_mid_job_stops_the_work_and_removes_its_files(
    server: Server, tmp_path: Path
) -> None:
    source = media_clips.video(tmp_path / "long.mp4", size="1280x720", seconds=30.0)
    recording_id = await import_file(server, source)

    def encoding(body: dict[str, Any]) -> bool:
        ladder = (body.get("processing") or {}).get("ladder", {})
        return ladder.get("status") == "RUNNING" and ladder.get("progress", 0) > 0

    await wait_until(server, recording_id, encoding)
    assert ffmpeg_children()
    async with server.client() as http:
        assert (await http.delete(f"/api/v1/recordings/{recording_id}")).status_code == 204

    async with asyncio.timeout(10):  # the server runs in this event loop: wait without blocking it
        while True:
            if not ffmpeg_children():
                break
            await asyncio.sleep(0.1)
    async with server.container.uow() as tx:
        jobs = await tx.jobs.list_for_recording(recording_id)
    assert {job.kind: job.status.value for job in jobs}["media.ladder"] == "CANCELLED"
    await asyncio.sleep(1.0)  # nothing comes back afterwards
    data_dir = server.container.settings.data_dir
    assert not (data_dir / "blobs" / "recordings" / recording_id).exists()
    assert not [p for p in (data_dir / "work").iterdir() if any(p.iterdir())]


async def test_the_owner_can_reprocess_and_the_new_media_replaces_the_old(server: Server, tmp_path: Path) -> None:
    recording_id = await import_file(server, media_clips.video(tmp_path / "a.mp4"))
    first = await wait_until(server, recording_id, fully_processed)
    _, token = await server.new_user("stranger@example.com")
    async with server.client(token) as http:
        assert (await http.post(f"/api/v1/recordings/{recording_id}/reprocess")).status_code == 404
    async with server.client() as http:
        response = await http.post(f"/api/v1/recordings/{recording_id}/reprocess")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "PROCESSING"

    def replaced(body: dict[str, Any]) -> bool:
        return body["playback"]["hls_url"] != first["playback"]["hls_url"] and fully_processed(body)

    second = await wait_until(server, recording_id, replaced)
    assert second["status"] == "READY"
    assert second["duration_ms"] == first["duration_ms"]
    await fetch(server, second["playback"]["hls_url"])
    async with server.client() as http:
        assert (await http.get(first["playback"]["hls_url"])).status_code == 404  # the old generation is gone


async def test_a_recording_without_an_upload_cannot_be_reprocessed(server: Server) -> None:
    async with server.client() as http:
        created = await http.post("/api/v1/recordings", json={"recording_type": "screen"})
        response = await http.post(f"/api/v1/recordings/{created.json()['id']}/reprocess")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
