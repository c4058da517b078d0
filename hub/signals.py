"""Keep per-process caches and poll schedules in step with configuration, whoever changes it
(the UI, the API or the Django admin); set up what the pipeline needs after every migrate; and
let django-q2's worker processes hand their work back when they are told to stop."""

from axes.signals import user_locked_out
from django.apps import apps as global_apps
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django_q.signals import post_execute_in_worker, post_spawn, pre_execute

from connectors.models import System
from hub.models import Flow
from hub.pipeline import dispatch
from hub.pipeline.ingest import forget_systems
from hub.pipeline.schedules import (
    ensure_drain_schedule,
    ensure_retention_schedule,
    flow_schedule_sync,
    poll_schedule_name,
)
from hub.pipeline.subscriptions import forget_subscriptions
from hub.roles import ensure_role_groups
from hub.services.audit import audit_append, audit_sign_in, audit_sign_in_failed, audit_sign_in_paused
from mappings.models import DataModel, Mapping


@receiver([post_save, post_delete], sender=System)
@receiver([post_save, post_delete], sender=DataModel)
@receiver([post_save, post_delete], sender=Mapping)
def forget_config_caches(**kwargs) -> None:
    forget_systems()
    forget_subscriptions()


@receiver(post_save, sender=Flow)
def flow_saved(instance: Flow, **kwargs) -> None:
    forget_subscriptions()
    flow_schedule_sync(instance)


@receiver(post_delete, sender=Flow)
def flow_deleted(instance: Flow, **kwargs) -> None:
    from django_q.models import Schedule

    forget_subscriptions()
    Schedule.objects.filter(name=poll_schedule_name(instance.pk)).delete()


def pipeline_setup(*, using: str = DEFAULT_DB_ALIAS, apps=global_apps, **kwargs) -> None:
    """Role groups, the minutely drain safety net and the hourly retention purge exist wherever
    the schema does: connected to post_migrate, so `manage.py migrate` sets up production (and a
    test database after each flush), not only `manage.py up`. Idempotent."""
    try:
        apps.get_model("auth", "Group")
        apps.get_model("django_q", "Schedule")
    except LookupError:  # migrated only part of the way: their tables may not exist yet
        return
    ensure_role_groups(using=using)
    ensure_drain_schedule(using=using)
    ensure_retention_schedule(using=using)


@receiver(user_logged_in)
def signed_in(request, user, **kwargs) -> None:
    audit_sign_in(user=user, request=request)


def _paused_before(request) -> bool:
    """Whether sign-in was already paused before this attempt (django-axes, whose receiver runs
    first, counted it): the pause's own entry stands for the attempts it refuses, so someone
    hammering a paused account cannot grow the audit log without end."""
    return getattr(request, "axes_failures_since_start", 0) > settings.AXES_FAILURE_LIMIT


@receiver(user_login_failed)
def sign_in_refused(credentials, request=None, **kwargs) -> None:
    if _paused_before(request):
        return
    username = str(credentials.get("username", ""))
    user = get_user_model().objects.filter(username=username).first() if username else None
    audit_sign_in_failed(username=username, user=user, request=request)


@receiver(user_locked_out)
def sign_in_paused(request, username, ip_address, **kwargs) -> None:
    """axes says so on every refused attempt once paused; the audit log records the pause once."""
    if _paused_before(request):
        return
    username = str(username or "")
    user = get_user_model().objects.filter(username=username).first() if username else None
    failures = getattr(request, "axes_failures_since_start", 0)
    audit_sign_in_paused(username=username, user=user, address=ip_address or "", failures=failures)


ADMIN_VERBS = {1: "admin_add", 2: "admin_change", 3: "admin_delete"}


@receiver(post_save, sender=LogEntry)
def django_admin_change(instance: LogEntry, created: bool, **kwargs) -> None:
    """A change made in the Django admin (the fallback that bypasses the services) is audited
    too, in the admin's transaction. (Deleting several objects at once there writes its log
    rows in bulk, without this signal.)"""
    if created:
        audit_append(
            actor=instance.user,
            verb=ADMIN_VERBS.get(instance.action_flag, "admin_change"),
            target_type=instance.content_type.model if instance.content_type_id else "",
            target_id=str(instance.object_id or ""),
            label=instance.object_repr,
            diff={"change": instance.get_change_message()},
        )


@receiver(post_spawn)
def worker_started(**kwargs) -> None:
    """In a (re)started worker process: watch for a stop, and look for work at once."""
    dispatch.worker_watch()
    dispatch.worker_ready()


@receiver(pre_execute)
def task_started(**kwargs) -> None:
    dispatch.task_started()


@receiver(post_execute_in_worker)
def task_finished(**kwargs) -> None:
    dispatch.task_finished()
