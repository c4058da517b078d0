from django.apps import AppConfig


class HubConfig(AppConfig):
    name = "hub"
    verbose_name = "Integration hub"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from hub import signals

        post_migrate.connect(signals.pipeline_setup, sender=self)
