"""Counting as the pipeline works: ingest per request, outcomes per batch, one upsert per table,
correct when several processes add into the same rows at once."""

import subprocess
import sys

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hub.metrics.buckets import Span, bucket_start, latency_bucket
from hub.metrics.models import FlowCount, Heartbeat, LatencyCount, SystemCount
from hub.metrics.recording import worker_heartbeat
from hub.metrics.upsert import upsert_add
from hub.models import Attempt, Delivery, DeliveryStatus
from hub.pipeline import clock
from hub.pipeline.dispatch import kick_workers
from hub.pipeline.drain import deliveries_process_batch
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.conftest import ROOT, wait_for, worker_env
from tests.factories import SystemFactory
from tests.sandbox_helpers import (
    dead_letter_of_a_failing_target,
    drain_all,
    employee_event,
    fault,
    hr_to_inventory_accounts,
)

pytestmark = pytest.mark.django_db(transaction=True)
COUNTS = ("queued", "filtered_out", "succeeded", "retried", "dead_lettered")


def flow_counts(flow, span=Span.TOTAL) -> dict[str, dict[str, int]]:
    """{error class: {counter: n}} summed over the flow's rows of one span."""
    found: dict[str, dict[str, int]] = {}
    for row in FlowCount.objects.filter(flow=flow, span=span):
        into = found.setdefault(row.error_class, dict.fromkeys(COUNTS, 0))
        for name in COUNTS:
            into[name] += getattr(row, name)
    return {k: {n: v for n, v in c.items() if v} for k, c in found.items()}


def system_total(system) -> SystemCount:
    return SystemCount.objects.get(system=system, span=Span.TOTAL)


def hire(flow, n: int, event_type="employee.hired", **data):
    return IncomingEvent(flow.source_system, event_type, f"evt_{n}", employee_event(n, **data))


def test_it_counts_what_ingest_did_with_each_event(fresh_sandbox):
    flow = hr_to_inventory_accounts(
        fresh_sandbox,
        event_type="employee.hired",
        filter={"path": "department", "op": "eq", "value": "Operations"},
    )
    events_store(
        [hire(flow, 1), hire(flow, 2, department="Sales"), hire(flow, 3, event_type="employee.left")]
    )
    events_store([hire(flow, 1)])  # a repeat

    counts = system_total(flow.source_system)
    assert (counts.received, counts.duplicates, counts.filtered_out, counts.not_subscribed) == (3, 1, 1, 1)
    assert counts.last_event_at is not None
    assert flow_counts(flow) == {"": {"queued": 1, "filtered_out": 1}}
    # The same counts in this minute's bucket as in the running total.
    minute = SystemCount.objects.get(system=flow.source_system, span=Span.MINUTE)
    assert minute.start == bucket_start(clock.now(), Span.MINUTE) and minute.received == 3


def test_it_counts_successes_with_their_latency_from_the_events_arrival(fresh_sandbox):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
    events_store([hire(flow, 1), hire(flow, 2)])
    clock.advance(2.5)
    drain_all()
    assert flow_counts(flow) == {"": {"queued": 2, "succeeded": 2}}
    total = FlowCount.objects.get(flow=flow, span=Span.TOTAL, error_class="")
    assert total.last_success_at is not None and 5000 <= total.latency_ms_sum < 6000
    histogram = dict(LatencyCount.objects.filter(flow=flow, span=Span.TOTAL).values_list("bucket", "n"))
    assert histogram == {latency_bucket(2600): 2}


def test_it_counts_retries_and_dead_letters_by_error_class(fresh_sandbox):
    letter = dead_letter_of_a_failing_target(fresh_sandbox)
    assert flow_counts(letter.flow) == {
        "": {"queued": 1},
        "server_error": {"retried": 1, "dead_lettered": 1},
    }


def test_it_writes_a_batchs_counts_with_the_same_statements_however_large_the_batch(fresh_sandbox):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")

    def statements_for_a_batch(first: int, size: int) -> list[str]:
        events_store([hire(flow, n) for n in range(first, first + size)])
        with CaptureQueriesContext(connection) as queries:
            assert deliveries_process_batch() == size
        return [q["sql"] for q in queries.captured_queries if "metrics_" in q["sql"]]

    small, large = statements_for_a_batch(0, 2), statements_for_a_batch(10, 12)
    assert len(small) == len(large) == 2  # flow counts, latency histogram
    assert Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 14


@pytest.mark.slow
def test_it_sums_the_batches_of_two_worker_processes(fresh_sandbox, start_worker):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
    events_store([hire(flow, n) for n in range(40)])
    fault(fresh_sandbox, "inventory", mode="slow", delay=0.05, rate=1.0)
    start_worker(workers=2, extra_env={"HUB_CLAIM_BATCH": "4"})
    kick_workers()
    wait_for(
        lambda: Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 40,
        timeout=60,
        message="every delivery to succeed",
    )
    workers = set(Attempt.objects.values_list("worker", flat=True))
    assert len(workers) == 2, f"one process did all the work: {workers}"
    assert flow_counts(flow) == {"": {"queued": 40, "succeeded": 40}}
    assert flow_counts(flow, Span.MINUTE) == {"": {"queued": 40, "succeeded": 40}}
    assert sum(LatencyCount.objects.filter(flow=flow, span=Span.TOTAL).values_list("n", flat=True)) == 40


ADDER = """
import django; django.setup()
from datetime import UTC, datetime
from hub.metrics.models import SystemCount
from hub.metrics.upsert import upsert_add
from django.db import transaction
start = datetime(2026, 1, 1, tzinfo=UTC)
for _ in range({times}):
    with transaction.atomic():
        upsert_add(SystemCount, [
            {{"system_id": {system}, "span": "m", "start": start, "received": 1}},
            {{"system_id": {system}, "span": "t", "start": start, "received": 2, "last_event_at": start}},
        ])
"""


def test_it_adds_up_correctly_when_two_processes_write_the_same_rows_at_once():
    system = SystemFactory()
    script = ADDER.format(times=150, system=system.pk)
    env = {**worker_env(), "DJANGO_SETTINGS_MODULE": "hub.settings"}
    adders = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env) for _ in range(2)]
    assert [adder.wait(120) for adder in adders] == [0, 0]
    counts = dict(SystemCount.objects.filter(system=system).values_list("span", "received"))
    assert counts == {"m": 300, "t": 600}


def test_it_keeps_the_latest_moment_whichever_write_comes_last():
    system = SystemFactory()
    early, late = clock.now(), clock.now().replace(year=2099)
    row = {"system_id": system.pk, "span": Span.TOTAL, "start": bucket_start(early, Span.TOTAL)}
    upsert_add(SystemCount, [{**row, "received": 1, "last_event_at": late}])
    upsert_add(SystemCount, [{**row, "received": 1, "last_event_at": early}, {**row, "received": 1}])
    counts = SystemCount.objects.get()
    assert (counts.received, counts.last_event_at) == (3, late)


def test_it_writes_a_heartbeat_while_draining_at_most_every_few_seconds():
    worker_heartbeat("test-host:1")
    first = Heartbeat.objects.get(worker="test-host:1").seen_at
    clock.advance(1)
    worker_heartbeat("test-host:1")
    assert Heartbeat.objects.get(worker="test-host:1").seen_at == first
    wait_for(lambda: Heartbeat.objects.exists(), timeout=1)
