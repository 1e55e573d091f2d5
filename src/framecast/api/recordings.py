"""REST resource /api/v1/recordings."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Response

from framecast.api import links
from framecast.api.deps import ContainerDep, UserDep
from framecast.api.schemas import (
    RecordingCreate,
    RecordingOut,
    RecordingPage,
    RecordingPatch,
    error_responses,
)
from framecast.bootstrap import Container
from framecast.domain.recordings import Recording, RecordingStatus
from framecast.services.processing import StageStatus

router = APIRouter(prefix="/api/v1/recordings", tags=["recordings"], responses=error_responses(400, 401, 404, 409, 422))


def present(
    container: Container, recording: Recording, processing: dict[str, StageStatus] | None = None
) -> RecordingOut:
    return RecordingOut(
        id=recording.id,
        status=recording.status,
        title=recording.title,
        description=recording.description,
        recording_type=recording.recording_type,
        settings=recording.settings,
        duration_ms=recording.duration_ms,
        client_duration_ms=recording.client_duration_ms,
        segment_count=recording.segment_count,
        created_at=recording.created_at,
        started_at=recording.started_at,
        stopped_at=recording.stopped_at,
        updated_at=recording.updated_at,
        stop_reason=recording.stop_reason.value if recording.stop_reason else None,
        failure_reason=recording.failure_reason,
        processing={stage: asdict(status) for stage, status in processing.items()} if processing else None,
        max_duration_ms=recording.max_duration_ms,
        share_url=links.share_url(container, recording),
        playback=links.playback(container, recording),
        ws_url=links.ws_url(container, recording) if links.control_open(recording) else None,
        upload_url=links.upload_url(container, recording) if recording.status is RecordingStatus.UPLOADING else None,
    )


@router.post("", status_code=201)
async def create_recording(body: RecordingCreate, user: UserDep, container: ContainerDep) -> RecordingOut:
    """Open a recording session in PREPARING; connect to `ws_url` to drive it."""
    recording = await container.recordings.create(
        owner=user,
        recording_type=body.recording_type,
        title=body.title,
        description=body.description,
        settings=body.settings,
    )
    return present(container, recording)


@router.get("")
async def list_recordings(
    user: UserDep,
    container: ContainerDep,
    status: RecordingStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Only titles containing this (any case).")] = None,
) -> RecordingPage:
    """The caller's recordings, newest first; pass `next_cursor` back as `cursor` for the next page."""
    page = await container.recordings.page(
        owner_id=user.id, status=status, limit=limit, cursor=cursor, title=q.strip() if q else None
    )
    return RecordingPage(items=[present(container, r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/{recording_id}")
async def get_recording(recording_id: str, user: UserDep, container: ContainerDep) -> RecordingOut:
    """The recording, with the progress of each processing stage once its upload is in."""
    recording = await container.recordings.get(owner_id=user.id, recording_id=recording_id)
    return present(container, recording, await container.processing.status(recording.id))


@router.post("/{recording_id}/reprocess", status_code=202)
async def reprocess_recording(recording_id: str, user: UserDep, container: ContainerDep) -> RecordingOut:
    """Run processing again from the kept upload (READY or FAILED recordings; 409 otherwise). The current media
    stays watchable until the new first playable rendition replaces it."""
    recording = await container.recordings.reprocess(owner_id=user.id, recording_id=recording_id)
    return present(container, recording, await container.processing.status(recording.id))


@router.patch("/{recording_id}")
async def update_recording(
    recording_id: str, body: RecordingPatch, user: UserDep, container: ContainerDep
) -> RecordingOut:
    recording = await container.recordings.update(
        owner_id=user.id, recording_id=recording_id, title=body.title, description=body.description
    )
    return present(container, recording)


@router.delete("/{recording_id}", status_code=204)
async def delete_recording(recording_id: str, user: UserDep, container: ContainerDep) -> Response:
    await container.recordings.get(owner_id=user.id, recording_id=recording_id)  # 404 before touching anything
    await container.uploads.discard_for_recording(owner_id=user.id, recording_id=recording_id)
    await container.recordings.delete(owner_id=user.id, recording_id=recording_id)
    return Response(status_code=204)


@router.post("/{recording_id}/stop")
async def stop_recording(recording_id: str, user: UserDep, container: ContainerDep) -> RecordingOut:
    """Stop a recording from the server side; the connected client receives FORCE_STOP {reason: requested}."""
    recording = await container.recordings.force_stop(owner_id=user.id, recording_id=recording_id)
    return present(container, recording)
