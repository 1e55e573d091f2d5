"""Reading fragmented MP4 (ISO/IEC 14496-12, CMAF) just far enough to accept a live segment: what tracks an init
segment declares, and whether a media segment is whole and how long it plays.

Written by hand because a live segment is checked on the request path, once every couple of seconds per recording,
so it must cost microseconds and never run a tool; the MP4 libraries on PyPI parse (and copy) whole payloads into
objects. Only box headers and the few fields below are read, never the media.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from framecast.domain.errors import DomainError

HEADER = 8
CONTAINERS = frozenset({"moov", "trak", "mdia", "minf", "stbl", "mvex", "moof", "traf", "edts", "dinf"})
# Top-level boxes a media segment may hold besides its moof/mdat pairs.
SEGMENT_EXTRAS = frozenset({"styp", "sidx", "prft", "emsg", "free", "skip"})
VISUAL_ENTRIES = frozenset({"avc1", "avc3", "hvc1", "hev1", "vp09", "av01"})
AUDIO_ENTRIES = frozenset({"mp4a", "Opus", "fLaC", "ac-3", "ec-3"})

# trun flags (14496-12 8.8.8) and tfhd flags (8.8.7).
TRUN_DATA_OFFSET, TRUN_FIRST_FLAGS = 0x1, 0x4
TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTS = 0x100, 0x200, 0x400, 0x800
TFHD_BASE_OFFSET, TFHD_DESCRIPTION, TFHD_DURATION, TFHD_SIZE, TFHD_FLAGS = 0x1, 0x2, 0x8, 0x10, 0x20
TFHD_BASE_IS_MOOF = 0x20000
NON_SYNC_SAMPLE = 0x10000


class BadSegment(DomainError):
    """The bytes are not a whole fragmented-MP4 segment of this stream; the message says what is wrong."""

    code = "segment_corrupt"


@dataclass(frozen=True, slots=True)
class Track:
    track_id: int
    kind: str  # "video" or "audio"
    timescale: int
    codec: str  # as CODECS spells it: avc1.64001f, mp4a.40.2
    width: int = 0
    height: int = 0
    default_duration: int = 0  # from trex
    default_size: int = 0
    default_flags: int = 0


@dataclass(frozen=True, slots=True)
class InitSegment:
    tracks: tuple[Track, ...]

    @property
    def video(self) -> Track | None:
        return next((t for t in self.tracks if t.kind == "video"), None)

    @property
    def audio(self) -> Track | None:
        return next((t for t in self.tracks if t.kind == "audio"), None)

    @property
    def codecs(self) -> str:
        return ",".join(t.codec for t in self.tracks if t.codec)

    def track(self, track_id: int) -> Track | None:
        return next((t for t in self.tracks if t.track_id == track_id), None)


@dataclass(frozen=True, slots=True)
class MediaSegment:
    start_s: float  # decode time of its first sample, in the stream's own clock
    duration_s: float
    starts_with_keyframe: bool


@dataclass(frozen=True, slots=True)
class _Box:
    kind: str
    start: int  # of the header
    body: int  # of the payload
    end: int


def boxes(data: bytes | memoryview, start: int = 0, end: int | None = None) -> Iterator[_Box]:
    """The boxes between `start` and `end`, in order; raises BadSegment for a header that does not fit."""
    end = len(data) if end is None else end
    position = start
    while position < end:
        if end - position < HEADER:
            raise BadSegment(f"{end - position} stray bytes at byte {position}")
        size, raw_kind = struct.unpack_from(">I4s", data, position)
        body = position + HEADER
        if size == 1:
            if end - position < HEADER + 8:
                raise BadSegment(f"a box header is cut off at byte {position}")
            (size,) = struct.unpack_from(">Q", data, body)
            body += 8
        elif size == 0:
            size = end - position  # to the end of its container
        if size < body - position or position + size > end:
            raise BadSegment(f"a box at byte {position} claims {size} bytes; only {end - position} are there")
        try:
            kind = raw_kind.decode("ascii")
        except UnicodeDecodeError:
            raise BadSegment(f"no MP4 box at byte {position}") from None
        yield _Box(kind, position, body, position + size)
        position += size


def _children(data: bytes | memoryview, box: _Box, offset: int = 0) -> dict[str, list[_Box]]:
    found: dict[str, list[_Box]] = {}
    for child in boxes(data, box.body + offset, box.end):
        found.setdefault(child.kind, []).append(child)
    return found


def _one(found: dict[str, list[_Box]], kind: str, where: str) -> _Box:
    if kind not in found:
        raise BadSegment(f"the {where} has no {kind} box")
    return found[kind][0]


def _u32(data: bytes | memoryview, at: int, box: _Box) -> int:
    if at + 4 > box.end:
        raise BadSegment(f"the {box.kind} box is too short")
    return int(struct.unpack_from(">I", data, at)[0])


def _u64(data: bytes | memoryview, at: int, box: _Box) -> int:
    if at + 8 > box.end:
        raise BadSegment(f"the {box.kind} box is too short")
    return int(struct.unpack_from(">Q", data, at)[0])


# -- init segments ----------------------------------------------------------------------------------------------------


def parse_init(data: bytes) -> InitSegment:
    """The tracks of an init segment (ftyp + moov with mvex); raises BadSegment for anything else."""
    top = {b.kind: b for b in boxes(data)}
    if "ftyp" not in top or "moov" not in top:
        raise BadSegment("an init segment is an ftyp and a moov box")
    if "moof" in top or "mdat" in top:
        raise BadSegment("an init segment holds no media (moof/mdat)")
    moov = _children(data, top["moov"])
    if "mvex" not in moov:
        raise BadSegment("the moov box has no mvex: the stream is not fragmented")
    defaults: dict[int, tuple[int, int, int]] = {}
    for trex in _children(data, moov["mvex"][0]).get("trex", []):
        track_id = _u32(data, trex.body + 4, trex)
        defaults[track_id] = (
            _u32(data, trex.body + 12, trex),
            _u32(data, trex.body + 16, trex),
            _u32(data, trex.body + 20, trex),
        )
    tracks = []
    for trak in moov.get("trak", []):
        track = _track(data, trak, defaults)
        if track is not None:
            tracks.append(track)
    if not tracks:
        raise BadSegment("the init segment declares no audio or video track")
    if len({t.track_id for t in tracks}) != len(tracks):
        raise BadSegment("two tracks share an id")
    return InitSegment(tuple(tracks))


def _track(data: bytes, trak: _Box, defaults: dict[int, tuple[int, int, int]]) -> Track | None:
    parts = _children(data, trak)
    tkhd = _one(parts, "tkhd", "trak")
    version = data[tkhd.body]
    track_id = _u32(data, tkhd.body + (20 if version == 1 else 12), tkhd)
    mdia = _children(data, _one(parts, "mdia", "trak"))
    mdhd = _one(mdia, "mdhd", "mdia")
    timescale = _u32(data, mdhd.body + (20 if data[mdhd.body] == 1 else 12), mdhd)
    handler = bytes(data[_one(mdia, "hdlr", "mdia").body + 8 : _one(mdia, "hdlr", "mdia").body + 12])
    if handler not in (b"vide", b"soun"):
        return None  # a text or timed-metadata track: kept in the stream, not described
    if timescale == 0:
        raise BadSegment(f"track {track_id} has a time scale of 0")
    stbl = _children(data, _one(_children(data, _one(mdia, "minf", "mdia")), "stbl", "minf"))
    stsd = _one(stbl, "stsd", "stbl")
    entry = next(boxes(data, stsd.body + 8, stsd.end), None)
    if entry is None:
        raise BadSegment(f"track {track_id} describes no samples")
    duration, size, flags = defaults.get(track_id, (0, 0, 0))
    common = {"track_id": track_id, "timescale": timescale, "default_duration": duration}
    if handler == b"vide":
        if entry.kind not in VISUAL_ENTRIES:
            raise BadSegment(f"video in {entry.kind!r} cannot go into HLS unchanged")
        width, height = struct.unpack_from(">HH", data, entry.body + 24)
        codec = _video_codec(data, entry)
        return Track(
            kind="video", codec=codec, width=width, height=height, default_size=size, default_flags=flags, **common
        )
    if entry.kind not in AUDIO_ENTRIES:
        raise BadSegment(f"audio in {entry.kind!r} cannot go into HLS unchanged")
    return Track(kind="audio", codec=_audio_codec(data, entry), default_size=size, default_flags=flags, **common)


def _video_codec(data: bytes, entry: _Box) -> str:
    """RFC 6381: avc1.PPCCLL from the avcC record; the other codecs by their sample entry's name."""
    if entry.kind in ("avc1", "avc3"):
        config = _children(data, entry, offset=78).get("avcC")
        if not config or config[0].end - config[0].body < 4:
            raise BadSegment("the H.264 track has no avcC record")
        profile, compatibility, level = data[config[0].body + 1 : config[0].body + 4]
        return f"{entry.kind}.{profile:02x}{compatibility:02x}{level:02x}"
    return {"hvc1": "hvc1.1.6.L120.90", "hev1": "hev1.1.6.L120.90", "vp09": "vp09.00.40.08"}.get(
        entry.kind, "av01.0.08M.08"
    )


def _audio_codec(data: bytes, entry: _Box) -> str:
    if entry.kind != "mp4a":
        return {"Opus": "Opus", "fLaC": "fLaC", "ac-3": "ac-3", "ec-3": "ec-3"}[entry.kind]
    esds = _children(data, entry, offset=28).get("esds")
    if not esds:
        return "mp4a.40.2"
    body = bytes(data[esds[0].body + 4 : esds[0].end])
    object_type, audio_type = 0x40, 2
    position = 0
    while position + 2 <= len(body):  # ES descriptors: a tag, a size in up to four 7-bit bytes, the payload
        tag = body[position]
        position += 1
        size = 0
        for _ in range(4):
            byte = body[position]
            position += 1
            size = size << 7 | byte & 0x7F
            if not byte & 0x80 or position >= len(body):
                break
        if tag == 0x03:
            position += 3  # ES_ID and flags; the nested descriptors follow
            continue
        if tag == 0x04 and position < len(body):
            object_type = body[position]
            position += 13
            continue
        if tag == 0x05 and position < len(body):
            audio_type = body[position] >> 3
        break
    return f"mp4a.{object_type:x}.{audio_type}"


# -- media segments ---------------------------------------------------------------------------------------------------


def parse_segment(data: bytes, init: InitSegment) -> MediaSegment:
    """Check that `data` is whole moof/mdat pairs of the stream `init` describes and measure it.

    The duration is the main track's (video, else audio): the sum of its samples' durations. A segment with none of
    its samples (the last audio a capture flushes after its last frame) is measured by the track it has. Raises
    BadSegment.
    """
    main = init.video or init.audio
    assert main is not None
    top = list(boxes(data))
    measured: dict[int, tuple[int, int, int]] = {}  # track id -> (first decode time, ticks, first sample's flags)
    fragments = 0
    for position, box in enumerate(top):
        if box.kind in SEGMENT_EXTRAS or box.kind == "mdat":
            continue
        if box.kind != "moof":
            raise BadSegment(f"a media segment holds moof and mdat boxes, not {box.kind!r}")
        following = top[position + 1] if position + 1 < len(top) else None
        if following is None or following.kind != "mdat":
            raise BadSegment("a moof box is not followed by its mdat")
        fragments += 1
        for traf in _children(data, box).get("traf", []):
            (track_id, decode_time), ticks, first_flags = _traf(data, traf, box, following, init)
            start, total, flags = measured.get(track_id, (decode_time, 0, first_flags))
            measured[track_id] = (start, total + ticks, flags)
    if fragments == 0:
        raise BadSegment("a media segment holds at least one moof and mdat")
    track = main if main.track_id in measured else next((t for t in init.tracks if t.track_id in measured), None)
    if track is None:
        raise BadSegment("the segment holds no samples")
    start, ticks, flags = measured[track.track_id]
    keyframe = track.kind != "video" or not flags & NON_SYNC_SAMPLE
    return MediaSegment(
        start_s=start / track.timescale, duration_s=ticks / track.timescale, starts_with_keyframe=keyframe
    )


def _traf(data: bytes, traf: _Box, moof: _Box, mdat: _Box, init: InitSegment) -> tuple[tuple[int, int], int, int]:
    """((track id, base decode time), summed sample durations, first sample's flags) of one track fragment; checks
    that every sample it names lies inside the mdat that follows its moof."""
    parts = _children(data, traf)
    tfhd = _one(parts, "tfhd", "traf")
    flags = _u32(data, tfhd.body, tfhd) & 0xFFFFFF
    track_id = _u32(data, tfhd.body + 4, tfhd)
    track = init.track(track_id)
    if track is None:
        raise BadSegment(f"the segment has samples of track {track_id}, which the init segment does not declare")
    at = tfhd.body + 8
    base = moof.start
    if flags & TFHD_BASE_OFFSET:
        base = _u64(data, at, tfhd)
        at += 8
    if flags & TFHD_DESCRIPTION:
        at += 4
    duration, size, sample_flags = track.default_duration, track.default_size, track.default_flags
    if flags & TFHD_DURATION:
        duration = _u32(data, at, tfhd)
        at += 4
    if flags & TFHD_SIZE:
        size = _u32(data, at, tfhd)
        at += 4
    if flags & TFHD_FLAGS:
        sample_flags = _u32(data, at, tfhd)
    tfdt = _one(parts, "tfdt", "traf")
    decode_time = _u64(data, tfdt.body + 4, tfdt) if data[tfdt.body] == 1 else _u32(data, tfdt.body + 4, tfdt)
    ticks = 0
    first_flags: int | None = None
    for trun in parts.get("trun", []):
        run_flags = _u32(data, trun.body, trun) & 0xFFFFFF
        count = _u32(data, trun.body + 4, trun)
        at = trun.body + 8
        offset = 0
        if run_flags & TRUN_DATA_OFFSET:
            offset = struct.unpack_from(">i", data, at)[0]
            at += 4
        first = sample_flags
        if run_flags & TRUN_FIRST_FLAGS:
            first = _u32(data, at, trun)
            at += 4
        per_sample = sum(4 for bit in (TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTS) if run_flags & bit)
        if at + count * per_sample > trun.end:
            raise BadSegment(f"a trun box lists {count} samples but holds fewer")
        total = 0
        for index in range(count):
            sample_duration, sample_size, this_flags = duration, size, sample_flags
            if run_flags & TRUN_DURATION:
                sample_duration = _u32(data, at, trun)
                at += 4
            if run_flags & TRUN_SIZE:
                sample_size = _u32(data, at, trun)
                at += 4
            if run_flags & TRUN_FLAGS:
                this_flags = _u32(data, at, trun)
                at += 4
            if run_flags & TRUN_CTS:
                at += 4
            if index == 0 and first_flags is None:
                first_flags = first if run_flags & TRUN_FIRST_FLAGS else this_flags
            ticks += sample_duration
            total += sample_size
        if flags & (TFHD_BASE_OFFSET | TFHD_BASE_IS_MOOF) and run_flags & TRUN_DATA_OFFSET:
            inside = mdat.body <= base + offset and base + offset + total <= mdat.end
        else:  # the data follows the previous track's: only the total can be checked
            inside = total <= mdat.end - mdat.body
        if count and not inside:
            raise BadSegment(f"track {track_id}'s samples lie outside the mdat box that carries them")
    return (track_id, decode_time), ticks, first_flags or 0
