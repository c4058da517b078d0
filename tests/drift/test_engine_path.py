"""The engine's group commit checks shapes too: webhooks from many senders at once, some with a
mapped field renamed, reach a real `manage.py engine`; the drifted ones are held in the same
groups, the others delivered, and every one is delivered once after the fix."""

import pytest

from hub.models import DeliveryStatus, DriftPolicy, Event, SchemaDrift
from hub.services.drift import drift_model_update, drift_release
from hub.services.mappings import mapping_version_save
from tests.conftest import wait_for
from tests.drift.helpers import assert_each_delivered_once, statuses
from tests.engine.test_engine import send, send_from_many
from tests.sandbox_helpers import drain_all, employee_event, hr_to_inventory_accounts

pytestmark = pytest.mark.django_db(transaction=True)


def renamed(n: int) -> dict:
    event = employee_event(n)
    event["data"]["work_email"] = event["data"].pop("email")
    return event


def test_the_engine_holds_drifted_webhooks_and_delivers_the_rest(fresh_sandbox, start_engine, personas):
    flow = hr_to_inventory_accounts(fresh_sandbox, drift_policy=DriftPolicy.REPORT)
    engine = start_engine()
    assert send(engine, flow, employee_event(0)).status_code == 202
    payloads = [renamed(n) if n % 3 == 0 else employee_event(n) for n in range(1, 31)]
    answers = send_from_many(engine, flow, payloads, senders=8)
    assert {a.status_code for a in answers} == {202}
    wait_for(lambda: statuses(flow).get(DeliveryStatus.SUCCEEDED) == 21, timeout=60, message="the deliveries")
    assert Event.objects.count() == 31
    assert statuses(flow) == {DeliveryStatus.SUCCEEDED: 21, DeliveryStatus.HELD: 10}
    drift = SchemaDrift.objects.get(kind="renamed")
    assert (drift.path, drift.new_path, drift.events) == ("email", "work_email", 10)

    admin = personas["admin"]
    drift_model_update(drift=drift, actor=admin)
    rules = [{**r, "source": "work_email"} if r.get("source") == "email" else r for r in flow.mapping.rules]
    mapping_version_save(mapping=flow.mapping, rules=rules, actor=admin)
    assert drift_release(drift=drift, actor=admin) == 10
    drain_all()
    assert_each_delivered_once(flow, fresh_sandbox, 31)
