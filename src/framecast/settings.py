"""All configuration, read once at start-up from FRAMECAST_* environment variables (CLI flags override)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from framecast.domain.recordings import Limits

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where S3 storage keeps its objects: a bucket and a key prefix ("" or ending with "/")."""

    bucket: str
    prefix: str


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRAMECAST_", extra="ignore")

    data_dir: Path = Field(default=Path("./framecast-data"), description="Home of the embedded default.")
    database_url: str | None = Field(default=None, description="Unset: SQLite in DATA_DIR.")
    redis_url: str | None = Field(default=None, description="Unset: in-memory live state (one instance).")
    redis_prefix: str = Field(default="framecast:", description="Prefix of every Redis key and channel.")
    storage_url: str | None = Field(default=None, description="Unset: files under DATA_DIR/blobs.")
    event_bus_url: str = Field(
        default="memory://", description="memory:// (in-process delivery) or kafka://host:port[,host:port]."
    )
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
    event_retention_days: float = Field(
        default=7.0,
        gt=0,
        description="Dispatched events, and the consumers' records of them, are deleted this long after dispatch. "
        "Keep it at least as long as the Kafka topic's retention: a consumer rewound further would handle again.",
    )
    ws_ping_interval_seconds: float = Field(default=20.0, description="WebSocket keep-alive ping interval.")

    serve_workers: bool = Field(default=True, description="Run the job worker inside `serve` (embedded default).")
    worker_concurrency: int = Field(default=2, ge=1, description="Jobs one worker process runs at a time.")
    job_lease_seconds: float = Field(
        default=60.0, gt=0, description="A job whose worker is silent this long is retried."
    )
    ffmpeg_binary: str | None = Field(default=None, description="Unset: ffmpeg on PATH, else the one from PyPI.")
    media_threads: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, description="Threads per ffmpeg run.")
    x264_preset: str = Field(default="veryfast", description="x264 speed/size trade-off for the ladder.")

    # -- S3 storage: FRAMECAST_STORAGE_URL=s3://bucket/prefix (docs/storage.md) ------------------------------------
    s3_endpoint_url: str | None = Field(
        default=None, description="An S3-compatible service (Ceph, MinIO...); unset: AWS."
    )
    s3_public_endpoint_url: str | None = Field(
        default=None, description="The endpoint viewers reach, for presigned URLs; unset: S3_ENDPOINT_URL."
    )
    s3_region: str | None = Field(
        default=None, description="Region requests are signed for; unset: AWS_REGION, else us-east-1."
    )
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto", description="Bucket in the URL path or in the host name."
    )
    s3_access_key_id: str | None = Field(default=None, description="Unset: the standard AWS credential chain.")
    s3_secret_access_key: SecretStr | None = Field(default=None, description="Goes with S3_ACCESS_KEY_ID.")
    s3_part_size_bytes: int = Field(
        default=8 * MIB, ge=5 * MIB, le=5 * 1024 * MIB, description="Multipart part size of uploads and big files."
    )
    media_delivery: Literal["redirect", "stream"] | None = Field(
        default=None,
        description="redirect: 302 to a presigned S3 URL; stream: framecast sends the bytes; unset: "
        "redirect on S3, stream on files.",
    )
    s3_infrequent_after_days: int | None = Field(
        default=None, ge=1, description="Move stored recordings to S3_INFREQUENT_STORAGE_CLASS after; unset: never."
    )
    s3_infrequent_storage_class: str = Field(default="STANDARD_IA", description="The infrequent-access class.")
    s3_archive_after_days: int | None = Field(
        default=None, ge=1, description="Move stored recordings to S3_ARCHIVE_STORAGE_CLASS after; unset: never."
    )
    s3_archive_storage_class: str = Field(
        default="GLACIER_IR", description="The archive class; it must serve reads at once (not GLACIER)."
    )

    # -- Kafka event bus: FRAMECAST_EVENT_BUS_URL=kafka://host:port[,host:port] (docs/events.md) ---------------------
    kafka_topic: str = Field(default="framecast.events", description="The topic every event goes to.")
    kafka_partitions: int = Field(
        default=12, ge=1, description="Partitions of the topic when framecast creates it (when missing)."
    )
    kafka_replication_factor: int = Field(
        default=1, ge=1, description="Replicas of the topic when framecast creates it; 3 on a real cluster."
    )
    kafka_client_id: str = Field(default="framecast", description="Names framecast's connections in broker logs.")
    kafka_session_timeout_seconds: float = Field(
        default=10.0, ge=1, description="A consumer silent this long leaves its group; its partitions move on."
    )

    @property
    def kafka_servers(self) -> list[str] | None:
        """The bootstrap servers of a kafka:// EVENT_BUS_URL; None for memory://; any other URL raises ValueError."""
        if self.event_bus_url == "memory://":
            return None
        return parse_kafka_url(self.event_bus_url)

    @property
    def blob_root(self) -> Path:
        """Where blobs live with file storage (STORAGE_URL unset or file://); any other URL is refused, not ignored."""
        if self.storage_url is None:
            return self.data_dir / "blobs"
        parsed = urlparse(self.storage_url)
        if parsed.scheme != "file" or not parsed.path:
            raise ValueError(
                f"FRAMECAST_STORAGE_URL {self.storage_url!r} is not supported: use file:///absolute/path or "
                "s3://bucket/prefix"
            )
        return Path(parsed.path)

    @property
    def s3_location(self) -> S3Location | None:
        """The bucket and prefix of s3:// storage; None for files. A malformed s3:// URL raises ValueError."""
        if self.storage_url is None or not self.storage_url.startswith("s3://"):
            return None
        return parse_s3_url(self.storage_url)

    @property
    def resolved_media_delivery(self) -> Literal["redirect", "stream"]:
        """How media leaves: redirects need presigned URLs, which only S3 storage gives."""
        on_s3 = self.s3_location is not None
        if self.media_delivery == "redirect" and not on_s3:
            raise ValueError("FRAMECAST_MEDIA_DELIVERY=redirect needs S3 storage (FRAMECAST_STORAGE_URL=s3://...)")
        return self.media_delivery or ("redirect" if on_s3 else "stream")

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


def parse_s3_url(url: str) -> S3Location:
    """`s3://bucket` or `s3://bucket/some/prefix` as a location; anything else raises ValueError saying why."""
    parsed = urlparse(url)
    problem = None
    if parsed.scheme != "s3" or not parsed.hostname:
        problem = "name a bucket: s3://bucket or s3://bucket/prefix"
    elif parsed.username or parsed.password:
        problem = "credentials do not belong in the URL: set FRAMECAST_S3_ACCESS_KEY_ID and ..._SECRET_ACCESS_KEY"
    elif parsed.query or parsed.fragment or parsed.params or parsed.port:
        problem = "it takes no port, query or fragment: the endpoint goes in FRAMECAST_S3_ENDPOINT_URL"
    segments = [segment for segment in parsed.path.split("/") if segment]
    if problem is None and any(segment in (".", "..") for segment in segments):
        problem = "the prefix may not contain . or .. segments"
    if problem is not None:
        raise ValueError(f"FRAMECAST_STORAGE_URL {url!r} is not a usable S3 location: {problem}")
    return S3Location(bucket=parsed.netloc, prefix="".join(f"{segment}/" for segment in segments))


def parse_kafka_url(url: str) -> list[str]:
    """`kafka://host[:port][,host[:port]...]` as bootstrap servers (port 9092 by default); raises ValueError."""
    scheme, _, rest = url.partition("://")
    servers = [s.strip() for s in rest.rstrip("/").split(",") if s.strip()] if scheme == "kafka" else []
    if not servers or any("/" in server or "@" in server for server in servers):
        raise ValueError(
            f"FRAMECAST_EVENT_BUS_URL {url!r} is not supported: use memory:// or kafka://host:port[,host:port]"
        )
    return [server if server.rpartition(":")[2].isdigit() else f"{server}:9092" for server in servers]
