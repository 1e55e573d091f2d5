"""UserRepository on SQLAlchemy Core; creating a user also creates their personal workspace."""

from __future__ import annotations

from sqlalchemy import func, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from framecast.adapters.sql.tables import api_tokens, users, workspaces
from framecast.domain.errors import NotFound
from framecast.domain.users import ApiToken, User


def _user(row: RowMapping) -> User:
    return User(id=row["id"], email=row["email"], workspace_id=row["workspace_id"], created_at=row["created_at"])


class SqlUserRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, user: User) -> None:
        await self._conn.execute(
            insert(workspaces).values(
                id=user.workspace_id, name=f"{user.email}'s workspace", personal=True, created_at=user.created_at
            )
        )
        await self._conn.execute(
            insert(users).values(
                id=user.id, email=user.email, workspace_id=user.workspace_id, created_at=user.created_at
            )
        )

    async def by_email(self, email: str) -> User | None:
        row = (await self._conn.execute(select(users).where(users.c.email == email))).mappings().first()
        return _user(row) if row else None

    async def get(self, user_id: str) -> User:
        row = (await self._conn.execute(select(users).where(users.c.id == user_id))).mappings().first()
        if row is None:
            raise NotFound("user", user_id)
        return _user(row)

    async def count(self) -> int:
        return int((await self._conn.execute(select(func.count()).select_from(users))).scalar_one())

    async def add_token(self, token: ApiToken) -> None:
        await self._conn.execute(
            insert(api_tokens).values(
                id=token.id,
                user_id=token.user_id,
                token_hash=token.token_hash,
                name=token.name,
                created_at=token.created_at,
            )
        )

    async def by_token_hash(self, token_hash: str) -> User | None:
        query = (
            select(users)
            .join(api_tokens, api_tokens.c.user_id == users.c.id)
            .where(api_tokens.c.token_hash == token_hash)
        )
        row = (await self._conn.execute(query)).mappings().first()
        return _user(row) if row else None
