"""The dead-letter API: list, inspect, replay and discard."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from common import strictjson
from dlq.models import DeadLetter
from dlq.services import DeadLetterError, dead_letter_discard, dead_letter_replay
from hub.api.deliveries import DeliverySerializer
from hub.api.errors import error_response
from hub.roles import IsOperator


class DeadLetterSerializer(serializers.ModelSerializer):
    flow = serializers.StringRelatedField()
    event_id = serializers.UUIDField(source="delivery.event_id", read_only=True)

    class Meta:
        model = DeadLetter
        fields = [
            "id", "delivery", "event_id", "flow", "error_class", "reason", "last_response",
            "attempts", "created_at", "resolved_at", "resolution", "resolution_note"
        ]  # fmt: skip


class ReplaySerializer(serializers.Serializer):
    corrected_record = serializers.JSONField(
        required=False, help_text="A fixed source record to send instead."
    )
    note = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_corrected_record(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object: the corrected source record")
        try:
            return strictjson.check_value(value)
        except strictjson.JSONInputError as exc:
            raise serializers.ValidationError(exc.message) from None


class DiscardSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why this dead letter needs no delivery; kept in the audit log.")


class DeadLetterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DeadLetterSerializer
    permission_classes = [IsOperator]

    def get_queryset(self):
        qs = DeadLetter.objects.select_related("flow", "delivery").order_by("-created_at")
        if self.request.query_params.get("open", "").lower() in ("1", "true", "yes"):
            qs = qs.unresolved()
        return qs

    def _act(self, request, serializer_class, act):
        form = serializer_class(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            return act(self.get_object(), form.validated_data)
        except DeadLetterError as exc:
            return error_response(409, str(exc))

    @extend_schema(request=ReplaySerializer, responses=DeliverySerializer)
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        def act(letter, data):
            delivery = dead_letter_replay(
                letter=letter,
                actor=request.user,
                corrected_record=data.get("corrected_record"),
                note=data.get("note", ""),
            )
            return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

        return self._act(request, ReplaySerializer, act)

    @extend_schema(request=DiscardSerializer, responses=DeadLetterSerializer)
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None):
        def act(letter, data):
            letter = dead_letter_discard(letter=letter, actor=request.user, reason=data["reason"])
            return Response(DeadLetterSerializer(letter).data)

        return self._act(request, DiscardSerializer, act)


router = SimpleRouter()
router.register("dead-letters", DeadLetterViewSet, basename="api-dead-letters")
