from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "hub.alerts"
    label = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, post_save

        from hub.alerts import signals
        from hub.models import Flow

        # After every migrate (and a test database's flush): the minutely evaluation schedule.
        post_migrate.connect(signals.alerts_setup, sender=self, dispatch_uid="alerts-setup")
        # Every new flow gets the default rules, whoever creates it (UI, API, import, admin).
        post_save.connect(signals.flow_created, sender=Flow, dispatch_uid="alerts-default-rules")
