"""The browser recorder at /record, in Chromium with its fake camera and microphone, against a real `framecast serve`.

A person records from the camera (pausing once), gets a share link and a stranger watches it; a recording survives
the upload endpoint going away for a few seconds with every byte; a cancelled recording leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, WebSocketRoute, expect

from browser import WebServer, browser, collect_errors, screenshot, sign_in, web_server

EMAIL = "rec@example.com"
PASSWORD = "correct horse battery"
START_TIMEOUT_MS = 20_000
UPLOADS = "/api/v1/uploads/"
# Counts what MediaRecorder hands the page, so a test can compare it with what reached the server.
COUNT_RECORDED_BYTES = """
window.__recordedBytes = 0;
const Original = window.MediaRecorder;
window.MediaRecorder = class extends Original {
  constructor(...args) {
    super(...args);
    this.addEventListener("dataavailable", (event) => { window.__recordedBytes += event.data.size; });
  }
};
"""


@dataclass
class Studio:
    server: WebServer
    chromium: Browser
    api: httpx.Client

    def recorder(self) -> tuple[BrowserContext, Page, list[str]]:
        """A signed-in page on /record."""
        context = self.chromium.new_context(viewport={"width": 1280, "height": 860})
        context.add_init_script(COUNT_RECORDED_BYTES)
        page = context.new_page()
        errors = collect_errors(page)
        sign_in(page, self.server.base_url, EMAIL, PASSWORD)
        page.goto(f"{self.server.base_url}/record")
        return context, page, errors

    def newest(self) -> dict[str, Any]:
        items = self.api.get("/api/v1/recordings", params={"limit": 1}).raise_for_status().json()["items"]
        assert items, "no recording was created"
        return dict(items[0])

    def wait_for(self, recording_id: str, statuses: set[str], timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            recording = dict(self.api.get(f"/api/v1/recordings/{recording_id}").raise_for_status().json())
            if recording["status"] in statuses:
                return recording
            assert recording["status"] != "FAILED", recording["failure_reason"]
            assert time.monotonic() < deadline, f"still {recording['status']} after {timeout} s"
            time.sleep(0.5)


@contextlib.contextmanager
def open_studio(folder: Path, **settings: str) -> Iterator[Studio]:
    with web_server(folder, **settings) as server, browser() as chromium:
        server.add_user(EMAIL, PASSWORD)
        token = server.token(EMAIL)
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as api:
            yield Studio(server, chromium, api)


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    with open_studio(tmp_path) as opened:
        yield opened


def start_camera_recording(page: Page) -> None:
    page.get_by_role("radio", name="Camera", exact=True).check()
    expect(page.get_by_label("Live preview")).to_be_visible()
    page.get_by_role("button", name="Start recording").click()
    expect(page.locator("#countdown")).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_be_enabled(timeout=START_TIMEOUT_MS)


def raw_upload_bytes(server: WebServer, recording_id: str) -> int:
    """The size of the recording's assembled upload in the blob store."""
    raw = server.data_dir / "blobs" / "recordings" / recording_id / "raw"
    files = [path for path in raw.rglob("*") if path.is_file()]
    assert len(files) == 1, files
    return files[0].stat().st_size


def test_record_pause_resume_and_a_stranger_watches(studio: Studio) -> None:
    context, page, errors = studio.recorder()
    start_camera_recording(page)
    began = time.monotonic()
    page.wait_for_timeout(2500)
    screenshot(page, "web-recorder-recording")
    page.get_by_role("button", name="Pause").click()
    paused = time.monotonic()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    page.wait_for_timeout(2000)
    page.get_by_role("button", name="Resume").click()
    resumed = time.monotonic()
    page.wait_for_timeout(2500)
    page.get_by_role("button", name="Stop").click()
    recorded_s = (paused - began) + (time.monotonic() - resumed)

    share = page.get_by_label("Share link")
    expect(share).to_have_value(re.compile(r"/v/"), timeout=60_000)
    expect(page.get_by_role("button", name="Copy link")).to_be_visible()
    expect(page.get_by_role("link", name="Open", exact=True)).to_have_attribute("href", share.input_value())
    screenshot(page, "web-recorder-done")
    recording = studio.wait_for(studio.newest()["id"], {"READY"})
    assert recording["recording_type"] == "camera"
    assert recording["settings"]["source"] == "browser"
    assert recording["segment_count"] == 2
    # About 5 s were recorded; the clicks themselves take some of the test's time, so it measures what it recorded.
    # The 2 s pause is not in it.
    assert 4000 <= recording["duration_ms"] <= 10_000, recording["duration_ms"]
    assert abs(recording["duration_ms"] / 1000 - recorded_s) < 1.0, (recording["duration_ms"], recorded_s)
    assert raw_upload_bytes(studio.server, recording["id"]) == page.evaluate("window.__recordedBytes")
    assert errors == []
    share_url = share.input_value()
    context.close()

    stranger = studio.chromium.new_context(viewport={"width": 1280, "height": 800})
    watch = stranger.new_page()
    watch_errors = collect_errors(watch)
    watch.goto(share_url)
    expect(watch.locator("video")).to_be_attached()
    watch.evaluate("document.querySelector('video').muted = true")
    watch.evaluate("document.querySelector('video').play().catch(() => {})")
    watch.wait_for_function("document.querySelector('video').currentTime > 1", timeout=30_000)
    frames = watch.evaluate("document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames")
    assert frames > 0
    assert watch.evaluate("document.querySelector('video').duration") == pytest.approx(recorded_s, abs=1.0)

    watch.evaluate("document.querySelector('video').pause()")  # a 5 s video would end before the switch
    quality = watch.get_by_role("button", name="Quality")
    expect(quality).to_be_visible(timeout=15_000)  # the ladder of a 720p camera has more than one rung
    quality.click()
    lowest = watch.get_by_role("menuitemradio", name=re.compile(r"^\d+p$")).last
    height = lowest.inner_text().removesuffix("p")
    lowest.click()
    expect(watch.locator(".player")).to_have_attribute("data-quality", height)
    watch.evaluate("(v => { v.currentTime = 0; return v.play(); })(document.querySelector('video'))")
    watch.wait_for_function("document.querySelector('video').currentTime > 1", timeout=30_000)
    expect(watch.locator(".player")).to_have_attribute("data-playing-height", height)
    screenshot(watch, "web-recorder-watch")
    assert watch_errors == []
    stranger.close()


# What Firefox offers: MediaRecorder without MP4, so the page records WebM.
WEBM_ONLY = """
const supported = MediaRecorder.isTypeSupported.bind(MediaRecorder);
MediaRecorder.isTypeSupported = (type) => !type.includes("mp4") && supported(type);
"""


def test_a_webm_recording_as_firefox_makes_it_plays(studio: Studio) -> None:
    """MediaRecorder's WebM has no frame rate in its header, and a pause makes frame timing irregular: the server
    measures the rate from the frames instead of refusing the upload as 1000 fps."""
    context, page, errors = studio.recorder()
    context.add_init_script(WEBM_ONLY)
    page.reload()
    start_camera_recording(page)
    page.wait_for_timeout(2000)
    page.get_by_role("button", name="Pause").click()
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Resume").click()
    page.wait_for_timeout(2000)
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_label("Share link")).to_have_value(re.compile(r"/v/"), timeout=60_000)
    recording = studio.wait_for(studio.newest()["id"], {"READY"})
    assert recording["settings"]["mime_type"].startswith("video/webm"), recording["settings"]
    assert recording["playback"]["hls_url"]
    assert 3000 <= recording["duration_ms"] <= 8000, recording["duration_ms"]
    screenshot(page, "web-recorder-webm-done")
    assert errors == []
    context.close()


def test_a_network_blip_loses_nothing(studio: Studio) -> None:
    context, page, errors = studio.recorder()
    start_camera_recording(page)
    with page.expect_request(lambda request: request.method == "PATCH" and UPLOADS in request.url, timeout=30_000):
        pass  # the recording is going up while it is being made
    refused: list[str] = []
    control_down = True

    def refuse(route: Route) -> None:
        refused.append(route.request.method)
        route.abort("internetdisconnected")

    def control(ws: WebSocketRoute) -> None:
        if control_down:
            ws.close()
        else:
            ws.connect_to_server()

    page.route(f"**{UPLOADS}**", refuse)
    page.route_web_socket(re.compile(r"/control\?"), control)
    context.set_offline(True)
    page.wait_for_timeout(1500)
    context.set_offline(False)  # the page drops its control channel, which cannot come back yet
    expect(page.get_by_text("Reconnecting…")).to_be_visible()
    wait_until(page, lambda: bool(refused), "no upload request was tried while the uploads were unreachable")
    page.get_by_role("button", name="Pause").click()  # waits for the channel to come back
    screenshot(page, "web-recorder-blip")
    control_down = False
    page.unroute(f"**{UPLOADS}**")
    expect(page.get_by_text("Reconnecting…")).to_be_hidden(timeout=20_000)
    page.get_by_role("button", name="Resume").click()
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Stop").click()

    expect(page.get_by_label("Share link")).to_have_value(re.compile(r"/v/"), timeout=90_000)
    screenshot(page, "web-recorder-blip-done")
    recording = studio.wait_for(studio.newest()["id"], {"READY"})
    assert recording["segment_count"] == 2  # the pause sent while away arrived, once
    assert raw_upload_bytes(studio.server, recording["id"]) == page.evaluate("window.__recordedBytes")
    # The server times the pause from when it heard of it, after the reconnect: never less than the page recorded.
    assert recording["duration_ms"] >= recording["client_duration_ms"] - 1000, recording
    assert errors == []
    context.close()


def wait_until(page: Page, condition: Callable[[], bool], message: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        page.wait_for_timeout(100)


def test_cancel_asks_first_and_leaves_nothing(studio: Studio) -> None:
    context, page, errors = studio.recorder()
    start_camera_recording(page)
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Cancel").click()
    dialog = page.get_by_role("dialog", name="Discard this recording?")
    expect(dialog).to_be_visible()
    screenshot(page, "web-recorder-cancel")
    dialog.get_by_role("button", name="Keep recording").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Pause")).to_be_enabled()

    page.get_by_role("button", name="Cancel").click()
    dialog.get_by_role("button", name="Discard").click()
    expect(page.get_by_role("button", name="Start recording")).to_be_visible()
    page.wait_for_function("document.querySelector('#preview-video').videoWidth > 0")  # the camera is back
    screenshot(page, "web-recorder-cancelled")
    recording = studio.wait_for(studio.newest()["id"], {"ABORTED"}, timeout=15)
    assert recording["playback"]["hls_url"] is None
    uploads = studio.server.data_dir / "uploads"
    assert not [path for path in uploads.rglob("*") if path.is_file()] if uploads.exists() else True
    assert errors == []
    context.close()


def test_the_time_limit_stops_the_recording_and_keeps_it(tmp_path: Path) -> None:
    with open_studio(tmp_path, max_duration_seconds="3") as studio:
        context, page, errors = studio.recorder()
        start_camera_recording(page)

        expect(page.get_by_label("Share link")).to_have_value(re.compile(r"/v/"), timeout=60_000)
        expect(page.get_by_role("status").filter(has_text="3-second limit")).to_be_visible()
        screenshot(page, "web-recorder-time-limit")
        recording = studio.wait_for(studio.newest()["id"], {"READY"})
        assert recording["stop_reason"] == "time_limit"
        assert recording["duration_ms"] == 3000
        assert raw_upload_bytes(studio.server, recording["id"]) == page.evaluate("window.__recordedBytes")
        assert errors == []
        context.close()
