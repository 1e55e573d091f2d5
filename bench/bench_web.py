"""Watch page: time to first frame at a share link, against a bare hls.js page and a bare progressive MP4.

watch_page: one `framecast serve` (embedded default: SQLite, local files, the job worker in the same process) holds
one processed recording: the 60 s (10 s with --quick) 1920x1080 30 fps screen-like clip with a 440 Hz tone that the
agent benchmark makes and caches in bench/results/clips/, imported with a tus creation-with-upload POST and the
owner's API token, then waited on until every processing stage has succeeded. Headless Debian Chromium (Playwright,
never a downloaded build) loads each page in a fresh browser context: cold HTTP cache, new connections. An init
script clicks the page's Play button (accessible name "Play" inside `.player`) the moment it exists and is enabled,
and watches the <video> with requestVideoFrameCallback from the moment the element is created. Time to first frame
(TTFF): from navigation start to the first video frame callback (`performance.now()` in it) for a frame presented
after the click. Bytes before first frame: what the network delivered by then (Chrome DevTools Protocol network
events: whole responses by their encoded size with headers, plus the body bytes of those still arriving).

The pages, loaded in turn (rotating the order each round) against the same server and media, 3 warm-up loads each
and then 50 counted (10 with --quick):

- framecast watch page: the recording's share_url (`/v/{link_id}`), with the player bundle as built.
- baseline bare hls.js: a page holding only a <video> and hls.js's light build (the version the player bundles,
  from frontend/node_modules) with its default settings, attaching the same master playlist; Play calls play().
- reference bare hls.js with the player's settings: the same page with the player's hls.js settings
  (frontend/src/player/engine.ts), so the difference from the watch page is the page and the bundle.
- baseline bare MP4 progressive: the recording's download_url in a bare <video preload="auto">.

The bare pages are served on the framecast origin by Playwright (`context.route` fulfils their HTML), so the signed
media URLs are same-origin as for the watch page; hls.js comes gzipped from a small static server in this process.
Three tables: the percentiles, the p50 moment each step on the way to the first frame ended (document, script, Play
ready, master playlist, rendition playlist, init segment, first segment), and the p50 bytes of each kind of response
that arrived before the first frame.

Target (from the issue): p50 time to first frame under 500 ms on loopback.

    python -m bench watch_page [--quick]
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import html
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from bench.bench_agent import cached_clip
from bench.runner import HOST, REPO_ROOT, ServerProcess, Table, framecast_server, percentile
from framecast.agent.commands import locate_ffmpeg
from framecast.web.assets import DIST, asset

WATCH_PAGE = "framecast watch page"
BARE_HLS = "baseline: bare hls.js"
TUNED_HLS = "reference: bare hls.js, the player's settings"
BARE_MP4 = "baseline: bare MP4 progressive"
LOADS, QUICK_LOADS, WARM_UP_LOADS = 50, 10, 3
TARGET_MS = 500.0
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    # Headless Chromium 156 keeps its omnibox popups (WebUI pages no one can see) open in a renderer that spins at
    # half a core while any page is open: on two cores that is a quarter of the machine taken from what is measured.
    "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup",
]
VIEWPORT = {"width": 1280, "height": 800}
# The watch page's <video> is 1060 px wide at that viewport; the bare pages match it, as the player's settings cap the
# rendition to the player's size.
PLAYER_WIDTH = 1060
VIDEO_STYLE = f"width: {PLAYER_WIDTH}px; aspect-ratio: 16 / 9"
HLS_JS = REPO_ROOT / "frontend" / "node_modules" / "hls.js" / "dist" / "hls.light.min.js"
STAGES = ("playable", "ladder", "pictures", "download")
PROCESSING_TIMEOUT_SECONDS = 1800.0
FRAME_TIMEOUT_MS = 15_000
KB = 1000

# The player's hls.js settings (frontend/src/player/engine.ts): keep in step with it. After the first play it raises
# the buffer to hls.js's defaults.
PLAYER_SETTINGS = {
    "enableWorker": False,
    "capLevelToPlayerSize": True,
    "startLevel": 0,
    "maxBufferLength": 2,
    "maxMaxBufferLength": 2,
    "backBufferLength": 30,
}
PLAYER_ON_PLAY = {"maxBufferLength": 30, "maxMaxBufferLength": 600}

# Installed in every document before its own scripts run. It clicks Play as soon as the button is there and enabled
# (a click from the page, not from Playwright: its actionability checks and round trips would add the harness's own
# hundreds of milliseconds), and takes the first frame presented after that click. Mutation observers run once the
# task that changed the DOM ends, so on the watch page Play is ready when the player's module has run, which is also
# the first moment a person's click could be handled.
WATCHER = """
(() => {
  const marks = { ready: null, firstFrame: null, height: 0 };
  Object.defineProperty(window, "__benchMarks", { value: marks });
  const watched = new WeakSet();
  const watch = (video) => {
    if (watched.has(video)) return;
    watched.add(video);
    const onFrame = (now, frame) => {
      if (marks.ready !== null && frame.presentationTime >= marks.ready) {
        marks.firstFrame = performance.now();
        marks.height = frame.height;
      } else {
        video.requestVideoFrameCallback(onFrame);
      }
    };
    video.requestVideoFrameCallback(onFrame);
  };
  const check = () => {
    for (const video of document.getElementsByTagName("video")) watch(video);
    if (marks.ready !== null) return;
    const play = document.querySelector('.player button[aria-label="Play"]:not([disabled])');
    if (play) {
      marks.ready = performance.now();
      play.click();
    }
  };
  new MutationObserver(check).observe(document, {
    childList: true, subtree: true, attributes: true, attributeFilter: ["disabled", "aria-label"],
  });
})();
"""
# What the page's Performance API knows, to put the DevTools clock on the page's: each finished response's end.
ENTRIES = """() => ({
  marks: window.__benchMarks,
  ends: [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")]
    .map((entry) => [entry.name, entry.responseEnd]),
})"""


# What the page and its <video> were doing, for the message when no frame came.
STATE = """() => { const v = document.querySelector("video"); return JSON.stringify({ marks: window.__benchMarks,
  video: v && { paused: v.paused, readyState: v.readyState, error: v.error && v.error.message } }); }"""


# -- the bare pages --------------------------------------------------------------------------------------------------


def bare_hls_page(*, master_url: str, script_url: str, settings: dict[str, Any], on_play: dict[str, Any]) -> str:
    """A <video> fed by hls.js, and a Play button enabled once hls.js is attached."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bare hls.js</title></head><body>
<div class="player">
  <video playsinline preload="auto" style="{VIDEO_STYLE}"></video>
  <button type="button" aria-label="Play" disabled>Play</button>
</div>
<script src="{script_url}"></script>
<script>
  const video = document.querySelector("video");
  const hls = new Hls({json.dumps(settings)});
  hls.loadSource({json.dumps(master_url)});
  hls.attachMedia(video);
  const play = document.querySelector("button");
  play.addEventListener("click", () => {{
    Object.assign(hls.config, {json.dumps(on_play)});
    video.play();
  }});
  play.disabled = false;
</script>
</body></html>
"""


def bare_mp4_page(*, download_url: str) -> str:
    """The progressive MP4 in a bare <video>, and a Play button."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bare MP4</title></head><body>
<div class="player">
  <video playsinline preload="auto" src="{html.escape(download_url)}" style="{VIDEO_STYLE}"></video>
  <button type="button" aria-label="Play">Play</button>
</div>
<script>
  const video = document.querySelector("video");
  document.querySelector("button").addEventListener("click", () => video.play());
</script>
</body></html>
"""


@contextlib.contextmanager
def script_server(script: bytes) -> Iterator[str]:
    """Serve `script` gzipped (as framecast's static files are) on a free port; yields its URL."""
    body = gzip.compress(script, compresslevel=9)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "public, max-age=31536000, immutable")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/{HLS_JS.name}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True, slots=True)
class Variant:
    label: str
    url: str
    html: str | None = None  # fulfilled at `url` by Playwright; None: the server answers


# -- one load --------------------------------------------------------------------------------------------------------


@dataclass
class Response:
    """One request as the DevTools Protocol reports it; times in its monotonic clock (s)."""

    url: str
    finished: float | None = None
    size: int = 0  # encoded bytes with headers, once finished
    chunks: list[tuple[float, int]] = field(default_factory=list)  # (time, body bytes) as they arrived


@dataclass
class NetworkLog:
    """One page's requests by DevTools request id, and which of them is the page's own document."""

    responses: dict[str, Response] = field(default_factory=dict)
    document: str = ""

    def sent(self, event: dict[str, Any]) -> None:
        self.responses[event["requestId"]] = Response(event["request"]["url"])
        if event.get("type") == "Document" and not self.document:
            self.document = event["requestId"]

    def data(self, event: dict[str, Any]) -> None:
        if response := self.responses.get(event["requestId"]):
            response.chunks.append((event["timestamp"], event["dataLength"]))

    def finished(self, event: dict[str, Any]) -> None:
        if response := self.responses.get(event["requestId"]):
            response.finished, response.size = event["timestamp"], event["encodedDataLength"]

    def clock_offset_ms(self, ends: list[tuple[str, float]]) -> tuple[float, float]:
        """DevTools time (ms) minus page time (ms): the median over responses both saw finish, each URL once; and
        how far the responses disagree (max - min, ms)."""
        # A URL fetched twice (a preload and the fetch that takes it over, say) cannot tell which end is which.
        seen = Counter(name for name, _ in ends)
        once = [(name, end) for name, end in ends if seen[name] == 1]
        finished: dict[str, list[float]] = {}
        for response in self.responses.values():
            if response.finished is not None:
                finished.setdefault(response.url, []).append(response.finished)
        gaps = [finished[name][0] * 1000 - end for name, end in once if len(finished.get(name, [])) == 1]
        if not gaps:
            raise RuntimeError("no response both in the page's performance entries and in the DevTools log")
        return statistics.median(gaps), max(gaps) - min(gaps)


@dataclass(frozen=True, slots=True)
class Load:
    """One page load; times in ms from navigation start, bytes as delivered by the network."""

    ttff: float
    ready: float
    height: int  # of the first frame
    by_kind: dict[str, int]  # bytes before the first frame by BYTE_KINDS: whole responses with headers, else the body
    in_flight_bytes: int  # body bytes of responses still arriving at the first frame
    milestones: dict[str, float]  # MILESTONES' and "ready" and "first frame"
    clock_spread: float  # how well the DevTools clock was put on the page's (ms)

    @property
    def bytes(self) -> int:
        return sum(self.by_kind.values())


def kind(url: str) -> str:
    """What a response is, by its URL (the media layout's names; query strings ignored)."""
    path = url.split("?", 1)[0]
    name = path.rsplit("/", 1)[-1]
    if name.startswith("storyboard."):
        return "storyboard"
    by_name = {"master.m3u8": "master", "index.m3u8": "playlist", "init.mp4": "init", "download.mp4": "MP4"}
    by_suffix = {".m4s": "segment", ".js": "script", ".css": "stylesheet", ".jpg": "poster", ".webp": "poster"}
    return by_name.get(name) or next((k for suffix, k in by_suffix.items() if name.endswith(suffix)), "other")


# The kinds whose first response to end is a milestone on the way to the first frame.
MILESTONES = ("document", "script", "master", "playlist", "init", "segment")


def summarise(log: NetworkLog, marks: dict[str, Any], offset_ms: float, spread_ms: float) -> Load:
    """The load's figures, given the DevTools clock's offset from the page's (ms)."""
    ttff = float(marks["firstFrame"])
    deadline = (offset_ms + ttff) / 1000  # the first frame on the DevTools clock
    in_flight = 0
    by_kind: dict[str, int] = {}
    milestones: dict[str, float] = {"ready": float(marks["ready"]), "first frame": ttff}
    for request_id, response in log.responses.items():
        what = "document" if request_id == log.document else kind(response.url)
        if response.finished is not None and response.finished <= deadline:
            arrived = response.size
        else:
            arrived = sum(size for at, size in response.chunks if at <= deadline)
            in_flight += arrived
        column = "playlist" if what == "master" else what
        by_kind[column] = by_kind.get(column, 0) + arrived
        if response.finished is not None and what in MILESTONES:
            end = response.finished * 1000 - offset_ms
            milestones[what] = min(end, milestones.get(what, end))
    height = int(marks["height"])
    return Load(ttff, float(marks["ready"]), height, by_kind, in_flight, milestones, spread_ms)


async def load_once(browser: Browser, variant: Variant) -> Load:
    """Open `variant` in a fresh context, let the watcher click Play, and wait for the first frame."""
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]  # a ViewportSize TypedDict
    try:
        await context.add_init_script(WATCHER)
        if variant.html is not None:
            page_html = variant.html
            await context.route(variant.url, lambda route: route.fulfill(body=page_html, content_type="text/html"))
            # A fulfilled page has no address, so Chromium counts it public, and asks before it reaches loopback
            # (the script server): granted, as a person would.
            await context.grant_permissions(["local-network-access"])
        page = await context.new_page()
        log = NetworkLog()
        cdp = await context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", log.sent)
        cdp.on("Network.dataReceived", log.data)
        cdp.on("Network.loadingFinished", log.finished)
        await cdp.send("Network.enable")
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(variant.url, wait_until="commit")
        try:
            await page.wait_for_function("window.__benchMarks.firstFrame !== null", timeout=FRAME_TIMEOUT_MS)
        except PlaywrightTimeoutError:
            state = await page.evaluate(STATE)
            raise RuntimeError(
                f"{variant.label}: no frame in {FRAME_TIMEOUT_MS} ms; {state}; errors {errors}"
            ) from None
        seen = await page.evaluate(ENTRIES)
        await asyncio.sleep(0.05)  # DevTools events reach us apart from the page's answer; let any straggler in
        offset, spread = log.clock_offset_ms([(name, float(end)) for name, end in seen["ends"]])
        return summarise(log, seen["marks"], offset, spread)
    finally:
        await context.close()


# -- the recording ---------------------------------------------------------------------------------------------------


async def import_clip(http: httpx.AsyncClient, clip: Path) -> str:
    """Upload `clip` as an import in one tus creation-with-upload POST; returns the new recording's id."""
    data = await asyncio.to_thread(clip.read_bytes)
    metadata = f"filename {base64.b64encode(clip.name.encode()).decode()}"
    headers = {
        "Tus-Resumable": "1.0.0",
        "Upload-Length": str(len(data)),
        "Upload-Metadata": metadata,
        "Content-Type": "application/offset+octet-stream",
    }
    response = await http.post("/api/v1/uploads/", content=data, headers=headers)
    if response.status_code != 201:
        raise RuntimeError(f"the import answered {response.status_code}: {response.text[:200]}")
    return response.headers["Framecast-Recording-Id"]


async def processed(http: httpx.AsyncClient, recording_id: str) -> dict[str, Any]:
    """Poll until the recording is READY with every stage succeeded; returns its JSON."""
    async with asyncio.timeout(PROCESSING_TIMEOUT_SECONDS):
        while True:
            recording: dict[str, Any] = (await http.get(f"/api/v1/recordings/{recording_id}")).raise_for_status().json()
            if recording["status"] == "FAILED":
                raise RuntimeError(f"recording {recording_id} failed: {recording['failure_reason']}")
            stages = recording["processing"] or {}
            if recording["status"] == "READY" and all(stages.get(s, {}).get("status") == "SUCCEEDED" for s in STAGES):
                return recording
            await asyncio.sleep(0.5)


def renditions(master: str) -> list[str]:
    """Names like "1080p 3.4 Mb/s" for a master playlist's variants, in its order."""
    found = []
    for line in master.splitlines():
        if line.startswith("#EXT-X-STREAM-INF:"):
            attributes = dict(a.split("=", 1) for a in line.split(":", 1)[1].split(",") if "=" in a)
            height = attributes.get("RESOLUTION", "x?").split("x")[1]
            found.append(f"{height}p {int(attributes['BANDWIDTH']) / 1e6:.1f} Mb/s")
    return found


# -- the tables ------------------------------------------------------------------------------------------------------


def p50(values: list[float]) -> str:
    return f"{percentile(values, 50):.0f}" if values else ""


def summary_table(results: dict[str, list[Load]], clip_seconds: int) -> Table:
    columns = ["page", "loads", "TTFF p50", "p95", "max", "KB before first frame p50", "p95", "max"]
    columns += ["of which in flight p50", "Play ready p50", "first frame height"]
    title = f"watch_page: time to first frame, {clip_seconds} s 1920x1080 recording, cold loads on loopback (ms)"
    table = Table(title, columns)
    for label, loads in results.items():
        ttff = [load.ttff for load in loads]
        sizes = [load.bytes / KB for load in loads]
        heights = sorted({load.height for load in loads})
        table.add(
            label,
            str(len(loads)),
            *(f"{percentile(ttff, pct):.0f}" for pct in (50, 95)),
            f"{max(ttff):.0f}",
            *(f"{percentile(sizes, pct):.0f}" for pct in (50, 95)),
            f"{max(sizes):.0f}",
            p50([load.in_flight_bytes / KB for load in loads]),
            p50([load.ready for load in loads]),
            ", ".join(f"{h}p" for h in heights),
        )
    return table


def breakdown_table(results: dict[str, list[Load]]) -> Table:
    names = ["document", "script", "ready", "master", "playlist", "init", "segment", "first frame"]
    columns = ["page", "document", "script", "Play ready", "master playlist", "rendition playlist"]
    columns += ["init segment", "first segment", "first frame"]
    table = Table("watch_page: where the time goes (p50 ms from navigation start; each response's end)", columns)
    for label, loads in results.items():
        table.add(label, *(p50([load.milestones[n] for load in loads if n in load.milestones]) for n in names))
    return table


# Columns of the bytes table; the master playlist counts with the rendition playlists.
BYTE_KINDS = ("document", "script", "stylesheet", "poster", "storyboard", "playlist", "init", "segment", "MP4", "other")


def bytes_table(results: dict[str, list[Load]]) -> Table:
    table = Table("watch_page: what arrived before the first frame (p50 KB of each kind)", ["page", *BYTE_KINDS])
    for label, loads in results.items():
        sizes = {k: [load.by_kind.get(k, 0) / KB for load in loads] for k in BYTE_KINDS}
        table.add(label, *(f"{percentile(v, 50):.1f}" if any(v) else "" for v in sizes.values()))
    return table


def verdict(loads: list[Load]) -> str:
    median = percentile([load.ttff for load in loads], 50)
    met = "met" if median < TARGET_MS else "MISSED"
    return f"Target p50 time to first frame < {TARGET_MS:.0f} ms on the watch page: {met} ({median:.0f} ms)."


# -- the benchmark ---------------------------------------------------------------------------------------------------


def require_browser() -> None:
    if not CHROMIUM.exists():
        raise SystemExit(f"watch_page needs Debian's Chromium at {CHROMIUM}: run `make browser-deps`")
    for built in (HLS_JS, DIST / "player.js"):
        if not built.is_file():
            raise SystemExit(f"{built.relative_to(REPO_ROOT)} is missing: run `make setup` (front-end dependencies)")


def variants(server: ServerProcess, recording: dict[str, Any], script_url: str) -> list[Variant]:
    master, download = recording["playback"]["hls_url"], recording["playback"]["download_url"]
    defaults = bare_hls_page(master_url=master, script_url=script_url, settings={}, on_play={})
    tuned = bare_hls_page(master_url=master, script_url=script_url, settings=PLAYER_SETTINGS, on_play=PLAYER_ON_PLAY)
    return [
        Variant(WATCH_PAGE, recording["share_url"]),
        Variant(BARE_HLS, f"{server.url}/bench/bare-hls", defaults),
        Variant(TUNED_HLS, f"{server.url}/bench/bare-hls-tuned", tuned),
        Variant(BARE_MP4, f"{server.url}/bench/bare-mp4", bare_mp4_page(download_url=download)),
    ]


async def watch_page(quick: bool) -> list[Table]:
    """Import and process the clip, then load each page in turn, warm-ups first; the watch page must play."""
    require_browser()
    clip_seconds, loads = (10, QUICK_LOADS) if quick else (60, LOADS)
    clip = await cached_clip(locate_ffmpeg(None), clip_seconds)
    started = time.monotonic()
    with framecast_server() as server, script_server(HLS_JS.read_bytes()) as script_url:
        auth = {"Authorization": f"Bearer {server.token}"}
        async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=120) as http:
            recording = await processed(http, await import_clip(http, clip))
            master = (await http.get(recording["playback"]["hls_url"])).raise_for_status().text
        processing_s = time.monotonic() - started
        pages = variants(server, recording, script_url)
        results: dict[str, list[Load]] = {page.label: [] for page in pages}
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
            try:
                for round_ in range(WARM_UP_LOADS + loads):
                    shift = round_ % len(pages)  # a drift in the machine's speed spreads over every page alike
                    for page in pages[shift:] + pages[:shift]:
                        load = await load_once(browser, page)
                        if round_ >= WARM_UP_LOADS:
                            results[page.label].append(load)
            finally:
                chromium = browser.version
                await browser.close()
    player = (DIST / "player.js").read_bytes()
    gzipped = len(gzip.compress(player, compresslevel=9))
    hls_js = json.loads((HLS_JS.parents[1] / "package.json").read_text())
    spreads = [load.clock_spread for loads in results.values() for load in loads]
    summary = summary_table(results, clip_seconds)
    summary.notes += [
        verdict(results[WATCH_PAGE]),
        f"Chromium {chromium} headless, {VIEWPORT['width']}x{VIEWPORT['height']}, software decoding; hls.js "
        f"{hls_js['version']} light build; {asset('player.js').rsplit('/', 1)[1]}: {len(player) / KB:.0f} KB, "
        f"{gzipped / KB:.0f} KB gzipped. "
        f"Renditions: {', '.join(renditions(master))}. Import and processing took {processing_s:.0f} s.",
        "TTFF: navigation start -> the first requestVideoFrameCallback (performance.now() in it) for a frame presented "
        "after the page's own click on Play, made as soon as the button exists and is enabled (Play ready). KB = 1000 "
        "bytes the network delivered before the first frame (DevTools network events, headers included), of which "
        "in flight: body bytes of responses not yet complete. The DevTools clock is put on the page's by the responses "
        f"both saw end; they agreed within {percentile(spreads, 50):.1f} ms (p50), {max(spreads):.1f} ms at worst.",
    ]
    return [summary, breakdown_table(results), bytes_table(results)]
