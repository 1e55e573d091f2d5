"""Wire shapes of the REST API. Pydantic models here are never domain objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from framecast.domain.recordings import RecordingStatus, RecordingType

MAX_SETTINGS_KEYS = 100


class RecordingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(default="", max_length=500)
    description: str = Field(default="", max_length=10_000)
    recording_type: RecordingType
    settings: dict[str, Any] = Field(default_factory=dict, max_length=MAX_SETTINGS_KEYS)


class RecordingPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=10_000)


class Playback(BaseModel):
    """Signed, short-lived media URLs (see Media delivery in docs/protocol.md); GET the recording for fresh ones."""

    hls_url: str | None = Field(default=None, description="HLS master playlist; null until the recording plays.")
    poster_url: str | None = Field(default=None, description="Poster frame (JPEG); null until pictures are made.")
    preview_url: str | None = Field(default=None, description="Short animated preview (WebP), for hover.")
    storyboard_url: str | None = Field(default=None, description="WebVTT thumbnail track for the seek bar.")
    download_url: str | None = Field(default=None, description="The whole video as one MP4, as an attachment.")
    live: bool = Field(default=False, description="True while the playlist still grows (docs/live.md).")


class RecordingOut(BaseModel):
    id: str
    status: RecordingStatus
    title: str
    description: str
    recording_type: RecordingType
    settings: dict[str, Any]
    duration_ms: int | None = Field(description="Server-measured, pauses excluded; null until stopped.")
    client_duration_ms: int | None = Field(description="What the client reported at stop, kept for comparison.")
    segment_count: int
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    updated_at: datetime | None
    stop_reason: str | None
    failure_reason: str | None
    max_duration_ms: int
    processing: dict[str, Any] | None = Field(
        default=None,
        description="Per stage (playable, pictures, ladder, download): status, progress (percent), step, "
        "attempts and error; null before the upload is in. Only on single-recording answers.",
    )
    share_url: str
    playback: Playback
    ws_url: str | None = Field(default=None, description="Control channel with a fresh ticket, while it is open.")
    upload_url: str | None = Field(default=None, description="tus creation URL for this recording, while UPLOADING.")


class SharedRecordingOut(BaseModel):
    """What a share link shows its holder: no owner details, no control or upload URLs."""

    link_id: str
    share_url: str
    embed_url: str
    title: str
    description: str
    status: RecordingStatus
    recording_type: RecordingType
    duration_ms: int | None
    created_at: datetime
    width: int | None = Field(default=None, description="Of the source video, once known.")
    height: int | None = None
    processing: dict[str, Any] | None = Field(default=None, description="As on the recording: per stage progress.")
    playback: Playback
    allow_download: bool
    recording_id: str | None = Field(
        default=None, description="Only when the caller owns the recording (for PATCH /api/v1/recordings/{id})."
    )


class RecordingPage(BaseModel):
    items: list[RecordingOut]
    next_cursor: str | None


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: bad_request, unauthorized, not_found, ...")
    message: str = Field(description="A sentence for a person, saying what to do.")


class ErrorBody(BaseModel):
    """The shape of every error answer."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give, all with the ErrorBody shape."""
    meaning = {
        400: "Malformed request (bad header, cursor, parameter or body)",
        401: "Missing, unknown, tampered or expired token or ticket",
        403: "Not allowed",
        404: "No such thing, or it belongs to someone else",
        409: "The current state does not allow this (status, offset)",
        412: "Tus-Resumable missing or not 1.0.0",
        413: "Over the size limit",
        415: "Wrong Content-Type, or media that cannot be taken",
        416: "The Range lies outside the file (Content-Range: bytes */size says how long it is)",
        422: "The body does not validate",
        460: "Checksum mismatch; the chunk was discarded",
    }
    return {status: {"model": ErrorBody, "description": meaning[status]} for status in statuses}


class LiveSegmentOut(BaseModel):
    run: int
    index: int | None = Field(description="null for an init segment")
    size: int
    duration_ms: int | None = Field(description="How long the segment plays; null for an init segment.")
    duplicate: bool = Field(description="The same bytes were stored already; nothing changed.")


class LiveRunOut(BaseModel):
    run: int
    init: bool = Field(description="Its init segment is stored.")
    segments: int = Field(description="Segments in the playlist: contiguous from 0.")
    received: list[int] = Field(description="Every segment index stored.")
    ended: int | None = Field(description="The segment count the client declared; null until then.")


class LiveGapOut(BaseModel):
    run: int
    index: int | None = Field(description="A missing segment; null when the whole run is (end it, or send its init).")


class LiveStateOut(BaseModel):
    status: RecordingStatus
    runs: list[LiveRunOut]
    declared_runs: int | None
    missing: list[LiveGapOut]
    complete: bool


class LiveRunEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segments: int = Field(ge=0, le=100_000)


class LiveComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runs: int = Field(ge=1, le=10_000)
