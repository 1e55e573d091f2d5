"""The ASGI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request, Response
from starlette.types import Receive, Scope, Send

from framecast import __version__
from framecast.api import control, errors, health, live, media, recordings, shared, uploads
from framecast.bootstrap import Container
from framecast.settings import Settings
from framecast.web import assets, pages

log = logging.getLogger(__name__)


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

    def not_found_page(request: Request) -> Awaitable[Response] | None:
        return pages.not_found_page(request, container) if pages.wants_page(request) else None

    errors.install(app, not_found_page=not_found_page)
    app.include_router(health.router)
    app.include_router(recordings.router)
    app.include_router(shared.router)
    app.include_router(uploads.router)
    app.include_router(live.router)
    app.include_router(media.router)
    app.include_router(pages.router)
    app.mount(assets.STATIC_PATH, assets.static_app(), name="static")
    if not assets.built():
        log.error("the web app is not built: run `make setup` (pages will have no styles or scripts)")
    return FramecastApp(app, container)


def server_config(app: FramecastApp, settings: Settings, *, log_level: str = "info") -> uvicorn.Config:
    """How uvicorn serves framecast: sans-I/O websockets without permessage-deflate (it costs about 35 KB per idle
    connection), frames up to 1 MiB (64 KiB is enforced per message with an ERROR), pings to keep idle sessions."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=1024 * 1024,
        ws_ping_interval=settings.ws_ping_interval_seconds,
        ws_ping_timeout=settings.ws_ping_interval_seconds,
        lifespan="on",
        log_level=log_level,
        access_log=False,
    )
