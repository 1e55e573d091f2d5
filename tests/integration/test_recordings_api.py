"""REST /api/v1/recordings: the owner's view, pagination, edits, deletion and permissions."""

from __future__ import annotations

import pytest

from conftest import Server


async def test_create_answers_201_with_a_signed_absolute_ws_url(server: Server) -> None:
    async with server.client() as http:
        response = await http.post(
            "/api/v1/recordings",
            json={"recording_type": "screen_camera", "title": "Weekly update", "settings": {"fps": 30}},
        )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "PREPARING"
    assert body["title"] == "Weekly update"
    assert body["settings"] == {"fps": 30}
    assert body["ws_url"].startswith(f"{server.ws_base}/api/v1/recordings/{body['id']}/control?ticket=")
    assert body["share_url"].startswith(server.url)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"recording_type": "hologram"},
        {"recording_type": "screen", "title": "x" * 501},
        {"recording_type": "screen", "unexpected": 1},
    ],
)
async def test_invalid_create_is_refused_with_a_clear_error(server: Server, payload: dict[str, object]) -> None:
    async with server.client() as http:
        response = await http.post("/api/v1/recordings", json=payload)
        listing = await http.get("/api/v1/recordings")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "bad_request"
    assert listing.json()["items"] == []


async def test_requests_without_a_valid_token_are_unauthorized(server: Server) -> None:
    async with server.client(token="fc_forged") as http:
        forged = await http.get("/api/v1/recordings")
    async with server.client() as http:
        http.headers.pop("Authorization")
        missing = await http.get("/api/v1/recordings")
    assert forged.status_code == missing.status_code == 401
    assert forged.json()["error"]["code"] == "unauthorized"


async def test_list_is_newest_first_and_pages_with_a_cursor(server: Server) -> None:
    async with server.client() as http:
        ids = [
            (await http.post("/api/v1/recordings", json={"recording_type": "audio", "title": f"r{i}"})).json()["id"]
            for i in range(5)
        ]
        first = (await http.get("/api/v1/recordings", params={"limit": 2})).json()
        second = (await http.get("/api/v1/recordings", params={"limit": 2, "cursor": first["next_cursor"]})).json()
        third = (await http.get("/api/v1/recordings", params={"limit": 2, "cursor": second["next_cursor"]})).json()
        bad = await http.get("/api/v1/recordings", params={"cursor": "garbage!"})
        filtered = (await http.get("/api/v1/recordings", params={"status": "READY"})).json()
    seen = [r["id"] for page in (first, second, third) for r in page["items"]]
    assert seen == list(reversed(ids))
    assert third["next_cursor"] is None
    assert bad.status_code == 400
    assert filtered["items"] == []


async def test_patch_renames_and_delete_removes(server: Server) -> None:
    async with server.client() as http:
        created = (await http.post("/api/v1/recordings", json={"recording_type": "camera"})).json()
        patched = await http.patch(
            f"/api/v1/recordings/{created['id']}", json={"title": "Demo", "description": "How it works"}
        )
        assert patched.status_code == 200
        assert (patched.json()["title"], patched.json()["description"]) == ("Demo", "How it works")
        assert (await http.delete(f"/api/v1/recordings/{created['id']}")).status_code == 204
        gone = await http.get(f"/api/v1/recordings/{created['id']}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"


async def test_another_users_recording_answers_404_everywhere(server: Server) -> None:
    async with server.client() as http:
        mine = (await http.post("/api/v1/recordings", json={"recording_type": "screen"})).json()
    _, other_token = await server.new_user("mallory@example.com")
    async with server.client(token=other_token) as other:
        responses = [
            await other.get(f"/api/v1/recordings/{mine['id']}"),
            await other.patch(f"/api/v1/recordings/{mine['id']}", json={"title": "pwned"}),
            await other.post(f"/api/v1/recordings/{mine['id']}/stop"),
            await other.delete(f"/api/v1/recordings/{mine['id']}"),
        ]
        listing = (await other.get("/api/v1/recordings")).json()
    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    assert listing["items"] == []
    async with server.client() as http:
        still = (await http.get(f"/api/v1/recordings/{mine['id']}")).json()
    assert still["title"] == ""
    assert still["status"] == "PREPARING"


async def test_stop_of_a_recording_that_is_not_capturing_is_a_conflict(server: Server) -> None:
    async with server.client() as http:
        created = (await http.post("/api/v1/recordings", json={"recording_type": "screen"})).json()
        response = await http.post(f"/api/v1/recordings/{created['id']}/stop")
        after = (await http.get(f"/api/v1/recordings/{created['id']}")).json()
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert after["status"] == "PREPARING"


async def test_health_and_openapi(server: Server) -> None:
    async with server.client() as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = (await http.get("/readyz")).json()
        spec = (await http.get("/api/v1/openapi.json")).json()
    assert ready["checks"]["database"] == "ok"
    assert "/api/v1/recordings/{recording_id}/stop" in spec["paths"]
