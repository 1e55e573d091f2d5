"""The Alembic migrations produce exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from framecast.adapters.sql.database import create_engine
from framecast.adapters.sql.migrate import alembic_config, upgrade_async
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
