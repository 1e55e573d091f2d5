"""The watch page and the embeddable player, in Chromium, on a real processed recording.

One server and one imported 1280x720 clip (three rungs: 720p, 480p, 360p) serve the whole module. A stranger plays
it, switches quality and speed, scrubs with thumbnails and the keyboard; the embed plays; the owner renames it; a
page opened while the video is processing starts playing without a reload; expired media URLs are renewed in place.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from browser import WebServer, browser, collect_errors, screenshot, sign_in, web_server
from media_clips import video

EMAIL, PASSWORD = "owner@example.com", "watch me play"
TITLE = "Quarterly numbers"
DASH = "\N{EN DASH}"  # page titles end with an en dash and the site name
STAGES = ("playable", "pictures", "ladder", "download")
M3U8 = "application/vnd.apple.mpegurl"
ONE_RENDITION = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360\n360p/index.m3u8\n"
SHARED_JSON = re.compile(r'(<script type="application/json" id="shared-recording">)(.*?)(</script>)', re.S)


@dataclass
class Site:
    server: WebServer
    chromium: Browser
    api: httpx.Client
    recording: dict[str, Any]

    @property
    def share_url(self) -> str:
        return str(self.recording["share_url"])

    @property
    def link_id(self) -> str:
        return self.share_url.rsplit("/", 1)[1]

    def viewer(self, **options: Any) -> tuple[BrowserContext, Page, list[str]]:
        context = self.chromium.new_context(viewport={"width": 1280, "height": 800}, **options)
        page = context.new_page()
        return context, page, collect_errors(page)


def import_clip(api: httpx.Client, clip: Path, *, title: str) -> str:
    """Upload `clip` as an import in one tus creation-with-upload request; returns the new recording's id."""
    data = clip.read_bytes()
    metadata = {"filename": clip.name, "title": title}
    response = api.post(
        "/api/v1/uploads/",
        content=data,
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(data)),
            "Upload-Metadata": ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items()),
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert response.status_code == 201, response.text
    return response.headers["Framecast-Recording-Id"]


def wait_until_processed(api: httpx.Client, recording_id: str, timeout: float = 180) -> dict[str, Any]:
    """Every stage done: READY comes with the first playable rendition, before the ladder and pictures."""
    deadline = time.monotonic() + timeout
    while True:
        recording = dict(api.get(f"/api/v1/recordings/{recording_id}").raise_for_status().json())
        assert recording["status"] != "FAILED", recording["failure_reason"]
        stages = recording["processing"] or {}
        if recording["status"] == "READY" and all(stages.get(s, {}).get("status") == "SUCCEEDED" for s in STAGES):
            return recording
        assert time.monotonic() < deadline, f"not processed after {timeout} s: {stages}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("watch")
    clip = video(folder / "numbers.mp4", size="1280x720", seconds=6.0)
    with web_server(folder) as server, browser() as chromium:
        server.add_user(EMAIL, PASSWORD)
        token = server.token(EMAIL)
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
            recording = wait_until_processed(api, import_clip(api, clip, title=TITLE))
            yield Site(server, chromium, api, recording)


# -- helpers -------------------------------------------------------------------------------------------------------


def player(page: Page) -> Any:
    return page.locator("#player")


def video_state(page: Page) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """() => { const v = document.querySelector("video");
            return {time: v.currentTime, paused: v.paused, height: v.videoHeight, rate: v.playbackRate,
                    frames: v.getVideoPlaybackQuality().totalVideoFrames}; }"""
        )
    )


def wait_for_video(page: Page, condition: str) -> None:
    """Wait until `condition`, a JavaScript expression about `v` (the <video>), holds."""
    page.wait_for_function(f'(() => {{ const v = document.querySelector("video"); return {condition}; }})()')


def restart(page: Page) -> None:
    """Back to the start and playing (the clip is short): key 0, then k if it had ended."""
    page.keyboard.press("0")
    wait_for_video(page, "v.currentTime < 1")
    if video_state(page)["paused"]:
        page.keyboard.press("k")


def play(page: Page) -> None:
    expect(player(page)).to_have_attribute("data-state", "ready")
    page.get_by_role("button", name="Play").click()
    wait_for_video(page, "v.currentTime > 0.3 && v.getVideoPlaybackQuality().totalVideoFrames > 0")


class Altered:
    """Show the recording to `page` changed by `change`: in the page's embedded JSON and in every poll of
    /api/v1/links/, until `release()`; then the polls get the truth, as when processing moves on."""

    def __init__(self, page: Page, site: Site, change: Callable[[dict[str, Any]], None]) -> None:
        self.change = change
        self.active = True
        page.route(site.share_url, self._page, times=1)
        page.route(f"**/api/v1/links/{site.link_id}", self._json)

    def release(self) -> None:
        self.active = False

    def _page(self, route: Route) -> None:
        response = route.fetch()
        body = response.text()
        match = SHARED_JSON.search(body)
        assert match, "the page embeds no #shared-recording"
        shared = json.loads(match.group(2))
        self.change(shared)
        text = json.dumps(shared).replace("<", "\\u003c")
        route.fulfill(response=response, body=body[: match.start(2)] + text + body[match.end(2) :])

    def _json(self, route: Route) -> None:
        if not self.active:
            route.fallback()
            return
        response = route.fetch()
        shared = response.json()
        self.change(shared)
        route.fulfill(response=response, json=shared)


# -- tests ---------------------------------------------------------------------------------------------------------


def test_a_stranger_plays_and_switches_quality_and_speed(site: Site) -> None:
    context, page, errors = site.viewer(permissions=["clipboard-read", "clipboard-write"])
    page.goto(site.share_url)
    expect(page).to_have_title(f"{TITLE} {DASH} framecast")
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    expect(page.get_by_role("button", name="Edit")).to_have_count(0)
    expect(page.get_by_role("link", name="Download")).to_be_visible()
    expect(player(page)).to_have_attribute("data-quality", "auto")
    assert page.evaluate('document.querySelector("video").controls') is False
    play(page)

    page.get_by_role("button", name="Quality").click()
    expect(page.get_by_role("menuitemradio", name=re.compile(r"^Auto"))).to_be_focused()
    for height in ("720p", "480p", "360p"):
        expect(page.get_by_role("menuitemradio", name=height, exact=True)).to_be_visible()
    screenshot(page, "watch-quality-menu")
    page.keyboard.press("Escape")
    expect(page.get_by_role("menu", name="Quality")).to_be_hidden()
    expect(page.get_by_role("button", name="Quality")).to_be_focused()
    page.keyboard.press("ArrowDown")  # opens the menu again, on the checked item
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("menuitemradio", name="480p", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(player(page)).to_have_attribute("data-quality", "480")
    restart(page)
    wait_for_video(page, "v.videoHeight === 480")
    before = video_state(page)["time"]
    wait_for_video(page, f"v.currentTime > {before + 0.3} && !v.paused")

    page.get_by_role("button", name="Speed").click()
    page.get_by_role("menuitemradio", name="1.5x").click()
    expect(page.get_by_role("button", name="Speed")).to_be_focused()
    assert video_state(page)["rate"] == 1.5
    expect(page.get_by_role("button", name="Speed")).to_have_text("1.5x")

    page.keyboard.press("k")
    wait_for_video(page, "v.paused")
    expect(page.get_by_role("button", name="Play")).to_be_visible()
    screenshot(page, "watch-paused-480p")

    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("#watch-status")).to_have_text("Link copied")
    assert page.evaluate("navigator.clipboard.readText()") == site.share_url
    assert errors == []
    context.close()


def test_scrub_thumbnails_keyboard_and_captions(site: Site) -> None:
    context, page, errors = site.viewer()
    page.goto(site.share_url)
    play(page)
    page.keyboard.press("k")
    wait_for_video(page, "v.paused")

    seek = page.get_by_role("slider", name="Seek")
    box = seek.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2, steps=5)
    picture = page.locator(".player-preview-picture")
    expect(picture).to_be_visible()
    expect(picture).to_have_attribute("style", re.compile(r"storyboard\.jpg"))
    expect(page.locator(".player-preview-time")).to_have_text("0:04")
    screenshot(page, "watch-storyboard-hover", full_page=False)  # a taller viewport would move the bar away

    page.mouse.move(box["x"] + box["width"] / 2, box["y"] - 200)
    seek.focus()
    page.keyboard.press("Home")
    wait_for_video(page, "v.currentTime === 0")
    page.keyboard.press("ArrowRight")
    wait_for_video(page, "Math.abs(v.currentTime - 5) < 0.01")
    expect(seek).to_have_attribute("aria-valuetext", "0:05 of 0:06")
    page.keyboard.press("5")
    wait_for_video(page, "Math.abs(v.currentTime - 3) < 0.01")
    page.keyboard.press("m")
    expect(page.get_by_role("button", name="Unmute")).to_be_visible()
    page.keyboard.press("m")
    expect(page.get_by_role("button", name="Mute")).to_be_visible()

    expect(page.get_by_role("button", name="Captions")).to_be_hidden()
    page.evaluate(
        """() => { const track = document.querySelector("video").addTextTrack("captions", "English", "en");
                   track.addCue(new VTTCue(0, 6, "Hello from the captions")); }"""
    )
    captions = page.get_by_role("button", name="Captions")
    expect(captions).to_be_visible()
    page.keyboard.press("c")
    expect(captions).to_have_attribute("aria-pressed", "true")
    screenshot(page, "watch-captions-on")
    assert errors == []
    context.close()


@contextlib.contextmanager
def blog_post(html: str) -> Iterator[str]:
    """Serve `html` from another origin on this machine (a page on a public site may not frame a loopback one)."""

    class Post(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Post)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/post"
    finally:
        server.shutdown()
        server.server_close()


def test_the_embed_plays_on_another_site(site: Site) -> None:
    """A blog post pastes the iframe the oEmbed answer gives; the player in it plays."""
    context, page, errors = site.viewer()
    oembed = site.api.get("/oembed", params={"url": site.share_url}).raise_for_status().json()
    with blog_post(f"<!doctype html><title>A post</title><h1>Our numbers</h1>{oembed['html']}") as post:
        page.goto(post)
        frame = page.frame_locator("iframe")
        expect(frame.locator("#player")).to_have_attribute("data-state", "ready")
        expect(frame.get_by_role("link", name=TITLE)).to_have_attribute("target", "_blank")
        expect(frame.get_by_role("banner")).to_have_count(0)
        frame.get_by_role("button", name="Play").click()
        embedded = page.frames[1]
        embedded.wait_for_function('document.querySelector("video").currentTime > 0.3')
        assert embedded.evaluate('document.querySelector("video").getVideoPlaybackQuality().totalVideoFrames') > 0
        screenshot(page, "embed-playing")
    assert errors == []
    context.close()


def test_the_owner_renames_the_recording(site: Site) -> None:
    context, page, errors = site.viewer()
    sign_in(page, site.server.base_url, EMAIL, PASSWORD)
    page.goto(site.share_url)
    page.get_by_role("button", name="Edit").click()
    expect(page.get_by_label("Title")).to_be_focused()
    expect(page.get_by_label("Title")).to_have_value(TITLE)
    page.get_by_label("Title").fill("Numbers, final")
    page.get_by_label("Description").fill("First line\nsecond line\n\nA new paragraph.")
    screenshot(page, "watch-owner-editing")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Numbers, final")
    expect(page).to_have_title(f"Numbers, final {DASH} framecast")
    expect(page.locator("#watch-description p")).to_have_text(["First line\nsecond line", "A new paragraph."])
    expect(page.get_by_role("button", name="Edit")).to_be_focused()
    recording = site.api.get(f"/api/v1/recordings/{site.recording['id']}").json()
    assert (recording["title"], recording["description"]) == (
        "Numbers, final",
        "First line\nsecond line\n\nA new paragraph.",
    )
    screenshot(page, "watch-owner-renamed")

    page.get_by_role("button", name="Edit").click()
    page.get_by_label("Title").evaluate("input => input.removeAttribute('maxlength')")  # the API must say why
    page.get_by_label("Title").fill("x" * 501)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#edit-form .alert")).to_be_visible()
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Numbers, final")

    site.api.patch(f"/api/v1/recordings/{site.recording['id']}", json={"title": TITLE, "description": ""})
    assert errors == []
    context.close()


def test_a_page_opened_while_processing_starts_playing_without_a_reload(site: Site) -> None:
    context, page, errors = site.viewer()

    def processing(shared: dict[str, Any]) -> None:
        shared["status"] = "PROCESSING"
        shared["processing"] = {"playable": {"status": "RUNNING", "progress": 40.0, "step": "playable"}}
        shared["playback"] = dict.fromkeys(shared["playback"])

    altered = Altered(page, site, processing)
    page.goto(site.share_url)
    expect(player(page)).to_have_attribute("data-state", "processing")
    expect(page.locator(".player-panel")).to_have_text("Processing your video… 40 %")
    expect(page.get_by_role("button", name="Play")).to_be_hidden()
    expect(page.get_by_role("link", name="Download")).to_be_hidden()
    screenshot(page, "watch-processing")
    page.evaluate("window.stillTheSamePage = true")

    altered.release()
    expect(player(page)).to_have_attribute("data-state", "ready", timeout=10_000)
    expect(page.locator(".player-panel")).to_be_hidden()
    expect(page.get_by_role("link", name="Download")).to_be_visible()
    play(page)
    assert page.evaluate("window.stillTheSamePage") is True
    assert errors == []
    context.close()


def test_more_qualities_arrive_while_watching(site: Site) -> None:
    """The first master playlist lists one rendition; when the ladder is done the player reloads it in place."""
    context, page, errors = site.viewer()
    altered = Altered(page, site, lambda shared: shared["processing"]["ladder"].update(status="RUNNING"))
    page.route("**/master.m3u8", lambda route: route.fulfill(body=ONE_RENDITION, content_type=M3U8), times=1)
    page.goto(site.share_url)
    expect(page.get_by_text("More qualities are on their way")).to_be_visible()
    play(page)
    expect(page.get_by_role("button", name="Quality")).to_be_hidden()
    screenshot(page, "watch-more-qualities-coming")

    altered.release()
    expect(page.get_by_text("More qualities are on their way")).to_be_hidden(timeout=10_000)
    expect(page.get_by_role("button", name="Quality")).to_be_visible()
    page.get_by_role("button", name="Quality").focus()
    restart(page)
    wait_for_video(page, "!v.paused && v.currentTime > 1")
    assert errors == []
    context.close()


def test_expired_media_urls_are_renewed_at_the_same_position(site: Site) -> None:
    context, page, errors = site.viewer()
    refused: list[str] = []
    expired = {"now": False}

    def media(route: Route) -> None:
        if expired["now"]:
            refused.append(route.request.url)
            route.fulfill(status=404, json={"error": {"code": "not_found", "message": "the link expired"}})
        else:
            route.fallback()

    def links(route: Route) -> None:
        expired["now"] = False  # the page asked for fresh URLs: from now on they work
        route.fallback()

    page.route("**/media/**", media)
    page.route(f"**/api/v1/links/{site.link_id}", links)
    page.goto(site.share_url)
    play(page)
    page.keyboard.press("k")
    wait_for_video(page, "v.paused")
    position = video_state(page)["time"]

    expired["now"] = True
    page.get_by_role("button", name="Quality").click()
    page.get_by_role("menuitemradio", name="720p", exact=True).click()
    wait_for_video(page, "v.videoHeight === 720")
    assert refused, "the player never met an expired URL"
    expect(player(page)).to_have_attribute("data-state", "ready")
    state = video_state(page)
    assert state["paused"]
    assert abs(state["time"] - position) < 0.5, (state, position)
    assert errors == []
    context.close()
