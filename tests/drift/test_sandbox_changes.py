"""A sandbox system's API changes the shape of what it sends (PUT /_control/shape): its signed
webhooks to the hub's live server, and the pages a scheduled flow polls. The hub holds what it
cannot map, keeps the cursor where it was, and delivers every held event once after the fix."""

import pytest

from hub.models import Cursor, DeliveryStatus, Event, SchemaDrift, Trigger
from hub.pipeline.polling import flow_poll
from hub.pipeline.subscriptions import flow_needs
from hub.selectors.drift import drift_breaks
from hub.services.drift import drift_model_update, drift_release
from hub.services.mappings import mapping_version_save
from tests.drift.helpers import accounts, assert_each_delivered_once, statuses
from tests.sandbox_helpers import (
    control,
    drain_all,
    hire_announced_to,
    hr_to_inventory_accounts,
    records,
    sandbox_flow,
)

pytestmark = pytest.mark.django_db(transaction=True)
STAMP = "2026-11-20T09:00:00.000000Z"


def wait_for_webhooks(sandbox) -> None:
    assert sandbox.system("hr").webhooks.wait_idle(timeout=10)


def test_hr_renaming_a_mapped_field_holds_its_webhooks_until_the_fix(fresh_sandbox, live_server, personas):
    flow = hr_to_inventory_accounts(fresh_sandbox)  # policy "report"
    hire_announced_to(
        fresh_sandbox, live_server.url, first_name="Ann", last_name="Lee", email="ann@example.com"
    )
    wait_for_webhooks(fresh_sandbox)
    drain_all()
    assert statuses(flow) == {DeliveryStatus.SUCCEEDED: 1}

    control(
        fresh_sandbox, "hr", "PUT", "shape", json={"resource": "employees", "rename": {"email": "work_email"}}
    )
    hire_announced_to(fresh_sandbox, live_server.url, first_name="Bo", last_name="Ng", email="bo@example.com")
    wait_for_webhooks(fresh_sandbox)
    drain_all()
    assert statuses(flow) == {DeliveryStatus.SUCCEEDED: 1, DeliveryStatus.HELD: 1}
    drift = SchemaDrift.objects.get(path="email")
    assert (drift.kind, drift.new_path, drift.events, drift_breaks(drift, flow_needs(flow))) == (
        "renamed",
        "work_email",
        1,
        True,
    )

    admin = personas["admin"]
    drift_model_update(drift=drift, actor=admin)
    rules = [
        {**rule, "source": "work_email"} if rule.get("source") == "email" else rule
        for rule in flow.mapping.rules
    ]
    mapping_version_save(mapping=flow.mapping, rules=rules, actor=admin)
    assert drift_release(drift=drift, actor=admin) == 1
    drain_all()
    assert_each_delivered_once(flow, fresh_sandbox, 2)
    assert sorted(a["email"] for a in accounts(fresh_sandbox)) == ["ann@example.com", "bo@example.com"]


def test_a_poll_holds_records_whose_cursor_field_went_and_keeps_the_cursor(fresh_sandbox, personas):
    flow = sandbox_flow(
        fresh_sandbox,
        "hr Employee /employees id! first_name! last_name! email! created_at:datetime updated_at:datetime!",
        "inventory Account /accounts email! name role",
        trigger=Trigger.SCHEDULED,
        schedule_minutes=15,
        drift_policy="report",
        rules=[
            {"target": "email", "source": "email"},
            {"target": "name", "source": "last_name"},
            {"target": "role", "constant": "staff"},
        ],
    )
    people = [{"first_name": "A", "last_name": f"L{n}", "email": f"p{n}@example.com"} for n in range(3)]
    control(
        fresh_sandbox,
        "hr",
        "POST",
        "seed",
        json={"resource": "employees", "records": people, "updated_at": STAMP},
    )
    total = len(records(fresh_sandbox, "hr", "employees"))
    control(
        fresh_sandbox,
        "hr",
        "PUT",
        "shape",
        json={"resource": "employees", "rename": {"updated_at": "modified_at"}},
    )
    flow_poll(flow=flow)
    assert Event.objects.count() == total  # none skipped for want of a cursor value
    assert statuses(flow) == {DeliveryStatus.HELD: total}
    assert Cursor.objects.get(pk=flow.pk).value == ""  # nothing to move it by
    drift = SchemaDrift.objects.get(path="updated_at")
    assert (drift.kind, drift.new_path, drift_breaks(drift, flow_needs(flow))) == (
        "renamed",
        "modified_at",
        True,
    )

    drift_model_update(drift=drift, actor=personas["admin"])
    flow.source_model.refresh_from_db()
    assert flow.source_model.cursor_field == "modified_at"  # the rename carries the cursor with it
    assert drift_release(drift=drift, actor=personas["admin"]) == total
    drain_all()
    assert_each_delivered_once(flow, fresh_sandbox, total)
    # Polled again with the new cursor field: the cursor moves, and the records (their content
    # changed with their shape, so they are read as changes) update the same accounts.
    flow_poll(flow=flow)
    drain_all()
    assert Cursor.objects.get(pk=flow.pk).value != ""
    assert len(accounts(fresh_sandbox)) == total
