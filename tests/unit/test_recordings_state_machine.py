"""Random sessions against a model: whatever clients, clocks and the sweeper do, the recording stays consistent."""

from __future__ import annotations

import copy
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from framecast.domain import events as ev
from framecast.domain.errors import InvalidTransition
from framecast.domain.media import MediaSet
from framecast.domain.recordings import Action, Limits, Recording, RecordingStatus, RecordingType, StopReason
from framecast.domain.uploads import UploadKind

S = RecordingStatus
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
# Short limits, so that a few clock steps reach every deadline.
LIMITS = Limits(
    prepare_timeout=timedelta(minutes=3),
    max_duration=timedelta(minutes=5),
    reconnect_grace=timedelta(minutes=1),
    upload_timeout=timedelta(minutes=4),
)
# Mostly small steps, sometimes long enough to cross one or several deadlines before the sweeper runs.
ADVANCES = st.one_of(st.integers(0, 3_000), st.integers(0, 10 * 60 * 1000)).map(lambda ms: timedelta(milliseconds=ms))
CLIENT_MS = st.none() | st.integers(0, 10**8)
# The model's lifecycle (DESIGN.md section 3) for the commands that clients and the media pipeline send.
ALLOWED: dict[Action, frozenset[RecordingStatus]] = {
    Action.START: frozenset({S.PREPARING}),
    Action.PAUSE: frozenset({S.RECORDING}),
    Action.RESUME: frozenset({S.PAUSED}),
    Action.STOP: frozenset({S.RECORDING, S.PAUSED}),
    Action.ABORT: frozenset({S.PREPARING, S.RECORDING, S.PAUSED}),
    Action.COMPLETE_UPLOAD: frozenset({S.UPLOADING}),
    Action.MARK_PLAYABLE: frozenset({S.PROCESSING}),
    Action.FAIL_PROCESSING: frozenset({S.PROCESSING}),
}
CAPTURE = {Action.START, Action.PAUSE, Action.RESUME, Action.STOP}
# The uploads bound to a recording that it takes in each status: parts from the start of capture (a client uploads
# each segment as it records it), whole and final uploads, which complete the recording, only once it is stopped.
TAKES: dict[UploadKind, frozenset[RecordingStatus]] = {
    UploadKind.PARTIAL: frozenset({S.RECORDING, S.PAUSED, S.UPLOADING}),
    UploadKind.SINGLE: frozenset({S.UPLOADING}),
    UploadKind.FINAL: frozenset({S.UPLOADING}),
}


def snapshot(recording: Recording) -> dict[str, Any]:
    return {f.name: copy.deepcopy(getattr(recording, f.name)) for f in fields(recording)}


class RecordingSession(RuleBasedStateMachine):
    """Drive one recording; the model keeps its own status, active intervals and deadlines."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.recording = Recording.create(
            owner_id="user-1", workspace_id="ws-1", recording_type=RecordingType.SCREEN, at=T0, limits=LIMITS
        )
        self.status = S.PREPARING
        self.expected_events = [ev.RECORDING_CREATED]
        self.active: list[tuple[datetime, datetime]] = []  # closed stretches of unpaused capture
        self.active_since: datetime | None = None  # start of the open stretch while RECORDING
        self.paused_since: datetime | None = None
        self.paused_ms = 0
        self.segments = 0
        self.duration_ms: int | None = None
        self.prepare_deadline: datetime | None = T0 + LIMITS.prepare_timeout
        self.grace_deadline: datetime | None = None
        self.upload_deadline: datetime | None = None
        self.frozen: dict[str, Any] | None = None  # the recording as it entered a terminal status

    # -- the model -----------------------------------------------------------------------------------------------

    def active_ms(self, until: datetime) -> int:
        closed = sum((end - start) // timedelta(milliseconds=1) for start, end in self.active)
        if self.active_since is None:
            return closed
        return closed + (until - self.active_since) // timedelta(milliseconds=1)

    def time_limit(self) -> datetime | None:
        if self.active_since is None:
            return None
        return self.active_since + LIMITS.max_duration - timedelta(milliseconds=self.active_ms(self.active_since))

    def deadlines(self) -> dict[str, datetime]:
        candidates = {
            "prepare": self.prepare_deadline,
            "time_limit": self.time_limit(),
            "grace": self.grace_deadline,
            "upload": self.upload_deadline,
        }
        return {name: when for name, when in candidates.items() if when is not None}

    def overdue(self) -> bool:
        return any(when <= self.now for when in self.deadlines().values())

    def close_stretch(self, at: datetime) -> None:
        if self.active_since is not None:
            self.active.append((self.active_since, at))
            self.active_since = None
        if self.paused_since is not None:
            self.paused_ms += (at - self.paused_since) // timedelta(milliseconds=1)
            self.paused_since = None

    def model_stop(self, at: datetime) -> None:
        self.close_stretch(at)
        self.status = S.UPLOADING
        self.duration_ms = self.active_ms(at)
        self.grace_deadline = None
        self.upload_deadline = at + LIMITS.upload_timeout
        self.expected_events.append(ev.RECORDING_FINALIZED)

    def valid_commands(self) -> list[Action]:
        """Commands that move the session on: anything its status allows but abort, which would end it early."""
        return [
            action
            for action, allowed in ALLOWED.items()
            if self.status in allowed and action is not Action.ABORT and not (action in CAPTURE and self.overdue())
        ]

    def call(self, action: Action, client_ms: int | None) -> None:
        if action is Action.START:
            self.recording.start(at=self.now)
        elif action is Action.PAUSE:
            self.recording.pause(at=self.now)
        elif action is Action.RESUME:
            self.recording.resume(at=self.now)
        elif action is Action.STOP:
            self.recording.stop(at=self.now, upload_timeout=LIMITS.upload_timeout, client_duration_ms=client_ms)
        elif action is Action.ABORT:
            self.recording.abort(at=self.now)
        elif action is Action.COMPLETE_UPLOAD:
            self.recording.complete_upload(at=self.now, key="raw/x.webm", size=4096)
        elif action is Action.MARK_PLAYABLE:
            self.recording.mark_playable(
                at=self.now, media=MediaSet(generation="g", duration_ms=1000, width=640, height=360, frame_rate=30)
            )
        else:
            self.recording.fail_processing(at=self.now, reason="Unsupported codec.")

    def expect(self, action: Action, client_ms: int | None) -> None:
        """Move the model as `action` must have moved the recording."""
        if action is Action.START:
            self.status = S.RECORDING
            self.active_since = self.now
            self.segments = 1
            self.prepare_deadline = None
            self.expected_events.append(ev.RECORDING_STARTED)
        elif action is Action.PAUSE:
            self.close_stretch(self.now)
            self.status = S.PAUSED
            self.paused_since = self.now
            self.expected_events.append(ev.RECORDING_PAUSED)
            assert self.recording.events[-1].data["elapsed_ms"] == self.active_ms(self.now)
        elif action is Action.RESUME:
            self.close_stretch(self.now)
            self.status = S.RECORDING
            self.active_since = self.now
            self.segments += 1
            self.expected_events.append(ev.RECORDING_RESUMED)
            assert self.recording.events[-1].data["segment"] == self.segments
        elif action is Action.STOP:
            self.model_stop(self.now)
            assert self.recording.stop_reason is StopReason.STOPPED
            assert self.recording.client_duration_ms == client_ms
        elif action is Action.ABORT:
            self.paused_since = None  # an aborted session keeps no duration, so its last pause is not added up
            self.close_stretch(self.now)
            self.status = S.ABORTED
            self.prepare_deadline = self.grace_deadline = self.upload_deadline = None
            self.expected_events.append(ev.RECORDING_ABORTED)
        elif action is Action.COMPLETE_UPLOAD:
            self.status = S.PROCESSING
            self.upload_deadline = None
            self.expected_events.append(ev.RAW_VIDEO_UPLOADED)
        elif action is Action.MARK_PLAYABLE:
            self.status = S.READY
            self.expected_events.append(ev.VIDEO_PLAYABLE)
        else:
            self.status = S.FAILED
            self.expected_events.append(ev.RECORDING_FAILED)
            assert self.recording.failure_reason == "Unsupported codec."

    def perform(self, action: Action, client_ms: int | None) -> None:
        """Send `action`; it must succeed exactly when the model's status allows it, and otherwise change nothing."""
        if action in CAPTURE and self.overdue():
            # A capture command racing an overdue, unswept deadline: what it should do is the sweeper's call.
            return
        if self.status in ALLOWED[action]:
            self.call(action, client_ms)
            self.expect(action, client_ms)
            return
        before = snapshot(self.recording)
        with pytest.raises(InvalidTransition):
            self.call(action, client_ms)
        assert snapshot(self.recording) == before

    # -- rules ---------------------------------------------------------------------------------------------------

    @rule(delta=ADVANCES)
    def advance_clock(self, delta: timedelta) -> None:
        self.now += delta

    @rule(action=st.sampled_from(list(ALLOWED)), client_ms=CLIENT_MS)
    def any_command(self, action: Action, client_ms: int | None) -> None:
        self.perform(action, client_ms)

    @precondition(lambda self: bool(self.valid_commands()))
    @rule(data=st.data(), client_ms=CLIENT_MS)
    def next_step(self, data: st.DataObject, client_ms: int | None) -> None:
        self.perform(data.draw(st.sampled_from(self.valid_commands())), client_ms)

    @precondition(lambda self: not self.overdue())
    @rule(drop=st.booleans())
    def connection(self, drop: bool) -> None:
        if drop:
            self.recording.disconnected(at=self.now, grace=LIMITS.reconnect_grace)
            if self.status.is_capturing and self.grace_deadline is None:
                self.grace_deadline = self.now + LIMITS.reconnect_grace
        else:
            self.recording.reconnected(at=self.now)
            self.grace_deadline = None

    @rule()
    def sweep(self) -> None:
        due = {name: when for name, when in self.deadlines().items() if when <= self.now}
        before = snapshot(self.recording)
        outcome = self.recording.enforce_deadlines(at=self.now, upload_timeout=LIMITS.upload_timeout)
        if not due:
            assert outcome is None
            assert snapshot(self.recording) == before
            return
        # The earliest due deadline acts, at its own instant; the time limit wins a tie with the grace.
        name = min(due, key=lambda n: (due[n], n != "time_limit"))
        when = due[name]
        if name == "prepare":
            assert outcome is S.EXPIRED
            self.status = S.EXPIRED
            self.prepare_deadline = None
            self.expected_events.append(ev.RECORDING_EXPIRED)
        elif name == "upload":
            assert outcome is S.FAILED
            self.status = S.FAILED
            self.upload_deadline = None
            self.expected_events.append(ev.RECORDING_FAILED)
            assert self.recording.failure_reason
        else:
            assert outcome is (StopReason.TIME_LIMIT if name == "time_limit" else StopReason.RECONNECT_GRACE)
            self.model_stop(when)
            assert self.recording.stopped_at == when
            if name == "time_limit":
                assert self.duration_ms == LIMITS.max_duration // timedelta(milliseconds=1)

    # -- invariants ----------------------------------------------------------------------------------------------

    @invariant()
    def status_follows_the_model(self) -> None:
        assert self.recording.status in set(S)
        assert self.recording.status is self.status

    @invariant()
    def terminal_recordings_never_change(self) -> None:
        if not self.status.is_terminal:
            return
        if self.frozen is None:
            self.frozen = snapshot(self.recording)
        assert snapshot(self.recording) == self.frozen

    @invariant()
    def durations_count_active_time_only(self) -> None:
        recording = self.recording
        assert recording.paused_ms == self.paused_ms >= 0
        assert recording.segment_count == self.segments
        assert recording.duration_ms == self.duration_ms
        if self.duration_ms is not None:
            assert self.duration_ms >= 0
            assert recording.stopped_at is not None
            assert recording.started_at is not None
            wall_ms = (recording.stopped_at - recording.started_at) // timedelta(milliseconds=1)
            assert self.duration_ms == wall_ms - self.paused_ms
        assert 0 <= recording.elapsed_ms(self.now) == self.active_ms(self.now)

    @invariant()
    def deadline_is_the_earliest_pending_one(self) -> None:
        pending = self.deadlines().values()
        assert self.recording.deadline_at == (min(pending) if pending else None)
        assert self.recording.time_limit_at == self.time_limit()

    @invariant()
    def uploads_are_taken_only_in_their_statuses(self) -> None:
        for kind in UploadKind:
            assert self.recording.takes_upload(kind) is (self.status in TAKES[kind])

    @invariant()
    def events_are_appended_only_by_transitions(self) -> None:
        assert [e.type for e in self.recording.events] == self.expected_events
        assert {e.subject for e in self.recording.events} == {self.recording.id}


TestRecordingSession = RecordingSession.TestCase
TestRecordingSession.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)


def test_a_recording_takes_parts_while_capturing_and_whole_uploads_only_once_stopped() -> None:
    recording = Recording.create(
        owner_id="user-1", workspace_id="ws-1", recording_type=RecordingType.SCREEN, at=T0, limits=LIMITS
    )
    taken: dict[RecordingStatus, set[UploadKind]] = {}

    def note() -> None:
        taken[recording.status] = {kind for kind in UploadKind if recording.takes_upload(kind)}

    note()
    recording.start(at=T0)
    note()
    recording.pause(at=T0 + timedelta(seconds=5))
    note()
    recording.stop(at=T0 + timedelta(seconds=9), upload_timeout=LIMITS.upload_timeout)
    note()
    recording.complete_upload(at=T0 + timedelta(seconds=12), key="raw/x.mp4", size=4096, parts=[1024, 3072])
    note()
    assert taken == {
        S.PREPARING: set(),  # nothing was captured yet
        S.RECORDING: {UploadKind.PARTIAL},
        S.PAUSED: {UploadKind.PARTIAL},
        S.UPLOADING: {UploadKind.SINGLE, UploadKind.PARTIAL, UploadKind.FINAL},
        S.PROCESSING: set(),
    }
    recording = Recording.create(
        owner_id="user-1", workspace_id="ws-1", recording_type=RecordingType.SCREEN, at=T0, limits=LIMITS
    )
    recording.start(at=T0)
    recording.abort(at=T0 + timedelta(seconds=3))
    assert not any(recording.takes_upload(kind) for kind in UploadKind)
