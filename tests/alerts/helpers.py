"""Helpers for alerting tests: a webhook receiver on loopback, rows of pipeline history written
at the pipeline clock's time, one rule per flow, evaluation with that clock."""

import json
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hub.alerts.conditions import CONDITIONS
from hub.alerts.evaluation import Evaluation, alerts_evaluate
from hub.alerts.models import AlertRule
from hub.alerts.services import alert_rule_create
from hub.models import Attempt, Delivery, DeliveryStatus, Event, Flow
from hub.pipeline import clock
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.factories import flow_with_mapping

SIGNING_SECRET = "receiver-checks-this-secret"


class Receiver:
    """A tiny HTTP server on a free loopback port that keeps what it is sent and answers
    `status` (a test may change it)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/T0KEN-in-the-path"

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def only_rule(flow: Flow, kind: str, **values) -> AlertRule:
    """Replace the flow's default rules with one rule of `kind`."""
    AlertRule.objects.filter(flow=flow).delete()
    return alert_rule_create(flow=flow, kind=kind, actor=None, **values)


def evaluate() -> Evaluation:
    return alerts_evaluate(now=clock.now())


def minutes(n: float) -> None:
    clock.advance(60 * n)


def events_arrive(flow: Flow, n: int = 1) -> None:
    """Events from the flow's source system, through the real ingest."""
    events_store(
        [
            IncomingEvent(
                flow.source_system, flow.event_type, uuid.uuid4().hex, {"id": uuid.uuid4().hex, "amount": 5}
            )
            for _ in range(n)
        ]
    )


def delivery_rows(
    flow: Flow, n: int = 1, *, status=DeliveryStatus.PENDING, took: float = 0.0
) -> list[Delivery]:
    """`n` deliveries of the flow now, with their events; finished ones finished now, `took`
    seconds after their event was received."""
    now = clock.now()
    finished = status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD)
    events = Event.objects.bulk_create(
        Event(
            system_id=flow.source_system_id,
            event_type=flow.event_type,
            idempotency_key=uuid.uuid4().hex,
            payload={},
            received_at=now - timedelta(seconds=took),
        )
        for _ in range(n)
    )
    return Delivery.objects.bulk_create(
        Delivery(
            event=event,
            flow=flow,
            record_key=uuid.uuid4().hex,
            status=status,
            created_at=event.received_at,
            finished_at=now if finished else None,
        )
        for event in events
    )


def attempt_rows(flow: Flow, n: int = 1, *, error_class: str = "") -> None:
    """`n` tries of new deliveries now: successes, or failures of `error_class` that will retry."""
    status = DeliveryStatus.RETRYING if error_class else DeliveryStatus.SUCCEEDED
    Attempt.objects.bulk_create(
        Attempt(
            delivery=delivery,
            number=1,
            started_at=clock.now(),
            duration_ms=1.0,
            outcome="retrying" if error_class else "succeeded",
            error_class=error_class,
        )
        for delivery in delivery_rows(flow, n, status=status)
    )


def finish_everything(flow: Flow) -> None:
    """Every delivery of the flow delivered, now (the queue empties, dead ones were replayed)."""
    Delivery.objects.filter(flow=flow).exclude(status=DeliveryStatus.SUCCEEDED).update(
        status=DeliveryStatus.SUCCEEDED, finished_at=clock.now()
    )


def flows_with_every_kind(n: int, flow, *, start: int = 0) -> None:
    """`n` more flows like `flow`, each with a rule of every kind and some traffic. Each has two
    alerts firing: deliveries are waiting (more than one), and its target (the same for all) has
    failed to connect more than five times in a row."""
    for i in range(start, start + n):
        other = flow_with_mapping(
            source_model=flow.source_model,
            target_model=flow.target_model,
            rules=[{"target": "total", "source": "amount"}],
            event_type="deal.won",
            name=f"{flow.name} {i}",
        )
        for kind, condition in CONDITIONS.items():
            values = {**condition.defaults(), **({"threshold": 1} if kind == "queue_depth" else {})}
            alert_rule_create(flow=other, kind=kind, actor=None, **values)
        events_arrive(other)
        delivery_rows(other, 2)
        attempt_rows(other, 2, error_class="timeout")
