"""Claiming due deliveries under a lease, safe with any number of workers."""

import itertools
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, OuterRef, QuerySet, Subquery

from connectors.base import ErrorClass
from hub.models import Attempt, Delivery, DeliveryStatus, Flow, FlowState
from hub.pipeline import clock
from hub.pipeline.attempt import breaker


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
    rows are locked with SKIP LOCKED on PostgreSQL; SQLite serialises writers.

    Fair between flows: each flow with due work gets an equal share of the batch, and only what
    the others leave goes to a flow with more, so a backlog on one flow never makes another
    wait. Each flow's share is an index range scan (delivery_due_idx), so a claim costs the same
    whatever the length of the queue."""
    lease_seconds = lease_seconds or settings.HUB_LEASE_SECONDS
    token = uuid.uuid4()
    now = clock.now()
    # Asked before the transaction: the breaker takes a lock of its own and may write, and on
    # SQLite a call thread holding that lock while waiting for the database would deadlock with a
    # claim holding the database while waiting for the lock.
    resting = resting_targets()
    with transaction.atomic():
        rows = _pick(now, limit, resting)
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
    # By primary key: lease_token has no index, and a scan of the table grew with the queue.
    claimed = list(
        Delivery.objects.filter(pk__in=ids, lease_token=token)
        .select_related("event")
        .order_by("next_attempt_at", "id")
    )
    return token, claimed


_turn = itertools.count()


def resting_targets() -> set[int]:
    """The targets of active flows whose circuit is open (or another worker holds its probe)."""
    targets = set(Flow.objects.filter(state=FlowState.ACTIVE).values_list("target_system_id", flat=True))
    return {target_id for target_id in targets if not target_may_be_called(target_id)}


def _pick(now: datetime, limit: int, resting: set[int]) -> list[tuple[int, str, int]]:
    """(id, status, attempts) of up to `limit` claimable deliveries, locked: first any whose
    worker died, then an equal share per flow with due work, what one leaves going to those that
    have more. Flows whose target rests (open circuit) are left out: their deliveries
    would only be put back, and their backlog stays untouched until the target may be tried."""
    # Each flow's soonest due delivery, one probe of delivery_due_idx. The ORDER BY names the
    # index's columns so that no other index looks cheaper: an EXISTS, or ordering by time alone,
    # was planned as a walk through every other flow's due deliveries.
    soonest = (
        Delivery.objects.waiting_due(now)
        .filter(flow_id=OuterRef("pk"))
        .order_by("next_attempt_at", "id")
        .values("next_attempt_at")[:1]
    )
    flows = list(
        Flow.objects.filter(state=FlowState.ACTIVE)
        .annotate(soonest=Subquery(soonest))
        .order_by("pk")
        .values_list("pk", "target_system_id", "soonest")
    )
    if not flows:
        return []
    rows = _locked(Delivery.objects.lease_expired(now).filter(flow_id__in=[f[0] for f in flows]), limit)
    busy = [flow_id for flow_id, target_id, due in flows if due is not None and target_id not in resting]
    if not busy:
        return rows
    start = next(_turn) % len(busy)  # who goes first (and gets any rounding) rotates
    busy = busy[start:] + busy[:start]
    taken: dict[int, list[int]] = {}
    # Rounds of equal shares: a flow that had less than its share drops out, and the next round
    # shares what it left among the others.
    while busy and len(rows) < limit:
        share = -(-(limit - len(rows)) // len(busy))
        more = []
        for flow_id in busy:
            room = min(share, limit - len(rows))
            if room <= 0:
                break
            due = Delivery.objects.waiting_due(now).filter(flow_id=flow_id)
            got = _locked(due.exclude(pk__in=taken[flow_id]) if flow_id in taken else due, room)
            rows.extend(got)
            taken.setdefault(flow_id, []).extend(row[0] for row in got)
            if len(got) == room:
                more.append(flow_id)
        busy = more
    return rows


def _locked(deliveries: QuerySet, limit: int) -> list[tuple[int, str, int]]:
    """The first `limit` of these that no other delivery holds back, locked for this claim."""
    return list(
        deliveries.not_held()
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("next_attempt_at", "id")
        .values_list("id", "status", "attempts")[:limit]
    )


def target_may_be_called(target_id: int) -> bool:
    """False while the target's circuit is open (or another worker holds its probe). Asks
    without claiming the probe: the attempt does that, for the first delivery it tries."""
    return not breaker.resting(target_id)


def leases_renew(*, token: uuid.UUID, seconds: float | None = None) -> None:
    """Keep a long batch's lease from running out while this worker still holds it."""
    Delivery.objects.filter(lease_token=token, status=DeliveryStatus.IN_FLIGHT).update(
        lease_expires_at=clock.now() + timedelta(seconds=seconds or settings.HUB_LEASE_SECONDS)
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
