"""The delivery engine against a real sandbox over loopback: every outcome of the taxonomy."""

import json
import threading
import time

import pytest

from dlq.models import DeadLetter
from hub.models import Attempt, AuditEntry, Delivery, DeliveryStatus, Flow, FlowState, RecordLink
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
    assert letter.reason == "Gave up after 4 attempts: POST /accounts answered 500: internal server error"
    assert letter.last_response["status"] == 500
    assert Attempt.objects.filter(delivery=delivery, error_class="server_error").count() == 4
    assert records(fresh_sandbox, "inventory", "accounts") == []


def test_it_retries_server_errors_and_ends_with_one_record(flow, fresh_sandbox):
    fault(fresh_sandbox, "inventory", mode="503", count=2)
    ingest(flow, employee_event(1))
    drain_all()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert list(Attempt.objects.filter(delivery=delivery).values_list("error_class", flat=True)) == [
        "server_error",
        "server_error",
        "",
    ]
    assert len(records(fresh_sandbox, "inventory", "accounts")) == 1


def looked_up_by_email(flow):
    """Inventory lists accounts filtered by any field: email is the accounts' external id."""
    flow.target_model.lookup_field = "email"
    flow.target_model.save()
    return flow


def posts(sandbox) -> int:
    return sum(1 for r in control(sandbox, "inventory", "GET", "requests") if r["method"] == "POST")


@pytest.mark.parametrize("mode", ["drop", "drop_after"])
def test_a_create_whose_answer_was_lost_is_looked_up_before_it_is_sent_again(flow, fresh_sandbox, mode):
    # "drop" loses the request before the target writes it, "drop_after" after: either way the
    # hub cannot tell, so it looks for the record by its external id instead of posting blindly.
    looked_up_by_email(flow)
    fault(fresh_sandbox, "inventory", mode=mode, count=1, methods=["POST"])
    ingest(flow, employee_event(1))
    drain_all()
    delivery = Delivery.objects.get()
    accounts = records(fresh_sandbox, "inventory", "accounts")
    assert len(accounts) == 1 and delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.target_id == accounts[0]["id"] and not delivery.maybe_sent
    assert RecordLink.objects.get(flow=flow).target_id == accounts[0]["id"]
    classes = list(Attempt.objects.filter(delivery=delivery).values_list("error_class", flat=True))
    assert classes == ["outcome_unknown", ""]
    assert posts(fresh_sandbox) == (2 if mode == "drop" else 1)  # found, so never sent again


def test_without_a_lookup_a_create_whose_answer_was_lost_waits_for_an_operator(flow, fresh_sandbox):
    fault(fresh_sandbox, "inventory", mode="drop_after", count=1, methods=["POST"])
    ingest(flow, employee_event(1))
    drain_all()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.UNKNOWN and delivery.maybe_sent
    letter = DeadLetter.objects.get()
    assert letter.error_class == "outcome_unknown"
    assert "declares no lookup" in letter.reason
    assert posts(fresh_sandbox) == 1 and len(records(fresh_sandbox, "inventory", "accounts")) == 1
    # A later change to the same record waits too: sent on, it would create the record again.
    ingest(flow, {**employee_event(1, email="ann.other@example.com"), "id": "evt_later"})
    assert deliveries_process_batch() == 0
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 1
    assert posts(fresh_sandbox) == 1


@pytest.mark.parametrize("lookup", [True, False])
def test_a_success_whose_answer_cannot_be_read_is_a_success_not_a_retry(flow, fresh_sandbox, lookup):
    if lookup:
        looked_up_by_email(flow)
    fault(fresh_sandbox, "inventory", mode="garbage", count=1, methods=["POST"])
    ingest(flow, employee_event(1))
    drain_all()
    delivery = Delivery.objects.get()
    accounts = records(fresh_sandbox, "inventory", "accounts")
    assert len(accounts) == 1 and delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1
    # With a lookup the hub finds the new record's id; without one the link waits, id unknown.
    expected = accounts[0]["id"] if lookup else ""
    assert delivery.target_id == expected and RecordLink.objects.get(flow=flow).target_id == expected


def test_it_does_not_duplicate_when_the_target_acted_but_answered_too_late(flow, fresh_sandbox):
    # "slow" writes the record after the delay: the first try times out although the record was
    # made. The retry looks it up by email instead of creating it again.
    looked_up_by_email(flow)
    flow.target_system.read_timeout = 0.5
    flow.target_system.save()
    fault(fresh_sandbox, "inventory", mode="slow", delay=1.0, count=1, methods=["POST"])
    ingest(flow, employee_event(1))
    deliveries_process_batch()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING and delivery.last_error_class == "outcome_unknown"
    wait_for(
        lambda: any(r["fault"] == "slow" for r in control(fresh_sandbox, "inventory", "GET", "requests")),
        timeout=5,
        interval=0.05,
        message="the slow request to be answered",
    )
    drain_all()
    delivery.refresh_from_db()
    accounts = records(fresh_sandbox, "inventory", "accounts")
    assert len(accounts) == 1 and delivery.target_id == accounts[0]["id"]
    assert delivery.status == DeliveryStatus.SUCCEEDED and posts(fresh_sandbox) == 1


def test_it_hands_back_what_it_has_not_tried_when_asked_to_stop_midway(flow, fresh_sandbox):
    flow.target_system.max_in_flight = 1  # one call at a time, so five are still waiting
    flow.target_system.save()
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


def test_an_auth_failure_pauses_every_flow_to_that_system_once_and_holds_the_events(flow, fresh_sandbox):
    second = flow_with_mapping(
        source_model=flow.source_model,
        target_model=flow.target_model,
        rules=flow.mapping.rules,
        event_type="employee.left",
        name="Leavers",
    )
    target = flow.target_system
    target.credentials = {"api_key": "wrong-key-123"}
    target.max_in_flight = 1  # one call at a time: the refusal comes back before a second starts
    target.save()
    for n in range(1, 6):
        ingest(flow, employee_event(n))
    deliveries_process_batch()
    flow.refresh_from_db()
    second.refresh_from_db()
    assert flow.state == second.state == FlowState.PAUSED
    assert "refused the hub's credentials" in flow.paused_reason
    assert AuditEntry.objects.filter(verb="pause", target_type="flow").count() == 2  # once per flow
    # Nothing dead-lettered, nothing lost: one call was refused, the rest were not even tried.
    assert not DeadLetter.objects.exists()
    assert Attempt.objects.filter(error_class="auth_failure").count() == 1
    assert set(Delivery.objects.values_list("status", flat=True)) <= {
        DeliveryStatus.PENDING,
        DeliveryStatus.RETRYING,
    }
    # Fixed and resumed, they all go out.
    target.credentials = {"api_key": "inv-demo-key"}
    target.save()
    Flow.objects.filter(pk__in=[flow.pk, second.pk]).update(state=FlowState.ACTIVE, paused_reason="")
    drain_all()
    assert Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 5
    assert len(records(fresh_sandbox, "inventory", "accounts")) == 5


def test_it_dead_letters_a_record_the_mapping_cannot_fill_without_calling_the_target(flow, fresh_sandbox):
    ingest(
        flow,
        {
            "id": "evt_x",
            "type": "employee.hired",
            "data": {"id": "emp_x", "first_name": "No", "last_name": "Mail", "email": None},
        },
    )
    drain_all()
    letter = DeadLetter.objects.get()
    assert letter.error_class == "contract_violation"
    # One message, punctuated once, naming the rule: not "…accepts.: for…".
    lead = "The mapped record breaks what the target accepts: "
    assert letter.reason.startswith(lead)
    assert (
        ".:" not in letter.reason
        and "rule 1, email ← email, then Lower case, produced nothing" in letter.reason
    )
    assert letter.message == letter.reason.removeprefix(lead)
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


def test_a_drain_past_its_deadline_hands_back_the_rest_before_the_next_call(flow, fresh_sandbox):
    # The task queue kills a drain that overruns; checking the deadline only between batches let
    # it be killed mid-call on a slow target. It is checked before every call.
    flow.target_system.max_in_flight = 1  # one call at a time, so five are still waiting
    flow.target_system.save()
    for n in range(6):
        ingest(flow, employee_event(n))
    fault(fresh_sandbox, "inventory", mode="slow", delay=0.5, count=1, methods=["POST"])
    assert deliveries_process_batch(deadline=time.monotonic() + 0.2) == 6
    first = Delivery.objects.order_by("id").first()
    assert first.status == DeliveryStatus.SUCCEEDED  # the call under way was finished and recorded
    rest = Delivery.objects.exclude(pk=first.pk)
    assert set(rest.values_list("status", "attempts", "lease_token")) == {(DeliveryStatus.PENDING, 0, None)}
    drain_all()
    assert len(records(fresh_sandbox, "inventory", "accounts")) == 6


def test_calls_to_a_target_go_out_at_once_up_to_its_calls_at_once(flow, fresh_sandbox):
    # A slow target: one call at a time, a batch of 12 would wait for 12 answers in a row.
    flow.target_system.max_in_flight = 4
    flow.target_system.save()
    for n in range(12):
        ingest(flow, employee_event(n))
    fault(fresh_sandbox, "inventory", mode="slow", delay=0.3, rate=1.0, methods=["POST"])
    assert deliveries_process_batch() == 12
    posts = [r for r in control(fresh_sandbox, "inventory", "GET", "requests") if r["method"] == "POST"]
    assert most_at_once(posts) == 4  # as many as allowed, and never more
    assert Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 12
    assert len(records(fresh_sandbox, "inventory", "accounts")) == 12


def most_at_once(requests: list[dict]) -> int:
    """The most requests the target was answering at the same moment, from its request log."""
    edges = sorted(
        [(r["received_at"], 1) for r in requests]
        + [(r["received_at"] + r["duration_ms"] / 1000, -1) for r in requests]
    )
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most
