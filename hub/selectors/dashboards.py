"""The dashboards of a flow and of a system: volume, errors by class, latency percentiles and
queue depth over a range, and the gauges of this moment, as JSON-ready dicts."""

from collections import defaultdict
from datetime import datetime, timedelta

from connectors.models import System
from hub.metrics import gauges
from hub.metrics.buckets import SPAN_SECONDS, Span, bucket_starts, percentile_ms
from hub.metrics.models import FlowCount, LatencyCount, QueueSample, SystemCount
from hub.metrics.series import collect
from hub.models import Flow
from hub.pipeline import clock

# Each range and the resolution it is drawn at.
RANGES = {
    "hour": ("Last hour", timedelta(hours=1), Span.MINUTE),
    "day": ("Last 24 hours", timedelta(days=1), Span.HOUR),
    "week": ("Last 7 days", timedelta(days=7), Span.HOUR),
    "month": ("Last 30 days", timedelta(days=30), Span.DAY),
}
PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


class UnknownRange(ValueError):
    pass


def _axis(range_name: str, now: datetime) -> tuple[str, list[datetime]]:
    if range_name not in RANGES:
        raise UnknownRange(f"unknown range {range_name!r}: use one of {', '.join(RANGES)}")
    _, length, span = RANGES[range_name]
    starts = bucket_starts(now - length + timedelta(seconds=SPAN_SECONDS[span]), now, span)
    return span, starts


def _line(totals, starts, name: str, *, where=lambda key: True) -> list[float]:
    """One column per bucket, added over the rows of each bucket that `where` keeps."""
    by_start: dict[datetime, float] = defaultdict(float)
    for key, values in totals.items():
        if where(key):
            by_start[key[0]] += values[name]
    return [by_start.get(start, 0) for start in starts]


def _deliveries(starts, span: str, **filters) -> dict:
    """Volume, errors by class, latency percentiles and queue depth of the matching flows."""
    since = starts[0]
    counts = collect(FlowCount, span, since, group=("error_class",), **filters)
    histogram: dict[datetime, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for (start, bucket), values in collect(LatencyCount, span, since, group=("bucket",), **filters).items():
        histogram[start][bucket] += values["n"]
    errors = {}
    for error_class in sorted({key[1] for key in counts if key[1]}):
        failed = [
            a + b
            for a, b in zip(
                _line(counts, starts, "retried", where=lambda k, c=error_class: k[1] == c),
                _line(counts, starts, "dead_lettered", where=lambda k, c=error_class: k[1] == c),
                strict=True,
            )
        ]
        if any(failed):
            errors[error_class] = failed
    queue = collect(QueueSample, span, since, group=("flow_id",), **filters)
    return {
        "volume": {
            name: _line(counts, starts, name)
            for name in ("queued", "filtered_out", "succeeded", "dead_lettered")
        },
        "retried": _line(counts, starts, "retried"),
        "errors": errors,
        "latency_ms": {
            name: [_rounded(percentile_ms(histogram.get(start, {}), fraction)) for start in starts]
            for name, fraction in PERCENTILES.items()
        },
        "queue": _queue_series(queue, starts),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _queue_series(samples, starts) -> dict[str, list]:
    """Average and highest queue depth per bucket, added over flows (None: nothing sampled)."""
    average: dict[datetime, float] = {}
    highest: dict[datetime, float] = {}
    for (start, _flow), values in samples.items():
        if values["samples"]:
            average[start] = average.get(start, 0) + values["depth_sum"] / values["samples"]
            highest[start] = highest.get(start, 0) + values["depth_max"]
    return {
        "average": [_rounded(average.get(start)) for start in starts],
        "highest": [highest.get(start) for start in starts],
    }


def _now_figures(flows: list[Flow], now: datetime) -> dict:
    ids = [flow.pk for flow in flows]
    queues = gauges.queues(ids, now=now)
    states = dict.fromkeys(gauges.QUEUE_STATES, 0)
    for queue in queues.values():
        for state, n in queue.counts.items():
            states[state] += n
    latest = FlowCount.objects.filter(flow_id__in=ids, span=Span.TOTAL, error_class="")
    last_success = max((t for t in latest.values_list("last_success_at", flat=True) if t), default=None)
    last_event = max((t for t in latest.values_list("last_event_at", flat=True) if t), default=None)
    return {
        "queue": states,
        "queue_labels": gauges.QUEUE_STATES,
        "dead_letters": sum(gauges.open_dead_letters(ids).values()),
        "last_event_at": last_event,
        "last_success_at": last_success,
    }


def _frame(range_name: str, now: datetime) -> tuple[str, list[datetime], dict]:
    span, starts = _axis(range_name, now)
    return (
        span,
        starts,
        {
            "range": range_name,
            "ranges": {name: label for name, (label, _, _) in RANGES.items()},
            "step_seconds": SPAN_SECONDS[span],
            "t": [int(start.timestamp()) for start in starts],
            "now": int(now.timestamp()),
        },
    )


def flow_dashboard(flow: Flow, range_name: str, *, now: datetime | None = None) -> dict:
    now = now or clock.now()
    span, starts, frame = _frame(range_name, now)
    return {**frame, **_deliveries(starts, span, flow=flow), "gauges": _now_figures([flow], now)}


def system_dashboard(system: System, range_name: str, *, now: datetime | None = None) -> dict:
    """Events the system sent, and the deliveries of the flows that write into it."""
    now = now or clock.now()
    span, starts, frame = _frame(range_name, now)
    received = collect(SystemCount, span, starts[0], system=system)
    incoming = list(Flow.objects.filter(target_system=system))
    return {
        **frame,
        **_deliveries(starts, span, flow__target_system=system),
        "events": {
            name: _line(received, starts, name)
            for name in ("received", "duplicates", "filtered_out", "not_subscribed")
        },
        "gauges": {
            **_now_figures(incoming, now),
            # The events it sent itself, not those of the flows that write into it.
            "last_event_at": SystemCount.objects.filter(system=system, span=Span.TOTAL)
            .values_list("last_event_at", flat=True)
            .first(),
        },
    }


def traffic_since(since: datetime) -> dict:
    """Events received since `since` and what became of them, for the overview's explanation
    of why events and deliveries are different numbers."""
    events = collect(SystemCount, Span.MINUTE, since)
    deliveries = collect(FlowCount, Span.MINUTE, since)

    def added(totals, name: str) -> int:
        return int(sum(values[name] for values in totals.values()))

    return {
        "received": added(events, "received"),
        "duplicates": added(events, "duplicates"),
        "not_subscribed": added(events, "not_subscribed"),
        "filtered_out": added(events, "filtered_out"),
        "queued": added(deliveries, "queued"),
        "deliveries_filtered_out": added(deliveries, "filtered_out"),
        "succeeded": added(deliveries, "succeeded"),
        "dead_lettered": added(deliveries, "dead_lettered"),
        "retried": added(deliveries, "retried"),
    }


RECENT = timedelta(minutes=15)


def queue_by_target(*, now: datetime | None = None) -> list[dict]:
    """Per target system with deliveries waiting: how many, and how long they take to drain at
    its rate limit (or, with no limit, at the pace it was delivered to over the last minutes)."""
    now = now or clock.now()
    queues = gauges.queues(now=now)
    if not queues:
        return []
    targets = dict(Flow.objects.filter(pk__in=list(queues)).values_list("pk", "target_system_id"))
    waiting: dict[int, int] = defaultdict(int)
    held: dict[int, int] = defaultdict(int)
    for flow_id, queue in queues.items():
        waiting[targets[flow_id]] += queue.waiting
        held[targets[flow_id]] += queue.counts["paused"]
    recent: dict[int, float] = defaultdict(float)
    for (_, flow_id), values in collect(FlowCount, Span.MINUTE, now - RECENT, group=("flow_id",)).items():
        if flow_id in targets:
            recent[targets[flow_id]] += values["succeeded"]
    rows = []
    for system in System.objects.filter(pk__in=set(targets.values())).order_by("name"):
        rate = system.rate_limit_per_second or recent[system.pk] / RECENT.total_seconds() or None
        rows.append(
            {
                "system": system,
                "waiting": waiting[system.pk],
                "held": held[system.pk],
                "rate": rate,
                "limited": bool(system.rate_limit_per_second),
                "drain": duration_words(waiting[system.pk] / rate) if rate and waiting[system.pk] else "",
            }
        )
    return rows


def duration_words(seconds: float) -> str:
    """A time to drain in plain words: "under a second", "40 seconds", "12 minutes", "3.5 hours"."""
    if seconds < 1:
        return "under a second"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= 2 * size or (unit == "minute" and seconds >= 90):
            value = round(seconds / size, 1 if seconds < 10 * size else None)
            return f"{value:g} {unit}s"
    return f"{round(seconds)} seconds"
