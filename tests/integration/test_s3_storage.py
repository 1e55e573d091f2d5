"""framecast on S3 storage, against a real S3 service (Ceph radosgw: FRAMECAST_TEST_S3_URL), end to end: the real
tus client uploads into multipart uploads, processing reads and writes the bucket, viewers follow redirects to
presigned URLs, and an upload begun on one instance resumes on another that shares only the database and the bucket.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import httpx
import pytest
from tusclient.client import TusClient
from tusclient.uploader import Uploader

import media_clips
from conftest import S3Service, Server, drive_to_uploading, free_port, server_of, serving
from framecast.adapters.blobs.s3_client import S3Bucket
from framecast.adapters.blobs.s3_rules import (
    Lifecycle,
    apply_cors,
    apply_lifecycle,
    lifecycle_rules,
    media_cors_rule,
    normalized,
)
from framecast.bootstrap import Container, build_container
from framecast.services.accounts import create_token, ensure_user
from framecast.settings import Settings

MIB = 1024 * 1024
CHUNK = 3 * MIB  # tuspy's PATCH size: parts and tails both happen
PROCESSING_TIMEOUT = 120.0


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what is under test here is the storage; the database engines are covered elsewhere."""
    return f"sqlite+aiosqlite:///{tmp_path / 'framecast.db'}"


@pytest.fixture
def settings(settings: Settings, s3_service: S3Service, s3_bucket: str) -> Settings:
    return settings.model_copy(update=s3_service.settings(s3_bucket))


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A real video of about 10 MB (noise does not compress): more than one part, and a tail."""
    return media_clips.video(tmp_path / "talk.mp4", size="640x360", seconds=3.0, extra=("-vf", "noise=alls=60:allf=t"))


def tus_upload(source: Path, url: str, *, stop_at: int | None = None, resume: str | None = None) -> tuple[str, int]:
    """tuspy (blocking: run it in a thread) from the server's offset up to `stop_at`; returns upload URL and offset.

    With `resume`, a new uploader continues that upload, as after a restart of the client: it HEADs for the offset.
    """
    with source.open("rb") as stream:
        uploader = Uploader(file_stream=stream, client=TusClient(url), url=resume, chunk_size=CHUNK)
        uploader.upload(stop_at=stop_at)
        return str(uploader.url), int(uploader.offset)


async def recording(base_url: str, token: str, recording_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as http:
        response = await http.get(f"/api/v1/recordings/{recording_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for(server: Server, recording_id: str, stages: tuple[str, ...]) -> dict[str, Any]:
    async with asyncio.timeout(PROCESSING_TIMEOUT):
        while True:
            body = await recording(server.url, server.token, recording_id)
            assert body["status"] != "FAILED", body["failure_reason"]
            done = body["processing"] or {}
            if body["status"] == "READY" and all(done.get(s, {}).get("status") == "SUCCEEDED" for s in stages):
                return body
            await asyncio.sleep(0.2)


def tampered(url: str) -> str:
    """`url` with its signature changed in one character."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    signature = query["X-Amz-Signature"]
    query["X-Amz-Signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    return urlunsplit(parts._replace(query=urlencode(query)))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- one instance ----------------------------------------------------------------------------------------------------


@pytest.fixture
def processing_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"serve_workers": True, "worker_concurrency": 2, "media_threads": 2})


@pytest.fixture
async def processing_server(processing_settings: Settings) -> AsyncIterator[Server]:
    async with server_of(processing_settings) as server:
        yield server


async def test_a_tus_upload_to_s3_is_processed_and_its_media_are_fetched_through_redirects(
    processing_server: Server, clip: Path, s3_service: S3Service
) -> None:
    server = processing_server
    recording_id, upload_url = await drive_to_uploading(server.url, server.token)
    _, offset = await anyio.to_thread.run_sync(lambda: tus_upload(clip, upload_url))
    assert offset == clip.stat().st_size

    body = await wait_for(server, recording_id, ("playable", "pictures", "ladder", "download"))
    raw = await recording_raw(server, recording_id)
    assert sha256(raw) == sha256(clip.read_bytes())

    async with httpx.AsyncClient() as viewer:
        master = await viewer.get(body["playback"]["hls_url"])
        assert master.status_code == 200  # playlists name their neighbours relatively: served here
        base = body["playback"]["hls_url"].rsplit("/", 1)[0]
        rung = next(line for line in master.text.splitlines() if line.endswith(".m3u8"))
        playlist = await viewer.get(f"{base}/{rung}")
        assert playlist.status_code == 200
        segment_name = next(line for line in playlist.text.splitlines() if line.endswith(".m4s"))
        segment_url = f"{base}/{rung.rsplit('/', 1)[0]}/{segment_name}"

        redirect = await viewer.get(segment_url)
        assert redirect.status_code == 302
        location = redirect.headers["location"]
        assert location.startswith(s3_service.endpoint_url)
        fetched = await viewer.get(location)
        assert fetched.status_code == 200
        assert fetched.headers["content-type"] == "video/iso.segment"
        assert fetched.content[4:8] in (b"styp", b"moof")
        ranged = await viewer.get(location, headers={"Range": "bytes=0-99"})
        assert ranged.status_code == 206
        assert ranged.content == fetched.content[:100]
        assert (await viewer.get(tampered(location))).status_code == 403

        head = await viewer.head(segment_url)
        assert head.status_code == 200  # a presigned URL is for one method: HEAD is answered here
        assert int(head.headers["content-length"]) == len(fetched.content)

        download = await viewer.get(body["playback"]["download_url"], follow_redirects=True)
        assert download.status_code == 200
        assert download.headers["content-disposition"].startswith("attachment;")
        assert download.content[4:8] == b"ftyp"

        poster = await viewer.get(body["playback"]["poster_url"], follow_redirects=True)
        assert poster.headers["content-type"] == "image/jpeg"
        assert poster.content[:3] == b"\xff\xd8\xff"
        storyboard = await viewer.get(body["playback"]["storyboard_url"])
        assert storyboard.status_code == 200  # WebVTT names its sprite relatively: served here
        assert storyboard.text.startswith("WEBVTT")


async def recording_raw(server: Server, recording_id: str) -> bytes:
    stored = await server.container.recordings.get(owner_id=server.user.id, recording_id=recording_id)
    assert stored.upload_key is not None
    return b"".join([chunk async for chunk in server.container.blobs.open(stored.upload_key)])


# -- two instances ---------------------------------------------------------------------------------------------------


@pytest.fixture
async def fleet(settings: Settings, tmp_path: Path) -> AsyncIterator[list[Container]]:
    """Two instances sharing the database and the bucket, each with a data directory of its own."""
    first = await build_container(settings.model_copy(update={"instance_id": "a", "data_dir": tmp_path / "a"}))
    second = await build_container(
        settings.model_copy(update={"instance_id": "b", "data_dir": tmp_path / "b", "port": free_port()})
    )
    try:
        yield [first, second]
    finally:
        await first.aclose()
        await second.aclose()


async def test_an_upload_begun_on_one_instance_resumes_on_the_other(fleet: list[Container], clip: Path) -> None:
    a, b = fleet
    user = await ensure_user(uow=a.uow, clock=a.clock, email="owner@example.com")
    token = await create_token(uow=a.uow, clock=a.clock, user=user)
    size = clip.stat().st_size
    async with serving(a) as url_a, serving(b) as url_b:
        recording_id, upload_url = await drive_to_uploading(url_a, token)
        location, offset = await anyio.to_thread.run_sync(lambda: tus_upload(clip, upload_url, stop_at=3 * CHUNK))
        assert offset == 3 * CHUNK  # a whole part and a tail are in the bucket
        assert not any((a.settings.data_dir / "uploads").glob("*")), "nothing of the upload is on local disk"

        on_b = location.replace(url_a, url_b)
        _, offset = await anyio.to_thread.run_sync(lambda: tus_upload(clip, upload_url, resume=on_b))
        assert offset == size
        assert (await recording(url_b, token, recording_id))["status"] == "PROCESSING"
    stored = await b.recordings.get(owner_id=user.id, recording_id=recording_id)
    assert stored.upload_key is not None
    raw = b"".join([chunk async for chunk in b.blobs.open(stored.upload_key)])
    assert sha256(raw) == sha256(clip.read_bytes())


# -- the bucket's rules ------------------------------------------------------------------------------------------------


async def test_lifecycle_and_cors_rules_round_trip_and_keep_the_buckets_own(
    settings: Settings, s3_client: Any, s3_bucket: str
) -> None:
    client = s3_client
    own_rule = {"ID": "owner-expire-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}
    client.put_bucket_lifecycle_configuration(Bucket=s3_bucket, LifecycleConfiguration={"Rules": [own_rule]})
    configured = settings.model_copy(
        update={"s3_infrequent_after_days": 30, "s3_archive_after_days": 365, "s3_archive_storage_class": "GLACIER"}
    )
    container = await build_container(configured)
    await container.aclose()

    expected = lifecycle_rules(
        "framecast/",
        Lifecycle(
            infrequent_after_days=30,
            infrequent_class="STANDARD_IA",
            archive_after_days=365,
            archive_class="GLACIER",
            abandoned_after_days=3,
        ),
    )
    rules = client.get_bucket_lifecycle_configuration(Bucket=s3_bucket)["Rules"]
    assert normalized(rules) == normalized([*expected, own_rule])
    cors = client.get_bucket_cors(Bucket=s3_bucket)["CORSRules"]
    assert normalized(cors) == normalized([media_cors_rule(settings.resolved_public_url)])

    # Changed settings replace framecast's rules, and only them.
    container = await build_container(configured.model_copy(update={"s3_archive_after_days": None}))
    await container.aclose()
    rules = client.get_bucket_lifecycle_configuration(Bucket=s3_bucket)["Rules"]
    transitions = next(rule for rule in rules if rule["ID"] == "framecast-recordings")["Transitions"]
    assert transitions == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    assert own_rule in rules


async def test_transitions_out_of_order_are_refused_before_anything_is_written(
    settings: Settings, s3_client: Any, s3_bucket: str
) -> None:
    with pytest.raises(ValueError, match="ARCHIVE_AFTER_DAYS"):
        await build_container(settings.model_copy(update={"s3_infrequent_after_days": 60, "s3_archive_after_days": 30}))
    with pytest.raises(s3_client.exceptions.ClientError, match="NoSuchLifecycleConfiguration"):
        s3_client.get_bucket_lifecycle_configuration(Bucket=s3_bucket)


async def test_rules_already_in_place_are_not_written_again(s3_service: S3Service, s3_bucket: str) -> None:
    bucket = await S3Bucket.connect(s3_service.options(s3_bucket, prefix="framecast/"))
    try:
        rules = lifecycle_rules(
            bucket.prefix,
            Lifecycle(
                infrequent_after_days=30,
                infrequent_class="STANDARD_IA",
                archive_after_days=None,
                archive_class="GLACIER_IR",
                abandoned_after_days=3,
            ),
        )
        assert await apply_lifecycle(bucket, rules) is True
        assert await apply_lifecycle(bucket, rules) is False
        cors = [media_cors_rule("https://video.example.com")]
        assert await apply_cors(bucket, cors) is True
        assert await apply_cors(bucket, cors) is False
    finally:
        await bucket.aclose()
