"""The audit log page and its export: every configuration change, operator action and sign-in,
filtered by object type, actor, action and time, each with a readable diff. Read-only, like the
log itself."""

from hub.selectors.audit import EXPORT_COLUMNS, audit_export_rows, audit_page
from hub.ui.forms.history import AuditFilterForm
from hub.ui.history import export_view, search_view

audit_log = search_view(
    AuditFilterForm, audit_page, cursor="below", template="hub/audit.html", region="audit-results"
)
audit_export = export_view(AuditFilterForm, audit_export_rows, columns=EXPORT_COLUMNS, name="audit-log")
