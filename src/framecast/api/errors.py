"""Every error leaves as `{"error": {"code": ..., "message": ...}}` with a fitting HTTP status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from framecast.domain.errors import ConcurrentUpdate, DomainError, InvalidTransition, NotFound
from framecast.domain.live import InitMissing, SegmentConflict
from framecast.domain.webm import UnsupportedMedia
from framecast.services.live import NotAcceptingSegments, NothingRecorded, SegmentTooLarge
from framecast.services.recordings import BadCursor
from framecast.services.tickets import InvalidTicket

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    NotFound: 404,
    InvalidTransition: 409,
    ConcurrentUpdate: 409,
    InvalidTicket: 401,
    BadCursor: 400,
    SegmentConflict: 409,
    InitMissing: 409,
    NotAcceptingSegments: 409,
    NothingRecorded: 409,
    SegmentTooLarge: 413,
    UnsupportedMedia: 415,
}

CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "bad_request",
}


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=dict(headers or {}))


NotFoundPage = Callable[[Request], Awaitable[Response] | None]


def install(app: FastAPI, *, not_found_page: NotFoundPage | None = None) -> None:
    """Answer errors as JSON; with `not_found_page`, a 404 may be a page instead (it returns None to decline)."""

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        status = next((s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 400)
        if status == 404 and not_found_page is not None and (page := not_found_page(request)) is not None:
            return await page
        return error_response(status, exc.code, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404 and not_found_page is not None and (page := not_found_page(request)) is not None:
            return await page
        code = CODE_BY_STATUS.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'] if p != 'body')}: {err['msg']}" for err in exc.errors()
        )
        return error_response(422, "bad_request", problems or "the request is not valid")
