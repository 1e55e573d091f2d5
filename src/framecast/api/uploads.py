"""tus 1.0.0 at /api/v1/uploads/ (docs/protocol.md, "Uploads"), on the UploadService.

Written by hand rather than on a library: no well-kept ASGI tus server exists for Python (the packages there are
unmaintained or tied to one framework), and tusd, the reference server, is Go. The protocol is small; the hard
parts (offsets, durability, completion) live in services/uploads.py, and the real clients tuspy and tus-js-client
run against this module in the tests.

Creation is authorised by the signed ticket in the creation URL's query (UPLOAD_READY.upload_url) or a bearer
token. The created upload's URL, /api/v1/uploads/{128-bit id}, is then the capability for that one upload, as in
tusd: HEAD, PATCH and DELETE need nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from framecast.api import links
from framecast.api.deps import ContainerDep, caller
from framecast.api.errors import CODE_BY_STATUS, error_response
from framecast.api.schemas import error_responses
from framecast.api.tus_headers import (
    BadHeader,
    concat_header,
    encode_metadata,
    expires_header,
    parse_checksum,
    parse_concat,
    parse_metadata,
    parse_size,
)
from framecast.bootstrap import Container
from framecast.domain.errors import ConcurrentUpdate, DomainError, InvalidTransition, NotFound
from framecast.domain.uploads import LengthExceeded, OffsetMismatch, Upload, UploadKind
from framecast.services.tickets import UPLOAD_TICKET, InvalidTicket
from framecast.services.upload_bodies import CHECKSUM_ALGORITHMS, Body, ChecksumMismatch, UploadTooLarge
from framecast.services.upload_locks import UploadLocked
from framecast.services.uploads import Creator, NewUpload, NotAcceptingUploads

TUS_VERSION = "1.0.0"
OFFSET_STREAM = "application/offset+octet-stream"
BASE_EXTENSIONS = "creation,creation-with-upload,creation-defer-length,checksum,termination,expiration"

STATUS_BY_ERROR: tuple[tuple[type[DomainError], int], ...] = (
    (ChecksumMismatch, 460),
    (UploadTooLarge, 413),
    (LengthExceeded, 413),
    (OffsetMismatch, 409),
    (NotAcceptingUploads, 409),
    (InvalidTransition, 409),
    (ConcurrentUpdate, 409),
    (UploadLocked, 423),
    (NotFound, 404),
    (InvalidTicket, 401),
)


class TusRoute(APIRoute):
    """Every response carries Tus-Resumable; requests without it get 412; errors leave as JSON with tus statuses."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            if request.method != "OPTIONS" and request.headers.get("tus-resumable") != TUS_VERSION:
                response: Response = error_response(
                    412,
                    "unsupported_version",
                    f"send Tus-Resumable: {TUS_VERSION}, the only tus version this server speaks",
                    {"Tus-Version": TUS_VERSION},
                )
            else:
                response = await _answer(handler, request)
            response.headers["Tus-Resumable"] = TUS_VERSION
            return response

        return route


async def _answer(handler: Callable[[Request], Coroutine[Any, Any, Response]], request: Request) -> Response:
    try:
        return await handler(request)
    except BadHeader as exc:
        return error_response(400, "bad_request", str(exc))
    except DomainError as exc:
        status = next((s for cls, s in STATUS_BY_ERROR if isinstance(exc, cls)), 400)
        return error_response(status, exc.code, str(exc))
    except HTTPException as exc:
        return error_response(
            exc.status_code, CODE_BY_STATUS.get(exc.status_code, "error"), str(exc.detail), exc.headers
        )
    except RequestValidationError:
        return error_response(400, "bad_request", "the request is not valid")


router = APIRouter(
    prefix=links.UPLOADS_PATH.rstrip("/"),
    tags=["uploads"],
    route_class=TusRoute,
    responses=error_responses(400, 401, 403, 404, 409, 412, 413, 415, 460),
)


@router.options("/", status_code=204)
@router.options("/{upload_id}", status_code=204, include_in_schema=False)
async def discover(container: ContainerDep) -> Response:
    """Advertise the tus version, extensions, maximum size and checksum algorithms."""
    extensions = BASE_EXTENSIONS + (",concatenation" if container.uploads.concatenates else "")
    return Response(
        status_code=204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": extensions,
            "Tus-Max-Size": str(container.uploads.max_size),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        },
    )


@router.post("/", status_code=201)
@router.post("", status_code=201, include_in_schema=False)
async def create_upload(request: Request, container: ContainerDep) -> Response:
    """Create an upload (tus creation, creation-with-upload, creation-defer-length, concatenation)."""
    headers = request.headers
    metadata = parse_metadata(headers.get("upload-metadata"))
    kind, part_urls = parse_concat(headers.get("upload-concat"))
    length = parse_size(headers, "upload-length")
    deferred = headers.get("upload-defer-length")
    if deferred is not None and deferred != "1":
        raise BadHeader("Upload-Defer-Length must be 1")
    if kind is UploadKind.FINAL:
        if length is not None or deferred is not None:
            raise BadHeader("a final upload takes its length from its parts: send no Upload-Length")
    elif (length is None) == (deferred is None):
        raise BadHeader("send either Upload-Length or Upload-Defer-Length: 1")
    creator = await _creator(request, container, metadata)
    body = _body(request) if _creation_has_body(request) else None
    new = NewUpload(length=length, metadata=metadata, kind=kind, parts=[_upload_id(url) for url in part_urls])
    upload = await container.uploads.create(creator=creator, new=new, body=body)
    location = f"{container.settings.resolved_public_url}{links.UPLOADS_PATH}{upload.id}"
    return Response(status_code=201, headers={"Location": location, **_progress(upload)})


@router.head("/{upload_id}")
async def upload_status(upload_id: str, container: ContainerDep) -> Response:
    """Report how much of the upload the server holds (the offset to resume from)."""
    upload = await container.uploads.status(upload_id)
    headers = {"Cache-Control": "no-store", **_progress(upload)}
    if upload.length is not None:
        headers["Upload-Length"] = str(upload.length)
    else:
        headers["Upload-Defer-Length"] = "1"
    if upload.metadata:
        headers["Upload-Metadata"] = encode_metadata(upload.metadata)
    if upload.kind is not UploadKind.SINGLE:
        headers["Upload-Concat"] = concat_header(upload.kind, [f"{links.UPLOADS_PATH}{p}" for p in upload.parts])
    return Response(status_code=200, headers=headers)


@router.patch("/{upload_id}", status_code=204)
async def append_to_upload(upload_id: str, request: Request, container: ContainerDep) -> Response:
    """Append the body at Upload-Offset; Upload-Length may fix a deferred length."""
    _require_offset_stream(request)
    offset = parse_size(request.headers, "upload-offset")
    if offset is None:
        raise BadHeader("send Upload-Offset: the offset this chunk starts at (HEAD tells it)")
    length = parse_size(request.headers, "upload-length")
    upload = await container.uploads.append(upload_id, offset=offset, body=_body(request), length=length)
    return Response(status_code=204, headers=_progress(upload))


@router.delete("/{upload_id}", status_code=204)
async def terminate_upload(upload_id: str, container: ContainerDep) -> Response:
    """Stop an upload and delete what it stored (tus termination)."""
    await container.uploads.terminate(upload_id)
    return Response(status_code=204)


# -- helpers ---------------------------------------------------------------------------------------------------------


async def _creator(request: Request, container: Container, metadata: dict[str, str]) -> Creator:
    """Who may create this upload: the ticket's grant, else the bearer token's user (who may name a recording)."""
    ticket = request.query_params.get("ticket")
    if ticket is not None:
        grant = container.tickets.verify(UPLOAD_TICKET, ticket, max_age=links.upload_ttl(container))
        return Creator(user_id=grant.user_id, recording_id=grant.recording_id)
    user = await caller(request, container)
    if user is None:
        raise HTTPException(
            401,
            "create uploads at the upload_url the server gave you, with an Authorization: Bearer token, or signed in",
            headers={"WWW-Authenticate": "Bearer"},
        )
    recording_id = metadata.get("recording_id") or None
    return Creator(user_id=user.id, recording_id=recording_id, workspace_id=user.workspace_id)


def _creation_has_body(request: Request) -> bool:
    """True for creation-with-upload; its bytes must come as an offset stream, like a PATCH's."""
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    if not chunked and not parse_size(request.headers, "content-length"):
        return False
    _require_offset_stream(request)
    return True


def _require_offset_stream(request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != OFFSET_STREAM:
        raise HTTPException(415, f"send the bytes as Content-Type: {OFFSET_STREAM}")


def _body(request: Request) -> Body:
    checksum = parse_checksum(request.headers.get("upload-checksum"), supported=CHECKSUM_ALGORITHMS)
    return Body(chunks=_received(request), length=parse_size(request.headers, "content-length"), checksum=checksum)


async def _received(request: Request) -> AsyncIterator[bytes]:
    """The body as it arrives; a dropped connection ends it quietly (what arrived is kept, the client resumes)."""
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        return


def _progress(upload: Upload) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.offset)}
    if upload.completed_at is None:
        headers["Upload-Expires"] = expires_header(upload.expires_at)
    if upload.recording_id is not None:
        headers["Framecast-Recording-Id"] = upload.recording_id
    return headers


def _upload_id(url: str) -> str:
    """The id in an upload URL (absolute or a path) named by Upload-Concat: final."""
    upload_id = url.rstrip("/").rsplit("/", 1)[-1]
    if f"{links.UPLOADS_PATH}{upload_id}" not in url or not upload_id:
        raise BadHeader(f"{url!r} is not an upload URL of this server")
    return upload_id
