"""Flows: read, pause and resume."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from hub.api.errors import StrictJSONParser, error_response
from hub.api.fields import TextField
from hub.models import Flow, FlowState
from hub.roles import ADMIN, IsOperator, has_role
from hub.services.errors import ConfigError
from hub.services.flows import flow_pause, flow_resume


class FlowSerializer(serializers.ModelSerializer):
    source_system = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    target_system = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    source_model = serializers.StringRelatedField()
    target_model = serializers.StringRelatedField()

    class Meta:
        model = Flow
        fields = [
            "id", "name", "description", "source_system", "source_model", "event_type",
            "target_system", "target_model", "operation", "filter", "trigger", "schedule_minutes",
            "schedule_cron", "state", "paused_reason", "max_attempts", "max_age_seconds",
            "created_at", "updated_at"
        ]  # fmt: skip
        read_only_fields = fields


class PauseSerializer(serializers.Serializer):
    reason = TextField(
        required=False, allow_blank=True, default="", max_length=300,
        help_text="Why; shown on the flow and kept in the audit log.",
    )  # fmt: skip


class FlowViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = FlowSerializer
    parser_classes = [StrictJSONParser]  # JSON in and out, as the schema says
    permission_classes = [IsOperator]
    queryset = Flow.objects.select_related(
        "source_system", "target_system", "source_model__system", "target_model__system"
    ).order_by("name")

    @extend_schema(request=PauseSerializer, responses=FlowSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None, format=None):  # format: the router's `.json` suffix
        body = PauseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        flow = flow_pause(flow=self.get_object(), actor=request.user, reason=body.validated_data["reason"])
        return Response(FlowSerializer(flow).data)

    @extend_schema(
        request=None,
        responses={
            200: FlowSerializer,
            403: OpenApiResponse(description="the flow has never run: only an admin may switch it on"),
            409: OpenApiResponse(description="the flow cannot be enabled yet: why"),
        },
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None, format=None):
        flow = self.get_object()
        if flow.state == FlowState.DRAFT and not has_role(request.user, (ADMIN,)):
            # As on the pages (flows-enable, the inbox's resume-and-replay): ops resume a paused
            # flow; switching on one that has never run is configuration.
            raise PermissionDenied("Only an admin may switch on a flow that has never run.")
        try:
            flow = flow_resume(flow=flow, actor=request.user)
        except ConfigError as exc:
            return error_response(409, str(exc))
        return Response(FlowSerializer(flow).data)
