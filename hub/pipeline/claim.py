"""Claiming due deliveries under a lease, safe with any number of workers."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from connectors.base import ErrorClass
from hub.models import Attempt, Delivery, DeliveryStatus
from hub.pipeline import clock


def relax_durability() -> None:
    """Let this worker transaction commit without waiting for the disk (PostgreSQL).

    Safe for outcomes, never for claims or ingest. The claim is the record that a call may be
    under way: if the database loses an outcome, the delivery is still in flight under an old
    lease, so the next worker treats its create as possibly sent and looks before creating again.
    A lost claim would leave no trace that a call went out.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def deliveries_claim(*, limit: int, lease_seconds: float | None = None) -> tuple[uuid.UUID, list[Delivery]]:
    """Lease up to `limit` due deliveries to this worker. Safe with any number of workers:
    rows are locked with SKIP LOCKED on PostgreSQL; SQLite serialises writers."""
    lease_seconds = lease_seconds or settings.HUB_LEASE_SECONDS
    token = uuid.uuid4()
    now = clock.now()
    with transaction.atomic():
        rows = list(
            Delivery.objects.due(now)
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("next_attempt_at", "id")
            .values_list("id", "status", "attempts")[:limit]
        )
        if not rows:
            return token, []
        ids = [row[0] for row in rows]
        Delivery.objects.filter(id__in=ids).update(
            status=DeliveryStatus.IN_FLIGHT,
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
        abandoned = [row for row in rows if row[1] == DeliveryStatus.IN_FLIGHT]
        if abandoned:
            # Their worker stopped mid-attempt: count that attempt, so a delivery that kills
            # workers still reaches its attempt limit instead of looping forever.
            Attempt.objects.bulk_create(
                Attempt(
                    delivery_id=d_id,
                    number=attempts + 1,
                    started_at=now,
                    duration_ms=0,
                    outcome="abandoned",
                    error_class=ErrorClass.OUTCOME_UNKNOWN,
                    message="the worker stopped before finishing (lease expired): its call may have "
                    "reached the target",
                )
                for d_id, _, attempts in abandoned
            )
            # Their call may have reached the target: a create is looked up before it is sent again.
            Delivery.objects.filter(id__in=[row[0] for row in abandoned]).update(
                attempts=F("attempts") + 1, maybe_sent=True
            )
    claimed = list(
        Delivery.objects.filter(lease_token=token).select_related("event").order_by("next_attempt_at", "id")
    )
    return token, claimed


def leases_renew(*, token: uuid.UUID) -> None:
    """Keep a long batch's lease from running out while this worker still holds it."""
    Delivery.objects.filter(lease_token=token, status=DeliveryStatus.IN_FLIGHT).update(
        lease_expires_at=clock.now() + timedelta(seconds=settings.HUB_LEASE_SECONDS)
    )


def leases_release(*, token: uuid.UUID, delivery_ids: list[int]) -> int:
    """Hand deliveries this worker claimed but will not attempt back to the queue at once."""
    return Delivery.objects.filter(
        pk__in=delivery_ids, lease_token=token, status=DeliveryStatus.IN_FLIGHT
    ).update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=clock.now(),
        lease_token=None,
        lease_expires_at=None,
    )
