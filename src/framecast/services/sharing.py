"""Opening a share link: from the link id in a URL to the recording it lets its holder watch."""

from __future__ import annotations

from dataclasses import dataclass

from framecast.domain.errors import NotFound
from framecast.domain.recordings import Recording, RecordingStatus
from framecast.domain.sharing import LinkUnavailable, ShareLink, is_link_id
from framecast.ports import Clock, UnitOfWorkFactory

# Nothing was recorded, or its owner threw it away: to a link holder these do not exist.
_GONE = frozenset({RecordingStatus.ABORTED, RecordingStatus.EXPIRED})


@dataclass(frozen=True, slots=True)
class Shared:
    link: ShareLink
    recording: Recording


async def open_link(*, uow: UnitOfWorkFactory, clock: Clock, link_id: str) -> Shared:
    """The link and its recording; raises LinkUnavailable (a 404) for anything a holder may not watch."""
    if not is_link_id(link_id):
        raise LinkUnavailable()
    async with uow() as tx:
        try:
            link = await tx.share_links.get(link_id)
            recording = await tx.recordings.get(link.recording_id)
        except NotFound:
            raise LinkUnavailable() from None
    link.admit(at=clock.now())
    if recording.status in _GONE:
        raise LinkUnavailable()
    return Shared(link=link, recording=recording)
