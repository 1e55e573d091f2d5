"""Uploads to S3: tus through framecast against a plain boto3 multipart upload of the same file to the same bucket.

s3: a file of random bytes (256 MiB; 64 MiB with --quick) is uploaded REPETITIONS times each way, taking turns.
framecast is `framecast serve` with FRAMECAST_STORAGE_URL=s3://BUCKET/framecast, taking bearer-token imports from
httpx, four ways: PATCHes of 8 MiB (the desktop agent's); PATCHes of 64 MiB (the web app's import); the whole file
in one PATCH, as tuspy and tus-js-client send it by default (streamed from the file); and PARALLEL partial uploads
of a share each at once (8 MiB PATCHes), then the final upload that concatenates them (tus-js-client's
parallelUploads). The last PATCH, or the final POST, also finishes
the upload: the multipart upload is completed and copied to the recording's key. The named baseline is boto3's
`upload_file` with its default TransferConfig (8 MiB parts, 10 threads), the way most Python code puts a file in
S3. All are timed from their first request to the stored object, whose sha256 must equal the source's. The S3
service is the one FRAMECAST_TEST_S3_URL names (scripts/services/ceph-rgw.sh starts one and prints the line); a run
uses a bucket of its own, removed afterwards. Target (from the issue): framecast within 20% of boto3 (median MB/s).

    python -m bench s3 [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, BinaryIO

import boto3
import httpx

from bench.bench_uploads import Source, write_source
from bench.runner import (
    ServerProcess,
    Table,
    _owner_token,
    _server_env,
    _spawn,
    _stop,
    _wait_healthy,
    free_port,
)

MIB = 1024 * 1024
MB = 1000 * 1000
GB = 1000 * MB
CHUNK = 8 * MIB
READ = 1 * MIB  # how the single PATCH's body is read from the file
REPETITIONS = 5
QUICK_REPETITIONS = 3
TARGET_RATIO = 0.8
TUS = {"Tus-Resumable": "1.0.0"}
PARALLEL = 4
BIG_CHUNK = 64 * MIB  # the web app's import (frontend/src/library/uploads.ts)
FRAMECAST_PARALLEL = f"framecast, {PARALLEL} parallel partial uploads"
CHUNKS = {  # framecast's ways but the parallel one, with the PATCH size each sends (None: the whole file)
    "framecast, 8 MiB PATCHes": CHUNK,
    "framecast, 64 MiB PATCHes (web app)": BIG_CHUNK,
    "framecast, one PATCH": None,
}
CLIENTS = (*CHUNKS, FRAMECAST_PARALLEL)
BASELINE = "boto3 upload_file"


@dataclass(frozen=True, slots=True)
class S3:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str

    @classmethod
    def from_environment(cls) -> S3:
        url = os.environ.get("FRAMECAST_TEST_S3_URL")
        if not url:
            raise SystemExit(
                "python -m bench s3 needs an S3 service: run scripts/services/ceph-rgw.sh and export the "
                "FRAMECAST_TEST_S3_URL line it prints"
            )
        parsed = httpx.URL(url)
        return cls(f"{parsed.scheme}://{parsed.host}:{parsed.port or 80}", parsed.username, parsed.password)

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name="us-east-1",
        )


@contextlib.contextmanager
def fresh_bucket(s3: S3) -> Iterator[str]:
    client = s3.client()
    name = f"framecast-bench-{secrets.token_hex(4)}"
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        empty(client, name)
        client.delete_bucket(Bucket=name)


def empty(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        if keys := [{"Key": item["Key"]} for item in page.get("Contents", [])]:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


@contextlib.contextmanager
def framecast_on_s3(s3: S3, bucket: str) -> Iterator[ServerProcess]:
    """`framecast serve` storing in `bucket`; no job worker (the uploads are random bytes, not video)."""
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        port, log_path = free_port(), Path(tmp) / "serve.log"
        env = _server_env(Path(tmp) / "data", port)
        env.update(
            FRAMECAST_STORAGE_URL=f"s3://{bucket}/framecast",
            FRAMECAST_S3_ENDPOINT_URL=s3.endpoint_url,
            FRAMECAST_S3_ACCESS_KEY_ID=s3.access_key_id,
            FRAMECAST_S3_SECRET_ACCESS_KEY=s3.secret_access_key,
            FRAMECAST_S3_REGION="us-east-1",
            FRAMECAST_SERVE_WORKERS="false",
            FRAMECAST_MAX_UPLOAD_BYTES=str(4 * 1024 * MIB),
        )
        with log_path.open("wb") as log:
            argv = [sys.executable, "-m", "framecast", "serve"]
            server = ServerProcess("framecast", _spawn(argv, env=env, log=log), f"http://127.0.0.1:{port}", log_path)
            try:
                _wait_healthy(server)
                server.token = _owner_token(server, env)
                yield server
            finally:
                _stop(server.process)


# -- one upload each way -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float
    last_seconds: float = 0.0  # framecast: the request that also finishes the upload (last PATCH, or final POST)
    cpu_seconds: float = 0.0  # framecast: the server's CPU time over the upload


def tus_upload(server: ServerProcess, source: Source, chunk_size: int) -> tuple[Sample, str]:
    """POST, then PATCH the file in `chunk_size` pieces; returns the timing and the upload's id."""
    with _client(server) as http:
        start = time.perf_counter()
        location = _create(http, {"Upload-Length": str(source.size)})
        last = _patch(http, location, source.path, 0, source.size, chunk_size)
        return Sample(time.perf_counter() - start, last), location.rstrip("/").rsplit("/", 1)[-1]


def parallel_tus_upload(server: ServerProcess, source: Source) -> tuple[Sample, str]:
    """PARALLEL partial uploads of a share of the file each, PATCHed in CHUNK pieces at once, then the final upload
    that concatenates them (tus concatenation; tus-js-client's parallelUploads)."""
    share = -(-source.size // PARALLEL)
    ranges = [(start, min(start + share, source.size)) for start in range(0, source.size, share)]

    def part(start: int, end: int) -> str:
        with _client(server) as http:
            location = _create(http, {"Upload-Length": str(end - start), "Upload-Concat": "partial"})
            _patch(http, location, source.path, start, end, CHUNK)
            return location

    start = time.perf_counter()
    with ThreadPoolExecutor(PARALLEL) as pool:
        locations = list(pool.map(lambda r: part(*r), ranges))
    with _client(server) as http:
        began = time.perf_counter()
        location = _create(http, {"Upload-Concat": "final;" + " ".join(locations)})
        done = time.perf_counter()
    return Sample(done - start, done - began), location.rstrip("/").rsplit("/", 1)[-1]


def _client(server: ServerProcess) -> httpx.Client:
    headers = {**TUS, "Authorization": f"Bearer {server.token}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=120)


def _create(http: httpx.Client, headers: dict[str, str]) -> str:
    created = http.post("/api/v1/uploads/", headers=headers)
    if created.status_code != 201:
        raise RuntimeError(f"creation: {created.status_code} {created.text}")
    return str(created.headers["location"])


def _patch(http: httpx.Client, location: str, path: Path, start: int, end: int, chunk_size: int) -> float:
    """PATCH bytes [start, end) of `path` to an upload in `chunk_size` pieces; returns the last PATCH's seconds."""
    offset, last = 0, 0.0
    with path.open("rb") as f:
        f.seek(start)
        while offset < end - start:
            size = min(chunk_size, end - start - offset)
            began = time.perf_counter()
            response = http.patch(
                location,
                content=_read(f, size),
                headers={
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(size),
                },
            )
            if response.status_code != 204:
                raise RuntimeError(f"PATCH at {offset}: {response.status_code} {response.text}")
            offset = int(response.headers["upload-offset"])
            last = time.perf_counter() - began
    return last


def _read(f: BinaryIO, size: int) -> Iterator[bytes]:
    while size > 0 and (piece := f.read(min(READ, size))):
        size -= len(piece)
        yield piece


def boto3_upload(s3: S3, bucket: str, source: Source, key: str) -> Sample:
    client = s3.client()  # made before the clock starts, as framecast's client is
    start = time.perf_counter()
    client.upload_file(str(source.path), bucket, key)
    return Sample(time.perf_counter() - start)


def stored_sha256(client: Any, bucket: str, key: str) -> str:
    digest = hashlib.sha256()
    for chunk in client.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def raw_key(client: Any, bucket: str, upload_id: str) -> str:
    """Where framecast stored a finished import: recordings/{recording_id}/raw/{upload_id} (services/uploads.py)."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="framecast/recordings/")
    keys = [item["Key"] for page in pages for item in page.get("Contents", []) if item["Key"].endswith(upload_id)]
    if len(keys) != 1:
        raise RuntimeError(f"upload {upload_id} finished, but {len(keys)} objects hold it, not one")
    return str(keys[0])


def run_all(s3: S3, source: Source, repetitions: int) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {name: [] for name in (*CLIENTS, BASELINE)}
    with fresh_bucket(s3) as bucket, framecast_on_s3(s3, bucket) as server:
        client = s3.client()
        for repetition in range(repetitions + 1):  # the first round warms both up and is not recorded
            order = [*CLIENTS, BASELINE] if repetition % 2 == 0 else [BASELINE, *reversed(CLIENTS)]
            for name in order:
                if name in CLIENTS:
                    cpu_before = server.cpu_seconds()
                    if name == FRAMECAST_PARALLEL:
                        sample, upload_id = parallel_tus_upload(server, source)
                    else:
                        sample, upload_id = tus_upload(server, source, CHUNKS[name] or source.size)
                    sample = dataclasses.replace(sample, cpu_seconds=server.cpu_seconds() - cpu_before)
                    key = raw_key(client, bucket, upload_id)
                else:
                    key = f"baseline/{repetition}"
                    sample = boto3_upload(s3, bucket, source, key)
                if stored_sha256(client, bucket, key) != source.sha256:
                    raise RuntimeError(f"{name} stored other bytes than the source's under {key}")
                client.delete_object(Bucket=bucket, Key=key)
                if repetition:
                    samples[name].append(sample)
    return samples


# -- the benchmark ---------------------------------------------------------------------------------------------------


def table(source: Source, samples: dict[str, list[Sample]], s3: S3) -> Table:
    def rates(name: str) -> list[float]:
        return [source.size / MB / sample.seconds for sample in samples[name]]

    result = Table(
        f"Upload to S3: one {source.size / MIB:.0f} MiB file, {len(samples[BASELINE])} uploads each way",
        ["client", "p50 MB/s", "min MB/s", "max MB/s", "last request p50 s", "server CPU s/GB", f"x {BASELINE}"],
    )
    base = statistics.median(rates(BASELINE))
    for name in (*CLIENTS, BASELINE):
        runs = rates(name)
        median = statistics.median(runs)
        ours = name in CLIENTS
        last = statistics.median(s.last_seconds for s in samples[name])
        cpu = statistics.median(s.cpu_seconds for s in samples[name]) / (source.size / GB)
        result.add(
            name if ours else f"baseline {name}",
            f"{median:.0f}",
            f"{min(runs):.0f}",
            f"{max(runs):.0f}",
            f"{last:.2f}" if ours else "-",
            f"{cpu:.2f}" if ours else "-",
            f"{median / base:.2f}",
        )
    ratios = {name: statistics.median(rates(name)) / base for name in CLIENTS}
    verdicts = ", ".join(
        f"{name}: {'met' if ratio >= TARGET_RATIO else 'MISSED'} ({ratio:.2f})" for name, ratio in ratios.items()
    )
    result.notes.append(f"Target: framecast >= {TARGET_RATIO:.0%} of boto3 (median MB/s). {verdicts}.")
    result.notes.append(
        f"Clients: httpx {version('httpx')} (one connection); boto3 {version('boto3')} upload_file, default "
        f"TransferConfig. The last request (the last PATCH, or the final upload's POST) also finishes the upload "
        f"(seal, concatenate, copy, clean up, commit). MB = 10^6 bytes. "
        f"S3: {s3.endpoint_url} (one bucket, deleted after)."
    )
    result.notes.append("Every stored object's sha256 equalled the source's; a first round of each is a warm-up.")
    return result


async def s3(quick: bool) -> list[Table]:
    """Upload one file through framecast's tus endpoint and with boto3, to the same S3 service; compare MB/s."""
    service = S3.from_environment()
    size = (64 if quick else 256) * MIB
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        source = await asyncio.to_thread(write_source, Path(tmp) / "talk.webm", size)
        repetitions = QUICK_REPETITIONS if quick else REPETITIONS
        samples = await asyncio.to_thread(run_all, service, source, repetitions)
    return [table(source, samples, service)]
