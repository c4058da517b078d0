"""Retention: old event payloads and attempt bodies are emptied in batches on a schedule, while
delivery outcomes, dead letters and the audit trail stay; a payload that may still be sent or
replayed is never emptied."""

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from dlq.models import DeadLetter
from hub.models import Attempt, AuditEntry, Delivery, DeliveryStatus, Event
from hub.pipeline import clock
from hub.pipeline.schedules import RETENTION_SCHEDULE
from hub.services.audit import audit_append, audit_verify
from hub.services.retention import retention_purge
from hub.tasks import retention_purge_task
from tests.history_helpers import order_event, orders_paid, shop_flows

pytestmark = pytest.mark.django_db(transaction=True)
DAY = 86400


@pytest.fixture
def flows(fresh_sandbox):
    return shop_flows(fresh_sandbox)


def old_orders(flow, *numbers: int, days: int = 100, **event) -> None:
    with clock.travelled(-days * DAY):
        orders_paid(flow, *(order_event(n, **event) for n in numbers))


def test_it_empties_old_payloads_and_attempt_bodies_but_keeps_the_outcomes(flows):
    invoices, _ = flows
    old_orders(invoices, 1, 2, 3)
    orders_paid(invoices, order_event(4))  # recent: kept whole
    outcomes_before = list(
        Delivery.objects.order_by("id").values("status", "attempts", "target_id", "last_error")
    )
    report = retention_purge(days=90, batch_size=2)
    assert (report.events, report.attempts, report.finished) == (3, 3, True)
    old = Event.objects.exclude(record_id="ord_4")
    assert all(e.payload == {} and e.purged_at for e in old)
    assert Event.objects.get(record_id="ord_4").payload["data"]["number"] == "4"
    assert list(Delivery.objects.order_by("id").values("status", "attempts", "target_id", "last_error")) == (
        outcomes_before
    )
    purged = Attempt.objects.filter(delivery__event__in=old)
    assert purged.count() == 3 and all(a.request == {} and a.response == {} for a in purged)
    assert all(a.outcome == "succeeded" and a.mapping_version == 1 for a in purged)
    assert Attempt.objects.get(delivery__event__record_id="ord_4").request["method"] == "POST"
    assert retention_purge(days=90).events == 0  # nothing left to do


def test_it_never_empties_what_may_still_be_sent_or_replayed(flows, personas):
    invoices, _ = flows
    old_orders(invoices, 1, email="not an email")  # dead-lettered, the letter still open
    old_orders(invoices, 2)
    Delivery.objects.filter(event__record_id="ord_2", flow=invoices).update(status=DeliveryStatus.RETRYING)
    assert DeadLetter.objects.unresolved().count() == 1
    assert retention_purge(days=90).events == 0
    assert Event.objects.get(record_id="ord_1").payload and Event.objects.get(record_id="ord_2").payload
    letter = DeadLetter.objects.get()
    letter.resolved_at, letter.resolution = clock.now(), DeadLetter.Resolution.DISCARDED
    letter.save()
    assert retention_purge(days=90).events == 1  # the discarded one now; the retrying one still not


def test_it_keeps_the_audit_trail_forever_by_default(flows, settings):
    assert settings.HUB_RETENTION_DAYS == 90 and settings.HUB_AUDIT_RETENTION_DAYS == 0
    invoices, _ = flows
    with clock.travelled(-1000 * DAY):
        orders_paid(invoices, order_event(1))
    entries = AuditEntry.objects.count()
    assert entries and retention_purge().audit_entries == 0
    assert AuditEntry.objects.count() == entries


def test_an_audit_retention_removes_the_oldest_entries_and_records_where_the_chain_starts(settings):
    with clock.travelled(-400 * DAY):
        for n in range(3):
            audit_append(actor=None, verb="poll", target_type="flow", label=f"old {n}")
    for n in range(2):
        audit_append(actor=None, verb="poll", target_type="flow", label=f"new {n}")
    settings.HUB_AUDIT_RETENTION_DAYS = 365
    assert retention_purge().audit_entries == 3
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", "target_label")) == [
        (4, "new 0"),
        (5, "new 1"),
        (6, "entries through #3"),
    ]
    assert audit_verify().ok


def test_it_stops_at_its_time_budget_and_says_more_remain(flows):
    invoices, _ = flows
    old_orders(invoices, 1, 2)
    report = retention_purge(days=90, batch_size=1, max_seconds=0)
    assert report.finished is False and "more remain" in report.summary()


def test_the_hourly_schedule_exists_once_the_database_is_migrated_and_runs_the_purge(flows):
    schedule = Schedule.objects.get(name=RETENTION_SCHEDULE)
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        "hub.tasks.retention_purge_task",
        Schedule.HOURLY,
        -1,
    )
    call_command("migrate", interactive=False, verbosity=0)
    assert Schedule.objects.filter(name=RETENTION_SCHEDULE).count() == 1
    invoices, _ = flows
    old_orders(invoices, 1)
    assert retention_purge_task().startswith("emptied 1 event payloads and 1 attempt bodies")
