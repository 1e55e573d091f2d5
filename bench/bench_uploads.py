"""tus uploads: the throughput of one large file sent with the real tuspy client.

upload_throughput: a file of random bytes (500 MB; 100 MB with --quick) goes up with tuspy's Uploader at each chunk
size, REPETITIONS times to each server, the servers taking turns. framecast is `framecast serve` (SQLite default)
taking a bearer-token import; the named baseline is the reference Node server, @tus/server with @tus/file-store
(bench/tus_reference, installed with `npm ci` when its node_modules is missing). After every upload the stored
bytes are hashed and must equal the source. Target (from the issue): framecast's throughput at least @tus/server's.

    python -m bench upload_throughput [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from tusclient.client import TusClient

from bench.runner import HOST, ServerProcess, Table, _spawn, _stop, framecast_server, free_port

REFERENCE_DIR = Path(__file__).resolve().parent / "tus_reference"
BASELINE = "@tus/server"
FRAMECAST = "framecast"
MB = 1000 * 1000
GB = 1000 * MB
MIB = 1024 * 1024
CHUNK_SIZES = (1 * MIB, 8 * MIB, 64 * MIB)  # small chunks expose the fixed cost of each PATCH
REPETITIONS = 3
WRITE_PIECE = 8 * MIB  # how the source is written and the stored bytes are hashed
WARM_UP_BYTES = 4 * MIB
WARM_UP_CHUNK = MIB


@dataclass(frozen=True, slots=True)
class Source:
    path: Path
    size: int
    sha256: str


@dataclass
class Target:
    """A tus server under test: where uploads are created, with which headers, and where a finished one is stored."""

    name: str
    server: ServerProcess
    creation_url: str
    stored: Callable[[str], Path]  # upload URL -> the file holding its bytes once it is complete
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Sample:
    """One upload: wall seconds from the creation POST to the last PATCH's answer, and the server's CPU seconds."""

    seconds: float
    cpu_seconds: float


# -- the source file -------------------------------------------------------------------------------------------------


def write_source(path: Path, size: int) -> Source:
    """Fill `path` with `size` random bytes; returns it with its sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for start in range(0, size, WRITE_PIECE):
            piece = os.urandom(min(WRITE_PIECE, size - start))
            digest.update(piece)
            out.write(piece)
    return Source(path, size, digest.hexdigest())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while piece := f.read(WRITE_PIECE):
            digest.update(piece)
    return digest.hexdigest()


# -- the servers -----------------------------------------------------------------------------------------------------


def reference_node() -> str:
    """The node binary, with bench/tus_reference's locked dependencies installed (npm ci) when they are missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise SystemExit("upload_throughput needs node (20.19 or later) and npm for the reference @tus/server")
    if not (REFERENCE_DIR / "node_modules" / "@tus" / "server").is_dir():
        argv = [npm, "ci", "--no-audit", "--no-fund"]
        subprocess.run(argv, cwd=REFERENCE_DIR, check=True, stdout=subprocess.DEVNULL)
    return node


def reference_versions(node: str) -> str:
    def installed(package: str) -> str:
        manifest = REFERENCE_DIR / "node_modules" / package / "package.json"
        return f"{package} {json.loads(manifest.read_text())['version']}"

    node_version = subprocess.run([node, "--version"], check=True, capture_output=True, text=True).stdout.strip()
    return f"{installed('@tus/server')}, {installed('@tus/file-store')} on Node {node_version}"


@contextlib.contextmanager
def reference_target(node: str) -> Iterator[Target]:
    """`node server.mjs PORT DIR` on a free port, storing uploads in a fresh directory; yields it listening."""
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        port, store, log_path = free_port(), Path(tmp) / "files", Path(tmp) / "tus-server.log"
        argv = [node, str(REFERENCE_DIR / "server.mjs"), str(port), str(store)]
        with log_path.open("wb") as log:
            process = _spawn(argv, env=dict(os.environ), log=log)
            server = ServerProcess(BASELINE, process, f"http://{HOST}:{port}", log_path)
            try:
                assert process.stdout is not None
                if not process.stdout.readline():
                    raise RuntimeError(f"{BASELINE} exited before listening:\n{server.log_tail()}")
                # @tus/file-store keeps an upload's bytes in a file named by its id.
                yield Target(BASELINE, server, f"{server.url}/files/", lambda url: store / upload_id(url))
            finally:
                _stop(process)


@contextlib.contextmanager
def framecast_target(launcher: Sequence[str] = ("-m", "framecast")) -> Iterator[Target]:
    """`framecast serve` taking bearer-token imports (an upload without recording_id metadata makes a recording).

    `launcher` is passed to runner.framecast_server: a wrapper script there runs the server under a profiler.
    """
    with framecast_server(launcher) as server:
        # runner.framecast_server keeps DATA_DIR beside the server log; a finished upload is the blob
        # recordings/{recording_id}/raw/{upload_id} (services/uploads.py, raw_key).
        blobs = server.log_path.parent / "data" / "blobs" / "recordings"

        def stored(url: str) -> Path:
            found = list(blobs.glob(f"*/raw/{upload_id(url)}"))
            if len(found) != 1:
                raise RuntimeError(f"{url} finished, but {len(found)} blobs under {blobs} hold it, not one")
            return found[0]

        headers = {"Authorization": f"Bearer {server.token}"}
        yield Target(FRAMECAST, server, f"{server.url}/api/v1/uploads/", stored, headers)


def upload_id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


# -- uploading -------------------------------------------------------------------------------------------------------


def tuspy_upload(target: Target, path: Path, chunk_size: int) -> str:
    """Upload `path` whole with tuspy (blocking); returns the upload URL. No retries: a failed request fails the run.

    The file is handed over open because tuspy leaks the handles it opens itself.
    """
    client = TusClient(target.creation_url, headers=target.headers)
    with path.open("rb") as stream:
        uploader = client.uploader(file_stream=stream, chunk_size=chunk_size, metadata={"filename": path.name})
        uploader.upload()
        return str(uploader.url)


def verified_upload(target: Target, source: Source, chunk_size: int) -> Sample:
    """Time one upload of `source`, check the stored bytes' sha256, then delete them (to keep the page cache small)."""
    cpu_before = target.server.cpu_seconds()
    start = time.perf_counter()
    url = tuspy_upload(target, source.path, chunk_size)
    seconds = time.perf_counter() - start
    cpu_seconds = target.server.cpu_seconds() - cpu_before
    stored = target.stored(url)
    if (got := file_sha256(stored)) != source.sha256:
        raise RuntimeError(f"{target.name} stored {stored.stat().st_size} bytes with sha256 {got}, not the source's")
    stored.unlink()
    return Sample(seconds, cpu_seconds)


def run_all(targets: Sequence[Target], source: Source, warm_up: Path) -> dict[tuple[str, int], list[Sample]]:
    """Every chunk size, REPETITIONS uploads per server; the servers alternate who goes first."""
    for target in targets:
        tuspy_upload(target, warm_up, WARM_UP_CHUNK)
    samples: dict[tuple[str, int], list[Sample]] = {}
    for chunk_size in CHUNK_SIZES:
        for repetition in range(REPETITIONS):
            turn = targets if repetition % 2 == 0 else list(reversed(targets))
            for target in turn:
                sample = verified_upload(target, source, chunk_size)
                samples.setdefault((target.name, chunk_size), []).append(sample)
    return samples


# -- the benchmark ---------------------------------------------------------------------------------------------------


def mb_per_s(size: int, samples: Sequence[Sample]) -> list[float]:
    return [size / MB / s.seconds for s in samples]


def throughput_table(source: Source, samples: dict[tuple[str, int], list[Sample]], reference: str) -> Table:
    table = Table(
        f"tus upload throughput: one {source.size / MB:.0f} MB file with tuspy {version('tuspy')}, "
        f"{REPETITIONS} uploads per server and chunk size",
        ["server", "chunk MiB", "median MB/s", "min MB/s", "max MB/s", "server CPU s/GB", f"x {BASELINE}"],
    )
    ratios: dict[int, float] = {}  # chunk size -> framecast median / baseline median
    for chunk_size in CHUNK_SIZES:
        base = statistics.median(mb_per_s(source.size, samples[BASELINE, chunk_size]))
        for name in (FRAMECAST, BASELINE):
            runs = samples[name, chunk_size]
            rates = mb_per_s(source.size, runs)
            median = statistics.median(rates)
            cpu = statistics.median(s.cpu_seconds for s in runs) / (source.size / GB)
            label = name if name == FRAMECAST else f"baseline {name}"
            speeds = (f"{v:.0f}" for v in (median, min(rates), max(rates)))
            table.add(label, str(chunk_size // MIB), *speeds, f"{cpu:.2f}", f"{median / base:.2f}")
            ratios.setdefault(chunk_size, median / base)
    verdict = "met" if all(r >= 1 for r in ratios.values()) else "MISSED"
    each = ", ".join(f"{r:.2f} at {chunk // MIB} MiB" for chunk, r in ratios.items())
    table.notes.append(f"Target framecast >= {BASELINE} (median MB/s, every chunk size): {verdict} ({each}).")
    count = len(CHUNK_SIZES) * REPETITIONS * 2
    table.notes.append(f"The stored bytes' sha256 equalled the source's after all {count} uploads.")
    table.notes.append(f"MB = 10^6 bytes, from the creation POST to the last PATCH's answer. Baseline: {reference}.")
    table.notes.append(
        "framecast fsyncs each PATCH before answering, @tus/file-store never does: the kernel writes its pages back "
        "later, outside its CPU time."
    )
    return table


async def upload_throughput(quick: bool) -> list[Table]:
    """Upload one large file with tuspy to framecast and to @tus/server at each chunk size; compare MB/s."""
    size = (100 if quick else 500) * MB
    node = reference_node()
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        source = await asyncio.to_thread(write_source, Path(tmp) / "talk.webm", size)
        warm_up = (await asyncio.to_thread(write_source, Path(tmp) / "warm-up.webm", WARM_UP_BYTES)).path
        with framecast_target() as framecast, reference_target(node) as reference:
            samples = await asyncio.to_thread(run_all, [framecast, reference], source, warm_up)
    return [throughput_table(source, samples, reference_versions(node))]
