"""Media delivery at /media/{token}/{path}: what a player sees, on SQLite and PostgreSQL.

A recording is made playable by hand (status through the domain, files straight into the blob store), so these tests
need no ffmpeg: they are about serving bytes, not making them. The server's clock stands still at a quarter hour
until a test moves it, so lifetimes are exact.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urljoin

import httpx
import pytest

from conftest import Server, drive_to_uploading
from framecast.adapters.clock import FakeClock
from framecast.api import links
from framecast.domain.errors import ConcurrentUpdate
from framecast.domain.media import MediaSet, media_prefix
from framecast.domain.recordings import Recording
from framecast.services.media_links import MediaSigner

GENERATION = "g1"
MASTER = b'#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=900000,CODECS="avc1.64001f"\nplay/index.m3u8\n'
PLAYLIST = (
    b'#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI="init.mp4"\n'
    b"#EXTINF:4.000,\nseg_00001.m4s\n#EXT-X-ENDLIST\n"
)
INIT = b"\x00\x00\x00\x18ftypiso6" + bytes(16)
SEGMENT = bytes(range(256)) * 24  # 6 KiB
LARGE = os.urandom(5 * 1024 * 1024 // 2)  # 2.5 MiB: more than one read of the blob store
HLS_FILES = {"master.m3u8": MASTER, "play/index.m3u8": PLAYLIST, "play/init.mp4": INIT, "play/seg_00001.m4s": SEGMENT}
HOUR = timedelta(hours=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Playable:
    id: str
    playback: dict[str, str | None]

    @property
    def hls_url(self) -> str:
        assert self.playback["hls_url"] is not None
        return self.playback["hls_url"]

    def url(self, path: str) -> str:
        """The URL of `path` under the recording's media, as a player resolves it against the master playlist."""
        return urljoin(self.hls_url, path)


def write_blob(server: Server, key: str, data: bytes) -> None:
    path = server.container.blobs.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def playable(
    server: Server,
    files: dict[str, bytes] | None = None,
    *,
    title: str = "",
    pictures: bool = False,
    download: bool = False,
) -> Playable:
    """A READY recording of the server's owner whose current generation holds `files`."""
    recording_id, _ = await drive_to_uploading(server.url, server.token)
    media = MediaSet(
        generation=GENERATION,
        duration_ms=4000,
        width=640,
        height=360,
        renditions=["play"],
        pictures=pictures,
        download=download,
    )
    await change(server, recording_id, lambda r, at: r.rename(at=at, title=title))
    await change(server, recording_id, lambda r, at: r.complete_upload(at=at, key=f"recordings/{r.id}/raw/x", size=1))
    await change(server, recording_id, lambda r, at: r.mark_playable(at=at, media=media))
    for name, data in (HLS_FILES if files is None else files).items():
        write_blob(server, media_prefix(recording_id, GENERATION) + name, data)
    async with server.client() as http:
        body = (await http.get(f"/api/v1/recordings/{recording_id}")).json()
    assert body["status"] == "READY"
    return Playable(id=recording_id, playback=body["playback"])


async def change(server: Server, recording_id: str, step: Callable[[Recording, datetime], object]) -> None:
    """Apply `step` to the stored recording, again if the server changed it meanwhile (the control channel's
    disconnect is recorded asynchronously, after drive_to_uploading returns)."""
    c = server.container
    for _ in range(10):
        try:
            async with c.uow() as tx:
                recording = await tx.recordings.get(recording_id)
                step(recording, c.clock.now())
                await tx.recordings.save(recording)
                await tx.commit()
                return
        except ConcurrentUpdate:
            await asyncio.sleep(0.05)
    raise AssertionError(f"recording {recording_id} kept changing")


def anonymous() -> httpx.AsyncClient:
    """A player: no API token, only the signed URLs."""
    return httpx.AsyncClient(timeout=10)


def max_age(response: httpx.Response) -> int:
    public, age, immutable = (part.strip() for part in response.headers["cache-control"].split(","))
    assert (public, immutable) == ("public", "immutable")
    return int(age.removeprefix("max-age="))


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"


# -- links -----------------------------------------------------------------------------------------------------------


async def test_media_links_appear_as_the_recording_publishes_its_media(server: Server) -> None:
    async with server.client() as http:
        fresh = (await http.post("/api/v1/recordings", json={"recording_type": "screen"})).json()
    urls = {name: url for name, url in fresh["playback"].items() if name.endswith("_url")}
    assert set(urls.values()) == {None}
    assert fresh["playback"]["live"] is False

    recording = await playable(server)
    assert recording.hls_url.startswith(f"{server.url}/media/")
    assert recording.hls_url.endswith("/master.m3u8")
    assert {k: v for k, v in recording.playback.items() if k != "hls_url"} == {
        **dict.fromkeys(("poster_url", "preview_url", "storyboard_url", "download_url")),
        "live": False,
    }

    for part in ("pictures", "download"):
        await change(server, recording.id, lambda r, at, p=part: r.media_complete(at=at, generation=GENERATION, part=p))
    async with server.client() as http:
        again = (await http.get(f"/api/v1/recordings/{recording.id}")).json()["playback"]
    assert again == {
        "hls_url": recording.hls_url,  # same bucket, same URL: what the browser cached stays usable
        "poster_url": recording.url("poster.jpg"),
        "preview_url": recording.url("preview.webp"),
        "storyboard_url": recording.url("storyboard.vtt"),
        "download_url": recording.url("download.mp4"),
        "live": False,
    }
    async with server.container.uow() as tx:
        stored, bare = [await tx.recordings.get(rid) for rid in (recording.id, fresh["id"])]
    assert links.media_url(server.container, stored, "720p/index.m3u8") == recording.url("720p/index.m3u8")
    assert links.media_url(server.container, bare, "master.m3u8") is None


# -- playing ---------------------------------------------------------------------------------------------------------


async def test_a_player_follows_the_relative_uris_of_the_playlists(server: Server) -> None:
    recording = await playable(server)
    async with anonymous() as player:
        master = await player.get(recording.hls_url)
        variant_url = urljoin(recording.hls_url, master.text.splitlines()[-1])
        variant = await player.get(variant_url)
        init = await player.get(urljoin(variant_url, "init.mp4"))
        segment = await player.get(urljoin(variant_url, "seg_00001.m4s"))

    assert master.status_code == 200
    assert master.content == MASTER
    assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert master.headers["cache-control"] == "public, no-cache"  # rewritten when the ladder is swapped in
    assert "etag" not in master.headers
    assert (variant.status_code, variant.content) == (200, PLAYLIST)
    assert variant.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert (init.content, init.headers["content-type"]) == (INIT, "video/mp4")
    assert (segment.content, segment.headers["content-type"]) == (SEGMENT, "video/iso.segment")
    assert segment.headers["content-length"] == str(len(SEGMENT))
    assert segment.headers["accept-ranges"] == "bytes"
    assert segment.headers["x-content-type-options"] == "nosniff"
    assert max_age(segment) == 3600  # as long as the URL works, and no longer


async def test_pictures_and_the_download_have_their_own_types(server: Server) -> None:
    files = {
        "poster.jpg": b"\xff\xd8\xff\xe0jpeg",
        "preview.webp": b"RIFF\x00\x00\x00\x00WEBP",
        "storyboard.jpg": b"\xff\xd8\xff\xe0sprite",
        "storyboard.vtt": b"WEBVTT\n\n00:00.000 --> 00:02.000\nstoryboard.jpg#xywh=0,0,160,90\n",
        "download.mp4": LARGE,
        "notes.bin": b"\x00",
    }
    recording = await playable(server, files, title='Café: plan/Q3 "final" ✓', pictures=True, download=True)
    async with anonymous() as player:
        answers = {name: await player.get(recording.url(name)) for name in files}
        sprite = await player.get(urljoin(recording.url("storyboard.vtt"), "storyboard.jpg"))
    types = {name: answer.headers["content-type"] for name, answer in answers.items()}
    assert types == {
        "poster.jpg": "image/jpeg",
        "preview.webp": "image/webp",
        "storyboard.jpg": "image/jpeg",
        "storyboard.vtt": "text/vtt; charset=utf-8",
        "download.mp4": "video/mp4",
        "notes.bin": "application/octet-stream",
    }
    assert all(answers[name].content == data for name, data in files.items())
    assert sprite.content == files["storyboard.jpg"]
    assert answers["download.mp4"].headers["content-disposition"] == (
        'attachment; filename="Cafe_ plan_Q3 _final.mp4"; '
        "filename*=UTF-8''Caf%C3%A9%3A%20plan_Q3%20%22final%22%20%E2%9C%93.mp4"
    )
    assert "content-disposition" not in answers["poster.jpg"].headers


async def test_a_download_without_a_title_is_saved_as_recording_mp4(server: Server) -> None:
    recording = await playable(server, {"download.mp4": SEGMENT}, download=True)
    async with anonymous() as player:
        response = await player.get(recording.url("download.mp4"))
    assert (
        response.headers["content-disposition"]
        == "attachment; filename=\"recording.mp4\"; filename*=UTF-8''recording.mp4"
    )


# -- ranges, HEAD and caching ----------------------------------------------------------------------------------------


async def test_byte_ranges_answer_exactly_the_bytes_asked_for(server: Server) -> None:
    recording = await playable(server, {"download.mp4": LARGE}, download=True)
    size = len(LARGE)
    url = recording.url("download.mp4")
    cases = {
        "bytes=10-99": (10, 100),
        "bytes=1048000-1049999": (1_048_000, 1_050_000),  # across a read boundary of the blob store
        "bytes=-100": (size - 100, size),
        f"bytes={size - 50}-": (size - 50, size),
        f"bytes=0-{size * 2}": (0, size),
    }
    async with anonymous() as player:
        for header, (start, end) in cases.items():
            response = await player.get(url, headers={"Range": header})
            assert response.status_code == 206, header
            assert response.content == LARGE[start:end], header
            assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
            assert response.headers["content-length"] == str(end - start)
        past_the_end = await player.get(url, headers={"Range": f"bytes={size}-"})
        several = await player.get(url, headers={"Range": "bytes=0-1,4-5"})
        whole = await player.get(url)

    assert past_the_end.status_code == 416
    assert past_the_end.headers["content-range"] == f"bytes */{size}"
    assert past_the_end.json()["error"]["code"] == "range_not_satisfiable"
    assert (several.status_code, several.content) == (200, LARGE)
    assert (whole.status_code, whole.content, whole.headers["content-length"]) == (200, LARGE, str(size))


async def test_head_answers_the_headers_of_get_without_the_body(server: Server) -> None:
    recording = await playable(server)
    url = recording.url("play/seg_00001.m4s")
    async with anonymous() as player:
        get = await player.get(url)
        head = await player.head(url)
        ranged = await player.head(url, headers={"Range": "bytes=0-9"})
        missing = await player.head(recording.url("play/seg_00002.m4s"))
    assert (head.status_code, head.content) == (200, b"")
    for name in ("content-length", "content-type", "etag", "accept-ranges"):
        assert head.headers[name] == get.headers[name]
    assert (ranged.status_code, ranged.headers["content-length"]) == (200, str(len(SEGMENT)))
    assert missing.status_code == 404


async def test_a_cached_copy_is_revalidated_with_its_etag(server: Server) -> None:
    recording = await playable(server)
    url = recording.url("play/seg_00001.m4s")
    async with anonymous() as player:
        first = await player.get(url)
        etag = first.headers["etag"]
        unchanged = await player.get(url, headers={"If-None-Match": etag})
        weak = await player.get(url, headers={"If-None-Match": f'"other", W/{etag}'})
        other = await player.get(url, headers={"If-None-Match": '"other"'})
        same_range = await player.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
        stale_range = await player.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["etag"] == etag
    assert max_age(unchanged) > 0
    assert weak.status_code == 304
    assert (other.status_code, other.content) == (200, SEGMENT)
    assert (same_range.status_code, same_range.content) == (206, SEGMENT[:10])
    assert (stale_range.status_code, stale_range.content) == (200, SEGMENT)


# -- who gets in -----------------------------------------------------------------------------------------------------


def signer(secret: str | None, clock: FakeClock) -> MediaSigner:
    assert secret is not None
    return MediaSigner(secret_key=secret, clock=clock, ttl=HOUR)


async def test_tampered_and_foreign_tokens_are_not_found(server: Server) -> None:
    recording = await playable(server)
    secret, clock = server.container.settings.secret_key, FakeClock(server.container.clock.now())
    token = recording.hls_url.rsplit("/", 2)[1]
    tokens = {
        # Not the last character: its low bits are base64 padding, so changing it may leave the signature intact.
        "tampered": token[:5] + ("A" if token[5] != "A" else "B") + token[6:],
        "other generation": signer(secret, clock).sign(recording_id=recording.id, generation="g0"),
        "unknown recording": signer(secret, clock).sign(recording_id="no-such-recording", generation=GENERATION),
        "another server's": signer("another secret", clock).sign(recording_id=recording.id, generation=GENERATION),
    }
    async with anonymous() as player:
        responses = {name: await player.get(f"{server.url}/media/{t}/master.m3u8") for name, t in tokens.items()}
    for name, response in responses.items():
        assert response.status_code == 404, name
        assert response.json()["error"]["code"] == "not_found", name


async def test_a_url_works_for_its_lifetime_and_then_is_not_found(server: Server, clock: FakeClock) -> None:
    recording = await playable(server)
    segment_url = recording.url("play/seg_00001.m4s")
    async with anonymous() as player:
        clock.advance(HOUR - timedelta(seconds=1))
        last_second = await player.get(segment_url)
        clock.advance(timedelta(seconds=1))
        expired = await player.get(segment_url)
        async with server.client() as http:
            fresh = (await http.get(f"/api/v1/recordings/{recording.id}")).json()["playback"]["hls_url"]
        again = await player.get(urljoin(fresh, "play/seg_00001.m4s"))
    assert last_second.status_code == 200
    assert max_age(last_second) == 1  # a cache never keeps it past the URL's end
    assert_not_found(expired)
    assert "expired" in expired.json()["error"]["message"]
    assert fresh != recording.hls_url
    assert (again.status_code, max_age(again)) == (200, 3600)


async def test_a_token_reads_only_its_own_recordings_files(server: Server) -> None:
    mine = await playable(server, {**HLS_FILES, "master.m3u8": b"#EXTM3U\n# mine\n"})
    theirs = await playable(server, {**HLS_FILES, "master.m3u8": b"#EXTM3U\n# theirs\n"})
    raw = b"the raw upload, never served"
    write_blob(server, f"recordings/{theirs.id}/raw/upload", raw)
    write_blob(server, "outside.mp4", raw)
    token = mine.hls_url.rsplit("/", 2)[1]
    escapes = [
        f"..%2F..%2F..%2F{theirs.id}%2Fmedia%2F{GENERATION}%2Fmaster.m3u8",
        f"%2E%2E/%2E%2E/%2E%2E/{theirs.id}/media/{GENERATION}/master.m3u8",
        f"play%2F..%2F..%2F..%2F..%2F{theirs.id}%2Fraw%2Fupload",
        "..%2F..%2F..%2F..%2Foutside.mp4",
        "%2Fetc%2Fpasswd",
        f"../../../{theirs.id}/raw/upload",
        "play//index.m3u8",
        "play/./index.m3u8",
        "play%5C..%5Cmaster.m3u8",
        "play%00/index.m3u8",
        ".hidden.m3u8",
        "play",
        "",
    ]
    async with anonymous() as player:
        own = await player.get(mine.hls_url)
        # Sent exactly as written (like curl --path-as-is): httpx would otherwise remove `.` and `..` segments.
        answers = [
            await player.get(server.url, extensions={"target": f"/media/{token}/{path}".encode()}) for path in escapes
        ]
    assert own.content == b"#EXTM3U\n# mine\n"
    for path, response in zip(escapes, answers, strict=True):
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
        assert raw not in response.content, path
        assert b"theirs" not in response.content, path


async def test_a_deleted_recordings_media_is_gone_at_once(server: Server) -> None:
    recording = await playable(server)
    segment_url = recording.url("play/seg_00001.m4s")
    async with anonymous() as player:
        assert (await player.get(segment_url)).status_code == 200
        async with server.client() as http:
            assert (await http.delete(f"/api/v1/recordings/{recording.id}")).status_code == 204
        after = [await player.get(url) for url in (recording.hls_url, segment_url)]
    for response in after:
        assert_not_found(response)


async def test_a_missing_file_is_not_found(server: Server) -> None:
    recording = await playable(server)
    async with anonymous() as player:
        response = await player.get(recording.url("play/seg_00002.m4s"))
    assert_not_found(response)
