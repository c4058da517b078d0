"""Keep per-process caches and poll schedules in step with configuration, whoever changes it
(the UI, the API or the Django admin)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django_q.signals import post_spawn

from connectors.models import System
from hub.models import Flow
from hub.pipeline.ingest import forget_systems
from hub.pipeline.schedules import flow_schedule_sync, poll_schedule_name
from hub.pipeline.subscriptions import forget_subscriptions
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


@receiver(post_spawn)
def worker_started(**kwargs) -> None:
    """A (re)started worker looks for work at once: deliveries left by a crashed worker, and
    anything that arrived while no worker ran."""
    from hub.pipeline.dispatch import kick_workers

    kick_workers()
