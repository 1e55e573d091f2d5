"""WebM as a browser's MediaRecorder writes it: the header a live upload sends first and the clusters its segments
carry (docs/live.md, "WebM runs").

Read by hand, like domain/fmp4.py: only the EBML elements that say what the tracks are and where a segment may
start are read, and MediaRecorder writes its Segment and Clusters with an unknown size (it cannot know them while
recording), which an element tree reader would have to be taught anyway. The bytes themselves are decoded by ffmpeg
when the segment is transcoded; this module only decides whether they are worth handing to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from framecast.domain.errors import DomainError
from framecast.domain.fmp4 import BadSegment

EBML = 0x1A45DFA3
DOC_TYPE = 0x4282
SEGMENT = 0x18538067
INFO, TIMECODE_SCALE = 0x1549A966, 0x2AD7B1
TRACKS, TRACK_ENTRY, TRACK_NUMBER, TRACK_TYPE, CODEC_ID = 0x1654AE6B, 0xAE, 0xD7, 0x83, 0x86
VIDEO, PIXEL_WIDTH, PIXEL_HEIGHT = 0xE0, 0xB0, 0xBA
CLUSTER, TIMECODE, SIMPLE_BLOCK, BLOCK_GROUP, BLOCK, REFERENCE_BLOCK = 0x1F43B675, 0xE7, 0xA3, 0xA0, 0xA1, 0xFB
VOID = 0xEC
# Elements that live directly in the Segment: an unknown-size Cluster ends where one of them begins.
SEGMENT_CHILDREN = frozenset({CLUSTER, 0x1C53BB6B, 0x1254C367, 0x114D9B74, INFO, TRACKS, 0x1043A770, 0x1941A469})
TRACK_VIDEO, TRACK_AUDIO = 1, 2
DEFAULT_TIMECODE_SCALE = 1_000_000  # nanoseconds per timecode unit: milliseconds

# What the live transcode takes (adapters/media/commands.py: live_transcode): any picture ffmpeg decodes that
# browsers record, and Opus, which goes into the MP4 segments as it is.
VIDEO_CODECS = frozenset({"V_VP8", "V_VP9", "V_AV1", "V_MPEG4/ISO/AVC"})
AUDIO_CODECS = frozenset({"A_OPUS"})
# The live picture fits in 1080p: a 4K screen would take longer to encode than it takes to record.
MAX_LIVE_SIZE = (1920, 1080)


class UnsupportedMedia(DomainError):
    """A WebM whose codecs cannot be transcoded live; the client uploads the recording whole instead."""

    code = "unsupported_media"


@dataclass(frozen=True, slots=True)
class WebmTrack:
    number: int
    kind: str  # "video" or "audio"
    codec: str  # the Matroska CodecID: V_VP8, A_OPUS
    width: int = 0
    height: int = 0


@dataclass(frozen=True, slots=True)
class WebmHeader:
    timecode_scale: int
    video: WebmTrack | None
    audio: WebmTrack | None

    @property
    def live_size(self) -> tuple[int, int]:
        """The transcoded picture's size: the recorded one, fitted into MAX_LIVE_SIZE, even on both sides."""
        if self.video is None:
            return (0, 0)
        return fit(self.video.width, self.video.height, MAX_LIVE_SIZE)


@dataclass(frozen=True, slots=True)
class WebmSegment:
    clusters: int
    start_s: float  # the first cluster's time, in the recording's clock


@dataclass(frozen=True, slots=True)
class _Element:
    ident: int
    body: int  # offset of the payload
    end: int  # offset past the payload; the end of what was read for an unknown size


def fit(width: int, height: int, box: tuple[int, int]) -> tuple[int, int]:
    scale = min(1.0, box[0] / width, box[1] / height) if width > 0 and height > 0 else 1.0
    return (max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2))


def parse_header(data: bytes) -> WebmHeader:
    """The tracks of a WebM header: every byte before the first Cluster. Raises BadSegment when it is not one,
    UnsupportedMedia when its codecs cannot be transcoded live."""
    at = 0
    first = _element(data, at, len(data))
    if first.ident != EBML:
        raise BadSegment("a WebM header starts with the EBML element")
    doc_type = _children(data, first).get(DOC_TYPE)
    if doc_type is None or data[doc_type.body : doc_type.end].rstrip(b"\0") not in (b"webm", b"matroska"):
        raise BadSegment("the EBML header does not say webm or matroska")
    segment = _element(data, first.end, len(data))
    if segment.ident != SEGMENT:
        raise BadSegment("the EBML header is not followed by a Segment")
    scale = DEFAULT_TIMECODE_SCALE
    tracks: list[WebmTrack] = []
    at = segment.body
    while at < len(data):
        element = _element(data, at, len(data), in_segment=True)
        if element.ident == CLUSTER:
            raise BadSegment("the header holds a Cluster: send the bytes before the first Cluster only")
        if element.ident == INFO and (found := _children(data, element).get(TIMECODE_SCALE)) is not None:
            scale = _uint(data, found) or DEFAULT_TIMECODE_SCALE
        elif element.ident == TRACKS:
            tracks = [_track(data, entry) for entry in _each(data, element) if entry.ident == TRACK_ENTRY]
        at = element.end
    videos = [t for t in tracks if t.kind == "video"]
    audios = [t for t in tracks if t.kind == "audio"]
    if not tracks:
        raise BadSegment("the WebM header has no Tracks")
    if len(videos) > 1 or len(audios) > 1 or len(videos) + len(audios) != len(tracks):
        raise UnsupportedMedia("a live WebM has at most one video and one audio track, and nothing else")
    for track in tracks:
        if track.codec not in (VIDEO_CODECS if track.kind == "video" else AUDIO_CODECS):
            raise UnsupportedMedia(f"{track.codec} cannot be transcoded live; upload the recording whole (tus)")
    video = videos[0] if videos else None
    if video is not None and (video.width <= 0 or video.height <= 0):
        raise BadSegment("the video track does not say its size")
    return WebmHeader(timecode_scale=scale, video=video, audio=audios[0] if audios else None)


def parse_segment(data: bytes, header: WebmHeader) -> WebmSegment:
    """Check a segment: one or more whole Clusters whose first video block is a keyframe (so it decodes on its
    own). Raises BadSegment naming what is wrong."""
    if not data:
        raise BadSegment("the segment is empty")
    clusters = 0
    start: int | None = None
    keyframe: bool | None = None
    at = 0
    while at < len(data):
        element = _element(data, at, len(data), in_segment=True)
        if element.ident == VOID:
            at = element.end
            continue
        if element.ident != CLUSTER:
            raise BadSegment(f"a segment holds Clusters only, not element 0x{element.ident:X}")
        clusters += 1
        for child in _each(data, element):
            if child.ident == TIMECODE and start is None:
                start = _uint(data, child)
            elif keyframe is None and header.video is not None and child.ident in (SIMPLE_BLOCK, BLOCK_GROUP):
                keyframe = _video_keyframe(data, child, header.video.number)
        at = element.end
    if start is None:
        raise BadSegment("the first Cluster has no Timecode")
    if keyframe is False:
        raise BadSegment("the segment does not start on a keyframe: cut it before a Cluster that does")
    return WebmSegment(clusters=clusters, start_s=start * header.timecode_scale / 1e9)


# -- EBML ---------------------------------------------------------------------------------------------------------


def _vint(data: bytes, at: int, end: int, *, marker: bool) -> tuple[int, int, bool]:
    """(value, length, all ones) of the variable-length integer at `at`; without `marker` the length marker stays
    in the value (element IDs are written that way)."""
    if at >= end:
        raise BadSegment("the data ends inside an element header")
    first = data[at]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or at + length > end:
        raise BadSegment(f"a broken EBML number at byte {at}")
    value = first & (0xFF >> length) if marker else first
    for byte in data[at + 1 : at + length]:
        value = value << 8 | byte
    return value, length, marker and value == (1 << (7 * length)) - 1


def _element(data: bytes, at: int, end: int, *, in_segment: bool = False) -> _Element:
    """The element at `at`. An unknown size is taken by a Segment (it runs to the end) and, `in_segment`, by a
    Cluster (it runs to the next Segment-level element)."""
    ident, id_length, _ = _vint(data, at, end, marker=False)
    size, size_length, unknown = _vint(data, at + id_length, end, marker=True)
    body = at + id_length + size_length
    if unknown:
        if ident == SEGMENT:
            return _Element(ident, body, end)
        if ident == CLUSTER and in_segment:
            return _Element(ident, body, _unknown_end(data, body, end))
        raise BadSegment(f"element 0x{ident:X} at byte {at} has an unknown size")
    if ident == SEGMENT:  # a header holds only the start of its Segment, whatever size that says
        return _Element(ident, body, min(body + size, end))
    if body + size > end:
        raise BadSegment(f"element 0x{ident:X} at byte {at} runs past the end of the data")
    return _Element(ident, body, body + size)


def _unknown_end(data: bytes, at: int, end: int) -> int:
    while at < end:
        if _vint(data, at, end, marker=False)[0] in SEGMENT_CHILDREN:
            return at
        at = _element(data, at, end).end
    return end


def _each(data: bytes, parent: _Element) -> Iterator[_Element]:
    """The elements directly inside `parent`, in order."""
    at = parent.body
    while at < parent.end:
        child = _element(data, at, parent.end)
        yield child
        at = child.end


def _children(data: bytes, parent: _Element) -> dict[int, _Element]:
    """The first child of each ID."""
    found: dict[int, _Element] = {}
    for child in _each(data, parent):
        found.setdefault(child.ident, child)
    return found


def _uint(data: bytes, element: _Element) -> int:
    if element.end - element.body > 8:
        raise BadSegment(f"element 0x{element.ident:X} is too long for a number")
    return int.from_bytes(data[element.body : element.end], "big")


def _track(data: bytes, entry: _Element) -> WebmTrack:
    fields = _children(data, entry)
    number, kind, codec = fields.get(TRACK_NUMBER), fields.get(TRACK_TYPE), fields.get(CODEC_ID)
    if number is None or kind is None or codec is None:
        raise BadSegment("a track lacks its number, type or codec")
    type_code = _uint(data, kind)
    name = data[codec.body : codec.end].rstrip(b"\0").decode("ascii", "replace")
    if type_code == TRACK_VIDEO and (picture := fields.get(VIDEO)) is not None:
        size = _children(data, picture)
        width, height = size.get(PIXEL_WIDTH), size.get(PIXEL_HEIGHT)
        return WebmTrack(
            number=_uint(data, number),
            kind="video",
            codec=name,
            width=_uint(data, width) if width else 0,
            height=_uint(data, height) if height else 0,
        )
    kinds = {TRACK_VIDEO: "video", TRACK_AUDIO: "audio"}
    return WebmTrack(number=_uint(data, number), kind=kinds.get(type_code, f"type {type_code}"), codec=name)


def _video_keyframe(data: bytes, block: _Element, video_track: int) -> bool | None:
    """Whether this block is a keyframe of the video track; None when it belongs to another track."""
    if block.ident == BLOCK_GROUP:
        fields = _children(data, block)
        inner = fields.get(BLOCK)
        if inner is None:
            raise BadSegment("a BlockGroup without its Block")
        if _block_track(data, inner) != video_track:
            return None
        return REFERENCE_BLOCK not in fields
    if _block_track(data, block) != video_track:
        return None
    track_length = _vint(data, block.body, block.end, marker=True)[1]
    flags_at = block.body + track_length + 2
    if flags_at >= block.end:
        raise BadSegment("a SimpleBlock ends inside its header")
    return bool(data[flags_at] & 0x80)


def _block_track(data: bytes, block: _Element) -> int:
    return _vint(data, block.body, block.end, marker=True)[0]
