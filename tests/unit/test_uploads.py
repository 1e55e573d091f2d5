"""Resumable uploads (tus 1.0.0): how much may arrive, from which offset, and when an upload is done."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from framecast.domain.errors import DomainError
from framecast.domain.uploads import LengthExceeded, OffsetMismatch, Upload, UploadError, UploadKind

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TTL = timedelta(hours=24)
MAX = 1_000


def new_upload(length: int | None = 600, kind: UploadKind = UploadKind.SINGLE) -> Upload:
    return Upload.create(
        owner_id="user-1",
        recording_id="rec-1",
        at=T0,
        ttl=TTL,
        length=length,
        max_size=MAX,
        metadata={"filename": "take1.webm"},
        kind=kind,
    )


# -- creation ------------------------------------------------------------------------------------------------------


def test_create_starts_an_empty_upload_that_expires_after_its_ttl() -> None:
    metadata = {"filename": "take1.webm"}
    upload = Upload.create(
        owner_id="user-1", recording_id=None, at=T0, ttl=TTL, length=600, max_size=MAX, metadata=metadata
    )
    metadata["filename"] = "changed.webm"

    assert upload.offset == 0
    assert upload.length == 600
    assert upload.expires_at == T0 + TTL
    assert upload.kind is UploadKind.SINGLE
    assert upload.metadata == {"filename": "take1.webm"}
    assert not upload.is_complete
    assert upload.completed_at is None


def test_upload_ids_are_unguessable() -> None:
    ids = {new_upload().id for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)  # 128 random bits


@pytest.mark.parametrize("length", [0, 1, MAX, None])
def test_create_accepts_lengths_up_to_the_maximum(length: int | None) -> None:
    assert new_upload(length).length == length


@pytest.mark.parametrize("length", [MAX + 1, 10 * MAX])
def test_create_refuses_a_length_over_the_maximum(length: int) -> None:
    with pytest.raises(LengthExceeded) as raised:
        new_upload(length)
    assert raised.value.limit == MAX
    assert raised.value.code == "too_large"
    assert str(MAX) in str(raised.value)
    assert isinstance(raised.value, DomainError)


# -- offsets -------------------------------------------------------------------------------------------------------


def test_append_at_the_server_offset_is_accepted() -> None:
    upload = new_upload()
    upload.check_append(offset=0)
    upload.advance(to=250, at=T0, ttl=TTL)
    upload.check_append(offset=250)


@pytest.mark.parametrize("offset", [0, 249, 251, 600])
def test_append_at_another_offset_tells_the_client_where_to_resume(offset: int) -> None:
    upload = new_upload()
    upload.advance(to=250, at=T0, ttl=TTL)

    with pytest.raises(OffsetMismatch) as raised:
        upload.check_append(offset=offset)

    assert raised.value.expected == 250
    assert raised.value.code == "offset_mismatch"
    assert "resume from 250" in str(raised.value)
    assert upload.offset == 250


@pytest.mark.parametrize("offset", [0, 7])
def test_a_final_upload_refuses_appends(offset: int) -> None:
    upload = new_upload(None, kind=UploadKind.FINAL)
    with pytest.raises(UploadError, match="final upload") as raised:
        upload.check_append(offset=offset)
    assert not isinstance(raised.value, OffsetMismatch)


def test_a_partial_upload_takes_appends() -> None:
    upload = new_upload(100, kind=UploadKind.PARTIAL)
    upload.check_append(offset=0)


# -- deferred length -----------------------------------------------------------------------------------------------


def test_a_deferred_length_is_declared_once() -> None:
    upload = new_upload(None)
    upload.advance(to=300, at=T0, ttl=TTL)
    upload.declare_length(800, max_size=MAX)
    upload.declare_length(800, max_size=MAX)  # repeating the same length is harmless

    assert upload.length == 800
    with pytest.raises(UploadError, match="already 800"):
        upload.declare_length(900, max_size=MAX)
    assert upload.length == 800


def test_a_deferred_length_may_not_be_below_what_arrived() -> None:
    upload = new_upload(None)
    upload.advance(to=300, at=T0, ttl=TTL)
    with pytest.raises(UploadError, match="less than the 300 bytes"):
        upload.declare_length(299, max_size=MAX)
    assert upload.length is None


def test_a_deferred_length_equal_to_what_arrived_completes_the_upload() -> None:
    upload = new_upload(None)
    upload.advance(to=300, at=T0, ttl=TTL)
    upload.declare_length(300, max_size=MAX)
    assert upload.is_complete


def test_a_deferred_length_may_not_exceed_the_maximum() -> None:
    upload = new_upload(None)
    with pytest.raises(LengthExceeded) as raised:
        upload.declare_length(MAX + 1, max_size=MAX)
    assert raised.value.limit == MAX
    assert upload.length is None


def test_an_upload_created_with_a_length_keeps_it() -> None:
    upload = new_upload(600)
    upload.declare_length(600, max_size=MAX)
    with pytest.raises(UploadError):
        upload.declare_length(500, max_size=MAX)
    assert upload.length == 600


# -- progress ------------------------------------------------------------------------------------------------------


def test_every_write_pushes_the_expiry_and_the_last_one_completes() -> None:
    upload = new_upload(600)
    upload.advance(to=250, at=T0 + timedelta(minutes=5), ttl=TTL)
    assert (upload.offset, upload.expires_at) == (250, T0 + timedelta(minutes=5) + TTL)
    assert not upload.is_complete
    assert upload.completed_at is None

    done = T0 + timedelta(minutes=9)
    upload.advance(to=600, at=done, ttl=TTL)

    assert upload.is_complete
    assert upload.completed_at == done
    assert upload.expires_at == done + TTL


def test_bytes_without_a_declared_length_never_complete() -> None:
    upload = new_upload(None)
    upload.advance(to=MAX, at=T0, ttl=TTL)
    assert not upload.is_complete
    assert upload.completed_at is None


@pytest.mark.parametrize(
    ("length", "offset", "room"), [(600, 0, 600), (600, 250, 350), (600, 600, 0), (None, 250, 750)]
)
def test_room_is_what_the_upload_may_still_take(length: int | None, offset: int, room: int) -> None:
    upload = new_upload(length)
    upload.advance(to=offset, at=T0, ttl=TTL)
    assert upload.room(max_size=MAX) == room
