"""Recording sessions: create, read, change, stop and delete them, and keep live state and clients in step."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from framecast.domain.errors import ConcurrentUpdate, DomainError
from framecast.domain.recordings import Limits, Recording, RecordingStatus, RecordingType, StopReason
from framecast.domain.users import User
from framecast.ports import BlobStore, Clock, LiveSession, LiveState, UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")

# Live entries outlive the longest silence a healthy connection has (pings every 20 s) by a wide margin.
LIVE_TTL_SECONDS = 300
CONFLICT_RETRIES = 5

# What a change means for the live entry's connection holder: this instance holds it now, it is unchanged, or the
# connection is gone.
Holder = Literal["hold", "keep", "release"]
Overdue = StopReason | RecordingStatus


class BadCursor(DomainError):
    code = "bad_request"

    def __init__(self) -> None:
        super().__init__("the cursor is not one this server handed out")


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Recording]
    next_cursor: str | None


def encode_cursor(recording: Recording) -> str:
    raw = f"{recording.created_at.isoformat()}|{recording.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, ident = raw.split("|", 1)
        return datetime.fromisoformat(created), ident
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor() from exc


class RecordingService:
    """The Recording Service's use cases. Permission rule: every method scoped by `owner_id` answers NotFound
    for another user's recording, exactly as for a missing one."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        limits: Limits,
        live: LiveState,
        blobs: BlobStore,
        instance_id: str,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.limits = limits
        self._live = live
        self._blobs = blobs
        self._instance_id = instance_id

    # -- REST -------------------------------------------------------------------------------------------------------

    async def create(
        self,
        *,
        owner: User,
        recording_type: RecordingType,
        title: str = "",
        description: str = "",
        settings: dict[str, Any] | None = None,
    ) -> Recording:
        recording = Recording.create(
            owner_id=owner.id,
            workspace_id=owner.workspace_id,
            recording_type=recording_type,
            at=self._clock.now(),
            limits=self.limits,
            title=title,
            description=description,
            settings=settings,
        )
        async with self._uow() as tx:
            await tx.recordings.add(recording)
            await tx.commit()
        await self._publish_live(recording, holder="release")
        return recording

    async def get(self, *, owner_id: str, recording_id: str) -> Recording:
        async with self._uow() as tx:
            return await tx.recordings.get(recording_id, owner_id=owner_id)

    async def page(
        self,
        *,
        owner_id: str,
        status: RecordingStatus | None = None,
        limit: int = 20,
        cursor: str | None = None,
        title: str | None = None,
    ) -> Page:
        before = decode_cursor(cursor) if cursor else None
        async with self._uow() as tx:
            items = await tx.recordings.list(
                owner_id=owner_id, status=status, limit=limit + 1, before=before, title=title
            )
        has_more = len(items) > limit
        items = items[:limit]
        return Page(items=items, next_cursor=encode_cursor(items[-1]) if has_more else None)

    async def update(
        self, *, owner_id: str, recording_id: str, title: str | None = None, description: str | None = None
    ) -> Recording:
        def rename(recording: Recording, at: datetime) -> None:
            recording.rename(at=at, title=title, description=description)

        return await self._change(recording_id, rename, owner_id=owner_id, holder="keep")

    async def reprocess(self, *, owner_id: str, recording_id: str) -> Recording:
        """Process the kept upload again (READY or FAILED recordings); the current media stays until replaced."""

        def again(recording: Recording, at: datetime) -> None:
            recording.reprocess(at=at)

        return await self._change(recording_id, again, owner_id=owner_id, holder="keep")

    async def delete(self, *, owner_id: str, recording_id: str) -> None:
        """Delete the recording and its media. A live client is told the session is closed."""
        async with self._uow() as tx:
            recording = await tx.recordings.get(recording_id, owner_id=owner_id)
            recording.delete(at=self._clock.now())
            await tx.recordings.delete(recording)
            await tx.commit()
        if recording.upload_key:
            await self._blobs.delete(recording.upload_key)
        await self._live.publish(recording_id, {"type": "SESSION_CLOSED", "status": "DELETED"})
        await self._live.delete(recording_id)

    async def force_stop(
        self, *, owner_id: str | None, recording_id: str, reason: StopReason = StopReason.REQUESTED
    ) -> Recording:
        """Stop capturing on the server's initiative; the client holding the connection gets FORCE_STOP."""

        def stop(recording: Recording, at: datetime) -> None:
            recording.stop(at=at, upload_timeout=self.limits.upload_timeout, reason=reason)

        recording = await self._change(recording_id, stop, owner_id=owner_id, holder="keep")
        await self._live.publish(recording_id, {"type": "FORCE_STOP", "reason": reason.value})
        return recording

    # -- control channel ----------------------------------------------------------------------------------------------

    async def apply(
        self, *, owner_id: str, recording_id: str, seq: int, change: Callable[[Recording, datetime], None]
    ) -> tuple[Recording, bool]:
        """Apply a client message numbered `seq` once; returns the recording and whether it was a replay.

        Deadlines that passed before the message arrived act first (a stop after the time limit does not lengthen
        the recording); the message then applies to what is left, or is refused with the domain's error.
        """
        replay = False
        overdue: list[Overdue] = []
        refused: DomainError | None = None

        def once(recording: Recording, at: datetime) -> None:
            nonlocal replay, refused
            overdue[:] = self._enforce_all(recording, at)
            replay, refused = recording.is_replay(seq), None
            if replay:
                return
            try:
                change(recording, at)
            except DomainError as exc:
                refused = exc
                return
            recording.applied(seq)

        recording = await self._change(recording_id, once, owner_id=owner_id, holder="hold")
        await self._announce(recording_id, overdue)
        if refused is not None:
            raise refused
        return recording, replay

    async def connected(self, *, owner_id: str, recording_id: str) -> Recording:
        """A client (re)connected: cancel any reconnect grace and note which instance holds it."""

        def back(recording: Recording, at: datetime) -> None:
            recording.reconnected(at=at)

        return await self._change(recording_id, back, owner_id=owner_id, holder="hold")

    async def disconnected(self, *, recording_id: str) -> None:
        """The connection dropped: a capturing recording gets its reconnect grace period."""

        def gone(recording: Recording, at: datetime) -> None:
            recording.disconnected(at=at, grace=self.limits.reconnect_grace)

        try:
            await self._change(recording_id, gone, owner_id=None, holder="release")
        except DomainError:
            return  # deleted meanwhile: nothing to keep track of

    async def touch(self, recording: Recording) -> None:
        """Refresh the live entry of a connection this instance holds (called on pings and messages)."""
        await self._publish_live(recording, holder="hold")

    # -- deadlines ----------------------------------------------------------------------------------------------------

    async def sweep(self, *, batch: int = 100) -> int:
        """Enforce every deadline that has passed; returns how many recordings changed. Safe to run anywhere."""
        async with self._uow() as tx:
            due = await tx.recordings.due(at=self._clock.now(), limit=batch)
        changed = 0
        for recording_id in due:
            overdue: list[Overdue] = []

            def enforce(recording: Recording, at: datetime, overdue: list[Overdue] = overdue) -> None:
                overdue[:] = self._enforce_all(recording, at)

            try:
                await self._change(recording_id, enforce, owner_id=None, holder="keep")
            except DomainError:
                continue  # deleted or finished by someone else in between
            changed += bool(overdue)
            await self._announce(recording_id, overdue)
        return changed

    def _enforce_all(self, recording: Recording, at: datetime) -> list[Overdue]:
        """Apply every passed deadline, earliest first (a late sweep may find a stop and an upload timeout due)."""
        overdue: list[Overdue] = []
        while (outcome := recording.enforce_deadlines(at=at, upload_timeout=self.limits.upload_timeout)) is not None:
            overdue.append(outcome)
        return overdue

    async def _announce(self, recording_id: str, overdue: Sequence[Overdue]) -> None:
        """Tell the connected client what the deadlines did."""
        for outcome in overdue:
            if isinstance(outcome, StopReason):
                await self._live.publish(recording_id, {"type": "FORCE_STOP", "reason": outcome.value})
            elif outcome is RecordingStatus.EXPIRED:
                await self._live.publish(recording_id, {"type": "SESSION_EXPIRED"})

    # -- internals ----------------------------------------------------------------------------------------------------

    async def _change(
        self,
        recording_id: str,
        change: Callable[[Recording, datetime], None],
        *,
        owner_id: str | None,
        holder: Holder,
    ) -> Recording:
        """Load, change and save one recording, retrying when a concurrent writer won the race."""

        async def attempt(tx: UnitOfWork) -> Recording:
            recording = await tx.recordings.get(recording_id, owner_id=owner_id)
            change(recording, self._clock.now())
            await tx.recordings.save(recording)
            await tx.commit()
            return recording

        recording = await self._retrying(attempt)
        await self._publish_live(recording, holder=holder)
        return recording

    async def _retrying(self, attempt: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        for remaining in range(CONFLICT_RETRIES, 0, -1):
            async with self._uow() as tx:
                try:
                    return await attempt(tx)
                except ConcurrentUpdate:
                    if remaining == 1:
                        raise
        raise AssertionError("unreachable")

    async def _publish_live(self, recording: Recording, *, holder: Holder) -> None:
        if recording.status.is_terminal:
            await self._live.delete(recording.id)
            return
        instance_id, last_seen = None, None
        if holder == "hold":
            instance_id, last_seen = self._instance_id, self._clock.now()
        elif holder == "keep" and (current := await self._live.get(recording.id)) is not None:
            instance_id, last_seen = current.instance_id, current.last_seen
        session = LiveSession(
            recording_id=recording.id, status=recording.status.value, instance_id=instance_id, last_seen=last_seen
        )
        await self._live.put(session, ttl_seconds=LIVE_TTL_SECONDS)
