"""A test event for one flow: a record built from the flow's source data model, stored through the
same ingest function as a webhook and carried out by the real pipeline like any event. It is
marked as a test (its origin), so the sync history tells it from the vendor's own events."""

import copy
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from common.paths import PathError, get_path, set_path
from hub.models import Delivery, Event, Flow, FlowState
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.pipeline.subscriptions import subscription_of
from hub.services.audit import audit_record
from mappings.models import DataModel

TEST_EVENT_TYPE = "test"  # for a flow that takes any event type


@dataclass
class SentTestEvent:
    event: Event
    delivery: Delivery
    record: dict

    @property
    def held(self) -> bool:
        """Stored but waiting: the flow is a draft or paused, so nothing is sent until it runs."""
        return self.delivery.flow.state != FlowState.ACTIVE and not self.delivery.is_finished()


def sample_record_build(*, model: DataModel) -> dict:
    """A record of `model` to test with: its sample when it has one, else a made-up value for each
    field by its type. Either way with a fresh id, so the test creates a record of its own."""
    if isinstance(model.sample, dict) and model.sample:
        record = copy.deepcopy(model.sample)
    else:
        record = {}
        for spec in model.field_specs():
            _fill(record, spec.path, spec.type)
    try:
        set_path(record, model.id_path or "id", f"test-{uuid.uuid4().hex[:10]}")
    except PathError:
        pass  # an id path that cannot be written: the record goes without a fresh id
    return record


def _made_up(path: str, kind: str) -> Any:
    name = path.rsplit(".", 1)[-1].removesuffix("[]").lower()
    now = datetime.now(UTC)
    if kind == "string":
        if "email" in name:
            return "test.person@example.com"
        if name == "currency":
            return "EUR"
        return f"Test {name.replace('_', ' ')}"
    return {
        "integer": 1,
        "number": 10.0,
        "boolean": True,
        "date": now.date().isoformat(),
        "datetime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "object": {},
        "array": [],
    }.get(kind, "test")


def _fill(record: dict, path: str, kind: str) -> None:
    if "[]" not in path and get_path(record, path) not in (None, []):
        return  # an object's field already filled through its parent
    # A list of objects gets one item, so its item fields ("lines[].sku") have somewhere to go.
    value = [{}] if kind == "array" else _made_up(path, kind)
    try:
        set_path(record, path, value)
    except PathError:
        pass


def _fit_filter(record: dict, condition: Any) -> None:
    """Make the record pass a filter of plain "is" / "is one of" / "exists" comparisons, so that the
    test shows a delivery instead of "filtered out". Anything else is left as it is."""
    if not isinstance(condition, dict):
        return
    for inner in condition.get("all", []) if isinstance(condition.get("all"), list) else []:
        _fit_filter(record, inner)
    op, path, value = condition.get("op"), condition.get("path"), condition.get("value")
    wanted = {"eq": value, "in": value[0] if isinstance(value, list) and value else None}.get(op)
    if op == "exists" and get_path(record, path) is None:
        wanted = "test"
    if wanted is not None and isinstance(path, str):
        try:
            set_path(record, path, wanted)
        except PathError:
            pass


def _payload(flow: Flow, record: dict, event_type: str, key: str) -> dict:
    """The record wrapped the way the source system wraps its webhooks (type, id, record path)."""
    system = flow.source_system
    if not system.record_path:
        return record
    payload: dict = {}
    for path, value in ((system.event_type_path, event_type), (system.idempotency_key_path, key)):
        if path and not path.startswith("header:"):
            set_path(payload, path, value)
    set_path(payload, system.record_path, record)
    return payload


def flow_test_event_send(*, flow: Flow, actor) -> SentTestEvent:
    """Store a made-up event for this flow only, through ingest (audited); the pipeline delivers it
    at once when the flow runs, and when it is enabled or resumed otherwise."""
    record = sample_record_build(model=flow.source_model)
    _fit_filter(record, flow.filter)
    event_type = flow.event_type if flow.event_type not in ("", "*") else TEST_EVENT_TYPE
    key = f"test-{uuid.uuid4().hex}"
    incoming = IncomingEvent(
        flow.source_system,
        event_type,
        key,
        _payload(flow, record, event_type, key),
        origin=Event.Origin.TEST,
        subscriptions=[subscription_of(flow)],
    )
    with transaction.atomic():
        result = events_store([incoming])[0]
        event = Event.objects.select_related("system").get(pk=result.event_id)
        audit_record(
            actor=actor,
            verb="send_test_event",
            target=flow,
            diff={"event": str(event.pk), "record_id": event.record_id},
        )
    delivery = Delivery.objects.select_related("flow").get(event=event, flow=flow)
    return SentTestEvent(event=event, delivery=delivery, record=record)
