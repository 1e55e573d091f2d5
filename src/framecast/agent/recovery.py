"""Finishing what a dead agent left in the spool: tell the server it stopped, send the rest, complete it.

Every start of the agent (and `framecast record --recover`) runs this for each spooled recording no running agent
holds. What the server says about the recording decides what happens:

| server status              | what recovery does                                                            |
|----------------------------|-------------------------------------------------------------------------------|
| PREPARING                  | start and stop it (the capture never reached the server), then upload         |
| RECORDING, PAUSED          | stop it (over the control channel), then upload                               |
| UPLOADING                  | upload (below)                                                                |
| PROCESSING, READY          | nothing: the server has it all                                                |
| FAILED, EXPIRED            | upload as a new recording (a tus import), so nothing captured is lost         |
| ABORTED, deleted (404)     | discard: the person threw it away                                             |

To upload, a recording sent as live segments (`journal.live`) asks the server what it holds (`GET /live`), sends
the rest from the spool, ends every run and completes; one sent with tus resumes every run's part from the server's
offset, then assembles them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from framecast.agent.client import Recordings, ServerError
from framecast.agent.control import Command, ControlChannel, ControlError
from framecast.agent.live import LiveClient
from framecast.agent.recorder import Outcome, State, close_run
from framecast.agent.segments import SegmentUploader
from framecast.agent.spool import Entry, Stage
from framecast.agent.tus import TusClient
from framecast.agent.uploader import Upload, Uploader, UploadRefused

DONE_STATUSES = frozenset({"PROCESSING", "READY"})
LOST_STATUSES = frozenset({"FAILED", "EXPIRED"})


async def recover(
    entry: Entry,
    *,
    recordings: Recordings,
    tus: TusClient,
    live: LiveClient,
    say: Callable[[str], None] = lambda _: None,
) -> Outcome:
    """Bring one spooled recording to the server; the entry is discarded once the server has it (or it was
    thrown away). Raises UploadRefused, ServerError or OSError when that cannot happen now; the spool is kept."""
    journal = entry.journal
    for run in journal.runs:
        if not run.closed:
            close_run(entry, run)  # cut at the last whole fragment the dead capture wrote
    try:
        recording = await recordings.get(journal.recording_id)
    except ServerError as exc:
        if exc.status != 404:
            raise
        entry.discard()
        return Outcome(State.CANCELLED, journal.recording_id, message="deleted on the server; local copy removed")
    status = str(recording["status"])
    if status == "ABORTED" or journal.stage is Stage.CANCELLED:
        entry.discard()
        return Outcome(State.CANCELLED, journal.recording_id, message="it was cancelled; local copy removed")
    if status in DONE_STATUSES:
        entry.discard()
        return Outcome(State.DONE, journal.recording_id, recording.get("share_url"), "the server already had it")
    uploader: Upload
    if status in LOST_STATUSES:
        say(f"the server recording is {status}; uploading what was captured as a new recording")
        for run in journal.runs:
            run.upload_url = None
        journal.live = False
        uploader = Uploader(entry=entry, tus=tus, recording_id=None, live=False)
    else:
        if status != "UPLOADING":
            await _stop(entry, recordings=recordings, ws_url=str(recording["ws_url"]), status=status)
        if journal.live:
            uploader = SegmentUploader(entry=entry, live=live, recording_id=journal.recording_id, resume=True)
        else:
            uploader = Uploader(entry=entry, tus=tus, recording_id=journal.recording_id, live=False)
    journal.stage = Stage.UPLOADING
    entry.save()
    try:
        final_id = await uploader.finish()
    except UploadRefused:
        with contextlib.suppress(ServerError):
            if str((await recordings.get(journal.recording_id))["status"]) in DONE_STATUSES:
                entry.discard()  # the final upload did land before the agent died
                return Outcome(State.DONE, journal.recording_id, recording.get("share_url"))
        raise
    finished = await recordings.get(final_id)
    journal.recording_id, journal.stage, journal.share_url = final_id, Stage.DONE, finished.get("share_url")
    entry.save()
    entry.discard()
    return Outcome(State.DONE, final_id, journal.share_url, "recovered")


async def _stop(entry: Entry, *, recordings: Recordings, ws_url: str, status: str) -> None:
    """Tell the server the capture is over (it may also stop it on its own meanwhile: the reconnect grace)."""
    commands: list[Command] = []
    channel = ControlChannel(
        recordings=recordings,
        recording_id=entry.journal.recording_id,
        ws_url=ws_url,
        next_seq=entry.next_seq,
        on_command=commands.append,
    )
    task = asyncio.create_task(channel.run())
    try:
        if status == "PREPARING":
            with contextlib.suppress(ControlError):
                await channel.send("RECORDING_STARTED", {"metadata": {"recovered": True}})
        data = {"duration_ms": entry.journal.media_ms, "metadata": {"recovered": True}}
        with contextlib.suppress(ControlError):  # refused: the server stopped it itself in the meantime
            await channel.send("RECORDING_STOPPED", data)
    finally:
        await channel.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
