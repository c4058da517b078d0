"""Counting as the pipeline works, without a query per delivery: ingest adds up one request's
events and a worker one batch's outcomes in memory, then writes each table with one upsert inside
the same transaction, so the counts commit (or roll back) with the rows they count."""

import time
from collections import defaultdict
from datetime import datetime

from hub.metrics.buckets import Span, bucket_start, latency_bucket
from hub.metrics.models import CircuitState, FlowCount, Heartbeat, LatencyCount, SystemCount
from hub.metrics.upsert import upsert_add
from hub.models import Delivery, DeliveryStatus
from hub.pipeline import clock

# Counters land in the minute bucket of the moment they are recorded and in the running total.
RECORDED_SPANS = (Span.MINUTE, Span.TOTAL)
HEARTBEAT_EVERY_SECONDS = 10.0


def _bucketed(now: datetime, rows: dict[tuple, dict], key_names: tuple[str, ...]) -> list[dict]:
    """One row per span per key, each with its key fields filled in."""
    return [
        {**dict(zip(key_names, key, strict=True)), "span": span, "start": bucket_start(now, span), **values}
        for key, values in rows.items()
        for span in RECORDED_SPANS
    ]


class IngestTally:
    """What one ingest request did, per system and per flow."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.systems: dict[tuple, dict] = defaultdict(
            lambda: {"received": 0, "duplicates": 0, "filtered_out": 0, "not_subscribed": 0}
        )
        self.flows: dict[tuple, dict] = defaultdict(lambda: {"queued": 0, "filtered_out": 0})

    def duplicate(self, system_id: int) -> None:
        self.systems[(system_id,)]["duplicates"] += 1

    def stored(self, system_id: int, deliveries: list[Delivery]) -> None:
        counts = self.systems[(system_id,)]
        counts["received"] += 1
        counts["last_event_at"] = self.now
        if not deliveries:
            counts["not_subscribed"] += 1
        elif all(d.status == DeliveryStatus.SKIPPED for d in deliveries):
            counts["filtered_out"] += 1
        for delivery in deliveries:
            flow = self.flows[(delivery.flow_id, "")]
            flow["last_event_at"] = self.now
            flow["filtered_out" if delivery.status == DeliveryStatus.SKIPPED else "queued"] += 1

    def save(self) -> None:
        upsert_add(SystemCount, _bucketed(self.now, self.systems, ("system_id",)))
        upsert_add(FlowCount, _bucketed(self.now, self.flows, ("flow_id", "error_class")))


class DeliveryTally:
    """One batch's outcomes, per flow and error class, with the latency histogram."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.flows: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
        self.latency: dict[tuple, dict] = defaultdict(lambda: {"n": 0})
        self.circuits: dict[int, datetime] = {}

    def succeeded(self, delivery: Delivery) -> None:
        """Counted with its latency: from the event's arrival to now."""
        ms = max(0.0, (self.now - delivery.event.received_at).total_seconds() * 1000)
        row = self.flows[(delivery.flow_id, "")]
        row["succeeded"] += 1
        row["latency_ms_sum"] += ms
        row["last_success_at"] = self.now
        self.latency[(delivery.flow_id, latency_bucket(ms))]["n"] += 1

    def failed(self, flow_id: int, error_class: str, *, dead: bool) -> None:
        self.flows[(flow_id, str(error_class))]["dead_lettered" if dead else "retried"] += 1

    def circuit_open(self, system_id: int, until: datetime) -> None:
        self.circuits[system_id] = max(until, self.circuits.get(system_id, until))

    def save(self) -> None:
        upsert_add(FlowCount, _bucketed(self.now, self.flows, ("flow_id", "error_class")))
        upsert_add(LatencyCount, _bucketed(self.now, self.latency, ("flow_id", "bucket")))
        upsert_add(CircuitState, ({"system_id": s, "open_until": t} for s, t in self.circuits.items()))


_last_heartbeat: dict[str, float] = {}


def worker_heartbeat(worker: str) -> None:
    """Tell /readyz this worker process is draining; written at most every few seconds."""
    if time.monotonic() - _last_heartbeat.get(worker, -HEARTBEAT_EVERY_SECONDS) < HEARTBEAT_EVERY_SECONDS:
        return
    _last_heartbeat[worker] = time.monotonic()
    upsert_add(Heartbeat, [{"worker": worker, "seen_at": clock.now()}])
