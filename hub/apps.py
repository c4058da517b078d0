from django.apps import AppConfig


class HubConfig(AppConfig):
    name = "hub"
    verbose_name = "Integration hub"

    def ready(self) -> None:
        from django.core.checks import Tags, register
        from django.db.models.signals import post_migrate

        from hub import checks, signals

        post_migrate.connect(signals.pipeline_setup, sender=self)
        register(checks.keys_check, Tags.security, deploy=True)
