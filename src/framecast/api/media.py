"""GET and HEAD /media/{token}/{path}: a recording's processed media, behind signed, short-lived URLs.

The token (services/media_links.py) grants one generation of one recording; `path` names a file under that
generation's folder (`master.m3u8`, `720p/seg_00001.m4s`, `poster.jpg`). The token sits in the path, not the query,
so the relative URIs inside the playlists inherit it. Files are streamed from the blob store, never held in memory;
with FRAMECAST_MEDIA_DELIVERY=redirect and a store that presigns (S3), a GET of a media file is answered with a 302
to a presigned URL instead, so the bytes go from the bucket to the viewer. Playlists and WebVTT files stay served
here: they name their neighbours by relative URIs, which must resolve against the signed path, not the bucket.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse

from framecast.api import links
from framecast.api.byte_ranges import RangeNotSatisfiable, parse_range
from framecast.api.deps import ContainerDep
from framecast.api.errors import error_response
from framecast.api.schemas import error_responses
from framecast.bootstrap import Container
from framecast.domain.live import LIVE_PLAYLIST
from framecast.domain.media import DOWNLOAD, MASTER, media_prefix
from framecast.ports import BlobStore, PresigningBlobStore
from framecast.services.media_links import MediaGrant

MEDIA_ROUTE = links.MEDIA_PATH + "{token}/{path:path}"

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".vtt": "text/vtt; charset=utf-8",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Files that refer to other files of the generation by relative URI: never redirected to the bucket.
REFERRING = (".m3u8", ".vtt")

# Every segment of a path: letters, digits, `.`, `_` and `-`, never first a dot (so no `.`, `..` or hidden names);
# the last names a file, which in the media layout always has an extension (folders never do).
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}\.[A-Za-z0-9]{1,8}")
MAX_DEPTH = 4

_MEDIA_TYPES: dict[str, dict[str, Any]] = {
    media_type: {} for media_type in [*CONTENT_TYPES.values(), DEFAULT_CONTENT_TYPE]
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The whole file", "content": _MEDIA_TYPES},
    206: {"description": "The one byte range asked for (Content-Range)", "content": _MEDIA_TYPES},
    302: {"description": "Redirect to the file in object storage (FRAMECAST_MEDIA_DELIVERY=redirect)"},
    304: {"description": "Not modified (If-None-Match)"},
    **error_responses(404, 416),
}

router = APIRouter(tags=["media"])


@router.get(MEDIA_ROUTE, response_class=Response, responses=RESPONSES)
async def get_media(token: str, path: str, request: Request, container: ContainerDep) -> Response:
    """A media file, or the one byte range asked for. An unknown, tampered or expired token is 404."""
    return await _serve(container, token, path, request, send_body=True)


@router.head(MEDIA_ROUTE, response_class=Response, responses=RESPONSES)
async def head_media(token: str, path: str, request: Request, container: ContainerDep) -> Response:
    """The headers GET would answer, without the body (Range is ignored, as RFC 9110 says for HEAD)."""
    return await _serve(container, token, path, request, send_body=False)


async def _serve(container: Container, token: str, path: str, request: Request, *, send_body: bool) -> Response:
    # A token that does not verify is 404, never 401 or 403: a media URL is a capability, and without a valid one
    # the media does not exist for the caller (and a prober learns nothing about which recordings do).
    grant = container.media_signer.verify(token)
    if not is_media_path(path):
        raise HTTPException(404, "no such media file")
    # The token outlives a deletion, and the blobs may for a moment while they are removed: ask the database.
    async with container.uow() as tx:
        recording = await tx.recordings.get(grant.recording_id)
    media = recording.media
    if media is not None and media.live and media.generation == grant.generation and path in (MASTER, LIVE_PLAYLIST):
        return await _live_playlist(container, grant.recording_id, path, send_body=send_body)
    key = media_prefix(grant.recording_id, grant.generation) + path
    size = await container.blobs.size(key)
    if size is None:
        raise HTTPException(404, "no such media file")

    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": content_type(path),
        "Cache-Control": cache_control(grant, path, now_s=container.clock.now().timestamp()),
        "X-Content-Type-Options": "nosniff",
    }
    # master.m3u8 is rewritten in place when the ladder is swapped in, and the blob store keeps no version of it
    # beyond its size, so it gets no validator; every other file of a generation never changes.
    etag = None if path == MASTER else entity_tag(grant, path, size)
    if etag is not None:
        headers["ETag"] = etag
        if _none_match(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={k: headers[k] for k in ("ETag", "Cache-Control")})
    if path == DOWNLOAD:
        headers["Content-Disposition"] = attachment(recording.title, extension=".mp4")
    blobs = container.blobs
    if send_body and isinstance(blobs, PresigningBlobStore) and redirects(container, path):
        return await _redirect(blobs, key, grant, headers, now_s=container.clock.now().timestamp())

    wanted = None
    if send_body and _if_range_holds(request.headers.get("if-range"), etag):
        try:
            wanted = parse_range(request.headers.get("range"), size)
        except RangeNotSatisfiable as exc:
            return error_response(
                416,
                "range_not_satisfiable",
                f"the Range asks for {exc}",
                headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
            )
    start, end = (wanted.start, wanted.end) if wanted else (0, size)
    headers["Content-Length"] = str(end - start)
    if wanted is not None:
        headers["Content-Range"] = wanted.content_range
    if not send_body:
        return Response(status_code=200, headers=headers)
    chunks = await _opened(container.blobs, key, start=start, end=end)
    if chunks is None:
        raise HTTPException(404, "no such media file")
    return StreamingResponse(chunks, status_code=206 if wanted else 200, headers=headers)


async def _live_playlist(container: Container, recording_id: str, path: str, *, send_body: bool) -> Response:
    """A live recording's playlists, built from the database as they stand now (docs/live.md): they change with
    every segment, so they are never cached, and every instance answers the same."""
    master, media = await container.live_segments.playlists(recording_id)
    body = (master if path == MASTER else media).encode()
    headers = {
        "Content-Type": content_type(path),
        "Cache-Control": "no-cache, no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Length": str(len(body)),
    }
    return Response(body if send_body else b"", status_code=200, headers=headers)


def redirects(container: Container, path: str) -> bool:
    """Whether a GET of `path` is answered with a redirect to the blob store (the store must presign)."""
    return container.settings.resolved_media_delivery == "redirect" and not path.lower().endswith(REFERRING)


async def _redirect(
    blobs: PresigningBlobStore, key: str, grant: MediaGrant, headers: dict[str, str], *, now_s: float
) -> Response:
    """302 to a presigned URL that works as long as the grant does, answering with our Content-Type and
    Content-Disposition. The viewer's Range and conditional headers go on to the store, which answers them.

    The redirect may be reused by the viewer's browser while the presigned URL has a minute left; shared caches
    keep none (the URL is a bearer credential minted for this viewer).
    """
    expires_in = max(1, int(grant.expires_at.timestamp() - now_s))
    url = await blobs.presigned_url(
        key,
        expires_in=expires_in,
        content_type=headers["Content-Type"],
        content_disposition=headers.get("Content-Disposition"),
    )
    redirect_headers = {"Location": url, "Cache-Control": f"private, max-age={max(0, expires_in - 60)}"}
    return Response(status_code=302, headers=redirect_headers)


def is_media_path(path: str) -> bool:
    """True when `path` can only name a file inside a generation's folder: relative, no `..`, `\\` or `//`."""
    segments = path.split("/")
    *folders, name = segments
    return (
        len(segments) <= MAX_DEPTH
        and all(_SEGMENT.fullmatch(folder) for folder in folders)
        and _FILE.fullmatch(name) is not None
    )


def content_type(path: str) -> str:
    _, dot, extension = path.rpartition(".")
    return CONTENT_TYPES.get(dot + extension.lower(), DEFAULT_CONTENT_TYPE)


def cache_control(grant: MediaGrant, path: str, *, now_s: float) -> str:
    """The playlist players reload must be revalidated; the rest may be kept for as long as its URL works.

    `public`: the signed URL is the capability, so a shared cache (a CDN in front) may keep what it fetched under
    that URL; nobody reaches it without the token. A deleted recording stops being served at the origin at once,
    and from a cache when the URL expires.
    """
    if path == MASTER:
        return "public, no-cache"
    max_age = max(0, int(grant.expires_at.timestamp() - now_s))
    return f"public, max-age={max_age}, immutable"


def entity_tag(grant: MediaGrant, path: str, size: int) -> str:
    """A strong ETag: generations are written once, so recording, generation, path and size pin the bytes."""
    digest = hashlib.sha256(f"{grant.recording_id}\n{grant.generation}\n{path}\n{size}".encode()).hexdigest()
    return f'"{digest[:32]}"'


def attachment(title: str, *, extension: str) -> str:
    """Content-Disposition that saves the file as `<title><extension>`: an ASCII `filename` for old clients and the
    exact title as RFC 5987 `filename*`; "recording" when the title is empty."""
    name = re.sub(r"[\x00-\x1f\x7f/\\]", "_", " ".join(title.split()))[:100].strip(" .") or "recording"
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    plain = re.sub(r"[^A-Za-z0-9 ()._-]", "_", plain).strip(" ._") or "recording"
    return f"attachment; filename=\"{plain}{extension}\"; filename*=UTF-8''{quote(name + extension, safe='')}"


def _none_match(header: str | None, etag: str) -> bool:
    """If-None-Match with the weak comparison RFC 9110 prescribes for it."""
    if header is None:
        return False
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


def _if_range_holds(header: str | None, etag: str | None) -> bool:
    """Honour Range only when If-Range is absent or names the current ETag (a date never matches: strong tags only)."""
    return header is None or (etag is not None and header.strip() == etag)


async def _opened(blobs: BlobStore, key: str, *, start: int, end: int) -> AsyncIterator[bytes] | None:
    """The bytes [start, end) of `key`, already opened, so a blob removed since its size was read is a 404, not a
    200 cut off after the headers; None when it is gone."""
    chunks = blobs.open(key, start=start, end=end)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    return _resumed(first, chunks)


async def _resumed(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        if isinstance(rest, AsyncGenerator):
            await rest.aclose()  # close the file as soon as the client has gone, not when the GC gets to it
