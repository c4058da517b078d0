"""Gauges read from the pipeline's own tables when asked: the queue by what it waits for, open
dead letters (through the `dead_letters` relation on Flow; hub never imports dlq), and rates."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q

from hub.models import UNFINISHED, Delivery, DeliveryStatus, Flow, FlowState
from hub.pipeline import clock

WAITING = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
# What an unfinished delivery waits for, each exactly one of these (the first that applies).
QUEUE_STATES = {
    "paused": "held: flow paused",
    "circuit_open": "held: circuit open",
    "in_flight": "in flight",
    "due": "due now",
    "retry_later": "waiting to retry",
}


def _queue_conditions(now: datetime) -> dict[str, Q]:
    not_active = ~Q(flow__state=FlowState.ACTIVE)
    circuit = Q(status__in=WAITING, flow__target_system__circuit_state__open_until__gt=now)
    return {
        "paused": not_active,
        "circuit_open": ~not_active & circuit,
        "in_flight": ~not_active & Q(status=DeliveryStatus.IN_FLIGHT),
        "due": ~not_active & ~circuit & Q(status__in=WAITING, next_attempt_at__lte=now),
        "retry_later": ~not_active & ~circuit & Q(status__in=WAITING, next_attempt_at__gt=now),
    }


@dataclass
class Queue:
    """One flow's unfinished deliveries by state."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUEUE_STATES, 0))

    @property
    def depth(self) -> int:
        return sum(self.counts.values())

    @property
    def waiting(self) -> int:
        """Deliveries a worker will carry out without anyone acting: all but the paused."""
        return self.depth - self.counts["paused"]


def queues(flow_ids=None, *, now: datetime | None = None) -> dict[int, Queue]:
    """Each flow's queue (flows with nothing unfinished are left out), in one query."""
    conditions = _queue_conditions(now or clock.now())
    rows = Delivery.objects.filter(status__in=UNFINISHED)
    if flow_ids is not None:
        rows = rows.filter(flow_id__in=list(flow_ids))
    found = {}
    for row in rows.values("flow_id").annotate(
        **{state: Count("id", filter=condition) for state, condition in conditions.items()}
    ):
        found[row["flow_id"]] = Queue({state: row[state] for state in QUEUE_STATES})
    return found


def open_dead_letters(flow_ids=None) -> dict[int, int]:
    flows = Flow.objects.all() if flow_ids is None else Flow.objects.filter(pk__in=list(flow_ids))
    return dict(
        flows.annotate(n=Count("dead_letters", filter=Q(dead_letters__resolved_at__isnull=True)))
        .filter(n__gt=0)
        .values_list("pk", "n")
    )
