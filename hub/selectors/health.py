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
            # "Outcome unknown" waits for an operator like a dead letter does: it did not get through.
            failed=Count(
                "id",
                filter=Q(status__in=(DeliveryStatus.DEAD, DeliveryStatus.UNKNOWN), finished_at__gte=since),
            ),
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
    retrying = row.get("retrying", 0)
    for check in (_switched_off, _failing, _poll_late, _no_events):
        verdict = check(flow, health, retrying=retrying, last_polled=last_polled, now=now)
        if verdict:
            health.state, health.reason = verdict
            break
    else:
        health.reason = f"{health.succeeded} delivered in the last 24 hours."
    return health


# Each check returns (state, reason) when it applies; the first that applies wins.


def _switched_off(flow: Flow, health: FlowHealth, **_) -> tuple[str, str] | None:
    if flow.state == FlowState.DRAFT:
        return "draft", "Not enabled yet."
    if flow.state == FlowState.PAUSED:
        return "paused", flow.paused_reason or "Paused."
    return None


def _failing(flow: Flow, health: FlowHealth, *, retrying: int, **_) -> tuple[str, str] | None:
    if not (retrying or health.failed or health.open_dead_letters):
        return None
    parts = []
    if retrying:
        parts.append(f"{retrying} retrying")
    if health.open_dead_letters:
        parts.append(f"{health.open_dead_letters} in the dead-letter inbox")
    return "failing", ", ".join(parts) or f"{health.failed} failed today"


def _poll_late(flow: Flow, health: FlowHealth, *, last_polled, now: datetime, **_) -> tuple[str, str] | None:
    if flow.trigger != Trigger.SCHEDULED or not flow.schedule_minutes or not last_polled:
        return None
    if now - last_polled <= timedelta(minutes=3 * flow.schedule_minutes):
        return None
    return (
        "silent",
        f"Last poll {timezone.localtime(last_polled):%H:%M}; expected every {flow.schedule_minutes} min.",
    )


def _no_events(flow: Flow, health: FlowHealth, *, now: datetime, **_) -> tuple[str, str] | None:
    last = health.last_activity
    if flow.silence_after_minutes and (
        last is None or now - last > timedelta(minutes=flow.silence_after_minutes)
    ):
        return "silent", f"No events for more than {flow.silence_after_minutes} minutes."
    if last is None:
        return "idle", "No events have arrived yet."
    return None
