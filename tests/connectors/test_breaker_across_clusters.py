"""A target that is down, worked on by two clusters of two workers: the breaker they share opens
after a handful of calls in all (not a handful per worker), holds every delivery without using
its attempts, and once the target is back one probe closes it and everything is delivered."""

import time

import pytest

from connectors.breaker import COOLDOWN_SECONDS, MIN_CALLS
from connectors.models import BreakerState, Circuit
from hub.models import Attempt, Delivery, DeliveryStatus
from hub.pipeline.dispatch import kick_workers
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.conftest import wait_for
from tests.sandbox_helpers import employee_event, hr_to_inventory_accounts

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
TOTAL = 60
WORKERS = 4


def test_two_clusters_share_one_breaker(fresh_sandbox, start_worker):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired", max_attempts=20)
    target = flow.target_system
    working_url, target.base_url = target.base_url, "http://127.0.0.1:9"  # nothing listens there
    target.save()
    events_store(
        [
            IncomingEvent(flow.source_system, "employee.hired", f"evt_{n}", employee_event(n))
            for n in range(TOTAL)
        ]
    )
    start_worker(workers=WORKERS // 2)
    start_worker(workers=WORKERS // 2)
    kick_workers()
    wait_for(
        lambda: Circuit.objects.filter(system=target, state=BreakerState.OPEN).exists(),
        timeout=30,
        message="the breaker to open",
    )
    time.sleep(COOLDOWN_SECONDS / 2)
    calls = Attempt.objects.filter(delivery__flow=flow).count()
    # The calls that opened it, and at most one more per worker already under way.
    print(f"\n{calls} calls to a target that is down, by {WORKERS} workers in two clusters")
    assert MIN_CALLS <= calls <= MIN_CALLS + WORKERS, f"{calls} calls to a target that is down"
    assert not Delivery.objects.filter(status=DeliveryStatus.DEAD).exists()

    target.base_url = working_url
    target.save()
    wait_for(
        lambda: Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == TOTAL,
        timeout=90,
        message="every delivery to succeed once the target is back",
    )
    assert Circuit.objects.get(system=target).state == BreakerState.CLOSED
    assert Attempt.objects.filter(delivery__flow=flow).count() <= calls + TOTAL + WORKERS
