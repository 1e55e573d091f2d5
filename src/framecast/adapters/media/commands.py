"""ffmpeg command lines, built as plain lists so each can be read, tested and benchmarked on its own.

Every input goes through `input_args`: the `file,pipe` protocol whitelist and the demuxer whitelist stop a
hostile upload (an HLS playlist or concat list pointing at /etc/passwd, say) from making ffmpeg open anything but
the file it was given. Outputs are CMAF: fragmented MP4 HLS with an init segment, an IDR every 2 s and 4 s segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from framecast.domain.hls import h264_level
from framecast.domain.ladder import Rendition
from framecast.domain.media import ACCEPTED_DEMUXERS, INIT_NAME, PLAYLIST_NAME, SEGMENT_PATTERN, MediaInfo

SEGMENT_SECONDS = 4
KEYFRAME_SECONDS = 2
MAX_OUTPUT_FPS = 60


def base_args(binary: str) -> list[str]:
    """What every run starts with: quiet, no stdin, machine-readable progress on stdout."""
    return [binary, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-progress", "pipe:1", "-y"]


def input_args(path: Path, *, threads: int, demuxers: Sequence[str] = ACCEPTED_DEMUXERS) -> list[str]:
    return [
        "-threads",
        str(threads),
        "-protocol_whitelist",
        "file,pipe",
        "-format_whitelist",
        ",".join(demuxers),
        "-i",
        str(path),
    ]


def hls_output_args(folder: Path) -> list[str]:
    """A VOD CMAF HLS rendition in `folder`: index.m3u8, init.mp4 and numbered .m4s segments."""
    return [
        "-f",
        "hls",
        "-hls_time",
        str(SEGMENT_SECONDS),
        "-hls_playlist_type",
        "vod",
        "-hls_segment_type",
        "fmp4",
        "-hls_fmp4_init_filename",
        INIT_NAME,
        "-hls_flags",
        "independent_segments",
        "-hls_segment_filename",
        str(folder / SEGMENT_PATTERN),
        str(folder / PLAYLIST_NAME),
    ]


def output_frame_rate(info: MediaInfo) -> int:
    """A constant output rate near the source's (variable-rate sources included), at most 60 fps."""
    rate = info.video.frame_rate if info.video else 30.0
    return max(1, min(MAX_OUTPUT_FPS, round(rate)))


def concat_list(names: Sequence[str]) -> str:
    """The ffconcat list framecast writes itself for a recording's segments (plain names, in one folder)."""
    lines = ["ffconcat version 1.0"]
    for name in names:
        if "/" in name or "'" in name or "\n" in name or "\r" in name:
            raise ValueError(f"not a plain file name: {name!r}")
        lines.append(f"file '{name}'")
    return "\n".join(lines) + "\n"


# The first video stream (cover art excluded) and the first audio stream, each if present, unchanged.
COPY_FIRST_STREAMS = ("-map", "0:V:0?", "-map", "0:a:0?", "-c", "copy")


def concat_copy(binary: str, listing: Path, target: Path, *, threads: int) -> list[str]:
    """Join same-format segments into one Matroska file without re-encoding; each segment's timestamps follow on
    from the previous one's end, so pauses leave no gap. Only framecast's own list is ever read with `concat`."""
    return [
        *base_args(binary),
        *input_args(listing, threads=threads, demuxers=("concat", *ACCEPTED_DEMUXERS)),
        *COPY_FIRST_STREAMS,
        "-f",
        "matroska",
        str(target),
    ]


def remux_hls(binary: str, source: Path, folder: Path, info: MediaInfo, *, threads: int) -> list[str]:
    """The first playable rendition with no encode: the source's own streams, repackaged as CMAF HLS."""
    # Apple's players want HEVC tagged hvc1 (parameter sets in the init segment), not ffmpeg's default hev1.
    tag = ["-tag:v", "hvc1"] if info.video is not None and info.video.codec == "hevc" else []
    return [
        *base_args(binary),
        *input_args(source, threads=threads),
        *COPY_FIRST_STREAMS,
        *tag,
        *hls_output_args(folder),
    ]


def x264_args(rendition: Rendition, *, fps: int, preset: str, screen: bool, threads: int) -> list[str]:
    gop = fps * KEYFRAME_SECONDS
    # The level the master playlist's CODECS names, so the label and the stream agree.
    level, _ = h264_level(width=rendition.width, height=rendition.height, frame_rate=fps)
    args = [
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-profile:v",
        "high",
        "-level:v",
        level,
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        f"{rendition.video_kbps}k",
        "-maxrate",
        f"{int(rendition.video_kbps * 1.5)}k",
        "-bufsize",
        f"{rendition.video_kbps * 2}k",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
        "-threads",
        str(threads),
    ]
    # Keep the timeline where the source has it: by default the muxer shifts everything later by the B-frame
    # delay (0.2 s at 10 fps), and every rendition would end that much after the source.
    args += ["-avoid_negative_ts", "disabled"]
    if screen:
        # Screen content is sharp text on flat colour: keep edges (less deblocking, stronger adaptive quantisation).
        args += ["-tune", "stillimage"]
    return args


def aac_args(rendition: Rendition) -> list[str]:
    return ["-c:a", "aac", "-b:a", f"{rendition.audio_kbps}k", "-ac", "2"]


def ladder(
    binary: str,
    source: Path,
    root: Path,
    renditions: Sequence[Rendition],
    info: MediaInfo,
    *,
    preset: str,
    screen: bool,
    threads: int,
) -> list[str]:
    """Every rung from one decode: the video is decoded once, converted to a constant rate, split and scaled per
    rung, and each rung muxed into its own HLS folder (`root/<name>/`). Audio-only sources get one AAC rendition."""
    args = [*base_args(binary), *input_args(source, threads=threads)]
    # Every rendition ends where the source does: a constant-rate conversion may otherwise hold the last frame of
    # a variable-rate source past the end.
    length = ["-t", f"{info.duration_s:.3f}"] if info.duration_s else []
    if info.video is None:
        audio_only = renditions[0]
        return [*args, "-map", "0:a:0", *aac_args(audio_only), *length, *hls_output_args(root / audio_only.name)]
    fps = output_frame_rate(info)
    labels = [f"v{i}" for i in range(len(renditions))]
    chains = [f"[0:V:0]fps={fps},split={len(renditions)}" + "".join(f"[s{i}]" for i in range(len(renditions)))]
    for i, rendition in enumerate(renditions):
        chains.append(f"[s{i}]scale={rendition.width}:{rendition.height}:flags=bicubic,setsar=1[{labels[i]}]")
    args += ["-filter_complex", ";".join(chains)]
    per_rung_threads = max(1, threads // len(renditions))
    for label, rendition in zip(labels, renditions, strict=True):
        args += ["-map", f"[{label}]"]
        if info.audio is not None:
            args += ["-map", "0:a:0", *aac_args(rendition)]
        args += [
            *x264_args(rendition, fps=fps, preset=preset, screen=screen, threads=per_rung_threads),
            *length,
            *hls_output_args(root / rendition.name),
        ]
    return args


def poster(binary: str, source: Path, target: Path, *, start: float, height: int, threads: int) -> list[str]:
    """A representative frame from a window after `start`, skipping black and blank frames (frames whose luma
    entropy is near zero); the caller falls back to `frame_at` when the whole window is blank."""
    picture = (
        "fps=2,entropy,"
        "metadata=mode=select:key=lavfi.entropy.normalized_entropy.normal.Y:value=0.25:function=greater,"
        f"thumbnail=8,scale=-2:{height},format=yuvj420p"
    )
    return [
        *base_args(binary),
        "-ss",
        f"{start:.3f}",
        "-t",
        "20",
        *input_args(source, threads=threads),
        "-vf",
        picture,
        "-frames:v",
        "1",
        "-q:v",
        "3",
        str(target),
    ]


def frame_at(binary: str, source: Path, target: Path, *, at: float, height: int, threads: int) -> list[str]:
    return [
        *base_args(binary),
        "-ss",
        f"{at:.3f}",
        *input_args(source, threads=threads),
        "-vf",
        f"scale=-2:{height},format=yuvj420p",
        "-frames:v",
        "1",
        "-q:v",
        "3",
        str(target),
    ]


def preview(
    binary: str, source: Path, target: Path, *, starts: Sequence[float], clip: float, width: int, threads: int
) -> list[str]:
    """A short looping animated WebP for hover in the library: `clip` seconds from each of `starts`, joined. Each
    clip is its own seeking input, so a two-hour recording costs no more than a two-minute one."""
    args = [*base_args(binary)]
    for start in starts:
        args += ["-ss", f"{start:.3f}", "-t", f"{clip:.3f}", *input_args(source, threads=threads)]
    chains = [f"[{i}:V:0]fps=10,scale={width}:-2,setsar=1[c{i}]" for i in range(len(starts))]
    joined = "".join(f"[c{i}]" for i in range(len(starts)))
    chains.append(f"{joined}concat=n={len(starts)}:v=1:a=0[out]")
    return [
        *args,
        "-filter_complex",
        ";".join(chains),
        "-map",
        "[out]",
        "-an",
        "-c:v",
        "libwebp_anim",
        "-lossless",
        "0",
        "-q:v",
        "60",
        "-loop",
        "0",
        str(target),
    ]


def storyboard(
    binary: str,
    source: Path,
    target: Path,
    *,
    interval: float,
    tile_width: int,
    tile_height: int,
    columns: int,
    rows: int,
    threads: int,
) -> list[str]:
    """One sprite of thumbnails, one every `interval` seconds, `columns` across. Only keyframes are decoded: a
    scrub preview needs the neighbourhood, not the exact frame, and this keeps long recordings cheap."""
    return [
        *base_args(binary),
        "-skip_frame",
        "nokey",
        *input_args(source, threads=threads),
        "-vf",
        f"fps=1/{interval:.3f},scale={tile_width}:{tile_height},setsar=1,tile={columns}x{rows},format=yuvj420p",
        "-frames:v",
        "1",
        "-q:v",
        "5",
        str(target),
    ]


def faststart_mp4(binary: str, source: Path, target: Path, *, threads: int) -> list[str]:
    """A progressive MP4 (index at the front, so it plays while downloading) from a fragmented one, no encode."""
    return [
        *base_args(binary),
        *input_args(source, threads=threads),
        "-map",
        "0",
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(target),
    ]


# A live WebM segment's timestamps are kept (-copyts), so consecutive segments, transcoded apart, follow on from
# each other; shifted by this much because Opus starts a few milliseconds before zero (its codec delay), and an
# MP4 fragment cannot start before zero.
LIVE_OFFSET_S = 0.1
# Live segments are encoded on the request path while the person records: fast, no B-frames (so decode order is
# presentation order and every segment starts its own GOP), and quality good enough to build the ladder from.
LIVE_PROFILE = ("-profile:v", "high", "-level:v", "4.1", "-pix_fmt", "yuv420p")


def live_transcode(binary: str, source: Path, target: Path, *, size: tuple[int, int], threads: int) -> list[str]:
    """One WebM live segment (header + clusters) as fragmented MP4: H.264 at `size` (fitted and padded, so a
    resized window keeps one init segment), the audio copied, the settings fixed so every segment of a run
    produces the same init segment."""
    width, height = size
    picture = (
        [
            "-map",
            "0:v:0",
            "-vf",
            f"scale={width}:{height}:force_original_aspect_ratio=decrease,pad={width}:{height}:-1:-1,setsar=1",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
            "-crf",
            "21",
            "-bf",
            "0",
            "-g",
            "1000",
            "-sc_threshold",
            "0",
            *LIVE_PROFILE,
            # Timestamps pass through untouched, at a fine time base; x264 is told a fixed rate rather than the one
            # ffmpeg guesses from each segment's frames (MediaRecorder's are irregular), which would otherwise end
            # up in the SPS and make each segment's init segment different.
            "-fps_mode",
            "passthrough",
            "-enc_time_base:v",
            "1/90000",
            "-x264-params",
            "fps=30",
            "-video_track_timescale",
            "90000",
        ]
        if width and height
        else []
    )
    return [
        *base_args(binary),
        "-copyts",
        *input_args(source, threads=threads, demuxers=("matroska,webm",)),
        *picture,
        "-map",
        "0:a:0?",
        "-c:a",
        "copy",
        "-map_metadata",
        "-1",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-output_ts_offset",
        str(LIVE_OFFSET_S),
        "-use_editlist",
        "1",
        "-movie_timescale",
        "1000",
        "-movflags",
        "+empty_moov+default_base_moof+frag_keyframe+frag_discont+skip_trailer",
        "-f",
        "mp4",
        str(target),
    ]
