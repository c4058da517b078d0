from django.apps import AppConfig


class HubConfig(AppConfig):
    name = "hub"
    verbose_name = "Integration hub"

    def ready(self) -> None:
        from hub import signals  # noqa: F401
