"""The whole pipeline once on each database engine: jobs, leases and the outbox on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_processing import fetch, fully_processed, import_file, wait_until

import media_clips
from conftest import Server
from framecast.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"serve_workers": True, "media_threads": 2})


async def test_an_upload_is_processed_end_to_end(server: Server, tmp_path: Path) -> None:
    recording_id = await import_file(server, media_clips.video(tmp_path / "clip.mp4"))
    body = await wait_until(server, recording_id, fully_processed)
    assert body["status"] == "READY"
    assert "180p/index.m3u8" in (await fetch(server, body["playback"]["hls_url"])).decode()
    async with server.container.uow() as tx:
        jobs = await tx.jobs.list_for_recording(recording_id)
    assert sorted(job.kind for job in jobs) == ["media.download", "media.ladder", "media.pictures", "media.playable"]
    assert all(job.attempts == 1 for job in jobs)
