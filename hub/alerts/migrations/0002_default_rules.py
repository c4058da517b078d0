"""Flows that existed before alerting get the default rules new flows get (frozen here as they
were when alerting arrived, as a migration must be)."""

from django.db import migrations

DEFAULT_RULES = (
    ("silence", None, None),
    ("error_rate", 20, 15),
    ("dead_letters", 1, 15),
    ("auto_pause", None, None),
)


def add_default_rules(apps, schema_editor):
    Flow = apps.get_model("hub", "Flow")
    AlertRule = apps.get_model("alerts", "AlertRule")
    db = schema_editor.connection.alias
    AlertRule.objects.using(db).bulk_create(
        AlertRule(flow_id=flow_id, kind=kind, threshold=threshold, window_minutes=window)
        for flow_id in Flow.objects.using(db).values_list("pk", flat=True)
        for kind, threshold, window in DEFAULT_RULES
    )


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunPython(add_default_rules, migrations.RunPython.noop)]
