"""RecordingRepository on SQLAlchemy Core, with optimistic locking on `version`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from framecast.adapters.sql.tables import recordings, share_links
from framecast.domain.errors import ConcurrentUpdate, NotFound
from framecast.domain.media import MediaSet
from framecast.domain.recordings import Recording, RecordingStatus, RecordingType, StopReason
from framecast.domain.sharing import LinkAccess, ShareLink

_COLUMNS = [c.name for c in recordings.columns if c.name not in ("deadline_at",)]


def _to_row(recording: Recording) -> dict[str, Any]:
    row = {name: getattr(recording, name) for name in _COLUMNS}
    row["status"] = recording.status.value
    row["recording_type"] = recording.recording_type.value
    row["stop_reason"] = recording.stop_reason.value if recording.stop_reason else None
    row["deadline_at"] = recording.deadline_at
    row["media"] = recording.media.to_dict() if recording.media else None
    return row


def _from_row(row: RowMapping) -> Recording:
    values = {name: row[name] for name in _COLUMNS}
    values["status"] = RecordingStatus(row["status"])
    values["recording_type"] = RecordingType(row["recording_type"])
    values["stop_reason"] = StopReason(row["stop_reason"]) if row["stop_reason"] else None
    values["settings"] = dict(row["settings"] or {})
    values["client_metadata"] = dict(row["client_metadata"] or {})
    values["upload_parts"] = [int(size) for size in row["upload_parts"] or []]
    values["media"] = MediaSet.from_dict(row["media"]) if row["media"] else None
    return Recording(**values)


class SqlRecordingRepository:
    def __init__(self, connection: AsyncConnection, seen: list[Recording]) -> None:
        self._conn = connection
        self._seen = seen

    async def add(self, recording: Recording) -> None:
        recording.version = 1
        await self._conn.execute(insert(recordings).values(**_to_row(recording)))
        # The primary share link is part of the recording: it is made, and goes, with it.
        link = ShareLink(id=recording.share_id, recording_id=recording.id, created_at=recording.created_at)
        await self._conn.execute(
            insert(share_links).values(
                id=link.id,
                recording_id=link.recording_id,
                access=link.access.value,
                allow_download=link.allow_download,
                created_at=link.created_at,
                expires_at=link.expires_at,
                revoked_at=link.revoked_at,
            )
        )
        self._seen.append(recording)

    async def get(self, recording_id: str, *, owner_id: str | None = None) -> Recording:
        query = select(recordings).where(recordings.c.id == recording_id)
        if owner_id is not None:
            query = query.where(recordings.c.owner_id == owner_id)
        row = (await self._conn.execute(query)).mappings().first()
        if row is None:
            raise NotFound("recording", recording_id)
        return _from_row(row)

    async def save(self, recording: Recording) -> None:
        expected = recording.version
        recording.version = expected + 1
        result = await self._conn.execute(
            update(recordings)
            .where(recordings.c.id == recording.id, recordings.c.version == expected)
            .values(**_to_row(recording))
        )
        if result.rowcount != 1:
            recording.version = expected
            raise ConcurrentUpdate(f"recording {recording.id} changed while we were working on it")
        self._seen.append(recording)

    async def delete(self, recording: Recording) -> None:
        await self._conn.execute(delete(share_links).where(share_links.c.recording_id == recording.id))
        await self._conn.execute(delete(recordings).where(recordings.c.id == recording.id))
        self._seen.append(recording)

    async def list(
        self,
        *,
        owner_id: str,
        status: RecordingStatus | None,
        limit: int,
        before: tuple[datetime, str] | None,
        title: str | None = None,
    ) -> Sequence[Recording]:
        query = select(recordings).where(recordings.c.owner_id == owner_id)
        if status is not None:
            query = query.where(recordings.c.status == status.value)
        if title:
            # Case-insensitive substring, with LIKE's wildcards in the search taken literally.
            pattern = "%" + title.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(func.lower(recordings.c.title).like(pattern, escape="\\"))
        if before is not None:
            created, ident = before
            query = query.where(
                or_(
                    recordings.c.created_at < created,
                    and_(recordings.c.created_at == created, recordings.c.id < ident),
                )
            )
        query = query.order_by(recordings.c.created_at.desc(), recordings.c.id.desc()).limit(limit)
        return [_from_row(row) for row in (await self._conn.execute(query)).mappings()]

    async def due(self, *, at: datetime, limit: int) -> Sequence[str]:
        query = (
            select(recordings.c.id)
            .where(recordings.c.deadline_at <= at)
            .order_by(recordings.c.deadline_at)
            .limit(limit)
        )
        return list((await self._conn.execute(query)).scalars())


class SqlShareLinkRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def get(self, link_id: str) -> ShareLink:
        row = (await self._conn.execute(select(share_links).where(share_links.c.id == link_id))).mappings().first()
        if row is None:
            raise NotFound("share link", link_id)
        return ShareLink(
            id=row["id"],
            recording_id=row["recording_id"],
            created_at=row["created_at"],
            access=LinkAccess(row["access"]),
            allow_download=row["allow_download"],
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
        )
