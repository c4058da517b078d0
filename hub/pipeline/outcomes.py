"""Writing a batch's outcomes: success, retry later, or dead letter, only under the lease."""

import logging
import os
import socket
import uuid
from datetime import timedelta

from django.db import connection, transaction

from connectors.base import ErrorClass
from hub.metrics.recording import DeliveryTally
from hub.models import Attempt, Delivery, DeliveryStatus, Flow, FlowState, Operation, RecordLink
from hub.pipeline import clock
from hub.pipeline.attempt import FlowCache, Outcome
from hub.pipeline.claim import relax_durability
from hub.pipeline.signals import delivery_dead_lettered
from hub.pipeline.subscriptions import forget_subscriptions
from hub.services.audit import audit_record

log = logging.getLogger("hub.delivery")
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


def outcomes_record(outcomes: list[Outcome], *, token: uuid.UUID, flows: FlowCache) -> None:
    """Write the outcomes of one batch in one transaction with a few bulk statements. A delivery
    whose lease this worker lost (it took too long and another worker reclaimed it) is left alone."""
    if not outcomes:
        return
    with transaction.atomic():
        relax_durability()
        owned = set(
            Delivery.objects.select_for_update()
            .filter(
                pk__in=[o.delivery.pk for o in outcomes], lease_token=token, status=DeliveryStatus.IN_FLIGHT
            )
            .values_list("pk", flat=True)
        )
        batch = _BatchWrite(flows=flows, now=clock.now())
        for outcome in outcomes:
            if outcome.delivery.pk in owned:
                batch.add(outcome)
        batch.save()


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
            return
        delivery.attempts += 1
        if outcome.succeeded:
            self._succeeded(outcome)
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
        elif outcome.target_id:
            self.links_to_save.append(
                RecordLink(
                    flow_id=delivery.flow_id,
                    source_id=delivery.record_key,
                    target_id=outcome.target_id,
                    created_at=self.now,
                    updated_at=self.now,
                )
            )

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
            delivery.attempts, jitter=clock.uniform(0.0, 1.0), retry_after=outcome.retry_after
        )
        delivery.status = DeliveryStatus.RETRYING
        delivery.next_attempt_at = self.now + timedelta(seconds=delay)
        self.attempts.append(_attempt_row(outcome, delivery.attempts, "retrying"))
        self.tally.failed(delivery.flow_id, error_class, dead=False)
        log.info("delivery %s will retry in %.1fs (%s)", delivery.pk, delay, error_class)

    def save(self) -> None:
        _save_outcomes(self.changed)
        Attempt.objects.bulk_create(self.attempts)
        if self.links_to_save:
            RecordLink.objects.bulk_create(
                self.links_to_save,
                update_conflicts=True,
                unique_fields=["flow", "source_id"],
                update_fields=["target_id", "updated_at"],
            )
        for flow_id, source_id in self.links_to_drop:
            RecordLink.objects.filter(flow_id=flow_id, source_id=source_id).delete()
        for outcome, error_class, reason in self.dead:
            delivery_dead_lettered.send(
                sender=Delivery,
                delivery=outcome.delivery,
                error_class=error_class,
                reason=f"{reason}: {outcome.message}",
                last_response=outcome.response,
            )
            log.warning(
                "delivery %s dead-lettered (%s): %s", outcome.delivery.pk, error_class, outcome.message[:200]
            )
            if error_class.pauses_flow:
                _pause_for_error(self.flows.flow(outcome.delivery.flow_id), error_class, outcome.message)
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
        mapping_version=outcome.mapping_version,
    )


def _pause_for_error(flow: Flow, error_class: ErrorClass, message: str) -> None:
    reason = f"paused automatically: {error_class.description} {message}"[:300]
    changed = Flow.objects.filter(pk=flow.pk, state=FlowState.ACTIVE).update(
        state=FlowState.PAUSED, paused_reason=reason
    )
    if changed:
        audit_record(
            actor=None, verb="pause", target=flow, diff={"state": ["active", "paused"], "reason": reason}
        )
        forget_subscriptions()
