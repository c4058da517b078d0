"""The drift check is cheap where it runs most: a record of a shape already compared costs a
fingerprint and a dictionary look-up, with no comparison and no query; a restart reads the known
shapes back once instead of comparing them again."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hub.models import DriftPolicy, Event, SchemaDrift
from hub.pipeline import shapes
from hub.pipeline.drift import stats
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.pipeline.shapes import forget_shapes
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db
DRIFT_TABLES = ("schemadrift", "shapefingerprint", "drifthold", "mappings_field")


@pytest.fixture(autouse=True)
def _model_kept_in_memory(monkeypatch):
    monkeypatch.setattr(shapes, "CACHE_SECONDS", 600.0)  # a slow machine must not reread it mid-test


@pytest.fixture
def flow():
    shop, books = SystemFactory(name="Shop", slug="shop"), SystemFactory(name="Books", slug="books")
    return flow_with_mapping(
        source_model=model_with_fields(
            shop, "Order", "/orders", "id! total:number! customer.email! lines[].sku"
        ),
        target_model=model_with_fields(books, "Invoice", "/invoices", "ref! amount:number"),
        rules=[{"target": "ref", "source": "id"}, {"target": "amount", "source": "total"}],
        drift_policy=DriftPolicy.HOLD,
    )


def order(n: int, **extra) -> dict:
    return {"id": f"o{n}", "total": 10.5 + n, "customer": {"email": f"c{n}@example.com"},
            "lines": [{"sku": f"S{n}"}, {"sku": "T"}], **extra}  # fmt: skip


def store(flow, *numbers: int, **extra) -> None:
    events_store(
        [
            IncomingEvent(flow.source_system, "order.paid", f"k{n}", {"data": order(n, **extra)})
            for n in numbers
        ]
    )


def drift_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if any(table in q["sql"] for table in DRIFT_TABLES)]


def test_a_known_shape_is_neither_compared_nor_queried(flow):
    store(flow, 1)
    assert stats.comparisons == 1
    with CaptureQueriesContext(connection) as queries:
        for n in range(2, 22):
            store(flow, n)
    assert stats.comparisons == 1
    assert drift_queries(queries) == []
    assert not SchemaDrift.objects.exists()


def test_a_known_drifted_shape_is_counted_with_one_update_per_group(flow):
    store(flow, 1, coupon="X")
    assert stats.comparisons == 1
    with CaptureQueriesContext(connection) as queries:
        store(flow, 2, 3, 4, coupon="Y")
    assert stats.comparisons == 1
    writes = drift_queries(queries)
    assert sum("UPDATE" in sql and "schemadrift" in sql for sql in writes) == 1
    assert SchemaDrift.objects.get().events == 4


def test_a_restart_reads_known_shapes_back_instead_of_comparing_again(flow):
    store(flow, 1)
    store(flow, 2, coupon="X")
    assert stats.comparisons == 2
    forget_shapes()  # a new process
    with CaptureQueriesContext(connection) as queries:
        store(flow, 3)
        store(flow, 4, coupon="Y")
        store(flow, 5)
    assert stats.comparisons == 2
    assert sum("shapefingerprint" in sql for sql in drift_queries(queries)) == 1
    assert Event.objects.count() == 5 and SchemaDrift.objects.get().events == 2
