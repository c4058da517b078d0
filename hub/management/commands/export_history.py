"""`manage.py export_history --since 2026-11-01 --until 2026-12-01 --format csv --output history.csv`:
the sync history for a time range, one row per delivery, streamed (memory stays flat)."""

from hub.management.exporting import ExportCommand
from hub.selectors.history import EXPORT_COLUMNS, HistoryFilters, history_export_rows


class Command(ExportCommand):
    help = "Export the sync history (one row per delivery) for a time range as CSV or JSON."
    columns = EXPORT_COLUMNS

    def rows(self, *, since, until):
        return history_export_rows(HistoryFilters(since=since, until=until))
