"""How much of a fragmented MP4 that ffmpeg is still writing is whole, read from its top-level boxes.

The capture writes `ftyp`, `moov`, then a `moof` + `mdat` pair every few seconds, only ever appending. A byte range is
safe to upload (and a crashed capture safe to cut) at the end of any box except a `moof`, whose samples are in the
`mdat` that follows it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

HEADER = 8
# A box header this large is not something ffmpeg wrote; reading on would trust garbage.
MAX_BOX = 1 << 40
KNOWN = frozenset({b"ftyp", b"moov", b"moof", b"mdat", b"mfra", b"free", b"skip", b"sidx", b"styp", b"emsg", b"prft"})


@dataclass(frozen=True, slots=True)
class Box:
    kind: str
    start: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True, slots=True)
class Scan:
    """Where whole boxes end: `complete` bytes from the start can be uploaded or kept; `fragments` moofs are in them."""

    complete: int
    fragments: int
    scanned: int  # where the next scan starts (the end of the last whole box seen, a moof included)
    corrupt: bool = False


def parse_header(header: bytes, *, start: int) -> Box | None:
    """The box whose header starts `header`; None when the header is not all there yet.

    Raises ValueError for a header no MP4 writer produces.
    """
    if len(header) < HEADER:
        return None
    size, kind = struct.unpack(">I4s", header[:HEADER])
    if size == 1:
        if len(header) < HEADER + 8:
            return None
        (size,) = struct.unpack(">Q", header[HEADER : HEADER + 8])
    if kind not in KNOWN or size < HEADER or size > MAX_BOX:
        raise ValueError(f"not an MP4 box at byte {start}: {kind!r} of {size} bytes")
    return Box(kind=kind.decode("ascii"), start=start, size=size)


def scan(path: Path, *, since: Scan | None = None) -> Scan:
    """Scan the file's top-level boxes from where `since` stopped; reads headers only, never the media."""
    previous = since or Scan(complete=0, fragments=0, scanned=0)
    complete, fragments, position = previous.complete, previous.fragments, previous.scanned
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return previous
    with handle:
        available = os.fstat(handle.fileno()).st_size
        while position + HEADER <= available:
            handle.seek(position)
            try:
                box = parse_header(handle.read(HEADER + 8), start=position)
            except ValueError:
                return Scan(complete=complete, fragments=fragments, scanned=position, corrupt=True)
            if box is None or box.end > available:
                break
            position = box.end
            if box.kind == "moof":
                fragments += 1
            else:
                complete = position
    return Scan(complete=complete, fragments=fragments, scanned=position)
