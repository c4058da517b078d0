"""Dead letters: created by the worker, worked through by ops (replay, discard, or for a create
whose outcome is unknown: "it arrived" or "send again"), never silently."""

from typing import Any

from django.db import transaction
from django.db.models import F

from dlq.models import DeadLetter, reason_pattern
from hub.models import Delivery, DeliveryStatus, Flow, FlowState, RecordLink
from hub.pipeline import clock
from hub.pipeline.dispatch import kick_workers
from hub.services.audit import audit_record
from hub.services.flows import flow_state_set

# The statuses of a delivery that waits for an operator: given up on, or its outcome unknown.
WAITING_FOR_OPERATOR = (DeliveryStatus.DEAD, DeliveryStatus.UNKNOWN)


def dead_letter_create(
    *, delivery: Delivery, error_class: str, reason: str, last_response: dict[str, Any], **signal: Any
) -> DeadLetter:
    """Keep a delivery the pipeline gave up on (connected to `delivery_dead_lettered`)."""
    return DeadLetter.objects.create(
        delivery=delivery,
        flow_id=delivery.flow_id,
        error_class=error_class,
        reason=reason[:5000],
        pattern=reason_pattern(reason, error_class),
        record_key=delivery.record_key,
        last_response=last_response or {},
        attempts=delivery.attempts,
    )


class DeadLetterError(Exception):
    pass


class AlreadyResolved(DeadLetterError):
    """Another operator (or job) worked the letter first."""


def _letter_resolve(*, letter: DeadLetter, actor, resolution: str, note: str) -> DeadLetter:
    """Lock the letter, refuse one already worked, and mark it resolved (call inside a transaction)."""
    letter = DeadLetter.objects.select_for_update().select_related("flow").get(pk=letter.pk)
    if letter.resolved_at:
        raise AlreadyResolved(
            f"dead letter {letter.pk} was already {letter.get_resolution_display().lower()}"
        )
    letter.resolved_at = clock.now()
    letter.resolution = resolution
    letter.resolved_by = actor
    letter.resolution_note = note
    letter.save(update_fields=["resolved_at", "resolution", "resolved_by", "resolution_note"])
    return letter


def _delivery_update(letter: DeadLetter, **updates: Any) -> None:
    """Change the letter's delivery while it still waits for an operator; refuse it otherwise."""
    changed = Delivery.objects.filter(pk=letter.delivery_id, status__in=WAITING_FOR_OPERATOR).update(
        **updates
    )
    if not changed:
        status = Delivery.objects.get(pk=letter.delivery_id).get_status_display().lower()
        raise DeadLetterError(f"its delivery is {status} now, no longer waiting for an operator")


def _refuse_unless_outcome_unknown(letter: DeadLetter) -> None:
    if not letter.outcome_unknown:
        raise DeadLetterError(
            f"dead letter {letter.pk} did not reach the target system, so there is nothing to confirm: "
            "replay or discard it"
        )


def dead_letter_replay(
    *, letter: DeadLetter, actor, corrected_record: Any = None, note: str = "", send_again: bool = False
) -> Delivery:
    """Send the delivery again (optionally with a corrected source record), with a fresh retry
    budget. A create that may have reached the target is looked up before it is sent again
    (`maybe_sent` stays), unless the operator said it did not arrive (`send_again`)."""
    if send_again:
        _refuse_unless_outcome_unknown(letter)
    with transaction.atomic():
        letter = _letter_resolve(
            letter=letter, actor=actor, resolution=DeadLetter.Resolution.REPLAYED, note=note
        )
        delivery = letter.delivery
        now = clock.now()
        updates: dict[str, Any] = {
            "status": DeliveryStatus.PENDING,
            "next_attempt_at": now,
            "finished_at": None,
            "lease_token": None,
            "lease_expires_at": None,
            "budget_attempts": F("attempts"),
            "budget_started_at": now,
        }
        diff: dict[str, Any] = {"corrected": corrected_record is not None, "note": note}
        if corrected_record is not None:
            updates["payload_override"] = corrected_record
            # The audit log shows the record as it was beside the correction.
            diff |= {"original_record": delivery.source_record(), "corrected_record": corrected_record}
        if send_again:
            updates["maybe_sent"] = False
            diff["maybe_sent"] = [delivery.maybe_sent, False]
        _delivery_update(letter, **updates)
        audit_record(
            actor=actor,
            verb="send_again" if send_again else "replay",
            target=letter,
            label=f"dead letter {letter.pk} ({letter.flow})",
            diff=diff,
        )
        transaction.on_commit(kick_workers)
    delivery.refresh_from_db()
    return delivery


def replay_summary(delivery: Delivery) -> str:
    """What a replay does now, in words: sent at once, or held while its flow is not running."""
    flow = Flow.objects.get(pk=delivery.flow_id)
    record = delivery.record_key or "(no id)"
    if flow.state != FlowState.ACTIVE:
        return (
            f"The delivery of record {record} is held until flow “{flow.name}” resumes "
            f"(it is {flow.get_state_display().lower()})."
        )
    return f"The delivery of record {record} is being sent again."


def dead_letter_send_again(*, letter: DeadLetter, actor, note: str = "") -> Delivery:
    """The operator checked the target: the create did not arrive, so send it anew (no lookup)."""
    return dead_letter_replay(letter=letter, actor=actor, note=note, send_again=True)


def dead_letter_arrived(*, letter: DeadLetter, actor, target_id: str = "", note: str = "") -> Delivery:
    """The operator checked the target: the create did arrive. The delivery succeeded; with the
    target's id, the record is linked so later changes update it instead of creating another."""
    _refuse_unless_outcome_unknown(letter)
    target_id = target_id.strip()
    with transaction.atomic():
        letter = _letter_resolve(
            letter=letter, actor=actor, resolution=DeadLetter.Resolution.ARRIVED, note=note
        )
        delivery = letter.delivery
        updates: dict[str, Any] = {
            "status": DeliveryStatus.SUCCEEDED,
            "finished_at": clock.now(),
            "maybe_sent": False,
            "lease_token": None,
            "lease_expires_at": None,
        }
        if target_id:
            updates["target_id"] = target_id
        _delivery_update(letter, **updates)
        if target_id and delivery.record_key:
            RecordLink.objects.update_or_create(
                flow_id=letter.flow_id, source_id=delivery.record_key, defaults={"target_id": target_id}
            )
        audit_record(
            actor=actor,
            verb="arrived",
            target=letter,
            label=f"dead letter {letter.pk} ({letter.flow})",
            diff={"target_id": target_id, "note": note},
        )
        # Later changes to the same record waited behind this one; they may go now.
        transaction.on_commit(kick_workers)
    delivery.refresh_from_db()
    return delivery


def dead_letter_resume_and_replay(*, letter: DeadLetter, actor, note: str = "") -> Delivery:
    """Switch the letter's paused flow back on and replay the letter, both or neither (a flow whose
    mapping has problems is refused with them: `ConfigError`)."""
    with transaction.atomic():
        if letter.flow.state != FlowState.ACTIVE:
            flow_state_set(flow=letter.flow, state=FlowState.ACTIVE, actor=actor)
        return dead_letter_replay(letter=letter, actor=actor, note=note)


def dead_letter_discard(*, letter: DeadLetter, actor, reason: str) -> DeadLetter:
    """Give up on the delivery for good, with the reason. A delivery whose outcome was unknown
    becomes dead, so later changes to the same record no longer wait behind it."""
    if not reason.strip():
        raise DeadLetterError("say why you discard it: the reason is kept in the audit log")
    with transaction.atomic():
        letter = _letter_resolve(
            letter=letter, actor=actor, resolution=DeadLetter.Resolution.DISCARDED, note=reason
        )
        if Delivery.objects.filter(pk=letter.delivery_id, status=DeliveryStatus.UNKNOWN).update(
            status=DeliveryStatus.DEAD, finished_at=clock.now()
        ):
            transaction.on_commit(kick_workers)
        audit_record(
            actor=actor,
            verb="discard",
            target=letter,
            label=f"dead letter {letter.pk} ({letter.flow})",
            diff={"reason": reason},
        )
    return letter
