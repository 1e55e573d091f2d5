"""A resumable upload (tus 1.0.0 resource) and the rules on its offset and length."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from framecast.domain.errors import DomainError


class UploadError(DomainError):
    """A request that would break the upload's invariants; nothing was stored."""


class OffsetMismatch(UploadError):
    code = "offset_mismatch"

    def __init__(self, *, expected: int, got: int) -> None:
        super().__init__(f"Upload-Offset is {got} but the server has {expected} bytes; resume from {expected}")
        self.expected = expected


class LengthExceeded(UploadError):
    code = "too_large"

    def __init__(self, *, limit: int) -> None:
        super().__init__(f"the upload would exceed its length of {limit} bytes")
        self.limit = limit


class UploadKind(StrEnum):
    """tus concatenation: a partial upload is a piece of a final upload assembled server-side."""

    SINGLE = "single"
    PARTIAL = "partial"
    FINAL = "final"


@dataclass(kw_only=True)
class Upload:
    id: str
    owner_id: str
    recording_id: str | None
    created_at: datetime
    expires_at: datetime
    length: int | None
    offset: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    kind: UploadKind = UploadKind.SINGLE
    parts: list[str] = field(default_factory=list)
    completed_at: datetime | None = None

    @classmethod
    def create(
        cls,
        *,
        owner_id: str,
        recording_id: str | None,
        at: datetime,
        ttl: timedelta,
        length: int | None,
        max_size: int,
        metadata: dict[str, str] | None = None,
        kind: UploadKind = UploadKind.SINGLE,
    ) -> Upload:
        if length is not None and length > max_size:
            raise LengthExceeded(limit=max_size)
        return cls(
            # 128 random bits: the upload URL is a capability for this one upload, as in tusd.
            id=secrets.token_hex(16),
            owner_id=owner_id,
            recording_id=recording_id,
            created_at=at,
            expires_at=at + ttl,
            length=length,
            metadata=dict(metadata or {}),
            kind=kind,
        )

    @property
    def is_complete(self) -> bool:
        return self.length is not None and self.offset == self.length

    def declare_length(self, length: int, *, max_size: int) -> None:
        """Fix a deferred length (creation-defer-length); it may not be below what already arrived."""
        if self.length is not None:
            if self.length != length:
                raise UploadError(f"Upload-Length is already {self.length}")
            return
        if length > max_size:
            raise LengthExceeded(limit=max_size)
        if length < self.offset:
            raise UploadError(f"Upload-Length {length} is less than the {self.offset} bytes already received")
        self.length = length

    def check_append(self, *, offset: int) -> None:
        if self.kind is UploadKind.FINAL:
            raise UploadError("a final upload is assembled from its parts and takes no PATCH")
        if offset != self.offset:
            raise OffsetMismatch(expected=self.offset, got=offset)

    def room(self, *, max_size: int) -> int:
        """How many more bytes this upload may take."""
        return (self.length if self.length is not None else max_size) - self.offset

    def advance(self, *, to: int, at: datetime, ttl: timedelta) -> None:
        """Record that the stored bytes now end at `to`; every write pushes the expiry forward."""
        self.offset = to
        self.expires_at = at + ttl
        if self.is_complete:
            self.completed_at = at
