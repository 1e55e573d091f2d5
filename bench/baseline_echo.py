"""The baseline: a bare `websockets` server configured as framecast's control channel, run as a subprocess.

On connect it sends one small READY frame, then echoes. Same settings as `framecast serve`: no compression,
pings every 20 s, 1 MiB frame limit. Prints one line on stdout once it listens.

    python -m bench.baseline_echo --port 8765
"""

from __future__ import annotations

import argparse
import asyncio

from websockets.asyncio.server import ServerConnection, serve

READY = '{"type": "READY", "data": {}}'
PING_SECONDS = 20.0
MAX_SIZE = 1024 * 1024


async def echo(ws: ServerConnection) -> None:
    await ws.send(READY)
    async for message in ws:
        await ws.send(message)


async def run(host: str, port: int) -> None:
    async with serve(
        echo,
        host,
        port,
        compression=None,
        ping_interval=PING_SECONDS,
        ping_timeout=PING_SECONDS,
        max_size=MAX_SIZE,
        backlog=2048,
    ) as server:
        print(f"listening on {host}:{port}", flush=True)
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(run(args.host, args.port))


if __name__ == "__main__":
    main()
