"""GET /api/v1/links/{link_id}: what a share link shows, to anyone holding it (no sign-in needed)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, HTTPException, Request

from framecast.api import links
from framecast.api.deps import ContainerDep, caller
from framecast.api.schemas import SharedRecordingOut, error_responses
from framecast.bootstrap import Container
from framecast.domain.users import User
from framecast.services.sharing import Shared, open_link

router = APIRouter(prefix="/api/v1/links", tags=["share links"], responses=error_responses(404))


async def viewer(request: Request, container: Container) -> User | None:
    """Who is watching, if they are signed in; a stale cookie or token just makes them anonymous here."""
    try:
        return await caller(request, container)
    except HTTPException:
        return None


async def present_shared(container: Container, shared: Shared, viewer: User | None) -> SharedRecordingOut:
    recording, link = shared.recording, shared.link
    playback = links.playback(container, recording)
    if not link.allow_download:
        playback.download_url = None
    processing = await container.processing.status(recording.id)
    media = recording.media
    return SharedRecordingOut(
        link_id=link.id,
        share_url=links.share_url(container, recording),
        embed_url=links.embed_url(container, recording),
        title=recording.title,
        description=recording.description,
        status=recording.status,
        recording_type=recording.recording_type,
        duration_ms=recording.duration_ms,
        created_at=recording.created_at,
        width=media.width if media and media.has_video else None,
        height=media.height if media and media.has_video else None,
        processing={stage: asdict(status) for stage, status in processing.items()} if processing else None,
        playback=playback,
        allow_download=link.allow_download,
        recording_id=recording.id if viewer is not None and viewer.id == recording.owner_id else None,
    )


@router.get("/{link_id}")
async def get_shared(link_id: str, request: Request, container: ContainerDep) -> SharedRecordingOut:
    """The recording behind a share link; 404 for a malformed, unknown, revoked or expired link."""
    shared = await open_link(uow=container.uow, clock=container.clock, link_id=link_id)
    return await present_shared(container, shared, await viewer(request, container))
