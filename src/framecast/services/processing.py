"""The processing pipeline: from a raw upload to a playable link, then the ladder, pictures and a download.

`raw_video_uploaded` enqueues one `media.playable` job. It validates and assembles the upload, publishes the first
playable rendition (a remux when the codecs allow, else a fast low rung) and makes the recording READY; then it
enqueues `media.ladder` and `media.pictures`, and the ladder enqueues `media.download`. Each job works in a scratch
folder of its own and publishes into the recording's current media generation; a job of an older generation (the
recording was reprocessed meanwhile) publishes nothing.

Failures: MediaRefused (the upload is not usable) ends the job at once and, for the playable stage, the recording
FAILED with the refusal's sentence; anything else is retried with backoff, and when the playable job runs out of
attempts the recording fails with a sentence saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from framecast.domain import events as ev
from framecast.domain import hls, storyboard
from framecast.domain.errors import ConcurrentUpdate, NotFound
from framecast.domain.events import DomainEvent
from framecast.domain.jobs import PRIORITY_BACKGROUND, PRIORITY_LADDER, PRIORITY_PLAYABLE, Job, JobStatus
from framecast.domain.ladder import DEFAULT_LADDER, Rendition, Rung, renditions_for
from framecast.domain.live import init_path, segment_path
from framecast.domain.media import (
    DOWNLOAD,
    INIT_NAME,
    MASTER,
    PLAYABLE_FOLDER,
    PLAYLIST_NAME,
    POSTER,
    PREVIEW,
    STORYBOARD,
    STORYBOARD_VTT,
    MediaInfo,
    MediaRefused,
    MediaSet,
    can_remux,
    check,
    media_prefix,
    recording_prefix,
    work_prefix,
)
from framecast.domain.recordings import Recording, RecordingStatus, RecordingType
from framecast.ports import BlobStore, Clock, LocalBlobStore, MediaTools, UnitOfWork, UnitOfWorkFactory
from framecast.workers.runner import Handler, JobContext, PermanentJobError

log = logging.getLogger(__name__)

PLAYABLE = "media.playable"
LADDER = "media.ladder"
PICTURES = "media.pictures"
DOWNLOAD_JOB = "media.download"
SOURCE = "media.source"  # a live recording's segments joined into one file, for the stages after playable
STAGES = {PLAYABLE: "playable", SOURCE: "source", LADDER: "ladder", PICTURES: "pictures", DOWNLOAD_JOB: "download"}
PROGRESS_EVENT_SECONDS = 2.0
CONFLICT_RETRIES = 5
AUDIO_ONLY = Rendition("audio", 0, 0, 0, 128)


@dataclass(frozen=True, slots=True)
class StageStatus:
    """How one stage of a recording's processing is going, as GET /recordings/{id} shows it."""

    status: str
    progress: float
    step: str
    attempts: int
    error: str | None


class ProcessingService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        blobs: BlobStore,
        tools: MediaTools,
        scratch: Path,
        ladder: Sequence[Rung] = DEFAULT_LADDER,
        on_cancel: Callable[[str], object] = lambda recording_id: None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._blobs = blobs
        self._tools = tools
        self._scratch = scratch
        self._ladder = tuple(ladder)
        self.on_cancel = on_cancel

    def handlers(self) -> dict[str, Handler]:
        return {
            PLAYABLE: self.playable,
            SOURCE: _refusals_are_final(self.source),
            LADDER: _refusals_are_final(self.ladder),
            PICTURES: _refusals_are_final(self.pictures),
            DOWNLOAD_JOB: _refusals_are_final(self.download),
        }

    # -- events in ------------------------------------------------------------------------------------------------

    async def on_raw_video_uploaded(self, event: DomainEvent, tx: UnitOfWork) -> None:
        """Queue the playable stage for an upload (subscribed with `deduplicated`, so once per event)."""
        await tx.jobs.enqueue(
            Job.create(
                kind=PLAYABLE,
                at=self._clock.now(),
                recording_id=event.subject,
                payload={"key": event.data["key"], "parts": list(event.data.get("parts") or [])},
                priority=PRIORITY_PLAYABLE,
            )
        )

    async def on_recording_deleted(self, event: DomainEvent, tx: UnitOfWork) -> None:
        """Stop the recording's jobs and remove everything stored for it."""
        await tx.jobs.cancel_for_recording(event.subject, at=self._clock.now())
        self.on_cancel(event.subject)
        await self._blobs.delete_prefix(recording_prefix(event.subject))

    async def job_dead(self, job: Job, error: str, permanent: bool) -> None:
        """A job gave up. When it was the playable stage, the recording fails, saying why: the refusal's own
        sentence, or that processing kept failing."""
        if job.kind != PLAYABLE or job.recording_id is None:
            return
        if permanent:
            reason = error
        else:
            reason = f"processing failed after {job.attempts} attempts ({error}); ask for it to be processed again"
        await self._update(job.recording_id, lambda r, at: _fail(r, at, reason))

    async def status(self, recording_id: str) -> dict[str, StageStatus]:
        """The newest job of each stage for a recording."""
        async with self._uow() as tx:
            jobs = await tx.jobs.list_for_recording(recording_id)
        newest: dict[str, Job] = {}
        for job in sorted(jobs, key=lambda j: j.created_at):
            if job.kind in STAGES:
                newest[STAGES[job.kind]] = job
        return {
            stage: StageStatus(
                status=job.status.value,
                progress=100.0 if job.status is JobStatus.SUCCEEDED else round(job.progress, 1),
                step=job.stage,
                attempts=job.attempts,
                error=job.last_error,
            )
            for stage, job in newest.items()
        }

    # -- stages 1-3: validate, assemble, first playable ----------------------------------------------------------

    async def playable(self, job: Job, context: JobContext) -> None:
        recording = await self._recording(job)
        if recording.status is not RecordingStatus.PROCESSING:
            return  # done already, or deleted and recreated: nothing to do
        generation = job.id.replace("-", "")[:12]
        async with self._workspace(job) as work, self._progress_events(job, context):
            try:
                source, source_key, info = await self._assemble(job, recording, work, context, generation)
                context.progress(0, "playable")
                out = work / "out"
                folder = out / PLAYABLE_FOLDER
                if can_remux(info):
                    await self._tools.remux_hls(source, folder, info, progress=lambda p: context.progress(p))
                    variant = _variant_of(info, folder, uri=f"{PLAYABLE_FOLDER}/{PLAYLIST_NAME}", rendition=None)
                else:
                    rung = self._fast_rung(info, recording)
                    await self._tools.encode_hls(
                        source,
                        work / "fast",
                        [rung],
                        info,
                        screen=_is_screen(recording),
                        fast=True,
                        progress=lambda p: context.progress(p),
                    )
                    out.mkdir()
                    (work / "fast" / rung.name).rename(folder)
                    variant = _variant_of(info, folder, uri=f"{PLAYABLE_FOLDER}/{PLAYLIST_NAME}", rendition=rung)
            except MediaRefused as refused:  # the recording fails when the job is dead (job_dead)
                raise PermanentJobError(str(refused)) from refused
            (out / MASTER).write_text(hls.master_playlist([variant]))
            prefix = media_prefix(recording.id, generation)
            await self._publish(out, prefix, last=MASTER)
            media = MediaSet(
                generation=generation,
                duration_ms=round((info.duration_s or 0.0) * 1000),
                width=info.video.display_size[0] if info.video else 0,
                height=info.video.display_size[1] if info.video else 0,
                frame_rate=info.video.frame_rate if info.video else 0.0,
                has_audio=info.has_audio,
                source_key=source_key,
            )
            previous = recording.media.generation if recording.media else None

            def playable(r: Recording, at: datetime) -> list[Job] | None:
                if r.status is not RecordingStatus.PROCESSING:
                    return None
                r.mark_playable(at=at, media=media)
                return [
                    self._job(PICTURES, r.id, generation, PRIORITY_PLAYABLE + 5),
                    self._job(LADDER, r.id, generation, PRIORITY_LADDER),
                ]

            if not await self._update(recording.id, playable):
                await self._blobs.delete_prefix(prefix)  # deleted or superseded while we worked
                return
            if previous and previous != generation:
                await self._blobs.delete_prefix(media_prefix(recording.id, previous))
                await self._blobs.delete_prefix(work_prefix(recording.id, previous))

    async def _assemble(
        self, job: Job, recording: Recording, work: Path, context: JobContext, generation: str
    ) -> tuple[Path, str, MediaInfo]:
        """The upload as one validated file: a segmented recording is joined, anything else used as it is."""
        context.progress(0, "validate")
        key = str(job.payload["key"])
        raw = await self._local(key, work / "raw")
        parts = [int(size) for size in job.payload.get("parts") or []]
        segments = await self._segments(raw, parts, work) if len(parts) > 1 else None
        if segments is None:
            info = check(await self._tools.probe(raw))
            return raw, key, info
        context.progress(0, "assemble")
        infos = [check(await self._tools.probe(path)) for path in segments]
        joined = work / "joined.mkv"
        total = sum(i.duration_s or 0.0 for i in infos)
        await self._tools.join(segments, joined, duration_s=total, progress=lambda p: context.progress(p))
        info = check(await self._tools.probe(joined))
        source_key = work_prefix(recording.id, generation) + "source.mkv"
        await self._blobs.put_file(source_key, joined)
        return await self._local(source_key, work / "source.mkv"), source_key, info

    async def _segments(self, raw: Path, parts: Sequence[int], work: Path) -> list[Path] | None:
        """Cut a concatenated upload back into its parts when each is a file of its own (one per resume); None
        when the parts only make sense together (fragments of one stream, MediaRecorder chunks)."""
        folder = work / "segments"
        paths = await asyncio.to_thread(_split, raw, parts, folder)
        try:
            await self._tools.probe(paths[1])
        except MediaRefused:
            await asyncio.to_thread(shutil.rmtree, folder)
            return None
        return paths

    def _fast_rung(self, info: MediaInfo, recording: Recording) -> Rendition:
        if info.video is None:
            return AUDIO_ONLY
        width, height = info.video.display_size
        rungs = renditions_for(width=width, height=height, screen=_is_screen(recording), ladder=self._ladder)
        fitting = [r for r in rungs if min(r.width, r.height) <= 480] or rungs[-1:]
        return fitting[0]

    # -- a live recording's source: its segments, joined ---------------------------------------------------------

    async def source(self, job: Job, context: JobContext) -> None:
        """A live recording is READY from its segments (services/live.py); the later stages want one file, so join
        each run's init and segments end to end (a fragmented MP4 per run) and the runs as an upload's parts are."""
        recording, media = await self._current(job)
        if media is None:
            return
        async with self._uow() as tx:
            stream = await tx.live.stream(recording.id)
        prefix = media_prefix(recording.id, media.generation)
        async with self._workspace(job) as work, self._progress_events(job, context):
            context.progress(0, "assemble")
            runs: list[Path] = []
            for run, segments in stream.listed():
                if not segments:
                    continue
                names = [init_path(run.run), *(segment_path(run.run, s.index) for s in segments)]
                pieces = [await self._local(prefix + name, work / name.replace("/", "-")) for name in names]
                runs.append(work / f"run-{run.run:04d}.mp4")
                await asyncio.to_thread(_concatenate, pieces, runs[-1])
            if not runs:
                raise PermanentJobError("the live recording has no segments")
            if len(runs) == 1:
                joined = runs[0]
            else:
                infos = [check(await self._tools.probe(path)) for path in runs]
                joined = work / "joined.mkv"
                total = sum(i.duration_s or 0.0 for i in infos)
                await self._tools.join(runs, joined, duration_s=total, progress=lambda p: context.progress(p))
            info = check(await self._tools.probe(joined))
            key = work_prefix(recording.id, media.generation) + "source" + joined.suffix
            size = joined.stat().st_size
            await self._blobs.put_file(key, joined)
        frame_rate = info.video.frame_rate if info.video else 0.0

        def sourced(r: Recording, at: datetime) -> list[Job] | None:
            if not r.live_source(at=at, generation=media.generation, key=key, size=size, frame_rate=frame_rate):
                return None
            return [
                self._job(PICTURES, r.id, media.generation, PRIORITY_PLAYABLE + 5),
                self._job(LADDER, r.id, media.generation, PRIORITY_LADDER),
            ]

        await self._update(recording.id, sourced)

    # -- stage 4: the ladder --------------------------------------------------------------------------------------

    async def ladder(self, job: Job, context: JobContext) -> None:
        recording, media = await self._current(job)
        if media is None:
            return
        async with self._workspace(job) as work, self._progress_events(job, context):
            context.progress(0, "ladder")
            source = await self._local(media.source_key, work / "source")
            info = check(await self._tools.probe(source))
            if info.video is None:
                renditions = [AUDIO_ONLY]
            else:
                width, height = info.video.display_size
                renditions = renditions_for(
                    width=width, height=height, screen=_is_screen(recording), ladder=self._ladder
                )
            out = work / "out"
            await self._tools.encode_hls(
                source, out, renditions, info, screen=_is_screen(recording), progress=lambda p: context.progress(p)
            )
            variants = [
                _variant_of(info, out / r.name, uri=f"{r.name}/{PLAYLIST_NAME}", rendition=r) for r in renditions
            ]
            (out / MASTER).write_text(hls.master_playlist(variants))
            # Renditions first, the master last: a player that fetches the new master finds every rung it names,
            # and one already playing keeps the old rung, which stays where it was.
            await self._publish(out, media_prefix(recording.id, media.generation), last=MASTER)

        def done(r: Recording, at: datetime) -> list[Job] | None:
            if not all(r.rendition_ready(at=at, generation=media.generation, name=x.name) for x in renditions):
                return None
            r.media_complete(at=at, generation=media.generation, part="ladder")
            return [self._job(DOWNLOAD_JOB, r.id, media.generation, PRIORITY_BACKGROUND)]

        await self._update(recording.id, done)

    # -- stage 5: pictures ----------------------------------------------------------------------------------------

    async def pictures(self, job: Job, context: JobContext) -> None:
        recording, media = await self._current(job)
        if media is None:
            return
        async with self._workspace(job) as work:
            context.progress(0, "pictures")
            source = await self._local(media.source_key, work / "source")
            info = check(await self._tools.probe(source))
            out = work / "out"
            out.mkdir()
            if info.video is not None and info.duration_s:
                await self._tools.poster(source, out / POSTER, info)
                context.progress(30)
                await self._tools.preview(source, out / PREVIEW, info)
                context.progress(60)
                width, height = info.video.display_size
                board = storyboard.plan(duration_s=info.duration_s, width=width, height=height)
                await self._tools.storyboard(
                    source,
                    out / STORYBOARD,
                    info,
                    interval=board.interval,
                    tile=(board.tile_width, board.tile_height),
                    grid=(board.columns, board.rows),
                )
                (out / STORYBOARD_VTT).write_text(
                    storyboard.webvtt(board, image=STORYBOARD, duration_s=info.duration_s)
                )
                await self._publish(out, media_prefix(recording.id, media.generation))
        await self._update(recording.id, _completing(media.generation, "pictures"))

    # -- stage 6: download ----------------------------------------------------------------------------------------

    async def download(self, job: Job, context: JobContext) -> None:
        recording, media = await self._current(job)
        if media is None or not media.renditions:
            return
        top = media.renditions[0]
        prefix = media_prefix(recording.id, media.generation) + f"{top}/"
        async with self._workspace(job) as work:
            context.progress(0, "download")
            playlist = await self._local(prefix + PLAYLIST_NAME, work / PLAYLIST_NAME)
            names = [INIT_NAME, *hls.segment_uris(playlist.read_text())]
            pieces = [await self._local(prefix + name, work / name) for name in names]
            fragmented = work / "fragmented.mp4"
            # The init segment and the media segments, end to end, are one fragmented MP4.
            await asyncio.to_thread(_concatenate, pieces, fragmented)
            target = work / DOWNLOAD
            await self._tools.faststart_mp4(fragmented, target, duration_s=media.duration_ms / 1000)
            await self._blobs.put_file(media_prefix(recording.id, media.generation) + DOWNLOAD, target)
        await self._update(recording.id, _completing(media.generation, "download"))

    # -- helpers --------------------------------------------------------------------------------------------------

    async def _recording(self, job: Job) -> Recording:
        if job.recording_id is None:
            raise PermanentJobError("the job names no recording")
        try:
            async with self._uow() as tx:
                return await tx.recordings.get(job.recording_id)
        except NotFound:
            raise PermanentJobError("the recording was deleted") from None

    async def _current(self, job: Job) -> tuple[Recording, MediaSet | None]:
        """The recording and its media when `job` belongs to the current generation; else media is None."""
        recording = await self._recording(job)
        media = recording.media
        if media is None or media.generation != job.payload.get("generation"):
            log.info("job %s (%s) is for a replaced generation; skipping", job.id, job.kind)
            return recording, None
        return recording, media

    async def _local(self, key: str, scratch: Path) -> Path:
        """A local file holding blob `key`: the blob itself when the store is local, else a copy in scratch."""
        if isinstance(self._blobs, LocalBlobStore):
            path = self._blobs.path(key)
            if not path.exists():
                raise PermanentJobError(f"the stored file {key} is missing")
            return path
        try:
            await self._blobs.get_file(key, scratch)
        except FileNotFoundError:
            raise PermanentJobError(f"the stored file {key} is missing") from None
        return scratch

    async def _publish(self, folder: Path, prefix: str, *, last: str | None = None) -> None:
        """Store every file under `folder` at `prefix` + its relative path; `last` goes after all the others."""

        def listing() -> list[Path]:
            return sorted(p for p in folder.rglob("*") if p.is_file())

        files = await asyncio.to_thread(listing)
        files.sort(key=lambda p: p.relative_to(folder).as_posix() == last)
        for path in files:
            await self._blobs.put_file(prefix + path.relative_to(folder).as_posix(), path)

    @contextlib.asynccontextmanager
    async def _workspace(self, job: Job) -> AsyncIterator[Path]:
        folder = self._scratch / f"job-{job.id}"
        await asyncio.to_thread(_fresh_folder, folder)  # a previous attempt may have left files
        try:
            yield folder
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)

    @contextlib.asynccontextmanager
    async def _progress_events(self, job: Job, context: JobContext) -> AsyncIterator[None]:
        """While the stage runs, push `processing_progress` when it moved (at most every couple of seconds)."""

        async def push() -> None:
            sent: tuple[float | None, str | None] = (None, None)
            while True:
                await asyncio.sleep(PROGRESS_EVENT_SECONDS)
                now = (context.percent, context.stage)
                if now != sent and job.recording_id is not None:
                    sent = now
                    await self._progress_event(job, context)

        task = asyncio.create_task(push())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _progress_event(self, job: Job, context: JobContext) -> None:
        assert job.recording_id is not None
        event = DomainEvent(
            type=ev.PROCESSING_PROGRESS,
            subject=job.recording_id,
            time=self._clock.now(),
            data={
                "recording_id": job.recording_id,
                "stage": STAGES.get(job.kind, job.kind),
                "step": context.stage or "",
                "percent": round(context.percent or 0.0, 1),
            },
        )
        try:
            async with self._uow() as tx:
                await tx.outbox.append([event])
                await tx.commit()
        except Exception:
            log.exception("could not record progress of job %s", job.id)

    async def _update(self, recording_id: str, change: Change) -> bool:
        """Apply `change` and enqueue the jobs it returns, in one transaction, retrying when another writer got
        there first. `change` returns None when there is nothing to do; False then, or when the recording is gone."""
        for _ in range(CONFLICT_RETRIES):
            async with self._uow() as tx:
                try:
                    recording = await tx.recordings.get(recording_id)
                except NotFound:
                    return False
                follow_up = change(recording, self._clock.now())
                if follow_up is None:
                    return False
                for job in follow_up:
                    await tx.jobs.enqueue(job)
                try:
                    await tx.recordings.save(recording)
                except ConcurrentUpdate:
                    continue
                await tx.commit()
                return True
        raise ConcurrentUpdate(f"recording {recording_id} kept changing under processing")

    def _job(self, kind: str, recording_id: str, generation: str, priority: int) -> Job:
        return Job.create(
            kind=kind,
            at=self._clock.now(),
            recording_id=recording_id,
            payload={"generation": generation},
            priority=priority,
        )


Change = Callable[[Recording, datetime], list[Job] | None]


def _refusals_are_final(handler: Handler) -> Handler:
    """Media that ffmpeg refuses now will be refused on every retry: end the job (the recording stays playable)."""

    async def run(job: Job, context: JobContext) -> None:
        try:
            await handler(job, context)
        except MediaRefused as refused:
            raise PermanentJobError(str(refused)) from refused

    return run


# -- file work, run in a thread: these copy whole recordings and must not stall the event loop ------------------------


def _split(whole: Path, sizes: Sequence[int], folder: Path) -> list[Path]:
    """Cut `whole` into consecutive files of `sizes` bytes in `folder`."""
    folder.mkdir()
    paths = []
    with whole.open("rb") as source:
        for index, size in enumerate(sizes):
            path = folder / f"segment-{index:04d}"
            with path.open("wb") as piece:
                remaining = size
                while remaining > 0 and (chunk := source.read(min(remaining, 1024 * 1024))):
                    piece.write(chunk)
                    remaining -= len(chunk)
            paths.append(path)
    return paths


def _concatenate(pieces: Sequence[Path], target: Path) -> None:
    with target.open("wb") as joined:
        for path in pieces:
            with path.open("rb") as piece:
                shutil.copyfileobj(piece, joined)


def _fresh_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def _completing(generation: str, part: str) -> Change:
    def complete(recording: Recording, at: datetime) -> list[Job] | None:
        return [] if recording.media_complete(at=at, generation=generation, part=part) else None

    return complete


def _fail(recording: Recording, at: datetime, reason: str) -> list[Job] | None:
    if recording.status is not RecordingStatus.PROCESSING:
        return None
    recording.fail_processing(at=at, reason=reason, stage="playable")
    return []


def _is_screen(recording: Recording) -> bool:
    """Screen content gets screen settings; an imported file could be anything, so it gets the camera ladder,
    which never looks worse (it only spends more bits)."""
    if recording.settings.get("source") == "import":
        return False
    return recording.recording_type in (RecordingType.SCREEN, RecordingType.SCREEN_CAMERA)


def _variant_of(info: MediaInfo, folder: Path, *, uri: str, rendition: Rendition | None) -> hls.Variant:
    """The master-playlist entry for the rendition in `folder`, with bitrates measured from its segments."""
    playlist = (folder / PLAYLIST_NAME).read_text()
    sizes = {name: (folder / name).stat().st_size for name in hls.segment_uris(playlist)}
    peak, average = hls.measured_bandwidth(playlist, sizes)
    video = info.video
    if rendition is not None and video is not None:
        width, height = rendition.width, rendition.height
        codecs = hls.h264_high_codec(width=width, height=height, frame_rate=video.frame_rate)
    elif video is not None:
        width, height = video.display_size
        codecs = hls.codec_of(video.codec, width=width, height=height, frame_rate=video.frame_rate)
    else:
        width = height = 0
        codecs = ""
    if info.audio is not None:
        audio = hls.AAC_LC if rendition is not None else hls.audio_codec_of(info.audio.codec)
        codecs = f"{codecs},{audio}" if codecs else audio
    return hls.Variant(
        uri=uri,
        bandwidth=peak,
        average_bandwidth=average,
        width=width,
        height=height,
        frame_rate=min(60.0, round(video.frame_rate)) if video else 0.0,
        codecs=codecs,
    )
