"""Dead letters: created by the worker, worked through by ops (replay or discard, never silently)."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from dlq.models import DeadLetter
from hub.models import Delivery, DeliveryStatus
from hub.pipeline import clock
from hub.pipeline.dispatch import kick_workers
from hub.services.audit import audit_record


def dead_letter_create(
    *, delivery: Delivery, error_class: str, reason: str, last_response: dict[str, Any], **signal: Any
) -> DeadLetter:
    """Keep a delivery the pipeline gave up on (connected to `delivery_dead_lettered`)."""
    return DeadLetter.objects.create(
        delivery=delivery,
        flow_id=delivery.flow_id,
        error_class=error_class,
        reason=reason[:5000],
        last_response=last_response or {},
        attempts=delivery.attempts,
    )


class DeadLetterError(Exception):
    pass


def _letter_resolve(*, letter: DeadLetter, actor, resolution: str, note: str) -> DeadLetter:
    """Lock the letter, refuse one already worked, and mark it resolved (call inside a transaction)."""
    letter = DeadLetter.objects.select_for_update().get(pk=letter.pk)
    if letter.resolved_at:
        raise DeadLetterError(
            f"dead letter {letter.pk} was already {letter.get_resolution_display().lower()}"
        )
    letter.resolved_at = timezone.now()
    letter.resolution = resolution
    letter.resolved_by = actor
    letter.resolution_note = note
    letter.save(update_fields=["resolved_at", "resolution", "resolved_by", "resolution_note"])
    return letter


def dead_letter_replay(
    *, letter: DeadLetter, actor, corrected_record: Any = None, note: str = ""
) -> Delivery:
    """Send the delivery again (optionally with a corrected source record). Its idempotency key
    stays the same, so a target that did receive an earlier try does not get a second record."""
    with transaction.atomic():
        letter = _letter_resolve(
            letter=letter, actor=actor, resolution=DeadLetter.Resolution.REPLAYED, note=note
        )
        delivery = letter.delivery
        fix: dict[str, Any] = {}
        if corrected_record is not None:
            # The audit log shows the record as it was beside the correction.
            fix = {"original_record": delivery.source_record(), "corrected_record": corrected_record}
        updates: dict[str, Any] = {
            "status": DeliveryStatus.PENDING,
            "next_attempt_at": clock.now(),
            "finished_at": None,
            "lease_token": None,
            "lease_expires_at": None,
        }
        if corrected_record is not None:
            updates["payload_override"] = corrected_record
        Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.DEAD).update(**updates)
        audit_record(
            actor=actor,
            verb="replay",
            target=letter,
            label=f"dead letter {letter.pk} ({letter.flow})",
            diff={"corrected": corrected_record is not None, "note": note, **fix},
        )
        transaction.on_commit(kick_workers)
    delivery.refresh_from_db()
    return delivery


def dead_letter_discard(*, letter: DeadLetter, actor, reason: str) -> DeadLetter:
    if not reason.strip():
        raise DeadLetterError("say why you discard it: the reason is kept in the audit log")
    with transaction.atomic():
        letter = _letter_resolve(
            letter=letter, actor=actor, resolution=DeadLetter.Resolution.DISCARDED, note=reason
        )
        audit_record(
            actor=actor,
            verb="discard",
            target=letter,
            label=f"dead letter {letter.pk} ({letter.flow})",
            diff={"reason": reason},
        )
    return letter
