"""Scheduled consistency: paging from a cursor misses nothing and repeats nothing (promise 1, 2)."""

from collections import Counter

import pytest
from django_q.models import Schedule

from hub.models import Cursor, Delivery, Event, Trigger
from hub.pipeline import dispatch
from hub.pipeline.polling import cursor_order, flow_poll
from hub.pipeline.schedules import poll_schedule_name
from hub.tasks import flow_poll_task
from tests.sandbox_helpers import control, drain_all, fault, records, sandbox_flow

pytestmark = pytest.mark.django_db(transaction=True)
STAMP = "2026-11-20T09:00:00.000000Z"


@pytest.fixture
def scheduled_flow(fresh_sandbox):
    return sandbox_flow(
        fresh_sandbox,
        "crm Deal /deals id! amount:number! currency!",
        "accounting Invoice /invoices number! customer_email! total_minor:integer! currency!",
        trigger=Trigger.SCHEDULED,
        schedule_minutes=15,
        poll_page_size=10,
        rules=[
            {"target": "number", "transforms": [{"name": "template", "options": {"template": "INV-{id}"}}]},
            {
                "target": "total_minor",
                "source": "amount",
                "transforms": [{"name": "money_to_minor", "options": {"currency_path": "currency"}}],
            },
            {"target": "currency", "source": "currency"},
            {"target": "customer_email", "source": "customer.email"},
            {"target": "status", "constant": "open"},
        ],
    )


def seed_deals(sandbox, count: int, start: int, updated_at: str | None = STAMP):
    deals = [
        {
            "title": f"Deal {n}",
            "amount": 10 + n,
            "currency": "EUR",
            "stage": "won",
            "customer": {"email": f"buyer{n}@example.com"},
        }
        for n in range(start, start + count)
    ]
    return control(
        sandbox, "crm", "POST", "seed", json={"resource": "deals", "records": deals, "updated_at": updated_at}
    )["data"]


def test_it_reads_every_record_once_across_pages_of_records_sharing_one_cursor_value(
    scheduled_flow, fresh_sandbox
):
    seed_deals(fresh_sandbox, 25, 0)
    first = flow_poll(flow=scheduled_flow)
    assert (first.pages, first.new_events) == (3, 25)
    assert Cursor.objects.get(flow=scheduled_flow).value == STAMP

    # More records land on the very same timestamp, and some later ones.
    seed_deals(fresh_sandbox, 5, 100)
    seed_deals(fresh_sandbox, 3, 200, updated_at="2026-11-20T09:00:01.000000Z")
    second = flow_poll(flow=scheduled_flow)
    assert second.new_events == 8
    assert Cursor.objects.get(flow=scheduled_flow).value == "2026-11-20T09:00:01.000000Z"

    third = flow_poll(flow=scheduled_flow)
    assert third.new_events == 0

    drain_all()
    invoices = records(fresh_sandbox, "accounting", "invoices")
    numbers = Counter(i["number"] for i in invoices)
    assert len(numbers) == 33 and max(numbers.values()) == 1
    assert Delivery.objects.filter(flow=scheduled_flow).count() == 33


def test_it_picks_up_a_changed_record_again_as_an_update(scheduled_flow, fresh_sandbox):
    deal = seed_deals(fresh_sandbox, 1, 0)[0]
    flow_poll(flow=scheduled_flow)
    drain_all()
    import requests

    requests.patch(
        f"{fresh_sandbox.url('crm')}/deals/{deal['id']}",
        json={"amount": 99},
        headers={"X-Api-Key": "crm-demo-key"},
        timeout=5,
    ).raise_for_status()
    assert flow_poll(flow=scheduled_flow).new_events == 1
    drain_all()
    invoices = records(fresh_sandbox, "accounting", "invoices")
    assert len(invoices) == 1 and invoices[0]["total_minor"] == 9900


def test_it_keeps_the_cursor_where_it_was_when_the_source_fails(scheduled_flow, fresh_sandbox):
    seed_deals(fresh_sandbox, 25, 0)
    fault(fresh_sandbox, "crm", mode="500", count=1)
    failed = flow_poll(flow=scheduled_flow)
    assert failed.error.startswith("server_error")
    assert Cursor.objects.get(flow=scheduled_flow).value == ""
    assert Event.objects.count() == 0
    assert flow_poll(flow=scheduled_flow).new_events == 25


def test_it_reads_no_further_page_once_the_worker_is_stopping(scheduled_flow, fresh_sandbox):
    seed_deals(fresh_sandbox, 25, 0)
    dispatch.request_stop()
    stopped = flow_poll(flow=scheduled_flow)
    assert (stopped.pages, stopped.new_events) == (0, 0)
    assert "stopping" in stopped.error
    assert Cursor.objects.get(flow=scheduled_flow).value == ""
    dispatch.forget_stop()
    assert flow_poll(flow=scheduled_flow).new_events == 25


def test_it_refuses_a_second_poll_of_the_same_flow_while_one_runs(scheduled_flow):
    from datetime import timedelta

    from django.utils import timezone

    Cursor.objects.create(flow=scheduled_flow, polling_until=timezone.now() + timedelta(minutes=5))
    assert "another poll" in flow_poll(flow=scheduled_flow).skipped


def test_it_keeps_a_django_q_schedule_per_scheduled_flow(scheduled_flow):
    schedule = Schedule.objects.get(name=poll_schedule_name(scheduled_flow.pk))
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == ("hub.tasks.flow_poll_task", "I", 15)
    scheduled_flow.schedule_minutes, scheduled_flow.schedule_cron = None, "0 2 * * 1-5"
    scheduled_flow.save()
    schedule.refresh_from_db()
    assert (schedule.schedule_type, schedule.cron) == ("C", "0 2 * * 1-5")
    scheduled_flow.trigger = Trigger.REALTIME
    scheduled_flow.save()
    assert not Schedule.objects.filter(name=poll_schedule_name(scheduled_flow.pk)).exists()


def test_it_runs_the_poll_task_by_flow_id(scheduled_flow, fresh_sandbox):
    seed_deals(fresh_sandbox, 2, 0)
    assert flow_poll_task(scheduled_flow.pk).startswith("2 records read in 1 pages, 2 new")
    assert flow_poll_task(999999) == "flow no longer exists"


def test_it_orders_cursor_values_by_time_not_text():
    assert cursor_order("2026-11-20T09:00:00Z") < cursor_order("2026-11-20T10:00:00+00:00")
    assert cursor_order("2026-11-20T11:00:00+02:00") < cursor_order("2026-11-20T10:00:00Z")
    assert cursor_order(9) < cursor_order("10")
