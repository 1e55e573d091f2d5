"""Typed FastAPI dependencies: the container, the authenticated user.

A caller is a script with `Authorization: Bearer <API token>`, or a signed-in browser with the session cookie. A
browser's writes (anything but GET, HEAD and OPTIONS) must also send the session's CSRF token in `X-CSRF-Token`.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request
from starlette.requests import HTTPConnection

from framecast.bootstrap import Container
from framecast.domain.users import User
from framecast.services.accounts import authenticate

SESSION_COOKIE = "framecast_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_container(connection: HTTPConnection) -> Container:
    return cast(Container, connection.app.state.container)


ContainerDep = Annotated[Container, Depends(get_container)]


def bearer_token(connection: HTTPConnection) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def caller(request: Request, container: Container) -> User | None:
    """The bearer token's or the session cookie's user; None when the request carries neither.

    A bad token is 401 at once, and a cookie-authenticated write without the session's CSRF token is 403: neither
    falls back to anonymous.
    """
    token = bearer_token(request)
    if token is not None:
        user = await authenticate(uow=container.uow, token=token)
        if user is None:
            raise HTTPException(401, "the token is not valid", headers={"WWW-Authenticate": "Bearer"})
        return user
    session = request.cookies.get(SESSION_COOKIE)
    if not session:
        return None
    user = await container.sessions.user(session)
    if user is None:
        raise HTTPException(401, "your session has ended; sign in again")
    if request.method not in SAFE_METHODS and not container.sessions.csrf_valid(
        session, request.headers.get(CSRF_HEADER)
    ):
        raise HTTPException(403, "send the page's CSRF token in X-CSRF-Token with the session cookie")
    return user


async def current_user(request: Request, container: ContainerDep) -> User:
    user = await caller(request, container)
    if user is None:
        raise HTTPException(
            401, "send `Authorization: Bearer <token>`, or sign in", headers={"WWW-Authenticate": "Bearer"}
        )
    return user


UserDep = Annotated[User, Depends(current_user)]
