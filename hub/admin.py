from django.contrib import admin

from hub.models import Attempt, AuditEntry, Cursor, Delivery, Event, Flow, RecordLink

# Deleting many rows at once writes Django's log entries with bulk_create, which sends no signal,
# so the audit trail (hub/signals.py) would miss them: deletes happen one object at a time.
admin.site.disable_action("delete_selected")


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    list_display = ["name", "source_system", "event_type", "target_system", "operation", "trigger", "state"]
    list_filter = ["state", "trigger", "operation"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "system", "event_type", "idempotency_key", "origin", "received_at"]
    list_filter = ["system", "origin"]
    search_fields = ["idempotency_key", "record_id"]


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    readonly_fields = [f.name for f in Attempt._meta.fields]
    can_delete = False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "flow", "record_key", "status", "attempts", "next_attempt_at", "last_error_class"]
    list_filter = ["status", "flow"]
    raw_id_fields = ["event"]
    inlines = [AttemptInline]


@admin.register(RecordLink)
class RecordLinkAdmin(admin.ModelAdmin):
    list_display = ["flow", "source_id", "target_id", "updated_at"]
    list_filter = ["flow"]


@admin.register(Cursor)
class CursorAdmin(admin.ModelAdmin):
    list_display = ["flow", "value", "last_polled_at", "last_result"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: audit entries are append-only, whoever asks (the hub writes them itself)."""

    list_display = ["seq", "at", "actor_name", "verb", "target_type", "target_label"]
    list_filter = ["verb", "target_type"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
