"""The local spool: every recording's captured files and a journal that says how far it got.

Each recording has a folder of its own under the spool: `journal.json` plus one fragmented MP4 per run of capture
(from a start or resume to the next pause or stop). The journal is replaced atomically and fsynced at every step that
matters (a run opened or closed, an upload created, a control message about to be sent, the state changed), so after
the agent or the machine dies, the next start knows what was captured, what the server was told and how it is being
uploaded (tus parts, each with its upload URL, or live segments, whose account the server keeps). A folder is held
with an exclusive lock while an agent works on it; a lock dies with its process, so a folder whose lock can be taken
belongs to an agent that is gone.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

JOURNAL = "journal.json"
LOCK = "lock"
VERSION = 1


class Stage(StrEnum):
    """How far a spooled recording got; only DONE and CANCELLED are finished."""

    RECORDING = "recording"  # capturing, or the agent died while it was
    STOPPED = "stopped"  # capture is over; the server may not know yet
    UPLOADING = "uploading"  # the server knows it stopped; parts are being sent
    DONE = "done"  # the server has everything
    CANCELLED = "cancelled"  # the user threw it away


@dataclass(kw_only=True)
class Run:
    """One run of capture: a fragmented MP4 from a start or resume to the next pause or stop."""

    file: str
    closed: bool = False
    length: int | None = None  # whole bytes of the file, known once the run is closed
    upload_url: str | None = None
    media_ms: int = 0  # media time captured, for the client's own duration and a source's next offset


@dataclass(kw_only=True)
class Journal:
    id: str
    server: str
    recording_id: str
    recording_type: str
    title: str = ""
    stage: Stage = Stage.RECORDING
    seq: int = 0  # the last control message seq handed out; a restarted agent continues above it
    runs: list[Run] = field(default_factory=list)
    share_url: str | None = None
    # Uploaded as live segments (docs/live.md) rather than tus parts; journals written before live segments have not.
    live: bool = False
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    version: int = VERSION

    @property
    def finished(self) -> bool:
        return self.stage in (Stage.DONE, Stage.CANCELLED)

    @property
    def media_ms(self) -> int:
        return sum(run.media_ms for run in self.runs)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Journal:
        raw: dict[str, Any] = json.loads(text)
        if raw.get("version") != VERSION:
            raise ValueError(f"journal version {raw.get('version')!r} is not {VERSION}")
        runs = [Run(**run) for run in raw.pop("runs", [])]
        stage = Stage(raw.pop("stage"))
        return cls(**raw, runs=runs, stage=stage)


class Entry:
    """One recording's spool folder, held (locked) by this process."""

    def __init__(self, folder: Path, journal: Journal, lock: IO[bytes]) -> None:
        self.folder = folder
        self.journal = journal
        self._lock = lock

    def path(self, run: Run) -> Path:
        return self.folder / run.file

    def new_run(self) -> Run:
        run = Run(file=f"run-{len(self.journal.runs) + 1:04d}.mp4")
        self.journal.runs.append(run)
        self.save()
        return run

    def next_seq(self) -> int:
        """A control message seq never used before by this recording, recorded before the message is sent."""
        self.journal.seq += 1
        self.save()
        return self.journal.seq

    def save(self) -> None:
        """Replace the journal atomically and durably: the old one or the new one survives any crash."""
        target = self.folder / JOURNAL
        temporary = self.folder / f".{JOURNAL}.{secrets.token_hex(4)}"
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(self.journal.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(target)
        _fsync_dir(self.folder)

    def discard(self) -> None:
        """Delete the folder and everything in it (a cancelled or fully uploaded recording)."""
        self.release()
        shutil.rmtree(self.folder, ignore_errors=True)

    def release(self) -> None:
        if not self._lock.closed:
            self._lock.close()


class Spool:
    """The folder of spooled recordings."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self, *, server: str, recording_id: str, recording_type: str, title: str, live: bool = False) -> Entry:
        """A new, locked folder for a recording the server has just created; `live` if it goes up as segments."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        local_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        folder = self.root / local_id
        folder.mkdir(mode=0o700)
        lock = _try_lock(folder)
        assert lock is not None, "a folder this process just made is locked by another"
        journal = Journal(
            id=local_id,
            server=server,
            recording_id=recording_id,
            recording_type=recording_type,
            title=title,
            live=live,
        )
        entry = Entry(folder, journal, lock)
        entry.save()
        return entry

    def unfinished(self) -> Iterator[Entry]:
        """Spooled recordings that no running agent holds and that are not finished, oldest first, each locked.

        Folders whose journal is unreadable are left alone (and said so by the caller's listing).
        """
        if not self.root.is_dir():
            return
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            lock = _try_lock(folder)
            if lock is None:
                continue  # another agent is working on it
            try:
                journal = Journal.from_json((folder / JOURNAL).read_text(encoding="utf-8"))
            except (OSError, ValueError, TypeError, KeyError):
                lock.close()
                continue
            entry = Entry(folder, journal, lock)
            if journal.finished:
                entry.discard()  # finished but not yet removed when the agent stopped
                continue
            yield entry

    def unreadable(self) -> list[Path]:
        """Folders that hold no readable journal: shown to the user, never deleted by the agent."""
        if not self.root.is_dir():
            return []
        broken = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            try:
                Journal.from_json((folder / JOURNAL).read_text(encoding="utf-8"))
            except (OSError, ValueError, TypeError, KeyError):
                broken.append(folder)
        return broken


def _try_lock(folder: Path) -> IO[bytes] | None:
    """An exclusive lock on the folder, or None when another process holds it."""
    handle = (folder / LOCK).open("a+b")
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); Windows has no directory handles to sync."""
    if sys.platform == "win32":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
