"""The project's URLs: the one place, with settings, that names every app."""

from django.contrib import admin
from django.urls import include, path

from dlq.api import router as dead_letter_router

urlpatterns = [
    path("", include("hub.api.urls")),
    path("api/v1/", include(dead_letter_router.urls)),
    path("django-admin/", admin.site.urls),
    path("", include("hub.ui.urls")),
    path("dead-letters/", include("dlq.urls")),
]
