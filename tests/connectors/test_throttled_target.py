"""A target that allows N requests a second while the hub has no limit set for it: its first
429s slow every worker of two clusters, so it refuses few requests (before, each 429 slowed only
its own delivery, and a run saw 2,252 of 3,252 requests refused)."""

import time

import pytest

from hub.models import Delivery, DeliveryStatus, Event
from hub.pipeline.dispatch import kick_workers
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.conftest import wait_for
from tests.sandbox_helpers import control, employee_event, hr_to_inventory_accounts

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ALLOWED = 20
TOTAL = 400


def test_a_target_that_answers_429_is_slowed_for_every_worker(fresh_sandbox, start_worker):
    control(fresh_sandbox, "inventory", "PUT", "rate-limit", json={"per_second": ALLOWED})
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired", max_attempts=20)
    assert flow.target_system.rate_limit_per_second is None
    events_store(
        [
            IncomingEvent(flow.source_system, "employee.hired", f"evt_{n}", employee_event(n))
            for n in range(TOTAL)
        ]
    )
    assert Event.objects.count() == TOTAL
    started = time.monotonic()
    start_worker(workers=2)
    start_worker(workers=2)
    kick_workers()
    wait_for(
        lambda: not Delivery.objects.unfinished().exists(),
        timeout=120,
        message="every delivery to finish",
    )
    elapsed = time.monotonic() - started
    state = control(fresh_sandbox, "inventory", "GET", "state")
    print(
        f"\n{TOTAL} deliveries to a target allowing {ALLOWED}/s with no limit set: "
        f"{state['requests']} requests, {state['throttled']} refused with 429, "
        f"{elapsed:.1f} s ({TOTAL / elapsed:.1f} deliveries/s)"
    )
    assert Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == TOTAL
    assert state["throttled"] <= 0.1 * state["requests"]
