from django.apps import AppConfig
from django.core import checks


class ConnectorsConfig(AppConfig):
    name = "connectors"
    verbose_name = "Systems and connectors"

    def ready(self) -> None:
        checks.register(vendor_templates_check)


def vendor_templates_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """`manage.py check` (and every start) names a vendor template file that cannot be used."""
    from connectors.vendors import catalogue_read

    return [
        checks.Warning(problem, hint="Fix the file or remove it.", id="connectors.W001")
        for problem in catalogue_read().problems
    ]
