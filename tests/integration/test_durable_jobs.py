"""Durable jobs on SQLite and PostgreSQL: claiming, leases, retries, dead jobs, cancellation and the worker loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest

from framecast.adapters.clock import FakeClock
from framecast.adapters.sql.database import SqlUnitOfWork, create_engine
from framecast.bootstrap import Container
from framecast.domain.jobs import PRIORITY_LADDER, PRIORITY_PLAYABLE, Job, JobStatus
from framecast.ports import UnitOfWorkFactory
from framecast.workers.runner import Handler, JobContext, PermanentJobError, Worker

LEASE = timedelta(seconds=30)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def enqueue(container: Container, *jobs: Job) -> None:
    async with container.uow() as tx:
        for job in jobs:
            await tx.jobs.enqueue(job)
        await tx.commit()


async def load(container: Container, job_id: str) -> Job:
    async with container.uow() as tx:
        return await tx.jobs.get(job_id)


def new_job(container: Container, kind: str = "probe", **kwargs: Any) -> Job:
    return Job.create(kind=kind, at=container.clock.now(), **kwargs)


def worker(
    container: Container, handlers: dict[str, Handler], *, name: str = "w1", concurrency: int = 2, lease: float = 30
) -> Worker:
    return Worker(
        uow=container.uow,
        clock=container.clock,
        handlers=handlers,
        worker_id=name,
        concurrency=concurrency,
        lease_seconds=lease,
        poll_seconds=0.02,
        jitter=lambda: 0.0,
    )


async def succeed(job: Job, context: JobContext) -> None:
    return None


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Worker], None]]:
    """Start workers' run() loops in the background; they are stopped and awaited after the test."""
    started: list[tuple[Worker, asyncio.Task[None]]] = []

    def start(w: Worker) -> None:
        started.append((w, asyncio.create_task(w.run())))

    yield start
    for w, task in started:
        w.stop()
        await asyncio.wait_for(task, timeout=10)


async def test_claims_follow_priority_then_due_time(container: Container, clock: FakeClock) -> None:
    ladder = new_job(container, "ladder", priority=PRIORITY_LADDER)
    clock.advance(timedelta(seconds=1))
    playable = new_job(container, "remux", priority=PRIORITY_PLAYABLE)
    clock.advance(timedelta(seconds=1))
    later = new_job(container, "remux", priority=PRIORITY_PLAYABLE, run_after=clock.now() + timedelta(minutes=1))
    await enqueue(container, ladder, later, playable)
    async with container.uow() as tx:
        first = await tx.jobs.claim(worker="w1", at=clock.now(), lease=LEASE, limit=1)
        rest = await tx.jobs.claim(worker="w1", at=clock.now(), lease=LEASE, limit=10)
        await tx.commit()
    assert [j.id for j in first] == [playable.id]
    assert [j.id for j in rest] == [ladder.id]  # `later` is not due yet
    assert (first[0].status, first[0].attempts, first[0].lease_owner) == (JobStatus.RUNNING, 1, "w1")


async def test_concurrent_claimers_never_get_the_same_job(container: Container, database_url: str) -> None:
    jobs = [new_job(container) for _ in range(30)]
    await enqueue(container, *jobs)
    other_engine = create_engine(database_url)  # a second process's connection pool

    async def claim_all(uow: UnitOfWorkFactory, name: str) -> list[str]:
        got: list[str] = []
        while True:
            async with uow() as tx:
                claimed = await tx.jobs.claim(worker=name, at=container.clock.now(), lease=LEASE, limit=2)
                await tx.commit()
            if not claimed:
                return got
            got += [j.id for j in claimed]
            await asyncio.sleep(0)

    try:
        results = await asyncio.gather(
            claim_all(container.uow, "a"),
            claim_all(container.uow, "b"),
            claim_all(lambda: SqlUnitOfWork(other_engine), "c"),
            claim_all(lambda: SqlUnitOfWork(other_engine), "d"),
        )
    finally:
        await other_engine.dispose()
    everything = [job_id for got in results for job_id in got]
    assert sorted(everything) == sorted(j.id for j in jobs)  # each job exactly once


async def test_a_killed_workers_job_is_taken_over_after_its_lease_expires(
    container: Container, clock: FakeClock
) -> None:
    job = new_job(container)
    await enqueue(container, job)
    async with container.uow() as tx:  # a worker claims it, then is killed: it never heartbeats again
        await tx.jobs.claim(worker="dead", at=clock.now(), lease=LEASE, limit=1)
        await tx.commit()

    survivor = worker(container, {"probe": succeed}, name="survivor")
    assert await survivor.drain() == 0  # the lease still holds
    clock.advance(LEASE + timedelta(seconds=1))
    assert await survivor.drain() == 1

    finished = await load(container, job.id)
    assert (finished.status, finished.attempts, finished.lease_owner) == (JobStatus.SUCCEEDED, 2, "survivor")
    async with container.uow() as tx:  # the dead worker, were it to wake up, finds its lease gone
        assert not await tx.jobs.heartbeat(job.id, worker="dead", at=clock.now(), lease=LEASE)


async def test_a_job_whose_workers_keep_dying_goes_dead(container: Container, clock: FakeClock) -> None:
    job = new_job(container, max_attempts=1)
    await enqueue(container, job)
    async with container.uow() as tx:
        await tx.jobs.claim(worker="dead", at=clock.now(), lease=LEASE, limit=1)
        await tx.commit()
    clock.advance(LEASE + timedelta(seconds=1))
    ran: list[str] = []

    async def record(job: Job, context: JobContext) -> None:
        ran.append(job.id)

    await worker(container, {"probe": record}, name="survivor").drain()
    dead = await load(container, job.id)
    assert (dead.status, ran) == (JobStatus.DEAD, [])
    assert dead.last_error == "its workers stopped responding on every attempt"


async def test_a_transient_failure_is_retried_after_a_backoff(container: Container, clock: FakeClock) -> None:
    calls: list[int] = []

    async def flaky(job: Job, context: JobContext) -> None:
        calls.append(job.attempts)
        if len(calls) < 3:
            raise ConnectionError("storage unreachable")

    job = new_job(container)
    await enqueue(container, job)
    w = worker(container, {"probe": flaky})
    failed_at = clock.now()
    assert await w.drain() == 1
    queued = await load(container, job.id)
    assert (queued.status, queued.last_error) == (JobStatus.QUEUED, "ConnectionError: storage unreachable")
    assert queued.run_after == failed_at + timedelta(seconds=2)

    clock.advance(timedelta(seconds=1))
    assert await w.drain() == 0  # not due yet
    clock.advance(timedelta(seconds=1))
    assert await w.drain() == 1
    assert (await load(container, job.id)).run_after == clock.now() + timedelta(seconds=4)
    clock.advance(timedelta(seconds=4))
    assert await w.drain() == 1

    done = await load(container, job.id)
    assert (done.status, done.attempts, calls) == (JobStatus.SUCCEEDED, 3, [1, 2, 3])


async def test_a_permanent_failure_is_dead_at_once_and_keeps_its_error(container: Container, clock: FakeClock) -> None:
    calls = 0

    async def broken(job: Job, context: JobContext) -> None:
        nonlocal calls
        calls += 1
        raise PermanentJobError("the upload is not a video")

    job = new_job(container)
    await enqueue(container, job)
    w = worker(container, {"probe": broken})
    assert await w.drain() == 1
    clock.advance(timedelta(hours=1))
    assert await w.drain() == 0
    dead = await load(container, job.id)
    assert (dead.status, dead.last_error, calls) == (
        JobStatus.DEAD,
        "the upload is not a video",  # a permanent error is written for people: kept as it is
        1,
    )
    assert dead.finished_at is not None


async def test_a_job_is_dead_once_its_attempts_run_out(container: Container, clock: FakeClock) -> None:
    async def always_failing(job: Job, context: JobContext) -> None:
        raise TimeoutError(f"attempt {job.attempts}")

    job = new_job(container, max_attempts=3)
    await enqueue(container, job)
    w = worker(container, {"probe": always_failing})
    for _ in range(5):
        await w.drain()
        clock.advance(timedelta(minutes=5))
    dead = await load(container, job.id)
    assert (dead.status, dead.attempts, dead.last_error) == (JobStatus.DEAD, 3, "TimeoutError: attempt 3")


async def test_cancelling_a_running_job_stops_its_handler(
    container: Container, running: Callable[[Worker], None]
) -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    async def long(job: Job, context: JobContext) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stopped.set()
            raise

    job = new_job(container, recording_id="rec-1")
    other = new_job(container, recording_id="rec-2", run_after=container.clock.now() + timedelta(hours=1))
    await enqueue(container, job, other)
    running(worker(container, {"probe": long}, lease=0.3))
    await asyncio.wait_for(started.wait(), timeout=5)

    async with container.uow() as tx:
        assert await tx.jobs.cancel_for_recording("rec-1", at=container.clock.now()) == 1
        await tx.commit()
    await asyncio.wait_for(stopped.wait(), timeout=5)

    async with container.uow() as tx:
        [cancelled] = await tx.jobs.list_for_recording("rec-1")
        [untouched] = await tx.jobs.list_for_recording("rec-2")
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.finished_at is not None
    assert untouched.status is JobStatus.QUEUED


async def test_progress_reported_by_a_handler_is_stored(
    container: Container, running: Callable[[Worker], None]
) -> None:
    release = asyncio.Event()

    async def remux(job: Job, context: JobContext) -> None:
        context.progress(40, "remux")
        await release.wait()

    job = new_job(container, "remux")
    await enqueue(container, job)
    running(worker(container, {"remux": remux}, lease=0.3))

    async def stored_progress() -> tuple[float, str]:
        while True:
            current = await load(container, job.id)
            if current.progress > 0:
                return current.progress, current.stage
            await asyncio.sleep(0.02)

    assert await asyncio.wait_for(stored_progress(), timeout=5) == (40.0, "remux")
    release.set()

    async def finished() -> Job:
        while True:
            current = await load(container, job.id)
            if current.status is JobStatus.SUCCEEDED:
                return current
            await asyncio.sleep(0.02)

    done = await asyncio.wait_for(finished(), timeout=5)
    assert (done.progress, done.stage) == (100.0, "remux")


async def test_a_worker_runs_no_more_jobs_at_once_than_its_concurrency(container: Container) -> None:
    active = 0
    peak = 0

    async def busy(job: Job, context: JobContext) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1

    jobs = [new_job(container) for _ in range(7)]
    await enqueue(container, *jobs)
    assert await worker(container, {"probe": busy}, concurrency=3).drain() == 7
    assert peak == 3
    for job in jobs:
        assert (await load(container, job.id)).status is JobStatus.SUCCEEDED


async def test_a_job_of_an_unknown_kind_is_dead_with_a_reason(container: Container) -> None:
    job = new_job(container, "transcribe")
    await enqueue(container, job)
    await worker(container, {"probe": succeed}).drain()
    dead = await load(container, job.id)
    assert dead.status is JobStatus.DEAD
    assert dead.last_error is not None
    assert "no handler for job kind 'transcribe'" in dead.last_error


async def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(container: Container) -> None:
    job = new_job(container)
    async with container.uow() as tx:
        await tx.jobs.enqueue(job)
        # no commit: leaving the block rolls back
    assert await worker(container, {"probe": succeed}).drain() == 0
