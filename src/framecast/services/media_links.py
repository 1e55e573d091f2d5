"""Signed, short-lived media URLs: a token that lets its holder read one generation of one recording's media.

The token goes in the URL path (`/media/{token}/master.m3u8`), so the relative URIs inside HLS playlists carry it
to every rendition playlist and segment without rewriting them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

from framecast.domain.errors import DomainError, NotFound
from framecast.ports import Clock

SALT = "framecast.media"


class InvalidMediaLink(NotFound):
    """The media token was tampered with, made for something else, or has expired.

    A NotFound, so the API answers 404 as it does for anything unknown: a media URL is a capability, and to someone
    without a valid one the media does not exist (a 401 or 403 would tell a prober that it does).
    """

    def __init__(self, message: str) -> None:
        DomainError.__init__(self, message)


@dataclass(frozen=True, slots=True)
class MediaGrant:
    """What a valid token allows: reading blobs under media_prefix(recording_id, generation) until `expires_at`."""

    recording_id: str
    generation: str
    expires_at: datetime


class MediaSigner:
    """Sign and verify media tokens with itsdangerous; the expiry is inside the signed payload.

    Expiries are rounded up to a bucket of a quarter of `ttl`, so every link to the same generation made within one
    bucket is the same URL (browsers can reuse what they cached) and lives between `ttl` and `1.25 * ttl`.
    """

    def __init__(self, *, secret_key: str, clock: Clock, ttl: timedelta) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"the media URL lifetime must be positive, not {ttl}")
        self._serializer = URLSafeSerializer(secret_key, salt=SALT)
        self._clock = clock
        self._ttl_s = ttl.total_seconds()
        self._bucket_s = max(1, math.ceil(self._ttl_s / 4))

    def expires_at(self) -> datetime:
        """When a token signed now expires: now + ttl, rounded up to a whole bucket (in Unix seconds)."""
        deadline = math.ceil(self._clock.now().timestamp() + self._ttl_s)
        return datetime.fromtimestamp(-(-deadline // self._bucket_s) * self._bucket_s, tz=UTC)

    def sign(self, *, recording_id: str, generation: str) -> str:
        """A URL-safe token (letters, digits, `-`, `_` and `.`) for one generation of one recording's media."""
        expires = int(self.expires_at().timestamp())
        return self._serializer.dumps([recording_id, generation, expires])

    def verify(self, token: str) -> MediaGrant:
        """Return the grant inside `token`; raises InvalidMediaLink. Callers still check the recording exists."""
        try:
            payload = self._serializer.loads(token)
        except (BadSignature, ValueError, TypeError) as exc:
            raise InvalidMediaLink("no such media; GET the recording for fresh links") from exc
        match payload:
            case [str(recording_id), str(generation), int(expires)] if recording_id and generation:
                pass
            case _:
                raise InvalidMediaLink("no such media; GET the recording for fresh links")
        expires_at = datetime.fromtimestamp(expires, tz=UTC)
        if self._clock.now() >= expires_at:
            raise InvalidMediaLink("the media link has expired; GET the recording for fresh links")
        return MediaGrant(recording_id=recording_id, generation=generation, expires_at=expires_at)
