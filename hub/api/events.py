"""Events: publish (one or a batch) and read back."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.response import Response

from hub.api.errors import error_response
from hub.models import ApiToken, Event
from hub.pipeline.ingest import IngestError, events_publish
from hub.roles import ADMIN, CanPublish, IsAdminRole, has_role


class EventSerializer(serializers.ModelSerializer):
    system = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Event
        fields = "__all__"


class PublishEventSerializer(serializers.Serializer):
    system = serializers.SlugField(help_text="The source system's slug.")
    type = serializers.CharField(max_length=200, help_text='Event type, e.g. "deal.won".')
    idempotency_key = serializers.CharField(max_length=300, help_text="Repeats of a key are stored once.")
    payload = serializers.JSONField()


class PublishBatchSerializer(serializers.Serializer):
    events = PublishEventSerializer(many=True)


class PublishResultSerializer(serializers.Serializer):
    event_id = serializers.UUIDField()
    duplicate = serializers.BooleanField()
    deliveries = serializers.IntegerField()


def systems_allowed(request) -> frozenset[str] | None:
    """The systems this caller may publish for: an admin any (None); anyone else only those its
    API token is bound to (none without a token)."""
    if has_role(request.user, (ADMIN,)):
        return None
    if isinstance(request.auth, ApiToken):
        return frozenset(request.auth.systems.values_list("slug", flat=True))
    return frozenset()


class EventViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Publish events (POST) and read them back."""

    serializer_class = EventSerializer

    def get_permissions(self):
        return [CanPublish()] if self.action == "create" else [IsAdminRole()]

    def get_queryset(self):
        qs = Event.objects.select_related("system").order_by("-received_at")
        if system := self.request.query_params.get("system"):
            qs = qs.filter(system__slug=system)
        if record := self.request.query_params.get("record_id"):
            qs = qs.filter(record_id=record)
        return qs

    @extend_schema(
        request=PublishEventSerializer,
        responses={
            202: PublishResultSerializer,
            400: OpenApiResponse(description="malformed or missing fields"),
            404: OpenApiResponse(description="unknown system"),
            413: OpenApiResponse(description="too large"),
            503: OpenApiResponse(
                description="the database is unavailable for a moment: send again after the "
                "Retry-After seconds (a repeated idempotency key is stored once)"
            ),
        },
        description='Publish one event, or a batch: {"events": [event, ...]} with up to 1,000 events '
        '(answered with {"results": [...]}). Stored durably before the 202.',
    )
    def create(self, request, *args, **kwargs):
        try:
            published = events_publish(body=request.body, systems_allowed=systems_allowed(request))
        except RequestDataTooBig:
            return error_response(413, f"body too large; the limit is {settings.HUB_MAX_BATCH_BYTES} bytes")
        except IngestError as exc:
            extra = {"fields": exc.errors} if exc.errors else {}
            return error_response(exc.status, exc.message, **extra)
        return Response(published, status=202)
