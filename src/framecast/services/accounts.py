"""Users and API tokens: creating them and authenticating a bearer token."""

from __future__ import annotations

import uuid

from framecast.domain.users import ApiToken, User, hash_token, new_token, normalize_email
from framecast.ports import Clock, UnitOfWorkFactory


async def ensure_user(*, uow: UnitOfWorkFactory, clock: Clock, email: str) -> User:
    """Return the user with `email`, creating them (with a personal workspace) if needed."""
    async with uow() as tx:
        existing = await tx.users.by_email(normalize_email(email))
        if existing is not None:
            return existing
        user = User.create(email=email, at=clock.now())
        await tx.users.add(user)
        await tx.commit()
        return user


async def create_token(*, uow: UnitOfWorkFactory, clock: Clock, user: User, name: str = "") -> str:
    """Issue a new API token for `user`; the plain token is returned once and never stored."""
    token = new_token()
    async with uow() as tx:
        await tx.users.add_token(
            ApiToken(
                id=str(uuid.uuid4()), user_id=user.id, token_hash=hash_token(token), name=name, created_at=clock.now()
            )
        )
        await tx.commit()
    return token


async def authenticate(*, uow: UnitOfWorkFactory, token: str) -> User | None:
    async with uow() as tx:
        return await tx.users.by_token_hash(hash_token(token))


async def bootstrap_owner(*, uow: UnitOfWorkFactory, clock: Clock, email: str) -> str | None:
    """On a brand-new install, create the owner and return their first token; None when users already exist."""
    async with uow() as tx:
        if await tx.users.count() > 0:
            return None
    user = await ensure_user(uow=uow, clock=clock, email=email)
    return await create_token(uow=uow, clock=clock, user=user, name="first start")
