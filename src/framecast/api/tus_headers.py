"""The tus 1.0.0 request and response headers: parsing what clients send, formatting what the server answers."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Container, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime

from framecast.domain.uploads import UploadKind
from framecast.services.upload_bodies import Checksum

_DECIMAL = re.compile(r"[0-9]{1,19}")
_METADATA_KEY = re.compile(r"[^\s,]+")


class BadHeader(ValueError):
    """A tus header the server cannot read; the request is refused with 400 and nothing changes."""


def parse_size(headers: Mapping[str, str], name: str) -> int | None:
    """A non-negative byte count or offset (Upload-Length, Upload-Offset, Content-Length); None when absent."""
    value = headers.get(name)
    if value is None:
        return None
    if not _DECIMAL.fullmatch(value.strip()):
        raise BadHeader(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


def parse_metadata(value: str | None) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64(value)` pairs; a key alone has the empty value.

    Values must decode to UTF-8 text (they name files, titles and recordings).
    """
    metadata: dict[str, str] = {}
    for pair in (value or "").split(","):
        if not pair.strip():
            continue
        key, _, encoded = pair.strip().partition(" ")
        if not _METADATA_KEY.fullmatch(key) or key in metadata:
            raise BadHeader(f"Upload-Metadata has a bad or repeated key {key!r}")
        try:
            metadata[key] = _b64decode(encoded.strip()).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise BadHeader(f"Upload-Metadata value of {key!r} must be base64 of UTF-8 text") from exc
    return metadata


def encode_metadata(metadata: Mapping[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key for key, value in metadata.items()
    )


def parse_concat(value: str | None) -> tuple[UploadKind, list[str]]:
    """Upload-Concat: `partial`, or `final;<url> <url> ...` naming partial uploads in order."""
    if value is None:
        return UploadKind.SINGLE, []
    value = value.strip()
    if value == "partial":
        return UploadKind.PARTIAL, []
    head, _, urls = value.partition(";")
    if head != "final" or not urls.split():
        raise BadHeader("Upload-Concat must be `partial` or `final;<upload url> <upload url> ...`")
    return UploadKind.FINAL, urls.split()


def concat_header(kind: UploadKind, part_urls: list[str]) -> str:
    return "partial" if kind is UploadKind.PARTIAL else "final;" + " ".join(part_urls)


def parse_checksum(value: str | None, *, supported: Container[str]) -> Checksum | None:
    """Upload-Checksum: `<algorithm> <base64 digest>`, the algorithm one of Tus-Checksum-Algorithm."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in supported:
        raise BadHeader(f"Upload-Checksum algorithm {algorithm!r} is not supported (see Tus-Checksum-Algorithm)")
    try:
        return Checksum(algorithm=algorithm, digest=_b64decode(encoded.strip()))
    except binascii.Error as exc:
        raise BadHeader("Upload-Checksum must carry a base64 digest") from exc


def _b64decode(value: str) -> bytes:
    # Some clients leave out the padding; the alphabet is still checked.
    return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)


def expires_header(at: datetime) -> str:
    """Upload-Expires: an RFC 9110 HTTP date."""
    return format_datetime(at.astimezone(UTC), usegmt=True)
