from django.contrib import admin

from dlq.models import DeadLetter


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ["id", "flow", "error_class", "created_at", "resolution"]
    list_filter = ["error_class", "resolution", "flow"]
    raw_id_fields = ["delivery"]
