"""One run of capture: the ffmpeg process that records from a start or resume to the next pause or stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

# ffmpeg writes its trailer and exits within a second of `q`; a stuck device gets this long before SIGTERM, then KILL.
STOP_GRACE_SECONDS = 10.0


class CaptureFailed(Exception):
    """ffmpeg could not capture; the message carries what ffmpeg said."""


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, have the kernel send ffmpeg SIGTERM when the agent dies (even by kill -9): ffmpeg then stops instead
    of capturing into the void, its file ending on the last whole fragment it wrote (the one it was filling is lost).
    Elsewhere the agent's own shutdown stops it."""
    if not sys.platform.startswith("linux"):
        return None

    def prctl() -> None:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)

    return prctl


class CaptureRun:
    """A running ffmpeg capture writing one fragmented MP4; `media_ms` follows ffmpeg's own progress."""

    def __init__(self, argv: list[str], *, output: Path, log: Path) -> None:
        # -progress reports the media time written, which is the run's true length whatever the wall clock did. It
        # goes to a file, not a pipe: if the agent dies, a pipe would kill ffmpeg (SIGPIPE) before it could finish
        # the fragment it holds, and those seconds would be lost.
        self._progress = output.with_suffix(".progress")
        self._argv = [argv[0], "-progress", f"file:{self._progress}", "-stats_period", "0.5", *argv[1:]]
        self.output = output
        self._log_path = log
        self._process: asyncio.subprocess.Process | None = None

    @property
    def media_ms(self) -> int:
        """Media time written so far, from the newest progress report."""
        try:
            with self._progress.open("rb") as handle:
                handle.seek(max(0, handle.seek(0, 2) - 1024))
                tail = handle.read().decode(errors="replace")
        except FileNotFoundError:
            return 0
        for line in reversed(tail.splitlines()):
            key, _, value = line.partition("=")
            if key == "out_time_us" and value.strip().isdigit():
                return int(value) // 1000
        return 0

    async def start(self) -> None:
        extra: dict[str, object] = {}
        if sys.platform == "win32":
            extra["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            # Its own session: a Ctrl-C at the terminal reaches the agent, which stops ffmpeg in order.
            extra["start_new_session"] = True
            extra["preexec_fn"] = _die_with_parent()
        with self._log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
                **extra,  # type: ignore[arg-type]
            )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def wait(self) -> int:
        """Wait for ffmpeg to exit (a source that ran out, a device that failed, or `stop`); returns its code."""
        assert self._process is not None, "start() first"
        return await self._process.wait()

    async def stop(self) -> int:
        """End the run the way a person at ffmpeg's console would (`q`), so the file ends on a whole fragment."""
        process = self._process
        if process is None:
            return 0
        if process.returncode is None and process.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                process.stdin.write(b"q")
                await process.stdin.drain()
                process.stdin.close()
        for escalate in (process.terminate, process.kill):
            try:
                async with asyncio.timeout(STOP_GRACE_SECONDS):
                    return await self.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    escalate()
        return await self.wait()

    def error_text(self, lines: int = 8) -> str:
        """The end of what ffmpeg said, for a person."""
        try:
            text = self._log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])
