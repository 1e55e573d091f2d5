"""Client processes for the sessions benchmark: each opens, holds and exercises its share of the sessions.

One asyncio process cannot drive 10,000 WebSockets and time them honestly, so the coordinator (bench/bench_scale.py)
spreads the sessions over a few processes and tells them, phase by phase, what to do. Times are
`time.perf_counter()` (CLOCK_MONOTONIC on Linux), so marks taken in different processes compare.

Session i is created on instance `i % 2` and connected to instance `(i // 2) % 2`: each instance holds half the
sessions, and a quarter of all sessions connect to the instance that did not create them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import httpx
import uvloop
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import WebSocketException

from bench.bench_sessions import create_recording, open_control
from bench.runner import raise_nofile_limit

REPLY_TIMEOUT_SECONDS = 60.0
# How many sessions one client process starts at a time.
START_CONCURRENCY = 8
# What the coordinator keeps of a phase's errors: a few messages say what went wrong, the count says how often.
KEPT_ERRORS = 5
RECORDING_ID = re.compile(r"/api/v1/recordings/(?P<id>[^/]+)/control")


@dataclass(frozen=True)
class Target:
    """Where sessions go: framecast instances (REST base URLs and a token) or the baseline's WebSocket URLs."""

    api_urls: tuple[str, ...] = ()
    token: str = ""
    ws_urls: tuple[str, ...] = ()

    @property
    def is_framecast(self) -> bool:
        return bool(self.api_urls)


@dataclass(frozen=True)
class Plan:
    """One measuring phase, in messages per second for this process."""

    seconds: float
    probe_rate: float
    load_rate: float = 0.0
    stop_rate: float = 0.0
    probe_sessions: int = 50


@dataclass
class Errors:
    count: int = 0
    first: list[str] = field(default_factory=list)

    def add(self, error: BaseException) -> None:
        self.count += 1
        if len(self.first) < KEPT_ERRORS:
            self.first.append(f"{type(error).__name__}: {error}")


@dataclass
class StartReport:
    """Marks (perf_counter seconds) and durations (seconds) of one process's session starts."""

    began: float = 0.0
    done: list[float] = field(default_factory=list)
    post: list[float] = field(default_factory=list)
    ready: list[float] = field(default_factory=list)
    ack: list[float] = field(default_factory=list)
    errors: Errors = field(default_factory=Errors)


@dataclass
class PhaseReport:
    """Round trips (seconds) of one process in one phase; stops are REST call -> FORCE_STOP on the WebSocket."""

    probes: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    stops: list[float] = field(default_factory=list)
    errors: Errors = field(default_factory=Errors)


def reply_seq(frame: dict[str, Any]) -> object:
    """The seq a frame answers: ACK carries it in data, the echo baseline sends the message back unchanged."""
    data = frame.get("data")
    return data.get("seq") if isinstance(data, dict) and "seq" in data else frame.get("seq")


class Session:
    """One held control connection; one command at a time (the lock), so replies cannot interleave."""

    def __init__(self, ws: ClientConnection, *, recording_id: str, holder: int) -> None:
        self.ws = ws
        self.recording_id = recording_id
        self.holder = holder  # index of the instance holding the connection
        self.seq = 0
        self.paused = False
        self.lock = asyncio.Lock()

    async def command(self, kind: str) -> float:
        """Send `kind` and wait for its ACK (or echo); returns the round trip in seconds, lock wait excluded."""
        async with self.lock:
            return await self._exchange(kind)

    async def toggle(self) -> float:
        """Pause a recording session, or resume a paused one (decided once earlier toggles are answered)."""
        async with self.lock:
            rtt = await self._exchange("RECORDING_RESUMED" if self.paused else "RECORDING_PAUSED")
            self.paused = not self.paused
            return rtt

    async def _exchange(self, kind: str) -> float:
        self.seq += 1
        start = time.perf_counter()
        await self.ws.send(json.dumps({"type": kind, "seq": self.seq, "data": {}}))
        async with asyncio.timeout(REPLY_TIMEOUT_SECONDS):
            while True:
                frame = json.loads(await self.ws.recv(decode=True))
                if frame.get("type") == "ERROR":
                    raise RuntimeError(f"{kind} refused: {frame['data']}")
                if reply_seq(frame) == self.seq:
                    return time.perf_counter() - start

    async def until(self, kind: str) -> float:
        """Wait for a frame of type `kind`; returns when it arrived (perf_counter)."""
        async with asyncio.timeout(REPLY_TIMEOUT_SECONDS):
            while json.loads(await self.ws.recv(decode=True)).get("type") != kind:
                pass
        return time.perf_counter()


class Client:
    """The sessions of one client process, numbered by `indices` in the coordinator's count."""

    def __init__(self, target: Target, indices: Sequence[int]) -> None:
        self.target = target
        self.indices = indices
        self.sessions: list[Session] = []
        self.stopped: set[Session] = set()
        headers = {"Authorization": f"Bearer {target.token}"}
        limits = httpx.Limits(max_connections=START_CONCURRENCY, max_keepalive_connections=START_CONCURRENCY)
        self.apis = [
            httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) for url in target.api_urls
        ]

    async def start_all(self) -> StartReport:
        report = StartReport(began=time.perf_counter())
        gate = asyncio.Semaphore(START_CONCURRENCY)

        async def one(i: int) -> None:
            async with gate:
                try:
                    self.sessions.append(await self._start(i, report))
                except (OSError, TimeoutError, RuntimeError, httpx.HTTPError, WebSocketException) as exc:
                    report.errors.add(exc)
                report.done.append(time.perf_counter())

        await asyncio.gather(*(one(i) for i in self.indices))
        return report

    async def _start(self, i: int, report: StartReport) -> Session:
        creator, holder = i % 2, (i // 2) % 2
        start = time.perf_counter()
        if self.target.is_framecast:
            created = await create_recording(self.apis[creator])
            url = created.replace(self._ws_base(creator), self._ws_base(holder), 1)
        else:
            url = self.target.ws_urls[holder]
        posted = time.perf_counter()
        ws = await open_control(url)
        ready = time.perf_counter()
        match = RECORDING_ID.search(url)
        session = Session(ws, recording_id=match["id"] if match else str(i), holder=holder)
        ack = await session.command("RECORDING_STARTED")
        report.post.append(posted - start)
        report.ready.append(ready - posted)
        report.ack.append(ack)
        return session

    def _ws_base(self, instance: int) -> str:
        return self.target.api_urls[instance].replace("http://", "ws://", 1)

    async def measure(self, plan: Plan) -> PhaseReport:
        """Probe the first sessions at `plan.probe_rate` while the others carry the load and the stops.

        A stopped session is no longer recording: it is left out of later phases' load.
        """
        report = PhaseReport()
        probes, pool = self.sessions[: plan.probe_sessions], self.sessions[plan.probe_sessions :]
        pool = [session for session in pool if session not in self.stopped]
        stops = round(plan.stop_rate * plan.seconds) if self.target.is_framecast else 0
        load, stopping = pool[: len(pool) - stops], pool[len(pool) - stops :]
        self.stopped.update(stopping)

        async def probe(session: Session) -> None:
            report.probes.append(await session.toggle())

        async def busy(session: Session) -> None:
            report.load.append(await session.toggle())

        async def stop(session: Session) -> None:
            report.stops.append(await self._force_stop(session))

        await asyncio.gather(
            paced(plan.probe_rate, plan.seconds, probes, probe, report.errors),
            paced(plan.load_rate, plan.seconds, load, busy, report.errors),
            paced(plan.stop_rate, plan.seconds, stopping, stop, report.errors),
        )
        return report

    async def _force_stop(self, session: Session) -> float:
        """Stop through the instance not holding the connection; seconds from the request to FORCE_STOP."""
        other = self.apis[1 - session.holder]
        async with session.lock:
            arrived = asyncio.create_task(session.until("FORCE_STOP"))
            start = time.perf_counter()
            try:
                response = await other.post(f"/api/v1/recordings/{session.recording_id}/stop")
                response.raise_for_status()
                return await arrived - start
            finally:
                arrived.cancel()

    async def close(self) -> None:
        for session in self.sessions:
            session.ws.transport.abort()  # a graceful close of thousands is not what is measured
        for api in self.apis:
            await api.aclose()


async def paced(
    rate: float,
    seconds: float,
    sessions: Sequence[Session],
    job: Callable[[Session], Awaitable[None]],
    errors: Errors,
) -> None:
    """Start `job` on the sessions in turn, `rate` times a second for `seconds`, whether or not earlier jobs are done.

    An open loop: a slow server does not slow the load down, so its queueing shows in the round trips.
    """
    if rate <= 0 or not sessions:
        return
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    for n in range(round(rate * seconds)):
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(job(sessions[n % len(sessions)])))
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, BaseException):
            errors.add(outcome)


# -- the process -----------------------------------------------------------------------------------------------------


async def obey(conn: Connection, target: Target, indices: Sequence[int]) -> None:
    """Carry out the coordinator's commands until told to close; each gets one reply."""
    client = Client(target, indices)
    try:
        while True:
            # Waited for in a thread: the loop must keep answering the servers' pings meanwhile.
            command, argument = await asyncio.to_thread(conn.recv)
            if command == "start":
                conn.send(await client.start_all())
            elif command == "measure":
                conn.send(await client.measure(argument))
            else:
                conn.send(None)
                return
    finally:
        await client.close()


def client_main(conn: Connection, target: Target, indices: Sequence[int]) -> None:
    raise_nofile_limit()
    uvloop.run(obey(conn, target, indices))


class ClientPool:
    """`processes` client processes sharing `sessions` sessions; ask() sends every process a command."""

    def __init__(self, target: Target, *, sessions: int, processes: int) -> None:
        # spawn, not fork: the coordinator runs an event loop and holds sockets the children must not inherit.
        context = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for p in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(target=client_main, args=(theirs, target, range(p, sessions, processes)))
            process.start()
            theirs.close()
            self._conns.append(ours)
            self._processes.append(process)

    async def ask(self, command: str, argument: object = None) -> list[Any]:
        for conn in self._conns:
            conn.send((command, argument))
        return list(await asyncio.gather(*(asyncio.to_thread(conn.recv) for conn in self._conns)))

    async def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            await self.ask("close")
        for process in self._processes:
            await asyncio.to_thread(process.join, 30)
            if process.is_alive():
                process.kill()
