"""framecast as a child process of a test, for what only real processes show (kill -9, several instances)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path


@contextlib.asynccontextmanager
async def framecast(command: str, env: dict[str, str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`framecast COMMAND` until the block ends or the test kills it, then SIGTERM (SIGKILL after 15 s).

    Its standard error goes to `log`; standard output is piped (`serve` prints the first start's token there).
    """
    with log.open("ab") as stderr:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "framecast", command, env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
    try:
        yield child
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.wait(), timeout=15)
            except TimeoutError:
                child.kill()
                await child.wait()
