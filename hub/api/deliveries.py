"""Deliveries and their attempts, read-only."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets

from hub.api.fields import read_query
from hub.models import Attempt, Delivery, DeliveryStatus
from hub.roles import IsAdminRole


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        exclude = ["id", "delivery"]


class DeliverySerializer(serializers.ModelSerializer):
    flow = serializers.StringRelatedField()
    flow_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id", "event", "flow", "flow_id", "record_key", "status", "attempts", "next_attempt_at",
            "last_error_class", "last_error", "target_id", "created_at", "finished_at"
        ]  # fmt: skip


class DeliveryDetailSerializer(DeliverySerializer):
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "attempt_log"]


class DeliveryFilterSerializer(serializers.Serializer):
    """The list's query parameters; a bad one is a 400 naming it, never a database error."""

    flow = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)
    event = serializers.UUIDField(required=False)


class DeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsAdminRole]

    @extend_schema(parameters=[DeliveryFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_serializer_class(self):
        return DeliveryDetailSerializer if self.action == "retrieve" else DeliverySerializer

    def get_queryset(self):
        qs = Delivery.objects.select_related("flow").order_by("-id")
        if self.action == "retrieve":
            return qs.prefetch_related("attempt_log")
        filters = read_query(DeliveryFilterSerializer, self.request.query_params)
        if "flow" in filters:
            qs = qs.filter(flow_id=filters["flow"])
        if "status" in filters:
            qs = qs.filter(status=filters["status"])
        if "event" in filters:
            qs = qs.filter(event_id=filters["event"])
        return qs
