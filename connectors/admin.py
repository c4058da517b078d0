from django.contrib import admin

from connectors.models import System


@admin.register(System)
class SystemAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "base_url", "auth_scheme", "rate_limit_per_second"]
    search_fields = ["name", "slug"]
    # Secrets are write-only: they are set through the hub's own forms, never shown here.
    exclude = ["credentials", "webhook_secret"]
