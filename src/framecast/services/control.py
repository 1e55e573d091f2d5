"""The control channel's client messages and what each does to a recording (wire names from DESIGN.md section 4)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from framecast.domain.recordings import Recording

ChangeFor = Callable[[dict[str, Any]], Callable[[Recording, datetime], None]]
MAX_METADATA_KEYS = 100


class BadMessage(ValueError):
    """The message is not one the protocol knows; the connection stays open and nothing changes."""


def _metadata(data: dict[str, Any]) -> dict[str, Any]:
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict) or len(metadata) > MAX_METADATA_KEYS:
        raise BadMessage(f"data.metadata must be an object with at most {MAX_METADATA_KEYS} keys")
    return metadata


def _client_duration(data: dict[str, Any]) -> int | None:
    value = data.get("duration_ms")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadMessage("data.duration_ms must be a non-negative integer")
    return value


def change_for(
    message_type: str, data: dict[str, Any], *, upload_timeout: timedelta
) -> Callable[[Recording, datetime], None]:
    """Return the change a client message asks for; raises BadMessage for unknown types or malformed data."""
    if message_type == "RECORDING_STARTED":
        metadata = _metadata(data)
        return lambda r, at: r.start(at=at, metadata=metadata)
    if message_type == "RECORDING_PAUSED":
        return lambda r, at: r.pause(at=at)
    if message_type == "RECORDING_RESUMED":
        return lambda r, at: r.resume(at=at)
    if message_type == "RECORDING_STOPPED":
        metadata, duration = _metadata(data), _client_duration(data)
        return lambda r, at: r.stop(
            at=at, upload_timeout=upload_timeout, client_duration_ms=duration, metadata=metadata
        )
    if message_type == "RECORDING_ABORTED":
        return lambda r, at: r.abort(at=at)
    raise BadMessage(f"unknown message type {message_type!r}")
