"""The delivery engine against a real sandbox over loopback: every outcome of the taxonomy."""

import json
import threading

import pytest

from dlq.models import DeadLetter
from hub.models import Attempt, AuditEntry, Delivery, DeliveryStatus, FlowState, RecordLink
from hub.pipeline import clock, dispatch
from hub.pipeline.drain import deliveries_process_batch
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.conftest import wait_for
from tests.factories import flow_with_mapping, model_with_fields
from tests.sandbox_helpers import (
    control,
    drain_all,
    employee_event,
    fault,
    hr_to_inventory_accounts,
    records,
    sandbox_system,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def flow(fresh_sandbox):
    return hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")


def ingest(flow, payload, event_type="employee.hired"):
    return events_store([IncomingEvent(flow.source_system, event_type, payload["id"], payload)])[0]


def test_it_creates_the_target_record_and_links_it(flow, fresh_sandbox):
    ingest(flow, employee_event(1))
    drain_all()
    accounts = records(fresh_sandbox, "inventory", "accounts")
    assert [(a["email"], a["name"], a["role"]) for a in accounts] == [
        ("ann.lee1@example.com", "Ann Lee1", "staff")
    ]
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.target_id == accounts[0]["id"]
    assert RecordLink.objects.get(flow=flow, source_id="emp_1").target_id == accounts[0]["id"]


def test_it_updates_the_linked_record_for_a_later_event_about_the_same_source_record(flow, fresh_sandbox):
    ingest(flow, employee_event(1, record_id="emp_7"))
    drain_all()
    ingest(flow, {**employee_event(2, record_id="emp_7", email="ann.new@example.com"), "id": "evt_later"})
    drain_all()
    accounts = records(fresh_sandbox, "inventory", "accounts")
    assert len(accounts) == 1
    assert accounts[0]["email"] == "ann.new@example.com"


def test_it_delivers_changes_to_one_record_in_order(flow, fresh_sandbox):
    for n in range(1, 6):
        ingest(flow, {**employee_event(n, record_id="emp_same"), "id": f"evt_{n}"})
    drain_all()
    accounts = records(fresh_sandbox, "inventory", "accounts")
    assert len(accounts) == 1
    assert accounts[0]["name"] == "Ann Lee5"


def test_it_retries_after_429_honouring_retry_after_then_succeeds(flow, fresh_sandbox):
    fault(fresh_sandbox, "inventory", mode="429", count=1)
    ingest(flow, employee_event(1))
    drain_all()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 2
    first, second = Attempt.objects.filter(delivery=delivery).order_by("number")
    assert first.error_class == "rate_limited"
    assert (second.started_at - first.started_at).total_seconds() >= 0.95  # Retry-After: 1
    assert len(records(fresh_sandbox, "inventory", "accounts")) == 1


def test_it_dead_letters_after_the_attempt_limit_when_the_target_fails_forever(flow, fresh_sandbox):
    fault(fresh_sandbox, "inventory", mode="500", rate=1.0, methods=["POST"])
    ingest(flow, employee_event(1))
    drain_all()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DEAD and delivery.attempts == flow.max_attempts
    letter = DeadLetter.objects.get(delivery=delivery)
    assert letter.error_class == "server_error"
    assert "gave up after 4 attempts" in letter.reason
    assert letter.last_response["status"] == 500
    assert Attempt.objects.filter(delivery=delivery, error_class="server_error").count() == 4
    assert records(fresh_sandbox, "inventory", "accounts") == []


@pytest.mark.parametrize(
    ("mode", "error_class"),
    [("garbage", "malformed_response"), ("drop", "unreachable"), ("503", "server_error")],
)
def test_it_retries_transient_failures_and_ends_with_one_record(flow, fresh_sandbox, mode, error_class):
    fault(fresh_sandbox, "inventory", mode=mode, count=2)
    ingest(flow, employee_event(1))
    drain_all()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert list(Attempt.objects.filter(delivery=delivery).values_list("error_class", flat=True)) == [
        error_class,
        error_class,
        "",
    ]
    assert len(records(fresh_sandbox, "inventory", "accounts")) == 1


def test_it_does_not_duplicate_when_the_target_acted_but_answered_too_late(flow, fresh_sandbox):
    # "slow" applies the change after the delay: the first try times out although the record was
    # made; the retry carries the same Idempotency-Key, so the target answers with that record.
    flow.target_system.read_timeout = 0.5
    flow.target_system.save()
    fault(fresh_sandbox, "inventory", mode="slow", delay=1.0, count=1)
    ingest(flow, employee_event(1))
    drain_all()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert Attempt.objects.filter(delivery=delivery).first().error_class == "timeout"
    # Let the first, slow request land too (and not leak into the next test's sandbox).
    wait_for(
        lambda: any(r["fault"] == "slow" for r in control(fresh_sandbox, "inventory", "GET", "requests")),
        timeout=5,
        interval=0.05,
        message="the slow request to be answered",
    )
    accounts = records(fresh_sandbox, "inventory", "accounts")
    assert len(accounts) == 1 and delivery.target_id == accounts[0]["id"]


def test_it_hands_back_what_it_has_not_tried_when_asked_to_stop_midway(flow, fresh_sandbox):
    for n in range(6):
        ingest(flow, employee_event(n))
    fault(fresh_sandbox, "inventory", mode="slow", delay=1.0, count=1)
    # The stop comes while the first delivery waits for its slow answer.
    stop = threading.Timer(0.3, dispatch.request_stop)
    stop.start()
    assert deliveries_process_batch() == 6
    stop.join()
    first = Delivery.objects.order_by("id").first()
    assert first.status == DeliveryStatus.SUCCEEDED  # the call under way was finished and recorded
    rest = Delivery.objects.exclude(pk=first.pk)
    assert list(rest.values_list("status", "attempts", "lease_token").distinct()) == [
        (DeliveryStatus.PENDING, 0, None)
    ]
    assert all(d.next_attempt_at <= clock.now() for d in rest)  # due again at once, not at lease expiry
    dispatch.forget_stop()
    drain_all()
    assert Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 6
    assert Attempt.objects.count() == 6
    assert len(records(fresh_sandbox, "inventory", "accounts")) == 6


def test_it_dead_letters_an_auth_failure_and_pauses_the_flow(flow, fresh_sandbox):
    target = flow.target_system
    target.credentials = {"api_key": "wrong-key-123"}
    target.save()
    ingest(flow, employee_event(1))
    ingest(flow, employee_event(2))
    deliveries = Delivery.objects.order_by("id")
    deliveries_process_batch()
    flow.refresh_from_db()
    assert flow.state == FlowState.PAUSED and "credentials" in flow.paused_reason
    assert DeadLetter.objects.filter(error_class="auth_failure").count() >= 1
    assert AuditEntry.objects.filter(verb="pause", target_type="flow").exists()
    # Nothing is lost: what was not attempted waits for the flow to be resumed.
    statuses = set(deliveries.values_list("status", flat=True))
    assert statuses <= {DeliveryStatus.DEAD, DeliveryStatus.PENDING, DeliveryStatus.RETRYING}


def test_it_dead_letters_a_record_the_mapping_cannot_fill_without_calling_the_target(flow, fresh_sandbox):
    ingest(flow, {"id": "evt_x", "type": "employee.hired", "data": {"id": "emp_x", "first_name": "No"}})
    drain_all()
    letter = DeadLetter.objects.get()
    assert letter.error_class == "mapping_error"
    assert "email" in letter.reason
    assert records(fresh_sandbox, "inventory", "accounts") == []


def test_it_dead_letters_what_the_target_rejects(fresh_sandbox):
    flow = hr_to_inventory_accounts(fresh_sandbox)
    version = flow.mapping.current_version
    version.rules = [r for r in version.rules if r["target"] != "email"]
    version.save()
    flow.target_model.fields.filter(path="email").update(required=False)
    ingest(flow, employee_event(1))
    drain_all()
    letter = DeadLetter.objects.get()
    assert letter.error_class == "rejected" and "422" in letter.reason
    assert Delivery.objects.get().attempts == 1


def test_it_keeps_secrets_out_of_attempts_and_dead_letters(flow, fresh_sandbox):
    fault(fresh_sandbox, "inventory", mode="500", rate=1.0, methods=["POST"])
    ingest(flow, employee_event(1))
    drain_all()
    stored = json.dumps(list(Attempt.objects.values()), default=str) + json.dumps(
        list(DeadLetter.objects.values()), default=str
    )
    assert "inv-demo-key" not in stored
    assert "[redacted]" in stored


def test_it_redacts_a_secret_the_target_echoes_back_in_its_error(fresh_sandbox):
    # The inventory answers an unknown SKU with a 422 that repeats the SKU: send it the API key.
    hr = sandbox_system(fresh_sandbox, "hr")
    inventory = sandbox_system(fresh_sandbox, "inventory")
    source = model_with_fields(hr, "Employee", "/employees", "id!")
    target = model_with_fields(inventory, "Adjustment", "/adjustments", "reference!")
    flow = flow_with_mapping(
        source_model=source,
        target_model=target,
        rules=[
            {"target": "reference", "source": "id"},
            {"target": "lines[].sku", "source": "skus[]"},
            {"target": "lines[].quantity", "constant": 1},
        ],
    )
    ingest(flow, {"id": "evt_1", "type": "employee.hired", "data": {"id": "emp_1", "skus": ["inv-demo-key"]}})
    drain_all()
    letter = DeadLetter.objects.get()
    assert letter.error_class == "rejected" and "[redacted]" in letter.reason
    stored = (
        json.dumps(list(Attempt.objects.values()), default=str)
        + json.dumps(list(DeadLetter.objects.values()), default=str)
        + json.dumps(list(Delivery.objects.values()), default=str)
    )
    assert "inv-demo-key" not in stored
