"""The real tus clients against a real server: tuspy (Python) and tus-js-client (Node), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from test_tus_protocol import TUS, raw_video, recording_of, uploading_recording
from tusclient.client import TusClient
from tusclient.uploader import Uploader

from conftest import Server

JS_DIR = Path(__file__).parents[1] / "js"
CHUNK = 256 * 1024


@dataclass(frozen=True)
class Source:
    path: Path
    sha256: str
    size: int


@pytest.fixture
def source(tmp_path: Path) -> Source:
    """A few MB of random bytes in a file, not a multiple of the chunk size."""
    data = os.urandom(3 * 1024 * 1024 + 12345)
    path = tmp_path / "talk.webm"
    path.write_bytes(data)
    return Source(path=path, sha256=sha256(data), size=len(data))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- tuspy ---------------------------------------------------------------------------------------------------------


class Sha256Uploader(Uploader):  # type: ignore[misc]
    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def tuspy_upload(
    source: Path, client: TusClient, *, url: str | None = None, stop_at: int | None = None, **options: Any
) -> tuple[str, int]:
    """Run tuspy (blocking: call it in a thread) from the server's offset up to `stop_at`; return URL and offset.

    With `url`, a new uploader resumes that upload, as after a restart of the client: it HEADs for the offset.
    The file is handed over open because tuspy leaks the handles it opens itself.
    """
    uploader_class = options.pop("uploader_class", Uploader)
    with source.open("rb") as stream:
        uploader = uploader_class(file_stream=stream, client=client, url=url, chunk_size=CHUNK, **options)
        uploader.upload(stop_at=stop_at)
        return str(uploader.url), int(uploader.offset)


async def test_tuspy_uploads_and_resumes_through_the_upload_ready_url(server: Server, source: Source) -> None:
    recording_id, url = await uploading_recording(server)
    client = TusClient(url)
    location, offset = await anyio.to_thread.run_sync(
        lambda: tuspy_upload(source.path, client, stop_at=CHUNK * 4, upload_checksum=True, metadata={"a": "b"})
    )
    assert offset == CHUNK * 4
    assert (await recording_of(server, recording_id))["status"] == "UPLOADING"
    _, offset = await anyio.to_thread.run_sync(
        lambda: tuspy_upload(source.path, client, url=location, upload_checksum=True)
    )
    assert offset == source.size
    assert (await recording_of(server, recording_id))["status"] == "PROCESSING"
    assert sha256(await raw_video(server, recording_id)) == source.sha256


async def test_tuspy_imports_a_file_with_a_bearer_token(server: Server, source: Source) -> None:
    client = TusClient(f"{server.url}/api/v1/uploads/", headers={"Authorization": f"Bearer {server.token}"})
    location, _ = await anyio.to_thread.run_sync(
        lambda: tuspy_upload(
            source.path, client, uploader_class=Sha256Uploader, upload_checksum=True, metadata={"filename": "talk.webm"}
        )
    )
    async with httpx.AsyncClient() as http:
        recording_id = (await http.head(location, headers=TUS)).headers["framecast-recording-id"]
    recording = await recording_of(server, recording_id)
    assert (recording["title"], recording["status"]) == ("talk.webm", "PROCESSING")
    assert sha256(await raw_video(server, recording_id)) == source.sha256


# -- tus-js-client -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with tests/js's locked dependencies installed (npm ci) when they are missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are needed to test tus-js-client")
        pytest.skip("node and npm are not installed")
    if not (JS_DIR / "node_modules" / "tus-js-client").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, capture_output=True)
    return node


async def tus_js(node: str, *args: str) -> list[dict[str, Any]]:
    result = await anyio.run_process([node, str(JS_DIR / "upload.mjs"), *args], check=False)
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


async def test_tus_js_client_uploads_and_resumes_an_interrupted_upload(
    server: Server, source: Source, node: str
) -> None:
    recording_id, url = await uploading_recording(server)
    common = ["--endpoint", url, "--file", str(source.path), "--chunk-size", str(CHUNK)]
    [aborted] = await tus_js(node, *common, "--abort-after", str(CHUNK * 3 + 1000))
    assert aborted["event"] == "aborted"
    async with httpx.AsyncClient() as http:
        held = int((await http.head(aborted["url"], headers=TUS)).headers["upload-offset"])
    assert CHUNK * 3 <= held < source.size
    events = await tus_js(node, *common, "--upload-url", aborted["url"])
    assert events[0] == {"event": "head", "offset": held}
    assert events[-1]["event"] == "success"
    assert events[-1]["url"] == aborted["url"]
    assert (await recording_of(server, recording_id))["status"] == "PROCESSING"
    assert sha256(await raw_video(server, recording_id)) == source.sha256


async def test_tus_js_client_parallel_parts_are_concatenated_into_an_import(
    server: Server, source: Source, node: str
) -> None:
    endpoint = f"{server.url}/api/v1/uploads/"
    auth = f"Authorization: Bearer {server.token}"
    events = await tus_js(
        node, "--endpoint", endpoint, "--file", str(source.path), "--header", auth, "--parallel", "3", "--metadata",
        "filename=talk.webm",
    )  # fmt: skip
    assert events[-1]["event"] == "success"
    async with httpx.AsyncClient() as http:
        head = await http.head(events[-1]["url"], headers=TUS)
    assert head.headers["upload-concat"].startswith("final;")
    recording_id = head.headers["framecast-recording-id"]
    assert (await recording_of(server, recording_id))["title"] == "talk.webm"
    assert sha256(await raw_video(server, recording_id)) == source.sha256
