"""Retention: old event payloads and attempt bodies are emptied in batches; what happened stays.

After `HUB_RETENTION_DAYS` (90 by default; 0 keeps everything) an event's payload, its
deliveries' corrected records and their attempts' request and response summaries are emptied.
Events, deliveries (status, attempts, target id, last error), attempts (when, outcome, error,
mapping version), dead letters and record links stay, and the audit trail is kept forever unless
`HUB_AUDIT_RETENTION_DAYS` is set. A payload is never emptied while a delivery of its event is
unfinished or has an open dead letter: it may still be sent or replayed.
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from hub.models import UNFINISHED, Attempt, Delivery, DeliveryStatus, Event
from hub.pipeline import clock
from hub.services.audit import audit_purge


@dataclass
class PurgeReport:
    events: int = 0
    attempts: int = 0
    audit_entries: int = 0
    finished: bool = True  # False when the time budget ran out with more to purge

    def summary(self) -> str:
        more = "" if self.finished else "; more remain for the next run"
        return (
            f"emptied {self.events} event payloads and {self.attempts} attempt bodies, "
            f"removed {self.audit_entries} audit entries{more}"
        )


def purgeable_events(*, before: datetime):
    """Events received before `before` whose payload nobody can need again, oldest first."""
    still_needed = Delivery.objects.filter(event_id=OuterRef("pk")).filter(
        # A delivery held for review (its record changed shape) is sent on once released.
        Q(status__in=(*UNFINISHED, DeliveryStatus.HELD))
        | Q(dead_letters__resolved_at__isnull=True, dead_letters__isnull=False)
    )
    return (
        Event.objects.filter(purged_at__isnull=True, received_at__lt=before)
        .exclude(Exists(still_needed))
        .order_by("received_at")
    )


def _purge_batch(*, before: datetime, batch_size: int, now: datetime) -> tuple[int, int]:
    with transaction.atomic():
        ids = list(purgeable_events(before=before).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return 0, 0
        Event.objects.filter(pk__in=ids).update(payload={}, purged_at=now)
        Delivery.objects.filter(event_id__in=ids, payload_override__isnull=False).update(
            payload_override=None
        )
        attempts = Attempt.objects.filter(delivery__event_id__in=ids).update(request={}, response={})
    return len(ids), attempts


def retention_purge(
    *,
    days: int | None = None,
    audit_days: int | None = None,
    batch_size: int = 1000,
    max_seconds: float = 120.0,
    now: datetime | None = None,
) -> PurgeReport:
    """Empty what is older than the retention period, one batch per transaction, for at most
    `max_seconds` (the next scheduled run carries on)."""
    now = now or clock.now()
    days = settings.HUB_RETENTION_DAYS if days is None else days
    audit_days = settings.HUB_AUDIT_RETENTION_DAYS if audit_days is None else audit_days
    report = PurgeReport()
    deadline = time.monotonic() + max_seconds
    if days:
        before = now - timedelta(days=days)
        while True:
            if time.monotonic() > deadline:
                report.finished = False
                break
            events, attempts = _purge_batch(before=before, batch_size=batch_size, now=now)
            if not events:
                break
            report.events += events
            report.attempts += attempts
    if audit_days:
        report.audit_entries = audit_purge(before=now - timedelta(days=audit_days), batch_size=batch_size)
    return report
