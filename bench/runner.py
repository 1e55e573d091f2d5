"""Shared benchmark plumbing: server subprocesses, resource limits, RSS, percentiles and result tables."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import resource
import secrets
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import IO

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs without the types-psutil package
from rich.console import Console
from rich.table import Table as RichTable

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
# Caller settings that select a real backend are honoured; every other FRAMECAST_* variable is dropped so a run
# does not depend on the shell it was started from.
PASS_THROUGH = ("FRAMECAST_DATABASE_URL", "FRAMECAST_REDIS_URL")
BENCH_EMAIL = "bench@framecast.local"


# -- process plumbing ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def raise_nofile_limit() -> int:
    """Lift this process's soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.

    Also used as `preexec_fn` so server subprocesses can hold thousands of sockets.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # RLIM_INFINITY is refused for NOFILE; the kernel's default nr_open is 2**20.
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def require_descriptors(count: int) -> None:
    """Exit with advice when this process cannot open `count` sockets (plus headroom)."""
    limit = raise_nofile_limit()
    if limit < count + 256:
        raise SystemExit(f"RLIMIT_NOFILE hard limit is {limit}; need {count + 256}: raise it (ulimit -Hn) and rerun")


@dataclass
class ServerProcess:
    """A server running in a subprocess; `token` is set for framecast servers."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    token: str = ""

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    def rss_bytes(self) -> int:
        """Resident set size of the server process and all its children."""
        root = psutil.Process(self.process.pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server process and all its children."""
        root = psutil.Process(self.process.pid)
        return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _server_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMECAST_") or k in PASS_THROUGH}
    env.update(
        FRAMECAST_DATA_DIR=str(data_dir),
        FRAMECAST_HOST=HOST,
        FRAMECAST_PORT=str(port),
        FRAMECAST_SECRET_KEY="bench-" + secrets.token_hex(16),
    )
    return env


def _spawn(argv: Sequence[str], *, env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        env=env,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        preexec_fn=raise_nofile_limit,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ask politely (SIGTERM), then insist: benchmarks do not wait for thousands of graceful closes."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _wait_healthy(server: ServerProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    with httpx.Client(base_url=server.url, timeout=2) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if http.get("/healthz").status_code == 200:
                    return
            time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not answer /healthz within {START_TIMEOUT_SECONDS} s:\n{server.log_tail()}")


def _ready_line(process: subprocess.Popen[bytes]) -> str | None:
    """The line already waiting on the server's stdout, if any (never blocks)."""
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], 0)
    return process.stdout.readline().decode().strip() if readable else None


def _owner_token(server: ServerProcess, env: dict[str, str]) -> str:
    # `serve` prints the owner token before it starts listening, so once /healthz answers the line is there --
    # unless the database outlived an earlier start (a caller-provided FRAMECAST_DATABASE_URL).
    token = _ready_line(server.process)
    if token:
        return token
    argv = [sys.executable, "-m", "framecast", "token", "create", "--email", BENCH_EMAIL]
    return subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def framecast_server(launcher: Sequence[str] = ("-m", "framecast")) -> Iterator[ServerProcess]:
    """`framecast serve` on a free port with a fresh data dir; yields it healthy, with an API token.

    `launcher` is what follows the interpreter: swap in a wrapper script to run the server under a profiler.
    """
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        port, log_path = free_port(), Path(tmp) / "serve.log"
        env = _server_env(Path(tmp) / "data", port)
        argv = [sys.executable, *launcher, "serve"]
        with log_path.open("wb") as log:
            server = ServerProcess("framecast", _spawn(argv, env=env, log=log), f"http://{HOST}:{port}", log_path)
            try:
                _wait_healthy(server)
                server.token = _owner_token(server, env)
                yield server
            finally:
                _stop(server.process)


@contextlib.contextmanager
def python_server(name: str, module: str, *args: str) -> Iterator[ServerProcess]:
    """`python -m module --port P *args`; the module prints one line on stdout once it listens."""
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        port, log_path = free_port(), Path(tmp) / f"{name}.log"
        argv = [sys.executable, "-m", module, "--port", str(port), *args]
        with log_path.open("wb") as log:
            process = _spawn(argv, env=dict(os.environ), log=log)
            server = ServerProcess(name, process, f"http://{HOST}:{port}", log_path)
            try:
                assert process.stdout is not None
                if not process.stdout.readline():
                    raise RuntimeError(f"{name} exited before listening:\n{server.log_tail()}")
                yield server
            finally:
                _stop(process)


# -- statistics ----------------------------------------------------------------------------------------------------


def percentile(samples: Sequence[float], pct: float) -> float:
    """The `pct`-th percentile (0-100) of `samples`, interpolating linearly between closest ranks."""
    if not samples:
        raise ValueError("percentile of no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles of one series of durations, in milliseconds."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = [s * 1000 for s in seconds]
        return cls(len(ms), percentile(ms, 50), percentile(ms, 95), percentile(ms, 99), max(ms))

    def cells(self) -> list[str]:
        return [str(self.count), *(f"{v:.2f}" for v in (self.p50, self.p95, self.p99, self.max))]


# -- result tables --------------------------------------------------------------------------------------------------


@dataclass
class Table:
    """One benchmark result: printed with Rich, recorded in docs/benchmarks.md as Markdown."""

    title: str
    columns: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(cells)

    def print(self, console: Console) -> None:
        table = RichTable(title=self.title, title_justify="left")
        for i, column in enumerate(self.columns):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in self.rows:
            table.add_row(*row)
        console.print(table)
        for note in self.notes:
            console.print(f"  {note}")

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "|".join(["---", *["---:"] * (len(self.columns) - 1)]) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        lines += ["", *self.notes] if self.notes else []
        return "\n".join(lines)


def describe_machine() -> str:
    """Date, CPU, memory, Python and library versions, and the database the servers use."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    database = os.environ.get("FRAMECAST_DATABASE_URL", "sqlite (default)").split("://", 1)[0]
    live = "redis" if os.environ.get("FRAMECAST_REDIS_URL") else "memory"
    libs = ", ".join(f"{name} {version(name)}" for name in ("uvicorn", "websockets", "fastapi", "httpx"))
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs ({cpu}); "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {libs}; database: {database}; live state: {live}"
    )
