"""Signing in and out in Chromium, and the 404 page a wrong share link gets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from browser import WebServer, browser, collect_errors, screenshot, sign_in, web_server

EMAIL, PASSWORD = "ada@example.com", "analytical engine"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebServer, Browser]]:
    with web_server(tmp_path_factory.mktemp("web")) as server, browser() as chromium:
        server.add_user(EMAIL, PASSWORD)
        yield server, chromium


def test_sign_in_then_out(site: tuple[WebServer, Browser]) -> None:
    server, chromium = site
    context = chromium.new_context()
    page = context.new_page()
    errors = collect_errors(page)

    page.goto(f"{server.base_url}/record")
    expect(page).to_have_url(f"{server.base_url}/signin?next=%2Frecord")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page.get_by_label("Email")).to_have_value(EMAIL)
    screenshot(page, "signin-wrong-password")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{server.base_url}/record")
    expect(page.get_by_text(EMAIL)).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.base_url}/signin")
    page.goto(f"{server.base_url}/library")
    expect(page).to_have_url(f"{server.base_url}/signin?next=%2Flibrary")
    assert errors == []
    context.close()


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/v/not-a-link", id="malformed"),
        pytest.param("/v/" + "Q" * 22, id="unknown"),
        pytest.param("/embed/" + "Q" * 22, id="unknown-embed"),
    ],
)
def test_a_wrong_share_link_shows_a_404_page(site: tuple[WebServer, Browser], path: str) -> None:
    server, chromium = site
    context = chromium.new_context()
    page = context.new_page()
    response = page.goto(f"{server.base_url}{path}")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="This page or video does not exist")).to_be_visible()
    expect(page.get_by_role("main").get_by_role("link", name="Sign in")).to_be_visible()
    screenshot(page, f"share-link-404-{path.split('/')[1]}-{path.rsplit('/', 1)[1][:8]}")
    context.close()


def test_another_users_deleted_recording_is_a_404_page(site: tuple[WebServer, Browser]) -> None:
    """A link that worked once, to someone else's recording they then deleted, is gone for everyone."""
    import httpx

    server, chromium = site
    token = server.token("grace@example.com")
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as api:
        recording = api.post("/api/v1/recordings", json={"recording_type": "screen", "title": "Gone"}).json()
        assert api.delete(f"/api/v1/recordings/{recording['id']}").status_code == 204
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, server.base_url, EMAIL, PASSWORD)
    response = page.goto(recording["share_url"])
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("link", name="Go to your library")).to_be_visible()
    screenshot(page, "share-link-404-deleted")
    context.close()
