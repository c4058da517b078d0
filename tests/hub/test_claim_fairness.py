"""Claiming: fair between flows, the same cost whatever the queue's length, and every ordering
guarantee kept (one record at a time, paused flows wait, SKIP LOCKED with many workers)."""

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection, transaction
from django.db.models import Min
from django.test.utils import CaptureQueriesContext

from connectors.base import ErrorClass
from connectors.breaker import MIN_CALLS
from hub.models import Attempt, Delivery, DeliveryStatus, Event, FlowState
from hub.pipeline import clock
from hub.pipeline.attempt import breaker
from hub.pipeline.claim import deliveries_claim
from hub.pipeline.rows import insert_rows
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db(transaction=True)


def make_flow(name: str):
    source, target = SystemFactory(), SystemFactory()
    person = model_with_fields(source, "Person", "/people", {"email": ("string", True)})
    account = model_with_fields(target, "Account", "/accounts", {"email": ("string", True)})
    return flow_with_mapping(
        source_model=person, target_model=account, rules=[{"target": "email", "source": "email"}], name=name
    )


def queue(flow, count: int, *, records=None, age_seconds: float = 60) -> list[int]:
    """`count` due deliveries for `flow` (record keys from `records`, else one each), oldest first."""
    at = clock.now() - timedelta(seconds=age_seconds)
    first = Delivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    for start in range(0, count, 2000):
        events, deliveries = [], []
        for n in range(start, min(count, start + 2000)):
            key = records[n] if records else f"{flow.pk}-r{n}"
            event = Event(
                system=flow.source_system,
                event_type="person.created",
                idempotency_key=f"{flow.pk}-{n}-{at.timestamp()}",
                payload={"id": key, "email": f"{n}@example.com"},
                received_at=at,
            )
            events.append(event)
            deliveries.append(
                Delivery(
                    event=event,
                    flow=flow,
                    record_key=key,
                    next_attempt_at=at + timedelta(microseconds=n),
                    created_at=at,
                )
            )
        with transaction.atomic():
            insert_rows(Event, events)
            insert_rows(Delivery, deliveries)
    return list(Delivery.objects.filter(flow=flow, pk__gt=first).order_by("pk").values_list("pk", flat=True))


def claimed_per_flow(batch) -> Counter:
    return Counter(d.flow.name for d in batch)


def test_a_backlog_on_one_flow_does_not_crowd_out_another():
    stuck, healthy = make_flow("stuck"), make_flow("healthy")
    queue(stuck, 500, age_seconds=600)  # older: first in line by time
    queue(healthy, 10)
    _, batch = deliveries_claim(limit=100)
    assert claimed_per_flow(batch) == {"healthy": 10, "stuck": 90}


def test_each_flow_gets_an_equal_share_and_what_one_leaves_goes_to_the_others():
    a, b, c = make_flow("a"), make_flow("b"), make_flow("c")
    queue(a, 300, age_seconds=900)
    queue(b, 5, age_seconds=600)
    queue(c, 300)
    _, batch = deliveries_claim(limit=100)
    counts = claimed_per_flow(batch)
    assert len(batch) == 100 and counts["b"] == 5
    assert {counts["a"], counts["c"]} <= {47, 48} and counts["a"] + counts["c"] == 95
    # Within a flow, oldest first.
    a_claimed = sorted(d.pk for d in batch if d.flow_id == a.pk)
    assert (
        a_claimed
        == list(Delivery.objects.filter(flow=a).order_by("pk").values_list("pk", flat=True))[: len(a_claimed)]
    )


def test_a_flow_alone_gets_the_whole_batch():
    flow = make_flow("alone")
    queue(flow, 150)
    _, batch = deliveries_claim(limit=100)
    assert len(batch) == 100
    _, batch = deliveries_claim(limit=100)
    assert len(batch) == 50


def test_one_record_goes_out_one_delivery_at_a_time_in_order():
    flow = make_flow("ordered")
    first, second = queue(flow, 2, records=["r1", "r1"])
    _, batch = deliveries_claim(limit=100)
    assert [d.pk for d in batch] == [first]
    assert deliveries_claim(limit=100)[1] == []  # the second waits while the first is in flight
    # An outcome nobody knows yet holds the record too: sent on, it could create it twice.
    Delivery.objects.filter(pk=first).update(status=DeliveryStatus.UNKNOWN, lease_token=None)
    assert deliveries_claim(limit=100)[1] == []
    Delivery.objects.filter(pk=first).update(status=DeliveryStatus.SUCCEEDED)
    assert [d.pk for d in deliveries_claim(limit=100)[1]] == [second]


def test_a_later_delivery_waits_for_an_earlier_one_that_is_not_due_yet():
    flow = make_flow("ordered")
    first, second = queue(flow, 2, records=["r1", "r1"])
    Delivery.objects.filter(pk=first).update(
        status=DeliveryStatus.RETRYING, next_attempt_at=clock.now() + timedelta(minutes=5)
    )
    assert deliveries_claim(limit=100)[1] == []


def test_deliveries_of_a_paused_flow_wait():
    paused, active = make_flow("paused"), make_flow("active")
    queue(paused, 20)
    queue(active, 3)
    paused.state = FlowState.PAUSED
    paused.save()
    _, batch = deliveries_claim(limit=100)
    assert claimed_per_flow(batch) == {"active": 3}


def test_a_delivery_whose_worker_died_is_claimed_again_and_the_lost_try_counted():
    flow = make_flow("crashed")
    (pk,) = queue(flow, 1)
    deliveries_claim(limit=100, lease_seconds=60)
    Delivery.objects.filter(pk=pk).update(lease_expires_at=clock.now() - timedelta(seconds=1))
    _, batch = deliveries_claim(limit=100)
    assert [d.pk for d in batch] == [pk]
    assert batch[0].attempts == 1 and batch[0].maybe_sent
    assert Attempt.objects.get(delivery_id=pk).outcome == "abandoned"


def test_a_target_resting_behind_an_open_circuit_is_not_claimed_for_and_its_backlog_is_untouched(monkeypatch):
    down, healthy = make_flow("down"), make_flow("healthy")
    queue(down, 300, age_seconds=600)
    queue(healthy, 30)
    for _ in range(MIN_CALLS):
        breaker.record(down.target_system_id, ErrorClass.UNREACHABLE)
    before = list(Delivery.objects.filter(flow=down).values_list("pk", "status", "next_attempt_at"))
    _, batch = deliveries_claim(limit=100)
    assert claimed_per_flow(batch) == {"healthy": 30}
    assert list(Delivery.objects.filter(flow=down).values_list("pk", "status", "next_attempt_at")) == before
    # The cooldown over, the target may be tried again: its backlog is claimed once more.
    monkeypatch.setattr(breaker, "clock", lambda: time.time() + breaker.COOLDOWN_SECONDS + 1)
    breaker.forget()
    assert claimed_per_flow(deliveries_claim(limit=100)[1]) == {"down": 100}


def test_a_claim_costs_the_same_number_of_statements_whatever_the_queue():
    busy, quiet = make_flow("busy"), make_flow("quiet")
    queue(busy, 150)
    queue(quiet, 10)

    def statements() -> list[str]:
        Delivery.objects.update(status=DeliveryStatus.PENDING, lease_token=None, lease_expires_at=None)
        breaker.forget()
        with CaptureQueriesContext(connection) as context:
            assert len(deliveries_claim(limit=100)[1]) == 100
        return [query["sql"].split(" ")[0] for query in context.captured_queries]

    few = statements()
    queue(busy, 5000)
    assert statements() == few


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_on_postgresql_each_flows_share_is_an_index_range_not_a_sort_of_the_queue():
    flow = make_flow("big")
    queue(flow, 20_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE hub_delivery")
    with transaction.atomic(), connection.cursor() as cursor:
        sql, params = (
            Delivery.objects.waiting_due(clock.now())
            .filter(flow_id=flow.pk)
            .not_held()
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("next_attempt_at", "id")
            .values_list("id", "status", "attempts")[:100]
            .query.sql_with_params()
        )
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0][0]["Plan"]
    text = str(plan)
    assert "delivery_due_idx" in text and "'Sort'" not in text
    scanned = max(node["Actual Rows"] for node in walk(plan) if node.get("Index Name") == "delivery_due_idx")
    assert scanned <= 100


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.parametrize("queued", [1_000, 20_000])
def test_on_postgresql_no_statement_of_a_claim_reads_the_whole_queue(queued):
    big, small = make_flow("big"), make_flow("small")
    queue(big, queued, age_seconds=600)
    queue(small, 10)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE hub_delivery")
    with CaptureQueriesContext(connection) as context:
        deliveries_claim(limit=100)
    statements = [q["sql"] for q in context.captured_queries if q["sql"].startswith(("SELECT", "UPDATE"))]
    assert len(statements) >= 5
    Delivery.objects.update(status=DeliveryStatus.PENDING, lease_token=None, lease_expires_at=None)
    for sql in statements:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
            nodes = list(walk(cursor.fetchone()[0][0]["Plan"]))
            transaction.set_rollback(True)
        # Never a comparison of each waiting delivery with every other (once planned for small
        # queues); with a large queue, never more than a few rows per delivery claimed.
        assert sum(n.get("Rows Removed by Join Filter", 0) for n in nodes) < queued, sql[:300]
        if queued > 10_000:
            read = sum(
                n.get("Rows Removed by Filter", 0) + n["Actual Rows"] * n["Actual Loops"] for n in nodes
            )
            assert read < 800, f"{sql[:300]}\n{nodes}"
            assert not any(
                n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "hub_delivery" for n in nodes
            )


def walk(node):
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


def test_workers_claiming_at_once_never_share_a_delivery_nor_a_record():
    flows = [make_flow(f"f{n}") for n in range(3)]
    for flow in flows:
        # 40 records with three changes each: only the first of each may be out at a time.
        queue(flow, 120, records=[f"r{n % 40}" for n in range(120)])
    start = threading.Barrier(6)
    claimed: list[list[Delivery]] = []
    lock = threading.Lock()

    def worker():
        try:
            start.wait()
            _, batch = deliveries_claim(limit=25)
            with lock:
                claimed.append(batch)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out = [d for batch in claimed for d in batch]
    assert len(out) == len({d.pk for d in out}) > 0
    assert len({(d.flow_id, d.record_key) for d in out}) == len(out)
    firsts = set(
        Delivery.objects.values("flow_id", "record_key")
        .annotate(first=Min("pk"))
        .values_list("first", flat=True)
    )
    assert {d.pk for d in out} <= firsts
    assert Delivery.objects.filter(status=DeliveryStatus.IN_FLIGHT).count() == len(out)
