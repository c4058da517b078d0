"""The project's URLs: the one place, with settings, that names every app."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from dlq.api import router as dead_letter_router

# A refused page says which role it needs (hub/access.py), as a page or an HTMX notice.
handler403 = "hub.ui.errors.permission_denied"
# A path no URL matches: JSON under /api/ and /hooks/, the usual page elsewhere.
handler404 = "hub.api.errors.not_found"

urlpatterns = [
    path("", include("hub.api.urls")),
    path("api/v1/", include(dead_letter_router.urls)),
    path("django-admin/", admin.site.urls),
    path("", include("hub.ui.urls")),
    path("dead-letters/", include("dlq.urls")),
    # Browsers ask for /favicon.ico whatever the page links; send them to the SVG.
    path("favicon.ico", RedirectView.as_view(url=static("hub/favicon.svg"), permanent=True), name="favicon"),
]
