"""Existing API tokens (rest_framework.authtoken, stored as plain text) become hashed ApiTokens,
so programs using them keep working; then the plain table goes.

Each carried-over token may publish for every system that exists now (as it could before), and
expires in 90 days: the Users page shows both, and an admin replaces it with a narrower one."""

import hashlib
from datetime import UTC, timedelta

from django.db import migrations
from django.utils import timezone
from django.utils.dateparse import parse_datetime

OLD_TABLE = "authtoken_token"


def carry_over(apps, schema_editor):
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return  # a database made after the switch: nothing to carry over
    ApiToken = apps.get_model("hub", "ApiToken")
    System = apps.get_model("connectors", "System")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name('key')}, created, user_id FROM {OLD_TABLE}")
        rows = cursor.fetchall()
    now = timezone.now()
    systems = list(System.objects.all())
    for key, created, user_id in rows:
        if isinstance(created, str):  # SQLite hands raw rows back as text
            created = parse_datetime(created)
        if created is not None and timezone.is_naive(created):
            created = timezone.make_aware(created, UTC)
        token = ApiToken.objects.create(
            user_id=user_id,
            name="Made before tokens were hashed",
            prefix=key[:8],
            key_hash=hashlib.sha256(key.encode()).hexdigest(),
            created_at=created or now,
            expires_at=now + timedelta(days=90),
        )
        token.systems.set(systems)
    schema_editor.execute(f"DROP TABLE {OLD_TABLE}")
    # The app is no longer installed; its history goes with its table.
    schema_editor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


class Migration(migrations.Migration):
    dependencies = [("hub", "0007_api_tokens_hashed")]

    operations = [migrations.RunPython(carry_over, migrations.RunPython.noop)]
