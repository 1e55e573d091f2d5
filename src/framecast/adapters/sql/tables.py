"""The relational schema (SQLAlchemy Core). Alembic migrations must produce exactly this; a test checks it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite (which has no time zones) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("workspace_id", String(36), ForeignKey("workspaces.id"), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("password_hash", String(200), nullable=True),
)

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("personal", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("created_at", UtcDateTime(), nullable=False),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False, index=True),
)

recordings = Table(
    "recordings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("workspace_id", String(36), ForeignKey("workspaces.id"), nullable=False),
    Column("title", String(500), nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("recording_type", String(20), nullable=False),
    Column("settings", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=True),
    Column("started_at", UtcDateTime(), nullable=True),
    Column("stopped_at", UtcDateTime(), nullable=True),
    Column("paused_at", UtcDateTime(), nullable=True),
    Column("paused_ms", BigInteger, nullable=False, default=0),
    Column("duration_ms", BigInteger, nullable=True),
    Column("client_duration_ms", BigInteger, nullable=True),
    Column("max_duration_ms", BigInteger, nullable=False),
    Column("segment_count", Integer, nullable=False, default=0),
    Column("stop_reason", String(30), nullable=True),
    Column("failure_reason", Text, nullable=True),
    Column("client_metadata", JSON, nullable=False),
    Column("upload_key", String(500), nullable=True),
    Column("upload_size", BigInteger, nullable=True),
    Column("upload_parts", JSON, nullable=False, default=list),
    Column("media", JSON, nullable=True),
    Column("prepare_expires_at", UtcDateTime(), nullable=True),
    Column("grace_expires_at", UtcDateTime(), nullable=True),
    Column("upload_expires_at", UtcDateTime(), nullable=True),
    # Derived from the deadlines above and kept in step by the repository, so the sweeper's query is one index scan.
    Column("deadline_at", UtcDateTime(), nullable=True, index=True),
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("share_id", String(32), nullable=False, unique=True),
    Column("version", Integer, nullable=False),
    Index("ix_recordings_owner_created", "owner_id", "created_at", "id"),
)

share_links = Table(
    "share_links",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("recording_id", String(36), ForeignKey("recordings.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("access", String(20), nullable=False),
    Column("allow_download", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("recording_id", String(36), ForeignKey("recordings.id", ondelete="SET NULL"), nullable=True, index=True),
    Column("length", BigInteger, nullable=True),
    Column("offset", BigInteger, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("kind", String(10), nullable=False),
    Column("parts", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False, index=True),
    Column("completed_at", UtcDateTime(), nullable=True),
)

outbox = Table(
    "outbox",
    metadata,
    Column("position", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("type", String(100), nullable=False),
    Column("subject", String(100), nullable=False),
    Column("time", UtcDateTime(), nullable=False),
    Column("data", JSON, nullable=False),
    Column("dispatched_at", UtcDateTime(), nullable=True),
    # What the relay reads, in order: only the pending rows, however long the dispatched history grows.
    Index(
        "ix_outbox_pending",
        "position",
        postgresql_where=text("dispatched_at IS NULL"),
        sqlite_where=text("dispatched_at IS NULL"),
    ),
    Index("ix_outbox_dispatched_at", "dispatched_at"),  # what the retention sweep deletes
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Index("ix_processed_events_event_id", "event_id"),  # deleted with their event (retention)
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(100), nullable=False),
    # No foreign key: a job may outlive its recording (cleaning up the blobs of a deleted one, say).
    Column("recording_id", String(36), nullable=True, index=True),
    Column("payload", JSON, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", UtcDateTime(), nullable=False),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_expires_at", UtcDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("progress", Float, nullable=False),
    Column("stage", String(100), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    # The claim query filters on status and orders by the rest.
    Index("ix_jobs_claim", "status", "priority", "run_after", "created_at"),
)

# A live recording's runs and segments (domain/live.py): the playlist is built from these rows on every request, so
# every instance serves the same one. The bytes are in the blob store.
live_runs = Table(
    "live_runs",
    metadata,
    Column("recording_id", String(36), ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True),
    Column("run", Integer, primary_key=True),
    Column("init_sha256", String(64), nullable=False),
    Column("init_size", Integer, nullable=False),
    Column("codecs", String(200), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("source", String(8), nullable=False, server_default="mp4"),
    Column("ended", Integer, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

live_segments = Table(
    "live_segments",
    metadata,
    Column("recording_id", String(36), ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True),
    Column("run", Integer, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("duration", Float, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
