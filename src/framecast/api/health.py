"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from framecast.api.deps import ContainerDep

router = APIRouter(tags=["health"])

# A dependency slower than this to answer counts as unreachable: a load balancer polls readiness often.
PROBE_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(container: ContainerDep) -> JSONResponse:
    """Every dependency answers (checked at once, each within a time limit): 200, else 503 naming the failing ones.

    `checks` has "ok" or "unreachable: <why>" per dependency (database, live_state, and locks, blob_storage and
    event_bus where they are servers); `latency_ms` how long each took to answer.
    """
    probes = container.dependencies()
    results = await asyncio.gather(*(_probe(probe) for probe in probes.values()))
    checks = {name: check for name, (check, _) in zip(probes, results, strict=True)}
    latency = {name: round(seconds * 1000, 1) for name, (_, seconds) in zip(probes, results, strict=True)}
    ready = all(check == "ok" for check in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks, "latency_ms": latency},
        status_code=200 if ready else 503,
    )


async def _probe(probe: Callable[[], Awaitable[None]]) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            await probe()
    except TimeoutError:
        return f"unreachable: no answer within {PROBE_TIMEOUT_SECONDS:g} s", time.perf_counter() - started
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}", time.perf_counter() - started
    return "ok", time.perf_counter() - started
