"""Share links: who may watch a recording through a link, and until when.

A link is a capability: its id is 128 random bits, so it can be sent around but not guessed, and the recording is
unlisted (nothing links to it but the link). Every recording has one primary link, made with it. The policy columns
(`access`, `expires_at`, `revoked_at`, `allow_download`) are where passwords, allowed domains and invited people
slot in: a new LinkAccess value and the check in `ShareLink.admit`, with the data the new kind needs beside it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from framecast.domain.errors import DomainError, NotFound

# token_urlsafe(16): 16 random bytes as 22 characters of [A-Za-z0-9_-].
_LINK_ID = re.compile(r"[A-Za-z0-9_-]{22}")


class LinkAccess(StrEnum):
    UNLISTED = "unlisted"  # anyone holding the link


class LinkUnavailable(NotFound):
    """The link is malformed, unknown, revoked or expired: to its holder the recording does not exist (404)."""

    def __init__(self, message: str = "no such video: the link is wrong, or it was removed") -> None:
        DomainError.__init__(self, message)


def new_link_id() -> str:
    return secrets.token_urlsafe(16)


def is_link_id(value: str) -> bool:
    """Whether `value` could be a link id at all; anything else is refused before touching the database."""
    return _LINK_ID.fullmatch(value) is not None


@dataclass(kw_only=True)
class ShareLink:
    id: str
    recording_id: str
    created_at: datetime
    access: LinkAccess = LinkAccess.UNLISTED
    allow_download: bool = True
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def admit(self, *, at: datetime) -> None:
        """Raise LinkUnavailable unless the link lets its holder watch at `at`."""
        if self.revoked_at is not None or (self.expires_at is not None and at >= self.expires_at):
            raise LinkUnavailable()
