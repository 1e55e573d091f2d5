"""Upload request bodies on their way to the store: bounded to what the upload may take, checksums verified first."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import anyio

from framecast.domain.errors import DomainError

CHECKSUM_ALGORITHMS: dict[str, Callable[[], hashlib._Hash]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
SPOOL_CHUNK = 1024 * 1024


class ChecksumMismatch(DomainError):
    code = "checksum_mismatch"

    def __init__(self, algorithm: str) -> None:
        super().__init__(f"the chunk's {algorithm} does not match Upload-Checksum; it was discarded, send it again")


class UploadTooLarge(DomainError):
    code = "too_large"


@dataclass(frozen=True, slots=True)
class Checksum:
    """An Upload-Checksum: `algorithm` is a key of CHECKSUM_ALGORITHMS, `digest` the raw digest bytes."""

    algorithm: str
    digest: bytes


@dataclass(frozen=True, slots=True)
class Body:
    """A request body, read once as it arrives; `chunks` ends early, without error, when the client goes away."""

    chunks: AsyncIterator[bytes]
    length: int | None = None
    checksum: Checksum | None = None


@dataclass(slots=True)
class Cut:
    """Set when a body went on past the bytes it was allowed (what came before may have been stored)."""

    overflow: bool = False


@contextlib.asynccontextmanager
async def incoming(body: Body, *, room: int, cut: Cut, spool_dir: Path) -> AsyncIterator[AsyncIterator[bytes]]:
    """Yield the chunks to store: at most `room` bytes, and for a checksummed body only once it is verified.

    Raises UploadTooLarge when the declared Content-Length does not fit, before a byte is read. A checksummed body
    is spooled to an anonymous file in `spool_dir` and checked there, so a mismatch (ChecksumMismatch) or a body
    past `room` (UploadTooLarge) stores nothing.
    """
    if body.length is not None and body.length > room:
        raise UploadTooLarge(f"the body of {body.length} bytes is more than the {room} this upload may still take")
    if body.checksum is None:
        yield bounded(body.chunks, room=room, cut=cut)
        return
    expected = body.checksum
    spool = await anyio.to_thread.run_sync(_anonymous_file, spool_dir)
    try:
        digest = CHECKSUM_ALGORITHMS[expected.algorithm]()
        async for chunk in bounded(body.chunks, room=room, cut=cut):
            digest.update(chunk)
            await anyio.to_thread.run_sync(spool.write, chunk)
        if cut.overflow:
            raise UploadTooLarge(f"the body is more than the {room} bytes this upload may still take")
        if not hmac.compare_digest(digest.digest(), expected.digest):
            raise ChecksumMismatch(expected.algorithm)
        await anyio.to_thread.run_sync(spool.seek, 0)
        yield _read(spool)
    finally:
        await anyio.to_thread.run_sync(spool.close)


async def bounded(chunks: AsyncIterator[bytes], *, room: int, cut: Cut) -> AsyncIterator[bytes]:
    """Yield at most `room` bytes; a body that goes on past it sets `cut.overflow` and loses the offending chunk.

    The chunk that reaches `room` exactly is held back until the body ends, so a body longer than an upload's
    length never completes the upload.
    """
    seen = 0
    held: bytes | None = None
    async for chunk in chunks:
        if held is not None or seen + len(chunk) > room:
            cut.overflow = True
            return
        seen += len(chunk)
        if seen == room:
            held = chunk
            continue
        yield chunk
    if held is not None:
        yield held


def _anonymous_file(directory: Path) -> IO[bytes]:
    # Unlinked on creation (O_TMPFILE on Linux): nothing is left behind, even by a killed process.
    return tempfile.TemporaryFile(dir=directory)


async def _read(spool: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := await anyio.to_thread.run_sync(spool.read, SPOOL_CHUNK):
        yield chunk
