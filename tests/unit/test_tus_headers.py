"""The tus headers: what clients send is read strictly, what the server answers round-trips."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from framecast.api.tus_headers import (
    BadHeader,
    concat_header,
    encode_metadata,
    expires_header,
    parse_checksum,
    parse_concat,
    parse_metadata,
    parse_size,
)
from framecast.domain.uploads import UploadKind


def test_metadata_round_trips_including_keys_without_values() -> None:
    header = "filename dGFsay53ZWJt,private,title w6lsw6h2ZQ=="
    metadata = parse_metadata(header)
    assert metadata == {"filename": "talk.webm", "private": "", "title": "élève"}
    assert encode_metadata(metadata) == header


def test_metadata_without_padding_is_accepted() -> None:
    assert parse_metadata("filename dGFsay53ZWJ") == {"filename": "talk.web"}


@pytest.mark.parametrize("header", ["filename not*base64", "a YQ==,a Yg==", "bad key YQ==", "bin //79"])
def test_bad_metadata_is_refused(header: str) -> None:
    with pytest.raises(BadHeader):
        parse_metadata(header)


@pytest.mark.parametrize(("value", "parsed"), [(None, None), ("0", 0), ("52428800", 52428800), (" 7 ", 7)])
def test_sizes(value: str | None, parsed: int | None) -> None:
    assert parse_size({} if value is None else {"upload-length": value}, "upload-length") == parsed


@pytest.mark.parametrize("value", ["-1", "1.5", "ten", "", "1" * 20])
def test_bad_sizes_are_refused(value: str) -> None:
    with pytest.raises(BadHeader):
        parse_size({"upload-offset": value}, "upload-offset")


def test_concat() -> None:
    assert parse_concat(None) == (UploadKind.SINGLE, [])
    assert parse_concat("partial") == (UploadKind.PARTIAL, [])
    assert parse_concat("final;/api/v1/uploads/a http://h/api/v1/uploads/b") == (
        UploadKind.FINAL,
        ["/api/v1/uploads/a", "http://h/api/v1/uploads/b"],
    )
    assert concat_header(UploadKind.FINAL, ["/a", "/b"]) == "final;/a /b"
    for bad in ("final;", "final", "whole"):
        with pytest.raises(BadHeader):
            parse_concat(bad)


def test_checksum() -> None:
    checksum = parse_checksum("sha1 qZk+NkcGgWq6PiVxeFDCbJzQ2J0=", supported={"sha1"})
    assert checksum is not None
    assert (checksum.algorithm, len(checksum.digest)) == ("sha1", 20)
    assert parse_checksum(None, supported={"sha1"}) is None
    with pytest.raises(BadHeader, match="md5"):
        parse_checksum("md5 AAAA", supported={"sha1"})
    with pytest.raises(BadHeader):
        parse_checksum("sha1 ***", supported={"sha1"})


def test_expires_is_an_http_date() -> None:
    assert expires_header(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)) == "Sun, 01 Mar 2026 09:00:00 GMT"
