"""LiveRepository on SQLAlchemy Core: a live recording's runs and segments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from framecast.adapters.sql.tables import live_runs, live_segments
from framecast.domain.live import LiveRun, LiveSegment, LiveStream


class SqlLiveRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def stream(self, recording_id: str, *, run: int | None = None, index: int | None = None) -> LiveStream:
        runs_query = select(live_runs).where(live_runs.c.recording_id == recording_id)
        query = select(live_segments).where(live_segments.c.recording_id == recording_id)
        if run is not None:
            runs_query = runs_query.where(live_runs.c.run == run)
            query = query.where(live_segments.c.run == run)
        if index is not None:
            query = query.where(live_segments.c.idx == index)
        runs = {
            row["run"]: LiveRun(
                run=row["run"],
                init_sha256=row["init_sha256"],
                init_size=row["init_size"],
                codecs=row["codecs"],
                width=row["width"],
                height=row["height"],
                source=row["source"],
                ended=row["ended"],
            )
            for row in (await self._conn.execute(runs_query)).mappings()
        }
        for row in (await self._conn.execute(query)).mappings():
            described = runs.get(row["run"])
            if described is not None:
                described.segments[row["idx"]] = LiveSegment(
                    run=row["run"], index=row["idx"], size=row["size"], sha256=row["sha256"], duration_s=row["duration"]
                )
        return LiveStream(runs=runs)

    async def add_run(self, recording_id: str, run: LiveRun, *, at: datetime) -> bool:
        """Insert the run; False when it is there already (another request stored it first)."""
        values = {
            "recording_id": recording_id,
            "run": run.run,
            "init_sha256": run.init_sha256,
            "init_size": run.init_size,
            "codecs": run.codecs,
            "width": run.width,
            "height": run.height,
            "source": run.source,
            "ended": run.ended,
            "created_at": at,
        }
        return await self._insert_new(live_runs, values)

    async def describe_run(self, recording_id: str, run: LiveRun) -> None:
        """Store the init segment of a run that was ended before it arrived."""
        await self._conn.execute(
            update(live_runs)
            .where(live_runs.c.recording_id == recording_id, live_runs.c.run == run.run)
            .values(
                init_sha256=run.init_sha256,
                init_size=run.init_size,
                codecs=run.codecs,
                width=run.width,
                height=run.height,
                source=run.source,
            )
        )

    async def end_run(self, recording_id: str, run: int, segments: int) -> None:
        await self._conn.execute(
            update(live_runs)
            .where(live_runs.c.recording_id == recording_id, live_runs.c.run == run, live_runs.c.ended.is_(None))
            .values(ended=segments)
        )

    async def add_segment(self, recording_id: str, segment: LiveSegment, *, at: datetime) -> bool:
        """Insert the segment; False when one is there already under its index."""
        values = {
            "recording_id": recording_id,
            "run": segment.run,
            "idx": segment.index,
            "size": segment.size,
            "sha256": segment.sha256,
            "duration": segment.duration_s,
            "created_at": at,
        }
        return await self._insert_new(live_segments, values)

    async def _insert_new(self, table: Table, values: dict[str, object]) -> bool:
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
        result = await self._conn.execute(statement)
        return result.rowcount == 1
