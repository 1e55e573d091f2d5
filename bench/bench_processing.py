"""Processing: wall time from upload complete to playable and to the full ladder, against the raw ffmpeg command.

processing: two synthetic clips, 60 s of 1080p30 (10 s with --quick), H.264 High + AAC in MP4 with a keyframe every
2 s as a recorder writes them, generated once per run with the ffmpeg framecast uses: screen-like (SMPTE bars with a
small moving test pattern: flat areas, sharp edges, little motion) and camera-like (a noisy test pattern panning, so
every pixel moves). Each clip goes through a framecast container on the embedded default (SQLite, the job worker in
the same process), served by uvicorn in this process: a recording of the clip's type is driven to UPLOADING over the
control channel and the clip sent to its upload_url in one tus creation-with-upload POST. Times count from the moment
that POST's answer arrives (upload complete) to the bus delivering `video_playable`, the last `rendition_ready` (the
ladder is published) and `video_ready` (pictures and download too); each stage handler and MediaTools call is timed
too. Each clip runs with the default two job slots (the pictures stage encodes beside the ladder) and with one (each
stage runs alone; pictures first).

The named baseline is the single ffmpeg command framecast's ladder stage runs (`commands.ladder` with the same
renditions, preset and threads), run alone on the same clip before and after the framecast runs. Targets (from the
issue): playable within 2 s of upload complete for H.264 sources; the ladder's wall time within 10% of the raw
ffmpeg command's.

    python -m bench processing [--quick]
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import functools
import json
import os
import resource
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import uvicorn
import websockets

from bench.runner import HOST, Table, free_port
from framecast.adapters.media import commands
from framecast.adapters.media.ffmpeg import FFmpegTools, locate_ffmpeg
from framecast.api.app import create_app, server_config
from framecast.bootstrap import Container, build_container
from framecast.domain import events as ev
from framecast.domain.events import DomainEvent
from framecast.domain.ladder import renditions_for
from framecast.domain.media import MediaInfo
from framecast.services.accounts import create_token, ensure_user
from framecast.services.processing import ProcessingService
from framecast.settings import Settings

BASELINE = "raw ffmpeg ladder"
SIZE = (1920, 1080)
RATE = 30
KEYFRAME_SECONDS = 2
PLAYABLE_TARGET_SECONDS = 2.0
LADDER_TARGET_RATIO = 1.10
JOB_SLOTS = (2, 1)  # the default first
TUS = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}
STAGES = ("playable", "ladder", "pictures", "download")
TOOLS = ("probe", "remux_hls", "encode_hls", "poster", "preview", "storyboard", "faststart_mp4")


@dataclass(frozen=True, slots=True)
class Clip:
    name: str
    recording_type: str  # as the recorder declares it; "screen" selects the screen ladder
    video: str  # a lavfi filter graph ending in [v]
    path: Path
    seconds: float

    @property
    def screen(self) -> bool:
        return self.recording_type == "screen"


def clips(folder: Path, seconds: float) -> list[Clip]:
    w, h = SIZE
    screen = (
        f"smptehdbars=s={w}x{h}:r={RATE}[bars];testsrc2=s=480x270:r={RATE}[box];"
        f"[bars][box]overlay=x='mod(t*160,{w - 480})':y=640,format=yuv420p[v]"
    )
    # A test pattern 20% larger than the frame, panned like a hand-held camera, with temporal sensor noise.
    camera = (
        f"testsrc2=s={w * 6 // 5}x{h * 6 // 5}:r={RATE},"
        f"crop={w}:{h}:x='{w // 10}+{w // 11}*sin(t*0.9)':y='{h // 10}+{h // 11}*sin(t*0.7)',"
        "noise=alls=14:allf=t,format=yuv420p[v]"
    )
    return [
        Clip("screen-like", "screen", screen, folder / "screen.mp4", seconds),
        Clip("camera-like", "camera", camera, folder / "camera.mp4", seconds),
    ]


def clip_argv(binary: str, clip: Clip) -> list[str]:
    """H.264 High at about 6 Mb/s, an IDR every 2 s, and a 440 Hz tone as stereo AAC, in MP4."""
    gop = str(RATE * KEYFRAME_SECONDS)
    return [
        binary, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-filter_complex", clip.video,
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={clip.seconds}",
        "-map", "[v]", "-map", "0:a",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
        "-b:v", "6M", "-maxrate", "8M", "-bufsize", "12M", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        "-t", str(clip.seconds), str(clip.path),
    ]  # fmt: skip


def children_cpu_seconds() -> float:
    """User plus system CPU of this process's finished children (every ffmpeg and probe, once reaped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu_seconds() -> float:
    """User plus system CPU of this process, all threads: the server, its worker and the client."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- instrumentation -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    stage: str  # the processing stage it ran in
    name: str  # "stage" for the whole handler, else the MediaTools call
    start: float
    end: float
    cpu: float  # CPU seconds of the child processes reaped meanwhile (a child counts once it has exited)


@dataclass
class Spans:
    """Times each stage handler and each MediaTools call inside it, by wrapping the classes' methods in place."""

    items: list[Span] = field(default_factory=list)
    _stage: contextvars.ContextVar[str] = field(default_factory=lambda: contextvars.ContextVar("stage", default=""))

    def _timed(self, name: str, method: Callable[..., Awaitable[Any]], *, stage: str = "") -> Callable[..., Any]:
        @functools.wraps(method)
        async def run(*args: Any, **kwargs: Any) -> Any:
            # A handler runs in a task of its own, so the stage set here is seen by its tool calls and no others.
            token = self._stage.set(stage) if stage else None
            start, cpu = time.perf_counter(), children_cpu_seconds()
            try:
                return await method(*args, **kwargs)
            finally:
                cpu = children_cpu_seconds() - cpu
                self.items.append(Span(stage or self._stage.get(), name, start, time.perf_counter(), cpu))
                if token is not None:
                    self._stage.reset(token)

        return run

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Patch before build_container (the worker binds the handlers then) and keep it until the run ends."""
        with contextlib.ExitStack() as stack:
            for stage in STAGES:
                wrapped = self._timed("stage", getattr(ProcessingService, stage), stage=stage)
                stack.enter_context(mock.patch.object(ProcessingService, stage, wrapped))
            for tool in TOOLS:
                stack.enter_context(mock.patch.object(FFmpegTools, tool, self._timed(tool, getattr(FFmpegTools, tool))))
            yield

    def find(self, stage: str, name: str) -> Span:
        found = [s for s in self.items if s.stage == stage and s.name == name]
        if len(found) != 1:
            raise RuntimeError(f"expected one {name} span in the {stage} stage, found {len(found)}")
        return found[0]

    def total(self, stage: str, name: str) -> float:
        return sum(s.end - s.start for s in self.items if s.stage == stage and s.name == name)

    def own_cpu(self, stage: str, name: str) -> float:
        """The CPU seconds of that one tool call's child: less those of the other calls that ended inside it."""
        span = self.find(stage, name)
        inside = [s for s in self.items if s.name in TOOLS and s is not span and span.start <= s.end <= span.end]
        return span.cpu - sum(s.cpu for s in inside)


# -- one clip through framecast ------------------------------------------------------------------------------------


@dataclass
class Processed:
    """One clip through framecast: when the bus delivered each event, the spans, and the children's CPU seconds."""

    slots: int
    upload_done: float  # perf_counter when the upload's answer arrived; everything else is relative to it
    delivered: dict[str, float]  # event type -> perf_counter at delivery (the last one, for rendition_ready)
    renditions: list[str]
    spans: Spans
    cpu_seconds: float  # every child process between upload complete and video_ready
    server_cpu_seconds: float  # this process, over the same time

    def at(self, event_type: str) -> float:
        return self.delivered[event_type] - self.upload_done

    def span(self, stage: str, name: str = "stage") -> tuple[float, float]:
        found = self.spans.find(stage, name)
        return found.start - self.upload_done, found.end - self.upload_done


def bench_settings(data_dir: Path, slots: int) -> Settings:
    # What would point at state outside the temp dir is pinned; ffmpeg, threads and preset are what the settings
    # say (the defaults unless FRAMECAST_* says otherwise), and the baseline uses the same.
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'framecast.db'}",
        redis_url=None,
        storage_url=None,
        public_url=None,
        host=HOST,
        port=free_port(),
        secret_key="bench-" + secrets.token_hex(16),
        serve_workers=True,
        worker_concurrency=slots,
    )


@contextlib.asynccontextmanager
async def serving(container: Container) -> AsyncIterator[str]:
    """uvicorn on the container's port in this event loop, with an owner token; yields the token."""
    user = await ensure_user(uow=container.uow, clock=container.clock, email="bench@framecast.local")
    token = await create_token(uow=container.uow, clock=container.clock, user=user)
    server = uvicorn.Server(server_config(create_app(container), container.settings, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield token
    finally:
        server.should_exit = True
        await task


async def upload_url_for(http: httpx.AsyncClient, recording_type: str) -> str:
    """Drive a new recording to UPLOADING over the control channel, as a recorder does; returns its upload_url."""
    response = await http.post("/api/v1/recordings", json={"recording_type": recording_type, "title": "bench"})
    response.raise_for_status()
    async with websockets.connect(response.json()["ws_url"], compression=None) as ws:
        await ws.recv()  # READY
        for seq, kind in enumerate(("RECORDING_STARTED", "RECORDING_STOPPED"), start=1):
            await ws.send(json.dumps({"type": kind, "seq": seq, "data": {}}))
        while (frame := json.loads(await ws.recv()))["type"] != "UPLOAD_READY":
            pass
    return str(frame["data"]["upload_url"])


async def through_framecast(clip: Clip, slots: int) -> Processed:
    """Record `clip` into a fresh framecast, upload it in one POST and wait for video_ready; raises if it fails."""
    spans, delivered, done, renditions, failure = Spans(), {}, asyncio.Event(), [], []

    async def watch(event: DomainEvent) -> None:
        delivered[event.type] = time.perf_counter()
        if event.type == ev.VIDEO_READY:
            renditions.extend(event.data["renditions"])
        if event.type == ev.RECORDING_FAILED:
            failure.append(str(event.data.get("reason")))
        if event.type in (ev.VIDEO_READY, ev.RECORDING_FAILED):
            done.set()

    data = clip.path.read_bytes()
    headers = {**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": f"filename {b64(clip.path.name)}"}
    # The tools stay patched for the whole run: their methods are looked up at each call.
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp, spans.installed():
        settings = bench_settings(Path(tmp) / "data", slots)
        container = await build_container(settings)
        container.bus.subscribe("bench", watch)
        try:
            async with serving(container) as token:
                auth = {"Authorization": f"Bearer {token}"}
                async with httpx.AsyncClient(base_url=settings.resolved_public_url, headers=auth, timeout=60) as http:
                    upload_url = await upload_url_for(http, clip.recording_type)
                async with httpx.AsyncClient(timeout=600) as recorder:  # the upload_url's ticket is the credential
                    response = await recorder.post(upload_url, content=data, headers=headers)
                    upload_done = time.perf_counter()
                cpu_before, server_before = children_cpu_seconds(), own_cpu_seconds()
                if response.status_code != 201 or response.headers.get("Upload-Offset") != str(len(data)):
                    raise RuntimeError(f"the upload answered {response.status_code}: {response.text[:200]}")
                async with asyncio.timeout(max(600.0, clip.seconds * 30)):
                    await done.wait()
                cpu_seconds, server_cpu_seconds = children_cpu_seconds() - cpu_before, own_cpu_seconds() - server_before
        finally:
            await container.aclose()
    if failure:
        raise RuntimeError(f"{clip.name} failed to process: {failure[0]}")
    return Processed(slots, upload_done, delivered, renditions, spans, cpu_seconds, server_cpu_seconds)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- the baseline ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Baseline:
    """The raw command's runs on one clip: (wall, child CPU) seconds of each."""

    runs: list[tuple[float, float]]
    renditions: list[str]

    @property
    def seconds(self) -> float:
        return statistics.mean(wall for wall, _ in self.runs)

    @property
    def cpu_seconds(self) -> float:
        return statistics.mean(cpu for _, cpu in self.runs)


async def raw_ladder(clip: Clip, settings: Settings) -> tuple[float, float, list[str]]:
    """Run the one ffmpeg command framecast's ladder stage builds for `clip`, alone and with the server's settings;
    returns its wall and child CPU seconds, and the renditions' names."""
    binary = locate_ffmpeg(settings.ffmpeg_binary)
    info: MediaInfo = await FFmpegTools(binary=binary, threads=settings.media_threads).probe(clip.path)
    if info.video is None:
        raise RuntimeError(f"{clip.path.name} has no video")
    width, height = info.video.display_size
    renditions = renditions_for(width=width, height=height, screen=clip.screen)
    threads, preset = settings.media_threads, settings.x264_preset
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        for rendition in renditions:
            (Path(tmp) / rendition.name).mkdir()
        argv = commands.ladder(
            binary, clip.path, Path(tmp), renditions, info, preset=preset, screen=clip.screen, threads=threads
        )
        cpu_before, start = children_cpu_seconds(), time.perf_counter()
        await asyncio.to_thread(subprocess.run, argv, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
    return seconds, children_cpu_seconds() - cpu_before, [r.name for r in renditions]


def ffmpeg_version(binary: str) -> str:
    first = subprocess.run([binary, "-version"], check=True, capture_output=True, text=True).stdout.split("\n", 1)[0]
    return first.split(" Copyright", 1)[0]


# -- the tables ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    clip: Clip
    raw: Baseline
    runs: list[Processed]  # one per JOB_SLOTS entry, in that order


def slots_label(slots: int) -> str:
    return f"{slots} job slot{'s' if slots > 1 else ''}{' (default)' if slots == JOB_SLOTS[0] else ''}"


def summary_table(seconds: float, results: list[Result]) -> Table:
    columns = ["clip: path", "playable s", "x RT", "ladder s", "x RT", "all done s", "x RT", "x raw"]
    columns += ["child CPU s", "server CPU s"]
    table = Table(f"processing: {seconds:.0f} s 1080p30 clips, s after upload complete (x RT: / clip length)", columns)
    for result in results:
        clip, raw = result.clip, result.raw
        for run in result.runs:
            playable, ladder, done = run.at(ev.VIDEO_PLAYABLE), run.at(ev.RENDITION_READY), run.at(ev.VIDEO_READY)
            label = f"{clip.name}: framecast, {slots_label(run.slots)}"
            times = [cell for t in (playable, ladder, done) for cell in real_time(t, clip)]
            cpu = [f"{run.cpu_seconds:.1f}", f"{run.server_cpu_seconds:.1f}"]
            table.add(label, *times, f"{ladder / raw.seconds:.2f}", *cpu)
        label = f"{clip.name}: baseline {BASELINE} (mean of {len(raw.runs)})"
        table.add(label, "", "", *real_time(raw.seconds, clip), "", "", "1.00", f"{raw.cpu_seconds:.1f}", "")
    return table


def real_time(seconds: float, clip: Clip) -> list[str]:
    """Seconds, and the multiple of the clip's length they are."""
    return [f"{seconds:.2f}", f"{seconds / clip.seconds:.3f}"]


def playable_table(results: list[Result]) -> Table:
    columns = ["clip: job slots", "raw_video_uploaded", "job starts", "probe", "remux", "rest of job", "video_playable"]
    table = Table("upload complete -> playable (s after upload complete; the durations between)", columns)
    for result in results:
        for run in result.runs:
            start, end = run.span("playable")
            probe = run.spans.total("playable", "probe")
            first = run.spans.total("playable", "remux_hls") + run.spans.total("playable", "encode_hls")
            rest = end - start - probe - first  # the playlists, publishing, the commit
            times = (run.at(ev.RAW_VIDEO_UPLOADED), start, probe, first, rest, run.at(ev.VIDEO_PLAYABLE))
            table.add(f"{result.clip.name}: {run.slots}", *(f"{t:.3f}" for t in times))
    return table


def ladder_table(results: list[Result]) -> Table:
    columns = ["clip: job slots", "queued", "probe", "encode", "publish + commit", "stage", "pictures (overlap)"]
    columns += ["raw (each)", "stage x raw", "encode CPU s", "raw CPU s (each)"]
    table = Table("the ladder stage in framecast against the raw command (s)", columns)
    for result in results:
        raw = result.raw
        for run in result.runs:
            stage, encode, pictures = run.span("ladder"), run.span("ladder", "encode_hls"), run.span("pictures")
            probe = run.spans.total("ladder", "probe")
            length, encoding = stage[1] - stage[0], encode[1] - encode[0]
            overlap = max(0.0, min(pictures[1], encode[1]) - max(pictures[0], encode[0]))
            table.add(
                f"{result.clip.name}: {run.slots}",
                f"{stage[0] - run.span('playable')[1]:.2f}",  # enqueued when the playable job committed
                f"{probe:.2f}",
                f"{encoding:.1f}",
                f"{length - probe - encoding:.2f}",
                f"{length:.1f}",
                f"{pictures[1] - pictures[0]:.1f} ({overlap:.1f})",
                f"{raw.seconds:.1f} ({', '.join(f'{wall:.1f}' for wall, _ in raw.runs)})",
                f"{length / raw.seconds:.2f}",
                f"{run.spans.own_cpu('ladder', 'encode_hls'):.1f}",
                f"{raw.cpu_seconds:.1f} ({', '.join(f'{cpu:.1f}' for _, cpu in raw.runs)})",
            )
    return table


def verdicts(results: list[Result]) -> list[str]:
    worst = max(run.at(ev.VIDEO_PLAYABLE) for result in results for run in result.runs)
    met = "met" if worst <= PLAYABLE_TARGET_SECONDS else "MISSED"
    notes = [f"Target playable <= {PLAYABLE_TARGET_SECONDS:.0f} s after upload complete: {met} (worst {worst:.2f} s)."]
    for index, slots in enumerate(JOB_SLOTS):
        ratios = {r.clip.name: r.runs[index].at(ev.RENDITION_READY) / r.raw.seconds for r in results}
        met = "met" if all(ratio <= LADDER_TARGET_RATIO for ratio in ratios.values()) else "MISSED"
        each = ", ".join(f"{ratio:.2f} {name}" for name, ratio in ratios.items())
        target = f"upload complete -> ladder published within {LADDER_TARGET_RATIO - 1:.0%} of {BASELINE}"
        notes.append(f"Target {target}, {slots_label(slots)}: {met} ({each}).")
    return notes


# -- the benchmark ---------------------------------------------------------------------------------------------------


async def processing(quick: bool) -> list[Table]:
    """Make the two clips; run each through the raw ladder, framecast with 2 then 1 job slots, the raw ladder again."""
    seconds = 10.0 if quick else 60.0
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    results = []
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        settings = bench_settings(Path(tmp) / "data", JOB_SLOTS[0])
        binary = locate_ffmpeg(settings.ffmpeg_binary)
        for index, clip in enumerate(clips(Path(tmp), seconds)):
            await asyncio.to_thread(subprocess.run, clip_argv(binary, clip), check=True)
            # The baseline runs before and after framecast, and the framecast runs swap order from one clip to the
            # next: a drift in this machine's speed shows in the baseline's spread rather than in one column.
            before = await raw_ladder(clip, settings)
            order = JOB_SLOTS if index % 2 == 0 else JOB_SLOTS[::-1]
            by_slots = {slots: await through_framecast(clip, slots) for slots in order}
            runs = [by_slots[slots] for slots in JOB_SLOTS]
            after = await raw_ladder(clip, settings)
            for run in runs:
                if run.renditions != before[2]:
                    raise RuntimeError(f"{clip.name}: framecast made {run.renditions}, the baseline {before[2]}")
            results.append(Result(clip, Baseline([before[:2], after[:2]], before[2]), runs))
    summary = summary_table(seconds, results)
    summary.notes += [
        *verdicts(results),
        f"Both paths: {ffmpeg_version(binary)}, x264 preset {settings.x264_preset}, {settings.media_threads} threads "
        f"per ffmpeg run, renditions {', '.join(results[0].raw.renditions)}. framecast's ladder stage runs the "
        "baseline's command; with 2 job slots the pictures stage encodes beside it.",
        "Times are bus deliveries in this process (the outbox relay publishes an event after its commit). The server "
        "runs in this process on asyncio's default loop (`serve` uses uvloop); ffmpeg and the probes are child "
        "processes, counted in child CPU.",
        f"Load average (1, 5, 15 min) when the run started: {load}.",
    ]
    return [summary, playable_table(results), ladder_table(results)]
