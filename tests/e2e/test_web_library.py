"""The library page in Chromium: import a video file, follow it from upload to poster without a reload, preview it on
hover, rename it, find it by searching, and delete it; and what an empty library and a phone screen show."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from browser import WebServer, browser, collect_errors, screenshot, sign_in, web_server
from media_clips import video

pytestmark = pytest.mark.slow

PASSWORD = "a library of films"
# Every badge text and upload detail the page shows, in order, without repeats: processing can be over between two
# looks, so the page records what it showed as it showed it.
RECORD_STATES = """() => {
  window.libraryStates = [];
  const note = (text) => { if (text && !window.libraryStates.includes(text)) window.libraryStates.push(text); };
  new MutationObserver(() => {
    for (const badge of document.querySelectorAll(".lib-badge:not([hidden])")) note(badge.textContent);
    for (const detail of document.querySelectorAll(".lib-upload-card .lib-meta")) note(detail.textContent);
  }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
}"""
POSTER_LOADED = """(card) => {
  const poster = card.querySelector("img.lib-poster");
  return poster !== null && poster.complete && poster.naturalWidth > 0;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebServer, Browser]]:
    with web_server(tmp_path_factory.mktemp("web")) as server, browser() as chromium:
        yield server, chromium


def signed_in_page(site: tuple[WebServer, Browser], email: str, **options: Any) -> tuple[Page, list[str]]:
    """A new account's library in a fresh browser context; the errors its scripts throw."""
    server, chromium = site
    server.add_user(email, PASSWORD)
    page = chromium.new_context(**options).new_page()
    errors = collect_errors(page)
    sign_in(page, server.base_url, email, PASSWORD)
    return page, errors


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 10-bit H.264 cannot go into HLS as it is, so the playable stage encodes it: long enough to show its progress.
    return video(
        tmp_path_factory.mktemp("clips") / "Team demo.mp4",
        size="640x360",
        seconds=20.0,
        vcodec=("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-crf", "35"),
    )


def throttle_uploads(page: Page, bytes_per_second: int) -> None:
    """Slow what the browser sends (Chromium's network emulation), so an upload lasts long enough to be seen."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second},
    )


def test_an_imported_video_is_followed_to_its_poster_then_renamed_found_and_deleted(
    site: tuple[WebServer, Browser], clip: Path
) -> None:
    server, _ = site
    page, errors = signed_in_page(site, "lin@example.com", viewport={"width": 1280, "height": 800})
    expect(page.get_by_role("heading", name="Library", level=1)).to_be_visible()
    page.evaluate(RECORD_STATES)
    page.evaluate("window.sameDocument = true")

    throttle_uploads(page, 500_000)
    page.get_by_label("Upload a video").set_input_files(clip)
    uploading = page.locator(".lib-upload-card")
    expect(uploading.locator(".lib-badge")).to_have_text(re.compile(r"Uploading [1-9]\d? %"))
    expect(uploading.locator(".lib-meta")).to_have_text(re.compile(r"\d+\.\d MB of \d+\.\d MB"))
    screenshot(page, "library-uploading")
    throttle_uploads(page, -1)

    named = page.get_by_role("listitem").filter(has=page.get_by_role("link", name="Team demo", exact=True))
    expect(named).to_be_visible(timeout=60_000)  # a busy machine answers slowly while it encodes
    card = page.locator(f'.lib-card[data-id="{named.get_attribute("data-id")}"]')  # whatever its title becomes
    page.wait_for_function(POSTER_LOADED, arg=card.element_handle(), timeout=120_000)
    expect(card.locator(".lib-badge")).to_be_hidden()
    assert page.evaluate("window.sameDocument") is True, "the page reloaded"
    states: list[str] = page.evaluate("window.libraryStates")
    assert any(re.fullmatch(r"Uploading \d+ %", s) for s in states), states
    processing = [s for s in states if s.startswith("Processing")]
    assert processing, states
    assert all(re.fullmatch(r"Processing( \d{1,3} %)?", s) for s in processing), states
    expect(card.get_by_role("link", name="Team demo")).to_have_attribute("href", re.compile(r"/v/[\w-]+$"))
    expect(card.locator("time")).to_have_text(re.compile(r"\d{4}"))
    expect(card.locator(".lib-duration")).to_have_text(re.compile(r"0:(19|20)"))
    screenshot(page, "library-processed")

    poster = card.locator("img.lib-poster")
    card.hover()
    expect(poster).to_have_attribute("src", re.compile(r"/preview\.webp$"))
    screenshot(page, "library-hover-preview")
    page.mouse.move(1, 1)
    expect(poster).to_have_attribute("src", re.compile(r"/poster\.jpg$"))

    card.get_by_role("button", name="Rename Team demo").click()
    title = card.get_by_label("Title", exact=True)
    expect(title).to_be_focused()
    title.fill("Something else")
    title.press("Escape")
    expect(card.get_by_role("link", name="Team demo", exact=True)).to_be_visible()
    card.get_by_role("button", name="Rename Team demo").click()
    title.fill("Quarterly walkthrough")
    title.press("Enter")
    expect(card.get_by_role("link", name="Quarterly walkthrough")).to_be_visible()
    expect(card.get_by_role("button", name="Rename Quarterly walkthrough")).to_be_focused()
    renamed = page.get_by_role("listitem").filter(has=page.get_by_role("link", name="Quarterly walkthrough"))

    search = page.get_by_label("Search recordings")
    search.fill("QUARTERLY")
    expect(page).to_have_url(re.compile(r"/library\?q=QUARTERLY$"))
    expect(renamed).to_be_visible()
    screenshot(page, "library-search")
    search.fill("zebra")
    expect(page.get_by_role("heading", name="No recordings match “zebra”")).to_be_visible()
    expect(page.get_by_role("link", name="Quarterly walkthrough")).to_have_count(0)
    screenshot(page, "library-search-no-match")
    page.reload()  # the search lives in the address
    expect(search).to_have_value("zebra")
    expect(page.get_by_role("heading", name="No recordings match “zebra”")).to_be_visible()
    page.get_by_role("button", name="Clear search").click()
    expect(page).to_have_url(f"{server.base_url}/library")
    expect(renamed).to_be_visible()

    renamed.get_by_role("button", name="Delete Quarterly walkthrough").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete “Quarterly walkthrough”? This cannot be undone.")
    screenshot(page, "library-delete-dialog")
    dialog.get_by_role("button", name="Keep").click()
    expect(dialog).to_be_hidden()
    expect(renamed).to_be_visible()
    renamed.get_by_role("button", name="Delete Quarterly walkthrough").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(renamed).to_have_count(0)
    expect(page.get_by_role("heading", name="No recordings yet")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="No recordings yet")).to_be_visible()
    expect(page.get_by_role("link", name="Quarterly walkthrough")).to_have_count(0)
    screenshot(page, "library-empty-after-delete")
    assert errors == []
    page.context.close()


def test_a_phone_sees_the_library_in_one_column(site: tuple[WebServer, Browser], clip: Path) -> None:
    page, errors = signed_in_page(
        site, "kai@example.com", viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    )
    page.get_by_label("Upload a video").set_input_files([clip, clip.with_name("Team demo.mp4")])
    expect(page.locator(".lib-card")).to_have_count(1)  # the same file twice is one upload
    expect(page.get_by_role("alert")).to_contain_text("Team demo.mp4 is uploading already.")
    card = page.get_by_role("listitem").filter(has=page.get_by_role("link", name="Team demo", exact=True))
    expect(card).to_be_visible(timeout=60_000)
    page.wait_for_function(POSTER_LOADED, arg=card.element_handle(), timeout=120_000)

    box = card.bounding_box()
    assert box is not None
    assert box["width"] > 300, box
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "the page scrolls sideways"
    for name in ("Copy link to Team demo", "Rename Team demo", "Delete Team demo"):
        expect(card.get_by_role("button", name=name)).to_be_visible()
    screenshot(page, "library-phone")
    assert errors == []
    page.context.close()


def test_a_file_that_is_not_a_video_fails_and_says_why(site: tuple[WebServer, Browser]) -> None:
    page, errors = signed_in_page(site, "noor@example.com", viewport={"width": 1280, "height": 800})
    upload = page.get_by_label("Upload a video")
    upload.set_input_files(files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"minutes"}])
    expect(page.get_by_role("alert")).to_have_text(re.compile(r"notes\.txt is not a video file\."))
    expect(page.locator(".lib-card")).to_have_count(0)

    # A file that claims to be a video is the server's to judge: processing refuses it and says why.
    upload.set_input_files(files=[{"name": "broken.mp4", "mimeType": "video/mp4", "buffer": b"not a video " * 500}])
    card = page.get_by_role("listitem").filter(has=page.get_by_role("link", name="broken", exact=True))
    badge = card.locator(".lib-badge")
    expect(badge).to_have_text("Failed", timeout=60_000)
    expect(badge).to_have_attribute("title", re.compile(r"could not be read as a video"))
    expect(card).to_contain_text("The file could not be read as a video")
    screenshot(page, "library-failed")
    assert errors == []
    page.context.close()
