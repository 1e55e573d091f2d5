"""Resumable uploads (the tus 1.0.0 model, without HTTP): create, append, reconcile, complete, terminate, expire.

The upload store's size is the truth about how much of an upload arrived; the database row follows it and is
reconciled on every HEAD and PATCH (after a crash mid-PATCH the row lags the file). An upload bound to a recording
completes it: its bytes move into the BlobStore, then one transaction marks the upload complete and the recording
PROCESSING, with raw_video_uploaded in the outbox.

Permissions: creation is authorised by the caller, which passes a Creator (the API checks the ticket or token);
after that the upload id (128 random bits) is the capability, as in tusd: whoever holds it may act on that upload.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from framecast.domain.errors import ConcurrentUpdate, DomainError, InvalidTransition, NotFound
from framecast.domain.recordings import UPLOAD_STATUSES, Limits, Recording, RecordingStatus
from framecast.domain.uploads import OffsetMismatch, Upload, UploadError, UploadKind
from framecast.ports import (
    BlobStore,
    Clock,
    ConcatenatingUploadStore,
    Locks,
    UnitOfWork,
    UnitOfWorkFactory,
    UploadStore,
)
from framecast.services.upload_bodies import Body, Cut, UploadTooLarge, incoming
from framecast.services.upload_locks import UploadLocks

COMMIT_RETRIES = 5
MAX_TITLE = 500


class NotAcceptingUploads(DomainError):
    """The upload's recording does not take that kind of upload in its status (see Recording.takes_upload)."""

    code = "not_uploading"

    def __init__(self, recording: Recording, kind: UploadKind) -> None:
        statuses = [status.value for status in RecordingStatus if status in UPLOAD_STATUSES[kind]]
        what = "parts of an upload" if kind is UploadKind.PARTIAL else "uploads"
        message = f"recording {recording.id} is {recording.status.value}; it takes {what} only while {_or(statuses)}"
        if recording.status.is_capturing:
            message += "; while recording, send parts (Upload-Concat: partial) and the final upload after stop"
        super().__init__(message)


def _or(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


@dataclass(frozen=True, slots=True)
class Creator:
    """Who creates an upload, for which recording. Without a recording (and with a workspace) it is an import."""

    user_id: str
    recording_id: str | None
    workspace_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewUpload:
    length: int | None  # None: declared later (creation-defer-length)
    metadata: dict[str, str] = field(default_factory=dict)
    kind: UploadKind = UploadKind.SINGLE
    parts: Sequence[str] = ()


def raw_key(upload: Upload) -> str:
    return f"recordings/{upload.recording_id}/raw/{upload.id}"


def _bound_to(upload: Upload) -> str | None:
    """The recording the upload was created for, even once deleted (the foreign key then clears recording_id).

    A bearer upload naming `recording_id` in its metadata is bound to it at creation (api/uploads.py), so a part
    without a recording but with that metadata lost its recording, and is not free for another one.
    """
    return upload.recording_id or upload.metadata.get("recording_id") or None


class UploadService:
    """The use cases behind /api/v1/uploads/. Appends to one upload are serialised (see UploadLocks)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        store: UploadStore,
        blobs: BlobStore,
        clock: Clock,
        limits: Limits,
        max_size: int,
        ttl: timedelta,
        spool_dir: Path,
        locks: Locks,
    ) -> None:
        self._uow = uow
        self._store = store
        self._blobs = blobs
        self._clock = clock
        self._limits = limits
        self.max_size = max_size
        self._ttl = ttl
        self._spool_dir = spool_dir
        self._locks = UploadLocks(locks)

    @property
    def concatenates(self) -> bool:
        return isinstance(self._store, ConcatenatingUploadStore)

    # -- use cases ---------------------------------------------------------------------------------------------------

    async def create(self, *, creator: Creator, new: NewUpload, body: Body | None = None) -> Upload:
        """Create an upload (and, for an import, its recording), then append `body` if there is one.

        Raises NotFound for a recording that is missing or not the creator's, NotAcceptingUploads unless it takes
        this kind of upload now (Recording.takes_upload), UploadTooLarge over the maximum. A checksummed body is
        verified before anything is created.
        """
        if new.length is not None and new.length > self.max_size:
            raise UploadTooLarge(f"Upload-Length {new.length} is over this server's maximum of {self.max_size} bytes")
        if new.kind is UploadKind.FINAL:
            return await self._create_final(creator, new)
        cut = Cut()
        async with contextlib.AsyncExitStack() as stack:
            chunks = None
            if body is not None:
                room = self.max_size if new.length is None else new.length
                chunks = await stack.enter_async_context(incoming(body, room=room, cut=cut, spool_dir=self._spool_dir))
            at = self._clock.now()
            async with self._uow() as tx:
                recording_id = await self._recording_for(tx, creator, new)
                upload = Upload.create(
                    owner_id=creator.user_id,
                    recording_id=recording_id,
                    at=at,
                    ttl=self._ttl,
                    length=new.length,
                    max_size=self.max_size,
                    metadata=new.metadata,
                    kind=new.kind,
                )
                await tx.uploads.add(upload)
                await tx.commit()
            await self._store.create(upload.id)
            async with self._locks.hold(upload.id):
                size = 0
                if chunks is not None:
                    size = await self._store.append(
                        upload.id, offset=0, chunks=chunks, limit=upload.room(max_size=self.max_size)
                    )
                upload = await self._progress(upload, size)
        self._raise_if_cut(cut, upload)
        return upload

    async def status(self, upload_id: str) -> Upload:
        """The upload as it stands, reconciled with the stored bytes; raises NotFound.

        While a PATCH is in flight the offset is read from the store without waiting for it.
        """
        if await self._locks.busy(upload_id):
            async with self._uow() as tx:
                upload = await tx.uploads.get(upload_id)
            with contextlib.suppress(FileNotFoundError):
                upload.offset = await self._store.offset(upload_id)
            return upload
        async with self._locks.hold(upload_id):
            try:
                return await self._reconciled(upload_id)
            except NotAcceptingUploads:
                async with self._uow() as tx:
                    return await tx.uploads.get(upload_id)

    async def append(self, upload_id: str, *, offset: int, body: Body, length: int | None = None) -> Upload:
        """Append `body` at `offset` (tus PATCH), declaring a deferred `length` if given.

        Raises OffsetMismatch, UploadTooLarge, ChecksumMismatch, NotAcceptingUploads or UploadError, and then stores
        nothing: except that a body going past the upload's room keeps what came before the offending chunk (the
        limit is never passed). A dropped connection keeps what arrived and is not an error.
        """
        cut = Cut()
        async with self._locks.hold(upload_id):
            # One read for the upload and its recording: at small chunk sizes each transaction is a tenth of a PATCH.
            async with self._uow() as tx:
                loaded = await tx.uploads.get(upload_id)
                recording = await tx.recordings.get(loaded.recording_id) if loaded.recording_id else None
            upload = loaded
            if upload.offset != offset or upload.is_complete:
                # The row may lag the stored bytes (a crash between storing and recording them), and then it
                # disagrees with a client that asked the store (HEAD reconciles): the store decides. When the two
                # agree, the store checks the offset itself as it appends, which spares a request per PATCH on S3.
                upload = await self._reconcile(upload)
            if upload.completed_at is not None:
                return await self._append_to_finished(upload, offset=offset, body=body)
            await self._check_recording(upload, recording=recording)
            if length is not None:
                upload.declare_length(length, max_size=self.max_size)
            upload.check_append(offset=offset)
            room = upload.room(max_size=self.max_size)
            try:
                async with incoming(body, room=room, cut=cut, spool_dir=self._spool_dir) as chunks:
                    size = await self._store.append(upload_id, offset=offset, chunks=chunks, limit=room)
            except OffsetMismatch:
                # The row catches up with the store before the client is told, reloaded: nothing this refused PATCH
                # declared (a deferred length) is saved.
                await self._reconciled(upload_id)
                raise
            except FileNotFoundError:
                upload = await self._reconciled(upload_id)  # NotFound when it is gone, else it was finished meanwhile
                return await self._append_to_finished(upload, offset=offset, body=body)
            upload = await self._progress(upload, size)
        self._raise_if_cut(cut, upload)
        return upload

    async def _append_to_finished(self, upload: Upload, *, offset: int, body: Body) -> Upload:
        """A finished upload takes only an empty PATCH at its end (a client confirming it is done)."""
        upload.check_append(offset=offset)
        cut = Cut()
        async with incoming(body, room=0, cut=cut, spool_dir=self._spool_dir) as chunks:
            async for _ in chunks:
                pass
        self._raise_if_cut(cut, upload)
        return upload

    async def terminate(self, upload_id: str) -> None:
        """Delete an upload and its bytes (tus termination); raises NotFound.

        A finished upload's bytes belong to its recording by now: only the upload resource goes.
        """
        async with self._locks.hold(upload_id), self._uow() as tx:
            upload = await tx.uploads.get(upload_id)
            finished = upload.completed_at is not None
            if not finished:
                await self._store.discard(upload_id)
                if upload.recording_id is not None:
                    await self._blobs.delete(raw_key(upload))
            await tx.uploads.delete(upload)
            await tx.commit()

    async def discard_for_recording(self, *, owner_id: str, recording_id: str) -> int:
        """Terminate the owner's unfinished uploads to a recording being deleted; returns how many."""
        async with self._uow() as tx:
            ids = await tx.uploads.unfinished_for(recording_id)
        discarded = 0
        for upload_id in ids:
            with contextlib.suppress(NotFound):  # finished or expired meanwhile
                async with self._uow() as tx:
                    upload = await tx.uploads.get(upload_id)
                if upload.owner_id == owner_id:
                    await self.terminate(upload_id)
                    discarded += 1
        return discarded

    async def expire(self, *, batch: int = 100) -> int:
        """Remove unfinished uploads whose expiry passed, bytes first; returns how many. Safe to run anywhere."""
        async with self._uow() as tx:
            due = await tx.uploads.expired(at=self._clock.now(), limit=batch)
        removed = 0
        for upload_id in due:
            if await self._locks.busy(upload_id):
                continue  # a PATCH is running: it pushes the expiry forward when it ends
            async with self._locks.hold(upload_id), self._uow() as tx:
                try:
                    upload = await tx.uploads.get(upload_id)
                except NotFound:
                    continue
                if upload.completed_at is not None or upload.expires_at > self._clock.now():
                    continue
                await self._store.discard(upload_id)
                if upload.recording_id is not None:
                    await self._blobs.delete(raw_key(upload))
                await tx.uploads.delete(upload)
                await tx.commit()
                removed += 1
        return removed

    # -- creation ----------------------------------------------------------------------------------------------------

    async def _recording_for(self, tx: UnitOfWork, creator: Creator, new: NewUpload) -> str | None:
        """The recording the new upload belongs to; creates it for an import. Partial uploads may have none yet."""
        if creator.recording_id is not None:
            recording = await tx.recordings.get(creator.recording_id, owner_id=creator.user_id)
            if not recording.takes_upload(new.kind):
                raise NotAcceptingUploads(recording, new.kind)
            return recording.id
        if new.kind is UploadKind.PARTIAL:
            return None  # bound when the final upload is created
        if creator.workspace_id is None:
            raise UploadError("an upload without a recording is an import, which needs a bearer token")
        title = new.metadata.get("title") or new.metadata.get("filename") or ""
        recording = Recording.create_import(
            owner_id=creator.user_id,
            workspace_id=creator.workspace_id,
            at=self._clock.now(),
            limits=self._limits,
            title=title[:MAX_TITLE],
        )
        await tx.recordings.add(recording)
        return recording.id

    async def _create_final(self, creator: Creator, new: NewUpload) -> Upload:
        """Assemble finished partial uploads into a final upload, which completes its recording at once."""
        store = self._store
        if not isinstance(store, ConcatenatingUploadStore):
            raise UploadError("this server's upload store cannot concatenate uploads")
        if not new.parts or len(set(new.parts)) != len(new.parts):
            raise UploadError("Upload-Concat: final needs one or more distinct partial uploads")
        async with self._uow() as tx:
            parts = [await tx.uploads.get(part_id) for part_id in new.parts]
            for part in parts:
                if part.owner_id != creator.user_id:
                    raise NotFound("upload", part.id)
                if part.kind is not UploadKind.PARTIAL or not part.is_complete:
                    raise UploadError(f"upload {part.id} is not a finished partial upload")
            recording_id = await self._recording_for(tx, creator, new)
            if any(_bound_to(part) not in (None, recording_id) for part in parts):
                raise UploadError("the partial uploads belong to another recording")
            length = sum(part.length or 0 for part in parts)
            if length > self.max_size:
                raise UploadTooLarge(f"the parts add up to {length} bytes, over the maximum of {self.max_size}")
            upload = Upload.create(
                owner_id=creator.user_id,
                recording_id=recording_id,
                at=self._clock.now(),
                ttl=self._ttl,
                length=length,
                max_size=self.max_size,
                metadata=new.metadata,
                kind=UploadKind.FINAL,
            )
            upload.parts = list(new.parts)
            await tx.uploads.add(upload)
            await tx.commit()
        # Until the completion commits, the final upload is unfinished: if this process dies, it expires and the
        # expiry loop removes its bytes; the parts stay until then.
        async with self._locks.hold(upload.id):
            size = await store.concatenate(upload.id, parts=upload.parts)
            upload = await self._progress(upload, size)
        for part_id in upload.parts:
            await store.discard(part_id)
        return upload

    # -- progress and completion -------------------------------------------------------------------------------------

    async def _reconciled(self, upload_id: str) -> Upload:
        """Load the upload and bring its row in line with the durable bytes (call with the upload's lock held)."""
        async with self._uow() as tx:
            upload = await tx.uploads.get(upload_id)
        return await self._reconcile(upload)

    async def _reconcile(self, upload: Upload) -> Upload:
        """Bring a loaded upload's row in line with the durable bytes (call with the upload's lock held)."""
        upload_id = upload.id
        if upload.completed_at is not None:
            return upload
        try:
            durable = await self._store.offset(upload_id)
        except FileNotFoundError:
            length = upload.length
            if (
                length is not None
                and upload.recording_id is not None
                and await self._blobs.size(raw_key(upload)) == length
            ):
                # The bytes reached the blob store but the completion never committed (a crash in between).
                return await self._commit_completion(upload, size=length)
            await self._forget(upload)
            raise NotFound("upload", upload_id) from None
        if durable != upload.offset or (upload.is_complete and upload.kind is not UploadKind.PARTIAL):
            upload = await self._progress(upload, durable)
        return upload

    async def _progress(self, upload: Upload, size: int) -> Upload:
        """Record that `size` bytes are stored; completes the recording when that is all of them."""
        upload.advance(to=size, at=self._clock.now(), ttl=self._ttl)
        if upload.is_complete and upload.kind is not UploadKind.PARTIAL:
            return await self._complete(upload)
        # A part is finished only once a final upload consumes it; until then it expires like any other upload.
        return await self._save_unfinished(upload)

    async def _save_unfinished(self, upload: Upload) -> Upload:
        upload.completed_at = None
        async with self._uow() as tx:
            await tx.uploads.save(upload)
            await tx.commit()
        return upload

    async def _complete(self, upload: Upload) -> Upload:
        """Move the bytes into the BlobStore, then commit the upload and its recording together."""
        try:
            await self._check_recording(upload)
        except NotAcceptingUploads:
            await self._save_unfinished(upload)  # the bytes did arrive; the offset says so
            raise
        size = await self._store.finish(upload.id, key=raw_key(upload))
        return await self._commit_completion(upload, size=size)

    async def _commit_completion(self, upload: Upload, *, size: int) -> Upload:
        key = raw_key(upload)
        for remaining in range(COMMIT_RETRIES, 0, -1):
            async with self._uow() as tx:
                fresh = await tx.uploads.get(upload.id)
                if fresh.recording_id is None:
                    raise NotFound("upload", upload.id)
                recording = await tx.recordings.get(fresh.recording_id)
                at = self._clock.now()
                fresh.advance(to=size, at=at, ttl=self._ttl)
                part_sizes = []
                for part_id in fresh.parts:
                    with contextlib.suppress(NotFound):
                        part = await tx.uploads.get(part_id)
                        part_sizes.append(part.length or 0)
                        await tx.uploads.delete(part)
                try:
                    recording.complete_upload(at=at, key=key, size=size, parts=part_sizes)
                except InvalidTransition:
                    raise NotAcceptingUploads(recording, fresh.kind) from None
                await tx.uploads.save(fresh)
                try:
                    await tx.recordings.save(recording)
                except ConcurrentUpdate:
                    if remaining == 1:
                        raise
                    continue
                await tx.commit()
                return fresh
        raise AssertionError("unreachable")

    async def _check_recording(self, upload: Upload, *, recording: Recording | None = None) -> None:
        """Raise unless the upload's recording (loaded here unless given) takes bytes; an upload whose recording was
        deleted is removed."""
        if upload.recording_id is None:
            if upload.kind is UploadKind.PARTIAL and _bound_to(upload) is None:
                return
            await self._forget(upload)  # the recording was deleted (the foreign key cleared recording_id)
            raise NotFound("upload", upload.id)
        if recording is None:
            async with self._uow() as tx:
                recording = await tx.recordings.get(upload.recording_id)
        if not recording.takes_upload(upload.kind):
            raise NotAcceptingUploads(recording, upload.kind)

    async def _forget(self, upload: Upload) -> None:
        await self._store.discard(upload.id)
        async with self._uow() as tx:
            with contextlib.suppress(NotFound):
                await tx.uploads.delete(await tx.uploads.get(upload.id))
                await tx.commit()

    def _raise_if_cut(self, cut: Cut, upload: Upload) -> None:
        if not cut.overflow:
            return
        if upload.length is not None:
            limit = f"the upload's length of {upload.length} bytes"
        else:
            limit = f"this server's maximum of {self.max_size} bytes"
        raise UploadTooLarge(f"the body goes past {limit}; the upload keeps the {upload.offset} bytes before it")
