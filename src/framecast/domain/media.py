"""What an upload holds and whether framecast will process it: probe results, the acceptance rules, the blob layout.

The rules here are pure: the media adapter probes a file and hands over a MediaInfo; `check` either returns it or
raises MediaRefused with a sentence for the person who uploaded it. Nothing here runs ffmpeg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from framecast.domain.errors import DomainError

# Demuxers ffmpeg may use on an upload (`format_whitelist`): real audio/video containers only. Left out on purpose:
# hls and concat (they follow references to other files), image2 and the image pipes (a picture is not a video),
# and every device, network and text format.
ACCEPTED_DEMUXERS: tuple[str, ...] = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "avi",
    "mpegts",
    "ogg",
    "flv",
    "mp3",
    "wav",
    "flac",
    "aac",
)

MAX_DURATION_S = 12 * 3600.0
MAX_SIDE = 8192
MIN_SIDE = 16
MAX_FRAME_RATE = 240.0

# Codecs that go into CMAF fMP4 HLS unchanged, so the first playable rendition is a remux (no encode).
REMUXABLE_VIDEO = frozenset({"h264", "hevc", "vp9", "av1"})
REMUXABLE_AUDIO = frozenset({"aac", "opus", "mp3", "ac3", "eac3", "flac"})


class MediaRefused(DomainError):
    """The upload is not something framecast can turn into a video; the message says why, for a person."""

    code = "media_refused"


@dataclass(frozen=True, slots=True)
class VideoStream:
    codec: str
    width: int
    height: int
    frame_rate: float
    pixel_format: str = ""
    rotation: int = 0

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown: a phone video stored landscape with a 90-degree rotation plays portrait."""
        if self.rotation % 180:
            return self.height, self.width
        return self.width, self.height


@dataclass(frozen=True, slots=True)
class AudioStream:
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What a probe found in one file. `duration_s` is None when the container does not say (MediaRecorder WebM)."""

    format_name: str
    duration_s: float | None
    size: int
    video: VideoStream | None = None
    audio: AudioStream | None = None
    still_image: bool = False

    @property
    def has_video(self) -> bool:
        return self.video is not None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None


def check(info: MediaInfo) -> MediaInfo:
    """Return `info` if framecast can make a video (or audio recording) of it, else raise MediaRefused."""
    if not any(_matches(info.format_name, accepted) for accepted in ACCEPTED_DEMUXERS):
        raise MediaRefused(f"this file is a {info.format_name or 'unknown'} file, not a video or audio recording")
    if info.video is None and info.audio is None:
        raise MediaRefused("the file holds no video or audio")
    if info.still_image:
        raise MediaRefused("the file is a picture, not a video")
    if info.duration_s is None or not math.isfinite(info.duration_s) or info.duration_s <= 0:
        raise MediaRefused("the file has no playable length (it is empty or cut off at the start)")
    if info.duration_s > MAX_DURATION_S:
        hours = math.floor(info.duration_s / 360) / 10  # rounded down: 12.04 h reads 12.0, not "12, the limit"
        raise MediaRefused(f"the file says it lasts {hours:.1f} hours; the limit is 12 hours")
    video = info.video
    if video is not None:
        if not (MIN_SIDE <= video.width <= MAX_SIDE and MIN_SIDE <= video.height <= MAX_SIDE):
            raise MediaRefused(
                f"the video is {video.width}x{video.height} pixels; each side must be between {MIN_SIDE} and {MAX_SIDE}"
            )
        if not 0 < video.frame_rate <= MAX_FRAME_RATE:
            raise MediaRefused(f"the video's frame rate ({video.frame_rate:g} fps) is not one a player can show")
    return info


def _matches(format_name: str, accepted: str) -> bool:
    """ffmpeg names demuxers with comma lists ("mov,mp4,m4a,..."): any shared name is a match."""
    return bool(set(format_name.split(",")) & set(accepted.split(",")))


def sniff(header: bytes) -> None:
    """Refuse text formats that make ffmpeg open other files, before ffmpeg sees them (defence in depth beside the
    demuxer whitelist): HLS playlists, ffconcat lists, SDP and similar text."""
    head = header.lstrip(b"\xef\xbb\xbf \t\r\n")[:64].lower()
    if head.startswith(b"#extm3u"):
        raise MediaRefused("the file is a playlist (M3U/HLS), not a video; upload the video itself")
    if head.startswith((b"ffconcat", b"file ", b"file'", b'file"')):
        raise MediaRefused("the file is a concat list, not a video; upload the video itself")
    if head.startswith((b"v=0", b"<?xml", b"<mpd", b"[playlist]")):
        raise MediaRefused("the file is a text description of media, not a video; upload the video itself")


def can_remux(info: MediaInfo) -> bool:
    """True when the first playable rendition can be the upload's own streams in fMP4 HLS, with no encode."""
    if info.video is not None and info.video.codec not in REMUXABLE_VIDEO:
        return False
    if info.video is not None and info.video.pixel_format not in ("", "yuv420p", "yuvj420p"):
        return False  # 4:4:4 or 10-bit H.264 plays in few browsers
    return info.audio is None or info.audio.codec in REMUXABLE_AUDIO


# -- blob layout ----------------------------------------------------------------------------------------------------
#
# recordings/{id}/raw/...                  the upload, as it arrived
# recordings/{id}/work/{generation}/...    intermediate files of one processing run (the assembled source)
# recordings/{id}/media/{generation}/...   what viewers fetch: master.m3u8, one folder per rendition, pictures,
#                                          download.mp4. A reprocess writes a new generation, so cached copies of
#                                          the old one never mix with the new.

MASTER = "master.m3u8"
PLAYLIST_NAME = "index.m3u8"
INIT_NAME = "init.mp4"
SEGMENT_PATTERN = "seg_%05d.m4s"  # numbered from 0
FIRST_SEGMENT = SEGMENT_PATTERN % 0
POSTER = "poster.jpg"
PREVIEW = "preview.webp"
STORYBOARD = "storyboard.jpg"
STORYBOARD_VTT = "storyboard.vtt"
DOWNLOAD = "download.mp4"
PLAYABLE_FOLDER = "play"


def recording_prefix(recording_id: str) -> str:
    return f"recordings/{recording_id}/"


def media_prefix(recording_id: str, generation: str) -> str:
    return f"recordings/{recording_id}/media/{generation}/"


def work_prefix(recording_id: str, generation: str) -> str:
    return f"recordings/{recording_id}/work/{generation}/"


@dataclass(kw_only=True)
class MediaSet:
    """What a recording's current generation holds, as stored on the recording and shown to clients."""

    generation: str
    duration_ms: int
    width: int = 0
    height: int = 0
    frame_rate: float = 0.0
    has_audio: bool = False
    source_key: str = ""
    renditions: list[str] = field(default_factory=list)
    ladder_complete: bool = False
    pictures: bool = False
    download: bool = False
    # A live recording's media (docs/live.md): `live` while its playlist still grows; the runs the client declared.
    live: bool = False
    declared_runs: int = 0

    @property
    def has_video(self) -> bool:
        return self.width > 0 and self.height > 0

    @property
    def from_live(self) -> bool:
        """The first playable rendition is a live upload's segments (docs/live.md), not a remux."""
        return self.live or self.declared_runs > 0

    def to_dict(self) -> dict[str, object]:
        return {
            "generation": self.generation,
            "duration_ms": self.duration_ms,
            "width": self.width,
            "height": self.height,
            "frame_rate": self.frame_rate,
            "has_audio": self.has_audio,
            "source_key": self.source_key,
            "renditions": list(self.renditions),
            "ladder_complete": self.ladder_complete,
            "pictures": self.pictures,
            "download": self.download,
            "live": self.live,
            "declared_runs": self.declared_runs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> MediaSet | None:
        if not data.get("generation"):
            return None
        renditions = data.get("renditions") or []
        return cls(
            generation=str(data["generation"]),
            duration_ms=round(float(str(data.get("duration_ms") or 0))),
            width=round(float(str(data.get("width") or 0))),
            height=round(float(str(data.get("height") or 0))),
            frame_rate=float(str(data.get("frame_rate") or 0.0)),
            has_audio=bool(data.get("has_audio")),
            source_key=str(data.get("source_key") or ""),
            renditions=[str(r) for r in renditions] if isinstance(renditions, list) else [],
            ladder_complete=bool(data.get("ladder_complete")),
            pictures=bool(data.get("pictures")),
            download=bool(data.get("download")),
            live=bool(data.get("live")),
            declared_runs=int(str(data.get("declared_runs") or 0)),
        )
