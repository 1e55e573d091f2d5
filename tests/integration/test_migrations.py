"""The Alembic migrations produce exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from framecast.adapters.sql.database import create_engine
from framecast.adapters.sql.migrate import MIGRATION_LOCK, alembic_config, upgrade_async
from framecast.adapters.sql.tables import metadata


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def schema_diff(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_diff)
    finally:
        await engine.dispose()


async def test_migrations_match_the_models(database_url: str) -> None:
    await upgrade_async(database_url)
    assert await schema_diff(database_url) == []


async def test_migrations_go_down_and_up_again(database_url: str) -> None:
    await upgrade_async(database_url)
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "base")
    assert len(await schema_diff(database_url)) > 0
    await upgrade_async(database_url)
    assert await schema_diff(database_url) == []


# SQLite is the one-process embedded default: no instance starts beside it.
@pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_instances_starting_at_once_migrate_one_after_the_other(database_url: str, tmp_path: Path) -> None:
    """A fleet starts its instances together and each migrates on start: on PostgreSQL a migration waits for the
    migration lock (held here as another instance would), then finds its way."""
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "base")
    env = {**os.environ, "FRAMECAST_DATABASE_URL": database_url, "FRAMECAST_DATA_DIR": str(tmp_path)}
    engine = create_engine(database_url)
    try:
        async with engine.connect() as holder:
            await holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            migration = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "framecast", "migrate", env=env, stderr=asyncio.subprocess.PIPE
            )
            await asyncio.sleep(3)
            assert migration.returncode is None  # waiting for the lock
            assert len(await schema_diff(database_url)) > 0
            await holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            _, stderr = await migration.communicate()
    finally:
        await engine.dispose()
    assert migration.returncode == 0, stderr
    assert await schema_diff(database_url) == []
