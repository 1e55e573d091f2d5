"""The worker loop: claim jobs, run their handlers under a renewed lease, record how each attempt ended.

A handler is `async def handler(job, context) -> None`. Returning marks the job SUCCEEDED. Raising PermanentJobError
kills the job at once (bad input will not get better); any other exception is transient and retried with backoff
until the job runs out of attempts. The handler reports progress through its JobContext; the worker stores it with
the next heartbeat. When a heartbeat finds the lease lost (the job was cancelled, or the worker was presumed dead and
another took the job over) the handler is cancelled: it sees CancelledError and must leave nothing half-written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine, Mapping
from datetime import timedelta
from typing import Any

from framecast.domain.errors import InvalidTransition
from framecast.domain.jobs import Job, JobStatus, clamp_progress
from framecast.ports import Clock, UnitOfWorkFactory

logger = logging.getLogger(__name__)


class PermanentJobError(Exception):
    """The job cannot succeed however often it is retried (unreadable media, a missing recording, ...)."""


class JobContext:
    """What a handler may tell the worker while it runs."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.percent: float | None = None
        self.stage: str | None = None

    def progress(self, percent: float, stage: str | None = None) -> None:
        """Report progress (0-100) and optionally the current stage; stored with the next heartbeat."""
        self.percent = clamp_progress(percent)
        if stage is not None:
            self.stage = stage


Handler = Callable[[Job, JobContext], Coroutine[Any, Any, None]]
# Told of a job given up on: the job (DEAD), the last error, and whether that error was permanent (else the job ran
# out of attempts on transient ones).
DeadHook = Callable[[Job, str, bool], Coroutine[Any, Any, None]]
PROGRESS_WRITE_SECONDS = 1.0


def random_jitter() -> float:
    """Stretch each retry delay by up to 20 %, so jobs that failed together do not retry together."""
    return random.uniform(0.0, 0.2)


class Worker:
    """Runs up to `concurrency` jobs at a time, each under a lease of `lease_seconds` renewed every third of it."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        handlers: Mapping[str, Handler],
        worker_id: str,
        concurrency: int = 2,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        jitter: Callable[[], float] = random_jitter,
        on_dead: DeadHook | None = None,
    ) -> None:
        """`on_dead` hears of every job this worker gives up on (DEAD), after that is committed."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._uow = uow
        self._clock = clock
        self._handlers = dict(handlers)
        self.worker_id = worker_id
        self._concurrency = concurrency
        self._lease = timedelta(seconds=lease_seconds)
        self._poll_seconds = poll_seconds
        self._jitter = jitter
        self._on_dead = on_dead
        self._tasks: set[asyncio.Task[None]] = set()
        self._jobs: dict[asyncio.Task[None], Job] = {}
        self._stopping = False
        self._wake: asyncio.Event | None = None

    @property
    def running(self) -> int:
        """How many jobs this worker is running now."""
        return len(self._tasks)

    async def run(self) -> None:
        """Claim and run jobs until stop(); then wait for the jobs in hand to end."""
        self._stopping = False
        self._wake = asyncio.Event()
        try:
            while not self._stopping:
                claimed = await self.run_once()
                if claimed and self.running < self._concurrency:
                    continue  # there may be more work due right now
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            self._wake = None

    def wake(self) -> None:
        """Look for due jobs now rather than at the next poll (called after a commit that enqueued one)."""
        if self._wake is not None:
            self._wake.set()

    def cancel_recording(self, recording_id: str) -> int:
        """Stop this worker's running jobs of a recording at once (their rows are cancelled by the caller);
        other workers notice at their next heartbeat. Returns how many were stopped."""
        doomed = [task for task, job in self._jobs.items() if job.recording_id == recording_id]
        for task in doomed:
            task.cancel()
        return len(doomed)

    def stop(self) -> None:
        """Ask run() to stop claiming; jobs in hand finish (or are cancelled through their lease) first."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()

    async def run_once(self) -> int:
        """Claim as many due jobs as there are free slots and start them; returns how many were claimed."""
        free = self._concurrency - self.running
        if free <= 0:
            return 0
        async with self._uow() as tx:
            claimed = await tx.jobs.claim(worker=self.worker_id, at=self._clock.now(), lease=self._lease, limit=free)
            await tx.commit()
        for job in claimed:
            task = asyncio.create_task(self._execute(job), name=f"job {job.kind} {job.id}")
            self._tasks.add(task)
            self._jobs[task] = job
            task.add_done_callback(self._done)
        return len(claimed)

    async def drain(self) -> int:
        """Run jobs until none is due and none is running; returns how many attempts ran. Raises what a run raised."""
        attempts = 0
        while True:
            attempts += await self.run_once()
            if not self._tasks:
                return attempts
            done, _ = await asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()

    # -- one attempt ----------------------------------------------------------------------------------------------

    async def _execute(self, job: Job) -> None:
        if job.exhausted:
            await self._fail(job, "its workers stopped responding on every attempt", transient=False)
            return
        handler = self._handlers.get(job.kind)
        if handler is None:
            await self._fail(job, f"no handler for job kind {job.kind!r} on worker {self.worker_id}", transient=False)
            return
        context = JobContext(job)
        task = asyncio.create_task(handler(job, context))
        beat = self._lease.total_seconds() / 3
        loop = asyncio.get_running_loop()
        last_beat = loop.time()
        written: tuple[float | None, str | None] = (None, None)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=min(beat, PROGRESS_WRITE_SECONDS))
                if task.done():
                    break
                # Heartbeat every third of the lease, and sooner when there is progress to show.
                moved = (context.percent, context.stage) != written
                if not moved and loop.time() - last_beat < beat:
                    continue
                written, last_beat = (context.percent, context.stage), loop.time()
                if not await self._heartbeat(job, context):
                    logger.info("job %s (%s) was cancelled or taken over; stopping its handler", job.id, job.kind)
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    return
        except asyncio.CancelledError:
            # The worker is shutting down, or the job's recording went: stop the handler (killing what it runs).
            # A shut-down worker's lease expires and another worker retries.
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise
        if task.cancelled():
            await self._fail(job, "the handler was cancelled", transient=True)
            return
        error = task.exception()
        if error is None:
            await self._finish(job)
        elif isinstance(error, PermanentJobError):
            await self._fail(job, _describe(error), transient=False)
        else:
            logger.warning("job %s (%s) failed on attempt %d", job.id, job.kind, job.attempts, exc_info=error)
            await self._fail(job, _describe(error), transient=True)

    async def _heartbeat(self, job: Job, context: JobContext) -> bool:
        try:
            async with self._uow() as tx:
                kept = await tx.jobs.heartbeat(
                    job.id,
                    worker=self.worker_id,
                    at=self._clock.now(),
                    lease=self._lease,
                    progress=context.percent,
                    stage=context.stage,
                )
                await tx.commit()
            return kept
        except Exception:
            # A database hiccup must not kill the job: the lease outlasts two more heartbeats, and if the database
            # stays away the lease expires and another worker takes over, which is the recovery we want anyway.
            logger.exception("heartbeat for job %s failed; keeping the handler running", job.id)
            return True

    async def _finish(self, job: Job) -> None:
        try:
            async with self._uow() as tx:
                await tx.jobs.finish(job.id, worker=self.worker_id, at=self._clock.now())
                await tx.commit()
        except InvalidTransition:
            logger.info("job %s finished after its lease was lost; the result is not recorded", job.id)

    async def _fail(self, job: Job, error: str, *, transient: bool) -> None:
        try:
            async with self._uow() as tx:
                failed = await tx.jobs.fail(
                    job.id,
                    worker=self.worker_id,
                    at=self._clock.now(),
                    error=error,
                    transient=transient,
                    jitter=self._jitter(),
                )
                await tx.commit()
        except InvalidTransition:
            logger.info("job %s failed after its lease was lost; the failure is not recorded", job.id)
            return
        if failed.status is JobStatus.DEAD and self._on_dead is not None:
            try:
                await self._on_dead(failed, error, not transient)
            except Exception:
                logger.exception("the dead-job hook failed for job %s", job.id)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._jobs.pop(task, None)
        if self._wake is not None:
            self._wake.set()  # a slot is free
        if not task.cancelled() and task.exception() is not None:
            logger.error("worker %s: %s crashed", self.worker_id, task.get_name(), exc_info=task.exception())


def _describe(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, PermanentJobError) and text:
        return text  # written for people already
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
