"""The browser recorder at /record, in Chromium with its fake camera and microphone, against a real `framecast serve`.

A person records from the camera (pausing once), gets a share link that is READY the moment they stop (the MP4 went
up as live segments) and a stranger watches it; the share link plays while the recording is still being made; a
recording survives the uploads and the control channel going away for a few seconds with every byte; a cancelled
recording leaves nothing behind; a browser without MP4 recording (Firefox) uploads WebM through tus instead. The
recorder's own MP4 splitter is also run on files with node.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
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
from conftest import run_recorder_script
from framecast.domain import fmp4
from media_clips import video

EMAIL = "rec@example.com"
PASSWORD = "correct horse battery"
START_TIMEOUT_MS = 20_000
UPLOADS = "/api/v1/uploads/"
LIVE = re.compile(r"/api/v1/recordings/[^/]+/live/")
# Keeps what MediaRecorder hands the page, so a test can compare it with what reached the server.
KEEP_RECORDED_BYTES = """
window.__recorded = [];
window.__recordedBytes = 0;
const Original = window.MediaRecorder;
window.MediaRecorder = class extends Original {
  constructor(...args) {
    super(...args);
    this.addEventListener("dataavailable", (event) => {
      window.__recorded.push(event.data);
      window.__recordedBytes += event.data.size;
    });
  }
};
window.__recordedSha256 = async () => {
  const hash = await crypto.subtle.digest("SHA-256", await new Blob(window.__recorded).arrayBuffer());
  return Array.from(new Uint8Array(hash), (byte) => byte.toString(16).padStart(2, "0")).join("");
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
        context.add_init_script(KEEP_RECORDED_BYTES)
        page = context.new_page()
        errors = collect_errors(page)
        sign_in(page, self.server.base_url, EMAIL, PASSWORD)
        page.goto(f"{self.server.base_url}/record")
        return context, page, errors

    def newest(self) -> dict[str, Any]:
        items = self.api.get("/api/v1/recordings", params={"limit": 1}).raise_for_status().json()["items"]
        assert items, "no recording was created"
        return dict(items[0])

    def get(self, recording_id: str) -> dict[str, Any]:
        return dict(self.api.get(f"/api/v1/recordings/{recording_id}").raise_for_status().json())

    def live(self, recording_id: str) -> dict[str, Any]:
        """What the server holds of the recording's live segments (docs/live.md)."""
        return dict(self.api.get(f"/api/v1/recordings/{recording_id}/live").raise_for_status().json())

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
def open_studio(folder: Path, chromium: Browser, **settings: str) -> Iterator[Studio]:
    with web_server(folder, **settings) as server:
        server.add_user(EMAIL, PASSWORD)
        token = server.token(EMAIL)
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as api:
            yield Studio(server, chromium, api)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with browser() as launched:
        yield launched


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, chromium: Browser) -> Iterator[Studio]:
    """One server and one Chromium for the module (each test opens its own browser context and recording): starting
    them takes about 9 s, more than most tests here."""
    with open_studio(tmp_path_factory.mktemp("studio"), chromium) as opened:
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


def ready_at_stop(studio: Studio, recording_id: str) -> dict[str, Any]:
    """The recording as the page shows its share link: READY already, made playable by its live segments and not by
    processing an upload."""
    recording = studio.get(recording_id)
    assert recording["status"] == "READY", recording
    assert recording["playback"]["hls_url"]
    assert recording["playback"]["live"] is False
    assert "playable" not in (recording["processing"] or {}), recording["processing"]
    return recording


@dataclass
class LivePlaylist:
    text: str
    segments: list[str]
    fetched: bytes  # the init segment and every listed segment, in the playlist's order


def live_playlist(hls_url: str) -> LivePlaylist:
    """The live rendition next to the master playlist (play/index.m3u8), and what it lists, fetched by a stranger."""
    base = hls_url.rsplit("/", 1)[0] + "/play/"
    with httpx.Client() as anonymous:
        master = anonymous.get(hls_url).raise_for_status().text
        text = anonymous.get(base + "index.m3u8").raise_for_status().text
        uris = []
        for line in text.splitlines():
            if line.startswith("#EXT-X-MAP:"):
                found = re.search(r'URI="([^"]+)"', line)
                assert found, line
                uris.append(found.group(1))
            elif line and not line.startswith("#"):
                uris.append(line)
        fetched = b"".join(anonymous.get(base + uri).raise_for_status().content for uri in uris)
    assert "#EXTM3U" in master
    return LivePlaylist(text, [uri for uri in uris if uri.endswith(".m4s")], fetched)


def playlist_seconds(playlist: str) -> float:
    return sum(float(line.split(":")[1].rstrip(",")) for line in playlist.splitlines() if line.startswith("#EXTINF:"))


def assert_uploaded_live(studio: Studio, page: Page, recording: dict[str, Any]) -> LivePlaylist:
    """The recording went up as one run of live segments, the playlist lists every one of them without a gap and
    ends, and its init segment and segments are, byte for byte, what MediaRecorder recorded."""
    state = studio.live(recording["id"])
    [run] = state["runs"]
    count = run["segments"]
    assert count >= 1, state
    assert run == {"run": 1, "init": True, "segments": count, "received": list(range(count)), "ended": count}
    assert (state["declared_runs"], state["missing"], state["complete"]) == (1, [], True), state
    playlist = live_playlist(recording["playback"]["hls_url"])
    assert playlist.segments == [f"r0001/{index:05d}.m4s" for index in range(count)]
    assert "#EXT-X-DISCONTINUITY" not in playlist.text.splitlines()
    assert playlist.text.rstrip().endswith("#EXT-X-ENDLIST")
    assert len(playlist.fetched) == page.evaluate("window.__recordedBytes")
    assert hashlib.sha256(playlist.fetched).hexdigest() == page.evaluate("window.__recordedSha256()")
    # Its length is what plays.
    assert recording["duration_ms"] == pytest.approx(1000 * playlist_seconds(playlist.text), abs=5)
    return playlist


def wait_until(page: Page, condition: Callable[[], bool], message: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        page.wait_for_timeout(100)


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
    recording = ready_at_stop(studio, studio.newest()["id"])
    assert recording["recording_type"] == "camera"
    assert recording["settings"]["source"] == "browser"
    assert recording["segment_count"] == 2
    # About 5 s were recorded; the clicks themselves take some of the test's time, so it measures what it recorded.
    # The 2 s pause is not in it.
    assert 4000 <= recording["duration_ms"] <= 10_000, recording["duration_ms"]
    assert abs(recording["duration_ms"] / 1000 - recorded_s) < 1.0, (recording["duration_ms"], recorded_s)
    # One run: MediaRecorder's pause leaves the paused time out of its timestamps, so nothing marks it.
    playlist = assert_uploaded_live(studio, page, recording)
    assert len(playlist.segments) >= 2
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


def test_a_webm_recording_as_firefox_goes_live_and_is_ready_at_stop(studio: Studio) -> None:
    """A browser that records only WebM sends its clusters as live segments, and the server transcodes each as it
    arrives: the link plays while recording and is READY at stop, with no processing in between. MediaRecorder's
    WebM has no frame rate in its header and a pause makes frame timing irregular; every segment's transcode must
    still make the same init segment."""
    context, page, errors = studio.recorder()
    context.add_init_script(WEBM_ONLY)
    page.reload()
    start_camera_recording(page)
    recording = studio.newest()
    wait_until(page, lambda: studio.live(recording["id"])["runs"][:1] != [], "no WebM header arrived", 30)
    page.wait_for_timeout(2500)
    page.get_by_role("button", name="Pause").click()
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Resume").click()
    page.wait_for_timeout(3000)
    while_recording = live_playlist(studio.get(recording["id"])["playback"]["hls_url"])
    assert while_recording.segments, "the live playlist listed nothing while recording"
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_label("Share link")).to_have_value(re.compile(r"/v/"), timeout=60_000)

    finished = ready_at_stop(studio, recording["id"])
    assert finished["settings"]["mime_type"].startswith("video/webm"), finished["settings"]
    state = studio.live(recording["id"])
    [run] = state["runs"]
    assert run["received"] == list(range(run["segments"]))
    assert run["ended"] == run["segments"] >= 2
    playlist = live_playlist(finished["playback"]["hls_url"])
    assert playlist.segments == [f"r0001/{index:05d}.m4s" for index in range(run["segments"])]
    assert playlist.segments[: len(while_recording.segments)] == while_recording.segments
    assert playlist.text.rstrip().endswith("#EXT-X-ENDLIST")
    assert 4000 <= finished["duration_ms"] <= 9000, finished["duration_ms"]
    assert finished["duration_ms"] == pytest.approx(1000 * playlist_seconds(playlist.text), abs=5)
    # What was stored is H.264 with the recording's own Opus: one init segment, and segments that follow on.
    base = finished["playback"]["hls_url"].rsplit("/", 1)[0] + "/play/"
    with httpx.Client() as anonymous:
        init = fmp4.parse_init(anonymous.get(base + "r0001/init.mp4").raise_for_status().content)
        starts = [fmp4.parse_segment(anonymous.get(base + uri).raise_for_status().content, init)
                  for uri in playlist.segments]  # fmt: skip
    assert init.codecs == "avc1.640029,Opus"
    for before, after in itertools.pairwise(starts):
        assert after.start_s == pytest.approx(before.start_s + before.duration_s, abs=0.1)

    # A stranger plays it in Chromium.
    stranger = studio.chromium.new_context()
    watch = stranger.new_page()
    watch_errors = collect_errors(watch)
    watch.goto(finished["share_url"])
    expect(watch.locator("video")).to_be_attached()
    watch.evaluate("document.querySelector('video').muted = true")
    watch.evaluate("document.querySelector('video').play().catch(() => {})")
    watch.wait_for_function("document.querySelector('video').currentTime > 2", timeout=30_000)
    assert watch_errors == []
    stranger.close()
    screenshot(page, "web-recorder-webm-done")
    assert errors == []
    context.close()


def test_webm_the_server_cannot_transcode_goes_up_whole_through_tus(studio: Studio) -> None:
    """When the server refuses the WebM header (415 unsupported_media: a codec it cannot transcode live), nothing
    else has been sent: the page uploads the whole recording through tus instead, and processing makes it playable."""
    context, page, errors = studio.recorder()
    context.add_init_script(WEBM_ONLY)
    refusal = json.dumps({"error": {"code": "unsupported_media", "message": "V_THEORA cannot be transcoded live"}})
    page.route("**/live/1/init", lambda route: route.fulfill(status=415, body=refusal, content_type="application/json"))
    page.reload()
    start_camera_recording(page)
    page.wait_for_timeout(3000)
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_label("Share link")).to_have_value(re.compile(r"/v/"), timeout=60_000)
    recording = studio.wait_for(studio.newest()["id"], {"READY"})
    assert "playable" in recording["processing"], recording["processing"]
    assert studio.live(recording["id"])["runs"] == []
    assert raw_upload_bytes(studio.server, recording["id"]) == page.evaluate("window.__recordedBytes")
    assert [error for error in errors if "415" not in error] == []
    context.close()


def test_the_share_link_plays_while_recording(studio: Studio) -> None:
    """Before stop, a stranger holding the link already gets a live playlist that lists segments; at stop it ends,
    having only grown."""
    context, page, errors = studio.recorder()
    start_camera_recording(page)
    recording = studio.newest()
    link_id = recording["share_url"].rstrip("/").rsplit("/", 1)[1]
    seen: list[str] = []
    with httpx.Client(base_url=studio.server.base_url) as stranger:

        def playlist_lists_segments() -> bool:
            shared = stranger.get(f"/api/v1/links/{link_id}").raise_for_status().json()
            hls_url = shared["playback"]["hls_url"]
            if not hls_url:
                return False
            master = stranger.get(hls_url).raise_for_status().text
            assert "play/index.m3u8" in master.splitlines(), master
            playlist = live_playlist(hls_url)
            seen[:] = playlist.segments
            assert shared["playback"]["live"] is True
            assert "#EXT-X-PLAYLIST-TYPE:EVENT" in playlist.text
            assert "#EXT-X-ENDLIST" not in playlist.text
            return len(seen) >= 2

        wait_until(page, playlist_lists_segments, "the share link's playlist listed no segments while recording", 60)
    assert studio.get(recording["id"])["status"] == "RECORDING"
    screenshot(page, "web-recorder-live")
    page.get_by_role("button", name="Stop").click()

    expect(page.get_by_label("Share link")).to_have_value(re.compile(r"/v/"), timeout=60_000)
    finished = ready_at_stop(studio, recording["id"])
    playlist = assert_uploaded_live(studio, page, finished)
    assert playlist.segments[: len(seen)] == seen
    assert errors == []
    context.close()


def test_a_network_blip_loses_nothing(studio: Studio) -> None:
    context, page, errors = studio.recorder()
    start_camera_recording(page)
    with page.expect_request(
        lambda request: request.method == "PUT" and bool(LIVE.search(request.url)), timeout=30_000
    ):
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

    page.route(LIVE, refuse)
    page.route_web_socket(re.compile(r"/control\?"), control)
    context.set_offline(True)
    page.wait_for_timeout(1500)
    context.set_offline(False)  # the page drops its control channel, which cannot come back yet
    expect(page.get_by_text("Reconnecting…")).to_be_visible()
    wait_until(page, lambda: bool(refused), "no segment was tried while the live endpoint was unreachable")
    page.get_by_role("button", name="Pause").click()  # waits for the channel to come back
    screenshot(page, "web-recorder-blip")
    control_down = False
    page.unroute(LIVE)
    expect(page.get_by_text("Reconnecting…")).to_be_hidden(timeout=20_000)
    page.get_by_role("button", name="Resume").click()
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Stop").click()

    expect(page.get_by_label("Share link")).to_have_value(re.compile(r"/v/"), timeout=90_000)
    screenshot(page, "web-recorder-blip-done")
    recording = ready_at_stop(studio, studio.newest()["id"])
    assert recording["segment_count"] == 2  # the pause sent while away arrived, once
    # Every segment made while the endpoint was away arrived later: no gap, and every byte recorded is there.
    assert_uploaded_live(studio, page, recording)
    # The length is what plays, which is what the page recorded (the pause, sent while away, not in it).
    assert abs(recording["duration_ms"] - recording["client_duration_ms"]) < 1000, recording
    assert errors == []
    context.close()


def test_damaged_and_refused_segments_are_sent_again(studio: Studio) -> None:
    """A segment damaged on the way (400 segment_corrupt) goes again as it was; one the server says lacks its init
    segment (409 init_missing) goes again after the init segment."""
    context, page, errors = studio.recorder()
    puts: list[str] = []
    meddled: set[str] = set()

    def meddle(route: Route) -> None:
        request = route.request
        name = request.url.rsplit("/", 1)[1]
        if request.method != "PUT":
            route.continue_()
            return
        puts.append(name)
        if name == "0" and name not in meddled:
            meddled.add(name)
            body = bytearray(request.post_data_buffer or b"")
            body[len(body) // 2] ^= 0xFF
            route.continue_(post_data=bytes(body))
        elif name == "1" and name not in meddled:
            meddled.add(name)
            error = {"code": "init_missing", "message": "send run 1's init segment before its media segments"}
            route.fulfill(status=409, json={"error": error})
        else:
            route.continue_()

    page.route(LIVE, meddle)
    start_camera_recording(page)
    wait_until(page, lambda: puts.count("1") >= 2, "segment 1 was not sent again", 60)
    page.get_by_role("button", name="Stop").click()

    expect(page.get_by_label("Share link")).to_have_value(re.compile(r"/v/"), timeout=60_000)
    recording = ready_at_stop(studio, studio.newest()["id"])
    assert_uploaded_live(studio, page, recording)
    assert puts[:5] == ["init", "0", "0", "1", "init"], puts
    assert puts[5] == "1", puts
    assert errors == []
    context.close()


def test_cancel_asks_first_and_leaves_nothing(studio: Studio) -> None:
    context, page, errors = studio.recorder()
    start_camera_recording(page)
    recording_id = studio.newest()["id"]
    # Segments are on the server before the cancel, so there is something for it to remove.
    wait_until(page, lambda: bool(studio.live(recording_id)["runs"]), "no segment arrived while recording")
    wait_until(page, lambda: studio.live(recording_id)["runs"][0]["segments"] >= 1, "no segment arrived")
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
    recording = studio.wait_for(recording_id, {"ABORTED"}, timeout=15)
    link_id = recording["share_url"].rstrip("/").rsplit("/", 1)[1]
    assert httpx.get(f"{studio.server.base_url}/api/v1/links/{link_id}").status_code == 404
    media = studio.server.data_dir / "blobs" / "recordings" / recording_id / "media"
    wait_until(
        page,
        lambda: not media.exists() or not [path for path in media.rglob("*") if path.is_file()],
        f"the cancelled recording's segments are still stored: {sorted(media.rglob('*'))}",
    )
    assert errors == []
    context.close()


def test_an_audio_recording_goes_up_as_live_segments_too(studio: Studio) -> None:
    context, page, errors = studio.recorder()
    page.get_by_role("radio", name="Audio only").check()
    page.get_by_role("button", name="Start recording").click()
    expect(page.get_by_role("button", name="Pause")).to_be_enabled(timeout=START_TIMEOUT_MS)
    page.wait_for_timeout(3000)
    page.get_by_role("button", name="Stop").click()

    expect(page.get_by_label("Share link")).to_have_value(re.compile(r"/v/"), timeout=60_000)
    recording = ready_at_stop(studio, studio.newest()["id"])
    assert recording["settings"]["mime_type"].startswith("audio/mp4"), recording["settings"]
    assert_uploaded_live(studio, page, recording)
    assert errors == []
    context.close()


def test_the_time_limit_stops_the_recording_and_keeps_it(tmp_path: Path, chromium: Browser) -> None:
    with open_studio(tmp_path, chromium, max_duration_seconds="3") as studio:
        context, page, errors = studio.recorder()
        start_camera_recording(page)

        expect(page.get_by_label("Share link")).to_have_value(re.compile(r"/v/"), timeout=60_000)
        expect(page.get_by_role("status").filter(has_text="3-second limit")).to_be_visible()
        screenshot(page, "web-recorder-time-limit")
        recording = ready_at_stop(studio, studio.newest()["id"])
        assert recording["stop_reason"] == "time_limit"
        assert_uploaded_live(studio, page, recording)
        # The length is what plays: the limit, and what the page recorded until the server's stop reached it.
        assert recording["duration_ms"] >= 2500, recording
        assert errors == []
        context.close()


# -- the recorder's MP4 splitter (frontend/src/recorder/boxes.ts, segments.ts), run with node -----------------------


def split_with_recorder(node: str, path: Path, *args: str) -> list[dict[str, Any]]:
    return run_recorder_script(node, "recorder_segments.mjs", path, *args)


def with_large_sizes(data: bytes) -> bytes:
    """The same MP4 with its ftyp header in the 64-bit form (size 1, then the size in 8 bytes), and a 64-bit free
    box in front of every moof (which the segment in front of it then carries)."""
    out = bytearray()
    for box in fmp4.boxes(data):
        if box.kind == "ftyp":
            payload = data[box.body : box.end]
            out += (1).to_bytes(4, "big") + b"ftyp" + (16 + len(payload)).to_bytes(8, "big") + payload
            continue
        if box.kind == "moof":
            out += (1).to_bytes(4, "big") + b"free" + (24).to_bytes(8, "big") + bytes(8)
        out += data[box.start : box.end]
    return bytes(out)


def without_index(data: bytes) -> bytes:
    """ffmpeg's fragmented MP4 without the mfra index it ends with: what the recorder keeps of it."""
    return b"".join(data[box.start : box.end] for box in fmp4.boxes(data) if box.kind != "mfra")


@pytest.mark.parametrize("large", [False, True], ids=["32-bit sizes", "64-bit sizes"])
def test_the_recorder_cuts_fragmented_mp4_into_init_and_two_second_segments(
    node: str, tmp_path: Path, large: bool
) -> None:
    """One-second fragments (as Chromium writes them) come out two to a segment; whatever the pieces the file
    arrives in, the init segment and segments are the file, cut at fragment boundaries, and the server takes each."""
    source = video(
        tmp_path / "fragmented.mp4", seconds=7, extra=("-movflags", "+frag_keyframe+empty_moov+default_base_moof")
    )
    data = with_large_sizes(source.read_bytes()) if large else source.read_bytes()
    source.write_bytes(data)
    kept = without_index(data)
    for seed, max_piece in (("1", "70000"), ("2", "300"), ("3", "5000000")):
        events = split_with_recorder(node, source, "--seed", seed, "--max-piece", max_piece)
        assert events[0]["event"] == "init", events
        assert events[-1] == {"event": "end"}, events
        segments = events[1:-1]
        assert [event["index"] for event in segments] == list(range(len(segments)))
        assert events[0]["size"] + sum(event["size"] for event in segments) == len(kept)
        init = fmp4.parse_init(kept[: events[0]["size"]])
        at = events[0]["size"]
        for event in segments:
            measured = fmp4.parse_segment(kept[at : at + event["size"]], init)
            at += event["size"]
            assert measured.starts_with_keyframe
            assert measured.duration_s == pytest.approx(event["seconds"], abs=0.05)
        assert all(event["seconds"] >= 1.8 for event in segments[:-1]), segments
        assert len(segments) == 4  # 7 one-second fragments: 2 + 2 + 2 + 1


def test_the_recorder_refuses_mp4_that_is_not_fragmented_and_mp4_cut_short(node: str, tmp_path: Path) -> None:
    """An MP4 whose media is one mdat cannot go up as live segments (the page then uploads it whole); a stream that
    ends inside a box is broken."""
    plain = video(tmp_path / "plain.mp4", seconds=2)
    [refused] = split_with_recorder(node, plain)
    assert (refused["event"], refused["name"]) == ("error", "NotFragmented"), refused

    fragmented = video(
        tmp_path / "fragmented.mp4", seconds=3, extra=("-movflags", "+frag_keyframe+empty_moov+default_base_moof")
    )
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(fragmented.read_bytes()[:-100])
    events = split_with_recorder(node, cut)
    assert (events[-1]["event"], events[-1]["name"]) == ("error", "BoxError"), events
