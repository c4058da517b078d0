"""Claiming due deliveries under a lease, safe with any number of workers."""

import itertools
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from connectors.base import ErrorClass
from hub.models import HOLDS_RECORD, WAITING, Attempt, Delivery, DeliveryStatus, FlowState
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


def deliveries_claim(
    *, limit: int, lease_seconds: float | None = None, look_for_abandoned: bool = True
) -> tuple[uuid.UUID, list[Delivery]]:
    """Lease up to `limit` due deliveries to this worker. Safe with any number of workers:
    rows are locked with SKIP LOCKED on PostgreSQL; SQLite serialises writers.

    Fair between flows: each flow with due work gets an equal share of the batch, and only what
    the others leave goes to a flow with more, so a backlog on one flow never makes another
    wait. Each flow's share is an index range scan (delivery_due_idx), so a claim costs the same
    whatever the length of the queue. `look_for_abandoned`: also take deliveries whose worker
    died (their lease ran out); a drain claiming many times a second asks once a second.
    """
    lease_seconds = lease_seconds or settings.HUB_LEASE_SECONDS
    token = uuid.uuid4()
    now = clock.now()
    # Asked before the transaction: the breaker takes a lock of its own and may write, and on
    # SQLite a call thread holding that lock while waiting for the database would deadlock with a
    # claim holding the database while waiting for the lock.
    resting = resting_targets()
    with transaction.atomic():
        rows = _pick(now, limit, resting, look_for_abandoned)
        if not rows:
            return token, []
        ids = [row[0] for row in rows]
        lease_ends = now + timedelta(seconds=lease_seconds)
        _rows_changed(
            "UPDATE hub_delivery SET status = %s, lease_token = %s, lease_expires_at = %s "
            f"WHERE id IN ({', '.join(['%s'] * len(ids))})",
            [
                DeliveryStatus.IN_FLIGHT,
                Delivery._meta.get_field("lease_token").get_db_prep_value(token, connection),
                connection.ops.adapt_datetimefield_value(lease_ends),
                *ids,
            ],
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
    targets = {
        row[0]
        for row in _rows(
            "SELECT DISTINCT target_system_id FROM hub_flow WHERE state = %s", [FlowState.ACTIVE]
        )
    }
    return {target_id for target_id in targets if not target_may_be_called(target_id)}


def _pick(
    now: datetime, limit: int, resting: set[int], look_for_abandoned: bool
) -> list[tuple[int, str, int]]:
    """(id, status, attempts) of up to `limit` claimable deliveries, locked: first any whose
    worker died, then an equal share per flow with due work, what one leaves going to those that
    have more. Flows whose target rests (open circuit) are left out: their deliveries
    would only be put back, and their backlog stays untouched until the target may be tried."""
    flows = _flows_with_soonest_due(now)
    if not flows:
        return []
    rows = _locked_abandoned(now, [f[0] for f in flows], limit) if look_for_abandoned else []
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
            got = _locked_due(now, flow_id, taken.get(flow_id, []), room)
            rows.extend(got)
            taken.setdefault(flow_id, []).extend(row[0] for row in got)
            if len(got) == room:
                more.append(flow_id)
        busy = more
    return rows


# The claim's reads, written out: they run many times a second, and building them with the ORM
# (subqueries, OuterRef) cost several milliseconds of CPU per claim, more than the database took.
# They read what DeliveryQuerySet.waiting_due, lease_expired and not_held say, through the same
# indexes: delivery_due_idx for each flow's soonest and its share, delivery_unfinished_record_idx
# for the first unfinished delivery of each record.
WAITING_SQL = ", ".join(f"'{status}'" for status in WAITING)
HOLDS_SQL = ", ".join(f"'{status}'" for status in HOLDS_RECORD)
FIRST_OF_RECORD = (
    "d.id = (SELECT u.id FROM hub_delivery u WHERE u.flow_id = d.flow_id AND u.record_key = d.record_key "
    f"AND u.status IN ({HOLDS_SQL}) ORDER BY u.id LIMIT 1)"
)


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _rows_changed(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _for_update() -> str:
    """Lock what is read, skipping what another claim holds (PostgreSQL; SQLite serialises)."""
    return " FOR UPDATE OF d SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""


def _flows_with_soonest_due(now: datetime) -> list[tuple[int, int, object]]:
    """(id, target, soonest due) of each active flow: one probe of delivery_due_idx each. The ORDER
    BY names the index's columns so that no other index looks cheaper."""
    at = connection.ops.adapt_datetimefield_value(now)
    return _rows(
        "SELECT f.id, f.target_system_id, (SELECT d.next_attempt_at FROM hub_delivery d "
        f"WHERE d.flow_id = f.id AND d.status IN ({WAITING_SQL}) AND d.next_attempt_at <= %s "
        "ORDER BY d.next_attempt_at, d.id LIMIT 1) FROM hub_flow f WHERE f.state = %s ORDER BY f.id",
        [at, FlowState.ACTIVE],
    )


def _locked_due(now: datetime, flow_id: int, taken: list[int], limit: int) -> list[tuple[int, str, int]]:
    """The first `limit` due deliveries of a flow that no other delivery holds back, locked."""
    at = connection.ops.adapt_datetimefield_value(now)
    not_taken = f" AND NOT d.id IN ({', '.join(['%s'] * len(taken))})" if taken else ""
    return _rows(
        "SELECT d.id, d.status, d.attempts FROM hub_delivery d "
        f"WHERE d.flow_id = %s AND d.status IN ({WAITING_SQL}) AND d.next_attempt_at <= %s{not_taken} "
        f"AND {FIRST_OF_RECORD} ORDER BY d.next_attempt_at, d.id LIMIT %s" + _for_update(),
        [flow_id, at, *taken, limit],
    )


def _locked_abandoned(now: datetime, flow_ids: list[int], limit: int) -> list[tuple[int, str, int]]:
    """In-flight deliveries of these flows whose lease ran out (their worker died), locked."""
    at = connection.ops.adapt_datetimefield_value(now)
    return _rows(
        "SELECT d.id, d.status, d.attempts FROM hub_delivery d "
        f"WHERE d.flow_id IN ({', '.join(['%s'] * len(flow_ids))}) AND d.status = %s "
        f"AND d.lease_expires_at < %s AND {FIRST_OF_RECORD} ORDER BY d.next_attempt_at, d.id LIMIT %s"
        + _for_update(),
        [*flow_ids, DeliveryStatus.IN_FLIGHT, at, limit],
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
