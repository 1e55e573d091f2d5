"""web sign-in and share links: password hashes, browser sessions, a primary share link per recording

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 15:00:00.000000
"""

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(200), nullable=True))
    _create_web_sessions()

    # Every existing recording gets its primary link, as new ones do when they are made.
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("share_id", sa.String(32), nullable=True))
    recordings = sa.table(
        "recordings",
        sa.column("id", sa.String),
        sa.column("share_id", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    connection = op.get_bind()
    existing = connection.execute(sa.select(recordings.c.id, recordings.c.created_at)).all()
    links = []
    for recording_id, created_at in existing:
        share_id = secrets.token_urlsafe(16)
        connection.execute(recordings.update().where(recordings.c.id == recording_id).values(share_id=share_id))
        links.append(
            {
                "id": share_id,
                "recording_id": recording_id,
                "access": "unlisted",
                "allow_download": True,
                "created_at": created_at or datetime.now(UTC),
            }
        )
    with op.batch_alter_table("recordings") as batch:
        batch.alter_column("share_id", existing_type=sa.String(32), nullable=False)
        batch.create_unique_constraint("uq_recordings_share_id", ["share_id"])

    share_links = op.create_table(
        "share_links",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("recording_id", sa.String(36), nullable=False),
        sa.Column("access", sa.String(20), nullable=False),
        sa.Column("allow_download", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_share_links"),
        sa.ForeignKeyConstraint(
            ["recording_id"], ["recordings.id"], name="fk_share_links_recording_id_recordings", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_share_links_recording_id", "share_links", ["recording_id"])
    if links:
        op.bulk_insert(share_links, links)


def _create_web_sessions() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_web_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_web_sessions_token_hash"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_web_sessions_user_id_users", ondelete="CASCADE"),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_share_links_recording_id", table_name="share_links")
    op.drop_table("share_links")
    with op.batch_alter_table("recordings") as batch:
        batch.drop_constraint("uq_recordings_share_id", type_="unique")
        batch.drop_column("share_id")
    op.drop_index("ix_web_sessions_expires_at", table_name="web_sessions")
    op.drop_index("ix_web_sessions_user_id", table_name="web_sessions")
    op.drop_table("web_sessions")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_hash")
