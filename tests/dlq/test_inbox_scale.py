"""The inbox stays cheap with 100,000 letters: every query it runs reads an index (bar the free
text search, which only narrows what the other filters found), a page deep in the list costs
what the first one does, and the whole page answers quickly."""

import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dlq.models import DeadLetter
from hub.models import Delivery, Event
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db(transaction=True)
LETTERS = 100_000
CAUSES = [
    ("rejected", "POST /accounts answered #: {\"error\": '…'}"),
    ("mapping_error", 'the mapped record does not fit Account: "email" is required but missing'),
    ("server_error", "POST /accounts answered #: internal server error"),
    ("timeout", "POST /accounts: read timed out after # s"),
    ("outcome_unknown", "POST /accounts: the connection dropped after the request was sent"),
]


@pytest.fixture
def inbox_of_100k():
    system = SystemFactory()
    flows = [
        flow_with_mapping(
            source_model=model_with_fields(system, f"Source{n}", "/s", "id! email"),
            target_model=model_with_fields(SystemFactory(), f"Target{n}", "/t", "email!"),
            rules=[{"target": "email", "source": "email"}],
            name=f"Flow {n}",
        )  # fmt: skip
        for n in range(3)
    ]
    deliveries = []
    for flow in flows:
        event = Event.objects.create(system=system, event_type="x", idempotency_key=f"k{flow.pk}", payload={})
        deliveries.append(Delivery.objects.create(event=event, flow=flow, record_key="r", status="dead"))
    # Written by one INSERT ... SELECT in the database: through the ORM, 100,000 rows take a minute.
    causes = " ".join(f"WHEN {n} THEN %s" for n in range(len(CAUSES)))
    flow_of = " ".join(f"WHEN {n} THEN {d.flow_id}" for n, d in enumerate(deliveries))
    delivery_of = " ".join(f"WHEN {n} THEN {d.pk}" for n, d in enumerate(deliveries))
    if connection.vendor == "postgresql":
        numbers, text, now = "generate_series(0, %s) AS n(i)", "'rec_' || i", "now()"
        created = "now() - (i % 43200) * interval '1 minute'"
        head = ""
    else:
        head = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %s) "
        numbers, text, now = "n", "'rec_' || i", "datetime('now')"
        created = "datetime('now', '-' || (i % 43200) || ' minutes')"
    classes, patterns = [c for c, _ in CAUSES], [p for _, p in CAUSES]
    sql = (
        "INSERT INTO dlq_deadletter (delivery_id, flow_id, error_class, reason, pattern, record_key, "
        "last_response, attempts, created_at, resolved_at, resolution, resolution_note) "
        f"{head}SELECT CASE i % 3 {delivery_of} END, CASE i % 3 {flow_of} END, CASE i % 5 {causes} END, "
        f"CASE i % 5 {causes} END, CASE i % 5 {causes} END, {text}, '{{}}', 1, {created}, "
        f"CASE WHEN i % 10 < 3 THEN {now} END, CASE WHEN i % 10 < 3 THEN 'discarded' ELSE '' END, '' "
        f"FROM {numbers}"
    ).replace(" % ", " %% ")  # the modulo operator, not a placeholder
    last = [LETTERS - 1]
    params = (last if head else []) + classes + patterns + patterns + ([] if head else last)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.execute("ANALYZE" if connection.vendor == "sqlite" else "ANALYZE dlq_deadletter")
    assert DeadLetter.objects.count() == LETTERS
    return flows


def full_scans(queries: list[dict]) -> list[str]:
    """The letter queries SQLite would answer by reading the whole table."""
    scans = []
    with connection.cursor() as cursor:
        for query in queries:
            if "dlq_deadletter" not in query["sql"] or not query["sql"].startswith("SELECT"):
                continue
            cursor.execute("EXPLAIN QUERY PLAN " + query["sql"])
            plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
            if "SCAN dlq_deadletter" in plan and "INDEX" not in plan.split("SCAN dlq_deadletter")[1][:40]:
                scans.append(f"{query['sql'][:200]} -> {plan}")
    return scans


PAGES = [
    {},
    {"flow": "FLOW"},
    {"record": "rec_4242"},
    {"error_class": "timeout"},
    {"error_class": "rejected", "system": "TARGET", "pattern": CAUSES[0][1]},
    {"since": "2026-01-01T00:00", "until": "2099-01-01T00:00"},
    {"resolved": "on"},
]


def test_every_inbox_query_reads_an_index_and_the_page_answers_quickly(inbox_of_100k, personas):
    flow = inbox_of_100k[1]
    ops = Client()
    ops.force_login(personas["ops"])
    for params in PAGES:
        params = {
            key: {"FLOW": str(flow.pk), "TARGET": str(flow.target_system_id)}.get(value, value)
            for key, value in params.items()
        }
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            page = ops.get(reverse("dlq-inbox"), params)
            took = time.perf_counter() - started
        assert page.status_code == 200, params
        assert took < 2.0, (params, took)
        if connection.vendor == "sqlite":
            assert full_scans(queries.captured_queries) == [], params


def test_a_deep_page_costs_what_the_first_does(inbox_of_100k, personas):
    ops = Client()
    ops.force_login(personas["ops"])
    deep = DeadLetter.objects.unresolved().order_by("created_at", "id").values_list("pk", flat=True)[200]

    def timed(params) -> float:
        started = time.perf_counter()
        body = ops.get(reverse("dlq-inbox"), params).content.decode()
        assert "Older letters" in body
        return time.perf_counter() - started

    first, last = min(timed({}) for _ in range(3)), min(timed({"before": deep}) for _ in range(3))
    assert last < first * 3 + 0.05
