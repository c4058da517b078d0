"""Faults beyond one bad answer: credentials refused, webhooks sent twice, a worker killed
mid-batch, two clusters at once, everything mixed, and a target with no way to look a record up."""

import threading

import pytest
from django.db import connection

from connectors.sandbox.faulty import FAULTS
from hub.models import Delivery, DeliveryStatus, Flow, FlowState, Operation
from hub.services.flows import flow_resume
from tests.conftest import wait_for
from tests.faults.harness import WORKER_ENV, Scenario, finished, pauses, plan, shop_to_target

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
WORKERS = 2  # worker processes per cluster
# The transient faults of the two-cluster run: nothing a retry (or a look) cannot fix.
TRANSIENT = {
    "500": 0.05,
    "timeout": 0.04,
    "drop_before": 0.04,
    "drop_after": 0.05,
    "garbage": 0.03,
    "empty_201": 0.03,
    "no_id": 0.03,
}
# The mix adds every other fault. A 429 or 503 slows the whole target down after its Retry-After
# and a 401 pauses the flow, so they are kept rare enough for a run to end in bounded time.
MIX = {**TRANSIENT, "429": 0.01, "429_date": 0.01, "503": 0.01, "401": 0.01, "422": 0.03}


def share(shares: dict[str, float]) -> str:
    return f"{sum(shares.values()):.0%}"


def test_it_pauses_the_flow_once_on_401_and_holds_the_orders_until_it_is_resumed(
    faulty_target, live_server, start_worker
):
    faulty_target.set_plan(plan({"401": 1.0}))  # the vendor revoked our key
    flow = shop_to_target(faulty_target)
    run = Scenario("401", "401: credentials refused until the flow is resumed", faulty_target, flow, 150)
    run.allowed_dead = ("auth_failure",)
    start_worker(workers=WORKERS, extra_env=WORKER_ENV)
    run.post(live_server.url)
    wait_for(lambda: Flow.objects.get(pk=flow.pk).state == FlowState.PAUSED, message="the pause")
    wait_for(
        lambda: not Delivery.objects.filter(flow=flow, status=DeliveryStatus.IN_FLIGHT).exists(),
        message="the calls under way to end",
    )
    held = Delivery.objects.filter(flow=flow).unfinished().count()
    paused_times = pauses(flow)

    faulty_target.set_plan(plan({}))  # a new key is in place
    flow_resume(flow=Flow.objects.get(pk=flow.pk), actor=None)
    figures = run.finish()
    # Held, not lost: every order not yet tried waited for the flow; at most one call per worker
    # was under way when the key stopped working.
    assert held >= run.orders - WORKERS, f"{run.orders - held} orders left the queue while paused; {figures}"
    assert paused_times == 1
    assert figures.problems == [], figures
    assert pauses(flow) == 1
    assert figures.dead_lettered.get("auth_failure", 0) <= WORKERS, figures


def test_it_creates_one_record_per_order_when_every_webhook_comes_twice(
    faulty_target, live_server, start_worker
):
    flow = shop_to_target(faulty_target)
    run = Scenario(
        "duplicate_webhooks", "every webhook posted twice (same idempotency key)", faulty_target, flow, 200
    )
    start_worker(workers=WORKERS, extra_env=WORKER_ENV)
    posted = run.post(live_server.url, twice=1.0, senders=6)
    assert posted.sendings == 2 * run.orders
    figures = run.finish()
    assert figures.problems == [], figures
    assert figures.delivered == figures.target_records == run.orders


def test_it_carries_out_a_killed_workers_batch_once_in_effect(faulty_target, live_server, start_worker):
    faulty_target.set_plan(plan({}, delay=0.05))  # slow answers keep batches in flight
    run = Scenario(
        "sigkill", "a worker SIGKILLed mid-batch", faulty_target, shop_to_target(faulty_target), 200
    )
    first = start_worker(workers=WORKERS, extra_env=WORKER_ENV)
    run.post(live_server.url)
    wait_for(lambda: faulty_target.state()["records"] >= 40, message="the target to get 40 records")
    first.kill()  # SIGKILL: no chance to write what it did
    in_flight = Delivery.objects.filter(flow=run.flow, status=DeliveryStatus.IN_FLIGHT).count()
    run.fault += f" ({in_flight} deliveries in flight)"

    faulty_target.set_plan(plan({}))
    start_worker(workers=WORKERS, extra_env=WORKER_ENV)
    figures = run.finish()
    assert in_flight > 0, "nothing was in flight when the worker was killed"
    assert figures.problems == [], figures


def test_two_clusters_at_once_carry_each_order_out_once(faulty_target, live_server, start_worker):
    faulty_target.set_plan(plan(TRANSIENT))
    fault = f"two clusters at once, transient faults mixed ({share(TRANSIENT)} of calls)"
    run = Scenario("two_clusters", fault, faulty_target, shop_to_target(faulty_target), 240)
    start_worker(workers=WORKERS, extra_env=WORKER_ENV)
    start_worker(workers=WORKERS, extra_env=WORKER_ENV)
    run.post(live_server.url)
    figures = run.finish()
    assert figures.problems == [], figures
    assert figures.delivered == figures.target_records == run.orders


class Operator(threading.Thread):
    """Ops on duty: resumes the flow whenever the hub pauses it (after "fixing" the key)."""

    def __init__(self, flow: Flow) -> None:
        super().__init__(daemon=True)
        self.flow_id = flow.pk
        self.done = threading.Event()
        self.resumed = 0

    def run(self) -> None:
        try:
            while not self.done.wait(0.3):
                flow = Flow.objects.get(pk=self.flow_id)
                if flow.state == FlowState.PAUSED:
                    flow_resume(flow=flow, actor=None)
                    self.resumed += 1
        finally:
            connection.close()


def test_a_mix_of_every_fault_ends_with_each_order_delivered_once_or_dead_lettered_for_its_cause(
    faulty_target, live_server, start_worker
):
    assert set(MIX) == set(FAULTS)
    lookups = {"500": 0.05, "drop_before": 0.03}
    faulty_target.set_plan(plan(MIX, lookup_shares=lookups))
    fault = (
        f"all of the above mixed ({share(MIX)} of calls, {share(lookups)} of lookups), webhooks "
        "twice (20%), two clusters, one SIGKILLed"
    )
    flow = shop_to_target(faulty_target, operation=Operation.UPSERT)
    run = Scenario("mix", fault, faulty_target, flow, 150, allowed_dead=("rejected", "auth_failure"))
    operator = Operator(flow)
    operator.start()
    first = start_worker(workers=WORKERS, extra_env=WORKER_ENV)
    start_worker(workers=WORKERS, extra_env=WORKER_ENV)
    run.post(live_server.url, twice=0.2)
    # Generous: two clusters start (compiling every import) on a machine the CI may share.
    wait_for(
        lambda: faulty_target.state()["records"] >= run.orders // 4,
        timeout=120,
        message="a quarter delivered",
    )
    first.kill()
    start_worker(workers=WORKERS, extra_env=WORKER_ENV)
    try:
        # A bound, not an expectation (about 40 s alone): the mix waits out pauses, cooldowns and a
        # killed worker's leases, and may share the machine with the rest of the suite.
        wait_for(lambda: finished(flow, run.orders), timeout=240, message="every delivery to finish")
    finally:
        operator.done.set()
        operator.join(5)
    figures = run.judge()
    assert figures.problems == [], figures


def test_without_a_lookup_an_ambiguous_create_waits_as_outcome_unknown_instead_of_repeating(
    faulty_target, live_server, start_worker
):
    faulty_target.set_plan(plan({"drop_after": 0.25}))
    fault = "connection dropped after the commit (25%), target model without a lookup"
    flow = shop_to_target(faulty_target, lookup=False)
    run = Scenario("no_lookup", fault, faulty_target, flow, 200, allowed_dead=("outcome_unknown",))
    start_worker(workers=WORKERS, extra_env=WORKER_ENV)
    run.post(live_server.url)
    figures = run.finish()
    assert figures.problems == [], figures
    # Each dropped answer leaves one delivery for an operator; none is created a second time.
    dropped = figures.injected["drop_after"]
    assert figures.unknown == dropped == figures.dead_lettered.get("outcome_unknown"), figures
    assert figures.delivered + figures.unknown == figures.target_records == run.orders
