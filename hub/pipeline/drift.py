"""Schema drift on the way in: does each stored event's record still have its source model's shape?

Cheap on the hot path: a record's shape fingerprint (its sorted leaf paths with their kinds,
mappings.schema.shape_fingerprint) is looked up among the shapes this process already compared
with the model; only a new shape is compared in full (mappings.schema.shape_changes), and what it
showed is kept in memory and in ShapeFingerprint rows, so a restart reads the known shapes back
once instead of comparing again. A known shape that fits costs no query at all; a known shape that
drifted costs one counter update per drift per stored group.

What a flow does with a drifted record follows its drift policy: carry on (report), carry on and
add the new fields to the model (extend), hold the delivery until an admin releases it (hold), or
dead-letter it with the drift as its reason (dead_letter). A record without a field the flow's
mapping reads, or without a poll's cursor field, is held whatever the policy says.
"""

import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F

from connectors.base import ErrorClass
from connectors.models import System
from connectors.redaction import REDACTED, Redactor
from hub.models import (
    Delivery,
    DeliveryStatus,
    DriftHold,
    DriftPolicy,
    SchemaDrift,
    ShapeFingerprint,
)
from hub.pipeline.shapes import DriftRef, ModelShape, known_shapes, model_shape
from hub.pipeline.signals import delivery_dead_lettered
from hub.pipeline.subscriptions import Subscription
from hub.services.drift import drift_model_update
from mappings.schema import ShapeChange, shape_changes, shape_fingerprint

log = logging.getLogger("hub.drift")

MAX_SAMPLES = 3
SAMPLE_CHARS = 80
MAX_SHAPES_PER_CONTEXT = 5000  # shapes kept in memory per model and mapping; beyond, compared again
# Changes that take a field away: a flow that reads that field cannot carry on.
TAKES_AWAY = (SchemaDrift.Kind.REMOVED, SchemaDrift.Kind.RENAMED)
_SECRET_NAME = re.compile(r"pass|secret|token|api_?key|auth|credential|signature|ssn|iban|card", re.I)


@dataclass
class Stats:
    """Counts for tests and measurements: how many full comparisons this process made."""

    comparisons: int = 0


stats = Stats()


def sample_of(value: Any, *, path: str, redactor: Redactor) -> Any:
    """A value fit to show on the drift report: cut short, a secret-looking field's value hidden,
    and every known secret of the system redacted."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if _SECRET_NAME.search(path.rsplit(".", 1)[-1]):
        return REDACTED
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = redactor.text(text, SAMPLE_CHARS)
    return text if len(text) < SAMPLE_CHARS else text[: SAMPLE_CHARS - 1] + "…"


@dataclass
class Decision:
    """What one flow does with one drifted record."""

    status: str  # HELD, DEAD, or "" to carry on
    reason: str
    drifts: tuple[DriftRef, ...]  # the changes that hold (or dead-letter) it


@dataclass
class DriftCheck:
    """The drift check of one stored group of events (one transaction)."""

    now: datetime
    counts: Counter = field(default_factory=Counter)
    decided: list[tuple[Delivery, Decision]] = field(default_factory=list)
    to_extend: set[int] = field(default_factory=set)
    redactors: dict[int, Redactor] = field(default_factory=dict)

    def decide(self, system: System, record: Any, subs: list[Subscription]) -> dict[int, Decision]:
        """Per flow among `subs`: what to do with this record, for the flows whose source model it
        drifted from (others are left out)."""
        if not isinstance(record, dict):
            return {}
        decisions: dict[int, Decision] = {}
        fingerprints: dict[int, str] = {}
        counted: set[int] = set()
        for sub in subs:
            if not sub.source_model_id:
                continue
            shape = model_shape(sub.source_model_id)
            if not shape.fields:
                continue  # a model with no fields declares nothing to drift from
            fingerprint = fingerprints.get(shape.model_id)
            if fingerprint is None:
                fingerprint = fingerprints[shape.model_id] = shape_fingerprint(record, shape.opaque)
            known = known_shapes.get((shape.model_id, shape.token, sub.needs))
            drifts = known.get(fingerprint) if known is not None else None
            if drifts is None:
                drifts = self._compare(system, record, shape, sub, fingerprint)
            if not drifts:
                continue
            for ref in drifts:
                if ref.id not in counted:
                    counted.add(ref.id)
                    self.counts[ref.id] += 1
            decisions[sub.flow_id] = self._decision(sub, drifts)
        return decisions

    def _decision(self, sub: Subscription, drifts: tuple[DriftRef, ...]) -> Decision:
        breaking = [d for d in drifts if d.kind in TAKES_AWAY and d.path in sub.needs]
        words = "; ".join(d.words for d in (breaking or drifts))
        if breaking:
            reason = f"held for review: the record changed shape and the flow needs what went away ({words})"
            return Decision(DeliveryStatus.HELD, reason, tuple(breaking))
        if sub.drift_policy == DriftPolicy.HOLD:
            return Decision(
                DeliveryStatus.HELD, f"held for review: the record changed shape ({words})", drifts
            )
        if sub.drift_policy == DriftPolicy.DEAD_LETTER:
            return Decision(DeliveryStatus.DEAD, f"the record changed shape: {words}", drifts)
        if sub.drift_policy == DriftPolicy.EXTEND:
            self.to_extend.update(d.id for d in drifts if d.kind == SchemaDrift.Kind.ADDED)
        return Decision("", "", drifts)

    def _compare(
        self, system: System, record: dict, shape: ModelShape, sub: Subscription, fingerprint: str
    ) -> tuple[DriftRef, ...]:
        """The full comparison, for a shape this process has not seen with this model and flow."""
        key = (shape.model_id, shape.token, sub.needs)
        context = hashlib.sha1(f"{shape.token}|{'|'.join(sorted(sub.needs))}".encode()).hexdigest()[:32]
        if key not in known_shapes:
            known_shapes[key] = _stored_shapes(shape.model_id, context)
            if fingerprint in known_shapes[key]:
                return known_shapes[key][fingerprint]
        stats.comparisons += 1
        changes = [
            change
            for change in shape_changes(record, list(shape.fields), watched=sub.needs)
            if change.key not in shape.dismissed
        ]
        redactor = self.redactors.get(system.pk) or self.redactors.setdefault(
            system.pk, Redactor.for_system(system)
        )
        refs = tuple(self._record(shape, change, redactor) for change in changes)
        ShapeFingerprint.objects.bulk_create(
            [
                ShapeFingerprint(
                    data_model_id=shape.model_id,
                    context=context,
                    fingerprint=fingerprint,
                    drifts=[ref.__dict__ for ref in refs],
                    first_seen_at=self.now,
                )
            ],
            ignore_conflicts=True,
        )
        verdicts = known_shapes[key]
        if len(verdicts) >= MAX_SHAPES_PER_CONTEXT:
            verdicts.clear()
        verdicts[fingerprint] = refs
        return refs

    def _record(self, shape: ModelShape, change: ShapeChange, redactor: Redactor) -> DriftRef:
        """Create or refresh the drift row of one change (reopened if it was applied and is seen
        again: the model update did not cover it)."""
        lookup = {"data_model_id": shape.model_id, "kind": change.kind, "path": change.path[:300]}
        lookup["new_path"] = change.new_path[:300]
        sample = sample_of(change.sample, path=change.new_path or change.path, redactor=redactor)
        # Inserted without failing when another process records the same change at once: the
        # unique constraint keeps one row, which is then read and refreshed.
        SchemaDrift.objects.bulk_create(
            [
                SchemaDrift(
                    system_id=shape.system_id,
                    expected_type=change.expected,
                    seen_type=change.seen,
                    first_seen_at=self.now,
                    last_seen_at=self.now,
                    **lookup,
                )
            ],
            ignore_conflicts=True,
        )
        drift = SchemaDrift.objects.select_for_update().get(**lookup)
        changed = []
        if change.kind != SchemaDrift.Kind.REMOVED and len(drift.samples) < MAX_SAMPLES:
            if sample not in drift.samples:
                drift.samples = [*drift.samples, sample]
                changed.append("samples")
        if drift.status == SchemaDrift.Status.APPLIED:
            drift.status, drift.resolved_at, drift.resolved_by = SchemaDrift.Status.OPEN, None, None
            changed += ["status", "resolved_at", "resolved_by"]
        if changed:
            drift.save(update_fields=changed)
        return DriftRef(drift.pk, drift.kind, drift.path, drift.new_path, drift.describe())

    def apply(self, delivery: Delivery, decision: Decision) -> None:
        """Hold or dead-letter a new delivery as decided (it is saved with the others)."""
        if not decision.status:
            return
        delivery.status = decision.status
        delivery.last_error_class = ErrorClass.SCHEMA_DRIFT
        delivery.last_error = decision.reason[:5000]
        if decision.status == DeliveryStatus.DEAD:
            delivery.finished_at = self.now
        self.decided.append((delivery, decision))

    @property
    def holds_deliveries(self) -> bool:
        return bool(self.decided)

    def save(self) -> None:
        """After the group's deliveries are inserted (with their ids): count the drifted events,
        link held and dead-lettered deliveries to their drifts, and dead-letter those to be."""
        for drift_id, events in self.counts.items():
            SchemaDrift.objects.filter(pk=drift_id).update(events=F("events") + events, last_seen_at=self.now)
        self._extend()
        if not self.decided:
            return
        DriftHold.objects.bulk_create(
            DriftHold(
                drift_id=ref.id,
                delivery_id=delivery.pk,
                flow_id=delivery.flow_id,
                dead_lettered=delivery.status == DeliveryStatus.DEAD,
            )
            for delivery, decision in self.decided
            for ref in decision.drifts
        )
        for delivery, decision in self.decided:
            if delivery.status == DeliveryStatus.DEAD:
                delivery_dead_lettered.send(
                    sender=Delivery,
                    delivery=delivery,
                    error_class=ErrorClass.SCHEMA_DRIFT,
                    reason=decision.reason,
                    last_response={},
                )

    def _extend(self) -> None:
        """Under the policy "extend": add the new fields to the model, each in a savepoint, so a
        field that cannot be added stays open on the report and stores the events all the same."""
        if not self.to_extend:
            return
        for drift in SchemaDrift.objects.filter(pk__in=self.to_extend, status=SchemaDrift.Status.OPEN):
            try:
                with transaction.atomic():
                    drift_model_update(drift=drift, actor=None)
            except Exception:
                log.exception("could not add the new field of drift %s to its model", drift.pk)


def _stored_shapes(model_id: int, context: str) -> dict[str, tuple[DriftRef, ...]]:
    rows = ShapeFingerprint.objects.filter(data_model_id=model_id, context=context).values_list(
        "fingerprint", "drifts"
    )[:MAX_SHAPES_PER_CONTEXT]
    return {fingerprint: tuple(DriftRef(**ref) for ref in drifts) for fingerprint, drifts in rows}
