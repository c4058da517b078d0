"""Flows that existed before targets' deprecation notices were heard get the rule new flows get:
tell when the target announces it is retiring what the flow uses (frozen here as it was then)."""

from django.db import migrations


def add_target_sunset_rules(apps, schema_editor):
    Flow = apps.get_model("hub", "Flow")
    AlertRule = apps.get_model("alerts", "AlertRule")
    db = schema_editor.connection.alias
    AlertRule.objects.using(db).bulk_create(
        AlertRule(flow_id=flow_id, kind="target_sunset", threshold=30, renotify_minutes=0)
        for flow_id in Flow.objects.using(db).values_list("pk", flat=True)
    )


class Migration(migrations.Migration):
    dependencies = [("alerts", "0002_default_rules")]

    operations = [migrations.RunPython(add_target_sunset_rules, migrations.RunPython.noop)]
