"""All configuration, read once at start-up from FRAMECAST_* environment variables (CLI flags override)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from framecast.domain.recordings import Limits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRAMECAST_", extra="ignore")

    data_dir: Path = Field(default=Path("./framecast-data"), description="Home of the embedded default.")
    database_url: str | None = Field(default=None, description="Unset: SQLite in DATA_DIR.")
    redis_url: str | None = Field(default=None, description="Unset: in-memory live state (one instance).")
    redis_prefix: str = Field(default="framecast:", description="Prefix of every Redis key and channel.")
    storage_url: str | None = Field(default=None, description="Unset: files under DATA_DIR/blobs.")
    event_bus_url: str = Field(default="memory://", description="memory:// (in-process delivery).")
    public_url: str | None = Field(default=None, description="Base URL used in links; unset: http://HOST:PORT.")
    secret_key: str | None = Field(default=None, description="Unset: generated into DATA_DIR on first start.")
    owner_email: str = Field(default="owner@framecast.local", description="The first user, created on first start.")
    host: str = Field(default="127.0.0.1", description="Interface `serve` listens on.")
    port: int = Field(default=8000, description="Port `serve` listens on.")
    instance_id: str = Field(
        default_factory=lambda: secrets.token_hex(4), description="Names this process in live state; random."
    )

    prepare_timeout_seconds: float = Field(default=600, description="PREPARING longer than this expires.")
    max_duration_seconds: float = Field(default=4 * 3600, description="Recording time (pauses excluded) limit.")
    reconnect_grace_seconds: float = Field(default=120, description="A capturing client gone longer is stopped.")
    upload_timeout_seconds: float = Field(default=24 * 3600, description="UPLOADING longer than this fails.")
    ws_ticket_ttl_seconds: float = Field(default=300, description="Lifetime of the ticket in ws_url.")
    media_url_ttl_seconds: float = Field(default=3600, gt=0, description="Least lifetime of a signed media URL.")
    session_ttl_seconds: float = Field(default=30 * 24 * 3600, gt=0, description="A browser stays signed in this long.")
    max_upload_bytes: int = Field(default=10 * 1024**3, description="Largest upload accepted (413 beyond).")
    upload_expiry_seconds: float = Field(default=24 * 3600, description="Idle unfinished uploads are removed after.")
    sweep_interval_seconds: float = Field(default=1.0, description="How often deadlines are enforced.")
    ws_ping_interval_seconds: float = Field(default=20.0, description="WebSocket keep-alive ping interval.")

    serve_workers: bool = Field(default=True, description="Run the job worker inside `serve` (embedded default).")
    worker_concurrency: int = Field(default=2, ge=1, description="Jobs one worker process runs at a time.")
    job_lease_seconds: float = Field(
        default=60.0, gt=0, description="A job whose worker is silent this long is retried."
    )
    ffmpeg_binary: str | None = Field(default=None, description="Unset: ffmpeg on PATH, else the one from PyPI.")
    media_threads: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, description="Threads per ffmpeg run.")
    x264_preset: str = Field(default="veryfast", description="x264 speed/size trade-off for the ladder.")

    @property
    def blob_root(self) -> Path:
        """Where blobs live; only file:// storage exists so far, and anything else is refused, not ignored."""
        if self.storage_url is None:
            return self.data_dir / "blobs"
        parsed = urlparse(self.storage_url)
        if parsed.scheme != "file" or not parsed.path:
            raise ValueError(f"FRAMECAST_STORAGE_URL {self.storage_url!r} is not supported: use file:///absolute/path")
        return Path(parsed.path)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "framecast.db"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path}"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def limits(self) -> Limits:
        return Limits(
            prepare_timeout=timedelta(seconds=self.prepare_timeout_seconds),
            max_duration=timedelta(seconds=self.max_duration_seconds),
            reconnect_grace=timedelta(seconds=self.reconnect_grace_seconds),
            upload_timeout=timedelta(seconds=self.upload_timeout_seconds),
        )

    def resolved_secret_key(self) -> str:
        """The configured key, else the one kept in DATA_DIR, created (readable by the owner only) on first use."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key)
        return key
