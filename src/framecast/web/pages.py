"""The pages a person sees: sign-in, library, recorder, the watch page at a share link, its embeddable player, and
the oEmbed answer that lets chat apps unfurl a link. Pages are rendered here with Jinja2; each loads one small
module from the built front-end for what needs a script."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from framecast.api import links
from framecast.api.deps import SESSION_COOKIE, ContainerDep
from framecast.api.recordings import present
from framecast.api.schemas import RecordingPage
from framecast.api.shared import present_shared
from framecast.bootstrap import Container
from framecast.domain.media import POSTER
from framecast.domain.sharing import LinkUnavailable, is_link_id
from framecast.domain.users import User
from framecast.services.accounts import authenticate
from framecast.services.sharing import Shared, open_link
from framecast.web.assets import asset

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["asset"] = asset

router = APIRouter(include_in_schema=False)

LIBRARY_PAGE_SIZE = 24
EMBED_WIDTH = 960  # what an oEmbed answer proposes when the consumer names no size


# -- sign-in ---------------------------------------------------------------------------------------------------------


async def signed_in(request: Request, container: Container) -> tuple[User, str] | None:
    """The session cookie's user and CSRF token, or None when signed out (or the session ended)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    user = await container.sessions.user(token)
    return None if user is None else (user, container.sessions.csrf_token(token))


def render(request: Request, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user", None)
    context.setdefault("csrf_token", "")
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'self'")
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    return response


def _local(target: str | None) -> str:
    """Where to go after signing in: only a path on this site (never `//elsewhere` or `https://elsewhere`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/library"
    return target


def _to_signin(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?{urlencode({'next': target})}", status_code=303)


@router.get("/")
async def home(request: Request, container: ContainerDep) -> Response:
    return RedirectResponse("/library" if await signed_in(request, container) else "/signin", status_code=303)


@router.get("/signin")
async def signin_page(request: Request, container: ContainerDep, next: str | None = None) -> Response:
    if await signed_in(request, container):
        return RedirectResponse(_local(next), status_code=303)
    return render(request, "signin.html", page="signin", next=_local(next), email="", error=None)


@router.post("/signin")
async def signin(
    request: Request,
    container: ContainerDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/library",
) -> Response:
    # Another site cannot sign a visitor in to an account of its choosing (login CSRF): browsers say where a form
    # came from, and a sign-in is only taken from this site's own page.
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(403, "sign in from framecast's own sign-in page")
    user: User | None
    if token.strip():
        user = await authenticate(uow=container.uow, token=token.strip())
        session = await container.sessions.open(user) if user else None
        error = "That API token is not valid."
    else:
        session = await container.sessions.sign_in(email=email, password=password)
        error = "Wrong email or password."
    if session is None:
        return render(request, "signin.html", status=400, page="signin", next=_local(next), email=email, error=error)
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=int(container.sessions.ttl.total_seconds()),
        httponly=True,
        secure=container.settings.resolved_public_url.startswith("https://"),
        samesite="lax",
        path="/",
    )
    return response


@router.post("/signout")
async def signout(
    request: Request, container: ContainerDep, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        if not container.sessions.csrf_valid(token, csrf_token):
            raise HTTPException(403, "sign out from framecast's own pages")
        await container.sessions.close(token)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- the signed-in pages ---------------------------------------------------------------------------------------------


@router.get("/library")
async def library(request: Request, container: ContainerDep, q: Annotated[str, Query(max_length=200)] = "") -> Response:
    session = await signed_in(request, container)
    if session is None:
        return _to_signin(request)
    user, csrf = session
    page = await container.recordings.page(owner_id=user.id, limit=LIBRARY_PAGE_SIZE, title=q.strip() or None)
    initial = RecordingPage(items=[present(container, r) for r in page.items], next_cursor=page.next_cursor)
    return render(
        request,
        "library.html",
        page="library",
        user=user,
        csrf_token=csrf,
        q=q,
        initial=initial.model_dump(mode="json"),
        max_upload_bytes=container.settings.max_upload_bytes,
    )


@router.get("/record")
async def record(request: Request, container: ContainerDep) -> Response:
    session = await signed_in(request, container)
    if session is None:
        return _to_signin(request)
    user, csrf = session
    return render(
        request,
        "record.html",
        page="record",
        user=user,
        csrf_token=csrf,
        max_duration_ms=int(container.settings.limits.max_duration.total_seconds() * 1000),
    )


# -- share links -----------------------------------------------------------------------------------------------------


async def _shared_page(request: Request, container: Container, link_id: str, template: str) -> Response:
    try:
        shared = await open_link(uow=container.uow, clock=container.clock, link_id=link_id)
    except LinkUnavailable:
        return await not_found_page(request, container)
    session = await signed_in(request, container)
    user, csrf = session if session else (None, "")
    data = await present_shared(container, shared, user)
    response = render(
        request,
        template,
        page="watch",
        user=user,
        csrf_token=csrf,
        shared=data.model_dump(mode="json"),
        is_owner=data.recording_id is not None,
        meta=_share_meta(container, shared, data.model_dump(mode="json")),
        preload=links.start_chain(container, shared.recording),
    )
    if template == "embed.html":
        response.headers["Content-Security-Policy"] = "frame-ancestors *"
    # The page holds signed media URLs that expire; a cached copy would hand out dead ones.
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@router.get("/v/{link_id}")
async def watch(link_id: str, request: Request, container: ContainerDep) -> Response:
    return await _shared_page(request, container, link_id, "watch.html")


@router.get("/embed/{link_id}")
async def embed(link_id: str, request: Request, container: ContainerDep) -> Response:
    return await _shared_page(request, container, link_id, "embed.html")


@router.get("/v/{link_id}/poster.jpg")
async def poster(link_id: str, container: ContainerDep) -> Response:
    """A lasting poster URL for link previews, which chat apps fetch (and cache) long after a signed URL expires."""
    shared = await open_link(uow=container.uow, clock=container.clock, link_id=link_id)
    media = shared.recording.media
    url = links.media_url(container, shared.recording, POSTER) if media and media.pictures else None
    if url is None:
        raise HTTPException(404, "this video has no poster yet")
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "public, max-age=300"})


def _share_meta(container: Container, shared: Shared, data: dict[str, Any]) -> dict[str, Any]:
    """What _share_meta.html puts in the watch page's head for link previews (OpenGraph, Twitter, oEmbed)."""
    recording = shared.recording
    media = recording.media
    width, height = _frame(data.get("width"), data.get("height"), EMBED_WIDTH, None)
    share = links.share_url(container, recording)
    return {
        "title": recording.title or "Untitled recording",
        "description": recording.description or "A video shared with framecast.",
        "url": share,
        "embed_url": links.embed_url(container, recording),
        "image": f"{share}/poster.jpg" if media and media.pictures and media.has_video else None,
        "width": width,
        "height": height,
        "oembed": f"{container.settings.resolved_public_url}/oembed?{urlencode({'url': share, 'format': 'json'})}",
    }


def _frame(width: int | None, height: int | None, max_width: int, max_height: int | None) -> tuple[int, int]:
    """The player's size for an embed: the video's aspect ratio (16:9 before it is known) within the bounds."""
    ratio = (height / width) if width and height else 9 / 16
    w = max_width
    h = round(w * ratio)
    if max_height is not None and h > max_height:
        h = max_height
        w = round(h / ratio)
    return w, h


@router.get("/oembed")
async def oembed(
    container: ContainerDep,
    url: Annotated[str, Query(max_length=2000)],
    format: Annotated[str, Query(max_length=10)] = "json",
    maxwidth: Annotated[int | None, Query(ge=64, le=4096)] = None,
    maxheight: Annotated[int | None, Query(ge=36, le=4096)] = None,
) -> Response:
    """oEmbed 1.0 (https://oembed.com) for share links: a `video` with an iframe of the embeddable player."""
    if format != "json":
        raise HTTPException(501, "only format=json is offered")
    parts = urlsplit(url)
    base = urlsplit(container.settings.resolved_public_url)
    segments = parts.path.strip("/").split("/")
    if parts.netloc != base.netloc or len(segments) != 2 or segments[0] not in ("v", "embed"):
        raise HTTPException(404, "not a framecast share link")
    if not is_link_id(segments[1]):
        raise HTTPException(404, "not a framecast share link")
    shared = await open_link(uow=container.uow, clock=container.clock, link_id=segments[1])
    media = shared.recording.media
    has_video = media is not None and media.has_video
    width, height = _frame(
        media.width if media and has_video else None,
        media.height if media and has_video else None,
        min(maxwidth or EMBED_WIDTH, EMBED_WIDTH),
        maxheight,
    )
    embed_src = links.embed_url(container, shared.recording)
    title = shared.recording.title or "Untitled recording"
    answer: dict[str, Any] = {
        "version": "1.0",
        "type": "video",
        "provider_name": "framecast",
        "provider_url": container.settings.resolved_public_url + "/",
        "title": title,
        "width": width,
        "height": height,
        "html": (
            f'<iframe src="{html.escape(embed_src)}" width="{width}" height="{height}" title="{html.escape(title)}" '
            'frameborder="0" allow="autoplay; fullscreen; picture-in-picture"></iframe>'
        ),
        "cache_age": 3600,
    }
    if media is not None and media.pictures and has_video:
        answer |= {
            "thumbnail_url": f"{links.share_url(container, shared.recording)}/poster.jpg",
            "thumbnail_width": media.width,
            "thumbnail_height": media.height,
        }
    return JSONResponse(answer)


# -- not found -------------------------------------------------------------------------------------------------------


def wants_page(request: Request) -> bool:
    """A person's browser asking for a page (not the API, media or a script), who should get a page back."""
    path = request.url.path
    return not path.startswith(("/api/", "/media/", "/static/")) and "text/html" in request.headers.get("accept", "")


async def not_found_page(request: Request, container: Container) -> HTMLResponse:
    session = await signed_in(request, container)
    user, csrf = session if session else (None, "")
    return render(request, "404.html", status=404, page="404", user=user, csrf_token=csrf)
