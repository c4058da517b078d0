"""The /metrics document in Prometheus' text exposition format (version 0.0.4): counters as
totals since the beginning, gauges read now, and the latency histogram. Labels stay bounded:
flows by id, systems by slug, error classes from the fixed taxonomy."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings

from connectors import ratelimit
from connectors.breaker import WINDOW_SECONDS, status_of
from connectors.models import Circuit, System
from hub.metrics import gauges
from hub.metrics.buckets import LATENCY_BUCKETS, Span, bucket_upper_ms
from hub.metrics.models import FlowCount, Heartbeat, LatencyCount, SystemCount
from hub.models import Flow, FlowState
from hub.pipeline import clock

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SYSTEM_COUNTERS = {
    "received": "Events a system sent that were stored (repeats not counted).",
    "duplicates": "Events a system sent again under a key already stored; not delivered again.",
    "filtered_out": "Stored events that every subscribed flow's filter left out.",
    "not_subscribed": "Stored events no flow subscribes to: kept, but nothing delivers them.",
}
FLOW_COUNTERS = {
    "queued": "Deliveries created for a flow's events, to be carried out.",
    "filtered_out": "Deliveries a flow's filter left out.",
    "succeeded": "Deliveries the target accepted.",
}
FLOW_ERROR_COUNTERS = {
    "retried": "Failed attempts that will be tried again, by error class.",
    "dead_lettered": "Deliveries given up and put in the dead-letter inbox, by error class.",
}
BREAKER_STATES = {"closed": 0, "open": 1, "half-open": 2}
TARGET_FIELDS = ("pk", "slug", "rate_limit_per_second", *(f"circuit__{f.name}" for f in Circuit._meta.fields))
# Every other bound of the stored histogram (each twice the last, 1 ms to about 75 hours).
EXPOSED_BUCKETS = range(0, LATENCY_BUCKETS, 2)


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: object) -> str:
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items()) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Document:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: Iterable[tuple[str, dict, float]]
    ) -> None:
        """One metric family: its HELP and TYPE lines, then (suffix, labels, value) samples."""
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.lines += [
            f"{name}{suffix}{_labels(**labels)} {_number(value)}" for suffix, labels, value in samples
        ]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def exposition(*, now: datetime | None = None) -> str:
    now = now or clock.now()
    max_age = settings.HUB_WORKER_HEARTBEAT_MAX_AGE
    doc = Document()
    # With each one's circuit breaker row, when it has one (a reverse one-to-one, so a LEFT JOIN).
    systems = list(System.objects.select_related("circuit").only(*TARGET_FIELDS))
    slugs = {system.pk: system.slug for system in systems}
    flows = list(Flow.objects.exclude(state=FlowState.DRAFT).select_related("source_system", "target_system"))
    _systems(doc, slugs, now)
    _targets(doc, systems, now)
    _flows(doc, flows, now)
    _latency(doc)
    doc.family(
        "hub_workers_alive",
        "gauge",
        "Worker processes that drained within HUB_WORKER_HEARTBEAT_MAX_AGE seconds.",
        [("", {}, Heartbeat.objects.filter(seen_at__gte=now - timedelta(seconds=max_age)).count())],
    )
    return doc.text()


def _age(moment: datetime, now: datetime) -> float:
    return max(0.0, (now - moment).total_seconds())


def _systems(doc: Document, slugs: dict[int, str], now: datetime) -> None:
    rows = {row.system_id: row for row in SystemCount.objects.filter(span=Span.TOTAL)}
    for name, help_text in SYSTEM_COUNTERS.items():
        doc.family(
            f"hub_events_{name}_total",
            "counter",
            help_text,
            [
                ("", {"system": slug}, getattr(rows[pk], name) if pk in rows else 0)
                for pk, slug in slugs.items()
            ],
        )
    seen = [
        ({"system": slugs[pk]}, row.last_event_at)
        for pk, row in rows.items()
        if row.last_event_at and pk in slugs
    ]
    _moments(doc, "hub_system_last_event", "a system's last event arrived", seen, now)


def _targets(doc: Document, systems: list[System], now: datetime) -> None:
    """Each system's circuit breaker and rate limit, as every worker sees them."""
    moment = now.timestamp()
    breakers = {s.pk: status_of(getattr(s, "circuit", None), now=moment) for s in systems}
    doc.family(
        "hub_circuit_breaker_state",
        "gauge",
        "Each system's circuit breaker, shared by all workers: 0 closed, 1 open (calls held), "
        "2 half-open (one probe call).",
        [("", {"system": s.slug}, BREAKER_STATES[breakers[s.pk].label]) for s in systems],
    )
    doc.family(
        "hub_circuit_breaker_failure_ratio",
        "gauge",
        f"Share of calls in the last {WINDOW_SECONDS} s that failed to connect, timed out, answered 5xx "
        "or left the outcome unknown; while open, of the calls that opened it.",
        [
            ("", {"system": s.slug}, breakers[s.pk].window.failure_rate)
            for s in systems
            if breakers[s.pk].window.calls
        ],
    )
    paces = ratelimit.paces(systems, now=moment)
    doc.family(
        "hub_rate_limit_configured_per_second",
        "gauge",
        "The rate limit set on a system (absent: none set).",
        [("", {"system": s.slug}, s.rate_limit_per_second) for s in systems if s.rate_limit_per_second],
    )
    doc.family(
        "hub_rate_limit_in_force_per_second",
        "gauge",
        "Requests per second the hub allows itself now: the configured limit, or less after the "
        "system answered 429, recovering over time (absent: no limit).",
        [("", {"system": s.slug}, paces[s.pk].current) for s in systems if paces[s.pk].current],
    )


def _moments(doc: Document, name: str, what: str, seen: list[tuple[dict, datetime]], now: datetime) -> None:
    """A moment as two gauges: when (Unix time) and how many seconds ago."""
    doc.family(
        f"{name}_timestamp_seconds",
        "gauge",
        f"When {what} (Unix time).",
        [("", labels, at.timestamp()) for labels, at in seen],
    )
    doc.family(
        f"{name}_age_seconds",
        "gauge",
        f"Seconds since {what}.",
        [("", labels, _age(at, now)) for labels, at in seen],
    )


def _flows(doc: Document, flows: list[Flow], now: datetime) -> None:
    ids = [flow.pk for flow in flows]
    doc.family(
        "hub_flow_info",
        "gauge",
        "Each flow's name, systems and state; join on the flow label.",
        [("", _flow_labels(f), 1) for f in flows],
    )
    by_class: dict[int, dict[str, FlowCount]] = defaultdict(dict)
    for row in FlowCount.objects.filter(span=Span.TOTAL, flow_id__in=ids):
        by_class[row.flow_id][row.error_class] = row
    _flow_counters(doc, ids, by_class)
    _flow_gauges(doc, ids, now)
    successes = [
        ({"flow": pk}, by_class[pk][""].last_success_at)
        for pk in ids
        if getattr(by_class[pk].get(""), "last_success_at", None)
    ]
    _moments(doc, "hub_flow_last_success", "a flow last delivered a record", successes, now)


def _flow_labels(flow: Flow) -> dict:
    return {
        "flow": flow.pk,
        "name": flow.name,
        "source": flow.source_system.slug,
        "target": flow.target_system.slug,
        "state": flow.state,
    }


def _flow_counters(doc: Document, ids: list[int], by_class: dict[int, dict[str, FlowCount]]) -> None:
    for name, help_text in FLOW_COUNTERS.items():
        samples = [("", {"flow": pk}, getattr(by_class[pk].get(""), name, 0)) for pk in ids]
        doc.family(f"hub_deliveries_{name}_total", "counter", help_text, samples)
    for name, help_text in FLOW_ERROR_COUNTERS.items():
        samples = [
            ("", {"flow": pk, "error_class": error_class}, getattr(row, name))
            for pk in ids
            for error_class, row in sorted(by_class[pk].items())
            if error_class and getattr(row, name)
        ]
        doc.family(f"hub_deliveries_{name}_total", "counter", help_text, samples)


def _flow_gauges(doc: Document, ids: list[int], now: datetime) -> None:
    queues = gauges.queues(ids, now=now)
    states = "; ".join(f"{k}: {v}" for k, v in gauges.QUEUE_STATES.items())
    doc.family(
        "hub_queue_depth",
        "gauge",
        f"Unfinished deliveries by what they wait for ({states}).",
        [
            ("", {"flow": pk, "state": state}, queues[pk].counts[state] if pk in queues else 0)
            for pk in ids
            for state in gauges.QUEUE_STATES
        ],
    )
    letters = gauges.open_dead_letters(ids)
    doc.family(
        "hub_dead_letters_open",
        "gauge",
        "Dead letters not replayed or discarded yet.",
        [("", {"flow": pk}, letters.get(pk, 0)) for pk in ids],
    )


def _latency(doc: Document) -> None:
    counts: dict[int, dict[int, int]] = defaultdict(dict)
    for flow_id, bucket, n in LatencyCount.objects.filter(span=Span.TOTAL).values_list(
        "flow_id", "bucket", "n"
    ):
        counts[flow_id][bucket] = n
    sums = dict(
        FlowCount.objects.filter(span=Span.TOTAL, error_class="", flow_id__in=list(counts)).values_list(
            "flow_id", "latency_ms_sum"
        )
    )
    samples = []
    for flow_id in sorted(counts):
        seen = 0
        for bound in EXPOSED_BUCKETS:
            seen += sum(n for bucket, n in counts[flow_id].items() if bound - 2 < bucket <= bound)
            samples.append(("_bucket", {"flow": flow_id, "le": _number(bucket_upper_ms(bound) / 1000)}, seen))
        total = sum(counts[flow_id].values())
        samples += [
            ("_bucket", {"flow": flow_id, "le": "+Inf"}, total),
            ("_sum", {"flow": flow_id}, sums.get(flow_id, 0.0) / 1000),
            ("_count", {"flow": flow_id}, total),
        ]
    doc.family(
        "hub_delivery_latency_seconds",
        "histogram",
        "Seconds from an event's arrival to its delivery, of the deliveries that succeeded.",
        samples,
    )
