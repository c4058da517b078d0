"""Metric rows. Each model names its key, the columns that add up (ADDED) and the columns that
keep the larger value (HIGHEST): the one upsert (upsert.py) and the roll-up read those lists, so
a new column is one line here and one in a migration."""

from django.db import models

from connectors.models import System
from hub.metrics.buckets import Span
from hub.models import Flow


def counter() -> models.PositiveBigIntegerField:
    return models.PositiveBigIntegerField(default=0)


def flow_key() -> models.ForeignKey:
    return models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="+", db_index=False)


def unique_key(name: str, *fields: str) -> list[models.UniqueConstraint]:
    """The key rows are added into (upsert.py's ON CONFLICT target)."""
    return [models.UniqueConstraint(fields=list(fields), name=f"metrics_{name}_key")]


def span_index(name: str) -> list[models.Index]:
    """Read by the roll-up and retention: every subject's rows of one span in a time range."""
    return [models.Index(fields=["span", "start"], name=f"metrics_{name}_span_idx")]


def row_label(row: models.Model) -> str:
    return " ".join(str(getattr(row, name)) for name in row.KEY)


class Bucketed(models.Model):
    span = models.CharField(max_length=1, choices=Span.choices)
    start = models.DateTimeField()

    KEY: tuple[str, ...] = ()
    ADDED: tuple[str, ...] = ()
    HIGHEST: tuple[str, ...] = ()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return row_label(self)


class SystemCount(Bucketed):
    """Events a system sent in one bucket, and what became of them at ingest."""

    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="+", db_index=False)
    received = counter()
    duplicates = counter()
    # Events some flow subscribed to whose every flow's filter left them out.
    filtered_out = counter()
    # Events no flow subscribes to: stored, but nothing delivers them.
    not_subscribed = counter()
    last_event_at = models.DateTimeField(null=True)

    KEY = ("system_id", "span", "start")
    ADDED = ("received", "duplicates", "filtered_out", "not_subscribed")
    HIGHEST = ("last_event_at",)

    class Meta:
        constraints = unique_key("system", "system", "span", "start")
        indexes = span_index("system")


class FlowCount(Bucketed):
    """A flow's deliveries in one bucket, one row per error class ("" for no error)."""

    flow = flow_key()
    error_class = models.CharField(max_length=30, blank=True)
    queued = counter()  # deliveries created for the flow's events, to be carried out
    filtered_out = counter()  # deliveries the flow's filter left out
    succeeded = counter()
    retried = counter()  # failed attempts that will be tried again
    dead_lettered = counter()
    latency_ms_sum = models.FloatField(default=0.0)  # received -> delivered, of the succeeded
    last_event_at = models.DateTimeField(null=True)
    last_success_at = models.DateTimeField(null=True)

    KEY = ("flow_id", "span", "start", "error_class")
    ADDED = ("queued", "filtered_out", "succeeded", "retried", "dead_lettered", "latency_ms_sum")
    HIGHEST = ("last_event_at", "last_success_at")

    class Meta:
        constraints = unique_key("flow", "flow", "span", "start", "error_class")
        indexes = span_index("flow")


class LatencyCount(Bucketed):
    """How many of a flow's deliveries took as long as latency bucket `bucket` (buckets.py)."""

    flow = flow_key()
    bucket = models.PositiveSmallIntegerField()
    n = counter()

    KEY = ("flow_id", "span", "start", "bucket")
    ADDED = ("n",)

    class Meta:
        constraints = unique_key("latency", "flow", "span", "start", "bucket")
        indexes = span_index("latency")


class QueueSample(Bucketed):
    """A flow's unfinished deliveries, sampled about once a minute by the metrics task."""

    flow = flow_key()
    samples = counter()
    depth_sum = counter()
    depth_max = counter()

    KEY = ("flow_id", "span", "start")
    ADDED = ("samples", "depth_sum")
    HIGHEST = ("depth_max",)

    class Meta:
        constraints = unique_key("queue", "flow", "span", "start")
        indexes = span_index("queue")


BUCKETED: tuple[type[Bucketed], ...] = (SystemCount, FlowCount, LatencyCount, QueueSample)


class Rollup(models.Model):
    """How far rows of the finer span have been added into rows of `span`: everything that
    starts before `done_until`. Reads take the finer rows from there on."""

    span = models.CharField(max_length=1, primary_key=True, choices=Span.choices)
    done_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.span} until {self.done_until:%Y-%m-%d %H:%M}"


class Heartbeat(models.Model):
    """A worker process that drained recently; /readyz calls the workers alive while one did."""

    worker = models.CharField(max_length=100, primary_key=True)
    seen_at = models.DateTimeField()

    KEY = ("worker",)
    HIGHEST = ("seen_at",)

    def __str__(self) -> str:
        return row_label(self)


class CircuitState(models.Model):
    """Until when a worker's circuit breaker rests a target system; deliveries to it wait."""

    system = models.OneToOneField(
        System, on_delete=models.CASCADE, primary_key=True, related_name="circuit_state"
    )
    open_until = models.DateTimeField()

    KEY = ("system_id",)
    HIGHEST = ("open_until",)

    def __str__(self) -> str:
        return row_label(self)
