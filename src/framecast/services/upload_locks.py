"""Per-upload locks, so two requests never write to one upload at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from framecast.domain.errors import DomainError

# How long a request waits for another request on the same upload before giving up with 423 Locked.
LOCK_WAIT_SECONDS = 10.0


class UploadLocked(DomainError):
    code = "locked"

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"another request is writing to upload {upload_id}; HEAD it and resume from its offset")


class UploadLocks:
    """One asyncio.Lock per upload id, dropped when nobody holds or awaits it.

    This serialises requests within one process. With several instances behind a load balancer the lock has to
    be shared: it moves to Redis with the scale-out work (until then, run one instance or pin uploads to one).
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def busy(self, upload_id: str) -> bool:
        entry = self._locks.get(upload_id)
        return entry is not None and entry[0].locked()

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str, *, wait: float = LOCK_WAIT_SECONDS) -> AsyncIterator[None]:
        """Hold the upload's lock for the block; raises UploadLocked after waiting `wait` seconds for it."""
        lock, users = self._locks.get(upload_id, (asyncio.Lock(), 0))
        self._locks[upload_id] = (lock, users + 1)
        try:
            try:
                async with asyncio.timeout(wait):
                    await lock.acquire()
            except TimeoutError:
                raise UploadLocked(upload_id) from None
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[upload_id]
            if users == 1:
                del self._locks[upload_id]
            else:
                self._locks[upload_id] = (lock, users - 1)
