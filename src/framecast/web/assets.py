"""The built front-end (frontend/ bundled by esbuild into static/dist) and how its files are served.

URLs carry a hash of the file's content (`/static/dist/player.js?v=3f2a...`), so browsers may keep them for a year and
still get a new build at once: the page names a new URL.
"""

from __future__ import annotations

import hashlib
import logging
from functools import cache
from mimetypes import guess_type
from pathlib import Path

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope

STATIC = Path(__file__).parent / "static"
DIST = STATIC / "dist"
STATIC_PATH = "/static"

log = logging.getLogger(__name__)


@cache
def _version(name: str) -> str:
    try:
        return hashlib.sha256((DIST / name).read_bytes()).hexdigest()[:12]
    except FileNotFoundError:
        log.error("the web app is not built (%s is missing): run `make setup`", name)
        return "missing"


def asset(name: str) -> str:
    """The URL of a built file, e.g. asset("player.js")."""
    return f"{STATIC_PATH}/dist/{name}?v={_version(name)}"


def built() -> bool:
    return (DIST / "app.css").is_file()


class _Static(StaticFiles):
    """Static files with caching suited to versioned URLs (for good with `?v=`, revalidated without), and the
    build's gzipped copies (`name.gz`) to browsers that accept them."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        gzipped = await self._gzipped(path, scope)
        response = gzipped or await super().get_response(path, scope)
        versioned = b"v=" in scope.get("query_string", b"")
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable" if versioned else "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def _gzipped(self, path: str, scope: Scope) -> Response | None:
        if not path.endswith((".js", ".css")) or "gzip" not in Headers(scope=scope).get("accept-encoding", ""):
            return None
        try:
            response = await super().get_response(path + ".gz", scope)
        except HTTPException:
            return None
        if response.status_code == 200:
            response.headers["Content-Encoding"] = "gzip"
            response.headers["Content-Type"] = f"{guess_type(path)[0] or 'text/plain'}; charset=utf-8"
            response.headers["Vary"] = "Accept-Encoding"
        return response


def static_app() -> ASGIApp:
    """Serves STATIC: the built files precompressed, anything else compressed on the fly for browsers that accept it
    (the player's script shrinks to about a third)."""
    return GZipMiddleware(_Static(directory=STATIC, check_dir=False), minimum_size=1024)
