"""Replay starts a fresh retry budget, keeps "maybe sent" so the worker looks before creating
again, accepts outcome-unknown deliveries, and is held (not sent) while the flow is paused."""

from datetime import timedelta

import pytest

from dlq.models import DeadLetter
from dlq.services import (
    DeadLetterError,
    dead_letter_discard,
    dead_letter_replay,
    dead_letter_resume_and_replay,
    replay_summary,
)
from hub.models import AuditEntry, Delivery, DeliveryStatus, FlowState
from hub.pipeline import clock
from hub.pipeline.drain import deliveries_process_batch
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.services.errors import ConfigError
from hub.services.flows import flow_pause
from tests.dlq.letter_helpers import letters_without_email, outcome_unknown_letter
from tests.sandbox_helpers import (
    control,
    dead_letter_of_a_failing_target,
    drain_all,
    employee_event,
    records,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_gives_a_replayed_letter_a_fresh_budget_of_attempts_and_age(fresh_sandbox, personas):
    letter = dead_letter_of_a_failing_target(fresh_sandbox)  # 2 attempts of 2, the target answers 500
    assert letter.delivery.attempts == 2
    clock.advance(timedelta(days=3).total_seconds())  # far older than the flow's maximum age
    before = clock.now()
    delivery = dead_letter_replay(letter=letter, actor=personas["ops"])
    assert (delivery.status, delivery.budget_attempts) == (DeliveryStatus.PENDING, 2)
    assert before <= delivery.budget_started_at <= clock.now()
    drain_all()  # still failing: two more tries, not zero (the old budget is spent) nor endless
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DEAD, 4)
    assert DeadLetter.objects.unresolved().get().attempts == 4

    control(fresh_sandbox, "inventory", "DELETE", "faults")
    dead_letter_replay(letter=DeadLetter.objects.unresolved().get(), actor=personas["ops"])
    drain_all()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.budget_attempts) == (DeliveryStatus.SUCCEEDED, 4)
    assert len(records(fresh_sandbox, "inventory", "accounts")) == 1


def test_it_keeps_maybe_sent_on_replay_so_the_worker_looks_before_creating_again(flow, personas):
    letter = outcome_unknown_letter(flow)
    delivery = dead_letter_replay(letter=letter, actor=personas["ops"], note="target was down")
    assert delivery.status == DeliveryStatus.PENDING and delivery.maybe_sent is True
    assert delivery.budget_attempts == 1
    entry = AuditEntry.objects.get(verb="replay")
    assert entry.diff == {"corrected": False, "note": "target was down"}


def test_it_refuses_a_replay_when_the_delivery_no_longer_waits_for_an_operator(flow, personas):
    letter = letters_without_email(flow, [1])[0]
    Delivery.objects.filter(pk=letter.delivery_id).update(status=DeliveryStatus.SUCCEEDED)
    with pytest.raises(DeadLetterError, match="its delivery is succeeded now"):
        dead_letter_replay(letter=letter, actor=personas["ops"])
    letter.refresh_from_db()
    assert letter.resolved_at is None and not AuditEntry.objects.filter(verb="replay").exists()


def test_it_holds_a_replay_while_the_flow_is_paused_and_resume_and_replay_sends_it(personas, fresh_sandbox):
    first = dead_letter_of_a_failing_target(fresh_sandbox)  # inventory answers 500 to every create
    flow = first.flow
    events_store([IncomingEvent(flow.source_system, "employee.hired", "e2", employee_event(2))])
    drain_all()
    second = DeadLetter.objects.exclude(pk=first.pk).get()
    control(fresh_sandbox, "inventory", "DELETE", "faults")
    flow_pause(flow=flow, actor=personas["ops"], reason="vendor maintenance")

    held = dead_letter_replay(letter=first, actor=personas["ops"])
    assert (
        replay_summary(held)
        == f"The delivery of record emp_1 is held until flow “{flow.name}” resumes (it is paused)."
    )
    assert deliveries_process_batch() == 0  # held, not lost
    assert Delivery.objects.get(pk=first.delivery_id).status == DeliveryStatus.PENDING

    dead_letter_resume_and_replay(letter=second, actor=personas["ops"], note="resumed")
    flow.refresh_from_db()
    assert flow.state == FlowState.ACTIVE
    assert list(AuditEntry.objects.filter(target_type="flow").order_by("seq").values_list("verb", flat=True)) == [
        "pause", "resume",
    ]  # fmt: skip
    drain_all()
    assert len(records(fresh_sandbox, "inventory", "accounts")) == 2


def test_it_changes_nothing_when_the_flow_cannot_be_resumed(flow, personas):
    letter = letters_without_email(flow, [1])[0]
    flow_pause(flow=flow, actor=personas["ops"])
    flow.mapping.current_version.rules = []
    flow.mapping.current_version.save()
    with pytest.raises(ConfigError, match="its mapping has no rules"):
        dead_letter_resume_and_replay(letter=letter, actor=personas["ops"])
    flow.refresh_from_db()
    letter.refresh_from_db()
    assert flow.state == FlowState.PAUSED and letter.resolved_at is None


def test_it_lets_later_changes_go_when_an_outcome_unknown_letter_is_discarded(flow, personas):
    letter = outcome_unknown_letter(flow)
    dead_letter_discard(letter=letter, actor=personas["ops"], reason="created by hand in inventory")
    delivery = Delivery.objects.get(pk=letter.delivery_id)
    assert delivery.status == DeliveryStatus.DEAD and delivery.finished_at is not None
