"""Absolute, signed links handed to clients: control-channel URLs, upload URLs, share URLs."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from framecast.bootstrap import Container
from framecast.domain.recordings import Recording, RecordingStatus
from framecast.services.tickets import UPLOAD_TICKET, WS_TICKET, Grant

UPLOADS_PATH = "/api/v1/uploads/"


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
    return f"{container.settings.resolved_public_url}/v/{recording.id}"


def control_open(recording: Recording) -> bool:
    return recording.status in (
        RecordingStatus.PREPARING,
        RecordingStatus.RECORDING,
        RecordingStatus.PAUSED,
        RecordingStatus.UPLOADING,
    )
