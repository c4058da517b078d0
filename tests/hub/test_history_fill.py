"""`history_fill` fills a scratch database with a realistic history quickly; `history_explain`
shows the searches use their indexes on PostgreSQL."""

import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from dlq.models import DeadLetter
from hub.models import Attempt, Delivery, DeliveryStatus, Event, FlowState
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.selectors.history import HistoryFilters, history_events, history_page
from tests.history_helpers import order_event, orders_paid, shop_flows

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_fills_events_deliveries_attempts_and_dead_letters():
    call_command("history_fill", deliveries=4000, stdout=io.StringIO())
    assert Event.objects.count() == 2000 and Delivery.objects.count() == 4000
    statuses = {status: Delivery.objects.filter(status=status).count() for status in DeliveryStatus.values}
    assert statuses[DeliveryStatus.SUCCEEDED] > 3500 and statuses[DeliveryStatus.DEAD] > 20
    assert DeadLetter.objects.count() == statuses[DeliveryStatus.DEAD]
    assert Attempt.objects.filter(mapping_version=1).count() >= 3500
    assert set(Delivery.objects.values_list("flow__state", flat=True)) == {FlowState.PAUSED}
    (event,) = history_page(HistoryFilters(record="ord_1042"), size=1).events
    assert event.record()["number"] == "1042"


def test_the_pipeline_keeps_inserting_after_a_fill(fresh_sandbox):
    call_command("history_fill", deliveries=200, stdout=io.StringIO(), force=True)
    invoices, _ = shop_flows(fresh_sandbox)
    events_store([IncomingEvent(invoices.source_system, "order.paid", "evt_1", order_event(1))])
    assert Delivery.objects.count() == 202  # new delivery ids follow the filled ones


def test_it_refuses_a_database_with_real_events(fresh_sandbox):
    invoices, _ = shop_flows(fresh_sandbox)
    orders_paid(invoices, order_event(1))
    with pytest.raises(CommandError, match="real events"):
        call_command("history_fill", deliveries=10, stdout=io.StringIO())


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")
@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (HistoryFilters(text="1042"), "event_payload_trgm_idx"),
        (HistoryFilters(text="BUYER1042@example.com"), "event_payload_trgm_idx"),
        (HistoryFilters(record="ord_1042"), "event_record_idx"),
        (HistoryFilters(record="inv_1042"), "delivery_target_idx"),
    ],
)
def test_the_searches_can_use_their_indexes_on_postgresql(filters, index):
    call_command("history_fill", deliveries=2000, stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # plan as for a large table
    assert index in history_events(filters).order_by().values("pk").explain()


def test_history_explain_times_every_search_on_postgresql():
    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="PostgreSQL"):
            call_command("history_explain")
        return
    call_command("history_fill", deliveries=2000, stdout=io.StringIO())
    out = io.StringIO()
    call_command("history_explain", stdout=out)
    timed = [re.search(r"([\d.]+) ms  (.+?)  \[", line) for line in out.getvalue().splitlines()[1:]]
    assert len(timed) == 14 and all(float(match.group(1)) < 1000 for match in timed)
