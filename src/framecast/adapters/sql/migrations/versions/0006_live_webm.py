"""live WebM runs: what a run's client sends (fMP4 stored as sent, or WebM transcoded as it arrives)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("live_runs") as batch:
        batch.add_column(sa.Column("source", sa.String(8), nullable=False, server_default="mp4"))


def downgrade() -> None:
    with op.batch_alter_table("live_runs") as batch:
        batch.drop_column("source")
