"""Flows that existed before schema drift was watched get the rule new flows get: tell when the
flow holds events because its source's records changed shape (frozen here as it was then)."""

from django.db import migrations


def add_schema_drift_rules(apps, schema_editor):
    Flow = apps.get_model("hub", "Flow")
    AlertRule = apps.get_model("alerts", "AlertRule")
    db = schema_editor.connection.alias
    AlertRule.objects.using(db).bulk_create(
        AlertRule(flow_id=flow_id, kind="schema_drift", renotify_minutes=24 * 60)
        for flow_id in Flow.objects.using(db).values_list("pk", flat=True)
    )


class Migration(migrations.Migration):
    dependencies = [("alerts", "0003_target_sunset_rules"), ("hub", "0011_schema_drift")]

    operations = [migrations.RunPython(add_schema_drift_rules, migrations.RunPython.noop)]
