"""Bulk jobs: replay or discard every open letter matching the inbox's filters, in the background.

A job fixes its letters when it starts (those matching, up to the newest id then), works them in
batches of ids in ascending order and saves its progress after each batch. Each letter goes
through the same service as a click on its page, which locks it and refuses one already
resolved: a job run twice, two jobs over the same letters or a job racing an operator never
replay a letter twice. A cancel is seen between batches.
"""

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Max, Model, Value
from django.db.models.functions import Coalesce
from django.utils.dateparse import parse_datetime

from dlq.models import BulkJob, DeadLetter, DeadLetterQuerySet
from dlq.services import AlreadyResolved, DeadLetterError, dead_letter_discard, dead_letter_replay
from hub.models import FlowState
from hub.pipeline import clock
from hub.services.audit import audit_record

log = logging.getLogger("dlq.jobs")
BATCH = 100
# One task works a job this long, then hands the rest to a fresh task: well inside the task
# queue's timeout, however many letters the job has.
RUN_SECONDS = 120.0
# A running job whose worker has said nothing for this long died: a rerun of its task takes over.
STALE_AFTER = timedelta(minutes=2)


def filters_to_json(filters: dict[str, Any]) -> dict[str, Any]:
    """The inbox's cleaned filters as JSON: rows by id, times in ISO 8601, empty ones left out."""
    stored: dict[str, Any] = {}
    for name, value in filters.items():
        if isinstance(value, Model):
            value = value.pk
        elif isinstance(value, datetime):
            value = value.isoformat()
        if value not in (None, "", False):
            stored[name] = value
    return stored


def letters_of(job: BulkJob) -> DeadLetterQuerySet:
    """The open letters the job works: those matching its filters, no newer than when it started."""
    filters = dict(job.filters)
    for name in ("since", "until"):
        if filters.get(name):
            filters[name] = parse_datetime(filters[name])
    return DeadLetter.objects.unresolved().matching(**filters).filter(pk__lte=job.upto_id)


def bulk_job_start(
    *, action: str, filters: dict[str, Any], description: str, actor, reason: str = ""
) -> BulkJob:
    """Count the letters matching `filters` and queue a job for them."""
    if action not in BulkJob.Action.values:
        raise DeadLetterError(f'unknown action "{action}" (use replay or discard)')
    if action == BulkJob.Action.DISCARD and not reason.strip():
        raise DeadLetterError("say why you discard them: the reason is kept in the audit log")
    stored = filters_to_json(filters)
    with transaction.atomic():
        job = BulkJob(
            action=action, filters=stored, description=description[:500], reason=reason, created_by=actor
        )
        matching = DeadLetter.objects.unresolved().matching(**filters)
        job.upto_id = matching.aggregate(newest=Max("pk"))["newest"] or 0
        job.total = matching.filter(pk__lte=job.upto_id).count()
        if not job.total:
            raise DeadLetterError("no open dead letters match these filters")
        job.save()
        audit_record(
            actor=actor,
            verb=f"bulk_{action}",
            target=job,
            label=f"{job.get_action_display().lower()} {job.total} dead letters ({description or 'all'})",
            diff={"filters": stored, "total": job.total, "reason": reason},
        )
        transaction.on_commit(lambda: _enqueue(job))
    return job


def _enqueue(job: BulkJob) -> None:
    from django_q.tasks import async_task

    async_task("dlq.tasks.bulk_job_task", job.pk, task_name=f"dead letters bulk {job.pk}")


def bulk_job_cancel(*, job: BulkJob, actor) -> BulkJob:
    """Stop a job: a queued one at once, a running one after the batch it is on."""
    with transaction.atomic():
        now = clock.now()
        queued = BulkJob.objects.filter(pk=job.pk, state=BulkJob.State.QUEUED)
        if not queued.update(state=BulkJob.State.CANCELLED, cancel_requested=True, finished_at=now):
            running = BulkJob.objects.filter(pk=job.pk, state=BulkJob.State.RUNNING)
            if not running.update(cancel_requested=True):
                job.refresh_from_db()
                raise DeadLetterError(f"the job has already {job.get_state_display().lower()}")
        job.refresh_from_db()
        audit_record(actor=actor, verb="bulk_cancel", target=job, diff={"processed": job.processed})
    return job


def _claim(job_id: int) -> bool:
    """Take the job: a queued one, or a running one whose worker died (no heartbeat for a while)."""
    now = clock.now()
    jobs = BulkJob.objects.filter(pk=job_id)
    started = Coalesce(F("started_at"), Value(now))  # a job handed on keeps its first start
    if jobs.filter(state=BulkJob.State.QUEUED).update(
        state=BulkJob.State.RUNNING, started_at=started, heartbeat_at=now
    ):
        return True
    stale = jobs.filter(state=BulkJob.State.RUNNING, heartbeat_at__lt=now - STALE_AFTER)
    return bool(stale.update(heartbeat_at=now))


def _hand_on(job: BulkJob) -> BulkJob:
    """Out of time: give the job back to the queue with its progress, for a fresh task."""
    with transaction.atomic():
        if BulkJob.objects.filter(pk=job.pk, state=BulkJob.State.RUNNING).update(state=BulkJob.State.QUEUED):
            job.state = BulkJob.State.QUEUED
            transaction.on_commit(lambda: _enqueue(job))
    return job


def _work(job: BulkJob, letter: DeadLetter) -> str:
    """One letter through the operator's own service; says what became of it."""
    actor = job.created_by
    try:
        if job.action == BulkJob.Action.REPLAY:
            dead_letter_replay(letter=letter, actor=actor, note=f"bulk replay (job {job.pk})")
            return "held" if letter.flow.state != FlowState.ACTIVE else "done"
        dead_letter_discard(letter=letter, actor=actor, reason=job.reason)
        return "done"
    except AlreadyResolved:
        return "skipped"  # worked by someone else since the batch was read
    except DeadLetterError:
        return "failed"  # its delivery moved on; the letter stays open for a person to look at


def bulk_job_run(*, job_id: int, batch: int = BATCH, seconds: float = RUN_SECONDS) -> BulkJob | None:
    """Work a job to its end (or its cancel), or for `seconds` and then queue the rest as a new
    task. Safe to call again: a job another run holds, or one that has finished, is left alone;
    a rerun after a crash goes on after the last letter saved."""
    if not _claim(job_id):
        return BulkJob.objects.filter(pk=job_id).first()
    job = BulkJob.objects.select_related("created_by").get(pk=job_id)
    deadline = time.monotonic() + seconds
    try:
        while True:
            if BulkJob.objects.filter(pk=job.pk, cancel_requested=True).exists():
                job.state = BulkJob.State.CANCELLED
                break
            letters = list(
                letters_of(job)
                .filter(pk__gt=job.last_id)
                .select_related("flow", "delivery")
                .order_by("pk")[:batch]
            )
            if not letters:
                job.state = BulkJob.State.DONE
                # What was open when the job started and not worked by it: resolved by others.
                job.skipped = max(0, job.total - job.done - job.held - job.failed)
                break
            for letter in letters:
                outcome = _work(job, letter)
                setattr(job, outcome, getattr(job, outcome) + 1)
            job.last_id = letters[-1].pk
            job.heartbeat_at = clock.now()
            job.save(update_fields=["done", "held", "skipped", "failed", "last_id", "heartbeat_at"])
            if time.monotonic() > deadline:
                return _hand_on(job)  # at least one batch per run, so every run makes progress
    except Exception as exc:  # a job must say why it stopped; the task queue only logs it
        log.exception("bulk job %s stopped", job.pk)
        job.state, job.error = BulkJob.State.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
    job.finished_at = clock.now()
    job.save(update_fields=["state", "skipped", "error", "finished_at"])
    return job
