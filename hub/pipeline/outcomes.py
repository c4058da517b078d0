"""Writing a batch's outcomes: success, retry later, or dead letter, only under the lease."""

import logging
import os
import socket
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import Q

from connectors.base import ErrorClass, failure_reason
from connectors.models import System
from connectors.services import deprecations_record
from hub.metrics.recording import DeliveryTally
from hub.models import Attempt, Delivery, DeliveryStatus, Flow, FlowState, Operation, RecordLink
from hub.pipeline import clock
from hub.pipeline.attempt import UNREADABLE_CREDENTIALS, FlowCache, Outcome
from hub.pipeline.claim import relax_durability
from hub.pipeline.rows import insert_rows
from hub.pipeline.signals import delivery_dead_lettered
from hub.pipeline.subscriptions import forget_subscriptions
from hub.services.audit import audit_record

log = logging.getLogger("hub.delivery")


def worker_name() -> str:
    """This process, as attempts and heartbeats name it. Read at each use, not at import: a
    module imported before django-q2 forks its workers would give them all the parent's pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def outcomes_record(outcomes: list[Outcome], *, flows: FlowCache) -> None:
    """Write outcomes in one transaction with a few bulk statements. Only an outcome whose claim
    (`outcome.token`) still holds its delivery is written: one whose lease this worker lost (it
    took too long and another worker claimed the delivery again) is left alone."""
    if not outcomes:
        return
    ids_by_token: dict = {}
    for outcome in outcomes:
        ids_by_token.setdefault(outcome.token, []).append(outcome.delivery.pk)
    still_ours = Q()
    for token, ids in ids_by_token.items():
        still_ours |= Q(pk__in=ids, lease_token=token)
    with transaction.atomic():
        relax_durability()
        owned = set(
            Delivery.objects.select_for_update()
            .filter(still_ours, status=DeliveryStatus.IN_FLIGHT)
            .values_list("pk", flat=True)
        )
        batch = _BatchWrite(flows=flows, now=clock.now())
        for outcome in outcomes:
            if outcome.delivery.pk in owned:
                batch.add(outcome)
        batch.save()
    _deprecations_record(outcomes, flows)


def _deprecations_record(outcomes: list[Outcome], flows: FlowCache) -> None:
    """What targets said about deprecating the operations called, per target, method and the
    target model's resource path (a record's own path would make a row per record)."""
    seen = []
    for outcome in outcomes:
        if outcome.deprecation is not None:
            method, notice = outcome.deprecation
            flow = flows.flow(outcome.delivery.flow_id)
            seen.append((flow.target_system_id, method, flow.target_model.resource_path, notice))
    if not seen:
        return
    try:
        with transaction.atomic():
            deprecations_record(seen=seen, now=clock.now())
    except DatabaseError:  # the outcomes are written; a notice is heard again on the next answer
        log.exception("could not record what %d answers said about deprecation", len(seen))


class _BatchWrite:
    """The rows one batch's outcomes turn into, written with one statement per table."""

    def __init__(self, *, flows: FlowCache, now) -> None:
        self.flows = flows
        self.now = now
        self.changed: list[Delivery] = []
        self.attempts: list[Attempt] = []
        self.links_to_save: list[RecordLink] = []
        self.links_to_drop: list[tuple[int, str]] = []
        self.dead: list[tuple[Outcome, ErrorClass, str]] = []
        self.refused: dict[int, tuple[Flow, str]] = {}
        self.unreadable: dict[int, System] = {}
        self.tally = DeliveryTally(now)

    def add(self, outcome: Outcome) -> None:
        delivery = outcome.delivery
        delivery.lease_token = None
        delivery.lease_expires_at = None
        self.changed.append(delivery)
        if outcome.deferred_until is not None:
            # Not attempted (rate limit or open circuit): back in the queue, no attempt used.
            delivery.status = DeliveryStatus.RETRYING if delivery.attempts else DeliveryStatus.PENDING
            delivery.next_attempt_at = outcome.deferred_until
            if outcome.deferred_by == "circuit":
                target = self.flows.flow(delivery.flow_id).target_system_id
                self.tally.circuit_open(target, outcome.deferred_until)
            elif outcome.deferred_by == UNREADABLE_CREDENTIALS:
                target = self.flows.flow(delivery.flow_id).target_system
                self.unreadable[target.pk] = target
            return
        delivery.attempts += 1
        delivery.maybe_sent = outcome.maybe_sent
        if outcome.succeeded:
            self._succeeded(outcome)
        elif outcome.held_unknown or (
            outcome.error_class == ErrorClass.OUTCOME_UNKNOWN
            and outcome.maybe_sent
            and not _can_find_out(self.flows, delivery)
        ):
            self._held_unknown(outcome)
        elif outcome.error_class and outcome.error_class.pauses_flow:
            self._refused(outcome)
        else:
            self._failed(outcome)

    def _succeeded(self, outcome: Outcome) -> None:
        delivery = outcome.delivery
        delivery.status, delivery.finished_at = DeliveryStatus.SUCCEEDED, self.now
        delivery.target_id = outcome.target_id
        delivery.last_error_class, delivery.last_error = "", ""
        self.attempts.append(_attempt_row(outcome, delivery.attempts, "succeeded"))
        self.tally.succeeded(delivery)
        if outcome.operation == Operation.DELETE:
            self.links_to_drop.append((delivery.flow_id, delivery.record_key))
        else:  # an empty target id keeps the link pending: the record exists, its id is unknown
            self.links_to_save.append(
                RecordLink(
                    flow_id=delivery.flow_id,
                    source_id=delivery.record_key,
                    target_id=outcome.target_id,
                    created_at=self.now,
                    updated_at=self.now,
                )
            )

    def _held_unknown(self, outcome: Outcome) -> None:
        """The create may have arrived and there is no way to find out: wait for an operator
        instead of creating a second record."""
        delivery = outcome.delivery
        reason = outcome.held_unknown or (
            f"{outcome.message}. {self.flows.flow(delivery.flow_id).target_model} declares no lookup "
            "to find out whether it arrived; say whether it did, or send it again."
        )
        outcome.message, outcome.error_class = reason, ErrorClass.OUTCOME_UNKNOWN
        delivery.status, delivery.finished_at = DeliveryStatus.UNKNOWN, self.now
        delivery.last_error_class, delivery.last_error = ErrorClass.OUTCOME_UNKNOWN, reason[:5000]
        self.attempts.append(_attempt_row(outcome, delivery.attempts, "unknown"))
        self.dead.append((outcome, ErrorClass.OUTCOME_UNKNOWN, "outcome unknown"))
        self.tally.failed(delivery.flow_id, ErrorClass.OUTCOME_UNKNOWN, dead=True)

    def _refused(self, outcome: Outcome) -> None:
        """The target refused our credentials: every flow using them pauses once, and this
        delivery waits with the rest until someone fixes the sign-in and resumes them."""
        delivery = outcome.delivery
        flow = self.flows.flow(delivery.flow_id)
        delivery.status, delivery.next_attempt_at = DeliveryStatus.RETRYING, self.now
        delivery.last_error_class, delivery.last_error = outcome.error_class, outcome.message[:5000]
        self.attempts.append(_attempt_row(outcome, delivery.attempts, "held"))
        self.tally.failed(delivery.flow_id, outcome.error_class, dead=False)
        self.refused[flow.target_system_id] = (flow, outcome.error_class, outcome.message)

    def _failed(self, outcome: Outcome) -> None:
        delivery = outcome.delivery
        flow = self.flows.flow(delivery.flow_id)
        error_class = outcome.error_class or ErrorClass.UNKNOWN
        delivery.last_error_class, delivery.last_error = error_class, outcome.message[:5000]
        policy = flow.retry_policy()
        give_up = error_class.description if not policy.retries(error_class) else ""
        budget_started_at = delivery.budget_started_at or delivery.event.received_at
        give_up = give_up or policy.give_up_reason(
            attempts=delivery.attempts - delivery.budget_attempts,
            age_seconds=(self.now - budget_started_at).total_seconds(),
        )
        if give_up:
            delivery.status, delivery.finished_at = DeliveryStatus.DEAD, self.now
            self.attempts.append(_attempt_row(outcome, delivery.attempts, "dead"))
            self.dead.append((outcome, error_class, give_up))
            self.tally.failed(delivery.flow_id, error_class, dead=True)
            return
        delay = policy.delay(
            delivery.attempts - delivery.budget_attempts,
            jitter=clock.uniform(0.0, 1.0),
            retry_after=outcome.retry_after,
        )
        if error_class == ErrorClass.OUTCOME_UNKNOWN:
            # The target may still be working on the lost request: give it as long again as we
            # waited for it before looking, or the lookup would miss a record about to appear.
            delay = max(delay, flow.target_system.read_timeout)
        delivery.status = DeliveryStatus.RETRYING
        delivery.next_attempt_at = self.now + timedelta(seconds=delay)
        self.attempts.append(_attempt_row(outcome, delivery.attempts, "retrying"))
        self.tally.failed(delivery.flow_id, error_class, dead=False)
        log.info("delivery %s will retry in %.1fs (%s)", delivery.pk, delay, error_class)

    def save(self) -> None:
        _save_outcomes(self.changed)
        if self.attempts:
            insert_rows(Attempt, self.attempts)
        if self.links_to_save:
            insert_rows(
                RecordLink,
                self.links_to_save,
                on_conflict=(["flow", "source_id"], ["target_id", "updated_at"]),
            )
        for flow_id, source_id in self.links_to_drop:
            RecordLink.objects.filter(flow_id=flow_id, source_id=source_id).delete()
        for outcome, error_class, reason in self.dead:
            delivery_dead_lettered.send(
                sender=Delivery,
                delivery=outcome.delivery,
                error_class=error_class,
                reason=failure_reason(reason, outcome.message),
                last_response=outcome.response,
            )
            log.warning(
                "delivery %s dead-lettered (%s): %s", outcome.delivery.pk, error_class, outcome.message[:200]
            )
        for flow, error_class, message in self.refused.values():
            flows_pause_for_refused_target(flow.target_system, error_class, message)
        for system in self.unreadable.values():
            flows_pause_for_unreadable_secrets(system)
        self.tally.save()


def _save_outcomes(deliveries: list[Delivery]) -> None:
    """One parameterised UPDATE run for every row (pipelined by psycopg): Django's bulk_update
    builds a CASE per column per row, which cost more than the HTTP calls themselves."""
    if not deliveries:
        return
    ops = connection.ops
    table = connection.ops.quote_name(Delivery._meta.db_table)
    sql = (
        f"UPDATE {table} SET status = %s, attempts = %s, next_attempt_at = %s, finished_at = %s, "
        "target_id = %s, last_error_class = %s, last_error = %s, maybe_sent = %s, lease_token = NULL, "
        "lease_expires_at = NULL "
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
            d.maybe_sent,
            d.pk,
        )
        for d in deliveries
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


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
        worker=worker_name(),
        mapping_version=outcome.mapping_version,
    )


def flows_pause_for_refused_target(system, error_class: ErrorClass, message: str) -> int:
    """Pause every active flow to `system`, once, with one message, when every call would fail
    the same way until a person changes a setting: its credentials were refused, or the outbound
    policy refuses its address. Their events are held, not dead-lettered, and go out on resume."""
    if error_class == ErrorClass.OUTBOUND_REFUSED:
        reason = (
            f"paused automatically: the hub's outbound policy refuses the address of {system} "
            f"({message}). Allow it in HUB_OUTBOUND_ALLOW or change the address, then resume."
        )
    else:
        reason = f"paused automatically: {system} refused the hub's credentials ({message})"
    paused = _flows_pause(Flow.objects.filter(target_system=system), reason[:300])
    if paused:
        log.warning("%s: %s, %d flows paused", system, error_class, paused)
    return paused


def flows_pause_for_unreadable_secrets(system) -> int:
    """Pause every active flow from or to `system`, once, while the hub cannot read its stored
    secrets: nothing is sent with credentials it cannot read, and the events wait for the resume."""
    reason = f"paused automatically: {system.unreadable_problem()} Then resume this flow."[:300]
    with transaction.atomic():
        paused = _flows_pause(Flow.objects.filter(Q(source_system=system) | Q(target_system=system)), reason)
    if paused:
        log.warning("the stored secrets of %s cannot be decrypted: %d flows paused", system, paused)
    return paused


def _flows_pause(flows, reason: str) -> int:
    """Pause the active ones among `flows`, each once (a conditional update), with an audit entry."""
    paused = 0
    for flow in flows.filter(state=FlowState.ACTIVE):
        if Flow.objects.filter(pk=flow.pk, state=FlowState.ACTIVE).update(
            state=FlowState.PAUSED, paused_reason=reason
        ):
            paused += 1
            audit_record(
                actor=None, verb="pause", target=flow, diff={"state": ["active", "paused"], "reason": reason}
            )
    if paused:
        forget_subscriptions()
    return paused


def _can_find_out(flows: FlowCache, delivery: Delivery) -> bool:
    """Whether the next try can tell if a create arrived: the target model declares a lookup or
    its own upsert by key."""
    model = flows.flow(delivery.flow_id).target_model
    return bool(model.lookup_field)
