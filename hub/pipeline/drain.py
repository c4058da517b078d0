"""Draining the queue: claim a batch, attempt each delivery, record the outcomes; repeat."""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Min

from hub.metrics.recording import worker_heartbeat
from hub.models import Delivery, DeliveryStatus
from hub.pipeline import clock
from hub.pipeline.attempt import FlowCache, Outcome, delivery_attempt
from hub.pipeline.claim import deliveries_claim, leases_release, leases_renew
from hub.pipeline.dispatch import (
    ask_for_help,
    become_lingerer,
    drain_started,
    still_lingering,
    stop_lingering,
    stop_requested,
    wait_unless_stopped,
)
from hub.pipeline.outcomes import outcomes_record, worker_name

log = logging.getLogger("hub.delivery")


def close_old_connections_now() -> None:
    """Drop this thread's database connection if it broke, so the next query opens a fresh one."""
    connection.close_if_unusable_or_obsolete()


def deliveries_process_batch(*, limit: int | None = None, deadline: float | None = None) -> int:
    """Claim one batch and carry it out; returns how many deliveries were claimed.

    Asked to stop midway, or past `deadline` (a time.monotonic() value), it records the outcomes
    it has and hands the deliveries it has not tried back to the queue at once, instead of
    leaving them to wait for their lease to expire (or being killed mid-call by the task queue).
    """
    token, batch = deliveries_claim(limit=limit or settings.HUB_CLAIM_BATCH)
    if not batch:
        return 0
    flows = FlowCache()
    flows.load_links(batch)
    for delivery in batch:
        # A flow's events all come from its source system: share one loaded (and decrypted) copy.
        delivery.event.system = flows.flow(delivery.flow_id).source_system
    lease_ends = time.monotonic() + settings.HUB_LEASE_SECONDS
    pending: list[Outcome] = []
    last_flush = time.monotonic()
    for index, delivery in enumerate(batch):
        if stop_requested() or (deadline is not None and time.monotonic() > deadline):
            outcomes_record_durably(pending, token=token, flows=flows)
            pending = []
            leases_release(token=token, delivery_ids=[d.pk for d in batch[index:]])
            break
        # The lease must outlast the call: a worker that lost it mid-call would see its delivery
        # taken by another while its own request may still create the record.
        longest_call = call_seconds(flows.flow(delivery.flow_id).target_system)
        if time.monotonic() + longest_call + 2.0 > lease_ends:
            lease_seconds = max(settings.HUB_LEASE_SECONDS, longest_call * 2)
            leases_renew(token=token, seconds=lease_seconds)
            lease_ends = time.monotonic() + lease_seconds
        pending.append(delivery_attempt(delivery=delivery, flows=flows))
        # Record outcomes at least every second, so progress is visible and little is redone if
        # this worker dies: what it did not record is still in flight under its lease, and the
        # next worker looks before creating again (or, with no lookup, asks an operator).
        if time.monotonic() - last_flush > 1.0:
            outcomes_record_durably(pending, token=token, flows=flows)
            pending, last_flush = [], time.monotonic()
    outcomes_record_durably(pending, token=token, flows=flows)
    return len(batch)


def outcomes_record_durably(
    outcomes: list[Outcome], *, token, flows: FlowCache, patience: float = 30.0
) -> None:
    """Write outcomes, waiting out a database that went away for a moment: an outcome lost here
    would turn a finished call into an ambiguous one for the next worker."""
    waited, pause = 0.0, 0.25
    while True:
        try:
            outcomes_record(outcomes, token=token, flows=flows)
            return
        except (OperationalError, InterfaceError):
            if waited >= patience:
                raise
            log.warning("could not write %d outcomes; the database may be restarting", len(outcomes))
            close_old_connections_now()
            time.sleep(pause)
            waited, pause = waited + pause, min(pause * 2, 5.0)


def call_seconds(system) -> float:
    """The longest one delivery's calls to `system` can take: a lookup and a write."""
    return 2 * (system.connect_timeout + system.read_timeout) + 1.0


def next_due_in_seconds() -> float | None:
    """Seconds until a delivery may be claimed: a waiting one comes due, or an in-flight lease
    runs out (None: nothing will). Deliveries queued behind another of the same record wait for
    it, not for their own time."""
    claimable = Delivery.objects.due(clock.now() + timedelta(days=3650))
    moments = [
        claimable.filter(status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING)).aggregate(
            at=Min("next_attempt_at")
        )["at"],
        claimable.filter(status=DeliveryStatus.IN_FLIGHT).aggregate(at=Min("lease_expires_at"))["at"],
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
    less often) while a retry or an expired lease is due within the next minute. A stop request
    ends it between deliveries or sleeps."""
    drain_started()
    max_seconds = settings.HUB_DRAIN_SECONDS if max_seconds is None else max_seconds
    linger = settings.HUB_DRAIN_LINGER_SECONDS if linger is None else linger
    deadline = time.monotonic() + max_seconds
    last_work = time.monotonic()
    done = 0
    lingering = False
    outages = 0
    try:
        while time.monotonic() < deadline and not stop_requested():
            try:
                worker_heartbeat(worker_name())
                claimed = deliveries_process_batch(deadline=deadline)
                outages = 0
                done += claimed
                if claimed:
                    last_work = time.monotonic()
                    if claimed >= settings.HUB_CLAIM_BATCH and not stop_requested():
                        ask_for_help()
                    continue
                if not lingering:
                    lingering = become_lingerer(worker_name())
                    if not lingering:
                        break  # another drain is polling already
                still_lingering()
                idle_for = time.monotonic() - last_work
                if not _linger(idle_for=idle_for, linger=linger, poll=poll, deadline=deadline):
                    break
            except (OperationalError, InterfaceError) as exc:
                # The database went away (a restart, a failover): drop the broken connection,
                # wait a little longer each time, and carry on with a fresh one. What this drain
                # had claimed stays leased and is claimed again when its lease runs out.
                outages += 1
                pause = min(0.25 * 2**outages, 5.0, max(0.0, deadline - time.monotonic()))
                log.warning("the database is unavailable (%s); draining again in %.1fs", exc, pause)
                close_old_connections_now()
                wait_unless_stopped(pause)
    finally:
        if lingering:
            stop_lingering()
    return done


def _linger(*, idle_for: float, linger: float, poll: float, deadline: float) -> bool:
    """The lingerer's wait before it looks again; False when there is no reason to stay."""
    if idle_for < linger:
        wait_unless_stopped(poll)
        return True
    due_in = next_due_in_seconds()
    if due_in is None or due_in > 60:
        return False
    wait_unless_stopped(min(max(due_in, poll), 0.25, deadline - time.monotonic()))
    return True
