"""Storage settings: s3:// URLs, media delivery, and the bucket rules built from them (no S3 needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from framecast.adapters.blobs.s3_rules import Lifecycle, lifecycle_rules, media_cors_rule, merged, normalized
from framecast.settings import S3Location, Settings, parse_s3_url


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("s3://media", S3Location("media", "")),
        ("s3://media/", S3Location("media", "")),
        ("s3://media/framecast", S3Location("media", "framecast/")),
        ("s3://media/team/framecast/", S3Location("media", "team/framecast/")),
        ("s3://media//a///b", S3Location("media", "a/b/")),
    ],
)
def test_s3_urls_name_a_bucket_and_a_prefix(url: str, location: S3Location) -> None:
    assert parse_s3_url(url) == location


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("s3://", "name a bucket"),
        ("s3:///prefix", "name a bucket"),
        ("s3://key:secret@media/x", "credentials"),
        ("s3://media:9000/x", "endpoint"),
        ("s3://media/x?region=eu", "endpoint"),
        ("s3://media/a/../b", "segments"),
    ],
)
def test_unusable_s3_urls_say_why(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_s3_url(url)


def test_files_stream_and_s3_redirects_unless_told_otherwise(tmp_path: Path) -> None:
    files = Settings(data_dir=tmp_path)
    assert (files.s3_location, files.resolved_media_delivery) == (None, "stream")
    s3 = Settings(data_dir=tmp_path, storage_url="s3://media/fc")
    assert (s3.s3_location, s3.resolved_media_delivery) == (S3Location("media", "fc/"), "redirect")
    streaming = Settings(data_dir=tmp_path, storage_url="s3://m", media_delivery="stream")
    assert streaming.resolved_media_delivery == "stream"


def test_redirects_need_s3(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs S3 storage"):
        _ = Settings(data_dir=tmp_path, media_delivery="redirect").resolved_media_delivery


@pytest.mark.parametrize("url", ["gs://bucket/x", "file://", "http://example.com/"])
def test_other_storage_urls_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match="not supported"):
        _ = Settings(data_dir=tmp_path, storage_url=url).blob_root


def lifecycle(infrequent: int | None, archive: int | None) -> Lifecycle:
    return Lifecycle(
        infrequent_after_days=infrequent,
        infrequent_class="STANDARD_IA",
        archive_after_days=archive,
        archive_class="GLACIER_IR",
        abandoned_after_days=3,
    )


def test_lifecycle_rules_move_recordings_and_abort_abandoned_uploads() -> None:
    rules = {rule["ID"]: rule for rule in lifecycle_rules("fc/", lifecycle(30, 365))}
    assert rules["framecast-recordings"]["Filter"] == {"Prefix": "fc/recordings/"}
    assert rules["framecast-recordings"]["Transitions"] == [
        {"Days": 30, "StorageClass": "STANDARD_IA"},
        {"Days": 365, "StorageClass": "GLACIER_IR"},
    ]
    assert rules["framecast-abandoned-uploads"]["Filter"] == {"Prefix": "fc/uploads/"}
    assert rules["framecast-abandoned-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 3}


def test_archiving_before_infrequent_access_is_refused() -> None:
    with pytest.raises(ValueError, match="must be more than"):
        lifecycle_rules("", lifecycle(90, 30))


def test_framecast_replaces_its_own_rules_and_keeps_the_others() -> None:
    own = {"ID": "keep-me", "Status": "Enabled"}
    old = {"ID": "framecast-recordings", "Status": "Enabled", "Transitions": []}
    new = lifecycle_rules("", lifecycle(30, None))
    assert normalized(merged([own, old], new)) == normalized([own, *new])


def test_the_cors_rule_allows_the_public_origin_only() -> None:
    assert media_cors_rule("https://video.example.com/base/")["AllowedOrigins"] == ["https://video.example.com"]
