"""The metrics task's django-q2 schedule, created after every migrate (apps.py), idempotently."""

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS
from django_q.models import Schedule

METRICS_SCHEDULE = "metrics: roll up and expire"
METRICS_SCHEDULE_FIELDS = {
    "func": "hub.metrics.tasks.metrics_maintain",
    "schedule_type": Schedule.MINUTES,
    "minutes": 1,
    "repeats": -1,
}


def metrics_setup(*, using: str = DEFAULT_DB_ALIAS, apps=global_apps, **kwargs) -> None:
    """Connected to post_migrate: wherever the schema is, the minutely metrics task is scheduled."""
    try:
        apps.get_model("django_q", "Schedule")
    except LookupError:  # migrated only part of the way
        return
    Schedule.objects.using(using).update_or_create(name=METRICS_SCHEDULE, defaults=METRICS_SCHEDULE_FIELDS)
