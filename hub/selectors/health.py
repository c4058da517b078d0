"""Flow health at a glance: ok, failing, paused, silent, draft or idle, with the figures behind it."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q
from django.utils import timezone

from hub.models import Cursor, Delivery, DeliveryStatus, Flow, FlowState, Trigger

WINDOW = timedelta(hours=24)
# Dead letters are the dlq app's rows; hub reads them through the relation that app adds to
# Flow, so it never imports dlq (dlq depends on hub, not both ways).
OPEN_LETTER = Q(dead_letters__resolved_at__isnull=True)
HEALTH_LABELS = {
    "ok": "Working",
    "failing": "Failing",
    "paused": "Paused",
    "silent": "Silent",
    "draft": "Draft",
    "idle": "No traffic yet",
}


@dataclass
class FlowHealth:
    flow: Flow
    state: str
    reason: str
    succeeded: int = 0
    failed: int = 0
    waiting: int = 0
    open_dead_letters: int = 0
    last_activity: datetime | None = None
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return HEALTH_LABELS[self.state]


def open_dead_letters() -> int:
    """Dead letters ops have not replayed or discarded yet, over all flows."""
    return Flow.objects.aggregate(n=Count("dead_letters", filter=OPEN_LETTER))["n"] or 0


def flows_health(flows=None, *, now: datetime | None = None) -> list[FlowHealth]:
    """Health of every flow (or the given ones) in a fixed number of queries."""
    now = now or timezone.now()
    since = now - WINDOW
    flows = list(
        flows if flows is not None else Flow.objects.select_related("source_system", "target_system")
    )
    ids = [f.pk for f in flows]
    counts = {
        row["flow_id"]: row
        for row in Delivery.objects.filter(flow_id__in=ids)
        .values("flow_id")
        .annotate(
            succeeded=Count("id", filter=Q(status=DeliveryStatus.SUCCEEDED, finished_at__gte=since)),
            failed=Count("id", filter=Q(status=DeliveryStatus.DEAD, finished_at__gte=since)),
            retrying=Count("id", filter=Q(status=DeliveryStatus.RETRYING)),
            waiting=Count("id", filter=Q(status__in=(DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT))),
            last=Max("created_at"),
        )
    }
    dead = dict(
        Flow.objects.filter(pk__in=ids)
        .annotate(n=Count("dead_letters", filter=OPEN_LETTER))
        .values_list("pk", "n")
    )
    polled = dict(Cursor.objects.filter(flow_id__in=ids).values_list("flow_id", "last_polled_at"))
    return [_health(f, counts.get(f.pk, {}), dead.get(f.pk, 0), polled.get(f.pk), now) for f in flows]


def _health(flow: Flow, row: dict, open_dead: int, last_polled, now: datetime) -> FlowHealth:
    health = FlowHealth(
        flow=flow,
        state="ok",
        reason="",
        succeeded=row.get("succeeded", 0),
        failed=row.get("failed", 0),
        waiting=row.get("waiting", 0) + row.get("retrying", 0),
        open_dead_letters=open_dead,
        last_activity=row.get("last"),
    )
    if flow.state == FlowState.DRAFT:
        health.state, health.reason = "draft", "Not enabled yet."
    elif flow.state == FlowState.PAUSED:
        health.state, health.reason = "paused", flow.paused_reason or "Paused."
    elif row.get("retrying", 0) or health.failed or open_dead:
        health.state = "failing"
        parts = []
        if row.get("retrying"):
            parts.append(f"{row['retrying']} retrying")
        if open_dead:
            parts.append(f"{open_dead} in the dead-letter inbox")
        health.reason = ", ".join(parts) or f"{health.failed} failed today"
    elif (
        flow.trigger == Trigger.SCHEDULED
        and flow.schedule_minutes
        and last_polled
        and (now - last_polled > timedelta(minutes=3 * flow.schedule_minutes))
    ):
        health.state, health.reason = (
            "silent",
            f"Last poll {timezone.localtime(last_polled):%H:%M}; expected every {flow.schedule_minutes} min.",
        )
    elif flow.silence_after_minutes and (
        health.last_activity is None
        or now - health.last_activity > timedelta(minutes=flow.silence_after_minutes)
    ):
        health.state, health.reason = (
            "silent",
            f"No events for more than {flow.silence_after_minutes} minutes.",
        )
    elif health.last_activity is None:
        health.state, health.reason = "idle", "No events have arrived yet."
    else:
        health.reason = f"{health.succeeded} delivered in the last 24 hours."
    return health
