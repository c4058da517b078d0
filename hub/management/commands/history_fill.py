"""Fill a scratch database with a realistic sync history, fast, to measure the history search,
the exports and database growth: `manage.py history_fill --deliveries 1000000`.

An online shop's orders (two events each: created, then paid) go to accounting as invoices and
to inventory as reservations, so every event has two deliveries: most succeed, some are filtered
out, retried, or dead-lettered (half of those worked by an operator). Rows are written with
multi-row INSERTs in batches, one transaction per batch; the flows are paused, so no worker
tries to send the sample deliveries anywhere.
"""

import json
import random
import time
import uuid
from datetime import timedelta
from functools import partial

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from connectors.models import System
from hub.models import Attempt, Delivery, DeliveryStatus, Event, Flow, FlowState
from hub.services.mappings import mapping_version_save
from mappings.models import DataModel, Mapping

SLUG_PREFIX = "fill-"
DELIVERIES_PER_EVENT = 2
MAX_PARAMS = 30_000  # SQLite allows 32,766 parameters in one statement
TARGETS = (
    ("fill-books", "Fill Books", "Invoice", "/invoices", "inv", "Sample orders to invoices"),
    ("fill-stock", "Fill Stock", "Reservation", "/reservations", "res", "Sample orders to reservations"),
)
FILTER_TEXT = "filtered out: the event does not match “total is at least 5”"


class Command(BaseCommand):
    help = "Fill a SCRATCH database with sample events, deliveries, attempts and dead letters."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--deliveries", type=int, default=1_000_000)
        parser.add_argument("--days", type=float, default=30.0, help="Spread the events over this many days.")
        parser.add_argument("--batch", type=int, default=1000, help="Events per transaction.")
        parser.add_argument("--seed", type=int, default=1042)
        parser.add_argument("--force", action="store_true", help="Run even where real events exist.")

    def handle(self, *args, **options) -> None:
        if not options["force"] and Event.objects.exclude(system__slug__startswith=SLUG_PREFIX).exists():
            raise CommandError("this database holds real events: history_fill is for a scratch database")
        events = max(1, options["deliveries"] // DELIVERIES_PER_EVENT)
        filler = Filler(seed=options["seed"], days=options["days"], events=events)
        started = time.monotonic()
        done = 0
        while done < events:
            size = min(options["batch"], events - done)
            filler.write_batch(start=done, size=size)
            done += size
            if done % 50_000 < size:
                self.stdout.write(f"{done:,} events, {done * DELIVERIES_PER_EVENT:,} deliveries")
        filler.finish()
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"wrote {events:,} events, {filler.deliveries:,} deliveries, {filler.attempts:,} attempts, "
            f"{filler.letters:,} dead letters in {elapsed:.1f} s"
        )


def _sample_setup() -> tuple[System, list[Flow]]:
    """The shop, its two targets and the paused flows between them (created once)."""
    shop, _ = System.objects.get_or_create(
        slug="fill-shop",
        defaults={"name": "Fill Shop", "base_url": "http://127.0.0.1:9", "record_path": "data"},
    )
    order, _ = DataModel.objects.get_or_create(
        system=shop, name="Order", defaults={"resource_path": "/orders"}
    )
    flows = []
    for slug, name, model_name, resource, _, flow_name in TARGETS:
        target, _ = System.objects.get_or_create(
            slug=slug, defaults={"name": name, "base_url": f"http://{slug}.example"}
        )
        model, _ = DataModel.objects.get_or_create(
            system=target, name=model_name, defaults={"resource_path": resource}
        )
        mapping, created = Mapping.objects.get_or_create(
            name=flow_name, defaults={"source_model": order, "target_model": model}
        )
        if created:
            rules = [
                {"target": "reference", "source": "number"},
                {"target": "email", "source": "customer.email", "transforms": [{"name": "lower"}]},
                {"target": "amount", "source": "total"},
            ]
            mapping_version_save(mapping=mapping, rules=rules, actor=None, comment="history_fill")
        flow, _ = Flow.objects.get_or_create(
            name=flow_name,
            defaults=dict(
                source_system=shop, source_model=order, target_system=target, target_model=model,
                mapping=mapping, state=FlowState.PAUSED, paused_reason="history_fill sample data",
            ),
        )  # fmt: skip
        flows.append(flow)
    return shop, flows


class Filler:
    """Generates the rows of consecutive batches of events and inserts them."""

    def __init__(self, *, seed: int, days: float, events: int) -> None:
        self.rng = random.Random(seed)
        self.shop, self.flows = _sample_setup()
        self.targets = {flow.pk: (prefix, flow.target_system.base_url) for flow, (*_, prefix, _) in zip(
            self.flows, TARGETS, strict=True)}  # fmt: skip
        self.operator = None
        self.offset = Event.objects.filter(system=self.shop).count()
        self.next_delivery = (Delivery.objects.aggregate(top=Max("id"))["top"] or 0) + 1
        now = timezone.now()
        self.start = now - timedelta(days=days)
        self.step = timedelta(days=days) / max(1, events)
        self.deliveries = self.attempts = self.letters = 0
        self.event_rows: list[tuple] = []
        self.delivery_rows: list[tuple] = []
        self.attempt_rows: list[tuple] = []
        self.letter_rows: list[tuple] = []

    # -- one event -------------------------------------------------------------------------

    def _event(self, n: int) -> None:
        order = 1000 + n // 2
        kind = "order.paid" if n % 2 else "order.created"
        at = self.start + self.step * (n - self.offset)
        total = round(self.rng.uniform(1, 900), 2)
        lines = [
            {"sku": f"SKU-{self.rng.randrange(1, 400)}", "qty": self.rng.randrange(1, 5), "price": 9.5}
            for _ in range(self.rng.randrange(1, 4))
        ]
        record = {
            "id": f"ord_{order}", "number": str(order), "status": "paid" if n % 2 else "open",
            "customer": {"name": f"Customer {order}", "email": f"buyer{order}@example.com"},
            "currency": "EUR", "total": total, "lines": lines, "updated_at": at.isoformat(),
        }  # fmt: skip
        payload = {"id": f"evt_{n}", "type": kind, "data": record}
        event_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        self.event_rows.append(
            (event_id, self.shop.pk, kind, f"evt_{n}", record["id"], json.dumps(payload), "webhook", at, 0)
        )
        for flow in self.flows:
            self._delivery(event_id, flow, record, at, skipped=total < 5)

    def _delivery(self, event_id: uuid.UUID, flow: Flow, record: dict, at, *, skipped: bool) -> None:
        pk = self.next_delivery
        self.next_delivery += 1
        self.deliveries += 1
        roll = self.rng.random()
        prefix, base_url = self.targets[flow.pk]
        target_id = f"{prefix}_{record['number']}"
        if skipped:
            row = (DeliveryStatus.SKIPPED, 0, "", FILTER_TEXT, "", at)
        elif roll < 0.02:
            row = (DeliveryStatus.DEAD, 3, "rejected", "422 Unprocessable: email is not valid", "", at)
        elif roll < 0.03:
            row = (DeliveryStatus.RETRYING, 1, "server_error", "503 Service Unavailable", "", None)
        else:
            row = (DeliveryStatus.SUCCEEDED, 1 + (roll > 0.93), "", "", target_id, at)
        status, attempts, error_class, error, target, finished = row
        self.delivery_rows.append(
            (
                pk,
                event_id,
                flow.pk,
                record["id"],
                status,
                attempts,
                at,
                error_class,
                error,
                target,
                at,
                finished,
            )
        )
        for number in range(1, attempts + 1):
            last = number == attempts
            outcome = status if last and status != DeliveryStatus.RETRYING else "retrying"
            self._attempt(pk, number, at, outcome, base_url, record, target_id if last else "")
        if status == DeliveryStatus.DEAD:
            self._letter(pk, flow, at)

    def _attempt(
        self, delivery: int, number: int, at, outcome: str, base_url: str, record: dict, target: str
    ):
        self.attempts += 1
        sent = {
            "reference": record["number"],
            "email": record["customer"]["email"],
            "amount": record["total"],
        }
        request = {
            "method": "POST", "url": f"{base_url}/records", "body": json.dumps(sent),
            "headers": {"Content-Type": "application/json", "Authorization": "[redacted]",
                        "Idempotency-Key": f"hub-{delivery}"},
        }  # fmt: skip
        if outcome == DeliveryStatus.SUCCEEDED:
            status, body, error_class, message = 201, json.dumps({"id": target, **sent}), "", ""
        elif outcome == DeliveryStatus.DEAD:
            status, body = 422, json.dumps({"error": "email is not valid"})
            error_class, message = "rejected", "422 Unprocessable: email is not valid"
        else:
            status, body = 503, "Service Unavailable"
            error_class, message = "server_error", "503 Service Unavailable"
        response = {"status": status, "headers": {"Content-Type": "application/json"}, "body": body}
        started = at + timedelta(seconds=number)
        self.attempt_rows.append(
            (delivery, number, started, 42.0, outcome, error_class, message,
             json.dumps(request), json.dumps(response), "fill:0", 1)
        )  # fmt: skip

    def _letter(self, delivery: int, flow: Flow, at) -> None:
        self.letters += 1
        roll = self.rng.random()
        resolution, note = (
            ("", "") if roll < 0.5 else (("discarded", "test order") if roll < 0.8 else ("replayed", ""))
        )
        resolved_at = at + timedelta(hours=2) if resolution else None
        operator = self._operator() if resolution else None
        self.letter_rows.append(
            (delivery, flow.pk, "rejected", "the target refused the record: email is not valid",
             json.dumps({"status": 422}), 3, at, resolved_at, resolution, operator, note)
        )  # fmt: skip

    def _operator(self) -> int:
        if self.operator is None:
            self.operator, _ = get_user_model().objects.get_or_create(username="fill-ops")
        return self.operator.pk

    # -- writing ---------------------------------------------------------------------------

    def write_batch(self, *, start: int, size: int) -> None:
        for n in range(self.offset + start, self.offset + start + size):
            self._event(n)
        letter_model = Delivery._meta.get_field("dead_letters").related_model
        with transaction.atomic():
            _insert(Event, EVENT_COLUMNS, self.event_rows)
            _insert(Delivery, DELIVERY_COLUMNS, self.delivery_rows)
            _insert(Attempt, ATTEMPT_COLUMNS, self.attempt_rows)
            _insert(letter_model, LETTER_COLUMNS, self.letter_rows)
        self.event_rows, self.delivery_rows, self.attempt_rows, self.letter_rows = [], [], [], []

    def finish(self) -> None:
        """Move the id sequences past the ids given here, and refresh the planner's statistics."""
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [Delivery]):
                cursor.execute(sql)
            if connection.vendor == "postgresql":
                cursor.execute("ANALYZE")


EVENT_COLUMNS = (
    "id", "system", "event_type", "idempotency_key", "record_id", "payload", "origin", "received_at",
    "duplicates_seen",
)  # fmt: skip
DELIVERY_COLUMNS = (
    "id", "event", "flow", "record_key", "status", "attempts", "next_attempt_at", "last_error_class",
    "last_error", "target_id", "created_at", "finished_at",
)  # fmt: skip
ATTEMPT_COLUMNS = (
    "delivery", "number", "started_at", "duration_ms", "outcome", "error_class", "message", "request",
    "response", "worker", "mapping_version",
)  # fmt: skip
LETTER_COLUMNS = (
    "delivery", "flow", "error_class", "reason", "last_response", "attempts", "created_at", "resolved_at",
    "resolution", "resolved_by", "resolution_note",
)  # fmt: skip


def _insert(model, names: tuple[str, ...], rows: list[tuple]) -> None:
    """Multi-row INSERTs of prepared tuples; JSON columns hold JSON text, cast on PostgreSQL."""
    if not rows:
        return
    fields = [model._meta.get_field(name) for name in names]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    is_pg = connection.vendor == "postgresql"
    marks = (
        "("
        + ", ".join("%s::jsonb" if is_pg and f.get_internal_type() == "JSONField" else "%s" for f in fields)
        + ")"
    )
    prepare = [_preparer(f) for f in fields]
    per_statement = max(1, MAX_PARAMS // len(fields))
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        for first in range(0, len(rows), per_statement):
            chunk = rows[first : first + per_statement]
            params = [prep(value) for row in chunk for prep, value in zip(prepare, row, strict=True)]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([marks] * len(chunk)), params
            )


def _preparer(field):
    """How a raw value of this column is handed to the driver (JSON text passes as it is)."""
    target = field.target_field if field.is_relation else field
    kind = target.get_internal_type()
    if kind == "DateTimeField":
        return connection.ops.adapt_datetimefield_value
    if kind == "UUIDField":
        return partial(target.get_db_prep_value, connection=connection)
    return _as_is


def _as_is(value):
    return value
