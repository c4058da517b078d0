"""Ops work the dead-letter inbox: replay (optionally with a fixed record) or discard, audited."""

import pytest

from dlq.models import DeadLetter
from hub.models import AuditEntry, Delivery, DeliveryStatus
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.dlq.letter_helpers import api_as
from tests.sandbox_helpers import drain_all, employee_event, hr_to_inventory_accounts, records

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def letter(fresh_sandbox):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
    bad = employee_event(1)
    bad["data"]["email"] = None  # empty: a record that lacks the field would be held as schema drift
    events_store([IncomingEvent(flow.source_system, "employee.hired", bad["id"], bad)])
    drain_all()
    return DeadLetter.objects.get()


def test_it_replays_a_dead_letter_with_a_corrected_record(letter, personas, fresh_sandbox):
    corrected = {**letter.delivery.source_record(), "email": "Fixed@Example.com"}
    response = api_as(personas["ops"]).post(
        f"/api/v1/dead-letters/{letter.pk}/replay/",
        {"corrected_record": corrected, "note": "added the missing email"},
        format="json",
    )
    assert response.status_code == 202, response.content
    assert response.json()["message"] == "The delivery of record emp_1 is being sent again."
    drain_all()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert [a["email"] for a in records(fresh_sandbox, "inventory", "accounts")] == ["fixed@example.com"]
    letter.refresh_from_db()
    assert letter.resolution == "replayed" and letter.resolved_by == personas["ops"]
    assert AuditEntry.objects.filter(verb="replay", actor=personas["ops"]).exists()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"corrected_record": {"a": NaN}}', "NaN is not a JSON value"),
        (b'{"corrected_record": {"a": "\\ud800"}}', "lone UTF-16 surrogate"),
        (b'{"corrected_record": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "nests deeper than 64 levels"),
        (b'{"corrected_record": {"a": 1e999}}', "too large to store"),
    ],
)
def test_it_answers_a_corrected_record_no_database_can_store_with_a_400(letter, personas, raw, reason):
    response = api_as(personas["ops"]).post(
        f"/api/v1/dead-letters/{letter.pk}/replay/", raw, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert reason in response.json()["error"]
    letter.refresh_from_db()
    assert letter.resolved_at is None


def test_it_refuses_to_replay_twice(letter, personas):
    ops = api_as(personas["ops"])
    assert ops.post(f"/api/v1/dead-letters/{letter.pk}/replay/", {}, format="json").status_code == 202
    again = ops.post(f"/api/v1/dead-letters/{letter.pk}/replay/", {}, format="json")
    assert again.status_code == 409 and "already replayed" in again.json()["error"]


def test_it_discards_only_with_a_reason(letter, personas):
    ops = api_as(personas["ops"])
    missing = ops.post(f"/api/v1/dead-letters/{letter.pk}/discard/", {}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()["fields"]
    done = ops.post(f"/api/v1/dead-letters/{letter.pk}/discard/", {"reason": "test data"}, format="json")
    assert done.status_code == 200 and done.json()["resolution"] == "discarded"
    entry = AuditEntry.objects.get(verb="discard")
    assert entry.diff == {"reason": "test data"} and entry.actor_name == "oscar-ops"


def test_it_lets_auditors_read_but_not_act(letter, personas):
    auditor = api_as(personas["auditor"])
    assert auditor.get("/api/v1/dead-letters/").status_code == 200
    assert auditor.post(f"/api/v1/dead-letters/{letter.pk}/replay/", {}, format="json").status_code == 403
    assert (
        auditor.post(f"/api/v1/dead-letters/{letter.pk}/discard/", {"reason": "x"}, format="json").status_code
        == 403
    )
    assert api_as(personas["outsider"]).get("/api/v1/dead-letters/").status_code == 403
    letter.refresh_from_db()
    assert letter.resolved_at is None


def test_it_pauses_and_resumes_a_flow_through_the_api(fresh_sandbox, personas):
    flow = hr_to_inventory_accounts(fresh_sandbox)
    ops = api_as(personas["ops"])
    paused = ops.post(f"/api/v1/flows/{flow.pk}/pause/", {"reason": "vendor maintenance"}, format="json")
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    events_store([IncomingEvent(flow.source_system, "employee.hired", "e1", employee_event(1))])
    from hub.pipeline.drain import deliveries_process_batch

    assert deliveries_process_batch() == 0  # paused: the delivery waits, nothing is lost
    assert api_as(personas["auditor"]).post(f"/api/v1/flows/{flow.pk}/resume/").status_code == 403
    resumed = ops.post(f"/api/v1/flows/{flow.pk}/resume/")
    assert resumed.status_code == 200 and resumed.json()["state"] == "active"
    drain_all()
    assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
    assert list(
        AuditEntry.objects.filter(target_type="flow").values_list("verb", flat=True).order_by("id")
    ) == ["pause", "resume"]


def test_it_answers_a_target_that_fails_then_recovers_after_replay(fresh_sandbox, personas):
    from tests.sandbox_helpers import control, dead_letter_of_a_failing_target

    letter = dead_letter_of_a_failing_target(fresh_sandbox)
    control(fresh_sandbox, "inventory", "DELETE", "faults")
    api_as(personas["ops"]).post(f"/api/v1/dead-letters/{letter.pk}/replay/", {}, format="json")
    drain_all()
    assert len(records(fresh_sandbox, "inventory", "accounts")) == 1


def test_it_refuses_a_corrected_record_that_is_not_an_object(letter, personas):
    response = api_as(personas["ops"]).post(
        f"/api/v1/dead-letters/{letter.pk}/replay/",
        {"corrected_record": ["not", "a", "record"]},
        format="json",
    )
    assert response.status_code == 400 and "corrected_record" in response.json()["fields"]
    letter.refresh_from_db()
    assert letter.resolved_at is None
