"""UserRepository on SQLAlchemy Core; creating a user also creates their personal workspace."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from framecast.adapters.sql.tables import api_tokens, users, web_sessions, workspaces
from framecast.domain.errors import NotFound
from framecast.domain.users import ApiToken, User, WebSession


def _user(row: RowMapping) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        workspace_id=row["workspace_id"],
        created_at=row["created_at"],
        password_hash=row["password_hash"],
    )


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
                id=user.id,
                email=user.email,
                workspace_id=user.workspace_id,
                created_at=user.created_at,
                password_hash=user.password_hash,
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

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))

    async def add_session(self, session: WebSession) -> None:
        await self._conn.execute(
            insert(web_sessions).values(
                id=session.id,
                user_id=session.user_id,
                token_hash=session.token_hash,
                created_at=session.created_at,
                expires_at=session.expires_at,
            )
        )

    async def by_session_hash(self, token_hash: str, *, at: datetime) -> User | None:
        query = (
            select(users)
            .join(web_sessions, web_sessions.c.user_id == users.c.id)
            .where(web_sessions.c.token_hash == token_hash, web_sessions.c.expires_at > at)
        )
        row = (await self._conn.execute(query)).mappings().first()
        return _user(row) if row else None

    async def delete_session(self, token_hash: str) -> None:
        await self._conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == token_hash))

    async def delete_sessions_of(self, user_id: str) -> None:
        await self._conn.execute(delete(web_sessions).where(web_sessions.c.user_id == user_id))

    async def delete_expired_sessions(self, *, at: datetime) -> int:
        result = await self._conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= at))
        return int(result.rowcount or 0)
