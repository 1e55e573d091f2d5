"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from framecast import __version__
from framecast.api import control, errors, health, recordings
from framecast.bootstrap import Container


def create_app(container: Container, *, background: bool = True) -> FastAPI:
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
    app.include_router(control.router)
    return app
