"""The job aggregate: leases, retries with capped exponential backoff, dead jobs and cancellation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from framecast.domain.errors import InvalidTransition
from framecast.domain.jobs import Job, JobStatus, backoff_delay

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def claimed(*, max_attempts: int = 5, worker: str = "w1") -> Job:
    job = Job.create(kind="probe", at=T0, recording_id="r1", max_attempts=max_attempts)
    job.claim(worker=worker, at=T0, lease=LEASE)
    return job


def test_a_new_job_is_queued_and_due_now() -> None:
    job = Job.create(kind="probe", at=T0, payload={"key": "raw/r1"})
    assert job.status is JobStatus.QUEUED
    assert job.is_claimable(T0)
    assert job.attempts == 0


def test_a_job_scheduled_for_later_cannot_be_claimed_before_then() -> None:
    job = Job.create(kind="probe", at=T0, run_after=T0 + timedelta(minutes=1))
    with pytest.raises(InvalidTransition):
        job.claim(worker="w1", at=T0, lease=LEASE)
    job.claim(worker="w1", at=T0 + timedelta(minutes=1), lease=LEASE)
    assert job.status is JobStatus.RUNNING


def test_claiming_starts_an_attempt_under_a_lease() -> None:
    job = claimed()
    assert (job.status, job.attempts, job.lease_owner) == (JobStatus.RUNNING, 1, "w1")
    assert job.lease_expires_at == T0 + LEASE


def test_a_running_job_cannot_be_claimed_while_its_lease_holds() -> None:
    job = claimed()
    with pytest.raises(InvalidTransition, match="cannot claim a job"):
        job.claim(worker="w2", at=T0 + LEASE, lease=LEASE)


def test_an_expired_lease_lets_another_worker_take_the_job() -> None:
    job = claimed()
    later = T0 + LEASE + timedelta(seconds=1)
    job.claim(worker="w2", at=later, lease=LEASE)
    assert (job.lease_owner, job.attempts, job.lease_expires_at) == ("w2", 2, later + LEASE)
    with pytest.raises(InvalidTransition):
        job.heartbeat(worker="w1", at=later, lease=LEASE)


def test_heartbeat_renews_the_lease_and_records_progress() -> None:
    job = claimed()
    job.heartbeat(worker="w1", at=T0 + timedelta(seconds=10), lease=LEASE, progress=42.5, stage="remux")
    assert job.lease_expires_at == T0 + timedelta(seconds=40)
    assert (job.progress, job.stage) == (42.5, "remux")
    job.heartbeat(worker="w1", at=T0 + timedelta(seconds=20), lease=LEASE, progress=250)
    assert (job.progress, job.stage) == (100.0, "remux")


def test_heartbeat_is_refused_once_the_job_is_cancelled() -> None:
    job = claimed()
    job.cancel(at=T0)
    with pytest.raises(InvalidTransition):
        job.heartbeat(worker="w1", at=T0, lease=LEASE)


def test_success_ends_the_job_and_keeps_who_ran_it() -> None:
    job = claimed()
    job.succeed(at=T0 + timedelta(seconds=5), worker="w1")
    assert (job.status, job.progress, job.lease_owner) == (JobStatus.SUCCEEDED, 100.0, "w1")
    assert job.finished_at == T0 + timedelta(seconds=5)
    assert job.lease_expires_at is None


def test_a_worker_that_lost_its_lease_cannot_record_a_result() -> None:
    job = claimed()
    job.claim(worker="w2", at=T0 + LEASE * 2, lease=LEASE)
    with pytest.raises(InvalidTransition):
        job.succeed(at=T0 + LEASE * 2, worker="w1")
    with pytest.raises(InvalidTransition):
        job.fail(at=T0 + LEASE * 2, worker="w1", error="boom", transient=True)


def test_a_queued_job_cannot_succeed() -> None:
    job = Job.create(kind="probe", at=T0)
    with pytest.raises(InvalidTransition):
        job.succeed(at=T0)


def test_a_transient_failure_requeues_with_backoff() -> None:
    job = claimed()
    job.fail(at=T0, error="ConnectionError: s3 down", transient=True)
    assert (job.status, job.last_error, job.lease_owner) == (JobStatus.QUEUED, "ConnectionError: s3 down", None)
    assert job.run_after == T0 + timedelta(seconds=2)
    assert not job.is_claimable(T0 + timedelta(seconds=1))
    job.claim(worker="w1", at=T0 + timedelta(seconds=2), lease=LEASE)
    job.fail(at=T0 + timedelta(seconds=2), error="again", transient=True)
    assert job.run_after == T0 + timedelta(seconds=2 + 4)


def test_jitter_stretches_the_delay() -> None:
    job = claimed()
    job.fail(at=T0, error="boom", transient=True, jitter=0.5)
    assert job.run_after == T0 + timedelta(seconds=3)


def test_backoff_doubles_from_two_seconds_up_to_five_minutes() -> None:
    assert [backoff_delay(n).total_seconds() for n in range(1, 11)] == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff_delay(10_000) == timedelta(minutes=5)


def test_a_permanent_failure_is_dead_at_once_and_keeps_the_error() -> None:
    job = claimed()
    job.fail(at=T0, error="PermanentJobError: not a video", transient=False)
    assert (job.status, job.last_error, job.finished_at) == (JobStatus.DEAD, "PermanentJobError: not a video", T0)
    assert not job.is_claimable(T0 + timedelta(days=1))


def test_the_last_attempt_failing_makes_the_job_dead() -> None:
    job = claimed(max_attempts=2)
    job.fail(at=T0, error="one", transient=True)
    job.claim(worker="w1", at=job.run_after, lease=LEASE)
    job.fail(at=job.run_after, error="two", transient=True)
    assert (job.status, job.attempts, job.last_error) == (JobStatus.DEAD, 2, "two")


def test_a_job_whose_workers_keep_dying_is_exhausted() -> None:
    job = claimed(max_attempts=1)
    assert not job.exhausted
    job.claim(worker="w2", at=T0 + LEASE * 2, lease=LEASE)
    assert job.exhausted


@pytest.mark.parametrize("finish", ["succeed", "dead", "cancel"])
def test_a_finished_job_cannot_be_cancelled(finish: str) -> None:
    job = claimed()
    if finish == "succeed":
        job.succeed(at=T0)
    elif finish == "dead":
        job.fail(at=T0, error="x", transient=False)
    else:
        job.cancel(at=T0)
    with pytest.raises(InvalidTransition):
        job.cancel(at=T0)


def test_a_queued_job_can_be_cancelled() -> None:
    job = Job.create(kind="probe", at=T0)
    job.cancel(at=T0)
    assert job.status is JobStatus.CANCELLED
    assert not job.is_claimable(T0)
