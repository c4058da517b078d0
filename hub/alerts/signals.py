"""Set up alerting after every migrate, and give every new flow its default rules."""

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS

from hub.alerts.schedules import ensure_evaluate_schedule
from hub.alerts.services import alert_rules_default
from hub.models import Flow


def alerts_setup(*, using: str = DEFAULT_DB_ALIAS, apps=global_apps, **kwargs) -> None:
    """The minutely evaluation schedule exists wherever the schema does (connected to
    post_migrate, so `manage.py migrate` sets up production and a test database after a flush)."""
    try:
        apps.get_model("django_q", "Schedule")
    except LookupError:  # migrated only part of the way
        return
    ensure_evaluate_schedule(using=using)


def flow_created(*, instance: Flow, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        alert_rules_default(flow=instance)
