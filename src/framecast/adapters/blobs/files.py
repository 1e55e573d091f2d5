"""Local files: FileBlobStore for finished objects, FileUploadStore for tus uploads in progress.

Both live under DATA_DIR on one filesystem, so finishing an upload is a rename, not a copy.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from stat import S_ISREG

import anyio

from framecast.domain.uploads import OffsetMismatch

CHUNK = 1024 * 1024
WRITE_BATCH = 1024 * 1024
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _fsync_dir(directory: Path) -> None:
    """Make a create, rename or unlink in `directory` survive a power cut, not only a process crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def path(self, key: str) -> Path:
        """The file holding `key`; keys are server-made, but a key escaping the root is refused all the same."""
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root.resolve()):
            raise ValueError(f"blob key escapes the store: {key!r}")
        return path

    async def size(self, key: str) -> int | None:
        try:
            stat = await anyio.Path(self.path(key)).stat()
        except FileNotFoundError:
            return None
        return stat.st_size if S_ISREG(stat.st_mode) else None  # a folder of keys is not an object

    async def open(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.path(key), "rb") as f:
            await f.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                chunk = await f.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    async def delete(self, key: str) -> None:
        await anyio.Path(self.path(key)).unlink(missing_ok=True)

    async def adopt(self, source: Path, key: str) -> None:
        """Move a finished file into the store under `key` (same filesystem: a rename, no copy)."""
        target = self.path(key)
        await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)

        def move() -> None:
            os.replace(source, target)
            _fsync_dir(target.parent)

        await anyio.to_thread.run_sync(move)

    async def put_file(self, key: str, source: Path) -> None:
        """Move `source` in when it is on the store's filesystem (a rename), else copy it; durable on return."""
        target = self.path(key)

        def put() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(source, target)
            except OSError:  # another filesystem
                partial = target.with_name(target.name + ".partial")
                shutil.copyfile(source, partial)
                os.replace(partial, target)
            fd = os.open(target, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            _fsync_dir(target.parent)

        await anyio.to_thread.run_sync(put)

    async def get_file(self, key: str, target: Path) -> None:
        await anyio.to_thread.run_sync(shutil.copyfile, self.path(key), target)

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix.endswith("/"):
            raise ValueError(f"a prefix ends with '/': {prefix!r}")
        folder = self.path(prefix)

        def remove() -> int:
            if not folder.is_dir():
                return 0
            count = sum(1 for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder, ignore_errors=True)
            return count

        return await anyio.to_thread.run_sync(remove)


class FileUploadStore:
    """UploadStore with concatenation on local files: `{root}/{upload_id}` holds the bytes received so far.

    The file's size is the upload's offset. Every write goes straight to the file (no user-space buffer), so bytes
    that arrived before a crash of the process are in the file after it; they are fsynced before `append` returns.
    Callers serialise appends to one upload; this class does no locking of its own.
    """

    def __init__(self, root: Path, *, blobs: FileBlobStore) -> None:
        self._root = root
        self._blobs = blobs

    def path(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self._root / upload_id

    async def create(self, upload_id: str) -> None:
        path = self.path(upload_id)

        def create() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("xb") as f:
                os.fsync(f.fileno())
            _fsync_dir(path.parent)

        await anyio.to_thread.run_sync(create)

    async def append(self, upload_id: str, *, offset: int, chunks: AsyncIterator[bytes], limit: int) -> int:
        """Write `chunks` at `offset` (the current size) and return the new size; raises OffsetMismatch.

        Reads at most `limit` bytes. If `chunks` raises, what was written stays (and is fsynced) and the error
        propagates; a dropped connection should end the iterator instead, so the caller gets the new size.
        """
        # Append-only, never created here (a discarded upload stays gone). Network chunks are gathered into batches
        # of WRITE_BATCH bytes, each written in a worker thread while the next batch is received: one thread hop per
        # batch rather than per network read, and earlier batches are flushed on the way, leaving little for the
        # closing fsync. At most one batch is in flight, so bytes reach the file in order.
        path = self.path(upload_id)
        fd = await anyio.to_thread.run_sync(os.open, path, os.O_WRONLY | os.O_APPEND)
        in_flight: asyncio.Task[None] | None = None
        batch: list[memoryview] = []
        try:
            size = os.fstat(fd).st_size
            if size != offset:
                raise OffsetMismatch(expected=size, got=offset)
            written = batched = 0
            async for chunk in chunks:
                piece = memoryview(chunk)[: limit - written]
                batch.append(piece)
                batched += len(piece)
                written += len(piece)
                if batched >= WRITE_BATCH:
                    # Flush the previous batch to disk on the way: it is followed by more, and the last one is
                    # flushed by the closing fsync (syncing it twice costs a small PATCH about 15%).
                    follows = in_flight is not None
                    if in_flight is not None:
                        await in_flight
                    in_flight = asyncio.create_task(anyio.to_thread.run_sync(_write_batch, fd, batch, follows))
                    batch, batched = [], 0
                if written >= limit:
                    break
            return offset + written
        finally:
            # Also when the body failed mid-way: whatever arrived is kept. Never close the file under a running write.
            if in_flight is not None:
                await asyncio.wait([in_flight])
                if in_flight.exception() is not None:
                    batch = []  # a write failed: appending more after the gap would corrupt the upload
            try:
                if batch:
                    await anyio.to_thread.run_sync(_write_batch, fd, batch, in_flight is not None)
            finally:
                await anyio.to_thread.run_sync(_sync_and_close, fd)
            if in_flight is not None:
                in_flight.result()  # raise a failed write (disk full, ...) rather than report its bytes as stored

    async def offset(self, upload_id: str) -> int:
        """The durable size of the upload; raises FileNotFoundError when there is none (finished or discarded)."""
        return (await anyio.Path(self.path(upload_id)).stat()).st_size

    async def finish(self, upload_id: str, *, key: str) -> int:
        size = await self.offset(upload_id)
        await self._blobs.adopt(self.path(upload_id), key)
        return size

    async def discard(self, upload_id: str) -> None:
        await anyio.Path(self.path(upload_id)).unlink(missing_ok=True)

    async def concatenate(self, upload_id: str, *, parts: Sequence[str]) -> int:
        """Create `upload_id` from the bytes of `parts`, in order; the parts are left as they are."""
        target = self.path(upload_id)
        sources = [self.path(part) for part in parts]

        def concatenate() -> int:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                for source in sources:
                    with source.open("rb") as part:
                        shutil.copyfileobj(part, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
                size = out.tell()
            _fsync_dir(target.parent)
            return size

        return await anyio.to_thread.run_sync(concatenate)


def _write_batch(fd: int, pieces: list[memoryview], sync_before: bool) -> None:
    """Append `pieces`; with `sync_before`, first flush what earlier batches wrote."""
    if sync_before:
        os.fdatasync(fd)
    data = memoryview(b"".join(pieces))
    while data:
        data = data[os.write(fd, data) :]


def _sync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
