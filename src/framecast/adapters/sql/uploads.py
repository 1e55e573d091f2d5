"""UploadRepository on SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from framecast.adapters.sql.tables import uploads
from framecast.domain.errors import NotFound
from framecast.domain.uploads import Upload, UploadKind


def _to_row(upload: Upload) -> dict[str, Any]:
    return {
        "id": upload.id,
        "owner_id": upload.owner_id,
        "recording_id": upload.recording_id,
        "length": upload.length,
        "offset": upload.offset,
        "metadata": upload.metadata,
        "kind": upload.kind.value,
        "parts": upload.parts,
        "created_at": upload.created_at,
        "expires_at": upload.expires_at,
        "completed_at": upload.completed_at,
    }


def _from_row(row: RowMapping) -> Upload:
    return Upload(
        id=row["id"],
        owner_id=row["owner_id"],
        recording_id=row["recording_id"],
        length=row["length"],
        offset=row["offset"],
        metadata=dict(row["metadata"] or {}),
        kind=UploadKind(row["kind"]),
        parts=list(row["parts"] or []),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        completed_at=row["completed_at"],
    )


class SqlUploadRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, upload: Upload) -> None:
        await self._conn.execute(insert(uploads).values(**_to_row(upload)))

    async def get(self, upload_id: str) -> Upload:
        row = (await self._conn.execute(select(uploads).where(uploads.c.id == upload_id))).mappings().first()
        if row is None:
            raise NotFound("upload", upload_id)
        return _from_row(row)

    async def save(self, upload: Upload) -> None:
        await self._conn.execute(update(uploads).where(uploads.c.id == upload.id).values(**_to_row(upload)))

    async def delete(self, upload: Upload) -> None:
        await self._conn.execute(delete(uploads).where(uploads.c.id == upload.id))

    async def expired(self, *, at: datetime, limit: int) -> Sequence[str]:
        query = (
            select(uploads.c.id)
            .where(uploads.c.expires_at <= at, uploads.c.completed_at.is_(None))
            .order_by(uploads.c.expires_at)
            .limit(limit)
        )
        return list((await self._conn.execute(query)).scalars())

    async def unfinished_for(self, recording_id: str) -> Sequence[str]:
        query = select(uploads.c.id).where(uploads.c.recording_id == recording_id, uploads.c.completed_at.is_(None))
        return list((await self._conn.execute(query)).scalars())
