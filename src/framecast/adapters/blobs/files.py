"""BlobStore on the local filesystem: one file per key under a root directory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

CHUNK = 1024 * 1024


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
            return (await anyio.Path(self.path(key)).stat()).st_size
        except FileNotFoundError:
            return None

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
        await anyio.to_thread.run_sync(os.replace, source, target)
