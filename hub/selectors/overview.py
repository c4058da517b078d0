"""The overview: is everything working? Flows by health, today's traffic, open dead letters, the
last errors and a 24-hour chart, in a fixed number of queries."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.timesince import timesince

from connectors.base import ErrorClass
from connectors.models import System
from hub.models import Attempt, Delivery, DeliveryStatus, Event
from hub.selectors.dashboards import queue_by_target, traffic_since
from hub.selectors.health import HEALTH_LABELS, flows_health, open_dead_letters

# Problems first: the page answers "what needs me?" before "what is fine?".
HEALTH_ORDER = ["failing", "silent", "paused", "idle", "draft", "ok"]
RECENT_ERRORS = 6
CHART_HOURS = 24
CHART = {"width": 720, "height": 200, "gap": 4}


@dataclass
class Bar:
    """One hour's column: succeeded stacked over failed, in SVG units."""

    hour: datetime
    succeeded: int
    failed: int
    index: int
    scale: float  # SVG units per delivery

    @property
    def width(self) -> float:
        return CHART["width"] / CHART_HOURS - CHART["gap"]

    @property
    def x(self) -> float:
        return self.index * CHART["width"] / CHART_HOURS + CHART["gap"] / 2

    @property
    def bad_height(self) -> float:
        return self.failed * self.scale

    @property
    def ok_height(self) -> float:
        return self.succeeded * self.scale

    @property
    def bad_y(self) -> float:
        return CHART["height"] - self.bad_height

    @property
    def ok_y(self) -> float:
        return self.bad_y - self.ok_height

    @property
    def label(self) -> str:
        return f"{timezone.localtime(self.hour):%H}:00" if self.index % 4 == 0 else ""


def error_words(error_class: str) -> str:
    try:
        return ErrorClass(error_class).description
    except ValueError:
        return error_class or ErrorClass.UNKNOWN.description


def delivery_chart(now: datetime) -> dict:
    """Deliveries finished per hour over the last 24 hours, laid out as SVG bars (succeeded over failed)."""
    # Local hours, as TruncHour returns them in the current time zone (which may be a half-hour off UTC).
    start = timezone.localtime(now - timedelta(hours=CHART_HOURS - 1)).replace(
        minute=0, second=0, microsecond=0
    )
    rows = (
        Delivery.objects.filter(
            finished_at__gte=start, status__in=(DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD)
        )
        .annotate(hour=TruncHour("finished_at"))
        .values("hour")
        .annotate(
            ok=Count("id", filter=Q(status=DeliveryStatus.SUCCEEDED)),
            bad=Count("id", filter=Q(status=DeliveryStatus.DEAD)),
        )
        .order_by()
    )
    by_hour = {row["hour"]: row for row in rows if row["hour"] is not None}
    hours = [start + timedelta(hours=i) for i in range(CHART_HOURS)]
    counts = [(by_hour.get(hour, {}).get("ok", 0), by_hour.get(hour, {}).get("bad", 0)) for hour in hours]
    peak = max((ok + bad for ok, bad in counts), default=0)
    scale = CHART["height"] / peak if peak else 0
    bars = [
        Bar(hour=hour, succeeded=ok, failed=bad, index=i, scale=scale)
        for i, (hour, (ok, bad)) in enumerate(zip(hours, counts, strict=True))
    ]
    return {
        "bars": bars,
        "peak": peak,
        **CHART,
        "succeeded": sum(b.succeeded for b in bars),
        "failed": sum(b.failed for b in bars),
    }


def overview(now: datetime | None = None) -> dict:
    now = now or timezone.now()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    health = flows_health()
    counts = {state: 0 for state in HEALTH_ORDER}
    for item in health:
        counts[item.state] += 1
    health.sort(key=lambda h: (HEALTH_ORDER.index(h.state), h.flow.name.lower()))
    today = Delivery.objects.filter(finished_at__gte=midnight).aggregate(
        succeeded=Count("id", filter=Q(status=DeliveryStatus.SUCCEEDED)),
        failed=Count("id", filter=Q(status=DeliveryStatus.DEAD)),
    )
    errors = []
    for attempt in (
        Attempt.objects.exclude(error_class="")
        .select_related("delivery__flow")
        .order_by("-pk")[:RECENT_ERRORS]
    ):
        flow = attempt.delivery.flow
        errors.append(
            {
                "flow": flow,
                "when": attempt.started_at,
                "ago": timesince(attempt.started_at, now, depth=1),
                "what": error_words(attempt.error_class),
                "error_class": attempt.error_class,
                "message": attempt.message,
                "outcome": attempt.outcome,
            }
        )
    queue = queue_by_target()
    return {
        "now": now,
        "traffic": traffic_since(midnight),
        "queue": queue,
        "queue_waiting": sum(row["waiting"] + row["held"] for row in queue),
        "health": health,
        "health_counts": [
            {"state": state, "label": HEALTH_LABELS[state], "count": counts[state]}
            for state in ("ok", "failing", "paused", "silent", "idle")
        ],
        "drafts": counts["draft"],
        "events_today": Event.objects.filter(received_at__gte=midnight).count(),
        "succeeded_today": today["succeeded"],
        "failed_today": today["failed"],
        "open_dead_letters": open_dead_letters(),
        "errors": errors,
        "chart": delivery_chart(now),
        "has_systems": System.objects.exists(),
    }
