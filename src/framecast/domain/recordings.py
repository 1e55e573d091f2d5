"""The recording aggregate: its state machine, server-measured durations and deadlines.

The server owns time: every transition takes the server's `at`; the client's own duration is kept beside the
server's figure, never instead of it. Each deadline is a plain timestamp on the aggregate, so the database keeps
it and a sweeper can enforce it after a restart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from framecast.domain import events as ev
from framecast.domain.errors import InvalidTransition
from framecast.domain.events import DomainEvent
from framecast.domain.media import MediaSet
from framecast.domain.sharing import new_link_id
from framecast.domain.uploads import UploadKind


class RecordingStatus(StrEnum):
    PREPARING = "PREPARING"
    RECORDING = "RECORDING"
    PAUSED = "PAUSED"
    UPLOADING = "UPLOADING"
    PROCESSING = "PROCESSING"
    READY = "READY"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_capturing(self) -> bool:
        """True while the client is (or may be) capturing media."""
        return self in (RecordingStatus.RECORDING, RecordingStatus.PAUSED)


_TERMINAL = frozenset({RecordingStatus.READY, RecordingStatus.FAILED, RecordingStatus.ABORTED, RecordingStatus.EXPIRED})


class RecordingType(StrEnum):
    SCREEN = "screen"
    CAMERA = "camera"
    SCREEN_CAMERA = "screen_camera"
    AUDIO = "audio"


class StopReason(StrEnum):
    """Why a recording stopped; every reason but STOPPED is pushed to the client as FORCE_STOP."""

    STOPPED = "stopped"
    REQUESTED = "requested"
    TIME_LIMIT = "time_limit"
    RECONNECT_GRACE = "reconnect_grace"


class Action(StrEnum):
    """Everything that can happen to a recording; the transition table is keyed on these."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    ABORT = "abort"
    EXPIRE = "expire"
    COMPLETE_UPLOAD = "complete upload"
    FAIL_UPLOAD = "time out the upload of"
    MARK_PLAYABLE = "mark playable"
    COMPLETE_LIVE = "complete the live upload of"
    FAIL_PROCESSING = "fail processing of"
    REPROCESS = "reprocess"


S = RecordingStatus
TRANSITIONS: dict[Action, tuple[frozenset[RecordingStatus], RecordingStatus]] = {
    Action.START: (frozenset({S.PREPARING}), S.RECORDING),
    Action.PAUSE: (frozenset({S.RECORDING}), S.PAUSED),
    Action.RESUME: (frozenset({S.PAUSED}), S.RECORDING),
    Action.STOP: (frozenset({S.RECORDING, S.PAUSED}), S.UPLOADING),
    Action.ABORT: (frozenset({S.PREPARING, S.RECORDING, S.PAUSED}), S.ABORTED),
    Action.EXPIRE: (frozenset({S.PREPARING}), S.EXPIRED),
    Action.COMPLETE_UPLOAD: (frozenset({S.UPLOADING}), S.PROCESSING),
    Action.FAIL_UPLOAD: (frozenset({S.UPLOADING}), S.FAILED),
    Action.MARK_PLAYABLE: (frozenset({S.PROCESSING}), S.READY),
    Action.COMPLETE_LIVE: (frozenset({S.UPLOADING}), S.READY),
    Action.FAIL_PROCESSING: (frozenset({S.PROCESSING}), S.FAILED),
    Action.REPROCESS: (frozenset({S.READY, S.FAILED}), S.PROCESSING),
}


# The statuses in which a recording takes each kind of upload bound to it. A part may come while capturing: a client
# uploads each segment as it records it. A single or final upload completes the recording, so only once stopped.
UPLOAD_STATUSES: dict[UploadKind, frozenset[RecordingStatus]] = {
    UploadKind.SINGLE: frozenset({S.UPLOADING}),
    UploadKind.PARTIAL: frozenset({S.RECORDING, S.PAUSED, S.UPLOADING}),
    UploadKind.FINAL: frozenset({S.UPLOADING}),
}


def _ms(delta: timedelta) -> int:
    # Integer division: float seconds * 1000 truncates 1.001 s to 1000 ms.
    return delta // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Limits:
    """Time limits applied to a recording; set by the operator, stored as deadlines on each recording."""

    prepare_timeout: timedelta = timedelta(minutes=10)
    max_duration: timedelta = timedelta(hours=4)
    reconnect_grace: timedelta = timedelta(minutes=2)
    upload_timeout: timedelta = timedelta(hours=24)


@dataclass(eq=False, kw_only=True)
class Recording:
    """One recording session, from PREPARING to a terminal status. Mutate it only through its methods."""

    id: str
    owner_id: str
    workspace_id: str
    recording_type: RecordingType
    created_at: datetime
    max_duration_ms: int
    title: str = ""
    description: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    status: RecordingStatus = RecordingStatus.PREPARING
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    paused_at: datetime | None = None
    paused_ms: int = 0
    duration_ms: int | None = None
    client_duration_ms: int | None = None
    segment_count: int = 0
    stop_reason: StopReason | None = None
    failure_reason: str | None = None
    client_metadata: dict[str, Any] = field(default_factory=dict)
    upload_key: str | None = None
    upload_size: int | None = None
    upload_parts: list[int] = field(default_factory=list)
    prepare_expires_at: datetime | None = None
    grace_expires_at: datetime | None = None
    upload_expires_at: datetime | None = None
    updated_at: datetime | None = None
    media: MediaSet | None = None
    last_seq: int = 0
    # The primary share link's id (see domain/sharing.py); made with the recording, unguessable.
    share_id: str = field(default_factory=new_link_id)
    version: int = 0
    events: list[DomainEvent] = field(default_factory=list, repr=False)

    @classmethod
    def create(
        cls,
        *,
        owner_id: str,
        workspace_id: str,
        recording_type: RecordingType,
        at: datetime,
        limits: Limits,
        title: str = "",
        description: str = "",
        settings: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> Recording:
        """Open a new session in PREPARING; it expires unless started within the prepare timeout."""
        recording = cls(
            id=id or str(uuid.uuid4()),
            owner_id=owner_id,
            workspace_id=workspace_id,
            recording_type=recording_type,
            created_at=at,
            updated_at=at,
            max_duration_ms=_ms(limits.max_duration),
            title=title,
            description=description,
            settings=dict(settings or {}),
            prepare_expires_at=at + limits.prepare_timeout,
        )
        recording._record(ev.RECORDING_CREATED, at, recording_type=recording_type.value, owner_id=owner_id)
        return recording

    @classmethod
    def create_import(
        cls,
        *,
        owner_id: str,
        workspace_id: str,
        at: datetime,
        limits: Limits,
        title: str = "",
        recording_type: RecordingType = RecordingType.SCREEN_CAMERA,
    ) -> Recording:
        """A recording for an existing video file being uploaded: it starts in UPLOADING, with no capture times.

        Its duration comes from the media itself once processed.
        """
        recording = cls(
            id=str(uuid.uuid4()),
            owner_id=owner_id,
            workspace_id=workspace_id,
            recording_type=recording_type,
            created_at=at,
            updated_at=at,
            max_duration_ms=_ms(limits.max_duration),
            title=title,
            status=RecordingStatus.UPLOADING,
            upload_expires_at=at + limits.upload_timeout,
            settings={"source": "import"},
        )
        recording._record(
            ev.RECORDING_CREATED, at, recording_type=recording_type.value, owner_id=owner_id, imported=True
        )
        return recording

    # -- client-driven transitions -------------------------------------------------------------------------------

    def start(self, *, at: datetime, metadata: dict[str, Any] | None = None) -> None:
        self._move(Action.START, at)
        self.started_at = at
        self.segment_count = 1
        self.prepare_expires_at = None
        self.client_metadata.update(metadata or {})
        self._record(ev.RECORDING_STARTED, at, segment=self.segment_count)

    def pause(self, *, at: datetime) -> None:
        self._move(Action.PAUSE, at)
        self.paused_at = at
        self._record(ev.RECORDING_PAUSED, at, segment=self.segment_count, elapsed_ms=self.elapsed_ms(at))

    def resume(self, *, at: datetime) -> None:
        self._move(Action.RESUME, at)
        assert self.paused_at is not None
        self.paused_ms += _ms(at - self.paused_at)
        self.paused_at = None
        self.segment_count += 1
        self._record(ev.RECORDING_RESUMED, at, segment=self.segment_count)

    def stop(
        self,
        *,
        at: datetime,
        upload_timeout: timedelta,
        reason: StopReason = StopReason.STOPPED,
        client_duration_ms: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Finish capturing; the duration is measured here, from server transition times, pauses excluded."""
        self._move(Action.STOP, at)
        if self.paused_at is not None:
            self.paused_ms += _ms(at - self.paused_at)
            self.paused_at = None
        assert self.started_at is not None
        self.stopped_at = at
        self.duration_ms = max(0, _ms(at - self.started_at) - self.paused_ms)
        self.client_duration_ms = client_duration_ms
        self.client_metadata.update(metadata or {})
        self.stop_reason = reason
        self.grace_expires_at = None
        self.upload_expires_at = at + upload_timeout
        self._record(
            ev.RECORDING_FINALIZED,
            at,
            duration_ms=self.duration_ms,
            client_duration_ms=client_duration_ms,
            segment_count=self.segment_count,
            stop_reason=reason.value,
        )

    def abort(self, *, at: datetime) -> None:
        self._move(Action.ABORT, at)
        self.stopped_at = at
        if self.media is not None and self.media.live:
            self.media = None  # what a live upload sent is deleted with it (recording_aborted): nothing plays
        self._clear_deadlines()
        self._record(ev.RECORDING_ABORTED, at)

    # -- connection tracking -------------------------------------------------------------------------------------

    def disconnected(self, *, at: datetime, grace: timedelta) -> None:
        """The control channel dropped mid-capture: stop the recording unless the client is back within `grace`."""
        if self.status.is_capturing and self.grace_expires_at is None:
            self.grace_expires_at = at + grace
            self.updated_at = at

    def reconnected(self, *, at: datetime) -> None:
        if self.grace_expires_at is not None:
            self.grace_expires_at = None
            self.updated_at = at

    # -- deadlines -----------------------------------------------------------------------------------------------

    @property
    def time_limit_at(self) -> datetime | None:
        """When the active (unpaused) time reaches the maximum duration; None unless RECORDING."""
        if self.status is not RecordingStatus.RECORDING or self.started_at is None:
            return None
        return self.started_at + timedelta(milliseconds=self.paused_ms + self.max_duration_ms)

    @property
    def deadline_at(self) -> datetime | None:
        """The earliest pending deadline, or None; the sweeper calls `enforce_deadlines` once it has passed."""
        pending = [
            d
            for d in (self.prepare_expires_at, self.time_limit_at, self.grace_expires_at, self.upload_expires_at)
            if d is not None
        ]
        return min(pending) if pending else None

    def enforce_deadlines(self, *, at: datetime, upload_timeout: timedelta) -> StopReason | RecordingStatus | None:
        """Apply the earliest deadline that has passed by `at`; call again until it returns None to apply them all.

        Returns the stop reason when the recording was force-stopped, the new status when it expired or failed,
        and None when nothing was due. A deadline acts at its own time, not at `at`, so a late sweep still measures
        a time-limited recording as exactly the maximum duration.
        """
        if self.prepare_expires_at is not None and self.prepare_expires_at <= at:
            self._move(Action.EXPIRE, at)
            self._clear_deadlines()
            self._record(ev.RECORDING_EXPIRED, at)
            return self.status
        limit = self.time_limit_at
        grace = self.grace_expires_at
        if limit is not None and limit <= at and (grace is None or limit <= grace):
            self.stop(at=limit, upload_timeout=upload_timeout, reason=StopReason.TIME_LIMIT)
            return StopReason.TIME_LIMIT
        if grace is not None and grace <= at:
            self.stop(at=grace, upload_timeout=upload_timeout, reason=StopReason.RECONNECT_GRACE)
            return StopReason.RECONNECT_GRACE
        if self.upload_expires_at is not None and self.upload_expires_at <= at:
            self._move(Action.FAIL_UPLOAD, at)
            self._clear_deadlines()
            self.failure_reason = "The recording was never uploaded: the upload window closed."
            self._record(ev.RECORDING_FAILED, at, reason=self.failure_reason)
            return self.status
        return None

    # -- upload and processing -----------------------------------------------------------------------------------

    def complete_upload(self, *, at: datetime, key: str, size: int, parts: list[int] | None = None) -> None:
        """The upload is whole under `key`; `parts` are the sizes of the pieces it was concatenated from, in order
        (one per segment when a client uploads each segment separately), so processing can tell them apart."""
        self._move(Action.COMPLETE_UPLOAD, at)
        self.upload_key = key
        self.upload_size = size
        self.upload_parts = list(parts or [])
        self.upload_expires_at = None
        self._record(
            ev.RAW_VIDEO_UPLOADED,
            at,
            key=key,
            size=size,
            recording_type=self.recording_type.value,
            parts=self.upload_parts,
        )

    def mark_playable(self, *, at: datetime, media: MediaSet) -> None:
        """The first playable rendition of `media` is published: viewers can watch, the ladder follows."""
        self._move(Action.MARK_PLAYABLE, at)
        self.media = media
        self.failure_reason = None
        if self.duration_ms is None:  # an import: its length is the media's
            self.duration_ms = media.duration_ms
        self._record(ev.VIDEO_PLAYABLE, at, generation=media.generation, duration_ms=media.duration_ms)

    def go_live(self, *, at: datetime, media: MediaSet) -> None:
        """The first segment of a live upload is stored: viewers can watch while it records (docs/live.md)."""
        if not self.takes_live_segments:
            raise InvalidTransition(status=self.status.value, action="go live with")
        self.media = media
        self.updated_at = at
        self._record(ev.VIDEO_LIVE, at, generation=media.generation)

    def complete_live(self, *, at: datetime, duration_ms: int) -> None:
        """Every segment of a live upload is stored: the recording is READY, the playlist ends, no transcode; its
        duration becomes the segments' (`duration_ms`)."""
        media = self.media
        if media is None or not media.live:
            raise InvalidTransition(status=self.status.value, action=Action.COMPLETE_LIVE.value)
        self._move(Action.COMPLETE_LIVE, at)
        media.live = False
        media.duration_ms = duration_ms
        # What plays is the length: the server's stop-watch differs from it by the capture's start-up, and wholly
        # when a client replays a file faster than real time.
        self.duration_ms = duration_ms
        self.upload_expires_at = None
        self.failure_reason = None
        self._record(ev.VIDEO_PLAYABLE, at, generation=media.generation, duration_ms=duration_ms, live=True)

    def live_source(self, *, at: datetime, generation: str, key: str, size: int, frame_rate: float) -> bool:
        """A live recording's segments are joined into one file under `key`: the source of its ladder and pictures,
        and what a reprocess starts from. False for a generation that is not current."""
        if self.media is None or self.media.generation != generation:
            return False
        self.media.source_key = key
        self.media.frame_rate = frame_rate
        self.upload_key = key
        self.upload_size = size
        self.updated_at = at
        return True

    @property
    def takes_live_segments(self) -> bool:
        """Segments of a live upload are taken while capturing and after stop, until it completes."""
        return self.status in (S.RECORDING, S.PAUSED, S.UPLOADING)

    def rendition_ready(self, *, at: datetime, generation: str, name: str) -> bool:
        """A rung of the ladder is published; False (and nothing recorded) for a generation that is not current."""
        if self.media is None or self.media.generation != generation:
            return False
        if name not in self.media.renditions:
            self.media.renditions.append(name)
        self.updated_at = at
        self._record(ev.RENDITION_READY, at, generation=generation, rendition=name)
        return True

    def media_complete(self, *, at: datetime, generation: str, part: str) -> bool:
        """`part` ("ladder", "pictures" or "download") of the current generation is published; once all three are,
        `video_ready` fires. False for a generation that is not current."""
        media = self.media
        if media is None or media.generation != generation:
            return False
        was_ready = media.ladder_complete and media.pictures and media.download
        if part == "ladder":
            media.ladder_complete = True
        elif part == "pictures":
            media.pictures = True
        elif part == "download":
            media.download = True
        else:
            raise ValueError(f"unknown media part {part!r}")
        self.updated_at = at
        if not was_ready and media.ladder_complete and media.pictures and media.download:
            self._record(ev.VIDEO_READY, at, generation=generation, renditions=list(media.renditions))
        return True

    def fail_processing(self, *, at: datetime, reason: str, stage: str = "") -> None:
        self._move(Action.FAIL_PROCESSING, at)
        self.failure_reason = reason
        self._record(ev.RECORDING_FAILED, at, reason=reason, stage=stage)

    def reprocess(self, *, at: datetime) -> None:
        """Run processing again on the same upload (the previous media stays watchable until replaced)."""
        if self.upload_key is None:
            raise InvalidTransition(status=self.status.value, action=Action.REPROCESS.value)
        self._move(Action.REPROCESS, at)
        self.failure_reason = None
        self._record(
            ev.RAW_VIDEO_UPLOADED,
            at,
            key=self.upload_key,
            size=self.upload_size,
            reprocess=True,
            recording_type=self.recording_type.value,
            parts=self.upload_parts,
        )

    # -- control-channel sequence numbers ----------------------------------------------------------------------------

    def is_replay(self, seq: int) -> bool:
        """True when a client message with `seq` was already applied (clients number messages upwards per recording)."""
        return seq <= self.last_seq

    def applied(self, seq: int) -> None:
        self.last_seq = max(self.last_seq, seq)

    # -- reading ----------------------------------------------------------------------------------------------------

    def elapsed_ms(self, at: datetime) -> int:
        """Active recording time at `at`, pauses excluded; the final duration once stopped."""
        if self.duration_ms is not None:
            return self.duration_ms
        if self.started_at is None:
            return 0
        if self.stopped_at is not None:  # aborted: the clock stopped with the session
            at = min(at, self.stopped_at)
        paused = self.paused_ms + (_ms(at - self.paused_at) if self.paused_at is not None else 0)
        return max(0, _ms(at - self.started_at) - paused)

    def delete(self, *, at: datetime) -> None:
        """Record the deletion; the repository removes the row, the event tells everyone else to clean up."""
        self._record(ev.RECORDING_DELETED, at, upload_key=self.upload_key)

    def rename(self, *, at: datetime, title: str | None = None, description: str | None = None) -> None:
        if title is not None:
            self.title = title
        if description is not None:
            self.description = description
        self.updated_at = at

    # -- internals ----------------------------------------------------------------------------------------------------

    def can(self, action: Action) -> bool:
        return self.status in TRANSITIONS[action][0]

    def takes_upload(self, kind: UploadKind) -> bool:
        """True when an upload of `kind` bound to this recording may be created or appended to now."""
        return self.status in UPLOAD_STATUSES[kind]

    def _move(self, action: Action, at: datetime) -> None:
        allowed, target = TRANSITIONS[action]
        if self.status not in allowed:
            raise InvalidTransition(status=self.status.value, action=f"{action.value}")
        self.status = target
        self.updated_at = at

    def _clear_deadlines(self) -> None:
        self.prepare_expires_at = None
        self.grace_expires_at = None
        self.upload_expires_at = None

    def _record(self, type_: str, at: datetime, **data: Any) -> None:
        self.events.append(
            DomainEvent(
                type=type_,
                subject=self.id,
                time=at,
                data={"recording_id": self.id, "status": self.status.value, **data},
            )
        )
