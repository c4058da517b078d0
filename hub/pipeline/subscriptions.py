"""Which flows an event from a system feeds, cached briefly per process because ingest is hot."""

import threading
import time
from dataclasses import dataclass
from typing import Any

from hub.models import Flow, FlowState, Trigger
from mappings.conditions import condition_fields, evaluate_condition
from mappings.transforms import fields_read

CACHE_SECONDS = 2.0
_lock = threading.Lock()
_by_system: dict[int, tuple[float, list["Subscription"]]] = {}


@dataclass(frozen=True)
class Subscription:
    flow_id: int
    event_type: str
    id_path: str
    filter: Any
    source_model_id: int = 0
    drift_policy: str = "report"
    # The fields this flow cannot do without: what its mapping reads, and a poll's cursor field. A
    # record without one is held whatever the drift policy says (hub/pipeline/drift.py).
    needs: frozenset[str] = frozenset()

    def matches(self, event_type: str) -> bool:
        return self.event_type in ("*", "", event_type)

    def accepts(self, record: Any) -> bool:
        return not self.filter or (isinstance(record, dict) and evaluate_condition(self.filter, record))


def subscriptions_for(system_id: int) -> list[Subscription]:
    now = time.monotonic()
    cached = _by_system.get(system_id)
    if cached and cached[0] > now:
        return cached[1]
    flows = (
        Flow.objects.filter(source_system_id=system_id, trigger=Trigger.REALTIME)
        .exclude(state=FlowState.DRAFT)
        .select_related("source_model", "mapping__current_version")
        .order_by("id")
    )
    subs = [subscription_of(flow) for flow in flows]
    with _lock:
        _by_system[system_id] = (now + CACHE_SECONDS, subs)
    return subs


def subscription_of(flow: Flow) -> Subscription:
    return Subscription(
        flow.pk,
        flow.event_type,
        flow.source_model.id_path or "id",
        flow.filter,
        source_model_id=flow.source_model_id,
        drift_policy=flow.drift_policy,
        needs=flow_needs(flow),
    )


def flow_needs(flow: Flow) -> frozenset[str]:
    """The source fields the flow reads: its current mapping's sources and the fields its
    transforms read (template placeholders, joined fields, a currency field), its filter's fields,
    and a scheduled flow's cursor field."""
    version = flow.mapping.current_version
    needs: set[str] = set()
    for rule in version.rules if version else []:
        if not isinstance(rule, dict):
            continue
        if isinstance(rule.get("source"), str) and rule["source"]:
            needs.add(rule["source"])
        for step in rule.get("transforms") or ():
            needs |= fields_read(step)
    needs |= condition_fields(flow.filter)
    if flow.trigger == Trigger.SCHEDULED:
        needs.add(flow.source_model.cursor_field or "updated_at")
    return frozenset(needs)


def forget_subscriptions() -> None:
    with _lock:
        _by_system.clear()
