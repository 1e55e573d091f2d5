"""Instant share: stop -> a complete, playable link whatever the length, and capture -> watchable while recording.

live, part 1 (stop -> playable): a 640x360 30 fps clip (the agent benchmark's, at that size; made once and cached
in bench/results/clips/) of 10 s, 5 min and 30 min (10 s and 1 min with --quick) is replayed by `framecast
record --source CLIP --speed 0 --no-input` against one `framecast serve` (embedded default). Stop is the moment the
agent's capture ffmpeg exits (psutil, 10 ms polls), as in the agent benchmark. Complete is the first poll (every
20 ms, one GET of the media playlist, whose address is learnt before stop) at which the share link's media playlist
ends with #EXT-X-ENDLIST. Then a fresh headless Chromium page opens the share link and clicks Play: playable is its
first decoded frame (requestVideoFrameCallback), so stop -> playable includes loading the page, its script and
media with an empty cache. The page is a new browser context
each run, made with its blank tab before stop, as a viewer's browser is already running when the link comes: making
a context costs Playwright 0.2-0.3 s here, which is the harness's, not the link's. One 10 s warm-up run comes first,
not recorded, so the browser has started its renderer. Every URI the final playlist names (init segments included)
is then fetched and must answer 200 (not timed). Chromium runs without its omnibox popups (bench_web.FLAGS): hidden
in headless mode, they spin at half a core while any page is open. The named baseline, in the same run: the floor
of a design that starts work at stop, a raw `ffmpeg -c copy -f hls` remux of the same clip from local disk (no
upload, no transcode), timed from its start to its exit.

live, part 2 (live latency): the 5-minute clip (1 minute with --quick) replayed at real time (`--speed 1
--duration 60`, 20 s with --quick) while a Chromium viewer watches the share link from the moment it has media.
Segment latency: for each segment, when it first appears in the live playlist (polled every 100 ms) minus when its
last frame was captured (the capture ffmpeg's start, from psutil, plus the segment's end in media time; the start
is read before ffmpeg has opened its input, so this overstates latency by ffmpeg's start-up). Viewer latency, sampled
every second once playing: wall clock minus (capture start + the video's currentTime). The named baseline: ffmpeg's
own HLS muxer writing an EVENT playlist of 2 s segments to local disk from the same clip at real time with the
agent's encoder settings, its segment latency measured the same way (the floor of any 2-second-segment live HLS).

Targets (from the issue): stop -> playable p95 < 1 s for every length; live latency < 10 s.

    python -m bench live [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs without the types-psutil package
from playwright.async_api import Browser, Page, async_playwright

from bench.bench_agent import agent_env, alive, forget, is_capture, newest_recording, reaped
from bench.bench_agent import cached_clip as agent_clip
from bench.bench_web import CHROMIUM, FLAGS, VIEWPORT, WATCHER, require_browser
from bench.runner import ServerProcess, Table, framecast_server, percentile
from framecast.agent.commands import locate_ffmpeg

WIDTH, HEIGHT = 640, 360
LENGTHS = {"10 s": (10, 5), "5 min": (300, 3), "30 min": (1800, 2)}  # label: (seconds, runs)
QUICK_LENGTHS = {"10 s": (10, 3), "1 min": (60, 2)}
STOP_TARGET_SECONDS = 1.0
LIVE_TARGET_SECONDS = 10.0
POLL_SECONDS = 0.02
PLAYLIST_POLL_SECONDS = 0.1
COMPLETE_TIMEOUT_SECONDS = 60.0  # stop -> ENDLIST, at most
FRAME_TIMEOUT_MS = 15_000


async def cached_clip(ffmpeg: str, seconds: int) -> Path:
    return await agent_clip(ffmpeg, seconds, width=WIDTH, height=HEIGHT)


def uris(playlist: str) -> list[str]:
    named = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    maps = [line.split('URI="', 1)[1].rstrip('"') for line in playlist.splitlines() if line.startswith("#EXT-X-MAP")]
    return maps + named


def ends(playlist: str) -> list[float]:
    """Each listed segment's end in media time (the sum of the #EXTINF durations up to it)."""
    total, out = 0.0, []
    for line in playlist.splitlines():
        if line.startswith("#EXTINF:"):
            total += float(line[len("#EXTINF:") :].split(",")[0])
            out.append(total)
    return out


class Agent:
    """`framecast record` as a child process, and its capture ffmpeg once it has one."""

    def __init__(self, server: ServerProcess, args: list[str], home: Path) -> None:
        self.server, self.args, self.home = server, args, home
        self.capture: psutil.Process | None = None

    async def __aenter__(self) -> Agent:
        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home / "agent.log").open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "framecast", "record", *self.args,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=agent_env(self.server, self.home),
        )  # fmt: skip
        log.close()
        self.exited = asyncio.create_task(reaped(self.process))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not self.exited.done():
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(BaseException):
            await self.exited

    async def capture_started(self) -> float:
        """The capture ffmpeg's start (seconds since 1970), waiting for it to exist."""
        agent = psutil.Process(self.process.pid)
        while self.capture is None:
            if self.exited.done():
                raise RuntimeError(f"the agent exited before capturing; see {self.home / 'agent.log'}")
            with contextlib.suppress(psutil.NoSuchProcess):
                self.capture = next((c for c in agent.children() if is_capture(c)), None)
            await asyncio.sleep(POLL_SECONDS / 2)
        return float(self.capture.create_time())

    async def capture_ended(self) -> float:
        await self.capture_started()
        while alive(self.capture):  # noqa: ASYNC110 (polled: another process)
            await asyncio.sleep(POLL_SECONDS / 2)
        return time.perf_counter()


async def media_playlist(http: httpx.AsyncClient, recording_id: str) -> tuple[str, str] | None:
    """(url, text) of the recording's first rendition playlist, once it has media."""
    body = (await http.get(f"/api/v1/recordings/{recording_id}")).json()
    if body["status"] == "FAILED":
        raise RuntimeError(f"recording {recording_id} failed: {body['failure_reason']}")
    master_url = body["playback"]["hls_url"]
    if not master_url:
        return None
    master = await http.get(master_url)
    uri = next(line for line in master.text.splitlines() if line and not line.startswith("#"))
    url = master_url.rsplit("/", 1)[0] + "/" + uri
    return url, (await http.get(url)).text


@contextlib.asynccontextmanager
async def fresh_page(browser: Browser) -> AsyncIterator[Page]:
    """A new browser context (empty cache, no cookies) with one blank page, watching for the first frame."""
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]  # a ViewportSize TypedDict
    try:
        await context.add_init_script(WATCHER)
        yield await context.new_page()
    finally:
        await context.close()


async def first_frame(page: Page, url: str) -> float:
    """Open `url` in `page`, click Play from the page, return perf_counter at the first decoded frame."""
    await page.goto(url, wait_until="commit")
    await page.wait_for_function("window.__benchMarks.firstFrame !== null", timeout=FRAME_TIMEOUT_MS, polling=5)
    return time.perf_counter()


# -- part 1: stop -> playable ----------------------------------------------------------------------------------------


@dataclass
class StopRun:
    length: str
    complete: float  # stop -> ENDLIST
    playable: float  # stop -> first frame in a fresh page
    segments: int


async def stop_run(server: ServerProcess, browser: Browser, clip: Path, length: str, home: Path) -> StopRun:
    args = ["--source", str(clip), "--speed", "0", "--no-input", "--title", f"bench {length}"]
    auth = {"Authorization": f"Bearer {server.token}"}
    async with (
        Agent(server, args, home) as agent,
        httpx.AsyncClient(base_url=server.url, headers=auth, timeout=60) as http,
        fresh_page(browser) as page,
    ):
        ended = asyncio.create_task(agent.capture_ended())
        await agent.capture_started()  # the recording exists: the agent creates it before capturing
        recording_id = await newest_recording(http)
        share_url = (await http.get(f"/api/v1/recordings/{recording_id}")).json()["share_url"]
        # The media playlist's address is learnt while capturing where there is time (one request a poll after stop,
        # not three); it stays the same when the recording completes.
        found = None
        while found is None:
            found = await media_playlist(http, recording_id)
            await asyncio.wait([ended], timeout=POLL_SECONDS)
        stopped = await ended
        url, playlist = found
        async with asyncio.timeout(COMPLETE_TIMEOUT_SECONDS):
            while not playlist.rstrip().endswith("#EXT-X-ENDLIST"):
                await asyncio.sleep(POLL_SECONDS)
                answer = await http.get(url)
                answer.raise_for_status()
                playlist = answer.text
        complete = time.perf_counter()
        playable = await first_frame(page, share_url)
        base = url.rsplit("/", 1)[0]
        for uri in uris(playlist):  # every segment is there (not timed)
            (await http.head(f"{base}/{uri}")).raise_for_status()
        _, code = await agent.exited
        if code != 0:
            raise RuntimeError(f"the agent exited {code}; see {home / 'agent.log'}")
        await forget(http, server, recording_id)
    return StopRun(length, complete - stopped, playable - stopped, len(ends(playlist)))


async def remux_seconds(ffmpeg: str, clip: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        argv = [ffmpeg, "-v", "error", "-nostdin", "-i", str(clip), "-c", "copy", "-f", "hls", "-hls_time", "2"]
        argv += ["-hls_segment_type", "fmp4", "-hls_playlist_type", "vod", str(Path(tmp) / "index.m3u8")]
        started = time.perf_counter()
        await asyncio.to_thread(subprocess.run, argv, check=True)
        return time.perf_counter() - started


def stop_table(runs: list[StopRun], baseline: dict[str, list[float]]) -> Table:
    columns = ["length", "runs", "segments", "stop -> ENDLIST p50", "p95", "stop -> first frame p50", "p95", "max"]
    table = Table("live: stop -> complete, playable link (s)", [*columns, "baseline: ffmpeg remux p50"])
    worst = 0.0
    for length in dict.fromkeys(run.length for run in runs):
        mine = [run for run in runs if run.length == length]
        complete, playable = [r.complete for r in mine], [r.playable for r in mine]
        worst = max(worst, percentile(playable, 95))
        table.add(
            length, str(len(mine)), str(mine[0].segments),
            f"{percentile(complete, 50):.2f}", f"{percentile(complete, 95):.2f}",
            f"{percentile(playable, 50):.2f}", f"{percentile(playable, 95):.2f}", f"{max(playable):.2f}",
            f"{percentile(baseline[length], 50):.2f}",
        )  # fmt: skip
    met = "met" if worst < STOP_TARGET_SECONDS else "MISSED"
    table.notes.append(f"Target stop -> playable p95 < {STOP_TARGET_SECONDS:.0f} s at every length: {met}.")
    return table


# -- part 2: live latency --------------------------------------------------------------------------------------------


async def segment_latencies(read: Any, started: float, until: asyncio.Task[Any]) -> list[float]:
    """Poll a live playlist (read() -> text or None) until `until` is done; each new segment's listing latency."""
    seen, latencies = 0, []
    while not until.done():
        text = await read()
        if text:
            listed = ends(text)
            now = time.time()
            latencies += [now - (started + end) for end in listed[seen:]]
            seen = max(seen, len(listed))
        await asyncio.sleep(PLAYLIST_POLL_SECONDS)
    return latencies


async def framecast_latency(server: ServerProcess, browser: Browser, clip: Path, seconds: int, home: Path) -> Any:
    args = ["--source", str(clip), "--speed", "1", "--duration", str(seconds), "--no-input", "--title", "bench live"]
    auth = {"Authorization": f"Bearer {server.token}"}
    async with (
        Agent(server, args, home) as agent,
        httpx.AsyncClient(base_url=server.url, headers=auth, timeout=60) as http,
    ):
        started = await agent.capture_started()
        recording_id = await newest_recording(http)
        ended = asyncio.create_task(agent.capture_ended())

        async def read() -> str | None:
            found = await media_playlist(http, recording_id)
            return found[1] if found else None

        segments = asyncio.create_task(segment_latencies(read, started, ended))
        while await media_playlist(http, recording_id) is None:  # noqa: ASYNC110 (polled: the server)
            await asyncio.sleep(PLAYLIST_POLL_SECONDS)
        share_url = (await http.get(f"/api/v1/recordings/{recording_id}")).json()["share_url"]
        viewer: list[float] = []
        async with fresh_page(browser) as page:
            await first_frame(page, share_url)
            while not ended.done():
                current = await page.evaluate("document.querySelector('video').currentTime")
                viewer.append(time.time() - (started + float(current)))
                await asyncio.sleep(1.0)
        latencies = await segments
        await agent.exited
        await forget(http, server, recording_id)
    return latencies, viewer


async def ffmpeg_latency(ffmpeg: str, clip: Path, seconds: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        playlist = Path(tmp) / "index.m3u8"
        argv = [ffmpeg, "-v", "error", "-nostdin", "-re", "-i", str(clip), "-t", str(seconds)]
        argv += ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "60", "-keyint_min", "60"]
        argv += ["-sc_threshold", "0", "-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "event"]
        argv += ["-hls_segment_type", "fmp4", str(playlist)]
        process = await asyncio.create_subprocess_exec(*argv)
        started = time.time()
        done = asyncio.create_task(process.wait())

        async def read() -> str | None:
            return playlist.read_text() if playlist.exists() else None

        return await segment_latencies(read, started, done)


def latency_table(framecast: tuple[list[float], list[float]], baseline: list[float], seconds: int) -> Table:
    table = Table(f"live: capture -> watchable while recording, {seconds} s at real time (s)", [
        "measure", "samples", "p50", "p95", "max",
    ])  # fmt: skip
    segments, viewer = framecast
    rows = {
        "framecast: segment captured -> in the live playlist": segments,
        "framecast: viewer's picture behind the capture (Chromium)": viewer,
        "baseline: ffmpeg HLS muxer on local disk, segment -> playlist": baseline,
    }
    for label, values in rows.items():
        table.add(label, str(len(values)), *(f"{v:.2f}" for v in (percentile(values, 50), percentile(values, 95))),
                  f"{max(values):.2f}")  # fmt: skip
    met = "met" if max(viewer) < LIVE_TARGET_SECONDS else "MISSED"
    table.notes.append(f"Target live latency < {LIVE_TARGET_SECONDS:.0f} s: {met} (viewer worst {max(viewer):.2f} s).")
    return table


async def live(quick: bool) -> list[Table]:
    require_browser()
    ffmpeg = locate_ffmpeg(None)
    lengths = QUICK_LENGTHS if quick else LENGTHS
    live_seconds = 20 if quick else 60
    runs: list[StopRun] = []
    baseline: dict[str, list[float]] = {}
    with framecast_server() as server, tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
            try:
                # A warm-up run, not recorded: the browser's first page pays for starting its renderer and the
                # server's for its first templates, which no viewer of a running server meets.
                await stop_run(server, browser, await cached_clip(ffmpeg, 10), "warm-up", Path(tmp) / "warm-up")
                for length, (seconds, count) in lengths.items():
                    clip = await cached_clip(ffmpeg, seconds)
                    for index in range(count):
                        home = Path(tmp) / f"{seconds}-{index}"
                        runs.append(await stop_run(server, browser, clip, length, home))
                        baseline.setdefault(length, []).append(await remux_seconds(ffmpeg, clip))
                clip = await cached_clip(ffmpeg, max(seconds for seconds, _ in lengths.values()))
                measured = await framecast_latency(server, browser, clip, live_seconds, Path(tmp) / "live")
                floor = await ffmpeg_latency(ffmpeg, clip, live_seconds)
            finally:
                await browser.close()
    return [stop_table(runs, baseline), latency_table(measured, floor, live_seconds)]
