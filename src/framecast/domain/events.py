"""Domain events and their CloudEvents 1.0 JSON form."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The event types of the wire contract (DESIGN.md section 4). Consumers match on these strings.
RECORDING_CREATED = "recording_created"
RECORDING_STARTED = "recording_started"
RECORDING_PAUSED = "recording_paused"
RECORDING_RESUMED = "recording_resumed"
RECORDING_FINALIZED = "recording_finalized"
RECORDING_ABORTED = "recording_aborted"
RECORDING_EXPIRED = "recording_expired"
RECORDING_FAILED = "recording_failed"
RECORDING_DELETED = "recording_deleted"
RAW_VIDEO_UPLOADED = "raw_video_uploaded"
VIDEO_LIVE = "video_live"
VIDEO_PLAYABLE = "video_playable"
RENDITION_READY = "rendition_ready"
VIDEO_READY = "video_ready"
PROCESSING_PROGRESS = "processing_progress"

CLOUDEVENTS_SOURCE = "/framecast"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Something that happened to an aggregate; `subject` is the aggregate's id."""

    type: str
    subject: str
    time: datetime
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_cloudevent(self) -> dict[str, Any]:
        """Return the CloudEvents 1.0 structured-mode JSON object for this event."""
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": CLOUDEVENTS_SOURCE,
            "type": self.type,
            "subject": self.subject,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": self.data,
        }

    @classmethod
    def from_cloudevent(cls, envelope: dict[str, Any]) -> DomainEvent:
        """Parse a CloudEvents object produced by `to_cloudevent`."""
        return cls(
            id=str(envelope["id"]),
            type=str(envelope["type"]),
            subject=str(envelope["subject"]),
            time=datetime.fromisoformat(str(envelope["time"]).replace("Z", "+00:00")),
            data=dict(envelope.get("data") or {}),
        )
