"""Live uploads: segments stored as they are recorded, a playlist that grows, READY the instant the last one lands.

Each stored segment is a blob under the recording's media generation and a row in the database; the playlist is
built from the rows on every request, so every instance serves the same one. A segment's bytes are stored before
its row commits, so a listed segment is always fetchable. See docs/live.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import tempfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from framecast.domain import fmp4, hls, webm
from framecast.domain.errors import ConcurrentUpdate, DomainError, NotFound
from framecast.domain.events import DomainEvent
from framecast.domain.jobs import PRIORITY_PLAYABLE, Job
from framecast.domain.live import (
    LIVE_PLAYLIST,
    WEBM,
    Gap,
    InitMissing,
    LiveRun,
    LiveSegment,
    LiveStream,
    SegmentConflict,
    bandwidth,
    check_position,
    describe,
    init_path,
    media_playlist,
    segment_path,
    webm_header_path,
)
from framecast.domain.media import MASTER, MediaRefused, MediaSet, media_prefix
from framecast.domain.recordings import Recording, RecordingStatus
from framecast.ports import BlobStore, Clock, LiveTranscoder, UnitOfWork, UnitOfWorkFactory
from framecast.services.processing import SOURCE

log = logging.getLogger(__name__)

COMMIT_RETRIES = 5
INIT_CACHE = 1024
EBML_MAGIC = b"\x1a\x45\xdf\xa3"
T = TypeVar("T")


class NotAcceptingSegments(DomainError):
    code = "not_accepting_segments"

    def __init__(self, recording: Recording, what: str = "segments") -> None:
        super().__init__(
            f"recording {recording.id} is {recording.status.value}; it takes {what} only while RECORDING, PAUSED"
            " or UPLOADING"
        )


class NothingRecorded(DomainError):
    code = "nothing_recorded"


class DigestMismatch(fmp4.BadSegment):
    """The body is not what its Content-Digest says: damaged on the way (code segment_corrupt: send it again)."""


class DigestMissing(DomainError):
    code = "digest_missing"


class SegmentTooLarge(DomainError):
    code = "segment_too_large"


@dataclass(frozen=True, slots=True)
class Receipt:
    run: int
    index: int | None
    size: int
    duration_s: float | None
    duplicate: bool


@dataclass(frozen=True, slots=True)
class LiveView:
    status: RecordingStatus
    stream: LiveStream
    missing: list[Gap]
    complete: bool


class LiveService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        blobs: BlobStore,
        scratch: Path,
        transcoder: LiveTranscoder,
        transcodes: int = 2,
    ) -> None:
        """`transcodes`: how many WebM segments this instance transcodes at once (the rest wait their turn)."""
        self._uow = uow
        self._clock = clock
        self._blobs = blobs
        self._scratch = scratch
        self._transcoder = transcoder
        self._transcoding = asyncio.Semaphore(max(1, transcodes))
        self._inits: OrderedDict[tuple[str, int, str], fmp4.InitSegment] = OrderedDict()
        self._headers: OrderedDict[tuple[str, int, str], tuple[bytes, webm.WebmHeader]] = OrderedDict()
        self._stored_inits: OrderedDict[tuple[str, int, str], bytes] = OrderedDict()

    # -- uploads ----------------------------------------------------------------------------------------------------

    async def put_init(self, *, owner_id: str, recording_id: str, run: int, body: bytes, sha256: str) -> Receipt:
        """Store a run's init segment; the first one makes the recording watchable (it goes live)."""
        check_position(run)
        _verify(body, sha256)
        header: webm.WebmHeader | None = None
        if body.startswith(EBML_MAGIC):
            header = webm.parse_header(body)
            width, height = header.live_size
            described = LiveRun(
                run=run,
                init_sha256=sha256,
                init_size=len(body),
                codecs=webm_codecs(header),
                width=width,
                height=height,
                source=WEBM,
            )
            has_audio = header.audio is not None
        else:
            init = fmp4.parse_init(body)
            width, height = (init.video.width, init.video.height) if init.video else (0, 0)
            described = LiveRun(
                run=run, init_sha256=sha256, init_size=len(body), codecs=init.codecs, width=width, height=height
            )
            has_audio = init.audio is not None

        async def attempt(tx: UnitOfWork) -> Receipt:
            recording = await self._owned(tx, owner_id, recording_id)
            stream = await tx.live.stream(recording_id)
            existing = stream.runs.get(run)
            if existing is not None and existing.init_sha256:
                if existing.init_sha256 != sha256:
                    raise SegmentConflict(f"run {run} already has another init segment")
                return Receipt(run, None, len(body), None, duplicate=True)
            self._accepting(recording)
            media = recording.media
            if media is None:
                media = MediaSet(
                    generation=secrets.token_hex(6),
                    duration_ms=0,
                    width=width,
                    height=height,
                    has_audio=has_audio,
                    live=True,
                )
                recording.go_live(at=self._clock.now(), media=media)
                await tx.recordings.save(recording)
            elif not media.live:
                raise NotAcceptingSegments(recording)
            stored_as = webm_header_path(run) if header is not None else init_path(run)
            await self._store(media_prefix(recording_id, media.generation) + stored_as, body)
            if existing is not None:
                await tx.live.describe_run(recording_id, described)
            elif not await tx.live.add_run(recording_id, described, at=self._clock.now()):
                raise ConcurrentUpdate(f"run {run} was stored meanwhile")
            await tx.commit()
            if header is not None:
                _cache(self._headers, (recording_id, run, sha256), (body, header))
            else:
                _cache(self._inits, (recording_id, run, sha256), init)
            return Receipt(run, None, len(body), None, duplicate=False)

        return await self._retrying(attempt)

    async def put_segment(
        self, *, owner_id: str, recording_id: str, run: int, index: int, body: bytes, sha256: str
    ) -> Receipt:
        """Store one media segment; idempotent for the same bytes, refused for different ones."""
        check_position(run, index)
        _verify(body, sha256)
        async with self._uow() as tx:
            recording = await self._owned(tx, owner_id, recording_id)
            stream = await tx.live.stream(recording_id, run=run, index=index)
        described = stream.runs.get(run)
        if described is None or not described.init_sha256:
            raise InitMissing(f"send run {run}'s init segment before its media segments")
        if not described.admit(index, sha256):
            stored = described.segments[index]
            return Receipt(run, index, stored.size, stored.duration_s, duplicate=True)
        self._accepting(recording)
        media = recording.media
        if media is None or not media.live:
            raise NotAcceptingSegments(recording)
        if described.source == WEBM:
            fragment = await self._transcode(recording_id, media.generation, described, body)
        else:
            fragment = body
        init = await self._init(recording_id, media.generation, described)
        measured = fmp4.parse_segment(fragment, init)
        segment = LiveSegment(run=run, index=index, size=len(fragment), sha256=sha256, duration_s=measured.duration_s)
        await self._store(media_prefix(recording_id, media.generation) + segment_path(run, index), fragment)
        async with self._uow() as tx:
            added = await tx.live.add_segment(recording_id, segment, at=self._clock.now())
            await tx.commit()
        if not added:  # the same index landed meanwhile (a retry racing its original)
            async with self._uow() as tx:
                stored = (await tx.live.stream(recording_id, run=run, index=index)).runs[run].segments[index]
            if stored.sha256 != sha256:
                raise SegmentConflict(f"segment {index} of run {run} is already stored with other bytes")
            return Receipt(run, index, stored.size, stored.duration_s, duplicate=True)
        if recording.status is RecordingStatus.UPLOADING:
            # Completion may have been declared since the recording was read: try_complete reads afresh.
            await self.try_complete(recording_id)
        return Receipt(run, index, len(fragment), measured.duration_s, duplicate=False)

    async def end_run(self, *, owner_id: str, recording_id: str, run: int, segments: int) -> LiveView:
        """The client says run `run` has segments 0..segments-1."""
        check_position(run)

        async def attempt(tx: UnitOfWork) -> None:
            recording = await self._owned(tx, owner_id, recording_id)
            stream = await tx.live.stream(recording_id)
            existing = stream.runs.get(run)
            if existing is not None and existing.ended == segments:
                return  # said before
            self._accepting(recording, "run ends")
            if existing is None:
                existing = LiveRun(run=run, init_sha256="", init_size=0, codecs="")
                existing.end(segments)
                if not await tx.live.add_run(recording_id, existing, at=self._clock.now()):
                    raise ConcurrentUpdate(f"run {run} was stored meanwhile")
            else:
                existing.end(segments)
                await tx.live.end_run(recording_id, run, segments)
            await tx.commit()

        await self._retrying(attempt)
        await self.try_complete(recording_id)
        return await self.view(owner_id=owner_id, recording_id=recording_id)

    async def complete(self, *, owner_id: str, recording_id: str, runs: int) -> LiveView:
        """The client says the recording has runs 1..runs: READY now if all of it is here, else once it is."""

        async def attempt(tx: UnitOfWork) -> None:
            recording = await self._owned(tx, owner_id, recording_id)
            media = recording.media
            if media is not None and media.declared_runs == runs:
                return  # said before
            if recording.status is not RecordingStatus.UPLOADING:
                if recording.status.is_capturing:
                    raise NotAcceptingSegments(recording, "completion (stop the recording first)")
                raise NotAcceptingSegments(recording, "completion")
            if media is None or not media.live:
                raise NothingRecorded(f"recording {recording_id} has no live upload: no init segment arrived")
            stream = await tx.live.stream(recording_id)
            stream.declare(runs)
            media.declared_runs = runs
            recording.updated_at = self._clock.now()
            await tx.recordings.save(recording)
            await tx.commit()

        await self._retrying(attempt)
        await self.try_complete(recording_id)
        return await self.view(owner_id=owner_id, recording_id=recording_id)

    async def view(self, *, owner_id: str, recording_id: str) -> LiveView:
        async with self._uow() as tx:
            recording = await self._owned(tx, owner_id, recording_id)
            stream = await tx.live.stream(recording_id)
        declared = recording.media.declared_runs if recording.media else 0
        stream.declared_runs = declared or None
        return LiveView(recording.status, stream, stream.missing(), recording.status is RecordingStatus.READY)

    # -- completion -------------------------------------------------------------------------------------------------

    async def try_complete(self, recording_id: str) -> bool:
        """Make the recording READY if every declared segment is stored; True when this call did."""

        async def attempt(tx: UnitOfWork) -> bool:
            try:
                recording = await tx.recordings.get(recording_id)
            except NotFound:
                return False
            media = recording.media
            if recording.status is not RecordingStatus.UPLOADING or media is None or not media.live:
                return False
            stream = await tx.live.stream(recording_id)
            stream.declared_runs = media.declared_runs or None
            if not stream.complete:
                return False
            # The finished playlists go to the blob store before the recording says READY: from then on they are
            # served from there, like any other generation's.
            prefix = media_prefix(recording_id, media.generation)
            await self._store(prefix + LIVE_PLAYLIST, media_playlist(stream, ended=True).encode())
            await self._store(prefix + MASTER, master_playlist(stream).encode())
            recording.complete_live(at=self._clock.now(), duration_ms=round(stream.duration_s() * 1000))
            await tx.jobs.enqueue(
                Job.create(
                    kind=SOURCE,
                    at=self._clock.now(),
                    recording_id=recording_id,
                    payload={"generation": media.generation},
                    priority=PRIORITY_PLAYABLE,
                )
            )
            await tx.recordings.save(recording)
            await tx.commit()
            return True

        return await self._retrying(attempt)

    # -- reading (the media endpoint) -------------------------------------------------------------------------------

    async def playlists(self, recording_id: str) -> tuple[str, str]:
        """(master, media) playlists of a live recording as they stand now."""
        async with self._uow() as tx:
            stream = await tx.live.stream(recording_id)
        return master_playlist(stream), media_playlist(stream, ended=False)

    async def on_recording_aborted(self, event: DomainEvent, tx: UnitOfWork) -> None:
        """A cancelled recording keeps nothing: remove the segments it sent."""
        await self._blobs.delete_prefix(f"recordings/{event.subject}/media/")

    # -- helpers ----------------------------------------------------------------------------------------------------

    async def _owned(self, tx: UnitOfWork, owner_id: str, recording_id: str) -> Recording:
        recording = await tx.recordings.get(recording_id)
        if recording.owner_id != owner_id:
            raise NotFound("recording", recording_id)
        return recording

    @staticmethod
    def _accepting(recording: Recording, what: str = "segments") -> None:
        if not recording.takes_live_segments:
            raise NotAcceptingSegments(recording, what)

    async def _init(self, recording_id: str, generation: str, run: LiveRun) -> fmp4.InitSegment:
        key = (recording_id, run.run, run.init_sha256)
        if (init := self._inits.get(key)) is not None:
            self._inits.move_to_end(key)
            return init
        chunks = [
            chunk async for chunk in self._blobs.open(media_prefix(recording_id, generation) + init_path(run.run))
        ]
        init = fmp4.parse_init(b"".join(chunks))
        _cache(self._inits, key, init)
        return init

    # -- WebM runs ----------------------------------------------------------------------------------------------------

    async def _transcode(self, recording_id: str, generation: str, run: LiveRun, body: bytes) -> bytes:
        """A WebM segment as the fMP4 media segment it transcodes to; the run's init segment is stored from the
        first transcode this instance makes (every transcode of the run makes the same one)."""
        prefix = media_prefix(recording_id, generation)
        key = (recording_id, run.run, run.init_sha256)
        if (cached := self._headers.get(key)) is None:
            chunks = [chunk async for chunk in self._blobs.open(prefix + webm_header_path(run.run))]
            raw = b"".join(chunks)
            cached = (raw, webm.parse_header(raw))
            _cache(self._headers, key, cached)
        raw_header, header = cached
        webm.parse_segment(body, header)
        source = await asyncio.to_thread(_spill, self._scratch, raw_header + body)
        target = source.with_suffix(".mp4")
        try:
            async with self._transcoding:
                try:
                    await self._transcoder.transcode_live(source, target, size=header.live_size)
                except MediaRefused as exc:
                    raise fmp4.BadSegment(str(exc)) from exc
            produced = await asyncio.to_thread(target.read_bytes)
        finally:
            source.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
        init_bytes, media_bytes = split_init(produced)
        init = fmp4.parse_init(init_bytes)
        known = self._stored_inits.get(key)
        if known is None:
            await self._store(prefix + init_path(run.run), init_bytes)
            _cache(self._stored_inits, key, init_bytes)
        elif known != init_bytes:
            raise RuntimeError(f"the live transcode of run {run.run} made a different init segment")
        _cache(self._inits, key, init)
        return media_bytes

    async def _store(self, key: str, data: bytes) -> None:
        path = await asyncio.to_thread(_spill, self._scratch, data)
        try:
            await self._blobs.put_file(key, path)
        finally:
            path.unlink(missing_ok=True)

    async def _retrying(self, attempt: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        for _ in range(COMMIT_RETRIES):
            async with self._uow() as tx:
                try:
                    return await attempt(tx)
                except ConcurrentUpdate:
                    continue
        raise ConcurrentUpdate("the recording kept changing; try again")


def master_playlist(stream: LiveStream) -> str:
    """A master playlist naming the one live rendition, as players need one to start from."""
    codecs, width, height = describe(stream)
    peak = bandwidth(stream)
    variant = hls.Variant(
        uri=LIVE_PLAYLIST,
        bandwidth=peak,
        average_bandwidth=peak,
        width=width,
        height=height,
        frame_rate=0.0,
        codecs=codecs,
    )
    return hls.master_playlist([variant])


def webm_codecs(header: webm.WebmHeader) -> str:
    """CODECS of a WebM run's transcoded segments: H.264 High 4.1 (commands.LIVE_PROFILE) and Opus as it came."""
    return ",".join(
        codec for codec, present in (("avc1.640029", header.video), ("Opus", header.audio)) if present is not None
    )


def split_init(produced: bytes) -> tuple[bytes, bytes]:
    """(init segment, media segment) of a fragmented MP4 file: the boxes before the first moof, and the rest."""
    for box in fmp4.boxes(produced):
        if box.kind == "moof":
            return produced[: box.start], produced[box.start :]
    raise fmp4.BadSegment("the segment holds no frames that could be decoded")


def _cache(cache: OrderedDict[tuple[str, int, str], T], key: tuple[str, int, str], value: T) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > INIT_CACHE:
        cache.popitem(last=False)


def _verify(body: bytes, sha256: str) -> None:
    if hashlib.sha256(body).hexdigest() != sha256:
        raise DigestMismatch("the body's SHA-256 does not match its Content-Digest: it was damaged on the way")


def _spill(scratch: Path, data: bytes) -> Path:
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=scratch, delete=False, prefix="live-") as handle:
        handle.write(data)
    return Path(handle.name)
