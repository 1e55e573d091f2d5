"""Live WebM: what the per-segment transcode costs a browser that records WebM (Firefox).

A 1280x720 30 fps VP8 + Opus recording as MediaRecorder streams it (2.5 Mbit/s, as framecast's recorder asks for at
that size; a keyframe and a cluster every second; made once and cached in bench/results/clips/) is cut into the
live segments the recorder sends (2 s or more, each starting on a keyframe cluster) and replayed against one
`framecast serve` (embedded default) at real time: each segment is PUT the moment its last frame would have been
captured, as the browser does. Per segment: the PUT's round trip, which is the time from capture to the segment
being listed in the live playlist (the row commits before the answer). Stop -> complete: from the moment the last
segment is captured to `POST complete` answering `complete: true` (the last PUT, the run's end, completion), after
RECORDING_STOPPED. The named baseline, in the same run: the same ffmpeg command the server runs
(adapters/media/commands.py: live_transcode) on the same header + clusters from local disk, with no HTTP, checks or
storage, i.e. the floor of transcoding per segment.

Targets (from the issue): stop -> playable p95 < 1 s; live latency < 10 s.

    python -m bench live_webm [--quick]
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets

from bench.bench_agent import CLIPS, REPO_ROOT
from bench.runner import ServerProcess, Table, framecast_server, percentile
from framecast.adapters.media import commands
from framecast.agent.commands import locate_ffmpeg
from framecast.domain import webm

LENGTHS = {"10 s": (10, 5), "60 s": (60, 3)}  # label: (seconds, runs)
QUICK_LENGTHS = {"10 s": (10, 2)}
STOP_TARGET_SECONDS = 1.0
LIVE_TARGET_SECONDS = 10.0


def clip(seconds: int) -> tuple[bytes, list[bytes]]:
    """The cached recording's header and live segments."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))  # media_clips makes and cuts WebM as the tests do
    from media_clips import live_webm, split_webm

    CLIPS.mkdir(parents=True, exist_ok=True)
    path = CLIPS / f"live-webm-{seconds}s-1280x720.webm"
    if not path.exists():
        made = live_webm(path.with_suffix(".part"), seconds=seconds, size="1280x720", bitrate="2500k")
        made.rename(path)
    return split_webm(path)


def digest(body: bytes) -> dict[str, str]:
    return {"Content-Digest": f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"}


class Run:
    def __init__(self) -> None:
        self.puts: list[float] = []  # seconds per segment PUT (capture -> listed)
        self.media_s = 0.0
        self.stop_s = 0.0


async def record(server: ServerProcess, header: bytes, segments: list[bytes]) -> Run:
    """One recording at real time, through the API and the control channel, as the browser recorder drives it."""
    run = Run()
    parsed = webm.parse_header(header)
    starts = [webm.parse_segment(segment, parsed).start_s for segment in segments]
    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120) as http:
        created = (await http.post("/api/v1/recordings", json={"recording_type": "screen"})).json()
        base = f"/api/v1/recordings/{created['id']}/live/1"
        async with websockets.connect(created["ws_url"], compression=None) as ws:
            await ws.recv()
            seq = 0

            async def control(kind: str) -> None:
                nonlocal seq
                seq += 1
                await ws.send(json.dumps({"type": kind, "seq": seq, "data": {}}))
                while json.loads(await ws.recv())["type"] != "ACK":
                    pass

            await control("RECORDING_STARTED")
            began = stopped = time.perf_counter()
            (await http.put(f"{base}/init", content=header, headers=digest(header))).raise_for_status()
            for index, segment in enumerate(segments):
                # A segment is whole when the next one starts (the last: the recording's end, at stop).
                captured = starts[index + 1] if index + 1 < len(segments) else None
                if captured is None:
                    await asyncio.sleep(max(0.0, began + starts[-1] + 2.0 - time.perf_counter()))
                    stopped = time.perf_counter()
                    await control("RECORDING_STOPPED")
                else:
                    await asyncio.sleep(max(0.0, began + captured - time.perf_counter()))
                sent = time.perf_counter()
                answer = await http.put(f"{base}/{index}", content=segment, headers=digest(segment))
                answer.raise_for_status()
                run.puts.append(time.perf_counter() - sent)
                run.media_s += answer.json()["duration_ms"] / 1000
            (await http.post(f"{base}/end", json={"segments": len(segments)})).raise_for_status()
            done = await http.post(f"/api/v1/recordings/{created['id']}/live/complete", json={"runs": 1})
            if not done.json()["complete"]:
                raise RuntimeError(f"the recording did not complete: {done.text}")
            run.stop_s = time.perf_counter() - stopped
    return run


async def raw_transcode(ffmpeg: str, header: bytes, segments: list[bytes], folder: Path) -> list[float]:
    """The baseline: the server's own ffmpeg command on each segment from local disk."""
    parsed = webm.parse_header(header)
    took = []
    for index, segment in enumerate(segments):
        source, target = folder / f"{index}.webm", folder / f"{index}.mp4"
        source.write_bytes(header + segment)
        argv = commands.live_transcode(ffmpeg, source, target, size=parsed.live_size, threads=2)
        start = time.perf_counter()
        process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL)
        if await process.wait() != 0:
            raise RuntimeError(f"ffmpeg failed on segment {index}")
        took.append(time.perf_counter() - start)
    return took


def table(runs: dict[str, list[Run]], baseline: dict[str, list[float]]) -> Table:
    out = Table(
        "Live WebM: per-segment transcode on the request, 1280x720 VP8 + Opus at real time",
        ["recording", "runs", "segment PUT p50 (s)", "p95", "raw ffmpeg p50 (s)", "p95", "stop -> complete p50 (s)",
         "p95", "transcode speed"],
    )  # fmt: skip
    worst_put, worst_stop = 0.0, 0.0
    for label, measured in runs.items():
        puts = [p for run in measured for p in run.puts]
        stops = [run.stop_s for run in measured]
        raw = baseline[label]
        speed = sum(run.media_s for run in measured) / sum(puts)
        out.add(label, str(len(measured)), *(f"{percentile(puts, p):.2f}" for p in (50, 95)),
                *(f"{percentile(raw, p):.2f}" for p in (50, 95)), *(f"{percentile(stops, p):.2f}" for p in (50, 95)),
                f"{speed:.1f}x real time")  # fmt: skip
        worst_put, worst_stop = max(worst_put, max(puts)), max(worst_stop, percentile(stops, 95))
    out.notes.append(
        f"Target live latency < {LIVE_TARGET_SECONDS:.0f} s: {'met' if worst_put < LIVE_TARGET_SECONDS else 'MISSED'}"
        f" (a segment is listed at most {worst_put:.2f} s after its last frame is captured, plus the upload)."
    )
    out.notes.append(
        f"Target stop -> complete p95 < {STOP_TARGET_SECONDS:.0f} s:"
        f" {'met' if worst_stop < STOP_TARGET_SECONDS else 'MISSED'} (worst p95 {worst_stop:.2f} s)."
    )
    return out


async def live_webm(quick: bool) -> list[Table]:
    ffmpeg = locate_ffmpeg(None)
    lengths = QUICK_LENGTHS if quick else LENGTHS
    runs: dict[str, list[Run]] = {}
    baseline: dict[str, list[float]] = {}
    with framecast_server() as server, tempfile.TemporaryDirectory(prefix="framecast-bench-") as tmp:
        for label, (seconds, count) in lengths.items():
            header, segments = clip(seconds)
            for _ in range(count):
                runs.setdefault(label, []).append(await record(server, header, segments))
            baseline[label] = await raw_transcode(ffmpeg, header, segments, Path(tmp))
    return [table(runs, baseline)]
