"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from framecast import __version__
from framecast.api import control, errors, health, recordings, uploads
from framecast.bootstrap import Container


class FramecastApp:
    """The ASGI entry point: control-channel WebSockets go straight to their handler, everything else to FastAPI."""

    def __init__(self, api: FastAPI, container: Container) -> None:
        self.api = api
        self._control = control.control_endpoint(container)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._control(scope, receive, send)
        if handler is not None:
            await handler
        else:
            await self.api(scope, receive, send)


def create_app(container: Container, *, background: bool = True) -> FramecastApp:
    """Build the app around a ready container; with `background`, the app runs the relay and sweeper loops."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if background:
            container.start_background()
        yield

    app = FastAPI(
        title="framecast",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.container = container
    errors.install(app)
    app.include_router(health.router)
    app.include_router(recordings.router)
    app.include_router(uploads.router)
    return FramecastApp(app, container)
