"""JobQueue on SQLAlchemy Core: leased jobs that work the same on SQLite and PostgreSQL.

Written here rather than taken from a library: no well-kept Python job queue runs on both SQLite and PostgreSQL
(procrastinate is PostgreSQL-only; Celery and Dramatiq need a separate broker), and the embedded default must run with
no server at all. The whole queue is one table and one claim statement.

Claiming is a single UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING. On PostgreSQL the inner SELECT takes
FOR UPDATE SKIP LOCKED, so concurrent claimers skip each other's rows instead of queueing on them; a row another
claimer committed meanwhile is re-checked against the WHERE clause and dropped. SQLite has one writer at a time, and
the statement takes the write lock before it reads, so its claims are serialised by the database itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from framecast.adapters.sql.tables import jobs
from framecast.domain.errors import NotFound
from framecast.domain.jobs import Job, JobStatus, clamp_progress

_COLUMNS = [c.name for c in jobs.columns]


def _to_row(job: Job) -> dict[str, Any]:
    row = {name: getattr(job, name) for name in _COLUMNS}
    row["status"] = job.status.value
    return row


def _from_row(row: RowMapping) -> Job:
    values = {name: row[name] for name in _COLUMNS}
    values["status"] = JobStatus(row["status"])
    values["payload"] = dict(row["payload"] or {})
    return Job(**values)


class SqlJobQueue:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def enqueue(self, job: Job) -> None:
        await self._conn.execute(insert(jobs).values(**_to_row(job)))

    async def get(self, job_id: str) -> Job:
        return await self._load(job_id, for_update=False)

    async def list_for_recording(self, recording_id: str) -> Sequence[Job]:
        query = select(jobs).where(jobs.c.recording_id == recording_id).order_by(jobs.c.created_at, jobs.c.id)
        return [_from_row(row) for row in (await self._conn.execute(query)).mappings()]

    async def claim(self, *, worker: str, at: datetime, lease: timedelta, limit: int) -> Sequence[Job]:
        if limit < 1:
            return []
        candidates = (
            select(jobs.c.id)
            .where(
                or_(
                    and_(jobs.c.status == JobStatus.QUEUED.value, jobs.c.run_after <= at),
                    # A running job whose lease expired lost its worker (killed, or cut off from the database).
                    and_(jobs.c.status == JobStatus.RUNNING.value, jobs.c.lease_expires_at < at),
                )
            )
            .order_by(jobs.c.priority, jobs.c.run_after, jobs.c.created_at)
            .limit(limit)
        )
        if self._conn.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        statement = (
            update(jobs)
            .where(jobs.c.id.in_(candidates))
            .values(
                status=JobStatus.RUNNING.value,
                attempts=jobs.c.attempts + 1,
                lease_owner=worker,
                lease_expires_at=at + lease,
                updated_at=at,
            )
            .returning(*jobs.c)
        )
        claimed = [_from_row(row) for row in (await self._conn.execute(statement)).mappings()]
        # RETURNING follows no ORDER BY: restore the claim order so callers start the most urgent job first.
        return sorted(claimed, key=lambda job: (job.priority, job.run_after, job.created_at))

    async def heartbeat(
        self,
        job_id: str,
        *,
        worker: str,
        at: datetime,
        lease: timedelta,
        progress: float | None = None,
        stage: str | None = None,
    ) -> bool:
        # One conditional UPDATE rather than load-and-save: heartbeats are frequent, and the WHERE clause is exactly
        # Job.holds_lease, so a cancelled or reclaimed job simply matches no row.
        values: dict[str, Any] = {"lease_expires_at": at + lease, "updated_at": at}
        if progress is not None:
            values["progress"] = clamp_progress(progress)
        if stage is not None:
            values["stage"] = stage
        result = await self._conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == JobStatus.RUNNING.value, jobs.c.lease_owner == worker)
            .values(**values)
        )
        return result.rowcount == 1

    async def finish(self, job_id: str, *, worker: str, at: datetime) -> Job:
        job = await self._load(job_id, for_update=True)
        job.succeed(at=at, worker=worker)
        await self._save(job)
        return job

    async def fail(
        self, job_id: str, *, worker: str, at: datetime, error: str, transient: bool, jitter: float = 0.0
    ) -> Job:
        job = await self._load(job_id, for_update=True)
        job.fail(at=at, error=error, transient=transient, worker=worker, jitter=jitter)
        await self._save(job)
        return job

    async def cancel_for_recording(self, recording_id: str, *, at: datetime) -> int:
        result = await self._conn.execute(
            update(jobs)
            .where(
                jobs.c.recording_id == recording_id,
                jobs.c.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
            )
            .values(status=JobStatus.CANCELLED.value, lease_expires_at=None, finished_at=at, updated_at=at)
        )
        return result.rowcount

    async def _load(self, job_id: str, *, for_update: bool) -> Job:
        query = select(jobs).where(jobs.c.id == job_id)
        if for_update:
            # PostgreSQL: hold the row until commit so a concurrent cancel cannot be overwritten. SQLite ignores
            # FOR UPDATE; its single writer fails a stale read-then-write with SQLITE_BUSY instead of losing it.
            query = query.with_for_update()
        row = (await self._conn.execute(query)).mappings().first()
        if row is None:
            raise NotFound("job", job_id)
        return _from_row(row)

    async def _save(self, job: Job) -> None:
        await self._conn.execute(update(jobs).where(jobs.c.id == job.id).values(**_to_row(job)))
