"""media on recordings: the published media set and the sizes of the uploaded parts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("upload_parts", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("media", sa.JSON(), nullable=True))
    with op.batch_alter_table("recordings") as batch:
        batch.alter_column("upload_parts", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("media")
        batch.drop_column("upload_parts")
