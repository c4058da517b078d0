"""Sync history, the hash-chained audit log and retention.

- Attempt.mapping_version: the mapping version each attempt used.
- Event.purged_at: when retention emptied the payload (outcomes stay).
- AuditEntry.seq / prev_hash / hash: the chain, computed for the entries already written.
- Indexes for the history's record search and the retention purge; on PostgreSQL a trigram GIN
  index for the history's free-text search in payloads (SQLite has no such index: it scans).
"""

from django.db import migrations, models

from hub.services.audit import entry_hash

TRIGRAM_INDEX = "event_payload_trgm_idx"
MAPPING_VERSION_HELP = "The number of the flow's mapping version this attempt used."
PURGED_HELP = "When retention emptied the payload; the outcomes stay."


def chain_existing_entries(apps, schema_editor) -> None:
    AuditEntry = apps.get_model("hub", "AuditEntry")
    db = schema_editor.connection.alias
    prev_hash = ""
    for seq, entry in enumerate(AuditEntry.objects.using(db).order_by("at", "id"), start=1):
        entry.seq, entry.prev_hash = seq, prev_hash
        entry.hash = entry_hash(prev_hash, entry)
        entry.save(update_fields=["seq", "prev_hash", "hash"])
        prev_hash = entry.hash


def trigram_index_create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    # Django's `icontains` on the payload cast to text compiles to UPPER(payload::text) LIKE
    # UPPER(...): the index is on that exact expression so the planner can use it.
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON hub_event "
        "USING gin (UPPER((payload)::text) gin_trgm_ops)"
    )


def trigram_index_drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")


def nullable(field, text: str = ""):
    return field(blank=True, null=True, help_text=text)


# (model, name, field, keep the default in the state): the new columns.
NEW_FIELDS = [
    ("attempt", "mapping_version", nullable(models.PositiveIntegerField, MAPPING_VERSION_HELP), True),
    ("event", "purged_at", nullable(models.DateTimeField, PURGED_HELP), True),
    ("auditentry", "seq", models.PositiveBigIntegerField(null=True), True),
    ("auditentry", "prev_hash", models.CharField(blank=True, max_length=64, default=""), False),
    ("auditentry", "hash", models.CharField(max_length=64, default=""), False),
]
NEW_INDEXES = [
    ("delivery", "delivery_target_idx", ["target_id"], ~models.Q(target_id="")),
    ("event", "event_record_idx", ["record_id"], ~models.Q(record_id="")),
    ("event", "event_unpurged_idx", ["received_at"], models.Q(purged_at__isnull=True)),
]


class Migration(migrations.Migration):
    dependencies = [
        ("connectors", "0002_declared_settings"),
        ("hub", "0003_fewer_indexes"),
    ]

    operations = [
        *(
            migrations.AddField(model_name=model, name=name, field=field, preserve_default=keep)
            for model, name, field, keep in NEW_FIELDS
        ),
        migrations.RunPython(chain_existing_entries, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditentry", name="seq", field=models.PositiveBigIntegerField(unique=True)
        ),
        migrations.AlterModelOptions(
            name="auditentry", options={"ordering": ["-seq"], "verbose_name_plural": "audit entries"}
        ),
        *(
            migrations.AddIndex(
                model_name=model, index=models.Index(fields=fields, name=name, condition=condition)
            )
            for model, name, fields, condition in NEW_INDEXES
        ),
        migrations.RunPython(trigram_index_create, trigram_index_drop),
    ]
