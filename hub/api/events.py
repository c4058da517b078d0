"""Events: publish (one or a batch) and read back."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.response import Response

from hub.api.errors import StrictJSONParser, error_response
from hub.api.fields import read_query
from hub.models import ApiToken, Event
from hub.pipeline.ingest import IngestError, events_publish
from hub.roles import ADMIN, CanPublish, IsAdminRole, has_role


class EventSerializer(serializers.ModelSerializer):
    system = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Event
        fields = "__all__"


@extend_schema_field({"oneOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]})
class TextOrIntegerField(serializers.Field):
    """Publish takes a number where it asks for text, read as that text (vendors' numeric ids)."""


class PublishEventSerializer(serializers.Serializer):
    """What a published event looks like (hub.pipeline.ingest checks it)."""

    system = serializers.SlugField(help_text="The source system's slug.")
    type = TextOrIntegerField(help_text='Event type, e.g. "deal.won"; at most 200 characters.')
    idempotency_key = TextOrIntegerField(
        help_text="Repeats of a key are stored once; at most 300 characters."
    )
    payload = serializers.DictField(help_text="The record: a JSON object.")


class PublishBatchSerializer(serializers.Serializer):
    events = PublishEventSerializer(many=True, min_length=1, max_length=settings.HUB_MAX_BATCH_EVENTS)


class PublishResultSerializer(serializers.Serializer):
    event_id = serializers.UUIDField()
    duplicate = serializers.BooleanField()
    deliveries = serializers.IntegerField()


class EventFilterSerializer(serializers.Serializer):
    """The list's query parameters; a bad one is a 400 naming it, never a database error."""

    system = serializers.SlugField(required=False, max_length=60, help_text="Only events from this system.")
    record_id = serializers.CharField(
        required=False, max_length=300, help_text="Only events about this source record."
    )


class PublishBatchResultSerializer(serializers.Serializer):
    results = PublishResultSerializer(many=True)
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()


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
    parser_classes = [StrictJSONParser]  # publish reads the body as JSON, whatever else is sent

    def get_permissions(self):
        return [CanPublish()] if self.action == "create" else [IsAdminRole()]

    def get_queryset(self):
        qs = Event.objects.select_related("system").order_by("-received_at")
        if self.action != "list":
            return qs
        filters = read_query(EventFilterSerializer, self.request.query_params)
        if "system" in filters:
            qs = qs.filter(system__slug=filters["system"])
        if "record_id" in filters:
            qs = qs.filter(record_id=filters["record_id"])
        return qs

    @extend_schema(parameters=[EventFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=PolymorphicProxySerializer(
            "Publish",
            serializers=[PublishEventSerializer, PublishBatchSerializer],
            resource_type_field_name=None,
        ),
        responses={
            202: PolymorphicProxySerializer(
                "Published",
                serializers=[PublishResultSerializer, PublishBatchResultSerializer],
                resource_type_field_name=None,
            ),
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
