"""Desktop agent: stop to playable link while uploading during the recording, and what recording costs in CPU and RSS.

agent, part 1 (stop -> playable): a 5-minute 1920x1080 30 fps screen-like clip (1 minute with --quick: SMPTE bars
with a small test pattern sliding across and a 440 Hz tone, H.264 ultrafast + AAC, made once with the agent's ffmpeg
and cached in bench/results/clips/) is replayed by `framecast record --source CLIP --speed 0 --no-input` against one
`framecast serve` (embedded default: SQLite, local files, the job worker in the same process): 3 runs (1 with
--quick) uploading while recording (the default), alternating with as many runs of the named baseline, the classic
flow `--upload-after-stop`. Stop is the moment the capture ends: the benchmark polls the agent's children with psutil
every 10 ms and takes the first poll at which its ffmpeg has exited (gone, or a zombie not yet reaped). ffmpeg exits
on its own when the source runs out, with the capture file complete. Playable is the first moment GET
/api/v1/recordings/{id} (polled every 50 ms) says READY and its `playback.hls_url` master playlist and first rendition
playlist both answer 200. Agent exit is when the agent process is reaped. Sent at stop: the bytes of the server's
tus upload files (`uploads/` in its data dir) at stop, against the capture's size (the raw upload in
`blobs/recordings/<id>/raw/`). After each run the recording is deleted, which cancels its ladder, and the next run
waits until the server has no ffmpeg left running.

agent, part 2 (recording cost): Xvfb at 1920x1080 with a Tk window scrolling text and sliding a box at 30 fps, and a
PulseAudio null sink playing a tone (tests/desktop.py); `framecast record --screen --display :N --mic MONITOR
--no-input --duration S` (S = 30, 10 with --quick). psutil samples every 0.5 s the CPU % and RSS of the agent and,
separately, of its ffmpeg child, while that ffmpeg runs. The named baseline: the same capture by the ffmpeg command
alone (`capture_argv` with the agent's spec, ffmpeg and epoch argument) for S seconds, stopped with `q` on its stdin,
once before and once after the agent. Skipped when Xvfb or PulseAudio is missing (`make desktop-deps`).

Target (from the issue): stop to playable link under 2 s, whatever the recording's length.

    python -m bench agent [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs without the types-psutil package

from bench.runner import REPO_ROOT, ServerProcess, Table, framecast_server, percentile
from framecast.agent.capture import CaptureSpec, Platform, capture_argv
from framecast.agent.commands import locate_ffmpeg

BASELINE_FLOW = "--upload-after-stop"
WIDTH, HEIGHT, RATE = 1920, 1080, 30
CLIPS = REPO_ROOT / "bench" / "results" / "clips"  # gitignored; each clip length is made once
PLAYABLE_TARGET_SECONDS = 2.0
STOP_POLL_SECONDS = 0.01
READY_POLL_SECONDS = 0.05
SAMPLE_SECONDS = 0.5
TIMEOUT_SECONDS = 900.0
SETTLE_TIMEOUT_SECONDS = 120.0
DESKTOP_PROGRAMS = ("Xvfb", "pulseaudio", "pactl")
MB, MIB = 10**6, 2**20
# Something that moves on the screen like a person's work: a page of code scrolling and a box sliding, at 30 fps.
# (ffmpeg's xv output finds no X-Video adaptor on Xvfb, and ffplay is not installed.)
ANIMATION = f"""
import tkinter
w, h, rows, step = {WIDTH}, {HEIGHT}, 60, 22
root = tkinter.Tk()
root.overrideredirect(True)
root.geometry(f"{{w}}x{{h}}+0+0")
canvas = tkinter.Canvas(root, width=w, height=h, background="#1e1e1e", highlightthickness=0)
canvas.pack()
lines = [canvas.create_text(80, 20 + step * i, anchor="nw", fill="#d4d4d4", font=("Courier", 14),
         text=f"{{i:4d}}  def handle_{{i}}(request, *, uow, clock):  return render(request, 'page_{{i}}.html')")
         for i in range(rows)]
box = canvas.create_rectangle(0, 700, 320, 880, fill="#3a7bd5", outline="")
def tick(frame=0):
    for item in lines:
        canvas.move(item, 0, -4)
        if canvas.coords(item)[1] < -step:
            canvas.move(item, 0, step * rows)
    x = frame * 12 % (w - 320)
    canvas.coords(box, x, 700, x + 320, 880)
    root.after({1000 // RATE}, tick, frame + 1)
tick()
root.mainloop()
"""


# -- the clip and the server's data dir ------------------------------------------------------------------------------


def clip_argv(ffmpeg: str, target: Path, seconds: int, *, width: int = WIDTH, height: int = HEIGHT) -> list[str]:
    """A screen-like clip at 30 fps: SMPTE bars, a small test pattern sliding across, a 440 Hz tone; H.264 + AAC."""
    box_w, box_h = width // 4, height // 4
    video = (
        f"smptehdbars=s={width}x{height}:r={RATE}[bars];testsrc2=s={box_w}x{box_h}:r={RATE}[box];"
        f"[bars][box]overlay=x='mod(t*{width // 12},{width - box_w})':y={height * 16 // 27},format=yuv420p[v]"
    )
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-filter_complex", video, "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={seconds}",
        "-map", "[v]", "-map", "0:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", str(2 * RATE),
        "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-t", str(seconds), "-f", "mp4", str(target),
    ]  # fmt: skip


async def cached_clip(ffmpeg: str, seconds: int, *, width: int = WIDTH, height: int = HEIGHT) -> Path:
    clip = CLIPS / f"screen-{width}x{height}p{RATE}-{seconds}s.mp4"
    if not clip.is_file():
        CLIPS.mkdir(parents=True, exist_ok=True)
        part = clip.with_suffix(".part")
        argv = clip_argv(ffmpeg, part, seconds, width=width, height=height)
        await asyncio.to_thread(subprocess.run, argv, check=True)
        part.rename(clip)  # only a whole clip is ever cached
    return clip


def data_dir(server: ServerProcess) -> Path:
    return server.log_path.parent / "data"  # framecast_server keeps the data dir beside its log


def upload_files(server: ServerProcess) -> dict[str, int]:
    """What the server has received so far and not yet finished: tus upload files, and live segments (docs/live.md)
    of recordings still capturing or uploading, by name, with their sizes."""
    sizes = {}
    blobs = data_dir(server) / "blobs" / "recordings"
    for path in [*(data_dir(server) / "uploads").glob("*"), *blobs.glob("*/media/*/play/r*/*")]:
        with contextlib.suppress(FileNotFoundError):
            sizes[str(path)] = path.stat().st_size
    return sizes


def raw_bytes(server: ServerProcess, recording_id: str) -> int:
    """The capture as the server keeps it: the raw upload, or a live recording's segments."""
    folder = data_dir(server) / "blobs" / "recordings" / recording_id
    stored = [*(folder / "raw").rglob("*"), *folder.glob("media/*/play/r*/*")]
    return sum(path.stat().st_size for path in stored if path.is_file())


# -- one agent run ---------------------------------------------------------------------------------------------------


@dataclass
class Usage:
    """Samples of CPU (% of one core) and RSS (bytes) of a process, or of a group of processes summed per sample."""

    cpu: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)

    def cells(self) -> list[str]:
        if not self.cpu:
            return ["-", "-", "-"]
        return [f"{statistics.mean(self.cpu):.0f}", f"{max(self.cpu):.0f}", f"{max(self.rss) / MIB:.0f}"]


@dataclass
class Sampler:
    """Samples the named processes every SAMPLE_SECONDS, and their sum as "total" once all are there."""

    usage: dict[str, Usage] = field(default_factory=dict)
    _primed: set[int] = field(default_factory=set)
    _next: float = 0.0

    def poll(self, processes: dict[str, psutil.Process]) -> None:
        now = time.perf_counter()
        if now < self._next:
            return
        self._next = now + SAMPLE_SECONDS
        cpu_sum, rss_sum, complete = 0.0, 0, len(processes) > 1
        for name, process in processes.items():
            try:
                if process.pid not in self._primed:  # cpu_percent counts from its previous call on the same object
                    process.cpu_percent(None)
                    self._primed.add(process.pid)
                    complete = False
                    continue
                cpu, rss = process.cpu_percent(None), process.memory_info().rss
            except psutil.NoSuchProcess:
                complete = False
                continue
            self.add(name, cpu, rss)
            cpu_sum, rss_sum = cpu_sum + cpu, rss_sum + rss
        if complete:
            self.add("total", cpu_sum, rss_sum)

    def add(self, name: str, cpu: float, rss: int) -> None:
        usage = self.usage.setdefault(name, Usage())
        usage.cpu.append(cpu)
        usage.rss.append(rss)


@dataclass(frozen=True)
class AgentRun:
    """One `framecast record`: perf_counter times, bytes, and the usage sampled while its ffmpeg ran."""

    flow: str
    started: float
    stopped: float  # its ffmpeg exited
    exited: float
    playable: float
    sent_at_stop: int
    capture_bytes: int
    usage: dict[str, Usage]

    @property
    def capture_seconds(self) -> float:
        return self.stopped - self.started

    @property
    def to_exit(self) -> float:
        return self.exited - self.stopped

    @property
    def exit_to_ready(self) -> float:
        return self.playable - self.exited

    @property
    def to_playable(self) -> float:
        return self.playable - self.stopped

    @property
    def sent_fraction(self) -> float:
        return self.sent_at_stop / self.capture_bytes if self.capture_bytes else 0.0


def agent_env(server: ServerProcess, home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMECAST_")}
    return (
        env
        | (extra or {})
        | {
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "FRAMECAST_SERVER": server.url,
            "FRAMECAST_TOKEN": server.token,
        }
    )


def alive(process: psutil.Process) -> bool:
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def is_capture(process: psutil.Process) -> bool:
    """The agent's capture ffmpeg, not the `ffmpeg -version` imageio-ffmpeg runs to check its binary."""
    with contextlib.suppress(psutil.NoSuchProcess):
        return "-progress" in process.cmdline()  # runs.CaptureRun adds it
    return False


async def until_capture_ends(agent: psutil.Process, exited: asyncio.Task[Any], sampler: Sampler) -> float:
    """Poll the agent's children until its ffmpeg has started and exited; returns perf_counter at that poll."""
    capture: psutil.Process | None = None
    while True:
        if capture is None:
            with contextlib.suppress(psutil.NoSuchProcess):
                capture = next((c for c in agent.children() if is_capture(c)), None)
        elif not alive(capture):
            return time.perf_counter()
        if exited.done():
            raise RuntimeError("the agent exited before its capture started")
        if capture is not None:  # what recording costs, not the agent's start-up
            sampler.poll({"agent": agent, "ffmpeg": capture})
        await asyncio.sleep(STOP_POLL_SECONDS)


async def plays(http: httpx.AsyncClient, master_url: str) -> bool:
    """True when the master playlist and its first rendition playlist both answer 200."""
    master = await http.get(master_url)
    if master.status_code != 200:
        return False
    uri = next(line for line in master.text.splitlines() if line and not line.startswith("#"))
    return (await http.get(master_url.rsplit("/", 1)[0] + "/" + uri)).status_code == 200


async def until_playable(http: httpx.AsyncClient, recording_id: str, exited: asyncio.Task[Any]) -> float:
    while True:
        body = (await http.get(f"/api/v1/recordings/{recording_id}")).json()
        if body["status"] == "FAILED":
            raise RuntimeError(f"recording {recording_id} failed: {body['failure_reason']}")
        url = body["playback"]["hls_url"] if body["status"] == "READY" else None
        if url and await plays(http, url):
            return time.perf_counter()
        if exited.done() and exited.result()[1] != 0:
            raise RuntimeError(f"the agent exited {exited.result()[1]}")
        await asyncio.sleep(READY_POLL_SECONDS)


async def newest_recording(http: httpx.AsyncClient) -> str:
    """The recording the agent made (it creates it before capture starts; earlier runs' are deleted)."""
    (newest,) = (await http.get("/api/v1/recordings", params={"limit": 1})).json()["items"]
    return str(newest["id"])


async def forget(http: httpx.AsyncClient, server: ServerProcess, recording_id: str) -> None:
    """Delete the recording (which cancels its ladder) and wait until the server runs no ffmpeg."""
    (await http.delete(f"/api/v1/recordings/{recording_id}")).raise_for_status()
    root = psutil.Process(server.process.pid)
    async with asyncio.timeout(SETTLE_TIMEOUT_SECONDS):
        # Polled: a job claimed just before the delete may start its ffmpeg after it.
        while any(alive(child) for child in root.children(recursive=True)):  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def reaped(process: asyncio.subprocess.Process) -> tuple[float, int]:
    """perf_counter when the process was reaped, and its exit code."""
    code = await process.wait()
    return time.perf_counter(), code


async def record(server: ServerProcess, flow: str, args: list[str], env: dict[str, str], log: Path) -> AgentRun:
    """Run `framecast record *args` to the end and until its recording plays; then delete the recording."""
    before, sampler, started = upload_files(server), Sampler(), time.perf_counter()
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "framecast", "record", *args,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env,
        )  # fmt: skip
    exited = asyncio.create_task(reaped(process))
    auth = {"Authorization": f"Bearer {server.token}"}
    async with asyncio.timeout(TIMEOUT_SECONDS), httpx.AsyncClient(base_url=server.url, headers=auth) as http:
        try:
            stopped = await until_capture_ends(psutil.Process(process.pid), exited, sampler)
            sent = sum(size for name, size in upload_files(server).items() if name not in before)
            recording_id = await newest_recording(http)
            playable = await until_playable(http, recording_id, exited)
            exit_time, code = await exited
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            exited.cancel()
            raise
        if code != 0:
            raise RuntimeError(f"the agent exited {code}; see {log}")
        size = raw_bytes(server, recording_id)
        await forget(http, server, recording_id)
    return AgentRun(flow, started, stopped, exit_time, playable, sent, size, sampler.usage)


# -- part 1: stop -> playable ----------------------------------------------------------------------------------------


async def stop_to_playable(server: ServerProcess, clip: Path, runs: int, folder: Path) -> list[AgentRun]:
    """Alternate the default flow and the baseline flow, `runs` times each, each with a fresh spool."""
    results = []
    for index in range(runs * 2):
        flow = "live" if index % 2 == 0 else BASELINE_FLOW
        home = folder / f"home-{index}"
        args = ["--source", str(clip), "--speed", "0", "--no-input", "--title", f"bench {index}"]
        args += [BASELINE_FLOW] if flow == BASELINE_FLOW else []
        results.append(await record(server, flow, args, agent_env(server, home), folder / f"agent-{index}.log"))
    return results


def stop_tables(runs: list[AgentRun], clip: Path, minutes: float, ffmpeg: str) -> list[Table]:
    columns = ["flow", "runs", "stop -> playable p50", "max", "stop -> agent exit p50", "max"]
    columns += ["agent exit -> READY p50", "max", "sent at stop", "capture s p50"]
    title = f"agent: stop -> playable link, {minutes:.0f} min {WIDTH}x{HEIGHT} {RATE} fps clip, --source --speed 0 (s)"
    summary = Table(title, columns)
    labels = {"live": "framecast record (uploads while recording)", BASELINE_FLOW: f"baseline: {BASELINE_FLOW}"}
    for flow, label in labels.items():
        mine = [run for run in runs if run.flow == flow]
        cells = []
        for spans in ([r.to_playable for r in mine], [r.to_exit for r in mine], [r.exit_to_ready for r in mine]):
            cells += [f"{percentile(spans, 50):.2f}", f"{max(spans):.2f}"]
        sent = percentile([r.sent_fraction for r in mine], 50)
        summary.add(
            label, str(len(mine)), *cells, f"{sent:.1%}", f"{percentile([r.capture_seconds for r in mine], 50):.0f}"
        )
    live = [run.to_playable for run in runs if run.flow == "live"]
    met = "met" if max(live) < PLAYABLE_TARGET_SECONDS else "MISSED"
    captures = ", ".join(f"{run.capture_bytes / MB:.1f}" for run in runs)
    summary.notes += [
        f"Target stop -> playable link < {PLAYABLE_TARGET_SECONDS:.0f} s uploading while recording: {met} "
        f"(worst {max(live):.2f} s).",
        f"Clip {clip.stat().st_size / MB:.1f} MB (H.264 ultrafast + AAC); captures (the agent's re-encode, the raw "
        f"upload on the server) {captures} MB. capture s: agent start -> its ffmpeg exits. {ffmpeg_version(ffmpeg)}.",
        "Stop: the agent's ffmpeg exits (psutil, 10 ms polls). Playable: READY, master and first rendition playlists "
        "200 (50 ms polls). Each recording is deleted after it plays, cancelling its ladder, before the next run.",
    ]
    columns = ["run: flow", "capture s", "stop -> agent exit", "agent exit -> READY", "stop -> playable"]
    each = Table("agent: each run (s; MB = 10^6 bytes)", [*columns, "sent at stop MB", "capture MB"])
    for index, run in enumerate(runs, start=1):
        times = (run.capture_seconds, run.to_exit, run.exit_to_ready, run.to_playable)
        sizes = (run.sent_at_stop / MB, run.capture_bytes / MB)
        each.add(f"{index}: {run.flow}", *(f"{t:.2f}" for t in times), *(f"{s:.1f}" for s in sizes))
    return [summary, each]


def ffmpeg_version(binary: str) -> str:
    first = subprocess.run([binary, "-version"], check=True, capture_output=True, text=True).stdout.split("\n", 1)[0]
    return first.split(" Copyright", 1)[0]


# -- part 2: recording cost ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def animated(env: dict[str, str]) -> Iterator[bool]:
    """A Tk window animating the whole screen; yields False (and nothing moves) when Tk cannot start."""
    process = subprocess.Popen([sys.executable, "-c", ANIMATION], env=env, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)  # mapped and drawing
        yield process.poll() is None
    finally:
        process.terminate()
        process.wait()


async def raw_capture(
    argv: list[str], *, output: Path, env: dict[str, str], seconds: float, log: Path
) -> tuple[Usage, int]:
    """Run the capture command alone for `seconds`, stop it with `q`; returns its usage and its file's size."""
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, env=env
        )
    ffmpeg, sampler = psutil.Process(process.pid), Sampler()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sampler.poll({"ffmpeg": ffmpeg})
        await asyncio.sleep(STOP_POLL_SECONDS)
    assert process.stdin is not None
    process.stdin.write(b"q")
    await process.stdin.drain()
    process.stdin.close()
    if await process.wait() != 0:
        raise RuntimeError(f"the raw capture exited {process.returncode}; see {log}")
    return sampler.usage.get("ffmpeg", Usage()), await asyncio.to_thread(os.path.getsize, output)


async def recording_cost(server: ServerProcess, seconds: float, folder: Path) -> Table:
    title = f"agent: CPU and RSS while recording {WIDTH}x{HEIGHT} {RATE} fps from Xvfb with a PulseAudio mic"
    columns = ["process", "CPU mean %", "CPU max %", "RSS max MiB", "capture Mb/s", "sent at stop"]
    table = Table(f"{title}, {seconds:.0f} s", columns)
    if missing := [name for name in DESKTOP_PROGRAMS if shutil.which(name) is None]:
        table.notes.append(f"SKIPPED: {', '.join(missing)} not installed (`make desktop-deps` installs them).")
        return table
    sys.path.insert(0, str(REPO_ROOT / "tests"))  # tests/desktop.py and the clips it imports live there
    from desktop import desktop

    ffmpeg = locate_ffmpeg(None)
    with desktop(folder / "desktop", screen=f"{WIDTH}x{HEIGHT}x24") as screen:
        env = os.environ | screen.env
        spec = CaptureSpec(screen=True, display=screen.display, mic=screen.monitor, fps=RATE)
        with animated(env) as moving:

            async def baseline(name: str) -> tuple[Usage, int]:
                output, log = folder / name, folder / "raw-ffmpeg.log"
                argv = capture_argv(spec, output=output, platform=Platform.LINUX, ffmpeg=ffmpeg, epoch=time.time())
                return await raw_capture(argv, output=output, env=env, seconds=seconds, log=log)

            before = await baseline("raw-before.mp4")
            args = ["--screen", "--display", screen.display, "--mic", screen.monitor, "--no-input"]
            args += ["--duration", f"{seconds:g}", "--title", "bench desktop"]
            run = await record(
                server, "live", args, agent_env(server, folder / "home", screen.env), folder / "agent.log"
            )
            after = await baseline("raw-after.mp4")
    usage = run.usage
    table.add("framecast record: agent (Python)", *usage.get("agent", Usage()).cells(), "", "")
    table.add("framecast record: its ffmpeg", *usage.get("ffmpeg", Usage()).cells(), "", "")
    rate = f"{run.capture_bytes * 8 / seconds / 1e6:.2f}"
    table.add("framecast record: both", *usage.get("total", Usage()).cells(), rate, f"{run.sent_fraction:.1%}")
    for label, (raw, size) in (("before", before), ("after", after)):
        table.add(f"baseline: ffmpeg alone, {label}", *raw.cells(), f"{size * 8 / seconds / 1e6:.2f}", "")
    screen_note = "a Tk window scrolling code and sliding a box at 30 fps" if moving else "static (Tk did not start)"
    table.notes += [
        f"CPU in % of one core (this machine has {os.cpu_count()}); samples every {SAMPLE_SECONDS} s while ffmpeg "
        f"ran. Screen: {screen_note}. Mic: a null sink's monitor hearing a 440 Hz tone.",
        f"Capture Mb/s: the file's (agent: the raw upload's) bytes x 8 / {seconds:.0f} s. Sent at stop: bytes the "
        "server held when the agent's ffmpeg exited / the capture's size. Both captures: "
        f"{ffmpeg_version(ffmpeg)}, x264 veryfast zerolatency crf 23.",
        "The agent's ffmpeg argv adds `-progress file:... -stats_period 0.5` to the baseline's.",
    ]
    return table


# -- the benchmark ---------------------------------------------------------------------------------------------------


async def agent(quick: bool) -> list[Table]:
    """Part 1 against the classic flow, then part 2 against ffmpeg alone, on one `framecast serve`."""
    clip_seconds, runs, record_seconds = (60, 1, 10.0) if quick else (300, 3, 30.0)
    ffmpeg = locate_ffmpeg(None)
    clip = await cached_clip(ffmpeg, clip_seconds)
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp, framecast_server() as server:
        results = await stop_to_playable(server, clip, runs, Path(tmp))
        cost = await recording_cost(server, record_seconds, Path(tmp))
    return [*stop_tables(results, clip, clip_seconds / 60, ffmpeg), cost]
