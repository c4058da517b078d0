"""The minutely evaluation of alert rules, as a django-q2 schedule row created idempotently."""

from django_q.models import Schedule

EVALUATE_SCHEDULE = "alerts: evaluate rules"
EVALUATE_TASK = "hub.alerts.tasks.alerts_evaluate_task"


def ensure_evaluate_schedule(*, using: str = "default") -> None:
    """Create the schedule, or put back whatever differs (a row edited in the Django admin)."""
    every_minute = {"func": EVALUATE_TASK, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1}
    Schedule.objects.using(using).update_or_create(name=EVALUATE_SCHEDULE, defaults=every_minute)
