"""Apply Alembic migrations programmatically (the CLI's `migrate` and start-up call this)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")

# Every instance of a fleet migrates on start. On PostgreSQL they take turns on this advisory lock, held until the
# migration commits, so the second finds the schema up to date instead of racing the first to create it.
MIGRATION_LOCK = 0x6672616D65  # "frame"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`. Blocking: it runs its own event loop."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Same as `upgrade`, from inside a running event loop."""
    await asyncio.to_thread(upgrade, url, revision)
