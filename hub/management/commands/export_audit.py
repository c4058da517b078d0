"""`manage.py export_audit --since 2026-11-01 --format json --output audit.json`: the audit log
for a time range, oldest first, with each entry's hashes, streamed."""

from hub.management.exporting import ExportCommand
from hub.selectors.audit import EXPORT_COLUMNS, AuditFilters, audit_export_rows


class Command(ExportCommand):
    help = "Export the audit log for a time range as CSV or JSON."
    columns = EXPORT_COLUMNS

    def rows(self, *, since, until):
        return audit_export_rows(AuditFilters(since=since, until=until))
