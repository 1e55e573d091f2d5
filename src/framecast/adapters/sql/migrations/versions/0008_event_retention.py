"""outbox and processed_events: indexes for deleting what is past the event retention

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 22:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_dispatched_at", "outbox", ["dispatched_at"])
    op.create_index("ix_processed_events_event_id", "processed_events", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_processed_events_event_id", table_name="processed_events")
    op.drop_index("ix_outbox_dispatched_at", table_name="outbox")
