"""The terminal side of a recording: a live status line and single-key controls."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator

from rich.console import Console
from rich.status import Status
from rich.text import Text

from framecast.agent.recorder import Recorder, State

KEYS_HELP = "[p] pause/resume  [s] stop  [c] cancel"
STYLES = {State.RECORDING: "bold red", State.PAUSED: "bold yellow", State.UPLOADING: "bold cyan"}


def status_line(recorder: Recorder, *, confirming: bool = False) -> Text:
    """One line: state, time recorded, upload progress, capture bitrate, connection, and the keys."""
    elapsed = recorder.elapsed_s
    minutes, seconds = divmod(int(elapsed), 60)
    hours, minutes = divmod(minutes, 60)
    clock = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"
    captured, sent = recorder.captured_bytes, recorder.sent_bytes
    bitrate = captured * 8 / elapsed / 1e6 if elapsed > 1 else 0.0
    marker = {State.RECORDING: "● REC", State.PAUSED: "❚❚ PAUSED"}.get(recorder.state, recorder.state.value.upper())
    line = Text()
    line.append(marker, style=STYLES.get(recorder.state, "bold"))
    line.append(f"  {clock}  ")
    line.append(f"uploaded {sent / 1e6:.1f}/{captured / 1e6:.1f} MB  {bitrate:.1f} Mb/s")
    if not recorder.connected and recorder.state in (State.RECORDING, State.PAUSED, State.STOPPING):
        line.append("  reconnecting…", style="yellow")
    if confirming:
        line.append("  Cancel and discard this recording? [y/N]", style="bold magenta")
    elif recorder.state in (State.RECORDING, State.PAUSED):
        line.append(f"  {KEYS_HELP}", style="dim")
    return line


async def drive(recorder: Recorder, console: Console) -> None:
    """Show the status line and act on keys until the recorder leaves RECORDING/PAUSED."""
    confirming = False
    with console.status("") as status, _keys() as keys:
        updater = asyncio.create_task(_refresh(recorder, status, lambda: confirming))
        try:
            async for key in keys:
                if confirming:
                    confirming = False
                    if key in ("y", "Y"):
                        recorder.cancel()
                    continue
                if key in ("p", "P", " "):
                    recorder.resume() if recorder.state is State.PAUSED else recorder.pause()
                elif key in ("s", "S", "\n", "\r"):
                    recorder.stop()
                elif key in ("c", "C"):
                    confirming = True
        finally:
            updater.cancel()


async def _refresh(recorder: Recorder, status: Status, confirming: Callable[[], bool]) -> None:
    while True:
        status.update(status_line(recorder, confirming=confirming()))
        await asyncio.sleep(0.25)


@contextlib.contextmanager
def _keys() -> Iterator[AsyncIterator[str]]:
    """Keys pressed, one at a time, without Enter (the terminal is put back as it was afterwards)."""
    if sys.platform == "win32":
        yield _windows_keys()
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    queue: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    loop.add_reader(fd, lambda: queue.put_nowait(os.read(fd, 1).decode(errors="replace")))
    try:
        yield _drain(queue)
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _drain(queue: asyncio.Queue[str]) -> AsyncIterator[str]:
    while True:
        yield await queue.get()


async def _windows_keys() -> AsyncIterator[str]:
    import msvcrt

    while True:
        if msvcrt.kbhit():  # type: ignore[attr-defined,unused-ignore]
            yield msvcrt.getwch()  # type: ignore[attr-defined,unused-ignore]
        else:
            await asyncio.sleep(0.05)
