"""Rules read what the real pipeline writes: a target that refuses our credentials pauses the flow
(auto_pause fires, a person's pause does not), a target that fails every try dead-letters
(dead_letters fires) and a target that cannot be reached at all opens the circuit, seen across
workers through the shared attempt log (circuit_open fires)."""

import pytest

from hub.alerts.models import Alert
from hub.models import Flow, FlowState
from hub.pipeline.drain import deliveries_process_batch
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.services.flows import flow_pause
from tests.alerts.helpers import evaluate, only_rule
from tests.sandbox_helpers import dead_letter_of_a_failing_target, employee_event, hr_to_inventory_accounts

pytestmark = pytest.mark.django_db(transaction=True)


def hired(flow: Flow, n: int) -> None:
    events_store(
        [
            IncomingEvent(flow.source_system, "employee.hired", f"e{i}", employee_event(i))
            for i in range(1, n + 1)
        ]
    )


def firing(kind: str) -> Alert | None:
    return Alert.objects.firing().filter(rule__kind=kind).first()


def test_an_auth_failure_pauses_the_flow_and_the_auto_pause_rule_fires(fresh_sandbox):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
    only_rule(flow, "auto_pause")
    target = flow.target_system
    target.credentials = {"api_key": "wrong-key-123"}
    target.save()
    hired(flow, 1)
    deliveries_process_batch()
    evaluate()
    alert = firing("auto_pause")
    assert alert is not None
    assert alert.summary.startswith(
        "paused automatically: Inventory refused the hub's credentials (POST /accounts answered 401"
    )


def test_a_person_pausing_a_flow_is_not_an_alert(fresh_sandbox, personas):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
    only_rule(flow, "auto_pause")
    flow_pause(flow=flow, actor=personas["ops"], reason="maintenance window")
    evaluate()
    assert Flow.objects.get(pk=flow.pk).state == FlowState.PAUSED
    assert not Alert.objects.exists()


def test_a_dead_letter_fires_the_dead_letter_rule(fresh_sandbox):
    letter = dead_letter_of_a_failing_target(fresh_sandbox)
    only_rule(letter.flow, "dead_letters", threshold=1, window_minutes=15)
    evaluate()
    assert firing("dead_letters").summary == "1 new in the last 15 minutes; 1 open in the dead-letter inbox"


def test_a_target_that_cannot_be_reached_is_alerted_after_five_failed_connections_in_a_row(fresh_sandbox):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
    only_rule(flow, "circuit_open", window_minutes=5)
    target = flow.target_system
    target.base_url = "http://127.0.0.1:9"  # nothing listens there
    target.save()
    hired(flow, 5)
    deliveries_process_batch()
    evaluate()
    alert = firing("circuit_open")
    assert alert is not None and alert.summary.startswith("5 failed connections in a row to Inventory")
