"""Scale-out: 10,000 recording sessions held at once by two `framecast serve` instances on PostgreSQL and Redis.

sessions: two instances (FRAMECAST_SERVE_WORKERS=false, sweeper at its default) share a fresh PostgreSQL database
and a fresh Redis key prefix. Client processes (bench/scale_clients.py) start N sessions, a few at a time each:
POST /api/v1/recordings, connect to ws_url (for a quarter of them rewritten to the instance that did not create it),
READY, RECORDING_STARTED -> ACK. Measured: the time to start them all and the sustained rate, server RSS per session
held; then, with every session held, PAUSED/RESUMED -> ACK round trips on a sample of sessions, once per background
load level (none, then PAUSED/RESUMED on the other sessions at LOAD_LEVELS, with cross-instance stops: POST .../stop
on the instance not holding the connection -> FORCE_STOP on the socket).

The named baseline, in the same run, with the same client code: two bare `websockets` echo servers
(bench/baseline_echo.py), one per instance; their echo stands in for ACK.

Target (from the issue): 10,000 sessions held with a control round trip p99 under 100 ms.

    python -m bench sessions [--quick]
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs without the types-psutil package
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.bench_sessions import BASELINE, api_client, settled_rss, timed_first_frame, timed_session
from bench.runner import (
    HOST,
    Latency,
    ServerProcess,
    Table,
    _owner_token,
    _server_env,
    _spawn,
    _stop,
    _wait_healthy,
    free_port,
    percentile,
    python_server,
    require_descriptors,
)
from bench.scale_clients import START_CONCURRENCY, ClientPool, PhaseReport, Plan, StartReport, Target

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
INSTANCES = 2
CLIENT_PROCESSES = 4
WARM_UP = 20  # sessions per instance before the empty server's RSS is read
PROBES_PER_PROCESS = 25
PROBE_RATE = 10.0  # probe round trips per second per client process
# Background PAUSED/RESUMED per held session per second, one measuring phase each: 0.01 is one message per session
# every 100 s, 100 messages/s for 10,000 sessions.
LOAD_LEVELS = (0.0, 0.005, 0.01, 0.02)
STOP_RATE = 1.0  # cross-instance stops per second per client process, in the phases with background load
TARGET_SESSIONS = 10_000
TARGET_P99_MS = 100.0


@dataclass
class Phase:
    """One measuring phase: its background load (messages/s), what the clients saw, and CPU use (% of one core)."""

    load: float
    seconds: float
    reports: list[PhaseReport]
    server_cpu: float
    machine_cpu: float

    def series(self, name: str) -> list[float]:
        return [value for report in self.reports for value in getattr(report, name)]


@dataclass
class FleetRun:
    """What one server kind (framecast or the baseline) did with `sessions` sessions."""

    sessions: int
    rss_before: list[int]
    starts: list[StartReport] = field(default_factory=list)
    rss_after: list[int] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    cpu_start_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def held(self) -> int:
        return sum(len(r.ack) for r in self.starts)

    def connect_seconds(self) -> float:
        return max(max(r.done) for r in self.starts) - min(r.began for r in self.starts)

    def sustained_rate(self) -> float:
        """Sessions started per second between the 10th and 90th percentile of completions (ramp-up and tail cut)."""
        done = [mark for r in self.starts for mark in r.done]
        return 0.8 * len(done) / (percentile(done, 90) - percentile(done, 10))

    def start_latency(self) -> Latency:
        return Latency.of([p + r + a for s in self.starts for p, r, a in zip(s.post, s.ready, s.ack, strict=True)])

    def per_session_kib(self) -> list[float]:
        per_instance = self.held / INSTANCES
        return [(a - b) / per_instance / 1024 for a, b in zip(self.rss_after, self.rss_before, strict=True)]

    def errors(self) -> list[str]:
        """Client-side failures, counted by phase, with the first message of each kind seen."""
        phases = {"start": [r.errors for r in self.starts]}
        phases |= {f"{p.load:.0f}/s": [r.errors for r in p.reports] for p in self.phases}
        counts = {name: sum(e.count for e in errors) for name, errors in phases.items()}
        if not any(counts.values()):
            return []
        examples = {m for errors in phases.values() for e in errors for m in e.first}
        where = ", ".join(f"{n} in {name}" for name, n in counts.items() if n)
        return [f"client errors: {where}; seen: {'; '.join(sorted(examples))}"]


def plans(sessions: int, quick: bool) -> list[Plan]:
    """One plan per load level, per client process: probes always, background load and stops from the second on."""
    seconds = 10.0 if quick else 20.0
    return [
        Plan(
            seconds=seconds,
            probe_rate=PROBE_RATE,
            load_rate=sessions * level / CLIENT_PROCESSES,
            stop_rate=STOP_RATE if level else 0.0,
            probe_sessions=PROBES_PER_PROCESS,
        )
        for level in LOAD_LEVELS
    ]


# -- shared services -------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for this run (the servers migrate it); dropped afterwards."""
    name = f"framecast_bench_{secrets.token_hex(4)}"
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def postgres_connections(database_url: str) -> int:
    """Connections open to the database of `database_url` (the instances' pools, as PostgreSQL counts them)."""
    admin = create_async_engine(POSTGRES_ADMIN_URL)
    try:
        async with admin.connect() as conn:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name")
            return int((await conn.execute(query, {"name": database_url.rsplit("/", 1)[1]})).scalar_one())
    finally:
        await admin.dispose()


@contextlib.asynccontextmanager
async def redis_prefix() -> AsyncIterator[tuple[str, Redis]]:
    """A key prefix no one else uses, and a client; the prefix's keys are deleted afterwards."""
    prefix = f"framecast-bench-{secrets.token_hex(4)}:"
    client = Redis.from_url(REDIS_URL)
    try:
        yield prefix, client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@contextlib.contextmanager
def fleet_instance(settings: dict[str, str], *, token: str = "") -> Iterator[ServerProcess]:
    """runner.framecast_server with the fleet's shared settings (database, Redis, secret key) on top."""
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        port, log_path = free_port(), Path(tmp) / "serve.log"
        env = _server_env(Path(tmp) / "data", port) | settings
        argv = [sys.executable, "-m", "framecast", "serve"]
        with log_path.open("wb") as log:
            server = ServerProcess("framecast", _spawn(argv, env=env, log=log), f"http://{HOST}:{port}", log_path)
            try:
                _wait_healthy(server)
                server.token = token or _owner_token(server, env)
                yield server
            finally:
                _stop(server.process)


def cpu_seconds(servers: Sequence[ServerProcess]) -> float:
    return sum(server.cpu_seconds() for server in servers)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (every process, ours and anyone else's)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def logged_errors(server: ServerProcess) -> str | None:
    """How many tracebacks the server logged, and the last one's final line, if any."""
    lines = server.log_path.read_text(errors="replace").splitlines()
    count = sum(line.startswith("Traceback") for line in lines)
    if not count:
        return None
    last = next((line for line in reversed(lines) if line and not line.startswith((" ", "Traceback"))), "")
    return f"{count} tracebacks in the log, the last: {last}"


# -- the runs --------------------------------------------------------------------------------------------------------


async def exercise(pool: ClientPool, servers: Sequence[ServerProcess], run: FleetRun, phases: list[Plan]) -> None:
    """Start every session, read RSS once they idle, then run the measuring phases one after another."""
    cpu = cpu_seconds(servers)
    run.starts = await pool.ask("start")
    run.cpu_start_seconds = cpu_seconds(servers) - cpu
    run.rss_after = [await settled_rss(server) for server in servers]
    for plan in phases:
        cpu, machine, wall = cpu_seconds(servers), machine_busy_seconds(), time.perf_counter()
        reports = await pool.ask("measure", plan)
        wall = time.perf_counter() - wall
        server_cpu = 100 * (cpu_seconds(servers) - cpu) / wall
        machine_cpu = 100 * (machine_busy_seconds() - machine) / wall
        run.phases.append(Phase(plan.load_rate * CLIENT_PROCESSES, plan.seconds, reports, server_cpu, machine_cpu))
    run.notes += [f"{server.name} {i + 1}: {e}" for i, server in enumerate(servers) if (e := logged_errors(server))]


async def framecast_fleet(sessions: int, quick: bool) -> FleetRun:
    async with postgres_database() as database_url, redis_prefix() as (prefix, redis):
        settings = {
            "FRAMECAST_DATABASE_URL": database_url,
            "FRAMECAST_REDIS_URL": REDIS_URL,
            "FRAMECAST_REDIS_PREFIX": prefix,
            "FRAMECAST_SERVE_WORKERS": "false",
            # One key for the fleet: a ws_url ticket made by one instance is honoured by the other.
            "FRAMECAST_SECRET_KEY": "bench-" + secrets.token_hex(16),
        }
        with fleet_instance(settings) as first, fleet_instance(settings, token=first.token) as second:
            servers = [first, second]
            target = Target(api_urls=tuple(s.url for s in servers), token=first.token)
            pool = ClientPool(target, sessions=sessions, processes=CLIENT_PROCESSES)
            try:
                for server in servers:
                    async with api_client(server) as http:
                        for _ in range(WARM_UP):
                            await timed_session(http)
                run = FleetRun(sessions, rss_before=[await settled_rss(server) for server in servers])
                await exercise(pool, servers, run, plans(sessions, quick))
                run.notes.append(await describe_backends(database_url, redis, prefix))
            finally:
                await pool.close()
    return run


async def describe_backends(database_url: str, redis: Redis, prefix: str) -> str:
    """PostgreSQL's version, connection limit and connections in use by the fleet; Redis channels subscribed."""
    admin = create_async_engine(POSTGRES_ADMIN_URL)
    try:
        async with admin.connect() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
            limit = (await conn.execute(text("SHOW max_connections"))).scalar_one()
            query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name")
            used = (await conn.execute(query, {"name": database_url.rsplit("/", 1)[1]})).scalar_one()
    finally:
        await admin.dispose()
    channels = len(await redis.pubsub_channels(f"{prefix}control:*"))
    return (
        f"Backends (always, whatever the machine line says): PostgreSQL {version.split()[0]} (max_connections "
        f"{limit}; each instance pools 10 connections "
        f"+ 20 overflow), {used} connections open to the bench database at the end; Redis with {channels} "
        "control channels subscribed at the end (one pub/sub connection per instance)."
    )


async def baseline_fleet(sessions: int, quick: bool) -> FleetRun:
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(python_server(BASELINE, "bench.baseline_echo")) for _ in range(INSTANCES)]
        target = Target(ws_urls=tuple(s.ws_url for s in servers))
        pool = ClientPool(target, sessions=sessions, processes=CLIENT_PROCESSES)
        try:
            for server in servers:
                for _ in range(WARM_UP):
                    await timed_first_frame(server.ws_url)
            run = FleetRun(sessions, rss_before=[await settled_rss(server) for server in servers])
            await exercise(pool, servers, run, plans(sessions, quick))  # the clients make no stops here
        finally:
            await pool.close()
    return run


# -- tables ----------------------------------------------------------------------------------------------------------


def _start_table(framecast: FleetRun, baseline: FleetRun) -> Table:
    table = Table(
        f"{framecast.sessions} concurrent sessions on {INSTANCES} instances: starting them all",
        ["server", "held", "start all s", "sessions/s", "sustained/s", "start p50 ms", "start p99 ms",
         "server CPU ms/session", "KiB/session"],
    )  # fmt: skip
    for name, run in (("framecast (2 x serve)", framecast), (f"baseline {BASELINE} (2 processes)", baseline)):
        seconds, latency = run.connect_seconds(), run.start_latency()
        table.add(
            name, str(run.held), f"{seconds:.1f}", f"{run.held / seconds:.0f}", f"{run.sustained_rate():.0f}",
            f"{latency.p50:.1f}", f"{latency.p99:.1f}", f"{run.cpu_start_seconds / max(run.held, 1) * 1000:.2f}",
            " / ".join(f"{v:.1f}" for v in run.per_session_kib()),
        )  # fmt: skip
    table.notes += [
        f"A start is POST /api/v1/recordings, WebSocket connect -> READY, RECORDING_STARTED -> ACK ({BASELINE}: "
        f"connect -> first frame, then a message and its echo), {START_CONCURRENCY} in flight in each of "
        f"{CLIENT_PROCESSES} client processes; a quarter of the sessions connect to the instance that did not "
        "create them. Sustained: the rate between the 10th and 90th percentile of completions.",
        "KiB/session: each instance's RSS with every session held and idle, minus its RSS after warm-up, "
        "divided by the sessions it holds (instance 1 / instance 2).",
    ]
    return table


def _cells(samples: list[float]) -> list[str]:
    if not samples:
        return ["-", "-"]
    latency = Latency.of(samples)
    return [f"{latency.p50:.1f}", f"{latency.p99:.1f}"]


def _round_trip_table(framecast: FleetRun, baseline: FleetRun) -> Table:
    table = Table(
        f"Control round trips (ms) with {framecast.held} sessions held, by background load",
        ["background load", "framecast p50", "framecast p99", "FORCE_STOP p50", "FORCE_STOP p99",
         f"{BASELINE} p50", f"{BASELINE} p99", "server CPU %", "machine CPU %"],
    )  # fmt: skip
    met: list[str] = []
    for ours, theirs in zip(framecast.phases, baseline.phases, strict=True):
        probes = ours.series("probes")
        if probes and Latency.of(probes).p99 < TARGET_P99_MS:
            met.append(f"{ours.load:.0f}/s")
        cpu = f"{ours.server_cpu:.0f} / {theirs.server_cpu:.0f}", f"{ours.machine_cpu:.0f} / {theirs.machine_cpu:.0f}"
        stops, echoes = ours.series("stops"), theirs.series("probes")
        table.add(f"{ours.load:.0f} messages/s", *_cells(probes), *_cells(stops), *_cells(echoes), *cpu)
    held = framecast.held >= TARGET_SESSIONS
    verdict = ("met at " + ", ".join(met) if met else "MISSED") if held else f"not tested ({framecast.held} held)"
    sampled, rate = PROBES_PER_PROCESS * CLIENT_PROCESSES, PROBE_RATE * CLIENT_PROCESSES
    table.notes += [
        f"Target {TARGET_SESSIONS} sessions held with round trip p99 < {TARGET_P99_MS:.0f} ms: {verdict}.",
        f"Round trip: PAUSED or RESUMED -> ACK ({BASELINE}: message -> echo) on {sampled} sampled sessions, "
        f"{rate:.0f}/s for {framecast.phases[0].seconds:.0f} s per row. Background load: PAUSED/RESUMED on the "
        "other sessions at the rate shown, plus "
        f"{STOP_RATE * CLIENT_PROCESSES:.0f} cross-instance stops/s (framecast only; FORCE_STOP columns: POST "
        ".../stop on the instance not holding the connection -> FORCE_STOP on it), plus the servers' keep-alive "
        f"pings ({framecast.held / 20:.0f}/s at one per connection every 20 s).",
        "CPU: % of one core (200 = both), framecast / baseline; server = both instances, machine = every process, "
        "the clients, PostgreSQL, Redis and anything else running included.",
        *framecast.notes,
        *(f"framecast: {e}" for e in framecast.errors()),
        *(f"{BASELINE}: {e}" for e in [*baseline.errors(), *baseline.notes]),
    ]
    return table


async def sessions(quick: bool) -> list[Table]:
    """Hold N sessions on two instances; time their start, weigh them, and time control round trips under load."""
    n = 1000 if quick else TARGET_SESSIONS
    require_descriptors(n)
    framecast = await framecast_fleet(n, quick)
    baseline = await baseline_fleet(n, quick)
    return [_start_table(framecast, baseline), _round_trip_table(framecast, baseline)]
