"""Schema drift, worked through by an admin on the drift report: update the source model to the
records' new shape, release the deliveries held for review, or dismiss a change as harmless.
Each writes its audit entry in the same transaction as the change."""

from datetime import timedelta

from django.db import transaction

from hub.models import Delivery, DeliveryStatus, DriftHold, Flow, SchemaDrift
from hub.pipeline import clock
from hub.pipeline.dispatch import kick_workers
from hub.pipeline.drain import FLOWS_FRESH_SECONDS
from hub.pipeline.shapes import shape_forget
from hub.services.audit import audit_record
from hub.services.datamodels import field_add, field_rename, field_update
from hub.services.errors import ConfigError
from mappings.models import Field
from mappings.schema import FIELD_TYPES

Kind = SchemaDrift.Kind


def drift_update_words(drift: SchemaDrift) -> str:
    """What "Update the model" does for this drift, in plain words."""
    model = drift.data_model.name
    return {
        Kind.ADDED: f"Add “{drift.path}” ({_new_type(drift)}) to {model}",
        Kind.REMOVED: f"Mark “{drift.path}” optional in {model}",
        Kind.RENAMED: f"Rename “{drift.path}” to “{drift.new_path}” in {model}",
        Kind.TYPE_CHANGED: f"Change “{drift.path}” to {_new_type(drift)} in {model}",
        Kind.NEWLY_NULL: f"Mark “{drift.path}” optional (may be empty) in {model}",
    }[drift.kind]


def _new_type(drift: SchemaDrift) -> str:
    return drift.seen_type if drift.seen_type in FIELD_TYPES else "string"


def drift_model_update(*, drift: SchemaDrift, actor) -> SchemaDrift:
    """Change the source model the way the records changed (through the data model services, so
    the field change is audited as any other), and mark the drift applied."""
    if drift.status != SchemaDrift.Status.OPEN:
        raise ConfigError(f"this change was already dealt with ({drift.get_status_display().lower()})")
    with transaction.atomic():
        drift = SchemaDrift.objects.select_for_update().select_related("data_model").get(pk=drift.pk)
        if drift.status != SchemaDrift.Status.OPEN:
            raise ConfigError(f"this change was already dealt with ({drift.get_status_display().lower()})")
        model = drift.data_model
        field = Field.objects.filter(model=model, path=drift.path).first()
        if drift.kind == Kind.ADDED:
            if field is None:
                field_add(model=model, path=drift.path, type=_new_type(drift), actor=actor)
        elif field is None:
            raise ConfigError(f"{model.name} has no field “{drift.path}” any more: dismiss this change")
        elif drift.kind == Kind.RENAMED:
            field_rename(field=field, path=drift.new_path, actor=actor)
        elif drift.kind == Kind.TYPE_CHANGED:
            field_update(field=field, type=_new_type(drift), actor=actor)
        else:  # gone or empty: the model no longer insists on it
            field_update(field=field, required=False, actor=actor)
        _resolve(drift, SchemaDrift.Status.APPLIED, actor)
        shape_forget(model.pk)  # harmless if this rolls back: the shape is only read again
        audit_record(
            actor=actor,
            verb="drift_apply",
            target=drift,
            label=str(drift)[:300],
            diff={"change": drift_update_words(drift)},
        )
    return drift


def drift_dismiss(*, drift: SchemaDrift, actor) -> SchemaDrift:
    """The change is harmless: stop reporting it (and stop holding events for it)."""
    with transaction.atomic():
        drift = SchemaDrift.objects.select_for_update().get(pk=drift.pk)
        if drift.status == SchemaDrift.Status.DISMISSED:
            raise ConfigError("this change is already dismissed")
        _resolve(drift, SchemaDrift.Status.DISMISSED, actor)
        shape_forget(drift.data_model_id)
        audit_record(actor=actor, verb="drift_dismiss", target=drift, label=str(drift)[:300])
    return drift


def _resolve(drift: SchemaDrift, status: str, actor) -> None:
    drift.status, drift.resolved_at = status, clock.now()
    drift.resolved_by = actor if getattr(actor, "pk", None) else None
    drift.save(update_fields=["status", "resolved_at", "resolved_by"])


def drift_release(*, drift: SchemaDrift, actor, flow: Flow | None = None) -> int:
    """Send on the deliveries held for this drift (of one flow, or all), each exactly once: only
    deliveries still held are changed, so a second click releases nothing. Returns how many."""
    now = clock.now()
    with transaction.atomic():
        holds = DriftHold.objects.filter(
            drift=drift, released_at__isnull=True, delivery__status=DeliveryStatus.HELD
        )
        if flow is not None:
            holds = holds.filter(flow=flow)
        delivery_ids = list(holds.values_list("delivery_id", flat=True))
        released = Delivery.objects.filter(pk__in=delivery_ids, status=DeliveryStatus.HELD).update(
            status=DeliveryStatus.PENDING,
            # After every worker's copy of the flow is fresh: released right after the mapping
            # fix, they must run with the fixed mapping, not the one they were held under.
            next_attempt_at=now + timedelta(seconds=FLOWS_FRESH_SECONDS + 0.5),
            last_error="",
            last_error_class="",
        )
        DriftHold.objects.filter(delivery_id__in=delivery_ids, released_at__isnull=True).update(
            released_at=now
        )
        audit_record(
            actor=actor,
            verb="drift_release",
            target=drift,
            label=str(drift)[:300],
            diff={"released": released, "flow": flow.name if flow else "all flows"},
        )
        if released:
            transaction.on_commit(kick_workers, robust=True)
    return released
