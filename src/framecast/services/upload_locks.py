"""Per-upload locks, so two requests never write to one upload at once (on any instance of a fleet)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from framecast.domain.errors import DomainError
from framecast.ports import Locks

# How long a request waits for another request on the same upload before giving up with 423 Locked.
LOCK_WAIT_SECONDS = 10.0


class UploadLocked(DomainError):
    code = "locked"

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"another request is writing to upload {upload_id}; HEAD it and resume from its offset")


class UploadLocks:
    """Uploads' names in `Locks`: in-process for one instance, Redis for a fleet (bootstrap chooses)."""

    def __init__(self, locks: Locks) -> None:
        self._locks = locks

    async def busy(self, upload_id: str) -> bool:
        return await self._locks.busy(_name(upload_id))

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str, *, wait: float = LOCK_WAIT_SECONDS) -> AsyncIterator[None]:
        """Hold the upload's lock for the block; raises UploadLocked after waiting `wait` seconds for it."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(self._locks.hold(_name(upload_id), wait=wait))
            except TimeoutError:
                raise UploadLocked(upload_id) from None
            yield


def _name(upload_id: str) -> str:
    return f"upload:{upload_id}"
