"""Draining the queue: claim a batch, attempt each delivery, record the outcomes; repeat."""

import time

from django.conf import settings
from django.db.models import Min

from hub.models import Delivery, DeliveryStatus, FlowState
from hub.pipeline import clock
from hub.pipeline.attempt import FlowCache, Outcome, delivery_attempt
from hub.pipeline.claim import deliveries_claim, leases_renew
from hub.pipeline.dispatch import (
    ask_for_help,
    become_lingerer,
    drain_started,
    still_lingering,
    stop_lingering,
)
from hub.pipeline.outcomes import WORKER_NAME, outcomes_record


def deliveries_process_batch(*, limit: int | None = None) -> int:
    """Claim one batch and carry it out; returns how many deliveries were claimed."""
    token, batch = deliveries_claim(limit=limit or settings.HUB_CLAIM_BATCH)
    if not batch:
        return 0
    flows = FlowCache()
    flows.load_links(batch)
    for delivery in batch:
        # A flow's events all come from its source system: share one loaded (and decrypted) copy.
        delivery.event.system = flows.flow(delivery.flow_id).source_system
    lease_renew_at = time.monotonic() + settings.HUB_LEASE_SECONDS / 2
    pending: list[Outcome] = []
    last_flush = time.monotonic()
    for delivery in batch:
        if time.monotonic() > lease_renew_at:
            leases_renew(token=token)
            lease_renew_at = time.monotonic() + settings.HUB_LEASE_SECONDS / 2
        pending.append(delivery_attempt(delivery=delivery, flows=flows))
        # Record outcomes at least every second, so progress is visible and little is redone
        # if this worker dies.
        if time.monotonic() - last_flush > 1.0:
            outcomes_record(pending, token=token, flows=flows)
            pending, last_flush = [], time.monotonic()
    outcomes_record(pending, token=token, flows=flows)
    return len(batch)


def next_due_in_seconds() -> float | None:
    """Seconds until a waiting delivery is due or an in-flight lease runs out (None: nothing waits)."""
    active = Delivery.objects.filter(flow__state=FlowState.ACTIVE)
    moments = [
        active.filter(status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING)).aggregate(
            at=Min("next_attempt_at")
        )["at"],
        active.filter(status=DeliveryStatus.IN_FLIGHT).aggregate(at=Min("lease_expires_at"))["at"],
    ]
    moments = [m for m in moments if m is not None]
    if not moments:
        return None
    return max(0.0, (min(moments) - clock.now()).total_seconds())


def deliveries_drain(
    *, max_seconds: float | None = None, linger: float | None = None, poll: float = 0.05
) -> int:
    """Process batches until the queue is dry, then leave, unless this drain becomes the one
    lingerer: it keeps polling for `linger` seconds after the last work, and stays (polling
    less often) while a retry or an expired lease is due within the next minute."""
    drain_started()
    max_seconds = settings.HUB_DRAIN_SECONDS if max_seconds is None else max_seconds
    linger = settings.HUB_DRAIN_LINGER_SECONDS if linger is None else linger
    deadline = time.monotonic() + max_seconds
    last_work = time.monotonic()
    done = 0
    lingering = False
    try:
        while time.monotonic() < deadline:
            claimed = deliveries_process_batch()
            done += claimed
            if claimed:
                last_work = time.monotonic()
                if claimed >= settings.HUB_CLAIM_BATCH:
                    ask_for_help()
                continue
            if not lingering:
                lingering = become_lingerer(WORKER_NAME)
                if not lingering:
                    break  # another drain is polling already
            still_lingering()
            if time.monotonic() - last_work < linger:
                time.sleep(poll)
                continue
            due_in = next_due_in_seconds()
            if due_in is None or due_in > 60:
                break
            time.sleep(min(max(due_in, poll), 0.25, max(0.0, deadline - time.monotonic())))
    finally:
        if lingering:
            stop_lingering()
    return done
