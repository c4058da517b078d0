"""django-q2 schedule rows, created idempotently: the minutely drain safety net, the hourly
retention purge and one poll schedule per scheduled flow."""

from django_q.models import Schedule

from hub.models import Flow, FlowState, Trigger

DRAIN_SCHEDULE = "hub: drain due deliveries"


def poll_schedule_name(flow_id: int) -> str:
    return f"hub: poll flow {flow_id}"


DRAIN_SCHEDULE_FIELDS = {
    "func": "hub.tasks.deliveries_drain",
    "schedule_type": Schedule.MINUTES,
    "minutes": 1,
    "repeats": -1,
}


RETENTION_SCHEDULE = "hub: purge old payloads"
RETENTION_SCHEDULE_FIELDS = {
    "func": "hub.tasks.retention_purge_task",
    "schedule_type": Schedule.HOURLY,
    "repeats": -1,
}


def _schedule_ensure(name: str, fields: dict, *, using: str) -> bool:
    """Create the named schedule, or put back what differs. Returns whether anything was written."""
    schedule, created = Schedule.objects.using(using).get_or_create(name=name, defaults=fields)
    differing = {k: v for k, v in fields.items() if getattr(schedule, k) != v}
    if differing:
        Schedule.objects.using(using).filter(pk=schedule.pk).update(**differing)
    return created or bool(differing)


def ensure_drain_schedule(*, using: str = "default") -> bool:
    """The minutely drain, the safety net behind the kicks."""
    return _schedule_ensure(DRAIN_SCHEDULE, DRAIN_SCHEDULE_FIELDS, using=using)


def ensure_retention_schedule(*, using: str = "default") -> bool:
    """The hourly retention purge: each run empties what has grown old since, in batches."""
    return _schedule_ensure(RETENTION_SCHEDULE, RETENTION_SCHEDULE_FIELDS, using=using)


def flow_schedule_sync(flow: Flow) -> None:
    name = poll_schedule_name(flow.pk)
    if flow.trigger != Trigger.SCHEDULED or flow.state == FlowState.DRAFT:
        Schedule.objects.filter(name=name).delete()
        return
    if flow.schedule_cron:
        timing = {"schedule_type": Schedule.CRON, "cron": flow.schedule_cron, "minutes": None}
    else:
        timing = {
            "schedule_type": Schedule.MINUTES,
            "minutes": max(1, flow.schedule_minutes or 15),
            "cron": None,
        }
    Schedule.objects.update_or_create(
        name=name,
        defaults={"func": "hub.tasks.flow_poll_task", "args": repr(flow.pk), "repeats": -1, **timing},
    )
