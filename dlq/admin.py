from django.contrib import admin

from dlq.models import BulkJob, DeadLetter


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ["id", "flow", "error_class", "record_key", "created_at", "resolution"]
    list_filter = ["error_class", "resolution", "flow"]
    search_fields = ["record_key"]
    raw_id_fields = ["delivery"]


@admin.register(BulkJob)
class BulkJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "action",
        "state",
        "total",
        "done",
        "held",
        "skipped",
        "failed",
        "created_by",
        "created_at",
    ]
    list_filter = ["action", "state"]
