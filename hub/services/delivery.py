"""Carrying deliveries out: claim a batch under a lease, map, validate, pace, call, classify."""

import logging
import os
import random
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from connectors import ratelimit
from connectors.base import ConnectorError, ErrorClass, PushResult
from connectors.registry import connector_for
from hub.models import (
    Attempt,
    AuditEntry,
    Delivery,
    DeliveryStatus,
    Flow,
    FlowState,
    Operation,
    RecordLink,
)
from mappings.engine import MappingError, get_path
from mappings.schema import validate_record

log = logging.getLogger("hub.delivery")
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


class MappingFailure(Exception):
    """The record cannot be turned into a valid target record; a mapping_error."""


@dataclass
class Outcome:
    delivery: Delivery
    succeeded: bool = False
    deferred_until: Any = (
        None  # not attempted (rate limit or open circuit): back in the queue, no attempt used
    )
    error_class: ErrorClass | None = None
    message: str = ""
    retry_after: float | None = None
    target_id: str = ""
    operation: str = ""
    request: dict = field(default_factory=dict)
    response: dict = field(default_factory=dict)
    started_at: Any = None
    duration_ms: float = 0.0


class CircuitBreaker:
    """Per process: after repeated connection-level failures a system gets a rest, so one dead
    target does not tie up workers with timeouts. Deferred deliveries use no attempts."""

    THRESHOLD = 5
    COOLDOWN_SECONDS = 10.0
    TRIPPING = {ErrorClass.UNREACHABLE, ErrorClass.TIMEOUT, ErrorClass.SERVER_ERROR}

    def __init__(self) -> None:
        self.failures: dict[int, int] = {}
        self.open_until: dict[int, float] = {}
        self.lock = threading.Lock()

    def allows(self, system_id: int) -> bool:
        return self.open_until.get(system_id, 0.0) <= time.monotonic()

    def record(self, system_id: int, error_class: ErrorClass | None) -> None:
        with self.lock:
            if error_class in self.TRIPPING:
                count = self.failures.get(system_id, 0) + 1
                self.failures[system_id] = count
                if count >= self.THRESHOLD:
                    self.open_until[system_id] = time.monotonic() + self.COOLDOWN_SECONDS
                    self.failures[system_id] = self.THRESHOLD - 1  # one probe after the rest
            elif error_class is None:
                self.failures.pop(system_id, None)
                self.open_until.pop(system_id, None)


breaker = CircuitBreaker()


# --- claiming -------------------------------------------------------------------------------


def relax_durability() -> None:
    """Let this worker transaction commit without waiting for the disk (PostgreSQL).

    Safe here, never in ingest: if the database crashes and loses a claim or an outcome, the
    delivery is simply carried out again, with the same Idempotency-Key, so the target sees one
    effect. Events themselves are always committed durably before the 202.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def deliveries_claim(*, limit: int, lease_seconds: float | None = None) -> tuple[uuid.UUID, list[Delivery]]:
    """Lease up to `limit` due deliveries to this worker. Safe with any number of workers:
    rows are locked with SKIP LOCKED on PostgreSQL; SQLite serialises writers."""
    lease_seconds = lease_seconds or settings.HUB_LEASE_SECONDS
    token = uuid.uuid4()
    now = timezone.now()
    with transaction.atomic():
        relax_durability()
        rows = list(
            Delivery.objects.due(now)
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("next_attempt_at", "id")
            .values_list("id", "status", "attempts")[:limit]
        )
        if not rows:
            return token, []
        ids = [row[0] for row in rows]
        Delivery.objects.filter(id__in=ids).update(
            status=DeliveryStatus.IN_FLIGHT,
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
        abandoned = [row for row in rows if row[1] == DeliveryStatus.IN_FLIGHT]
        if abandoned:
            # Their worker stopped mid-attempt: count that attempt, so a delivery that kills
            # workers still reaches its attempt limit instead of looping forever.
            Attempt.objects.bulk_create(
                Attempt(
                    delivery_id=d_id,
                    number=attempts + 1,
                    started_at=now,
                    duration_ms=0,
                    outcome="abandoned",
                    error_class=ErrorClass.UNKNOWN,
                    message="the worker stopped before finishing; lease expired",
                )
                for d_id, _, attempts in abandoned
            )
            Delivery.objects.filter(id__in=[row[0] for row in abandoned]).update(attempts=F("attempts") + 1)
    claimed = list(
        Delivery.objects.filter(lease_token=token).select_related("event").order_by("next_attempt_at", "id")
    )
    return token, claimed


# --- one batch ------------------------------------------------------------------------------


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


def deliveries_process_batch(*, limit: int | None = None) -> int:
    """Claim one batch and carry it out; returns how many deliveries were claimed."""
    token, batch = deliveries_claim(limit=limit or settings.HUB_CLAIM_BATCH)
    if not batch:
        return 0
    flows = FlowCache()
    flows.load_links(batch)
    for delivery in batch:
        # A flow's events all come from its source system: share one loaded (and decrypted) copy.
        delivery.event.system = flows.flow(delivery.flow_id).source_system
    lease_renew_at = time.monotonic() + settings.HUB_LEASE_SECONDS / 2
    pending: list[Outcome] = []
    last_flush = time.monotonic()
    for delivery in batch:
        if time.monotonic() > lease_renew_at:
            Delivery.objects.filter(lease_token=token, status=DeliveryStatus.IN_FLIGHT).update(
                lease_expires_at=timezone.now() + timedelta(seconds=settings.HUB_LEASE_SECONDS)
            )
            lease_renew_at = time.monotonic() + settings.HUB_LEASE_SECONDS / 2
        pending.append(delivery_attempt(delivery=delivery, flows=flows))
        # Record outcomes at least every second, so progress is visible and little is redone
        # if this worker dies.
        if time.monotonic() - last_flush > 1.0:
            outcomes_record(pending, token=token, flows=flows)
            pending, last_flush = [], time.monotonic()
    outcomes_record(pending, token=token, flows=flows)
    return len(batch)


def delivery_attempt(*, delivery: Delivery, flows: FlowCache | None = None) -> Outcome:
    """Try one delivery once: map, validate, pace, call. Never raises; the outcome says it all."""
    flows = flows or FlowCache()
    outcome = Outcome(delivery=delivery, started_at=timezone.now())
    started = time.perf_counter()
    try:
        flow = flows.flow(delivery.flow_id)
        target = flow.target_system
        if not breaker.allows(target.pk):
            outcome.deferred_until = timezone.now() + timedelta(seconds=CircuitBreaker.COOLDOWN_SECONDS)
            return outcome
        record = delivery.source_record()
        operation, target_id = _plan(flow, delivery, flows.link(flow.pk, delivery.record_key))
        outcome.operation = operation
        mapped: dict = {}
        if operation != Operation.DELETE:
            version = flow.mapping.current_version
            if version is None:
                raise MappingFailure(f"flow {flow.name!r} has no mapping rules yet")
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
            outcome.deferred_until = timezone.now() + timedelta(
                seconds=max(0.5, ratelimit.seconds_until_free(target))
            )
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


# --- recording outcomes ---------------------------------------------------------------------


def _retry_delay(flow: Flow, attempt_number: int, retry_after: float | None) -> float:
    backoff = flow.backoff_seconds(attempt_number)
    delay = backoff * random.uniform(0.5, 1.0)  # jitter spreads retries of a burst apart
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def outcomes_record(outcomes: list[Outcome], *, token: uuid.UUID, flows: FlowCache) -> None:
    """Write the outcomes of one batch in one transaction with a few bulk statements. A delivery
    whose lease this worker lost (it took too long and another worker reclaimed it) is left alone."""
    if not outcomes:
        return
    from dlq.services import dead_letter_create

    now = timezone.now()
    with transaction.atomic():
        relax_durability()
        owned = set(
            Delivery.objects.select_for_update()
            .filter(
                pk__in=[o.delivery.pk for o in outcomes], lease_token=token, status=DeliveryStatus.IN_FLIGHT
            )
            .values_list("pk", flat=True)
        )
        changed: list[Delivery] = []
        attempts: list[Attempt] = []
        links_to_save: list[RecordLink] = []
        links_to_drop: list[tuple[int, str]] = []
        dead: list[tuple[Outcome, ErrorClass, str]] = []
        for outcome in outcomes:
            delivery = outcome.delivery
            if delivery.pk not in owned:
                continue
            delivery.lease_token = None
            delivery.lease_expires_at = None
            changed.append(delivery)
            if outcome.deferred_until is not None:
                delivery.status = DeliveryStatus.RETRYING if delivery.attempts else DeliveryStatus.PENDING
                delivery.next_attempt_at = outcome.deferred_until
                continue
            flow = flows.flow(delivery.flow_id)
            delivery.attempts += 1
            if outcome.succeeded:
                delivery.status, delivery.finished_at = DeliveryStatus.SUCCEEDED, now
                delivery.target_id = outcome.target_id
                delivery.last_error_class, delivery.last_error = "", ""
                attempts.append(_attempt_row(outcome, delivery.attempts, "succeeded"))
                if outcome.operation == Operation.DELETE:
                    links_to_drop.append((flow.pk, delivery.record_key))
                elif outcome.target_id:
                    links_to_save.append(
                        RecordLink(
                            flow=flow,
                            source_id=delivery.record_key,
                            target_id=outcome.target_id,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                continue
            error_class = outcome.error_class or ErrorClass.UNKNOWN
            delivery.last_error_class, delivery.last_error = error_class, outcome.message[:5000]
            give_up_reason = _give_up_reason(flow, delivery, error_class, now)
            if give_up_reason:
                delivery.status, delivery.finished_at = DeliveryStatus.DEAD, now
                attempts.append(_attempt_row(outcome, delivery.attempts, "dead"))
                dead.append((outcome, error_class, give_up_reason))
            else:
                delay = _retry_delay(flow, delivery.attempts, outcome.retry_after)
                delivery.status = DeliveryStatus.RETRYING
                delivery.next_attempt_at = now + timedelta(seconds=delay)
                attempts.append(_attempt_row(outcome, delivery.attempts, "retrying"))
                log.info("delivery %s will retry in %.1fs (%s)", delivery.pk, delay, error_class)
        _save_outcomes(changed)
        Attempt.objects.bulk_create(attempts)
        if links_to_save:
            RecordLink.objects.bulk_create(
                links_to_save,
                update_conflicts=True,
                unique_fields=["flow", "source_id"],
                update_fields=["target_id", "updated_at"],
            )
        for flow_id, source_id in links_to_drop:
            RecordLink.objects.filter(flow_id=flow_id, source_id=source_id).delete()
        for outcome, error_class, reason in dead:
            dead_letter_create(
                delivery=outcome.delivery,
                error_class=error_class,
                reason=f"{reason}: {outcome.message}",
                last_response=outcome.response,
            )
            log.warning(
                "delivery %s dead-lettered (%s): %s", outcome.delivery.pk, error_class, outcome.message[:200]
            )
            if error_class.pauses_flow:
                _pause_for_error(flows.flow(outcome.delivery.flow_id), error_class, outcome.message)


def _save_outcomes(deliveries: list[Delivery]) -> None:
    """One parameterised UPDATE run for every row (pipelined by psycopg): Django's bulk_update
    builds a CASE per column per row, which cost more than the HTTP calls themselves."""
    if not deliveries:
        return
    ops = connection.ops
    table = connection.ops.quote_name(Delivery._meta.db_table)
    sql = (
        f"UPDATE {table} SET status = %s, attempts = %s, next_attempt_at = %s, finished_at = %s, "
        "target_id = %s, last_error_class = %s, last_error = %s, lease_token = NULL, lease_expires_at = NULL "
        "WHERE id = %s"
    )
    rows = [
        (
            d.status,
            d.attempts,
            ops.adapt_datetimefield_value(d.next_attempt_at),
            ops.adapt_datetimefield_value(d.finished_at),
            d.target_id,
            d.last_error_class,
            d.last_error,
            d.pk,
        )
        for d in deliveries
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _give_up_reason(flow: Flow, delivery: Delivery, error_class: ErrorClass, now) -> str:
    if not error_class.retryable:
        return error_class.description
    if delivery.attempts >= flow.max_attempts:
        return f"gave up after {delivery.attempts} attempts"
    age = (now - delivery.event.received_at).total_seconds()
    if age >= flow.max_age_seconds:
        return f"gave up: the event is {age / 3600:.1f} h old"
    return ""


def _attempt_row(outcome: Outcome, number: int, result: str) -> Attempt:
    return Attempt(
        delivery_id=outcome.delivery.pk,
        number=number,
        started_at=outcome.started_at,
        duration_ms=outcome.duration_ms,
        outcome=result,
        error_class=outcome.error_class or "",
        message=outcome.message[:5000],
        request=outcome.request,
        response=outcome.response,
        worker=WORKER_NAME,
    )


def _pause_for_error(flow: Flow, error_class: ErrorClass, message: str) -> None:
    reason = f"paused automatically: {error_class.description} {message}"[:300]
    changed = Flow.objects.filter(pk=flow.pk, state=FlowState.ACTIVE).update(
        state=FlowState.PAUSED, paused_reason=reason
    )
    if changed:
        AuditEntry.objects.create(
            actor_name="hub",
            verb="pause",
            target_type="flow",
            target_id=str(flow.pk),
            target_label=flow.name,
            diff={"state": ["active", "paused"], "reason": reason},
        )
        from hub.services.subscriptions import forget_subscriptions

        forget_subscriptions()


# --- draining -------------------------------------------------------------------------------


def next_due_in_seconds() -> float | None:
    """Seconds until a waiting delivery is due or an in-flight lease runs out (None: nothing waits)."""
    active = Delivery.objects.filter(flow__state=FlowState.ACTIVE)
    moments = [
        active.filter(status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING)).aggregate(
            at=Min("next_attempt_at")
        )["at"],
        active.filter(status=DeliveryStatus.IN_FLIGHT).aggregate(at=Min("lease_expires_at"))["at"],
    ]
    moments = [m for m in moments if m is not None]
    if not moments:
        return None
    return max(0.0, (min(moments) - timezone.now()).total_seconds())


def deliveries_drain(
    *, max_seconds: float | None = None, linger: float | None = None, poll: float = 0.05
) -> int:
    """Process batches until the queue is dry, then leave, unless this drain becomes the one
    lingerer: it keeps polling for `linger` seconds after the last work, and stays (polling
    less often) while a retry or an expired lease is due within the next minute."""
    from hub.services.dispatch import (
        ask_for_help,
        become_lingerer,
        drain_started,
        still_lingering,
        stop_lingering,
    )

    drain_started()
    max_seconds = settings.HUB_DRAIN_SECONDS if max_seconds is None else max_seconds
    linger = settings.HUB_DRAIN_LINGER_SECONDS if linger is None else linger
    deadline = time.monotonic() + max_seconds
    last_work = time.monotonic()
    done = 0
    lingering = False
    try:
        while time.monotonic() < deadline:
            claimed = deliveries_process_batch()
            done += claimed
            if claimed:
                last_work = time.monotonic()
                if claimed >= settings.HUB_CLAIM_BATCH:
                    ask_for_help()
                continue
            if not lingering:
                lingering = become_lingerer(WORKER_NAME)
                if not lingering:
                    break  # another drain is polling already
            still_lingering()
            if time.monotonic() - last_work < linger:
                time.sleep(poll)
                continue
            due_in = next_due_in_seconds()
            if due_in is None or due_in > 60:
                break
            time.sleep(min(max(due_in, poll), 0.25, max(0.0, deadline - time.monotonic())))
    finally:
        if lingering:
            stop_lingering()
    return done
