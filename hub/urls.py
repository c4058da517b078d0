from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from hub import api, views_ingest

router = DefaultRouter()
router.register("events", api.EventViewSet, basename="api-events")
router.register("deliveries", api.DeliveryViewSet, basename="api-deliveries")
router.register("flows", api.FlowViewSet, basename="api-flows")
router.register("dead-letters", api.DeadLetterViewSet, basename="api-dead-letters")
router.register("audit", api.AuditViewSet, basename="api-audit")

urlpatterns = [
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("hooks/<slug:slug>/", views_ingest.webhook, name="hooks-receive"),
    path("healthz", views_ingest.healthz, name="healthz"),
    path("readyz", views_ingest.readyz, name="readyz"),
    path("django-admin/", admin.site.urls),
    path("", include("hub.urls_pages")),
]
