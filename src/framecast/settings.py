"""All configuration, read once at start-up from FRAMECAST_* environment variables (CLI flags override)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

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
    event_bus_url: str = Field(default="memory://")
    public_url: str | None = Field(default=None, description="Base URL used in links; unset: http://HOST:PORT.")
    secret_key: str | None = Field(default=None, description="Unset: generated into DATA_DIR on first start.")
    owner_email: str = Field(default="owner@framecast.local", description="The first user, created on first start.")
    host: str = "127.0.0.1"
    port: int = 8000
    instance_id: str = Field(default_factory=lambda: secrets.token_hex(4))

    prepare_timeout_seconds: float = 600
    max_duration_seconds: float = 4 * 3600
    reconnect_grace_seconds: float = 120
    upload_timeout_seconds: float = 24 * 3600
    ws_ticket_ttl_seconds: float = 300
    max_upload_bytes: int = 10 * 1024**3
    upload_expiry_seconds: float = 24 * 3600
    sweep_interval_seconds: float = 1.0
    ws_ping_interval_seconds: float = 20.0

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
