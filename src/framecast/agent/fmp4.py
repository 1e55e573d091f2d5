"""How much of a fragmented MP4 that ffmpeg is still writing is whole, read from its top-level boxes.

The capture writes `ftyp`, `moov`, then a `moof` + `mdat` pair every few seconds, only ever appending. A byte range is
safe to upload (and a crashed capture safe to cut) at the end of any box except a `moof`, whose samples are in the
`mdat` that follows it.

`scan` says how many bytes are whole (a tus upload sends them as they are); `fragments` cuts the same file into HLS
pieces (live segments, docs/live.md): the init segment, `ftyp` + `moov`, then one media segment per `moof` + `mdat`,
with any `styp`, `sidx`, `prft` or `emsg` right in front of the `moof`.
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
# Boxes that may lead a media segment, in front of its moof.
LEADING = frozenset({"styp", "sidx", "prft", "emsg"})


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


@dataclass(frozen=True, slots=True)
class Span:
    """Bytes [start, end) of the file."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Fragments:
    """A growing file cut into whole HLS pieces: the init segment (once its moov is whole) and the media segments.

    `corrupt` means a box no MP4 writer produces, or boxes in an order a fragmented MP4 never has: the pieces listed
    before it are whole, nothing after it is listed.
    """

    init: Span | None
    segments: tuple[Span, ...]
    scanned: int  # where the next listing starts: the start of the piece still being written
    corrupt: bool = False


def fragments(path: Path, *, since: Fragments | None = None, until: int | None = None) -> Fragments:
    """List the whole pieces of the file, going on from where `since` stopped; reads box headers only.

    `until` ignores bytes from there on (a closed run's length: what a crash left past its last whole fragment).
    A media segment runs from its leading boxes (or its moof) to the end of the mdat after the moof; a `free`,
    `skip` or `mfra` between segments belongs to none, and neither do leading boxes not followed by a moof.
    """
    previous = since or Fragments(init=None, segments=(), scanned=0)
    if previous.corrupt:
        return previous
    init, found = previous.init, list(previous.segments)
    position = start = previous.scanned  # `start`: where the piece being read began
    moof = False
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return previous
    with handle:
        available = os.fstat(handle.fileno()).st_size
        if until is not None:
            available = min(available, until)
        while position + HEADER <= available:
            handle.seek(position)
            try:
                box = parse_header(handle.read(HEADER + 8), start=position)
            except ValueError:
                return Fragments(init=init, segments=tuple(found), scanned=start, corrupt=True)
            if box is None or box.end > available:
                break
            position = box.end
            if init is None:
                if box.kind == "moov":
                    init = Span(0, box.end)
                    start = position
                elif box.kind in ("moof", "mdat"):
                    return Fragments(init=None, segments=tuple(found), scanned=start, corrupt=True)
                continue
            if moof:
                if box.kind != "mdat":  # a moof's samples are in the mdat right after it
                    return Fragments(init=init, segments=tuple(found), scanned=start, corrupt=True)
                found.append(Span(start, box.end))
                start, moof = position, False
            elif box.kind == "moof":
                moof = True
            elif box.kind == "mdat":  # samples no moof describes
                return Fragments(init=init, segments=tuple(found), scanned=start, corrupt=True)
            elif box.kind not in LEADING:
                start = position  # between segments (free, skip, mfra), or leading boxes that led nowhere
    return Fragments(init=init, segments=tuple(found), scanned=start)
