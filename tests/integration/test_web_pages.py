"""The web app over HTTP: signing in and out, cookie + CSRF authorisation of the API, share links, oEmbed, 404 pages.

The browser itself drives these pages in tests/e2e/test_web_*.py; here each rule is checked on the wire.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest

from conftest import Server
from framecast.domain.sharing import is_link_id

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"


async def sign_in(client: httpx.AsyncClient, server: Server, email: str = "owner@example.com") -> str:
    """Sign the cookie-holding `client` in as `email` (given PASSWORD); returns the CSRF token its pages carry."""
    await server.container.sessions.set_password(email=email, password=PASSWORD)
    response = await client.post("/signin", data={"email": email, "password": PASSWORD, "next": "/library"})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/library"
    page = await client.get("/does-not-exist", headers={"Accept": "text/html"})
    match = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page.text)
    assert match, page.text
    return match.group(1)


async def test_sign_in_sets_an_http_only_session_cookie_and_sign_out_ends_it(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        csrf = await sign_in(client, server)
        cookie = next(h for h in client.cookies.jar if h.name == "framecast_session")
        assert cookie.has_nonstandard_attr("HttpOnly")
        assert (await client.get("/api/v1/recordings")).status_code == 200

        assert (await client.post("/signout", data={"csrf_token": "forged"})).status_code == 403
        assert (await client.get("/api/v1/recordings")).status_code == 200

        stale = client.cookies["framecast_session"]
        response = await client.post("/signout", data={"csrf_token": csrf})
        assert response.status_code == 303
        client.cookies.set("framecast_session", stale)  # even if the browser kept it, the session is gone
        assert (await client.get("/api/v1/recordings")).status_code == 401


async def test_wrong_passwords_and_tokens_do_not_sign_in(server: Server) -> None:
    await server.container.sessions.set_password(email="owner@example.com", password=PASSWORD)
    async with httpx.AsyncClient(base_url=server.url) as client:
        for form in (
            {"email": "owner@example.com", "password": "wrong password"},
            {"email": "nobody@example.com", "password": PASSWORD},
            {"email": "not an email", "password": PASSWORD},
            {"token": "fc_forged"},
        ):
            response = await client.post("/signin", data=form)
            assert response.status_code == 400, form
            assert "framecast_session" not in response.cookies
            assert 'role="alert"' in response.text
        by_token = await client.post("/signin", data={"token": server.token, "next": "/record"})
        assert by_token.status_code == 303
        assert by_token.headers["location"] == "/record"
        cross_site = await client.post(
            "/signin", data={"token": server.token}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert cross_site.status_code == 403


async def test_sign_in_only_redirects_within_the_site(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
            response = await client.post("/signin", data={"token": server.token, "next": target})
            assert response.headers["location"] == "/library", target


async def test_cookie_writes_need_the_csrf_token(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        csrf = await sign_in(client, server)
        body = {"recording_type": "camera", "title": "From the browser"}
        refused = await client.post("/api/v1/recordings", json=body)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        assert (await client.get("/api/v1/recordings")).json()["items"] == []

        created = await client.post("/api/v1/recordings", json=body, headers={"X-CSRF-Token": csrf})
        assert created.status_code == 201

        upload = await client.post(
            "/api/v1/uploads/",
            headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10", "Upload-Metadata": "filename YS5tcDQ="},
        )
        assert upload.status_code == 403
        upload = await client.post(
            "/api/v1/uploads/",
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Length": "10",
                "Upload-Metadata": "filename YS5tcDQ=",
                "X-CSRF-Token": csrf,
            },
        )
        assert upload.status_code == 201, upload.text
        assert upload.headers["Framecast-Recording-Id"]


async def test_signed_out_pages_send_people_to_sign_in(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        for path in ("/library?q=demo", "/record"):
            response = await client.get(path)
            assert response.status_code == 303
            assert response.headers["location"] == f"/signin?next={quote(path, safe='')}"
        assert (await client.get("/")).headers["location"] == "/signin"


async def test_titles_can_be_searched(server: Server) -> None:
    async with server.client() as api:
        for title in ("Weekly demo", "Bug report 100%", "DEMO day", "other"):
            await api.post("/api/v1/recordings", json={"recording_type": "screen", "title": title})
        titles = [r["title"] for r in (await api.get("/api/v1/recordings", params={"q": "demo"})).json()["items"]]
        assert sorted(titles) == ["DEMO day", "Weekly demo"]
        titles = [r["title"] for r in (await api.get("/api/v1/recordings", params={"q": "0%"})).json()["items"]]
        assert titles == ["Bug report 100%"]
        assert (await api.get("/api/v1/recordings", params={"q": "_"})).json()["items"] == []


async def test_a_share_link_is_unguessable_public_and_shows_no_owner_details(server: Server) -> None:
    async with server.client() as api:
        recording = (await api.post("/api/v1/recordings", json={"recording_type": "screen", "title": "Hi"})).json()
    share_url = recording["share_url"]
    link_id = share_url.rsplit("/", 1)[1]
    assert is_link_id(link_id)
    assert recording["id"] not in share_url

    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        shared = (await anonymous.get(f"/api/v1/links/{link_id}")).json()
        assert shared["title"] == "Hi"
        assert shared["recording_id"] is None
        assert "ws_url" not in shared
        assert "owner_id" not in str(shared)
        page = await anonymous.get(f"/v/{link_id}", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert '<meta property="og:title" content="Hi">' in page.text
        assert 'type="application/json+oembed"' in page.text
        embed = await anonymous.get(f"/embed/{link_id}")
        assert embed.headers["Content-Security-Policy"] == "frame-ancestors *"
        assert page.headers["Content-Security-Policy"] == "frame-ancestors 'self'"

    async with server.client() as owner:
        mine = (await owner.get(f"/api/v1/links/{link_id}")).json()
        assert mine["recording_id"] == recording["id"]


async def test_unknown_malformed_and_deleted_links_are_404_pages(server: Server) -> None:
    async with server.client() as api:
        recording = (await api.post("/api/v1/recordings", json={"recording_type": "screen"})).json()
        link_id = recording["share_url"].rsplit("/", 1)[1]
        assert (await api.delete(f"/api/v1/recordings/{recording['id']}")).status_code == 204
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        for path in (f"/v/{link_id}", "/v/" + "A" * 22, "/v/../../etc/passwd", "/v/%00", "/embed/nope", "/nowhere"):
            page = await anonymous.get(path, headers={"Accept": "text/html"})
            assert page.status_code == 404, path
            assert "This page or video does not exist" in page.text, path
        for path in (f"/api/v1/links/{link_id}", "/api/v1/links/nope"):
            answer = await anonymous.get(path, headers={"Accept": "text/html"})
            assert answer.status_code == 404
            assert answer.json()["error"]["code"] == "not_found"


async def test_oembed_describes_the_embeddable_player(server: Server) -> None:
    async with server.client() as api:
        recording = (
            await api.post("/api/v1/recordings", json={"recording_type": "screen", "title": 'A "quote"'})
        ).json()
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        answer = await anonymous.get("/oembed", params={"url": recording["share_url"], "maxwidth": 640})
        assert answer.status_code == 200
        oembed = answer.json()
        assert oembed["type"] == "video"
        assert oembed["version"] == "1.0"
        assert (oembed["width"], oembed["height"]) == (640, 360)
        assert recording["share_url"].replace("/v/", "/embed/") in oembed["html"]
        assert 'title="A &quot;quote&quot;"' in oembed["html"]
        assert (await anonymous.get("/oembed", params={"url": "https://elsewhere.example/v/x"})).status_code == 404
        assert (
            await anonymous.get("/oembed", params={"url": recording["share_url"], "format": "xml"})
        ).status_code == 501


async def test_passwords_are_checked_and_setting_one_signs_out_every_browser(server: Server) -> None:
    from framecast.services.sessions import WeakPassword

    sessions = server.container.sessions
    with pytest.raises(WeakPassword):
        await sessions.set_password(email="owner@example.com", password="short")
    user = await sessions.set_password(email="owner@example.com", password=PASSWORD)
    assert user.password_hash is not None
    assert PASSWORD not in user.password_hash

    first = await sessions.sign_in(email="  Owner@Example.com ", password=PASSWORD)
    assert first is not None
    assert await sessions.user(first.token) is not None
    assert await sessions.sign_in(email="owner@example.com", password=PASSWORD.upper()) is None

    await sessions.set_password(email="owner@example.com", password=PASSWORD + "!")
    assert await sessions.user(first.token) is None
    assert await sessions.sign_in(email="owner@example.com", password=PASSWORD) is None
    assert await sessions.sign_in(email="owner@example.com", password=PASSWORD + "!") is not None


async def test_built_assets_are_cached_for_good_and_sent_precompressed(server: Server) -> None:
    from framecast.web.assets import asset, built

    if not built():
        pytest.fail("the front-end is not built: run `make setup`")
    async with httpx.AsyncClient(base_url=server.url) as client:
        url = asset("player.js")
        assert "?v=" in url
        compressed = await client.get(url, headers={"Accept-Encoding": "gzip"})
        plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    assert compressed.status_code == plain.status_code == 200
    assert compressed.headers["Content-Encoding"] == "gzip"
    assert int(compressed.headers["Content-Length"]) < len(plain.content) / 2
    assert compressed.content == plain.content  # httpx decoded it: the same script either way
    assert compressed.headers["Content-Type"].startswith("text/javascript")
    assert "immutable" in compressed.headers["Cache-Control"]
    assert "Content-Encoding" not in plain.headers
