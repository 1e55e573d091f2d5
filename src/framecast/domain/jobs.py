"""The job aggregate: durable background work with leases, retries and exponential backoff.

A worker claims a job for a lease and renews the lease with heartbeats while it works. A worker that dies simply
stops renewing: once the lease has expired the job is claimable again, so no job is lost with its worker. Attempts
count claims, so a job that keeps killing its workers also runs out of attempts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from framecast.domain.errors import InvalidTransition

# Lower runs first: making a recording playable beats polishing the ladder of another one.
PRIORITY_PLAYABLE = 0
PRIORITY_LADDER = 10
PRIORITY_BACKGROUND = 20

DEFAULT_MAX_ATTEMPTS = 5
BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_CAP = timedelta(minutes=5)


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    DEAD = "DEAD"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.DEAD, JobStatus.CANCELLED)


def backoff_delay(attempts: int, *, jitter: float = 0.0) -> timedelta:
    """Wait before the retry that follows failed attempt number `attempts` (1-based): 2 s, 4 s, 8 s ... at most 5 min.

    `jitter` stretches the delay by that fraction (0.1 = 10 % later); callers pass a random number to spread a burst
    of retries. The domain draws no random numbers itself.
    """
    exponent = max(0, attempts - 1)
    # Cap the exponent first: 2 ** 1000 seconds does not fit in a timedelta.
    delay = BACKOFF_CAP if exponent >= 20 else min(BACKOFF_BASE * 2**exponent, BACKOFF_CAP)
    return delay * (1 + max(0.0, jitter))


def clamp_progress(percent: float) -> float:
    """Progress is a percentage; out-of-range reports from handlers are pinned to 0-100, not refused."""
    return min(100.0, max(0.0, float(percent)))


@dataclass(eq=False, kw_only=True)
class Job:
    """One unit of background work. Mutate it only through its methods."""

    id: str
    kind: str
    created_at: datetime
    updated_at: datetime
    run_after: datetime
    recording_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    priority: int = PRIORITY_LADDER
    status: JobStatus = JobStatus.QUEUED
    attempts: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    last_error: str | None = None
    progress: float = 0.0
    stage: str = ""
    finished_at: datetime | None = None

    @classmethod
    def create(
        cls,
        *,
        kind: str,
        at: datetime,
        recording_id: str | None = None,
        payload: dict[str, Any] | None = None,
        priority: int = PRIORITY_LADDER,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        run_after: datetime | None = None,
        id: str | None = None,
    ) -> Job:
        """A QUEUED job, due at `run_after` (default: now)."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        return cls(
            id=id or str(uuid.uuid4()),
            kind=kind,
            recording_id=recording_id,
            payload=dict(payload or {}),
            priority=priority,
            max_attempts=max_attempts,
            created_at=at,
            updated_at=at,
            run_after=run_after or at,
        )

    # -- reading --------------------------------------------------------------------------------------------------

    def is_claimable(self, at: datetime) -> bool:
        """Due and queued, or running under a lease that expired (its worker is presumed dead)."""
        if self.status is JobStatus.QUEUED:
            return self.run_after <= at
        if self.status is JobStatus.RUNNING:
            return self.lease_expires_at is not None and self.lease_expires_at < at
        return False

    def holds_lease(self, worker: str) -> bool:
        return self.status is JobStatus.RUNNING and self.lease_owner == worker

    @property
    def exhausted(self) -> bool:
        """More claims than attempts allowed: workers died on every attempt, so the job must not run again."""
        return self.attempts > self.max_attempts

    # -- transitions ----------------------------------------------------------------------------------------------

    def claim(self, *, worker: str, at: datetime, lease: timedelta) -> None:
        """Start an attempt under `worker`'s lease until `at + lease`."""
        if not self.is_claimable(at):
            raise InvalidTransition(status=self.status.value, action="claim", what="job")
        self.status = JobStatus.RUNNING
        self.attempts += 1
        self.lease_owner = worker
        self.lease_expires_at = at + lease
        self.updated_at = at

    def heartbeat(
        self, *, worker: str, at: datetime, lease: timedelta, progress: float | None = None, stage: str | None = None
    ) -> None:
        """Renew the lease and record progress; refused once the lease is lost (cancelled, finished, reclaimed)."""
        self._require_lease(worker, "renew the lease of")
        self.lease_expires_at = at + lease
        if progress is not None:
            self.progress = clamp_progress(progress)
        if stage is not None:
            self.stage = stage
        self.updated_at = at

    def succeed(self, *, at: datetime, worker: str | None = None) -> None:
        """Finish the attempt successfully; with `worker`, only while that worker still holds the lease."""
        self._require_running(worker, "complete")
        self.status = JobStatus.SUCCEEDED
        self.progress = 100.0
        self._finish(at)

    def fail(
        self, *, at: datetime, error: str, transient: bool, worker: str | None = None, jitter: float = 0.0
    ) -> None:
        """Finish the attempt with an error: retry after a backoff when transient and attempts remain, else DEAD."""
        self._require_running(worker, "fail")
        self.last_error = error
        if not transient or self.attempts >= self.max_attempts:
            self.status = JobStatus.DEAD
            self._finish(at)
            return
        self.status = JobStatus.QUEUED
        self.run_after = at + backoff_delay(self.attempts, jitter=jitter)
        self.lease_owner = None
        self.lease_expires_at = None
        self.updated_at = at

    def cancel(self, *, at: datetime) -> None:
        """Stop a queued or running job; a running worker notices at its next heartbeat and stops its handler."""
        if self.status.is_terminal:
            raise InvalidTransition(status=self.status.value, action="cancel", what="job")
        self.status = JobStatus.CANCELLED
        self._finish(at)

    # -- internals ------------------------------------------------------------------------------------------------

    def _require_lease(self, worker: str, action: str) -> None:
        if not self.holds_lease(worker):
            status = self.status.value if self.status is not JobStatus.RUNNING else f"leased to {self.lease_owner}"
            raise InvalidTransition(status=status, action=action, what="job")

    def _require_running(self, worker: str | None, action: str) -> None:
        if worker is not None:
            self._require_lease(worker, action)
        elif self.status is not JobStatus.RUNNING:
            raise InvalidTransition(status=self.status.value, action=action, what="job")

    def _finish(self, at: datetime) -> None:
        # The last lease owner stays recorded: it tells an operator which worker ran the job to its end.
        self.lease_expires_at = None
        self.finished_at = at
        self.updated_at = at
