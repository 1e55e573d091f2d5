"""Typed FastAPI dependencies: the container, the authenticated user."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request
from starlette.requests import HTTPConnection

from framecast.bootstrap import Container
from framecast.domain.users import User
from framecast.services.accounts import authenticate


def get_container(connection: HTTPConnection) -> Container:
    return cast(Container, connection.app.state.container)


ContainerDep = Annotated[Container, Depends(get_container)]


def bearer_token(connection: HTTPConnection) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def current_user(request: Request, container: ContainerDep) -> User:
    token = bearer_token(request)
    if token is None:
        raise HTTPException(401, "send `Authorization: Bearer <token>`", headers={"WWW-Authenticate": "Bearer"})
    user = await authenticate(uow=container.uow, token=token)
    if user is None:
        raise HTTPException(401, "the token is not valid", headers={"WWW-Authenticate": "Bearer"})
    return user


UserDep = Annotated[User, Depends(current_user)]
