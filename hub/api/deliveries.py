"""Deliveries and their attempts, read-only."""

from rest_framework import serializers, viewsets

from hub.models import Attempt, Delivery
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


class DeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsAdminRole]

    def get_serializer_class(self):
        return DeliveryDetailSerializer if self.action == "retrieve" else DeliverySerializer

    def get_queryset(self):
        qs = Delivery.objects.select_related("flow").order_by("-id")
        params = self.request.query_params
        if flow := params.get("flow"):
            qs = qs.filter(flow_id=flow) if flow.isdigit() else qs.none()
        if state := params.get("status"):
            qs = qs.filter(status=state)
        if event := params.get("event"):
            qs = qs.filter(event_id=event)
        if self.action == "retrieve":
            qs = qs.prefetch_related("attempt_log")
        return qs
