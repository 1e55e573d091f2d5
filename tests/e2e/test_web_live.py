"""The watch page plays a recording while it is being recorded (docs/live.md), in Chromium, against a real server.

The test records by hand as the desktop agent does: the control channel, then fMP4 segments over HTTP, one every two
seconds from a background thread while a signed-out viewer watches. The viewer joins near the live edge, sees the
Live badge, goes back to the start and back to live, sees the pause; when the recording completes the badge goes
without a reload and the whole recording plays from start to end. A page opened before anything was uploaded shows
the recording is in progress and becomes the live player when the first segment lands.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from websockets.sync.client import ClientConnection, connect

from browser import WebServer, browser, collect_errors, screenshot, web_server
from media_clips import fragmented, split_fragments

EMAIL = "live@example.com"
SEGMENT_S = 2.0  # the clips' fragment length: segments are sent as fast as they are recorded
WAIT_MS = 30_000  # generous: a busy 2-core CI machine plays and polls slowly
# hls.js gives up on a playlist without segments after its first read and two retries; the player has it read again.
EMPTY_PLAYLIST_READS = 5
Run = tuple[bytes, list[bytes]]


def digest(body: bytes) -> dict[str, str]:
    return {"Content-Digest": f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"}


class LiveRecording:
    """A recording driven over the control channel, whose segments the test uploads itself (docs/live.md)."""

    def __init__(self, http: httpx.Client, created: dict[str, Any], ws: ClientConnection) -> None:
        self.http = http
        self.id: str = created["id"]
        self.share_url: str = created["share_url"]
        self.ws = ws
        self.seq = 0

    @property
    def link_id(self) -> str:
        return self.share_url.rsplit("/", 1)[1]

    def send(self, kind: str) -> None:
        self.seq += 1
        self.ws.send(json.dumps({"type": kind, "seq": self.seq, "data": {}}))
        while json.loads(self.ws.recv())["type"] != "ACK":
            pass

    def put(self, run: int, index: int | None, body: bytes) -> None:
        name = "init" if index is None else str(index)
        response = self.http.put(f"/api/v1/recordings/{self.id}/live/{run}/{name}", content=body, headers=digest(body))
        assert response.status_code == 201, response.text

    def end(self, run: int, segments: int) -> None:
        response = self.http.post(f"/api/v1/recordings/{self.id}/live/{run}/end", json={"segments": segments})
        assert response.status_code == 200, response.text

    def complete(self, runs: int) -> dict[str, Any]:
        response = self.http.post(f"/api/v1/recordings/{self.id}/live/complete", json={"runs": runs})
        assert response.status_code == 200, response.text
        return dict(response.json())


class Feed:
    """Runs `script` in a thread (segments over time while the browser watches); `join` re-raises what failed."""

    def __init__(self, script: Callable[[], None]) -> None:
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(script,), daemon=True)
        self.thread.start()

    def _run(self, script: Callable[[], None]) -> None:
        try:
            script()
        except BaseException as exc:  # handed to the test's thread
            self.failure = exc

    def join(self, timeout: float = 120) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the feed did not finish"
        if self.failure is not None:
            raise self.failure


def wait(event: threading.Event, feed: Feed, timeout: float = 120) -> None:
    """Wait for `event` from the feed's thread, failing at once if that thread failed."""
    deadline = time.monotonic() + timeout
    while not event.wait(0.2):
        if feed.failure is not None:
            raise feed.failure
        assert time.monotonic() < deadline, "the feed never got there"


@dataclass
class Site:
    server: WebServer
    chromium: Browser
    token: str
    runs: list[Run]

    @contextlib.contextmanager
    def record(self, title: str) -> Iterator[LiveRecording]:
        """A new recording, started (RECORDING) and nothing uploaded yet."""
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.server.base_url, headers=headers, timeout=30) as http:
            response = http.post("/api/v1/recordings", json={"recording_type": "screen", "title": title})
            assert response.status_code == 201, response.text
            created = response.json()
            with connect(created["ws_url"], compression=None) as ws:
                ws.recv()
                recording = LiveRecording(http, created, ws)
                recording.send("RECORDING_STARTED")
                yield recording

    @contextlib.contextmanager
    def viewer(self) -> Iterator[tuple[BrowserContext, Page, list[str]]]:
        """A signed-out browser and its uncaught script errors."""
        context = self.chromium.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = context.new_page()
            yield context, page, collect_errors(page)
        finally:
            context.close()

    def shared(self, recording: LiveRecording) -> dict[str, Any]:
        return dict(httpx.get(f"{self.server.base_url}/api/v1/links/{recording.link_id}").raise_for_status().json())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("live")
    # Two runs (a pause between them) of a 30 s recording: 8 + 7 segments of 2 s, run 2 going on where run 1 stopped.
    runs = [
        split_fragments(fragmented(folder / "run1.mp4", seconds=16)),
        split_fragments(fragmented(folder / "run2.mp4", seconds=14, start=16)),
    ]
    with web_server(folder) as server, browser() as chromium:
        yield Site(server, chromium, server.token(EMAIL), runs)


# -- helpers -------------------------------------------------------------------------------------------------------


def player(page: Page) -> Any:
    return page.locator("#player")


def live_badge(page: Page) -> Any:
    return page.get_by_role("button", name="Live", exact=True)


def video(page: Page) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """() => { const v = document.querySelector("video");
            return {time: v.currentTime, duration: v.duration, paused: v.paused, ended: v.ended,
                    frames: v.getVideoPlaybackQuality().totalVideoFrames}; }"""
        )
    )


def wait_for_video(page: Page, condition: str, timeout: float = WAIT_MS) -> None:
    """Wait until `condition`, a JavaScript expression about `v` (the <video>), holds."""
    page.wait_for_function(
        f'(() => {{ const v = document.querySelector("video"); return {condition}; }})()', timeout=timeout
    )


# -- tests ---------------------------------------------------------------------------------------------------------


def test_a_recording_plays_live_while_it_is_recorded_then_from_start_to_end(site: Site) -> None:
    (init1, segments1), (init2, segments2) = site.runs
    run1 = len(segments1) * SEGMENT_S
    paused, resume, fed, finish, done = (threading.Event() for _ in range(5))
    with site.record("Live from the lab") as recording, site.viewer() as (_, page, errors):
        recording.put(1, None, init1)
        first = 3  # 6 s to start with
        for index in range(first):
            recording.put(1, index, segments1[index])

        def script() -> None:
            """The rest of run 1 in real time, a pause, run 2 in real time, then stop and complete when told."""
            for index in range(first, len(segments1)):
                time.sleep(SEGMENT_S)
                recording.put(1, index, segments1[index])
            recording.send("RECORDING_PAUSED")
            recording.end(1, len(segments1))
            paused.set()
            resume.wait(300)
            recording.send("RECORDING_RESUMED")
            recording.put(2, None, init2)
            for index, segment in enumerate(segments2):
                time.sleep(SEGMENT_S)
                recording.put(2, index, segment)
            fed.set()
            finish.wait(300)
            recording.end(2, len(segments2))
            recording.send("RECORDING_STOPPED")
            assert recording.complete(2)["complete"] is True
            done.set()

        page.goto(recording.share_url)
        expect(player(page)).to_have_attribute("data-live", "true")
        expect(live_badge(page)).to_be_visible()
        expect(player(page)).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
        page.evaluate("window.stillTheSamePage = true")
        wait_for_video(page, "v.currentTime >= 1")  # joined near the live edge, not at the start
        feed = Feed(script)
        try:
            page.get_by_role("button", name="Play").click()
            start = video(page)

            # It plays while the playlist grows, and the seek bar grows with it.
            wait_for_video(page, f"v.duration >= {start['duration'] + 2 * SEGMENT_S}")
            wait_for_video(page, f"!v.paused && v.currentTime > {start['time'] + 3}")
            expect(live_badge(page)).to_have_attribute("data-behind", "false")
            seek = page.get_by_role("slider", name="Seek")
            assert float(seek.get_attribute("max") or 0) >= start["duration"] + 2 * SEGMENT_S
            screenshot(page, "live-playing", full_page=False)

            # The recording pauses: what has arrived plays, and the player says why nothing more comes.
            wait(paused, feed)
            expect(page.get_by_text("Recording paused")).to_be_visible(timeout=WAIT_MS)
            expect(player(page)).to_have_attribute("data-live", "true")
            screenshot(page, "live-recording-paused", full_page=False)

            # Back to the start, all of it still there; the badge turns grey, and pressing it goes back to live.
            seek.focus()
            page.keyboard.press("Home")
            wait_for_video(page, "v.currentTime < 1")
            wait_for_video(page, "!v.paused && v.currentTime > 0.5")
            expect(live_badge(page)).to_have_attribute("data-behind", "true")
            screenshot(page, "live-behind-the-edge", full_page=False)
            resume.set()
            expect(page.get_by_text("Recording paused")).to_be_hidden(timeout=WAIT_MS)
            wait_for_video(page, f"v.duration >= {run1 + 2 * SEGMENT_S}")  # the second run is arriving
            live_badge(page).click()
            wait_for_video(page, f"!v.paused && v.currentTime > {run1}")  # past the pause, in the second run
            expect(live_badge(page)).to_have_attribute("data-behind", "false")
            screenshot(page, "live-second-run", full_page=False)

            # The recording stops and completes: the badge goes without a reload, and the length is final.
            wait(fed, feed)
            finish.set()
            wait(done, feed)
            feed.join()
        finally:
            resume.set()
            finish.set()
        expect(player(page)).to_have_attribute("data-live", "false", timeout=WAIT_MS)
        expect(live_badge(page)).to_be_hidden()
        shared = site.shared(recording)
        assert (shared["status"], shared["playback"]["live"]) == ("READY", False)
        total = run1 + len(segments2) * SEGMENT_S  # the pause is not in the video
        wait_for_video(page, f"Math.abs(v.duration - {total}) < 0.5")
        # The page's length is the server's measure of the time recorded (the test's clock, not the clip's).
        minutes, seconds = divmod(shared["duration_ms"] // 1000, 60)
        expect(page.locator("#watch-length")).to_have_text(f" · {minutes}:{seconds:02d}")
        assert page.evaluate("window.stillTheSamePage") is True

        # All of it plays from the start to the end, over the pause (at double speed, to be quick about it).
        page.get_by_role("button", name="Speed").click()
        page.get_by_role("menuitemradio", name="2x").click()
        page.keyboard.press("0")
        wait_for_video(page, "v.currentTime < 1")
        if video(page)["paused"]:
            page.get_by_role("button", name="Play").click()
        # (The ladder may be swapped in meanwhile: the player reloads in place, where it was.)
        wait_for_video(page, f"!v.paused && v.currentTime > {run1 + 1}", timeout=2 * WAIT_MS)
        wait_for_video(page, f"v.ended || v.currentTime > {total - 1}", timeout=2 * WAIT_MS)
        assert video(page)["frames"] > 0
        screenshot(page, "live-finished-played-to-the-end", full_page=False)
        assert errors == []


def test_a_page_opened_before_anything_arrived_becomes_the_live_player(site: Site) -> None:
    (init, segments), _ = site.runs
    with site.record("Starting soon") as recording, site.viewer() as (context, page, errors):
        page.goto(recording.share_url)
        expect(player(page)).to_have_attribute("data-state", "processing")
        expect(player(page)).to_have_attribute("data-live", "false")
        expect(page.locator(".player-panel")).to_have_text("This recording is still in progress.")
        expect(page.get_by_role("button", name="Play")).to_be_hidden()
        screenshot(page, "live-not-started", full_page=False)
        page.evaluate("window.stillTheSamePage = true")

        # The init segment makes it watchable: the player appears, though nothing plays until segments come.
        recording.put(1, None, init)
        expect(player(page)).to_have_attribute("data-live", "true", timeout=WAIT_MS)
        expect(page.locator(".player-panel")).to_be_hidden()
        expect(live_badge(page)).to_be_visible()
        # The playlist without segments is asked for again and again, past where hls.js alone would give up.
        page.wait_for_function(
            "n => performance.getEntriesByType('resource').filter(e => e.name.includes('index.m3u8')).length >= n",
            arg=EMPTY_PLAYLIST_READS,
            timeout=WAIT_MS,
        )
        expect(player(page)).not_to_have_attribute("data-state", "error")
        for index in range(3):
            recording.put(1, index, segments[index])
        expect(player(page)).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
        page.get_by_role("button", name="Play").click()
        wait_for_video(page, "!v.paused && v.currentTime > 2.5 && v.getVideoPlaybackQuality().totalVideoFrames > 0")
        assert page.evaluate("window.stillTheSamePage") is True
        screenshot(page, "live-started-after-opening", full_page=False)

        # The embeddable player is live too.
        embed = context.new_page()
        embed.goto(recording.share_url.replace("/v/", "/embed/"))
        expect(player(embed)).to_have_attribute("data-live", "true")
        expect(live_badge(embed)).to_be_visible()
        expect(player(embed)).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
        screenshot(embed, "live-embed", full_page=False)
        assert errors == []
