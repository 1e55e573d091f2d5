"""The bucket rules framecast manages on S3 (applied at start-up by bootstrap; docs/storage.md):

- lifecycle: stored recordings move to cheaper storage classes after some days, and multipart uploads left behind
  by a crash are aborted (PutBucketLifecycleConfiguration);
- CORS: browsers may follow media redirects to the bucket (PutBucketCors).

Rules are merged by ID: framecast writes only rules whose ID starts with `framecast-`, keeps every other rule of the
bucket, and writes nothing when the bucket already has what it wants.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from framecast.adapters.blobs.s3_client import UPLOADS, S3Bucket, error_code

log = logging.getLogger(__name__)

MANAGED = "framecast-"
RECORDINGS = "recordings/"  # every blob key of a recording starts with it (raw uploads, media, work files)
DAY_SECONDS = 86400

Rule = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Days after which stored recordings change storage class (None: never), and after which an unfinished
    multipart upload is surely abandoned."""

    infrequent_after_days: int | None
    infrequent_class: str
    archive_after_days: int | None
    archive_class: str
    abandoned_after_days: int

    @property
    def transitions(self) -> bool:
        return self.infrequent_after_days is not None or self.archive_after_days is not None


def abandoned_after_days(*, upload_timeout_seconds: float, upload_expiry_seconds: float) -> int:
    """Days after which no upload can still be in progress: a recording waits for its upload at most the upload
    timeout, and an idle upload is removed by framecast after the expiry (this rule catches what a crash left)."""
    return math.ceil((upload_timeout_seconds + upload_expiry_seconds) / DAY_SECONDS) + 1


def lifecycle_rules(prefix: str, lifecycle: Lifecycle) -> list[Rule]:
    """The lifecycle rules framecast wants under `prefix`; raises ValueError for transitions out of order."""
    infrequent, archive = lifecycle.infrequent_after_days, lifecycle.archive_after_days
    if infrequent is not None and archive is not None and archive <= infrequent:
        raise ValueError(
            f"FRAMECAST_S3_ARCHIVE_AFTER_DAYS ({archive}) must be more than FRAMECAST_S3_INFREQUENT_AFTER_DAYS "
            f"({infrequent}): objects move to the archive after they moved to infrequent access"
        )
    transitions = [
        {"Days": days, "StorageClass": storage_class}
        for days, storage_class in (
            (infrequent, lifecycle.infrequent_class),
            (archive, lifecycle.archive_class),
        )
        if days is not None
    ]
    rules: list[Rule] = [
        {
            "ID": f"{MANAGED}abandoned-uploads",
            "Status": "Enabled",
            "Filter": {"Prefix": prefix + UPLOADS},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": lifecycle.abandoned_after_days},
        }
    ]
    if transitions:
        rules.append(
            {
                "ID": f"{MANAGED}recordings",
                "Status": "Enabled",
                "Filter": {"Prefix": prefix + RECORDINGS},
                "Transitions": transitions,
            }
        )
    return rules


def media_cors_rule(public_url: str) -> Rule:
    """Let pages served from `public_url` read media by Range GETs from the bucket, after a redirect."""
    parts = urlsplit(public_url)
    return {
        "ID": f"{MANAGED}media",
        "AllowedOrigins": [f"{parts.scheme}://{parts.netloc}"],
        "AllowedMethods": ["GET", "HEAD"],
        "AllowedHeaders": ["Range", "If-Range", "If-None-Match"],
        "ExposeHeaders": ["Accept-Ranges", "Content-Length", "Content-Range", "Content-Type", "ETag"],
        "MaxAgeSeconds": 3600,
    }


def merged(existing: Sequence[Rule], managed: Sequence[Rule]) -> list[Rule]:
    """The bucket's own rules, then framecast's (replacing the ones it wrote before)."""
    return [rule for rule in existing if not str(rule.get("ID", "")).startswith(MANAGED)] + list(managed)


async def apply_lifecycle(bucket: S3Bucket, rules: Sequence[Rule]) -> bool:
    """Merge `rules` into the bucket's lifecycle configuration; True when it had to be written."""
    try:
        response = await bucket.client.get_bucket_lifecycle_configuration(Bucket=bucket.name)
        existing: list[Rule] = list(response.get("Rules", []))
    except ClientError as exc:
        if error_code(exc) != "NoSuchLifecycleConfiguration":
            raise
        existing = []
    wanted = merged(existing, rules)
    if _managed(existing) == _managed(wanted):
        return False
    await bucket.client.put_bucket_lifecycle_configuration(Bucket=bucket.name, LifecycleConfiguration={"Rules": wanted})
    return True


async def apply_cors(bucket: S3Bucket, rules: Sequence[Rule]) -> bool:
    """Merge `rules` into the bucket's CORS configuration; True when it had to be written."""
    try:
        existing: list[Rule] = list((await bucket.client.get_bucket_cors(Bucket=bucket.name)).get("CORSRules", []))
    except ClientError as exc:
        if error_code(exc) != "NoSuchCORSConfiguration":
            raise
        existing = []
    wanted = merged(existing, rules)
    if _managed(existing) == _managed(wanted):
        return False
    await bucket.client.put_bucket_cors(Bucket=bucket.name, CORSConfiguration={"CORSRules": wanted})
    return True


def normalized(rules: Sequence[Rule]) -> list[Rule]:
    """`rules` in a canonical order -- by ID, transitions by day, lists of names sorted -- since services answer
    with the lists they were given in orders of their own."""
    ordered = []
    for rule in sorted(rules, key=lambda r: str(r.get("ID", ""))):
        canonical = dict(rule)
        for name, value in rule.items():
            if name == "Transitions":
                canonical[name] = sorted(value, key=lambda t: int(t.get("Days", 0)))
            elif isinstance(value, list) and all(isinstance(item, str) for item in value):
                canonical[name] = sorted(value)
        ordered.append(canonical)
    return ordered


def _managed(rules: Sequence[Rule]) -> list[Rule]:
    return normalized([rule for rule in rules if str(rule.get("ID", "")).startswith(MANAGED)])


async def configure_bucket(bucket: S3Bucket, *, lifecycle: Lifecycle | None, media_origin_url: str | None) -> None:
    """Apply the lifecycle rules (when transitions are configured; a refusal is an error, since they were asked
    for) and the CORS rule for redirected media (when `media_origin_url` is given; a refusal is logged with what to
    set by hand, since media still works for players that do not need CORS)."""
    rules = lifecycle_rules(bucket.prefix, lifecycle) if lifecycle is not None and lifecycle.transitions else None
    if rules is not None and await apply_lifecycle(bucket, rules):
        log.info("wrote framecast's lifecycle rules to bucket %s", bucket.name)
    if media_origin_url is None:
        return
    rule = media_cors_rule(media_origin_url)
    try:
        if await apply_cors(bucket, [rule]):
            log.info("wrote framecast's CORS rule to bucket %s", bucket.name)
    except ClientError as exc:
        log.warning(
            "could not set the CORS rule of bucket %s (%s): browsers playing media by redirect need it; add %s to the "
            "bucket's CORS configuration, or set FRAMECAST_MEDIA_DELIVERY=stream",
            bucket.name,
            error_code(exc),
            rule,
        )
