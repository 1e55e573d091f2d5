"""A recording from start to share link: capture runs, the control channel and the uploads, driven by intents.

People (keys, signals, `--duration`) and the server (FORCE_STOP, SESSION_EXPIRED, a deletion) both express what
should happen next as an intent on one queue; `run()` applies them in order, so a pause and a force stop arriving
together cannot tangle. What was captured is in the spool before anything else happens to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from framecast import __version__
from framecast.agent import fmp4
from framecast.agent.capture import CaptureSpec, Encoding, Platform, capture_argv
from framecast.agent.client import Recordings
from framecast.agent.control import Command, ControlChannel, ControlError
from framecast.agent.live import LiveClient
from framecast.agent.runs import CaptureRun
from framecast.agent.segments import SegmentUploader
from framecast.agent.spool import Entry, Run, Spool, Stage
from framecast.agent.tus import TusClient
from framecast.agent.uploader import Upload, Uploader, make_durable

log = logging.getLogger(__name__)


class State(StrEnum):
    STARTING = "starting"
    RECORDING = "recording"
    PAUSED = "paused"
    STOPPING = "stopping"
    UPLOADING = "uploading"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Intent(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"  # by the person (or --duration): the server is told
    SERVER_STOPPED = "server_stopped"  # the server stopped it (FORCE_STOP, time limit, grace): nothing to tell
    EXPIRED = "expired"  # the server let the session expire: what was captured goes up as a new recording
    DELETED = "deleted"  # the recording was deleted on the server: nothing to keep
    CANCEL = "cancel"
    ENDED = "ended"  # the capture ended by itself (a source ran out, a device went away)


@dataclass(frozen=True)
class Options:
    spec: CaptureSpec
    platform: Platform
    ffmpeg: str
    title: str = ""
    duration_s: float | None = None
    live_upload: bool = True  # live segments while recording; False: one tus upload after stop
    encoding: Encoding = field(default_factory=Encoding)


@dataclass
class _Session:
    entry: Entry
    channel: ControlChannel
    uploader: Upload


@dataclass
class Outcome:
    state: State
    recording_id: str
    share_url: str | None = None
    message: str = ""


class Recorder:
    """One recording session. Create it with `start()`, drive it with the intent methods, await `run()`."""

    def __init__(
        self, *, options: Options, recordings: Recordings, tus: TusClient, live: LiveClient, spool: Spool
    ) -> None:
        self.options = options
        self._recordings = recordings
        self._tus = tus
        self._live = live
        self._spool = spool
        self._intents: asyncio.Queue[Intent] = asyncio.Queue()
        self.state = State.STARTING
        self.reason = ""
        self._session: _Session | None = None
        self._run: CaptureRun | None = None
        self._active_since: float | None = None
        self._active_before = 0.0
        self._tasks: set[asyncio.Task[object]] = set()
        self.recording_id = ""
        self.share_url: str | None = None

    # -- what people and the server can ask for ---------------------------------------------------------------------

    def pause(self) -> None:
        self._intents.put_nowait(Intent.PAUSE)

    def resume(self) -> None:
        self._intents.put_nowait(Intent.RESUME)

    def stop(self) -> None:
        self._intents.put_nowait(Intent.STOP)

    def cancel(self) -> None:
        self._intents.put_nowait(Intent.CANCEL)

    # -- what the status line shows ----------------------------------------------------------------------------------

    @property
    def elapsed_s(self) -> float:
        """Time recorded, pauses excluded (media time when replaying a source faster than real time)."""
        if self.options.spec.source is not None and self.options.spec.source_speed != 1.0 and self._session:
            return (self._session.entry.journal.media_ms + (self._run.media_ms if self._run else 0)) / 1000
        running = time.monotonic() - self._active_since if self._active_since is not None else 0.0
        return self._active_before + running

    @property
    def sent_bytes(self) -> int:
        return self._session.uploader.sent if self._session else 0

    @property
    def captured_bytes(self) -> int:
        return self._session.uploader.captured() if self._session else 0

    @property
    def connected(self) -> bool:
        return self._session is not None and self._session.channel.connected.is_set()

    # -- the session -------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the recording on the server and its spool folder; capture starts with `run()`."""
        spec = self.options.spec
        created = await self._recordings.create(
            recording_type=spec.recording_type,
            title=self.options.title,
            settings={"fps": spec.fps, "agent": f"framecast/{__version__}", "platform": self.options.platform.value},
        )
        self.recording_id = str(created["id"])
        self.share_url = created.get("share_url")
        entry = self._spool.create(
            server=self._recordings.server,
            recording_id=self.recording_id,
            recording_type=spec.recording_type,
            title=self.options.title,
            live=self.options.live_upload,
        )
        uploader: Upload
        if self.options.live_upload:
            uploader = SegmentUploader(entry=entry, live=self._live, recording_id=self.recording_id)
        else:
            uploader = Uploader(entry=entry, tus=self._tus, recording_id=self.recording_id, live=False)
        channel = ControlChannel(
            recordings=self._recordings,
            recording_id=self.recording_id,
            ws_url=str(created["ws_url"]),
            next_seq=entry.next_seq,
            on_command=self._on_command,
        )
        uploader.capturing.clear()
        self._session = _Session(entry, channel, uploader)
        self._spawn(channel.run())

    @property
    def _s(self) -> _Session:
        if self._session is None:
            raise RuntimeError("start() the recorder first")
        return self._session

    async def run(self) -> Outcome:
        """Record until stopped, cancelled or ended by the server; then upload and return the share link."""
        entry, channel = self._s.entry, self._s.channel
        await self._open_run()
        self._spawn(self._started())
        if self.options.duration_s is not None:
            self._spawn(self._stop_after(self.options.duration_s))
        self._spawn(self._keep_durable())
        try:
            while True:
                intent = await self._intents.get()
                outcome = await self._apply(intent)
                if outcome is not None:
                    return outcome
        finally:
            await channel.close()
            for task in self._tasks:
                task.cancel()
            entry.release()

    async def _apply(self, intent: Intent) -> Outcome | None:
        entry, channel = self._s.entry, self._s.channel
        if intent is Intent.PAUSE and self.state is State.RECORDING:
            self.state = State.PAUSED
            self._spawn(channel.send("RECORDING_PAUSED"))
            await self._close_run()
        elif intent is Intent.RESUME and self.state is State.PAUSED:
            await self._open_run()
            self._spawn(channel.send("RECORDING_RESUMED"))
        elif intent is Intent.ENDED and self.state is State.RECORDING:
            if not any(fmp4.scan(entry.path(run)).fragments for run in entry.journal.runs):
                await self._discard(tell_server=True)
                return Outcome(State.FAILED, self.recording_id, message=self.reason)
            return await self._finish(tell_server=True, reason="the capture ended")
        elif intent is Intent.STOP and self.state in (State.RECORDING, State.PAUSED):
            return await self._finish(tell_server=True)
        elif intent is Intent.SERVER_STOPPED and self.state in (State.RECORDING, State.PAUSED, State.STARTING):
            return await self._finish(tell_server=False, reason=self.reason)
        elif intent is Intent.EXPIRED and self.state in (State.RECORDING, State.PAUSED, State.STARTING):
            return await self._finish(tell_server=False, reason="the session expired", as_import=True)
        elif intent is Intent.DELETED:
            await self._discard(tell_server=False)
            return Outcome(State.CANCELLED, self.recording_id, message="the recording was deleted on the server")
        elif intent is Intent.CANCEL and self.state in (State.RECORDING, State.PAUSED, State.STARTING):
            await self._discard(tell_server=True)
            return Outcome(State.CANCELLED, self.recording_id, message="cancelled; nothing was kept")
        return None

    async def _finish(self, *, tell_server: bool, reason: str = "", as_import: bool = False) -> Outcome:
        entry, channel, uploader = self._s.entry, self._s.channel, self._s.uploader
        self.state = State.STOPPING
        stopped = None
        if tell_server:
            data = {"duration_ms": int(self.elapsed_s * 1000), "metadata": {"runs": len(entry.journal.runs)}}
            stopped = asyncio.create_task(channel.send("RECORDING_STOPPED", data))
        await self._close_run()
        entry.journal.stage = Stage.STOPPED
        entry.save()
        if stopped is not None:
            with contextlib.suppress(ControlError):  # refused: the server had stopped it already (FORCE_STOP)
                await stopped
        self.state = State.UPLOADING
        entry.journal.stage = Stage.UPLOADING
        entry.save()
        if as_import:
            await uploader.discard()  # the expired recording takes nothing more; a new one gets it all
            uploader = Uploader(entry=entry, tus=self._tus, recording_id=None, live=False)
            for run in entry.journal.runs:
                run.upload_url = None
            entry.journal.live = False
            entry.save()
            self._s.uploader = uploader
        self.recording_id = await uploader.finish()
        entry.journal.recording_id = self.recording_id
        recording = await self._recordings.get(self.recording_id)
        self.share_url = recording.get("share_url") or self.share_url
        entry.journal.stage = Stage.DONE
        entry.journal.share_url = self.share_url
        entry.save()
        entry.discard()
        self.state = State.DONE
        return Outcome(State.DONE, self.recording_id, self.share_url, message=reason)

    async def _discard(self, *, tell_server: bool) -> None:
        entry, channel, uploader = self._s.entry, self._s.channel, self._s.uploader
        self.state = State.CANCELLED
        entry.journal.stage = Stage.CANCELLED
        entry.save()
        if self._run is not None:
            await self._run.stop()
        if tell_server:
            with contextlib.suppress(ControlError, TimeoutError):
                async with asyncio.timeout(5):
                    await channel.send("RECORDING_ABORTED")
        await uploader.discard()
        entry.discard()

    # -- capture runs ------------------------------------------------------------------------------------------------

    async def _open_run(self) -> None:
        entry, uploader = self._s.entry, self._s.uploader
        run = entry.new_run()
        spec = self.options.spec
        if spec.source is not None:
            spec = dataclasses.replace(spec, source_offset_s=spec.source_offset_s + entry.journal.media_ms / 1000)
        argv = capture_argv(
            spec,
            output=entry.path(run),
            platform=self.options.platform,
            ffmpeg=self.options.ffmpeg,
            encoding=self.options.encoding,
            epoch=time.time(),
        )
        capture = CaptureRun(argv, output=entry.path(run), log=entry.folder / "ffmpeg.log")
        await capture.start()
        self._run = capture
        self._active_since = time.monotonic()
        self.state = State.RECORDING
        uploader.follow(run)
        self._spawn(self._watch(capture))

    async def _close_run(self) -> None:
        """End the current run (if any): ffmpeg finishes its file, the journal records its whole length."""
        entry, uploader, capture = self._s.entry, self._s.uploader, self._run
        if capture is None:
            return
        self._run = None
        if self._active_since is not None:
            self._active_before += time.monotonic() - self._active_since
            self._active_since = None
        await capture.stop()
        run = entry.journal.runs[-1]
        close_run(entry, run, media_ms=capture.media_ms)
        uploader.closed(run)

    async def _watch(self, capture: CaptureRun) -> None:
        code = await capture.wait()
        if capture is not self._run:
            return  # stopped on purpose
        scan = fmp4.scan(capture.output)
        if scan.fragments == 0:
            self.reason = f"ffmpeg could not capture (exit {code}):\n{capture.error_text()}"
            log.error("%s", self.reason)
        self._intents.put_nowait(Intent.ENDED)

    async def _stop_after(self, seconds: float) -> None:
        # Polled: recorded time stands still while paused and, replaying a source, runs at the source's pace.
        while (left := seconds - self.elapsed_s) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(0.05, left))
        self.stop()

    async def _keep_durable(self) -> None:
        while True:
            await asyncio.sleep(2)
            if self._run is not None:
                await asyncio.to_thread(make_durable, self._run.output)

    async def _started(self) -> None:
        """Tell the server capture began; segments go out once it knows."""
        try:
            await self._s.channel.send("RECORDING_STARTED", {"metadata": self._metadata()})
        finally:
            self._s.uploader.capturing.set()

    def _on_command(self, command: Command) -> None:
        if command.type == "FORCE_STOP":
            self.reason = f"stopped by the server ({command.detail})"
            self._intents.put_nowait(Intent.SERVER_STOPPED)
        elif command.type == "STOPPED_WHILE_AWAY":
            self.reason = f"the server had stopped the recording while we were away ({command.detail})"
            self._intents.put_nowait(Intent.SERVER_STOPPED)
        elif command.type == "SESSION_EXPIRED":
            self._intents.put_nowait(Intent.EXPIRED)
        elif command.type == "SESSION_CLOSED" and command.detail == "DELETED":
            self._intents.put_nowait(Intent.DELETED)
        elif command.type == "SESSION_CLOSED" and command.detail not in ("ABORTED",):
            self.reason = f"the server closed the session ({command.detail})"
            self._intents.put_nowait(Intent.SERVER_STOPPED)

    def _metadata(self) -> dict[str, object]:
        spec = self.options.spec
        return {"agent": f"framecast/{__version__}", "platform": self.options.platform.value, "fps": spec.fps}

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def close_run(entry: Entry, run: Run, *, media_ms: int | None = None) -> None:
    """Record a run's whole length: the end of its last complete fragment (a crash can leave half of one)."""
    scan = fmp4.scan(entry.path(run))
    run.length = scan.complete if scan.fragments else 0
    run.closed = True
    if media_ms is not None:
        run.media_ms = media_ms
    entry.save()
