"""Reads for the drift report: the changes seen in a system's (or a flow's) source records, with
the flows each touches and how many of their deliveries wait because of it."""

from dataclasses import dataclass, field

from django.db.models import Count, F, Q

from hub.models import DeliveryStatus, DriftHold, Flow, SchemaDrift
from hub.pipeline.drift import TAKES_AWAY
from hub.pipeline.subscriptions import flow_needs


@dataclass
class FlowHeld:
    flow: Flow
    held: int = 0
    dead_lettered: int = 0
    breaks: bool = False  # the change takes away a field this flow needs


@dataclass
class DriftRow:
    drift: SchemaDrift
    flows: list[FlowHeld] = field(default_factory=list)

    @property
    def held(self) -> int:
        return sum(f.held for f in self.flows)


def drift_rows(
    *, system_id: int | None = None, flow: Flow | None = None, open_only: bool = False
) -> list[DriftRow]:
    """Drifts of a system's models (or of one flow's source model), newest first, in three queries."""
    drifts = SchemaDrift.objects.select_related("data_model", "system", "resolved_by")
    if flow is not None:
        drifts = drifts.filter(data_model_id=flow.source_model_id)
    elif system_id is not None:
        drifts = drifts.filter(system_id=system_id)
    if open_only:
        drifts = drifts.filter(status=SchemaDrift.Status.OPEN)
    drifts = list(drifts.order_by("status", "-last_seen_at", "id"))
    if not drifts:
        return []
    model_ids = {d.data_model_id for d in drifts}
    flows = (
        Flow.objects.filter(source_model_id__in=model_ids)
        .select_related("source_model", "mapping__current_version")
        .order_by("name")
    )
    if flow is not None:
        flows = flows.filter(pk=flow.pk)
    by_model: dict[int, list[Flow]] = {}
    needs: dict[int, frozenset[str]] = {}
    for f in flows:
        by_model.setdefault(f.source_model_id, []).append(f)
        needs[f.pk] = flow_needs(f)
    counts = {
        (row["drift_id"], row["flow_id"]): row
        for row in DriftHold.objects.filter(drift__in=drifts)
        .values("drift_id", "flow_id")
        .annotate(
            held=Count("pk", filter=Q(released_at__isnull=True, delivery__status=DeliveryStatus.HELD)),
            dead=Count("pk", filter=Q(dead_lettered=True, delivery__status=DeliveryStatus.DEAD)),
        )
        .order_by()
    }
    rows = []
    for drift in drifts:
        row = DriftRow(drift)
        for f in by_model.get(drift.data_model_id, []):
            found = counts.get((drift.pk, f.pk), {})
            row.flows.append(
                FlowHeld(f, found.get("held", 0), found.get("dead", 0), drift_breaks(drift, needs[f.pk]))
            )
        rows.append(row)
    return rows


def drift_breaks(drift: SchemaDrift, needs: frozenset[str]) -> bool:
    """Whether the change takes away a field a flow needs (its events are held whatever its policy)."""
    return drift.kind in TAKES_AWAY and drift.path in needs


def drift_open_count(*, system_id: int | None = None) -> int:
    drifts = SchemaDrift.objects.filter(status=SchemaDrift.Status.OPEN)
    return (drifts.filter(system_id=system_id) if system_id is not None else drifts).count()


def held_by_system() -> list[dict]:
    """Deliveries held because their record changed shape, per source system (for the home page):
    one query."""
    held = DriftHold.objects.filter(released_at__isnull=True, delivery__status=DeliveryStatus.HELD)
    return list(
        held.values(system_id=F("drift__system_id"), name=F("drift__system__name"))
        .annotate(held=Count("delivery_id", distinct=True))
        .order_by("name")
    )
