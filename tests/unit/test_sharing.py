"""Share links: ids that cannot be guessed or forged into something else, and the admit rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from framecast.domain.sharing import LinkUnavailable, ShareLink, is_link_id, new_link_id

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_new_link_ids_are_distinct_and_well_formed() -> None:
    ids = {new_link_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_link_id(i) for i in ids)


@pytest.mark.parametrize(
    "candidate",
    ["", "short", "A" * 21, "A" * 23, "../../../etc/passwd", "A" * 21 + "/", "A" * 21 + "=", "3f0c5b1e-8a44-4b7e-9d0e"],
)
def test_anything_else_is_not_a_link_id(candidate: str) -> None:
    assert not is_link_id(candidate)


def test_an_unlisted_link_admits_anyone_until_revoked_or_expired() -> None:
    link = ShareLink(id=new_link_id(), recording_id="r", created_at=NOW)
    link.admit(at=NOW + timedelta(days=3650))

    link.expires_at = NOW + timedelta(hours=1)
    link.admit(at=NOW + timedelta(minutes=59))
    with pytest.raises(LinkUnavailable):
        link.admit(at=NOW + timedelta(hours=1))

    link.expires_at = None
    link.revoked_at = NOW
    with pytest.raises(LinkUnavailable):
        link.admit(at=NOW)
