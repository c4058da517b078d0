"""Writing many rows of one model at once, for the pipeline's hottest statements."""

from django.db import connection, models

# Field types whose values need the database's own preparation; every other column's value is
# stored as it is (text, numbers, booleans, and foreign keys to integer keys).
PREPARED_FIELDS = (models.JSONField, models.DateTimeField, models.UUIDField, models.DecimalField)


def _needs_preparing(field) -> bool:
    return isinstance(field.target_field if field.is_relation else field, PREPARED_FIELDS)


def insert_rows(model, objects: list, *, on_conflict: tuple[list[str], list[str]] | None = None) -> None:
    """INSERT model instances whose primary keys are already set or not needed afterwards: one
    parameterised statement run for every row (psycopg pipelines them in one round trip). Ingest
    is the hottest path: bulk_create's query compilation, and a VALUES list whose text changes
    with the number of rows (the driver parsed it anew each time), were a large share of its CPU.
    Values that need it go through their field's own database preparation, so JSON, UUIDs and
    datetimes are stored exactly as the ORM would. `on_conflict` (the unique fields, the fields
    to update) turns a row that exists into an update of those fields."""
    fields = [
        f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))
    ]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    prepared = [(f.attname, f.get_db_prep_save if _needs_preparing(f) else None) for f in fields]
    rows = [
        [
            getattr(obj, name) if prep is None else prep(getattr(obj, name), connection)
            for name, prep in prepared
        ]
        for obj in objects
    ]
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})"
    if on_conflict:
        unique, update = (
            [quote(model._meta.get_field(name).column) for name in names] for names in on_conflict
        )
        changes = ", ".join(f"{column} = EXCLUDED.{column}" for column in update)
        sql += f" ON CONFLICT ({', '.join(unique)}) DO UPDATE SET {changes}"
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
