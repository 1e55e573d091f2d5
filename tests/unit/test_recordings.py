"""The recording aggregate: the lifecycle of DESIGN.md section 3, server-measured durations, events and deadlines."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from framecast.domain import events as ev
from framecast.domain.errors import InvalidTransition
from framecast.domain.events import DomainEvent
from framecast.domain.media import MediaSet
from framecast.domain.recordings import (
    TRANSITIONS,
    Action,
    Limits,
    Recording,
    RecordingStatus,
    RecordingType,
    StopReason,
)

S = RecordingStatus
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LIMITS = Limits(
    prepare_timeout=timedelta(minutes=10),
    max_duration=timedelta(minutes=30),
    reconnect_grace=timedelta(minutes=2),
    upload_timeout=timedelta(hours=1),
)
MAX_MS = 30 * 60 * 1000


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


NOW = at(100)  # when a test acts on a recording built by `in_status`: before any of its deadlines

# DESIGN.md section 3, written out independently of the code's own table.
LIFECYCLE: dict[tuple[RecordingStatus, Action], RecordingStatus] = {
    (S.PREPARING, Action.START): S.RECORDING,
    (S.RECORDING, Action.PAUSE): S.PAUSED,
    (S.PAUSED, Action.RESUME): S.RECORDING,
    (S.RECORDING, Action.STOP): S.UPLOADING,
    (S.PAUSED, Action.STOP): S.UPLOADING,
    (S.PREPARING, Action.ABORT): S.ABORTED,
    (S.RECORDING, Action.ABORT): S.ABORTED,
    (S.PAUSED, Action.ABORT): S.ABORTED,
    (S.PREPARING, Action.EXPIRE): S.EXPIRED,
    (S.UPLOADING, Action.COMPLETE_UPLOAD): S.PROCESSING,
    (S.UPLOADING, Action.FAIL_UPLOAD): S.FAILED,
    (S.PROCESSING, Action.MARK_PLAYABLE): S.READY,
    # A live upload (docs/live.md) is playable the moment its last segment lands: no processing in between.
    (S.UPLOADING, Action.COMPLETE_LIVE): S.READY,
    (S.PROCESSING, Action.FAIL_PROCESSING): S.FAILED,
    # Not part of a session: the owner asks for processing again, from the upload kept.
    (S.READY, Action.REPROCESS): S.PROCESSING,
    (S.FAILED, Action.REPROCESS): S.PROCESSING,
}
INVALID = [(status, action) for status in S for action in Action if (status, action) not in LIFECYCLE]
# Actions without a method of their own: the sweeper applies them once their deadline is due.
DEADLINE_ACTIONS = {Action.EXPIRE: "prepare_expires_at", Action.FAIL_UPLOAD: "upload_expires_at"}


MEDIA = MediaSet(generation="g1", duration_ms=30_000, width=1280, height=720, frame_rate=30.0)


def new_recording() -> Recording:
    return Recording.create(
        owner_id="user-1",
        workspace_id="ws-1",
        recording_type=RecordingType.SCREEN_CAMERA,
        at=T0,
        limits=LIMITS,
        title="Weekly demo",
        settings={"fps": 30},
        id="rec-1",
    )


def stop(recording: Recording, when: datetime, **kwargs: Any) -> None:
    recording.stop(at=when, upload_timeout=LIMITS.upload_timeout, **kwargs)


def sweep(recording: Recording, when: datetime) -> StopReason | RecordingStatus | None:
    return recording.enforce_deadlines(at=when, upload_timeout=LIMITS.upload_timeout)


def act(recording: Recording, action: Action, when: datetime) -> None:
    if action is Action.START:
        recording.start(at=when)
    elif action is Action.PAUSE:
        recording.pause(at=when)
    elif action is Action.RESUME:
        recording.resume(at=when)
    elif action is Action.STOP:
        stop(recording, when)
    elif action is Action.ABORT:
        recording.abort(at=when)
    elif action is Action.COMPLETE_UPLOAD:
        recording.complete_upload(at=when, key="raw/rec-1.webm", size=4096)
    elif action is Action.MARK_PLAYABLE:
        recording.mark_playable(at=when, media=MEDIA)
    elif action is Action.COMPLETE_LIVE:
        if recording.status is S.UPLOADING:  # its segments came while it recorded
            recording.go_live(at=when, media=MediaSet(generation="live", duration_ms=0, live=True))
        recording.complete_live(at=when, duration_ms=9_000)
    elif action is Action.REPROCESS:
        recording.reprocess(at=when)
    elif action is Action.FAIL_PROCESSING:
        recording.fail_processing(at=when, reason="The video has no decodable frames.")
    else:
        assert action in DEADLINE_ACTIONS
        sweep(recording, when)


def in_status(status: RecordingStatus) -> Recording:
    """A recording brought to `status` through its real lifecycle; `NOW` comes before any deadline still pending."""
    recording = new_recording()
    if status is S.EXPIRED:
        sweep(recording, at(600))
    elif status is S.ABORTED:
        recording.abort(at=at(10))
    elif status is not S.PREPARING:
        recording.start(at=at(10))
        if status is S.PAUSED:
            recording.pause(at=at(20))
        elif status is not S.RECORDING:
            stop(recording, at(40))
            if status is not S.UPLOADING:
                recording.complete_upload(at=at(50), key="raw/rec-1.webm", size=4096)
                if status is S.READY:
                    recording.mark_playable(at=at(60), media=MEDIA)
                elif status is S.FAILED:
                    recording.fail_processing(at=at(60), reason="The video has no decodable frames.")
    assert recording.status is status
    return recording


def snapshot(recording: Recording) -> dict[str, Any]:
    state = {f.name: copy.deepcopy(getattr(recording, f.name)) for f in fields(recording)}
    return {**state, "deadline_at": recording.deadline_at, "time_limit_at": recording.time_limit_at}


def event_types(recording: Recording) -> list[str]:
    return [e.type for e in recording.events]


# -- the transition table ------------------------------------------------------------------------------------------


def test_code_table_is_the_designed_lifecycle() -> None:
    from_code = {(source, action): target for action, (sources, target) in TRANSITIONS.items() for source in sources}
    assert from_code == LIFECYCLE


@pytest.mark.parametrize(("source", "action", "target"), [(s, a, t) for (s, a), t in LIFECYCLE.items()])
def test_valid_transition(source: RecordingStatus, action: Action, target: RecordingStatus) -> None:
    recording = in_status(source)
    assert recording.can(action)
    when = getattr(recording, DEADLINE_ACTIONS[action]) if action in DEADLINE_ACTIONS else NOW

    act(recording, action, when)

    assert recording.status is target
    assert recording.updated_at == when


@pytest.mark.parametrize(("source", "action"), INVALID)
def test_invalid_transition_raises_and_changes_nothing(source: RecordingStatus, action: Action) -> None:
    recording = in_status(source)
    if action in DEADLINE_ACTIONS:
        # A stale deadline (an old row, a bug elsewhere) must still not move the recording out of turn.
        stale: dict[str, Any] = {DEADLINE_ACTIONS[action]: NOW}
        recording = replace(recording, **stale)
    assert not recording.can(action)
    before = snapshot(recording)

    with pytest.raises(InvalidTransition) as raised:
        act(recording, action, NOW)

    assert raised.value.status == source.value
    assert raised.value.action == action.value
    assert snapshot(recording) == before


def test_invalid_transition_tells_the_user_what_was_refused() -> None:
    recording = in_status(S.PREPARING)
    with pytest.raises(InvalidTransition, match="cannot pause a recording that is PREPARING") as raised:
        recording.pause(at=NOW)
    assert raised.value.code == "invalid_transition"


def test_terminal_and_capturing_statuses() -> None:
    assert {s for s in S if s.is_terminal} == {S.READY, S.FAILED, S.ABORTED, S.EXPIRED}
    assert {s for s in S if s.is_capturing} == {S.RECORDING, S.PAUSED}


# -- creation ------------------------------------------------------------------------------------------------------


def test_create_opens_a_preparing_session() -> None:
    settings = {"fps": 30}
    recording = Recording.create(
        owner_id="user-1",
        workspace_id="ws-1",
        recording_type=RecordingType.AUDIO,
        at=T0,
        limits=LIMITS,
        settings=settings,
    )
    settings["fps"] = 60

    assert recording.status is S.PREPARING
    assert recording.settings == {"fps": 30}
    assert recording.created_at == recording.updated_at == T0
    assert recording.max_duration_ms == MAX_MS
    assert recording.segment_count == 0
    assert recording.started_at is None
    assert recording.duration_ms is None
    assert recording.elapsed_ms(at(60)) == 0
    assert recording.id != new_recording().id


def test_create_emits_recording_created() -> None:
    recording = new_recording()
    [created] = recording.events
    assert created.type == ev.RECORDING_CREATED
    assert created.subject == "rec-1"
    assert created.time == T0
    assert created.data == {
        "recording_id": "rec-1",
        "status": "PREPARING",
        "recording_type": "screen_camera",
        "owner_id": "user-1",
    }


def test_rename_changes_only_what_is_given() -> None:
    recording = new_recording()
    recording.rename(at=NOW, description="Q1 numbers")
    assert (recording.title, recording.description, recording.updated_at) == ("Weekly demo", "Q1 numbers", NOW)
    recording.rename(at=at(200), title="Monthly demo")
    assert (recording.title, recording.description) == ("Monthly demo", "Q1 numbers")


def test_a_repeated_client_message_is_recognised_as_a_replay() -> None:
    recording = new_recording()
    assert not recording.is_replay(1)
    recording.applied(3)
    recording.applied(2)
    assert recording.last_seq == 3
    assert recording.is_replay(3)
    assert recording.is_replay(1)
    assert not recording.is_replay(4)


# -- durations -----------------------------------------------------------------------------------------------------


def test_duration_is_measured_from_server_transition_times() -> None:
    recording = new_recording()
    recording.start(at=at(10), metadata={"browser": "firefox"})
    stop(recording, at(70), client_duration_ms=59_250, metadata={"codec": "vp9"})

    assert recording.started_at == at(10)
    assert recording.stopped_at == at(70)
    assert recording.duration_ms == 60_000
    assert recording.client_duration_ms == 59_250
    assert recording.client_metadata == {"browser": "firefox", "codec": "vp9"}
    assert recording.stop_reason is StopReason.STOPPED


@pytest.mark.parametrize("ms", [1, 999, 1_001, 1_003, 59_999, 1_799_999])
def test_duration_is_exact_to_the_millisecond(ms: int) -> None:
    recording = in_status(S.RECORDING)
    stop(recording, at(10) + timedelta(milliseconds=ms))
    assert recording.duration_ms == ms


def test_pauses_are_not_counted() -> None:
    recording = new_recording()
    recording.start(at=at(0))
    recording.pause(at=at(10))
    assert recording.elapsed_ms(at(20)) == 10_000
    recording.resume(at=at(25))
    recording.pause(at=at(40))
    recording.resume(at=at(41.001))
    assert recording.elapsed_ms(at(50)) == 33_999
    stop(recording, at(60))

    assert recording.paused_ms == 16_001
    assert recording.duration_ms == 10_000 + 15_000 + 18_999
    assert recording.elapsed_ms(at(9_999)) == recording.duration_ms


def test_stop_while_paused_excludes_the_pause_in_progress() -> None:
    recording = new_recording()
    recording.start(at=at(0))
    recording.pause(at=at(30))
    stop(recording, at(50))

    assert recording.status is S.UPLOADING
    assert recording.duration_ms == 30_000
    assert recording.paused_at is None
    assert recording.stopped_at == at(50)


def test_segments_count_from_one_and_grow_per_resume() -> None:
    recording = new_recording()
    assert recording.segment_count == 0
    recording.start(at=at(0))
    assert recording.segment_count == 1
    for n in range(2, 5):
        recording.pause(at=at(n * 10))
        assert recording.segment_count == n - 1
        recording.resume(at=at(n * 10 + 5))
        assert recording.segment_count == n
    stop(recording, at(100))
    assert recording.events[-1].data["segment_count"] == 4


def test_elapsed_time_stops_growing_once_aborted() -> None:
    recording = new_recording()
    recording.start(at=at(0))
    recording.abort(at=at(30))
    assert recording.elapsed_ms(at(30)) == recording.elapsed_ms(at(3_000)) == 30_000
    assert recording.duration_ms is None


# -- events --------------------------------------------------------------------------------------------------------


def test_a_full_session_emits_its_events_in_order() -> None:
    recording = new_recording()
    recording.start(at=at(10))
    recording.pause(at=at(20))
    recording.resume(at=at(30))
    stop(recording, at(45), client_duration_ms=24_900)
    recording.complete_upload(at=at(50), key="raw/rec-1.webm", size=4096)

    assert event_types(recording) == [
        ev.RECORDING_CREATED,
        ev.RECORDING_STARTED,
        ev.RECORDING_PAUSED,
        ev.RECORDING_RESUMED,
        ev.RECORDING_FINALIZED,
        ev.RAW_VIDEO_UPLOADED,
    ]
    _, started, paused, resumed, finalized, uploaded = recording.events
    assert started.data == {"recording_id": "rec-1", "status": "RECORDING", "segment": 1}
    assert paused.data == {"recording_id": "rec-1", "status": "PAUSED", "segment": 1, "elapsed_ms": 10_000}
    assert resumed.data == {"recording_id": "rec-1", "status": "RECORDING", "segment": 2}
    assert finalized.data == {
        "recording_id": "rec-1",
        "status": "UPLOADING",
        "duration_ms": 25_000,
        "client_duration_ms": 24_900,
        "segment_count": 2,
        "stop_reason": "stopped",
    }
    assert uploaded.data == {
        "recording_id": "rec-1",
        "status": "PROCESSING",
        "key": "raw/rec-1.webm",
        "size": 4096,
        "recording_type": "screen_camera",
        "parts": [],
    }
    assert [e.time for e in recording.events] == [T0, at(10), at(20), at(30), at(45), at(50)]
    assert {e.subject for e in recording.events} == {"rec-1"}
    assert len({e.id for e in recording.events}) == len(recording.events)


@pytest.mark.parametrize("source", [S.PREPARING, S.RECORDING, S.PAUSED])
def test_abort_emits_recording_aborted_and_clears_deadlines(source: RecordingStatus) -> None:
    recording = in_status(source)
    recording.disconnected(at=NOW, grace=LIMITS.reconnect_grace)
    recording.abort(at=NOW)

    assert recording.events[-1].type == ev.RECORDING_ABORTED
    assert recording.events[-1].data == {"recording_id": "rec-1", "status": "ABORTED"}
    assert recording.stopped_at == NOW
    assert recording.deadline_at is None


def test_cloudevent_shape() -> None:
    event = DomainEvent(
        type=ev.RECORDING_FINALIZED,
        subject="rec-1",
        time=datetime(2026, 3, 1, 9, 0, 45, 123456, tzinfo=UTC),
        data={"recording_id": "rec-1", "duration_ms": 25_000},
    )
    envelope = event.to_cloudevent()

    assert envelope == {
        "specversion": "1.0",
        "id": event.id,
        "source": "/framecast",
        "type": "recording_finalized",
        "subject": "rec-1",
        "time": "2026-03-01T09:00:45.123456Z",
        "datacontenttype": "application/json",
        "data": {"recording_id": "rec-1", "duration_ms": 25_000},
    }


def test_every_lifecycle_event_survives_a_json_round_trip() -> None:
    recording = new_recording()
    recording.start(at=at(10))
    stop(recording, at(20), reason=StopReason.REQUESTED)
    sweep(recording, at(20 + 3600))

    for event in recording.events:
        wire = json.loads(json.dumps(event.to_cloudevent()))
        assert DomainEvent.from_cloudevent(wire) == event


def test_from_cloudevent_accepts_an_event_without_data() -> None:
    event = DomainEvent.from_cloudevent(
        {"id": "e-1", "type": "recording_deleted", "subject": "r", "time": "2026-03-01T09:00:00Z"}
    )
    assert event.data == {}
    assert event.time == T0


# -- deadlines -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(S))
def test_sweeping_before_any_deadline_does_nothing(status: RecordingStatus) -> None:
    recording = in_status(status)
    due = recording.deadline_at
    when = due - timedelta(milliseconds=1) if due is not None else at(10 * 365 * 86_400)
    before = snapshot(recording)

    assert sweep(recording, when) is None
    assert snapshot(recording) == before


def test_prepare_timeout_expires_the_session() -> None:
    recording = new_recording()
    assert recording.deadline_at == recording.prepare_expires_at == at(600)

    assert sweep(recording, at(600)) is S.EXPIRED

    assert recording.status is S.EXPIRED
    assert recording.deadline_at is None
    assert recording.events[-1].type == ev.RECORDING_EXPIRED
    assert recording.events[-1].data == {"recording_id": "rec-1", "status": "EXPIRED"}


def test_starting_in_time_cancels_the_prepare_timeout() -> None:
    recording = new_recording()
    recording.start(at=at(599))
    assert recording.prepare_expires_at is None
    assert sweep(recording, at(601)) is None
    assert recording.status is S.RECORDING


@pytest.mark.parametrize("late", [timedelta(0), timedelta(seconds=1), timedelta(minutes=50)])
def test_time_limit_stops_at_exactly_max_duration_however_late_the_sweep(late: timedelta) -> None:
    recording = in_status(S.RECORDING)
    limit = at(10) + LIMITS.max_duration
    assert recording.time_limit_at == recording.deadline_at == limit

    assert sweep(recording, limit + late) is StopReason.TIME_LIMIT

    assert recording.status is S.UPLOADING
    assert recording.stop_reason is StopReason.TIME_LIMIT
    assert recording.duration_ms == MAX_MS
    assert recording.stopped_at == limit
    assert recording.upload_expires_at == recording.deadline_at == limit + LIMITS.upload_timeout
    finalized = recording.events[-1]
    assert (finalized.type, finalized.time) == (ev.RECORDING_FINALIZED, limit)
    assert finalized.data["stop_reason"] == "time_limit"
    assert finalized.data["duration_ms"] == MAX_MS


def test_pauses_push_the_time_limit_back() -> None:
    recording = new_recording()
    recording.start(at=at(0))
    recording.pause(at=at(60))
    assert recording.time_limit_at is None
    assert recording.deadline_at is None  # a connected, paused session has nothing pending
    assert sweep(recording, at(10 * 3600)) is None
    recording.resume(at=at(10 * 3600))
    limit = at(10 * 3600 - 60) + LIMITS.max_duration
    assert recording.time_limit_at == recording.deadline_at == limit

    assert sweep(recording, limit - timedelta(milliseconds=1)) is None
    assert sweep(recording, limit + timedelta(minutes=5)) is StopReason.TIME_LIMIT
    assert recording.stopped_at == limit
    assert recording.duration_ms == MAX_MS


@pytest.mark.parametrize(("source", "active_ms"), [(S.RECORDING, 200_000), (S.PAUSED, 10_000)])
def test_reconnect_grace_over_stops_at_the_grace_instant(source: RecordingStatus, active_ms: int) -> None:
    recording = in_status(source)  # started at 10 s; paused at 20 s
    recording.disconnected(at=at(90), grace=LIMITS.reconnect_grace)
    grace_over = at(90) + LIMITS.reconnect_grace
    assert recording.deadline_at == grace_over

    assert sweep(recording, grace_over - timedelta(milliseconds=1)) is None
    assert sweep(recording, grace_over + timedelta(minutes=7)) is StopReason.RECONNECT_GRACE

    assert recording.status is S.UPLOADING
    assert recording.stopped_at == grace_over
    assert recording.duration_ms == active_ms
    assert recording.grace_expires_at is None
    assert recording.events[-1].data["stop_reason"] == "reconnect_grace"
    assert recording.deadline_at == grace_over + LIMITS.upload_timeout


def test_a_second_disconnect_does_not_extend_the_grace() -> None:
    recording = in_status(S.RECORDING)
    recording.disconnected(at=at(90), grace=LIMITS.reconnect_grace)
    recording.disconnected(at=at(150), grace=LIMITS.reconnect_grace)
    assert recording.grace_expires_at == at(90) + LIMITS.reconnect_grace


def test_reconnecting_within_the_grace_keeps_recording() -> None:
    recording = in_status(S.RECORDING)
    recording.disconnected(at=at(90), grace=LIMITS.reconnect_grace)
    recording.reconnected(at=at(150))

    assert recording.grace_expires_at is None
    assert recording.updated_at == at(150)
    assert recording.deadline_at == recording.time_limit_at
    assert sweep(recording, at(600)) is None
    assert recording.status is S.RECORDING


@pytest.mark.parametrize("status", [s for s in S if not s.is_capturing])
def test_disconnecting_outside_capture_sets_no_grace(status: RecordingStatus) -> None:
    recording = in_status(status)
    before = snapshot(recording)
    recording.disconnected(at=NOW, grace=LIMITS.reconnect_grace)
    recording.reconnected(at=NOW)
    assert snapshot(recording) == before


@pytest.mark.parametrize(
    ("disconnect_at", "reason", "stopped_at"),
    [
        (at(100), StopReason.RECONNECT_GRACE, at(220)),
        (at(10 + 1800 - 60), StopReason.TIME_LIMIT, at(10 + 1800)),
    ],
)
def test_the_earliest_of_time_limit_and_grace_wins(
    disconnect_at: datetime, reason: StopReason, stopped_at: datetime
) -> None:
    recording = in_status(S.RECORDING)
    recording.disconnected(at=disconnect_at, grace=LIMITS.reconnect_grace)
    assert recording.deadline_at == stopped_at

    assert sweep(recording, at(3 * 3600)) is reason
    assert recording.stopped_at == stopped_at
    assert recording.stop_reason is reason


def test_upload_timeout_fails_with_a_reason_for_the_user() -> None:
    recording = in_status(S.UPLOADING)  # stopped at 40 s
    upload_over = at(40) + LIMITS.upload_timeout
    assert sweep(recording, upload_over - timedelta(milliseconds=1)) is None

    assert sweep(recording, upload_over) is S.FAILED

    assert recording.status is S.FAILED
    assert recording.failure_reason is not None
    assert "upload" in recording.failure_reason.lower()
    assert recording.failure_reason.endswith(".")
    assert recording.deadline_at is None
    assert recording.events[-1].type == ev.RECORDING_FAILED
    assert recording.events[-1].data == {
        "recording_id": "rec-1",
        "status": "FAILED",
        "reason": recording.failure_reason,
    }


def test_completing_the_upload_cancels_the_upload_timeout() -> None:
    recording = in_status(S.PROCESSING)
    assert (recording.upload_key, recording.upload_size) == ("raw/rec-1.webm", 4096)
    assert recording.deadline_at is None
    assert sweep(recording, at(10 * 86_400)) is None


def test_processing_failure_keeps_the_human_readable_reason() -> None:
    recording = in_status(S.FAILED)
    assert recording.failure_reason == "The video has no decodable frames."


def _failed_by_upload_timeout() -> Recording:
    recording = in_status(S.UPLOADING)
    sweep(recording, at(40) + LIMITS.upload_timeout)
    return recording


TERMINAL_PATHS: dict[str, Callable[[], Recording]] = {
    "ready": lambda: in_status(S.READY),
    "failed in processing": lambda: in_status(S.FAILED),
    "failed by upload timeout": _failed_by_upload_timeout,
    "aborted": lambda: in_status(S.ABORTED),
    "expired": lambda: in_status(S.EXPIRED),
}


@pytest.mark.parametrize("path", list(TERMINAL_PATHS))
def test_terminal_recordings_have_no_deadline_and_never_move(path: str) -> None:
    recording = TERMINAL_PATHS[path]()
    assert recording.status.is_terminal
    assert recording.deadline_at is None
    before = snapshot(recording)

    assert sweep(recording, at(100 * 86_400)) is None
    for action in Action:
        # Reprocessing is the owner's explicit way back (tested below); nothing else moves a finished recording.
        if action not in DEADLINE_ACTIONS and action is not Action.REPROCESS:
            with pytest.raises(InvalidTransition):
                act(recording, action, NOW)
    recording.disconnected(at=NOW, grace=LIMITS.reconnect_grace)
    assert snapshot(recording) == before


def test_reprocess_runs_processing_again_from_the_kept_upload() -> None:
    recording = in_status(S.FAILED)
    recording.events.clear()
    recording.reprocess(at=at(70))
    assert recording.status is S.PROCESSING
    assert recording.failure_reason is None
    [uploaded] = recording.events
    assert uploaded.type == ev.RAW_VIDEO_UPLOADED
    assert uploaded.data["key"] == "raw/rec-1.webm"
    assert uploaded.data["reprocess"] is True


def test_a_recording_that_never_got_its_upload_cannot_be_reprocessed() -> None:
    recording = _failed_by_upload_timeout()
    with pytest.raises(InvalidTransition):
        recording.reprocess(at=at(100 * 86_400))
    assert recording.status is S.FAILED


def test_media_events_fire_for_the_current_generation_only() -> None:
    recording = in_status(S.READY)
    recording.events.clear()
    assert not recording.rendition_ready(at=at(70), generation="old", name="720p")
    assert recording.rendition_ready(at=at(70), generation="g1", name="720p")
    assert not recording.media_complete(at=at(71), generation="old", part="ladder")
    for part in ("ladder", "pictures", "download"):
        assert recording.media_complete(at=at(72), generation="g1", part=part)
    recording.media_complete(at=at(73), generation="g1", part="download")  # again: no second video_ready
    assert event_types(recording) == [ev.RENDITION_READY, ev.VIDEO_READY]
    assert recording.media is not None
    assert recording.media.renditions == ["720p"]


def test_an_import_takes_its_duration_from_the_media() -> None:
    recording = Recording.create_import(owner_id="u", workspace_id="w", at=at(0), limits=LIMITS)
    recording.complete_upload(at=at(5), key="raw/import", size=10)
    recording.mark_playable(at=at(6), media=MEDIA)
    assert recording.duration_ms == 30_000
    assert event_types(recording)[-1] == ev.VIDEO_PLAYABLE
