"""HTTP byte ranges (RFC 9110 section 14) for GET of stored media: which bytes a `Range` header asks for."""

from __future__ import annotations

import re
from dataclasses import dataclass

_RANGE_SPEC = re.compile(r"(?P<first>[0-9]*)-(?P<last>[0-9]*)")


class RangeNotSatisfiable(ValueError):
    """The one range asked for lies wholly past the end of the file; answered 416 with `bytes */size`."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes `start` up to but excluding `end` of a file of `size` bytes (never empty)."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single range `header` asks for, clamped to the file; None to send the whole file (200).

    None for no header, a unit other than bytes, a header that does not parse (which RFC 9110 says to ignore) and for
    several ranges: clients ask for those rarely, and the whole file is an answer they must accept. Raises
    RangeNotSatisfiable for one range that starts at or past `size`, or a zero-byte suffix.
    """
    if header is None:
        return None
    unit, _, ranges = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip() for spec in ranges.split(",") if spec.strip()]
    if len(specs) != 1 or not (match := _RANGE_SPEC.fullmatch(specs[0])):
        return None
    first, last = match["first"], match["last"]
    if not first:
        if not last:
            return None  # "bytes=-" is no range at all
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"the last {suffix} bytes of a {size}-byte file")
        return ByteRange(start=max(0, size - suffix), end=size, size=size)
    start = int(first)
    if last and int(last) < start:
        return None  # syntactically invalid: ignored, not refused
    if start >= size:
        raise RangeNotSatisfiable(f"byte {start} of a {size}-byte file")
    end = size if not last else min(size, int(last) + 1)
    return ByteRange(start=start, end=end, size=size)
