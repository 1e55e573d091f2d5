"""Reference servers: uvicorn configured exactly as `framecast serve`, with a trivial control-channel endpoint.

`--app asgi` is a raw ASGI callable; `--app fastapi` is one FastAPI WebSocket route. Both accept, send one small
READY frame, then echo. Between the bare `websockets` server and framecast they show what uvicorn's
websockets-sansio protocol and the FastAPI/Starlette stack cost before any framecast code runs. Prints one line on
stdout once it listens.

    python -m bench.baseline_asgi --app fastapi --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from bench.baseline_echo import MAX_SIZE, PING_SECONDS, READY

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    else:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": READY})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text") or ""})


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.websocket("/")
    async def control(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(READY)
        try:
            while True:
                await ws.send_text(await ws.receive_text())
        except WebSocketDisconnect:
            return

    return app


async def run(app: str, host: str, port: int) -> None:
    # The WebSocket settings of framecast.cli._serve, so only the application differs.
    config = uvicorn.Config(
        asgi_app if app == "asgi" else fastapi_app(),
        host=host,
        port=port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=MAX_SIZE,
        ws_ping_interval=PING_SECONDS,
        ws_ping_timeout=PING_SECONDS,
        lifespan="on",
        log_level="info",
        access_log=False,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            return
        await asyncio.sleep(0.01)
    print(f"listening on {host}:{port}", flush=True)
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", choices=["asgi", "fastapi"], required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(run(args.app, args.host, args.port))


if __name__ == "__main__":
    main()
