"""django-q2 schedule rows, created idempotently: the minutely drain safety net and one poll
schedule per scheduled flow."""

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


def ensure_drain_schedule(*, using: str = "default") -> bool:
    """The minutely drain, the safety net behind the kicks: create it, or put back what differs.
    Returns whether anything was written."""
    schedule, created = Schedule.objects.using(using).get_or_create(
        name=DRAIN_SCHEDULE, defaults=DRAIN_SCHEDULE_FIELDS
    )
    differing = {k: v for k, v in DRAIN_SCHEDULE_FIELDS.items() if getattr(schedule, k) != v}
    if differing:
        Schedule.objects.using(using).filter(pk=schedule.pk).update(**differing)
    return created or bool(differing)


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
