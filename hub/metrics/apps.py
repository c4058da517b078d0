from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "hub.metrics"
    label = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from hub.metrics.schedules import metrics_setup

        post_migrate.connect(metrics_setup, sender=self)
