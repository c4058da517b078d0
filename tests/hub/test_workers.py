"""Real `manage.py qcluster` processes against the sandbox: promises 1, 2 and 4 end to end, and
a clean stop."""

import os
import signal
import subprocess
import time
from collections import Counter

import pytest
import requests

from connectors.sandbox import DEMO_CREDENTIALS, DEMO_WEBHOOK_SECRETS
from dlq.models import DeadLetter
from hub.models import Attempt, Delivery, DeliveryStatus, Event
from hub.pipeline.dispatch import kick_workers
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.conftest import wait_for
from tests.sandbox_helpers import (
    control,
    employee_event,
    fault,
    hr_to_inventory_accounts,
    records,
    sandbox_flow,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
FAST_LEASES = {"HUB_LEASE_SECONDS": "3", "HUB_DRAIN_LINGER_SECONDS": "1"}


def all_finished() -> bool:
    return Delivery.objects.exists() and not Delivery.objects.unfinished().exists()


def hires(flow, count: int) -> None:
    events_store(
        [
            IncomingEvent(flow.source_system, "employee.hired", f"evt_{n}", employee_event(n))
            for n in range(count)
        ]
    )


def in_flight() -> int:
    return Delivery.objects.filter(status=DeliveryStatus.IN_FLIGHT).count()


def busy_cluster(sandbox, start_worker, total: int):
    """A cluster in the middle of a batch against a slow target (leases of the default 60 s:
    a worker that died would leave its batch stuck for a minute)."""
    flow = hr_to_inventory_accounts(sandbox, event_type="employee.hired")
    hires(flow, total)
    fault(sandbox, "inventory", mode="slow", delay=0.3, rate=1.0)
    worker = start_worker(workers=2)
    kick_workers()
    wait_for(
        lambda: Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() >= 2,
        timeout=30,
        message="some deliveries to succeed",
    )
    assert in_flight() > 0, "nothing was in flight when the stop came"
    return worker


def finish_with_a_new_worker_exactly_once(sandbox, start_worker, total: int) -> None:
    control(sandbox, "inventory", "DELETE", "faults")
    start_worker(workers=2)
    wait_for(all_finished, timeout=30, message="every delivery to finish")
    assert Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == total
    emails = Counter(a["email"] for a in records(sandbox, "inventory", "accounts"))
    assert len(emails) == total and max(emails.values()) == 1, f"duplicates: {emails.most_common(3)}"
    # One attempt each: no call was cut off midway and none was made twice.
    assert Attempt.objects.count() == total
    assert not Attempt.objects.filter(outcome="abandoned").exists()


def running(worker) -> set[int]:
    """Processes of the cluster's session still running (zombies waiting to be reaped are not)."""
    listing = subprocess.run(
        ["ps", "-o", "pid=,stat=", "--sid", str(worker.process.pid)], capture_output=True, text=True
    ).stdout
    return {int(pid) for pid, stat in (line.split() for line in listing.splitlines()) if "Z" not in stat}


def test_it_hands_back_its_batch_and_exits_within_two_seconds_of_sigterm(fresh_sandbox, start_worker):
    total = 40
    worker = busy_cluster(fresh_sandbox, start_worker, total)
    asked = time.monotonic()
    worker.terminate()  # SIGTERM to the cluster's main process, as Docker and Kubernetes send it
    worker.process.wait(timeout=10)
    took = time.monotonic() - asked
    assert took < 2.5, f"the cluster took {took:.1f}s to stop"
    assert in_flight() == 0, "a delivery was left in flight: it would wait for its lease to expire"
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING, attempts=0).exists()  # handed back
    finish_with_a_new_worker_exactly_once(fresh_sandbox, start_worker, total)


def test_it_hands_back_its_batch_when_every_process_of_the_cluster_gets_sigterm(fresh_sandbox, start_worker):
    # What systemd's default KillMode does. django-q2's sentinel dies at once (its SIGTERM is
    # SIG_DFL) and its main process may then hang (it waits for the dead sentinel): the workers
    # must not depend on either.
    total = 40
    worker = busy_cluster(fresh_sandbox, start_worker, total)
    os.killpg(worker.process.pid, signal.SIGTERM)
    wait_for(lambda: in_flight() == 0, timeout=2, interval=0.05, message="the batch to be handed back")
    wait_for(
        lambda: running(worker) <= {worker.process.pid}, timeout=2, message="the worker processes to exit"
    )
    worker.kill()
    finish_with_a_new_worker_exactly_once(fresh_sandbox, start_worker, total)


def test_it_carries_crm_webhooks_to_inventory_once_each_even_when_sent_twice(
    fresh_sandbox, live_server, start_worker
):
    sandbox_flow(
        fresh_sandbox,
        "crm Deal /deals id! lines:array! lines[].sku!",
        "inventory Adjustment /adjustments reference! lines:array! lines[].sku! lines[].quantity:integer!",
        event_type="deal.won",
        operation="create",
        rules=[
            {"target": "reference", "source": "id"},
            {"target": "reason", "constant": "CRM deal won"},
            {"target": "lines[].sku", "source": "lines[].sku"},
            {
                "target": "lines[].quantity",
                "source": "lines[].quantity",
                "transforms": [{"name": "arithmetic", "options": {"operation": "negate"}}],
            },
        ],
    )
    # Every webhook is sent twice, as vendors sometimes do.
    control(
        fresh_sandbox,
        "crm",
        "PUT",
        "webhook",
        json={
            "url": f"{live_server.url}/hooks/crm/",
            "secret": DEMO_WEBHOOK_SECRETS["crm"],
            "duplicate_rate": 1.0,
            "enabled": True,
        },
    )
    start_worker(workers=2)
    api = requests.Session()
    api.headers["X-Api-Key"] = DEMO_CREDENTIALS["crm"]["api_key"]
    won = 6
    for n in range(won):
        created = api.post(
            f"{fresh_sandbox.url('crm')}/deals",
            json={
                "title": f"Deal {n}",
                "amount": 100,
                "currency": "EUR",
                "stage": "proposal",
                "customer": {"email": "a@example.com"},
                "lines": [{"sku": "SKU-LAMP", "quantity": 2}],
            },
        ).json()
        api.patch(
            f"{fresh_sandbox.url('crm')}/deals/{created['id']}", json={"stage": "won"}
        ).raise_for_status()

    wait_for(
        lambda: Event.objects.filter(event_type="deal.won").count() == won, message="won events ingested"
    )
    wait_for(
        lambda: Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == won,
        timeout=30,
        message="deliveries to succeed",
    )
    state = control(fresh_sandbox, "crm", "GET", "state")
    assert state["webhooks"]["duplicates"] >= won  # the sandbox really did send duplicates
    adjustments = records(fresh_sandbox, "inventory", "adjustments")
    assert sorted(a["reference"] for a in adjustments) == sorted(
        Event.objects.filter(event_type="deal.won").values_list("record_id", flat=True)
    )
    lamp = next(p for p in records(fresh_sandbox, "inventory", "products") if p["sku"] == "SKU-LAMP")
    assert lamp["stock"] == 100 - 2 * won


@pytest.mark.parametrize("lookup", [True, False], ids=["with-lookup", "without-lookup"])
def test_it_finishes_every_delivery_once_in_effect_when_a_worker_is_killed_mid_batch(
    fresh_sandbox, start_worker, lookup
):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
    if lookup:  # inventory lists accounts filtered by email, their external id here
        flow.target_model.lookup_field = "email"
        flow.target_model.save()
    total = 40
    hires(flow, total)
    # Slow answers keep the batch in flight long enough to kill the worker in the middle of it.
    fault(fresh_sandbox, "inventory", mode="slow", delay=0.2, rate=1.0)
    first = start_worker(workers=2, extra_env=FAST_LEASES)
    kick_workers()
    wait_for(
        lambda: Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() >= 5,
        timeout=30,
        message="some deliveries to succeed",
    )
    first.kill()
    in_flight = Delivery.objects.filter(status=DeliveryStatus.IN_FLIGHT).count()
    succeeded_before = Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count()
    assert succeeded_before < total, "the worker finished before it could be killed"
    assert in_flight > 0, "nothing was in flight when the worker was killed"

    control(fresh_sandbox, "inventory", "DELETE", "faults")
    start_worker(workers=2, extra_env=FAST_LEASES)
    wait_for(all_finished, timeout=60, message="every delivery to finish")
    succeeded = Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count()
    unknown = Delivery.objects.filter(status=DeliveryStatus.UNKNOWN).count()
    emails = Counter(a["email"] for a in records(fresh_sandbox, "inventory", "accounts"))
    assert max(emails.values()) == 1, f"duplicate target records: {emails.most_common(3)}"
    if lookup:
        assert succeeded == total and len(emails) == total
    else:
        # The calls the killed worker had under way cannot be told apart: they wait for an
        # operator (each with its dead letter) instead of being created a second time.
        assert succeeded + unknown == total and 0 < unknown <= in_flight
        assert DeadLetter.objects.filter(error_class="outcome_unknown").count() == unknown


def test_it_keeps_under_the_targets_rate_limit_across_all_workers(fresh_sandbox, start_worker):
    limit = 8
    control(fresh_sandbox, "inventory", "PUT", "rate-limit", json={"per_second": limit})
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
    flow.target_system.rate_limit_per_second = limit
    flow.target_system.save()
    total = 32
    hires(flow, total)
    started = time.monotonic()
    start_worker(workers=2)
    start_worker(workers=2)
    kick_workers()
    wait_for(all_finished, timeout=60, message="every delivery to finish")
    elapsed = time.monotonic() - started
    state = control(fresh_sandbox, "inventory", "GET", "state")
    assert state["throttled"] == 0, f"the target answered 429 {state['throttled']} times"
    assert Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == total
    assert elapsed >= (total - 1) / limit * 0.9  # it really was paced, not just lucky
