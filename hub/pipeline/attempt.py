"""Trying one delivery once: map, validate, pace, call the connector, and say what happened."""

import logging
import threading
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import Q

from common.paths import get_path
from connectors import ratelimit
from connectors.base import ConnectorError, ErrorClass, PushResult
from connectors.breaker import CircuitBreaker
from connectors.crypto import is_unreadable
from connectors.redaction import Redactor
from connectors.registry import connector_for
from hub.models import Delivery, Flow, Operation, RecordLink
from hub.pipeline import clock
from mappings.contracts import Contract, Request, RuleIndex, Violation, contract_for, violations_text
from mappings.engine import MappingError

log = logging.getLogger("hub.delivery")
UNREADABLE_CREDENTIALS = "unreadable credentials"
breaker = CircuitBreaker()


class MappingFailure(Exception):
    """The record cannot be turned into a valid target record; a mapping_error."""


class ContractFailure(Exception):
    """The mapped record, or the request carrying it, breaks what the target accepts (its data
    model, or the operation of its API document); a contract_violation, and nothing is sent."""


@dataclass
class Outcome:
    delivery: Delivery
    succeeded: bool = False
    deferred_until: Any = (
        None  # not attempted (rate limit or open circuit): back in the queue, no attempt used
    )
    # "circuit", "rate limit", "credentials" or UNREADABLE_CREDENTIALS, when deferred
    deferred_by: str = ""
    error_class: ErrorClass | None = None
    message: str = ""
    retry_after: float | None = None
    # A create may have reached the target without our knowing (its answer was lost): set on the
    # delivery, so the next try looks before it creates again.
    maybe_sent: bool = False
    # Why the delivery waits for an operator instead of being tried again ("" when it does not):
    # its create may have arrived and the target model declares no way to find out.
    held_unknown: str = ""
    target_id: str = ""
    operation: str = ""
    mapping_version: int | None = None  # the number of the mapping version used, when one was
    request: dict = field(default_factory=dict)
    response: dict = field(default_factory=dict)
    started_at: Any = None
    duration_ms: float = 0.0
    token: Any = None  # the claim that leased the delivery: its outcome is written only under it
    # The target's answer said the operation is deprecated or will be switched off: (method, notice).
    deprecation: tuple[str, Any] | None = None

    def noticed(self, exchange) -> None:
        if exchange.deprecation is not None:
            self.deprecation = (exchange.method, exchange.deprecation)

    def redact(self, redactor: Redactor) -> None:
        """Keep the target's secrets, in any form, out of all this outcome becomes: the attempt,
        the delivery's last error, a dead letter, a pause reason and its audit entry, log lines.
        Connectors redact what they report; this also covers mapping and unexpected errors."""
        self.message = redactor.text(self.message)
        self.request, self.response = redactor.data(self.request), redactor.data(self.response)


class FlowCache:
    """Flows, their mappings and target fields, loaded once and used per delivery: for one batch,
    or for the batches a run claims within a couple of seconds (DeliveryRun)."""

    def __init__(self) -> None:
        self.flows: dict[int, Flow] = {}
        self.target_fields: dict[int, list] = {}
        self.links: dict[tuple[int, str], str] | None = None
        # Targets that refused our credentials in this batch: their other deliveries wait for the
        # flows to be resumed instead of each hitting the same 401.
        self.refused_targets: set[int] = set()
        # A connector reads its typed settings and builds its redactor when made: one per target
        # and thread (its requests session belongs to the thread that made it).
        self.connectors: dict[tuple[int, int], Any] = {}
        self.redactors: dict[int, Redactor] = {}
        self.contracts: dict[int, Contract] = {}

    def connector(self, system):
        key = (threading.get_ident(), system.pk)
        if key not in self.connectors:
            self.connectors[key] = connector_for(system)
        return self.connectors[key]

    def redactor(self, system) -> Redactor:
        """What keeps the target's secrets out of an outcome: its connector's redactor when this
        thread made one (it also knows the tokens obtained since), else one for the system."""
        connector = self.connectors.get((threading.get_ident(), system.pk))
        if connector is not None and hasattr(connector, "redactor"):
            return connector.redactor
        if system.pk not in self.redactors:
            self.redactors[system.pk] = Redactor.for_system(system)
        return self.redactors[system.pk]

    def load_links(self, deliveries: list[Delivery]) -> None:
        """Record links for a whole batch in one query (until then: looked up one by one). A
        cache shared by several batches keeps each key as its latest batch read it."""
        keys_by_flow: dict[int, set[str]] = {}
        for delivery in deliveries:
            keys_by_flow.setdefault(delivery.flow_id, set()).add(delivery.record_key)
        condition = Q()
        for flow_id, keys in keys_by_flow.items():
            condition |= Q(flow_id=flow_id, source_id__in=keys)
        found = {
            (flow_id, source_id): target_id
            for flow_id, source_id, target_id in RecordLink.objects.filter(condition).values_list(
                "flow_id", "source_id", "target_id"
            )
        }
        links = self.links if self.links is not None else {}
        # Only this batch's keys change, and none of them is in flight (one record, one delivery
        # at a time), so a call reading another key never sees it missing.
        for flow_id, keys in keys_by_flow.items():
            for key in keys:
                links.pop((flow_id, key), None)
        links.update(found)
        self.links = links

    def prepare(self, deliveries: list[Delivery]) -> None:
        """Load everything attempts at these deliveries read (flows, target fields, record links),
        so attempts on other threads never query for them."""
        self.load_links(deliveries)
        for delivery in deliveries:
            flow = self.flow(delivery.flow_id)
            self.fields(flow)
            # A flow's events all come from its source system: share one loaded (and decrypted) copy.
            delivery.event.system = flow.source_system

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
            self.flows[flow_id] = (
                Flow.objects.select_related(
                    "target_system",
                    "target_model",
                    "source_model",
                    "mapping__current_version",
                    "source_system",
                )
                # An API document is read only when its model's contract is compiled (contract_for).
                .defer("target_model__api_document", "source_model__api_document")
                .get(pk=flow_id)
            )
        return self.flows[flow_id]

    def fields(self, flow: Flow) -> list:
        if flow.target_model_id not in self.target_fields:
            self.target_fields[flow.target_model_id] = flow.target_model.field_specs()
        return self.target_fields[flow.target_model_id]

    def contract(self, flow: Flow) -> Contract:
        """What the flow's target model accepts, compiled once per model version (contract_for)."""
        if flow.target_model_id not in self.contracts:
            self.contracts[flow.target_model_id] = contract_for(flow.target_model, self.fields(flow))
        return self.contracts[flow.target_model_id]


def delivery_attempt(*, delivery: Delivery, flows: FlowCache | None = None) -> Outcome:
    """Try one delivery once: map, validate, pace, call. Never raises; the outcome says it all."""
    with DeliveryTry(delivery, flows or FlowCache()) as attempt:
        push = attempt.prepared()
        if push and _paced(push.target, attempt.outcome):
            push = attempt.before_sending(push)
            if push:
                attempt.sent(push, push.connector.push(**push.arguments()))
    return attempt.outcome


@dataclass
class Push:
    """The call a try will make, once paced."""

    flow: Flow
    operation: str
    target_id: str | None
    mapped: dict
    link: str | None
    idempotency_key: str
    connector: Any = None
    key: str | None = None

    @property
    def target(self):
        return self.flow.target_system

    def arguments(self) -> dict[str, Any]:
        model = self.flow.target_model
        return {
            "operation": self.operation,
            "resource": model.resource_path,
            "record": self.mapped,
            "target_id": self.target_id,
            "idempotency_key": self.idempotency_key,
            "id_path": model.id_path or "id",
            "key": self.key,
        }


class DeliveryTry:
    """One try of one delivery, in the steps a caller on a thread (delivery_attempt) and one on
    the engine's event loop share: `prepared()`, pacing, `before_sending()`, the call, `sent()`.
    As a context manager it turns whatever a step raises into the outcome, and redacts it."""

    def __init__(self, delivery: Delivery, flows: FlowCache) -> None:
        self.delivery, self.flows = delivery, flows
        self.outcome = Outcome(delivery=delivery, started_at=clock.now(), maybe_sent=delivery.maybe_sent)
        self.started = time.perf_counter()

    def __enter__(self) -> "DeliveryTry":
        return self

    def prepared(self) -> Push | None:
        """The checks, the plan and the mapped record; None when the outcome is decided already
        (deferred, or a mapping error raised)."""
        delivery, flows, outcome = self.delivery, self.flows, self.outcome
        flow = flows.flow(delivery.flow_id)
        target = flow.target_system
        if target.pk in flows.refused_targets:
            outcome.deferred_until, outcome.deferred_by = clock.now(), "credentials"
            return None
        if is_unreadable(target.credentials):
            # Never call with credentials the hub cannot decrypt: its flows pause (outcomes).
            outcome.deferred_until, outcome.deferred_by = clock.now(), UNREADABLE_CREDENTIALS
            return None
        if not breaker.allows(target.pk):
            outcome.deferred_until = clock.now() + timedelta(seconds=CircuitBreaker.COOLDOWN_SECONDS)
            outcome.deferred_by = "circuit"
            return None
        link = flows.link(flow.pk, delivery.record_key)
        operation, target_id = _plan(flow, delivery, link)
        outcome.operation = operation
        outcome.maybe_sent = delivery.maybe_sent and operation == Operation.CREATE
        mapped = _mapped_record(flow, delivery, outcome, flows) if operation != Operation.DELETE else {}
        return Push(
            flow=flow,
            operation=operation,
            target_id=target_id,
            mapped=mapped,
            link=link,
            idempotency_key=delivery.idempotency_key,
        )

    def before_sending(self, push: Push) -> Push | None:
        """Once paced: the connector, and for a create what an earlier try may have left (a
        lookup, when the target model declares one); None when nothing is to be sent."""
        outcome = self.outcome
        push.connector = self.flows.connector(push.target)
        if push.operation != Operation.CREATE:
            _check_request(push, self.flows)
            return push
        plan = _before_creating(push.flow, self.delivery, push.connector, push.mapped, push.link)
        if plan.held:
            outcome.held_unknown = plan.held
            return None
        if plan.found and not plan.still_to_write:
            # The earlier try did create it: that is the effect we wanted, and nothing is sent.
            outcome.succeeded, outcome.target_id, outcome.operation = True, plan.found, "found"
            outcome.maybe_sent = False
            return None
        if plan.found:
            push.operation, push.target_id = Operation.UPDATE, plan.found
            outcome.operation = push.operation
        if plan.looked_up and not _paced(push.target, outcome):  # the write is a call of its own
            return None
        push.key = plan.key
        _check_request(push, self.flows)
        return push

    def sent(self, push: Push, result: PushResult) -> None:
        outcome = self.outcome
        outcome.succeeded, outcome.maybe_sent = True, False
        outcome.target_id = result.target_id
        outcome.request = result.exchange.request_summary()
        outcome.response = result.exchange.response_summary()
        outcome.noticed(result.exchange)
        if push.operation == Operation.CREATE and not result.target_id:
            outcome.target_id = _id_after_create(push.flow, push.connector, push.mapped)
        breaker.record(push.target.pk, None)

    def ended(self, exc: BaseException | None = None) -> Outcome:
        """End the try here (nothing more to call, or `exc` stopped it): the outcome, redacted."""
        if not self.__exit__(type(exc) if exc else None, exc, None) and exc is not None:
            raise exc
        return self.outcome

    def ended_with(self, push: Push, call: "Future") -> Outcome:
        """End the try with what a call made elsewhere (on an event loop) came back with."""
        try:
            self.sent(push, call.result())
        except BaseException as exc:  # noqa: BLE001 - ended() sorts them as the context manager does
            return self.ended(exc)
        return self.ended()

    def __exit__(self, exc_type, exc, tb) -> bool:
        outcome, delivery, flows = self.outcome, self.delivery, self.flows
        unexpected = ""
        if isinstance(exc, ConnectorError):
            outcome.error_class = exc.error_class
            outcome.message = exc.message
            outcome.retry_after = exc.retry_after
            if exc.exchange:
                outcome.request = exc.exchange.request_summary()
                outcome.response = exc.exchange.response_summary()
                outcome.noticed(exc.exchange)
            if exc.error_class == ErrorClass.OUTCOME_UNKNOWN and outcome.operation == Operation.CREATE:
                outcome.maybe_sent = True
            target = flows.flow(delivery.flow_id).target_system
            if exc.error_class.pauses_flow:
                flows.refused_targets.add(target.pk)
            if exc.error_class == ErrorClass.RATE_LIMITED or (exc.retry_after and exc.status == 503):
                ratelimit.throttled(target, exc.retry_after)
            breaker.record(target.pk, exc.error_class)
        elif isinstance(exc, (MappingError, MappingFailure)):
            outcome.error_class = ErrorClass.MAPPING_ERROR
            outcome.message = str(exc)
        elif isinstance(exc, ContractFailure):
            outcome.error_class = ErrorClass.CONTRACT_VIOLATION
            outcome.message = str(exc)
        elif isinstance(exc, Exception):  # an unknown failure still gets a name, a log line and an action
            unexpected = "".join(traceback.format_exception(exc))
            outcome.error_class = ErrorClass.UNKNOWN
            outcome.message = f"{type(exc).__name__}: {exc}\n" + "".join(
                traceback.format_exception(exc, limit=3)
            )
        outcome.duration_ms = (time.perf_counter() - self.started) * 1000
        flow = flows.flows.get(delivery.flow_id)
        redactor = flows.redactor(flow.target_system) if flow else Redactor()
        outcome.redact(redactor)
        if unexpected:  # its text may quote what was sent, signed headers included
            log.error("delivery %s failed unexpectedly: %s", delivery.pk, redactor.text(unexpected))
        return isinstance(exc, Exception)  # never raises; BaseException (a stop, an exit) goes on


PACE_WAIT_SECONDS = 2.0  # the longest a call waits for its slot; past that it goes back in the queue


def _paced(target, outcome: Outcome) -> bool:
    """Take a slot from the target's shared pace; False (and the outcome deferred) when none
    comes free soon."""
    if ratelimit.acquire(target, max_wait=PACE_WAIT_SECONDS):
        return True
    deferred_by_pace(target, outcome)
    return False


def deferred_by_pace(target, outcome: Outcome) -> None:
    """No slot in the target's pace comes free soon: the delivery goes back, due when one does."""
    outcome.deferred_until = clock.now() + timedelta(seconds=max(0.5, ratelimit.seconds_until_free(target)))
    outcome.deferred_by = "rate limit"


def _mapped_record(flow: Flow, delivery: Delivery, outcome: Outcome, flows: FlowCache) -> dict:
    """The source record turned into a valid target record, or a MappingFailure saying why not."""
    version = flow.mapping.current_version
    if version is None:
        raise MappingFailure(f"flow {flow.name!r} has no mapping rules yet")
    outcome.mapping_version = version.number
    record = delivery.source_record()
    if not isinstance(record, dict):
        raise MappingFailure(f"the event's record is a {type(record).__name__}, not an object")
    mapped = version.compiled.apply(record)
    violations = flows.contract(flow).check_fields(mapped, version.rule_index)
    if violations:
        raise ContractFailure(f"for {flow.target_model}, {violations_text(violations)}")
    return mapped


def contract_verdict(*, model, mapped: dict, rules: list) -> list[Violation]:
    """What the checks before sending would say of `mapped` sent as a create to `model`'s system,
    with `rules` (saved or not) named at fault: the field mapper's preview shows this."""
    contract = contract_for(model)
    request = None
    if contract.api is not None:
        try:
            connector = connector_for(model.system)
        except ValueError:  # settings the hub cannot read: the fields are still checked
            connector = None
        if hasattr(connector, "push_call"):
            call = connector.push_call(
                Operation.CREATE, model.resource_path, mapped, None, "preview", model.id_path or "id", None
            )
            request = Request(call.method, call.path, call.document)
    return contract.check(mapped, RuleIndex(rules), request, model.system.base_url)


def _check_request(push: Push, flows: FlowCache) -> None:
    """The request as the connector will make it, checked against the operation of the target
    model's API document (when it came from one): path, method and body."""
    contract = flows.contract(push.flow)
    if contract.api is None or not hasattr(push.connector, "push_call"):
        return
    arguments = push.arguments()
    call = push.connector.push_call(
        arguments["operation"], arguments["resource"], push.mapped, push.target_id,
        push.idempotency_key, arguments["id_path"], push.key,
    )  # fmt: skip
    version = push.flow.mapping.current_version
    rules = version.rule_index if version else RuleIndex([])
    violations = contract.api.check(
        Request(call.method, call.path, call.document), push.target.base_url, rules
    )
    if violations:
        raise ContractFailure(f"for {push.target}'s API document, {violations_text(violations)}")


@dataclass
class CreatePlan:
    """What to do about a create: send it (by `key` when the target upserts by key), update the
    record a lookup `found`, count it done, or hold it for an operator."""

    key: str | None = None
    found: str = ""
    still_to_write: bool = True
    held: str = ""
    looked_up: bool = False


def _before_creating(flow: Flow, delivery: Delivery, connector, mapped: dict, link: str | None) -> CreatePlan:
    """Never create blindly when an earlier create may have arrived: look it up by the external
    id the target model declares, or use the target's own upsert by that key; with neither, hold
    the delivery for an operator. A flow that upserts looks up every record it has no link for."""
    model = flow.target_model
    external_id = external_id_of(model, mapped)
    if model.create_by_key and external_id:
        return CreatePlan(key=external_id)
    uncertain = delivery.maybe_sent or link == ""
    if not uncertain and not (flow.operation == Operation.UPSERT and model.lookup_field):
        return CreatePlan()
    if model.lookup_field and external_id:
        found = _look_up(connector, model, external_id)
        # A replay with a corrected record, or a later change, still has to be written.
        done = delivery.maybe_sent and link is None and delivery.payload_override is None
        return CreatePlan(found=found, still_to_write=not (found and done), looked_up=True)
    if not uncertain:
        return CreatePlan()
    if model.lookup_field:
        why = f"the mapped record leaves {model.lookup_field!r}, the field {model} is looked up by, empty"
    else:
        why = f"{model} declares no lookup to find out (set one on the data model's page)"
    what = "an earlier create may have reached" if delivery.maybe_sent else "a record was created in"
    return CreatePlan(
        held=f"{what} {flow.target_system} without an answer saying so, and {why}. "
        "Say whether it arrived, or send it again."
    )


def external_id_of(model, mapped: dict) -> str | None:
    """The value of the target model's external-id field in a mapped record, as text."""
    if not model.lookup_field:
        return None
    value = get_path(mapped, model.lookup_field)
    if value in (None, "") or isinstance(value, (dict, list)):
        return None
    return str(value)


def _look_up(connector, model, external_id: str) -> str:
    """The id of the target record carrying our external id ("" when there is none)."""
    result = connector.lookup(
        resource=model.resource_path,
        param=model.lookup_param or connector.lookup_parameter(model.lookup_field),
        field=model.lookup_field,
        value=external_id,
        id_path=model.id_path or "id",
    )
    if len(result.target_ids) > 1:
        log.warning(
            "%s has %d records with %s=%s", model, len(result.target_ids), model.lookup_field, external_id
        )
    return result.target_ids[0] if result.target_ids else ""


def _id_after_create(flow: Flow, connector, mapped: dict) -> str:
    """A create succeeded without naming the new record: find its id by lookup if the model
    declares one; "" leaves the link pending (never a reason to create again)."""
    external_id = external_id_of(flow.target_model, mapped)
    if not external_id:
        return ""
    try:
        return _look_up(connector, flow.target_model, external_id)
    except ConnectorError as exc:
        log.info("created, but the lookup of its id failed: %s", exc.message)
        return ""


def _plan(flow: Flow, delivery: Delivery, link: str | None) -> tuple[str, str | None]:
    """Turn the flow's operation into what to send, using the record link: a create for a source
    record that already has a target record becomes an update."""
    operation = flow.operation
    if operation in (Operation.CREATE, Operation.UPSERT):
        # An empty link: created, but its id never came back; a create is planned, and looked up.
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
