"""A create whose outcome is unknown waits for an operator, who checked the target: "it arrived"
(the delivery succeeds, linked to the target's id) or "send again" (created anew, no lookup)."""

import pytest

from dlq.models import DeadLetter
from dlq.services import DeadLetterError, dead_letter_arrived, dead_letter_replay, dead_letter_send_again
from hub.models import AuditEntry, Delivery, DeliveryStatus, RecordLink
from hub.pipeline.drain import deliveries_process_batch
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.dlq.letter_helpers import api_as, letters_without_email, outcome_unknown_letter
from tests.sandbox_helpers import drain_all, employee_event, fault, records

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_records_that_the_create_arrived_and_links_the_target_record(flow, personas, fresh_sandbox):
    letter = outcome_unknown_letter(flow)
    assert letter.error_class == "outcome_unknown" and letter.outcome_unknown
    delivery = dead_letter_arrived(
        letter=letter, actor=personas["ops"], target_id=" acct_42 ", note="seen in UI"
    )
    assert (delivery.status, delivery.target_id, delivery.maybe_sent) == (
        DeliveryStatus.SUCCEEDED,
        "acct_42",
        False,
    )
    assert delivery.finished_at is not None
    assert RecordLink.objects.get(flow=flow, source_id="emp_1").target_id == "acct_42"
    letter.refresh_from_db()
    assert (letter.resolution, letter.resolved_by, letter.resolution_note) == (
        "arrived",
        personas["ops"],
        "seen in UI",
    )
    entry = AuditEntry.objects.get(verb="arrived")
    assert entry.diff == {"target_id": "acct_42", "note": "seen in UI"} and entry.target_id == str(letter.pk)
    drain_all()
    assert records(fresh_sandbox, "inventory", "accounts") == []  # nothing was sent


def test_it_updates_an_existing_link_and_accepts_no_target_id(flow, personas):
    RecordLink.objects.create(flow=flow, source_id="emp_1", target_id="acct_old")
    dead_letter_arrived(letter=outcome_unknown_letter(flow, 1), actor=personas["ops"], target_id="acct_new")
    assert RecordLink.objects.get(flow=flow, source_id="emp_1").target_id == "acct_new"
    delivery = dead_letter_arrived(letter=outcome_unknown_letter(flow, 2), actor=personas["ops"])
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.target_id == ""
    assert not RecordLink.objects.filter(source_id="emp_2").exists()


def test_it_sends_again_without_looking_first(flow, personas, fresh_sandbox):
    letter = outcome_unknown_letter(flow)
    delivery = dead_letter_send_again(letter=letter, actor=personas["ops"], note="not in inventory")
    assert (delivery.status, delivery.maybe_sent, delivery.budget_attempts) == (
        DeliveryStatus.PENDING,
        False,
        1,
    )
    letter.refresh_from_db()
    assert letter.resolution == "replayed"
    entry = AuditEntry.objects.get(verb="send_again")
    assert entry.diff == {"corrected": False, "note": "not in inventory", "maybe_sent": [True, False]}
    drain_all()
    assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
    assert len(records(fresh_sandbox, "inventory", "accounts")) == 1


def test_it_refuses_both_for_a_letter_that_never_reached_the_target(flow, personas):
    letter = letters_without_email(flow, [1])[0]
    for act in (dead_letter_arrived, dead_letter_send_again):
        with pytest.raises(DeadLetterError, match="nothing to confirm"):
            act(letter=letter, actor=personas["ops"])
    letter.refresh_from_db()
    assert letter.resolved_at is None and Delivery.objects.get().status == DeliveryStatus.DEAD


def test_it_offers_both_through_the_api_to_operators_only(flow, personas):
    first, second = outcome_unknown_letter(flow, 1), outcome_unknown_letter(flow, 2)
    auditor = api_as(personas["auditor"])
    assert auditor.post(f"/api/v1/dead-letters/{first.pk}/arrived/", {}, format="json").status_code == 403
    assert auditor.post(f"/api/v1/dead-letters/{first.pk}/send-again/", {}, format="json").status_code == 403
    ops = api_as(personas["ops"])
    arrived = ops.post(f"/api/v1/dead-letters/{first.pk}/arrived/", {"target_id": "acct_9"}, format="json")
    assert arrived.status_code == 200 and arrived.json()["status"] == "succeeded"
    again = ops.post(f"/api/v1/dead-letters/{second.pk}/send-again/", {"note": "checked"}, format="json")
    assert again.status_code == 202 and again.json()["status"] == "pending"
    twice = ops.post(f"/api/v1/dead-letters/{first.pk}/arrived/", {}, format="json")
    assert twice.status_code == 409 and "already arrived" in twice.json()["error"]
    too_long = ops.post(f"/api/v1/dead-letters/{second.pk}/arrived/", {"target_id": "x" * 301}, format="json")
    assert too_long.status_code == 400 and "target_id" in too_long.json()["fields"]
    assert set(DeadLetter.objects.values_list("resolution", flat=True)) == {"arrived", "replayed"}


# --------------------------------------------------------------------------------------------------
# End to end: the pipeline leaves the letter (the connection drops around the create), the
# operator's decision or a replay carries it out, and the target ends with one record.
# --------------------------------------------------------------------------------------------------


def lost_answer_letter(flow, sandbox, mode: str) -> DeadLetter:
    """A hire whose POST lost its answer: `drop` before inventory wrote it, `drop_after` after."""
    fault(sandbox, "inventory", mode=mode, count=1, methods=["POST"])
    events_store([IncomingEvent(flow.source_system, "employee.hired", "e1", employee_event(1))])
    drain_all()
    letter = DeadLetter.objects.get()
    assert letter.outcome_unknown and Delivery.objects.get().status == DeliveryStatus.UNKNOWN
    return letter


def test_replaying_a_letter_whose_record_arrived_gives_no_second_record(flow, personas, fresh_sandbox):
    letter = lost_answer_letter(flow, fresh_sandbox, "drop_after")
    flow.target_model.lookup_field = "email"  # the admin declares how to look a record up
    flow.target_model.save()
    dead_letter_replay(letter=letter, actor=personas["ops"])
    drain_all()
    accounts = records(fresh_sandbox, "inventory", "accounts")
    delivery = Delivery.objects.get()
    assert len(accounts) == 1 and delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.target_id == accounts[0]["id"]


def test_after_it_arrived_a_later_change_updates_the_record_it_names(flow, personas, fresh_sandbox):
    letter = lost_answer_letter(flow, fresh_sandbox, "drop_after")
    created = records(fresh_sandbox, "inventory", "accounts")[0]
    later = {**employee_event(1, email="ann.new@example.com"), "id": "evt_later"}
    events_store([IncomingEvent(flow.source_system, "employee.hired", "e2", later)])
    # It waits behind the letter: sent on, it could create the account a second time.
    assert deliveries_process_batch() == 0
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 1

    dead_letter_arrived(letter=letter, actor=personas["ops"], target_id=created["id"])
    drain_all()
    accounts = records(fresh_sandbox, "inventory", "accounts")
    assert [(a["id"], a["email"]) for a in accounts] == [(created["id"], "ann.new@example.com")]


def test_send_again_creates_a_record_that_never_arrived_once(flow, personas, fresh_sandbox):
    letter = lost_answer_letter(flow, fresh_sandbox, "drop")
    assert records(fresh_sandbox, "inventory", "accounts") == []
    dead_letter_send_again(letter=letter, actor=personas["ops"], note="not in inventory")
    drain_all()
    assert len(records(fresh_sandbox, "inventory", "accounts")) == 1
    assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
