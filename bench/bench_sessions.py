"""Control-channel sessions: how fast one starts, and what an idle one costs the server.

session_start: POST /api/v1/recordings -> READY on the WebSocket over N sequential sessions from one client (plus
throughput, sequential and concurrent, and server CPU per session). Target: p99 under 50 ms.

idle_memory: server RSS (process and children) before and after N WebSockets connect, hear READY and idle.
Target: within 2x the named baseline per idle session.

The named baseline is a bare `websockets` server (bench/baseline_echo.py). Two reference servers sit between it and
framecast (bench/baseline_asgi.py): uvicorn configured as `framecast serve` with a raw ASGI app, and with a
one-route FastAPI app. They split framecast's cost into server, framework and framecast's own code.

    python -m bench session_start idle_memory [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from bench.runner import Latency, ServerProcess, Table, framecast_server, python_server, require_descriptors

RECORDINGS = "/api/v1/recordings"
BODY = {"recording_type": "screen", "title": "bench"}
WARM_UP = 20
CONCURRENCY = 16
CREATE_CONCURRENCY = 8
CONNECT_CONCURRENCY = 32
SETTLE_SECONDS = 2.0
START_TARGET_P99_MS = 50.0
MEMORY_TARGET_RATIO = 2.0

BASELINE = "websockets-bare"
# name -> (module, args) of the servers framecast is compared with; BASELINE first.
REFERENCES: dict[str, tuple[str, tuple[str, ...]]] = {
    BASELINE: ("bench.baseline_echo", ()),
    "uvicorn + raw ASGI app": ("bench.baseline_asgi", ("--app", "asgi")),
    "uvicorn + FastAPI route": ("bench.baseline_asgi", ("--app", "fastapi")),
}


def reference_server(name: str) -> contextlib.AbstractContextManager[ServerProcess]:
    module, args = REFERENCES[name]
    return python_server(name, module, *args)


# -- client side ---------------------------------------------------------------------------------------------------


async def open_control(url: str) -> ClientConnection:
    """Connect as the recording agent does (no compression) and wait for READY; client pings are off."""
    ws = await websockets.connect(url, compression=None, ping_interval=None, open_timeout=30, max_size=2**20)
    try:
        frame = json.loads(await ws.recv(decode=True))
    except BaseException:
        ws.transport.abort()
        raise
    if frame.get("type") != "READY":
        ws.transport.abort()
        raise RuntimeError(f"expected READY first, got {frame!r}")
    return ws


def api_client(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
        limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY),
    )


async def create_recording(http: httpx.AsyncClient) -> str:
    """POST a recording; returns its ws_url."""
    response = await http.post(RECORDINGS, json=BODY)
    if response.status_code != 201:
        raise RuntimeError(f"POST {RECORDINGS} answered {response.status_code}: {response.text}")
    return str(response.json()["ws_url"])


async def timed_session(http: httpx.AsyncClient) -> tuple[float, float]:
    """Start one session; returns (POST seconds, WebSocket connect -> READY seconds). Closing is not timed."""
    start = time.perf_counter()
    ws_url = await create_recording(http)
    posted = time.perf_counter()
    ws = await open_control(ws_url)
    ready = time.perf_counter()
    await ws.close()
    return posted - start, ready - posted


async def timed_first_frame(url: str) -> float:
    start = time.perf_counter()
    ws = await open_control(url)
    elapsed = time.perf_counter() - start
    await ws.close()
    return elapsed


async def bounded(count: int, concurrency: int, job: Callable[[int], Awaitable[object]]) -> float:
    """Run job(0..count-1) at most `concurrency` at a time; returns wall seconds."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> object:
        async with gate:
            return await job(i)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - start


@contextlib.contextmanager
def cpu_meter(server: ServerProcess) -> Iterator[list[float]]:
    """Yields a list that holds, after the block, the server CPU seconds spent inside it."""
    spent: list[float] = []
    before = server.cpu_seconds()
    yield spent
    spent.append(server.cpu_seconds() - before)


# -- session_start ------------------------------------------------------------------------------------------------


@dataclass
class StartRun:
    """framecast's figures: per-session durations (s), loop wall times (s), server CPU (s) of the sequential loop."""

    post: list[float]
    ready: list[float]
    healthz: list[float]
    sequential_seconds: float
    concurrent_seconds: float
    cpu_seconds: float

    @property
    def total(self) -> list[float]:
        return [p + r for p, r in zip(self.post, self.ready, strict=True)]


@dataclass
class ConnectRun:
    """A reference server's connect -> first frame durations (s), their wall time and server CPU (s)."""

    samples: list[float]
    seconds: float
    cpu_seconds: float


async def _healthz_times(http: httpx.AsyncClient, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        (await http.get("/healthz")).raise_for_status()
        samples.append(time.perf_counter() - start)
    return samples


async def _framecast_start(n: int) -> StartRun:
    with framecast_server() as server:
        async with api_client(server) as http:
            for _ in range(WARM_UP):
                await timed_session(http)
            healthz = await _healthz_times(http, n)
            start = time.perf_counter()
            with cpu_meter(server) as cpu:
                pairs = [await timed_session(http) for _ in range(n)]
            sequential = time.perf_counter() - start
            concurrent = await bounded(n, CONCURRENCY, lambda _: timed_session(http))
    post, ready = [p for p, _ in pairs], [r for _, r in pairs]
    return StartRun(post, ready, healthz, sequential, concurrent, cpu[0])


async def _reference_start(name: str, n: int) -> ConnectRun:
    with reference_server(name) as server:
        for _ in range(WARM_UP):
            await timed_first_frame(server.ws_url)
        start = time.perf_counter()
        with cpu_meter(server) as cpu:
            samples = [await timed_first_frame(server.ws_url) for _ in range(n)]
        return ConnectRun(samples, time.perf_counter() - start, cpu[0])


def _latency_table(n: int, run: StartRun, references: dict[str, ConnectRun]) -> Table:
    table = Table(
        f"Session start latency, {n} sequential sessions from one client (ms)",
        ["measure", "n", "p50", "p95", "p99", "max", "server CPU ms"],
    )
    total = Latency.of(run.total)
    cpu_ms = f"{run.cpu_seconds / n * 1000:.2f}"
    table.add("framecast: POST /recordings -> READY", *total.cells(), cpu_ms)
    table.add("framecast part: POST /api/v1/recordings", *Latency.of(run.post).cells(), "")
    table.add("framecast part: WS connect -> READY", *Latency.of(run.ready).cells(), "")
    table.add("framecast: GET /healthz (HTTP floor)", *Latency.of(run.healthz).cells(), "")
    for name, ref in references.items():
        label = f"{'baseline' if name == BASELINE else 'reference'} {name}: WS connect -> first frame"
        table.add(label, *Latency.of(ref.samples).cells(), f"{ref.cpu_seconds / n * 1000:.2f}")
    verdict = "met" if total.p99 < START_TARGET_P99_MS else "MISSED"
    ratio = statistics.median(run.ready) / statistics.median(references[BASELINE].samples)
    table.notes.append(f"Target p99 < {START_TARGET_P99_MS:.0f} ms: {verdict} (p99 = {total.p99:.2f} ms).")
    table.notes.append(f"framecast WS connect -> READY p50 is {ratio:.1f}x the {BASELINE} baseline's.")
    table.notes.append("server CPU ms: the server's user+system CPU per session (or connection), closing included.")
    return table


def _throughput_table(n: int, run: StartRun, references: dict[str, ConnectRun]) -> Table:
    table = Table("Session start throughput", ["workload", "sessions", "wall s", "sessions/s"])
    rows = [
        ("framecast, sequential (1 client)", run.sequential_seconds),
        (f"framecast, {CONCURRENCY} concurrent", run.concurrent_seconds),
        (f"baseline {BASELINE}, sequential connect", references[BASELINE].seconds),
    ]
    for name, seconds in rows:
        table.add(name, str(n), f"{seconds:.2f}", f"{n / seconds:.0f}")
    return table


async def session_start(quick: bool) -> list[Table]:
    """Time POST -> READY over N sequential sessions; compare WS connect -> first frame with the references."""
    n = 200 if quick else 1000
    run = await _framecast_start(n)
    references = {name: await _reference_start(name, n) for name in REFERENCES}
    return [_latency_table(n, run, references), _throughput_table(n, run, references)]


# -- idle_memory ----------------------------------------------------------------------------------------------------


@dataclass
class MemoryRun:
    """Server RSS in bytes: warmed up and empty, before the connections, with every connection idle."""

    sessions: int
    empty: int
    before_connect: int
    connected: int
    connect_seconds: float

    def per_connection_kib(self) -> float:
        return (self.connected - self.before_connect) / self.sessions / 1024

    def per_session_kib(self) -> float:
        return (self.connected - self.empty) / self.sessions / 1024


async def settled_rss(server: ServerProcess) -> int:
    """RSS once the server has gone quiet: the median of three samples after a pause."""
    await asyncio.sleep(SETTLE_SECONDS)
    samples = []
    for _ in range(3):
        samples.append(server.rss_bytes())
        await asyncio.sleep(0.5)
    return int(statistics.median(samples))


async def hold_idle(urls: Sequence[str]) -> tuple[list[ClientConnection], float]:
    """Open one control connection per URL, each past READY; returns them (idle) and the wall seconds taken."""
    connections: list[ClientConnection] = []

    async def connect(i: int) -> None:
        connections.append(await open_control(urls[i]))

    seconds = await bounded(len(urls), CONNECT_CONCURRENCY, connect)
    return connections, seconds


async def measure_idle(server: ServerProcess, urls: Sequence[str], empty: int | None = None) -> MemoryRun:
    """Connect to every URL, let the connections idle, and read the server's RSS; then drop them all at once.

    `empty` is the RSS before anything but the connections was added (default: just before connecting).
    """
    before = await settled_rss(server)
    connections, seconds = await hold_idle(urls)
    try:
        connected = await settled_rss(server)
    finally:
        for ws in connections:
            ws.transport.abort()  # a graceful close of thousands is not what is measured
    return MemoryRun(len(urls), before if empty is None else empty, before, connected, seconds)


async def _framecast_idle(n: int) -> MemoryRun:
    with framecast_server() as server:
        async with api_client(server) as http:
            for _ in range(WARM_UP):
                await timed_session(http)
            empty = await settled_rss(server)
            urls: list[str] = [""] * n

            async def create(i: int) -> None:
                urls[i] = await create_recording(http)

            await bounded(n, CREATE_CONCURRENCY, create)
        return await measure_idle(server, urls, empty)


async def _reference_idle(name: str, n: int) -> MemoryRun:
    with reference_server(name) as server:
        for _ in range(WARM_UP):
            await timed_first_frame(server.ws_url)
        return await measure_idle(server, [server.ws_url] * n)


def _memory_table(framecast: MemoryRun, references: dict[str, MemoryRun]) -> Table:
    table = Table(
        f"Idle session memory, {framecast.sessions} connected sessions (server RSS incl. children)",
        ["server: measured", "RSS before MiB", "RSS after MiB", "connect s", "KiB/session", f"x {BASELINE}"],
    )
    base_kib = references[BASELINE].per_connection_kib()
    rows = [
        ("framecast: idle connection", framecast, framecast.before_connect, framecast.per_connection_kib()),
        ("framecast: recording + idle connection", framecast, framecast.empty, framecast.per_session_kib()),
    ]
    for name, run in references.items():
        label = f"{'baseline' if name == BASELINE else 'reference'} {name}: idle connection"
        rows.append((label, run, run.before_connect, run.per_connection_kib()))
    for label, run, before, kib in rows:
        cells = (before / 2**20, run.connected / 2**20, run.connect_seconds, kib)
        table.add(label, *(f"{v:.1f}" for v in cells), f"{kib / base_kib:.2f}")
    ratio = framecast.per_connection_kib() / base_kib
    verdict = "met" if ratio <= MEMORY_TARGET_RATIO else "MISSED"
    table.notes.append(
        f"Target <= {MEMORY_TARGET_RATIO:.0f}x {BASELINE} per idle connection: {verdict} ({ratio:.2f}x)."
    )
    return table


async def idle_memory(quick: bool) -> list[Table]:
    """Measure server RSS per idle connected session against the references holding as many connections."""
    n = 1000 if quick else 5000
    require_descriptors(n)
    framecast = await _framecast_idle(n)
    references = {name: await _reference_idle(name, n) for name in REFERENCES}
    return [_memory_table(framecast, references)]
