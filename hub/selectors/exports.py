"""Exports as streams: rows in, CSV or JSON text out in chunks of about 64 KB, so a million rows
never sit in memory at once (the rows themselves come from `.iterator(chunk_size=...)`)."""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
CHUNK_BYTES = 64 * 1024


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None else value


def _csv_text(rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _json_text(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A JSON array, one object a line."""
    separator = "[\n"
    for row in rows:
        yield separator + json.dumps(row, ensure_ascii=False, default=str)
        separator = ",\n"
    yield "[]\n" if separator == "[\n" else "\n]\n"


def export_chunks(rows: Iterable[dict[str, Any]], *, columns: tuple[str, ...], fmt: str) -> Iterator[str]:
    """The export as text, in chunks of about CHUNK_BYTES."""
    pieces = _csv_text(rows, columns) if fmt == "csv" else _json_text(rows)
    pending: list[str] = []
    size = 0
    for piece in pieces:
        pending.append(piece)
        size += len(piece)
        if size >= CHUNK_BYTES:
            yield "".join(pending)
            pending, size = [], 0
    if pending:
        yield "".join(pending)
