"""Live recordings: the segments a client uploads while it records, and the HLS playlist they make.

A recording is captured in runs (one per start or resume, numbered from 1); each run is an init segment and media
segments numbered from 0. The playlist is an EVENT playlist: it only ever grows, so it lists each run's segments up
to the first one still missing, and a run only after every run before it is ended and whole. A pause is a
discontinuity between runs. See docs/live.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from framecast.domain.errors import DomainError
from framecast.domain.media import PLAYLIST_NAME

LIVE_FOLDER = "play"  # the live rendition is the first playable one: the ladder's master keeps it out of the way
INIT_FILE = "init.mp4"
MAX_INIT_BYTES = 1024 * 1024
MAX_SEGMENT_BYTES = 64 * 1024 * 1024
MAX_RUNS = 10_000
MAX_SEGMENTS_PER_RUN = 100_000  # 55 hours of 2-second segments: far past the longest recording allowed
# Players reload a live playlist about once per target duration; the agent's segments are 2 s long.
LIVE_TARGET_DURATION = 2
LIVE_PLAYLIST = f"{LIVE_FOLDER}/{PLAYLIST_NAME}"
# What a run's client sends (LiveRun.source); a WebM run's header is kept beside the playlist's folder.
MP4, WEBM = "mp4", "webm"
WEBM_FOLDER = "webm"


class SegmentConflict(DomainError):
    """Different bytes are already stored under this segment, or it lies past its run's declared end."""

    code = "segment_conflict"


class InitMissing(DomainError):
    """A media segment came before its run's init segment."""

    code = "init_missing"


def run_folder(run: int) -> str:
    return f"r{run:04d}"


def init_path(run: int) -> str:
    """The init segment's path under the generation's folder."""
    return f"{LIVE_FOLDER}/{run_folder(run)}/{INIT_FILE}"


def webm_header_path(run: int) -> str:
    """Where a WebM run's header is kept: every segment of the run is transcoded with it in front."""
    return f"{WEBM_FOLDER}/{run_folder(run)}/header.webm"


def segment_path(run: int, index: int) -> str:
    return f"{LIVE_FOLDER}/{run_folder(run)}/{index:05d}.m4s"


def check_position(run: int, index: int | None = None) -> None:
    if not 1 <= run <= MAX_RUNS:
        raise ValueError(f"runs are numbered 1 to {MAX_RUNS}")
    if index is not None and not 0 <= index < MAX_SEGMENTS_PER_RUN:
        raise ValueError(f"segments are numbered 0 to {MAX_SEGMENTS_PER_RUN - 1}")


@dataclass(frozen=True, slots=True)
class LiveSegment:
    run: int
    index: int
    size: int
    sha256: str
    duration_s: float


@dataclass(kw_only=True)
class LiveRun:
    """One run as stored: its init segment's description and, once the client ends it, its segment count."""

    run: int
    init_sha256: str
    init_size: int
    codecs: str
    width: int = 0
    height: int = 0
    # MP4: the client sends fMP4 and it is stored as sent. WEBM: the client sends a WebM header and clusters, and
    # each segment is stored as the fMP4 it is transcoded to (the init segment comes from the first transcode).
    source: str = MP4
    ended: int | None = None
    segments: dict[int, LiveSegment] = field(default_factory=dict)

    def contiguous(self) -> int:
        """How many segments from 0 on are all here."""
        count = 0
        while count in self.segments:
            count += 1
        return count

    @property
    def whole(self) -> bool:
        return self.ended is not None and self.contiguous() >= self.ended

    def missing(self) -> list[int]:
        if self.ended is None:
            return []
        return [index for index in range(self.ended) if index not in self.segments]

    def end(self, segments: int) -> bool:
        """Declare the run's segment count; False when it was declared already with the same count."""
        if not 0 <= segments <= MAX_SEGMENTS_PER_RUN:
            raise ValueError(f"a run has 0 to {MAX_SEGMENTS_PER_RUN} segments")
        if self.ended is not None:
            if self.ended != segments:
                raise SegmentConflict(f"run {self.run} was ended with {self.ended} segments, not {segments}")
            return False
        beyond = [index for index in self.segments if index >= segments]
        if beyond:
            raise SegmentConflict(f"run {self.run} already has segment {max(beyond)}, past {segments} segments")
        self.ended = segments
        return True

    def admit(self, index: int, sha256: str) -> bool:
        """May segment `index` with this digest be stored? False for a duplicate (same bytes); raises on conflict."""
        existing = self.segments.get(index)
        if existing is not None:
            if existing.sha256 != sha256:
                raise SegmentConflict(f"segment {index} of run {self.run} is already stored with other bytes")
            return False
        if self.ended is not None and index >= self.ended:
            raise SegmentConflict(f"run {self.run} ended with {self.ended} segments; there is no segment {index}")
        return True


@dataclass(frozen=True, slots=True)
class Gap:
    run: int
    index: int | None  # None: the whole run is unknown (neither its init segment nor its end arrived)


@dataclass(kw_only=True)
class LiveStream:
    """Every run of a recording, and the number of runs the client declared at completion (None before)."""

    runs: dict[int, LiveRun] = field(default_factory=dict)
    declared_runs: int | None = None

    def listed(self) -> list[tuple[LiveRun, list[LiveSegment]]]:
        """What the playlist lists: each run's contiguous segments, stopping after the first run not yet whole."""
        listed = []
        expected = 1
        for number in sorted(self.runs):
            run = self.runs[number]
            if number != expected:
                break  # a run is missing altogether: nothing after it can be listed yet
            count = run.contiguous() if run.ended is None else min(run.contiguous(), run.ended)
            listed.append((run, [run.segments[index] for index in range(count)]))
            if not run.whole:
                break
            expected += 1
        return listed

    def missing(self) -> list[Gap]:
        """What the declared counts say should be here and is not; a declared run never seen counts as its init."""
        gaps = [
            Gap(run.run, index) for run in sorted(self.runs.values(), key=lambda r: r.run) for index in run.missing()
        ]
        if self.declared_runs is not None:
            gaps += [Gap(number, None) for number in range(1, self.declared_runs + 1) if number not in self.runs]
        return gaps

    @property
    def complete(self) -> bool:
        """Every declared run is ended and whole, and there is something to play."""
        if self.declared_runs is None or self.declared_runs < 1:
            return False
        runs = [self.runs.get(number) for number in range(1, self.declared_runs + 1)]
        if any(run is None or not run.whole for run in runs):
            return False
        return any(run.segments for run in self.runs.values())

    def declare(self, runs: int) -> None:
        if not 1 <= runs <= MAX_RUNS:
            raise ValueError(f"a recording has 1 to {MAX_RUNS} runs")
        if self.declared_runs is not None and self.declared_runs != runs:
            raise SegmentConflict(f"the recording was completed with {self.declared_runs} runs, not {runs}")
        beyond = [number for number in self.runs if number > runs]
        if beyond:
            raise SegmentConflict(f"run {max(beyond)} has segments, past {runs} runs")
        self.declared_runs = runs

    def duration_s(self) -> float:
        return sum(s.duration_s for _, segments in self.listed() for s in segments)


def media_playlist(stream: LiveStream, *, ended: bool) -> str:
    """The live rendition's playlist (RFC 8216): an EVENT playlist, with ENDLIST once the recording is complete."""
    listed = stream.listed()
    longest = max((s.duration_s for _, segments in listed for s in segments), default=0.0)
    target = max(LIVE_TARGET_DURATION, math.floor(longest + 0.5))
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-PLAYLIST-TYPE:EVENT",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-DISCONTINUITY-SEQUENCE:0",
    ]
    first = True
    for run, segments in listed:
        if not segments:
            continue
        if not first:
            lines.append("#EXT-X-DISCONTINUITY")
        first = False
        lines.append(f'#EXT-X-MAP:URI="{run_folder(run.run)}/{INIT_FILE}"')
        for segment in segments:
            lines.append(f"#EXTINF:{segment.duration_s:.3f},")
            lines.append(f"{run_folder(run.run)}/{segment.index:05d}.m4s")
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def bandwidth(stream: LiveStream) -> int:
    """Bits per second of what has arrived (a live master playlist must name one); 2 Mb/s before anything has."""
    listed = [s for _, segments in stream.listed() for s in segments]
    seconds = sum(s.duration_s for s in listed)
    if seconds <= 0:
        return 2_000_000
    peak = max((s.size * 8 / s.duration_s for s in listed if s.duration_s >= 0.5), default=0.0)
    return int(max(peak, sum(s.size for s in listed) * 8 / seconds))


def describe(stream: LiveStream) -> tuple[str, int, int]:
    """(codecs, width, height) of the stream, from its first run."""
    runs: Sequence[LiveRun] = [stream.runs[n] for n in sorted(stream.runs)]
    if not runs:
        return "", 0, 0
    return runs[0].codecs, runs[0].width, runs[0].height
