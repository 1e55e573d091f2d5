"""outbox: a partial index on the pending rows, so the relay's read does not grow with what was already sent

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 19:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("dispatched_at IS NULL")


def upgrade() -> None:
    op.drop_index("ix_outbox_dispatched_at", table_name="outbox")
    op.create_index("ix_outbox_pending", "outbox", ["position"], postgresql_where=PENDING, sqlite_where=PENDING)


def downgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.create_index("ix_outbox_dispatched_at", "outbox", ["dispatched_at"])
