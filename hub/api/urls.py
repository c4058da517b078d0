from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from hub.api import (
    alerts,
    audit,
    datamodels,
    deliveries,
    drift,
    events,
    flows,
    mappings,
    monitoring,
    schema,  # noqa: F401  (registers the API token scheme with the schema)
    specification,
    systems,
    users,
    versions,
    webhooks,
)

router = DefaultRouter()
router.register("events", events.EventViewSet, basename="api-events")
router.register("deliveries", deliveries.DeliveryViewSet, basename="api-deliveries")
router.register("flows", flows.FlowViewSet, basename="api-flows")
router.register("systems", systems.SystemViewSet, basename="api-systems")
router.register("models", datamodels.DataModelViewSet, basename="api-models")
router.register("fields", datamodels.FieldViewSet, basename="api-fields")
router.register("mappings", mappings.MappingViewSet, basename="api-mappings")
router.register("alerts", alerts.AlertViewSet, basename="api-alerts")
router.register("alert-rules", alerts.AlertRuleViewSet, basename="api-alert-rules")
router.register("alert-channels", alerts.ChannelViewSet, basename="api-alert-channels")
router.register("users", users.UserViewSet, basename="api-users")
router.register("tokens", users.ApiTokenViewSet, basename="api-tokens")
router.register("audit", audit.AuditViewSet, basename="api-audit")
router.register("drift", drift.DriftViewSet, basename="api-drift")
router.register("version-moves", versions.VersionMoveViewSet, basename="api-version-moves")

urlpatterns = [
    path("api/v1/specification/", specification.SpecificationExport.as_view(), name="api-specification"),
    path(
        "api/v1/specification/preview/",
        specification.SpecificationPreview.as_view(),
        name="api-specification-preview",
    ),
    path(
        "api/v1/specification/apply/",
        specification.SpecificationApply.as_view(),
        name="api-specification-apply",
    ),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The docs inside the hub's own page, so the navigation stays (templates/hub/api_docs.html).
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", template_name="hub/api_docs.html"),
        name="api-docs",
    ),
    path("hooks/<slug:slug>/", webhooks.webhook, name="hooks-receive"),
    path("healthz", monitoring.healthz, name="healthz"),
    path("readyz", monitoring.readyz, name="readyz"),
    path("metrics", monitoring.metrics, name="metrics"),
]
