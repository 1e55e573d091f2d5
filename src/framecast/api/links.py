"""Absolute, signed links handed to clients: control-channel URLs, upload URLs, share URLs, media URLs."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from framecast.api.schemas import Playback
from framecast.bootstrap import Container
from framecast.domain.live import LIVE_PLAYLIST, init_path, segment_path
from framecast.domain.media import (
    DOWNLOAD,
    FIRST_SEGMENT,
    INIT_NAME,
    MASTER,
    PLAYABLE_FOLDER,
    PLAYLIST_NAME,
    POSTER,
    PREVIEW,
    STORYBOARD_VTT,
)
from framecast.domain.recordings import Recording, RecordingStatus
from framecast.services.tickets import UPLOAD_TICKET, WS_TICKET, Grant

UPLOADS_PATH = "/api/v1/uploads/"
MEDIA_PATH = "/media/"


def ws_url(container: Container, recording: Recording) -> str:
    base = container.settings.resolved_public_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    ticket = container.tickets.issue(WS_TICKET, Grant(user_id=recording.owner_id, recording_id=recording.id))
    return f"{base}/api/v1/recordings/{recording.id}/control?{urlencode({'ticket': ticket})}"


def upload_ttl(container: Container) -> timedelta:
    return container.settings.limits.upload_timeout


def upload_url(container: Container, recording: Recording) -> str:
    ticket = container.tickets.issue(UPLOAD_TICKET, Grant(user_id=recording.owner_id, recording_id=recording.id))
    return f"{container.settings.resolved_public_url}{UPLOADS_PATH}?{urlencode({'ticket': ticket})}"


def share_url(container: Container, recording: Recording) -> str:
    return f"{container.settings.resolved_public_url}/v/{recording.share_id}"


def embed_url(container: Container, recording: Recording) -> str:
    return f"{container.settings.resolved_public_url}/embed/{recording.share_id}"


def control_open(recording: Recording) -> bool:
    return recording.status in (
        RecordingStatus.PREPARING,
        RecordingStatus.RECORDING,
        RecordingStatus.PAUSED,
        RecordingStatus.UPLOADING,
    )


def media_url(container: Container, recording: Recording, name: str) -> str | None:
    """The signed URL of `name` (a path under the current generation, e.g. `master.m3u8`); None before playable.

    Whether `name` exists is the caller's business: recording.media says which parts are published.
    """
    base = _media_base(container, recording)
    return None if base is None else f"{base}/{name}"


def playback(container: Container, recording: Recording) -> Playback:
    """Media URLs for what the current generation has published so far; all null before the recording plays."""
    media = recording.media
    base = _media_base(container, recording)
    if media is None or base is None:
        return Playback()
    pictures = media.pictures and media.has_video  # an audio recording has no pictures
    return Playback(
        hls_url=f"{base}/{MASTER}",
        poster_url=f"{base}/{POSTER}" if pictures else None,
        preview_url=f"{base}/{PREVIEW}" if pictures else None,
        storyboard_url=f"{base}/{STORYBOARD_VTT}" if pictures else None,
        download_url=f"{base}/{DOWNLOAD}" if media.download else None,
        live=media.live,
    )


def start_chain(container: Container, recording: Recording) -> list[str]:
    """What a player fetches after the master playlist to show its first frame, when it starts on the lowest rung (as
    framecast's does): that rendition's playlist, init segment and first segment. The watch page preloads them."""
    media = recording.media
    base = _media_base(container, recording)
    if media is None or base is None:
        return []
    rungs = [name for name in media.renditions if name.endswith("p") and name[:-1].isdigit()]
    if media.ladder_complete and rungs:
        start = min(rungs, key=lambda name: int(name[:-1]))
        return [f"{base}/{start}/{name}" for name in (PLAYLIST_NAME, INIT_NAME, FIRST_SEGMENT)]
    if media.from_live:  # the live rendition's files are per run (docs/live.md)
        return [f"{base}/{name}" for name in (LIVE_PLAYLIST, init_path(1), segment_path(1, 0))]
    return [f"{base}/{PLAYABLE_FOLDER}/{name}" for name in (PLAYLIST_NAME, INIT_NAME, FIRST_SEGMENT)]


def _media_base(container: Container, recording: Recording) -> str | None:
    if recording.media is None:
        return None
    token = container.media_signer.sign(recording_id=recording.id, generation=recording.media.generation)
    return f"{container.settings.resolved_public_url}{MEDIA_PATH}{token}"
