"""Run the benchmarks in the registry (all of them, or those named) and print their tables.

python -m bench [--quick] [--markdown] [NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from rich.console import Console

from bench import bench_agent, bench_live, bench_live_webm, bench_processing, bench_sessions, bench_uploads, bench_web
from bench.bench_events import events
from bench.bench_s3 import s3
from bench.bench_scale import sessions
from bench.runner import Table, describe_machine, raise_nofile_limit

# Wide enough that no table wraps its cells when the output goes to a file.
WIDTH_WHEN_PIPED = 140

Benchmark = Callable[[bool], Coroutine[Any, Any, list[Table]]]

# name -> benchmark(quick); run in this order.
REGISTRY: dict[str, Benchmark] = {
    "session_start": bench_sessions.session_start,
    "idle_memory": bench_sessions.idle_memory,
    "upload_throughput": bench_uploads.upload_throughput,
    "processing": bench_processing.processing,
    "agent": bench_agent.agent,
    "watch_page": bench_web.watch_page,
    "live": bench_live.live,
    "live_webm": bench_live_webm.live_webm,
    "sessions": sessions,
    "s3": s3,
    "events": events,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"default: all of {', '.join(REGISTRY)}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--markdown", action="store_true", help="also print each table as Markdown")
    args = parser.parse_args()
    if unknown := [name for name in args.names if name not in REGISTRY]:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(REGISTRY)}")
    return args


def main() -> None:
    args = parse_args()
    raise_nofile_limit()
    console = Console()
    if not console.is_terminal:
        console = Console(width=WIDTH_WHEN_PIPED)
    console.print(f"[bold]machine[/]: {describe_machine()}")
    for name in args.names or list(REGISTRY):
        console.rule(f"{name}{' (quick)' if args.quick else ''}")
        start = time.perf_counter()
        tables = asyncio.run(REGISTRY[name](args.quick))
        for table in tables:
            table.print(console)
            if args.markdown:
                console.print(table.markdown(), markup=False, highlight=False, soft_wrap=True)
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        console.print(f"{name} took {time.perf_counter() - start:.0f} s; load average (1, 5, 15 min): {load}")


if __name__ == "__main__":
    main()
