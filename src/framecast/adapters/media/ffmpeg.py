"""The MediaTools port on ffmpeg (for media work) and PyAV (for probing), each run as a child process.

Every run has a timeout and bounded threads, and is killed when its job is cancelled; progress comes from ffmpeg's
`-progress` output. Which ffmpeg: the configured binary, else `ffmpeg` on PATH, else the one the imageio-ffmpeg
wheel ships, so a fresh `pip install` can process video with no system packages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from framecast.adapters.media import commands
from framecast.domain.ladder import Rendition
from framecast.domain.media import AudioStream, MediaInfo, MediaRefused, VideoStream, sniff
from framecast.ports import Progress

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 60.0
LIVE_TIMEOUT_SECONDS = 120.0
STDERR_KEEP = 4096
# Lines of ffmpeg's stderr that mean the input itself is bad: retrying cannot help.
_DATA_ERRORS = (
    "invalid data found",
    "moov atom not found",
    "could not find codec parameters",
    "error opening input",
    "not on whitelist",
)
DAMAGED = "the file could not be read as a video: it is damaged, incomplete, or not a video file"


class MediaToolError(Exception):
    """ffmpeg failed for a reason that may pass (killed, out of disk, out of time); the job is retried."""


def locate_ffmpeg(configured: str | None = None) -> str:
    """The ffmpeg to run: the configured one, else ffmpeg on PATH, else the binary inside imageio-ffmpeg."""
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise FileNotFoundError(f"FRAMECAST_FFMPEG_BINARY {configured!r} is not an executable")
        return found
    on_path = shutil.which("ffmpeg")
    if on_path is not None:
        return on_path
    import imageio_ffmpeg  # type: ignore[import-untyped]

    return str(imageio_ffmpeg.get_ffmpeg_exe())


class FFmpegTools:
    def __init__(self, *, binary: str, threads: int, preset: str = "veryfast", realtime_factor: float = 8.0) -> None:
        """`realtime_factor` bounds every run: a run may take that many times the media's length (at least a
        minute) before it is killed and retried."""
        self.binary = binary
        self._threads = max(1, threads)
        self._preset = preset
        self._factor = realtime_factor

    # -- probing -----------------------------------------------------------------------------------------------------

    async def probe(self, path: Path) -> MediaInfo:
        """What `path` holds; raises MediaRefused for text formats, damaged files and anything not media."""
        with path.open("rb") as f:
            sniff(f.read(512))
        argv = [sys.executable, "-m", "framecast.adapters.media.probe", str(path)]
        code, out, err = await _run(argv, timeout=PROBE_TIMEOUT_SECONDS)
        if code < 0:
            raise MediaToolError(f"the probe was killed by signal {-code}")
        try:
            data = json.loads(out)
        except ValueError as exc:
            raise MediaToolError(f"the probe failed: {err[-300:]!r}") from exc
        if "error" in data:
            log.info("probe refused %s: %s", path.name, data["error"])
            raise MediaRefused(DAMAGED)
        video = data.get("video")
        audio = data.get("audio")
        return MediaInfo(
            format_name=str(data["format_name"]),
            duration_s=data["duration_s"],
            size=(await anyio.Path(path).stat()).st_size,
            video=VideoStream(**video) if video else None,
            audio=AudioStream(**audio) if audio else None,
            still_image=bool(data.get("still_image")),
        )

    # -- media work --------------------------------------------------------------------------------------------------

    async def join(self, parts: Sequence[Path], target: Path, *, duration_s: float, progress: Progress) -> None:
        """Join segments into one file (next to them: the list names them by file name only)."""
        folder = parts[0].parent
        if any(part.parent != folder for part in parts):
            raise ValueError("segments to join must share one folder")
        listing = folder / "segments.ffconcat"
        listing.write_text(commands.concat_list([part.name for part in parts]))
        await self._ffmpeg(
            commands.concat_copy(self.binary, listing, target, threads=self._threads), duration_s, progress
        )

    async def remux_hls(self, source: Path, folder: Path, info: MediaInfo, *, progress: Progress) -> None:
        await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
        await self._ffmpeg(commands.remux_hls(self.binary, source, folder, info, threads=self._threads), info, progress)

    async def encode_hls(
        self,
        source: Path,
        root: Path,
        renditions: Sequence[Rendition],
        info: MediaInfo,
        *,
        screen: bool,
        progress: Progress,
        fast: bool = False,
    ) -> None:
        for rendition in renditions:
            await anyio.Path(root / rendition.name).mkdir(parents=True, exist_ok=True)
        argv = commands.ladder(
            self.binary,
            source,
            root,
            renditions,
            info,
            preset="superfast" if fast else self._preset,
            screen=screen,
            threads=self._threads,
        )
        await self._ffmpeg(argv, info, progress)

    async def poster(self, source: Path, target: Path, info: MediaInfo) -> None:
        duration = info.duration_s or 0.0
        height = min(720, _display_height(info))
        start = min(duration * 0.1, 5.0)
        argv = commands.poster(self.binary, source, target, start=start, height=height, threads=self._threads)
        await self._ffmpeg(argv, 20.0, None)
        written = anyio.Path(target)
        if not await written.exists() or (await written.stat()).st_size == 0:  # only blank frames there: take any
            at = duration * 0.5
            argv = commands.frame_at(self.binary, source, target, at=at, height=height, threads=self._threads)
            await self._ffmpeg(argv, 1.0, None)

    async def preview(self, source: Path, target: Path, info: MediaInfo) -> None:
        duration = info.duration_s or 0.0
        clip = min(0.8, duration)
        count = 1 if duration < 4 else 4
        starts = [duration * (i + 0.5) / count - clip / 2 for i in range(count)]
        argv = commands.preview(
            self.binary,
            source,
            target,
            starts=[max(0.0, s) for s in starts],
            clip=clip,
            width=320,
            threads=self._threads,
        )
        await self._ffmpeg(argv, clip * count, None)

    async def storyboard(
        self,
        source: Path,
        target: Path,
        info: MediaInfo,
        *,
        interval: float,
        tile: tuple[int, int],
        grid: tuple[int, int],
    ) -> None:
        argv = commands.storyboard(
            self.binary,
            source,
            target,
            interval=interval,
            tile_width=tile[0],
            tile_height=tile[1],
            columns=grid[0],
            rows=grid[1],
            threads=self._threads,
        )
        await self._ffmpeg(argv, info, None)

    async def faststart_mp4(self, source: Path, target: Path, *, duration_s: float) -> None:
        await self._ffmpeg(commands.faststart_mp4(self.binary, source, target, threads=self._threads), duration_s, None)

    # -- live WebM (the LiveTranscoder port) ------------------------------------------------------------------------

    async def transcode_live(self, source: Path, target: Path, *, size: tuple[int, int]) -> None:
        """Someone is waiting on this one (a viewer of the live link): it runs at the server's priority, not the
        media work's."""
        argv = commands.live_transcode(self.binary, source, target, size=size, threads=self._threads)
        code, _, err = await _run(argv, timeout=LIVE_TIMEOUT_SECONDS, nice=False)
        if code == 0:
            return
        detail = err.strip().splitlines()[-1] if err.strip() else f"exit status {code}"
        if code > 0:
            log.info("the live transcode refused its input: %s", detail)
            raise MediaRefused(f"the segment could not be decoded ({detail})")
        raise MediaToolError(f"the live transcode failed ({detail})")

    # -- running -----------------------------------------------------------------------------------------------------

    async def _ffmpeg(self, argv: list[str], length: MediaInfo | float, progress: Progress | None) -> None:
        duration = length if isinstance(length, float | int) else (length.duration_s or 0.0)
        timeout = max(60.0, duration * self._factor)
        code, _, err = await _run(argv, timeout=timeout, duration_s=duration, progress=progress)
        if code == 0:
            return
        detail = err.strip().splitlines()[-1] if err.strip() else f"exit status {code}"
        if code > 0 and any(marker in err.lower() for marker in _DATA_ERRORS):
            log.info("ffmpeg refused its input: %s", detail)
            raise MediaRefused(DAMAGED)
        raise MediaToolError(f"ffmpeg failed ({detail})")


def _display_height(info: MediaInfo) -> int:
    if info.video is None:
        return 0
    return info.video.display_size[1]


# Media work yields the CPU to the server answering people: on a busy machine a viewer's page and a recorder's
# segments come before a ladder encode, which only runs slower (an idle CPU is used all the same).
MEDIA_NICENESS = 10


def _die_with_parent() -> None:
    """In the child, before exec: be killed when the worker dies, even by kill -9, so no encode outlives its job
    (ffmpeg ignores the broken progress pipe and would otherwise run to the end as an orphan)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _die_with_parent_yielding() -> None:
    """As _die_with_parent, and step back for the server (MEDIA_NICENESS)."""
    _die_with_parent()
    os.nice(MEDIA_NICENESS)


async def _run(
    argv: Sequence[str],
    *,
    timeout: float,
    duration_s: float = 0.0,
    progress: Progress | None = None,
    nice: bool = True,
) -> tuple[int, str, str]:
    """Run `argv`, feeding `progress` from its `-progress` lines; kill it on timeout or cancellation."""
    prepare = _die_with_parent_yielding if nice else _die_with_parent
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=prepare if sys.platform == "linux" else None,
    )
    out: list[str] = []
    err = bytearray()

    async def read_out() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").strip()
            if progress is not None and duration_s > 0 and line.startswith("out_time_us="):
                value = line.partition("=")[2]
                if value.isdigit():
                    progress(min(99.9, int(value) / 1e6 / duration_s * 100))
            elif not line.startswith(("out_time", "frame=", "fps=", "bitrate=", "total_size", "speed=", "dup_")):
                out.append(line)

    async def read_err() -> None:
        assert process.stderr is not None
        while chunk := await process.stderr.read(65536):
            err.extend(chunk)
            del err[:-STDERR_KEEP]

    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(read_out(), read_err())
            code = await process.wait()
    except TimeoutError:
        raise MediaToolError(f"{Path(argv[0]).name} took longer than {math.ceil(timeout)} s and was stopped") from None
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    return code, "\n".join(out), err.decode(errors="replace")
