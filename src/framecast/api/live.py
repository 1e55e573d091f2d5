"""/api/v1/recordings/{id}/live: the segments a client uploads while it records (docs/live.md)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response

from framecast.api.deps import ContainerDep, UserDep
from framecast.api.schemas import (
    LiveComplete,
    LiveGapOut,
    LiveRunEnd,
    LiveRunOut,
    LiveSegmentOut,
    LiveStateOut,
    error_responses,
)
from framecast.domain.live import MAX_INIT_BYTES, MAX_RUNS, MAX_SEGMENT_BYTES, MAX_SEGMENTS_PER_RUN
from framecast.services.live import DigestMissing, LiveView, Receipt, SegmentTooLarge

router = APIRouter(
    prefix="/api/v1/recordings/{recording_id}/live",
    tags=["live segments"],
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422),
)

Run = Annotated[int, Path(ge=1, le=MAX_RUNS)]
Index = Annotated[int, Path(ge=0, lt=MAX_SEGMENTS_PER_RUN)]
DigestHeader = Annotated[str | None, Header(alias="Content-Digest")]
# RFC 9530: a dictionary of algorithm = :base64: byte sequences; only sha-256 is used.
_SHA256 = re.compile(r"(?:^|,)\s*sha-256\s*=\s*:([A-Za-z0-9+/=]+):")


@router.put("/{run}/init", status_code=201)
async def put_init(
    recording_id: str,
    run: Run,
    request: Request,
    response: Response,
    user: UserDep,
    container: ContainerDep,
    content_digest: DigestHeader = None,
) -> LiveSegmentOut:
    """Store a run's init segment (ftyp + moov), or a WebM run's header (the bytes before its first Cluster; 415
    `unsupported_media` for codecs that cannot be transcoded live). 200 when the same bytes were stored already."""
    sha256 = _digest(content_digest)
    body = await _body(request, MAX_INIT_BYTES)
    receipt = await container.live_segments.put_init(
        owner_id=user.id, recording_id=recording_id, run=run, body=body, sha256=sha256
    )
    return _receipt(receipt, response)


@router.put("/{run}/{index}", status_code=201)
async def put_segment(
    recording_id: str,
    run: Run,
    index: Index,
    request: Request,
    response: Response,
    user: UserDep,
    container: ContainerDep,
    content_digest: DigestHeader = None,
) -> LiveSegmentOut:
    """Store one media segment (whole moof + mdat pairs; for a WebM run, whole Clusters starting on a keyframe,
    transcoded as they arrive). 200 when the same bytes were stored already."""
    sha256 = _digest(content_digest)
    body = await _body(request, MAX_SEGMENT_BYTES)
    receipt = await container.live_segments.put_segment(
        owner_id=user.id, recording_id=recording_id, run=run, index=index, body=body, sha256=sha256
    )
    return _receipt(receipt, response)


@router.post("/{run}/end")
async def end_run(
    recording_id: str, run: Run, body: LiveRunEnd, user: UserDep, container: ContainerDep
) -> LiveStateOut:
    """Declare how many segments the run has."""
    view = await container.live_segments.end_run(
        owner_id=user.id, recording_id=recording_id, run=run, segments=body.segments
    )
    return present(view)


@router.post("/complete")
async def complete(recording_id: str, body: LiveComplete, user: UserDep, container: ContainerDep) -> LiveStateOut:
    """Declare how many runs the recording has: READY at once when every segment is here (`complete`), else as
    soon as the ones in `missing` arrive."""
    view = await container.live_segments.complete(owner_id=user.id, recording_id=recording_id, runs=body.runs)
    return present(view)


@router.get("")
async def live_state(recording_id: str, user: UserDep, container: ContainerDep) -> LiveStateOut:
    """What the server has of a live upload: for a client resuming after a crash or a lost connection."""
    return present(await container.live_segments.view(owner_id=user.id, recording_id=recording_id))


def present(view: LiveView) -> LiveStateOut:
    listed = {run.run: len(segments) for run, segments in view.stream.listed()}
    return LiveStateOut(
        status=view.status,
        runs=[
            LiveRunOut(
                run=run.run,
                init=bool(run.init_sha256),
                segments=listed.get(run.run, 0),
                received=sorted(run.segments),
                ended=run.ended,
            )
            for run in sorted(view.stream.runs.values(), key=lambda r: r.run)
        ],
        declared_runs=view.stream.declared_runs,
        missing=[LiveGapOut(run=gap.run, index=gap.index) for gap in view.missing],
        complete=view.complete,
    )


def _receipt(receipt: Receipt, response: Response) -> LiveSegmentOut:
    if receipt.duplicate:
        response.status_code = 200
    return LiveSegmentOut(
        run=receipt.run,
        index=receipt.index,
        size=receipt.size,
        duration_ms=None if receipt.duration_s is None else round(receipt.duration_s * 1000),
        duplicate=receipt.duplicate,
    )


def _digest(header: str | None) -> str:
    """The SHA-256 in Content-Digest, as hex; 400 `digest_missing` when there is none."""
    match = _SHA256.search(header or "")
    if match is not None:
        try:
            raw = base64.b64decode(match.group(1), validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) == 32:
            return raw.hex()
    raise DigestMissing("send Content-Digest: sha-256=:<base64 of the body's SHA-256>:")


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise SegmentTooLarge(f"a segment is at most {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise SegmentTooLarge(f"a segment is at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
