"""Trying one delivery once: map, validate, pace, call the connector, and say what happened."""

import logging
import time
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import Q

from common.paths import get_path
from connectors import ratelimit
from connectors.base import ConnectorError, ErrorClass, PushResult
from connectors.breaker import CircuitBreaker
from connectors.registry import connector_for
from hub.models import Delivery, Flow, Operation, RecordLink
from hub.pipeline import clock
from mappings.engine import MappingError
from mappings.schema import validate_record

log = logging.getLogger("hub.delivery")
breaker = CircuitBreaker()


class MappingFailure(Exception):
    """The record cannot be turned into a valid target record; a mapping_error."""


@dataclass
class Outcome:
    delivery: Delivery
    succeeded: bool = False
    deferred_until: Any = (
        None  # not attempted (rate limit or open circuit): back in the queue, no attempt used
    )
    deferred_by: str = ""  # "circuit" or "rate limit", when deferred
    error_class: ErrorClass | None = None
    message: str = ""
    retry_after: float | None = None
    target_id: str = ""
    operation: str = ""
    mapping_version: int | None = None  # the number of the mapping version used, when one was
    request: dict = field(default_factory=dict)
    response: dict = field(default_factory=dict)
    started_at: Any = None
    duration_ms: float = 0.0


class FlowCache:
    """Flows, their mappings and target fields for one batch: loaded once, used per delivery."""

    def __init__(self) -> None:
        self.flows: dict[int, Flow] = {}
        self.target_fields: dict[int, list] = {}
        self.links: dict[tuple[int, str], str] | None = None

    def load_links(self, deliveries: list[Delivery]) -> None:
        """Record links for a whole batch in one query (None: look them up one by one)."""
        keys_by_flow: dict[int, set[str]] = {}
        for delivery in deliveries:
            keys_by_flow.setdefault(delivery.flow_id, set()).add(delivery.record_key)
        condition = Q()
        for flow_id, keys in keys_by_flow.items():
            condition |= Q(flow_id=flow_id, source_id__in=keys)
        self.links = {
            (flow_id, source_id): target_id
            for flow_id, source_id, target_id in RecordLink.objects.filter(condition).values_list(
                "flow_id", "source_id", "target_id"
            )
        }

    def link(self, flow_id: int, source_id: str) -> str | None:
        if self.links is not None:
            return self.links.get((flow_id, source_id))
        return (
            RecordLink.objects.filter(flow_id=flow_id, source_id=source_id)
            .values_list("target_id", flat=True)
            .first()
        )

    def flow(self, flow_id: int) -> Flow:
        if flow_id not in self.flows:
            self.flows[flow_id] = Flow.objects.select_related(
                "target_system", "target_model", "source_model", "mapping__current_version", "source_system"
            ).get(pk=flow_id)
        return self.flows[flow_id]

    def fields(self, flow: Flow) -> list:
        if flow.target_model_id not in self.target_fields:
            self.target_fields[flow.target_model_id] = flow.target_model.field_specs()
        return self.target_fields[flow.target_model_id]


def delivery_attempt(*, delivery: Delivery, flows: FlowCache | None = None) -> Outcome:
    """Try one delivery once: map, validate, pace, call. Never raises; the outcome says it all."""
    flows = flows or FlowCache()
    outcome = Outcome(delivery=delivery, started_at=clock.now())
    started = time.perf_counter()
    try:
        flow = flows.flow(delivery.flow_id)
        target = flow.target_system
        if not breaker.allows(target.pk):
            outcome.deferred_until = clock.now() + timedelta(seconds=CircuitBreaker.COOLDOWN_SECONDS)
            outcome.deferred_by = "circuit"
            return outcome
        record = delivery.source_record()
        operation, target_id = _plan(flow, delivery, flows.link(flow.pk, delivery.record_key))
        outcome.operation = operation
        mapped: dict = {}
        if operation != Operation.DELETE:
            version = flow.mapping.current_version
            if version is None:
                raise MappingFailure(f"flow {flow.name!r} has no mapping rules yet")
            outcome.mapping_version = version.number
            if not isinstance(record, dict):
                raise MappingFailure(f"the event's record is a {type(record).__name__}, not an object")
            mapped = version.compiled.apply(record)
            issues = validate_record(mapped, flows.fields(flow))
            if issues:
                raise MappingFailure(
                    f"the mapped record does not fit {flow.target_model}: "
                    + "; ".join(i.message for i in issues)
                )
        if not ratelimit.acquire(target, max_wait=2.0):
            outcome.deferred_until = clock.now() + timedelta(
                seconds=max(0.5, ratelimit.seconds_until_free(target))
            )
            outcome.deferred_by = "rate limit"
            return outcome
        result: PushResult = connector_for(target).push(
            operation=operation,
            resource=flow.target_model.resource_path,
            record=mapped,
            target_id=target_id,
            idempotency_key=delivery.idempotency_key,
            id_path=flow.target_model.id_path or "id",
        )
        outcome.succeeded = True
        outcome.target_id = result.target_id
        outcome.request = result.exchange.request_summary()
        outcome.response = result.exchange.response_summary()
        breaker.record(target.pk, None)
    except ConnectorError as exc:
        outcome.error_class = exc.error_class
        outcome.message = exc.message
        outcome.retry_after = exc.retry_after
        if exc.exchange:
            outcome.request = exc.exchange.request_summary()
            outcome.response = exc.exchange.response_summary()
        breaker.record(flows.flow(delivery.flow_id).target_system_id, exc.error_class)
    except (MappingError, MappingFailure) as exc:
        outcome.error_class = ErrorClass.MAPPING_ERROR
        outcome.message = str(exc)
    except Exception as exc:  # an unknown failure still gets a name, a log line and an action
        log.exception("delivery %s failed unexpectedly", delivery.pk)
        outcome.error_class = ErrorClass.UNKNOWN
        outcome.message = f"{type(exc).__name__}: {exc}\n" + traceback.format_exc(limit=3)
    finally:
        outcome.duration_ms = (time.perf_counter() - started) * 1000
    return outcome


def _plan(flow: Flow, delivery: Delivery, link: str | None) -> tuple[str, str | None]:
    """Turn the flow's operation into what to send, using the record link: a create for a source
    record that already has a target record becomes an update."""
    operation = flow.operation
    if operation in (Operation.CREATE, Operation.UPSERT):
        return (Operation.UPDATE, link) if link else (Operation.CREATE, None)
    if operation == Operation.UPDATE:
        if link:
            return Operation.UPDATE, link
        # No link: the source id may be the target id (systems that share ids).
        record = delivery.source_record()
        guess = get_path(record, flow.source_model.id_path or "id") if isinstance(record, dict) else None
        if guess in (None, ""):
            raise ConnectorError(
                "no target record is linked to this source record, so there is nothing to update",
                ErrorClass.REJECTED,
            )
        return Operation.UPDATE, str(guess)
    if link is None:
        return Operation.DELETE, delivery.record_key
    return Operation.DELETE, link
