"""One vendor-neutral statement that adds rows into metric tables:

    INSERT INTO t (...) VALUES (...), (...)
    ON CONFLICT (key) DO UPDATE SET n = t.n + excluded.n, last = CASE ... END

PostgreSQL and SQLite both run it. Each row is changed atomically by the database, so any number
of workers on any number of machines may add into the same row at once; no read comes first."""

from collections.abc import Iterable
from typing import Any

from django.db import connection


def _merged(model, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the same key folded into one (a statement may change each row only once),
    sorted by key so that concurrent statements lock rows in the same order."""
    added, highest = getattr(model, "ADDED", ()), getattr(model, "HIGHEST", ())
    by_key: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[name] for name in model.KEY)
        seen = by_key.get(key)
        if seen is None:
            by_key[key] = {name: row.get(name) for name in (*model.KEY, *highest)} | {
                name: row.get(name, 0) for name in added
            }
            continue
        for name in added:
            seen[name] += row.get(name, 0)
        for name in highest:
            if row.get(name) is not None and (seen[name] is None or row[name] > seen[name]):
                seen[name] = row[name]
    return [by_key[key] for key in sorted(by_key)]


def upsert_add(model, rows: Iterable[dict[str, Any]]) -> int:
    """Add `rows` (dicts of field attnames) into `model`'s table; returns the rows written."""
    merged = _merged(model, rows)
    if not merged:
        return 0
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    added, highest = getattr(model, "ADDED", ()), getattr(model, "HIGHEST", ())
    names = [*model.KEY, *added, *highest]
    fields = [model._meta.get_field(name.removesuffix("_id")) for name in names]
    updates = [f"{quote(n)} = {table}.{quote(n)} + excluded.{quote(n)}" for n in added] + [
        f"{quote(n)} = CASE WHEN {table}.{quote(n)} IS NULL OR excluded.{quote(n)} > {table}.{quote(n)} "
        f"THEN excluded.{quote(n)} ELSE {table}.{quote(n)} END"
        for n in highest
    ]
    marks = "(" + ", ".join(["%s"] * len(names)) + ")"
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([marks] * len(merged))} "
        f"ON CONFLICT ({', '.join(quote(model._meta.get_field(n.removesuffix('_id')).column) for n in model.KEY)}) "
        f"DO UPDATE SET {', '.join(updates)}"
    )
    params = [
        field.get_db_prep_save(row[name], connection)
        for row in merged
        for name, field in zip(names, fields, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    return len(merged)
