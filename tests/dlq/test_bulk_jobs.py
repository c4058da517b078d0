"""Bulk replay or discard of everything matching a filter: a background job with progress, safe
to run twice (no letter replayed twice, resolved ones skipped), cancellable, audited."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dlq.jobs import STALE_AFTER, bulk_job_cancel, bulk_job_run, bulk_job_start
from dlq.models import BulkJob, DeadLetter
from dlq.services import DeadLetterError, dead_letter_discard
from dlq.tasks import bulk_job_task
from hub.models import AuditEntry, Delivery, DeliveryStatus
from hub.services.flows import flow_pause
from tests.dlq.letter_helpers import api_as, letters_without_email

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def letters(flow):
    return letters_without_email(flow, range(1, 8))


def start(actor, action="replay", reason="", **filters) -> BulkJob:
    return bulk_job_start(action=action, filters=filters, description="test", reason=reason, actor=actor)


def replays() -> int:
    return AuditEntry.objects.filter(verb="replay").count()


def test_it_replays_everything_matching_in_batches_with_progress(letters, personas, queued):
    job = start(personas["ops"], error_class="contract_violation")
    assert (job.state, job.total, job.processed) == ("queued", 7, 0)
    assert queued == [("dlq.tasks.bulk_job_task", (job.pk,))]
    assert AuditEntry.objects.get(verb="bulk_replay").diff == {
        "filters": {"error_class": "contract_violation"}, "total": 7, "reason": "",
    }  # fmt: skip
    assert bulk_job_task(job.pk) == f"job {job.pk}: finished, 7 of 7 letters"
    job.refresh_from_db()
    assert (job.state, job.done, job.skipped, job.failed, job.percent) == ("done", 7, 0, 0, 100)
    assert DeadLetter.objects.unresolved().count() == 0
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PENDING}
    assert replays() == 7


def test_it_saves_progress_after_each_batch_and_a_rerun_replays_nothing_twice(letters, personas, queued):
    job = start(personas["ops"])
    bulk_job_run(job_id=job.pk, batch=3)
    job.refresh_from_db()
    assert job.done == 7 and job.last_id == letters[-1].pk
    assert bulk_job_run(job_id=job.pk).state == "done"  # a second delivery of the task: no effect
    BulkJob.objects.filter(pk=job.pk).update(state="queued")  # even one that looks new again
    bulk_job_run(job_id=job.pk)
    assert replays() == 7


def test_it_skips_letters_resolved_meanwhile_and_leaves_newer_ones_alone(flow, letters, personas, queued):
    job = start(personas["ops"])
    dead_letter_discard(letter=letters[0], actor=personas["admin"], reason="test data")
    newer = letters_without_email(flow, [99])[0]  # arrived after the job was started
    job = bulk_job_run(job_id=job.pk)
    assert (job.done, job.skipped, job.total) == (6, 1, 7)
    newer.refresh_from_db()
    assert newer.resolved_at is None


def test_two_jobs_over_the_same_letters_replay_each_letter_once(letters, personas, queued):
    first, second = start(personas["ops"]), start(personas["admin"])
    bulk_job_run(job_id=first.pk)
    second = bulk_job_run(job_id=second.pk)
    assert (second.done, second.skipped) == (0, 7)
    assert replays() == 7


def test_it_counts_replays_into_a_paused_flow_as_held(flow, letters, personas, queued):
    flow_pause(flow=flow, actor=personas["ops"])
    job = bulk_job_run(job_id=start(personas["ops"]).pk)
    assert (job.done, job.held) == (0, 7) and job.percent == 100


def test_it_discards_with_the_reason_on_each_letter(letters, personas, queued):
    with pytest.raises(DeadLetterError, match="say why"):
        start(personas["ops"], action="discard", reason="  ")
    job = bulk_job_run(
        job_id=start(personas["ops"], action="discard", reason="old test data", record="emp_3").pk
    )
    assert (job.total, job.done) == (1, 1)
    letter = DeadLetter.objects.get(record_key="emp_3")
    assert (letter.resolution, letter.resolution_note) == ("discarded", "old test data")
    assert DeadLetter.objects.unresolved().count() == 6


def test_it_refuses_a_job_over_nothing(letters, personas, queued):
    with pytest.raises(DeadLetterError, match="no open dead letters match"):
        start(personas["ops"], error_class="timeout")
    assert not BulkJob.objects.exists() and queued == []


def test_it_cancels_a_queued_job_at_once_and_a_running_one_between_batches(letters, personas, queued):
    job = bulk_job_cancel(job=start(personas["ops"]), actor=personas["ops"])
    assert job.state == "cancelled" and job.finished_at is not None
    assert bulk_job_run(job_id=job.pk).state == "cancelled" and replays() == 0
    with pytest.raises(DeadLetterError, match="already cancelled"):
        bulk_job_cancel(job=job, actor=personas["ops"])

    running = start(personas["ops"])
    BulkJob.objects.filter(pk=running.pk).update(state="running", heartbeat_at=timezone.now())
    bulk_job_cancel(job=running, actor=personas["ops"])
    BulkJob.objects.filter(pk=running.pk).update(state="queued")  # let this process run it
    running = bulk_job_run(job_id=running.pk)
    assert running.state == "cancelled" and running.done == 0
    assert AuditEntry.objects.filter(verb="bulk_cancel").count() == 2


def test_a_rerun_takes_over_a_job_whose_worker_died(letters, personas, queued):
    job = start(personas["ops"])
    BulkJob.objects.filter(pk=job.pk).update(state="running", heartbeat_at=timezone.now())
    assert bulk_job_run(job_id=job.pk).done == 0  # its worker is alive: left alone
    BulkJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - STALE_AFTER - timedelta(seconds=1))
    assert bulk_job_run(job_id=job.pk).done == 7


def test_it_starts_follows_and_cancels_jobs_through_the_api(letters, personas, queued):
    ops = api_as(personas["ops"])
    bad = ops.post("/api/v1/dead-letters/jobs/?since=yesterday", {"action": "replay"}, format="json")
    assert bad.status_code == 400 and "since" in bad.json()["fields"]
    no_reason = ops.post("/api/v1/dead-letters/jobs/", {"action": "discard"}, format="json")
    assert no_reason.status_code == 400 and "say why" in no_reason.json()["error"]
    started = ops.post("/api/v1/dead-letters/jobs/?record=emp_2", {"action": "replay"}, format="json")
    assert started.status_code == 202 and started.json()["total"] == 1
    pk = started.json()["id"]
    auditor = api_as(personas["auditor"])
    assert auditor.get(f"/api/v1/dead-letters/jobs/{pk}/").json()["state"] == "queued"
    assert auditor.post(f"/api/v1/dead-letters/jobs/{pk}/cancel/").status_code == 403
    assert ops.post(f"/api/v1/dead-letters/jobs/{pk}/cancel/").json()["state"] == "cancelled"
    assert ops.post(f"/api/v1/dead-letters/jobs/{pk}/cancel/").status_code == 409


def test_the_api_lists_letters_with_the_inbox_filters(letters, personas):
    ops = api_as(personas["ops"])
    found = ops.get("/api/v1/dead-letters/", {"record": "emp_4", "error_class": "contract_violation"}).json()
    assert [row["record_key"] for row in found["results"]] == ["emp_4"]
    assert ops.get("/api/v1/dead-letters/", {"text": "is required", "open": "1"}).json()["count"] == 7
    assert ops.get("/api/v1/dead-letters/", {"error_class": "nonsense"}).status_code == 400


def test_a_run_out_of_time_hands_the_rest_to_a_fresh_task(letters, personas, queued):
    job = start(personas["ops"])
    first = bulk_job_run(job_id=job.pk, batch=3, seconds=0)  # one batch, then out of time
    assert (first.state, first.done) == ("queued", 3)
    assert queued == [("dlq.tasks.bulk_job_task", (job.pk,))] * 2  # the start, then the hand-on
    last = bulk_job_run(job_id=job.pk, batch=3)
    assert (last.state, last.done, last.skipped) == ("done", 7, 0) and replays() == 7
    assert last.started_at == BulkJob.objects.get(pk=job.pk).started_at == first.started_at is not None
