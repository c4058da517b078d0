"""Flows: create, read, change and delete them, and their lifecycle: enable (a draft), pause,
resume, poll now (a scheduled flow) and send a test event. The same services as the Flows pages,
so the same checks (a flow whose mapping has problems is not enabled, naming why) and audit."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from hub.api.deliveries import DeliverySerializer
from hub.api.errors import StrictJSONParser, error_response
from hub.api.fields import StrictDictField, StrictFloatField, StrictIntegerField, TextField
from hub.api.writes import RolesByAction, refusals
from hub.models import DriftPolicy, Flow, FlowState, Operation, Trigger
from hub.roles import ADMIN, IsAdminRole, IsOperator, has_role
from hub.services.errors import ConfigError
from hub.services.flow_test_events import flow_test_event_send
from hub.services.flows import (
    EDITABLE,
    RETRY_CHOICES,
    TUNING,
    flow_create,
    flow_delete,
    flow_enable,
    flow_pause,
    flow_poll_now,
    flow_problems,
    flow_resume,
    flow_update,
)
from mappings.conditions import ConditionError, parse_condition_text
from mappings.models import DataModel


class FlowSerializer(serializers.ModelSerializer):
    source_system = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    target_system = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    source_model = serializers.StringRelatedField()
    target_model = serializers.StringRelatedField()
    source_model_id = serializers.IntegerField(read_only=True)
    target_model_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Flow
        fields = [
            "id", "name", "description", "source_system", "source_model", "event_type",
            "target_system", "target_model", "operation", "filter", "trigger", "schedule_minutes",
            "schedule_cron", "state", "paused_reason", "max_attempts", "max_age_seconds",
            "created_at", "updated_at", "source_model_id", "target_model_id", "mapping",
            "retry_base_seconds", "retry_max_seconds", "retry_on", "silence_after_minutes", "poll_page_size",
            "drift_policy",
        ]  # fmt: skip
        read_only_fields = fields


class PauseSerializer(serializers.Serializer):
    reason = TextField(
        required=False, allow_blank=True, default="", max_length=300,
        help_text="Why; shown on the flow and kept in the audit log.",
    )  # fmt: skip


@extend_schema_field({"type": "object", "nullable": True, "additionalProperties": {}})
class ConditionField(StrictDictField):
    """A filter as a condition object, e.g. {"field": "stage", "op": "eq", "value": "won"}."""


_WHOLE = {"required": False, "min_value": 0, "max_value": 2**31 - 1}
_SECONDS = {"required": False, "min_value": 0, "max_value": 10**9}


class FlowChangeSerializer(serializers.Serializer):
    """A flow's settings; a change names only what changes. The systems and data models are fixed
    once it exists (its mapping is built for them)."""

    name = TextField(max_length=200, required=False)
    description = TextField(max_length=5000, allow_blank=True, required=False)
    event_type = TextField(max_length=200, required=False, help_text='e.g. "deal.won"; "*" for any.')
    operation = serializers.ChoiceField(choices=Operation.choices, required=False)
    trigger = serializers.ChoiceField(choices=Trigger.choices, required=False)
    schedule_minutes = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=2**31 - 1)
    schedule_cron = TextField(max_length=100, allow_blank=True, required=False, help_text="e.g. 0 7 * * 1-5")
    cursor_field = TextField(
        max_length=200, allow_blank=True, required=False,
        help_text="A scheduled flow's source field that grows when a record changes (kept on the source model).",
    )  # fmt: skip
    filter = ConditionField(
        required=False, allow_null=True, help_text="Only records matching it; null for all."
    )
    filter_text = TextField(
        max_length=5000, allow_blank=True, required=False,
        help_text="The filter in the pages' words instead, e.g. stage = won and amount > 100; empty for none.",
    )  # fmt: skip
    max_attempts = StrictIntegerField(**_WHOLE)
    max_age_seconds = StrictIntegerField(**_WHOLE)
    retry_base_seconds = StrictFloatField(**_SECONDS)
    retry_max_seconds = StrictFloatField(**_SECONDS)
    retry_on = serializers.ListField(
        child=serializers.ChoiceField(choices=[str(c) for c in RETRY_CHOICES]), required=False, max_length=50
    )
    silence_after_minutes = StrictIntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**31 - 1
    )
    poll_page_size = StrictIntegerField(required=False, min_value=1, max_value=10000)
    drift_policy = serializers.ChoiceField(
        choices=DriftPolicy.choices, required=False,
        help_text="When the source's records change shape: report and carry on, add new fields to the "
        "model, hold them for review, or dead-letter them. A mapped field gone always holds.",
    )  # fmt: skip

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if "filter_text" in data:
            if "filter" in data:
                raise serializers.ValidationError({"filter_text": ["Give the filter or its text, not both."]})
            try:
                data["filter"] = parse_condition_text(data.pop("filter_text")) or None
            except ConditionError as exc:
                raise serializers.ValidationError({"filter_text": [str(exc)]}) from None
        return data


class FlowCreateSerializer(FlowChangeSerializer):
    name = TextField(max_length=200)
    source_model = serializers.PrimaryKeyRelatedField(
        queryset=DataModel.objects.all(), help_text="The source data model's id."
    )
    target_model = serializers.PrimaryKeyRelatedField(
        queryset=DataModel.objects.all(), help_text="The target data model's id."
    )
    mapping_name = TextField(
        max_length=200, allow_blank=True, required=False, help_text="The flow's name when left out."
    )


class FlowDetailSerializer(FlowSerializer):
    problems = serializers.SerializerMethodField(
        help_text="What keeps it from being enabled (none when ready)."
    )

    class Meta(FlowSerializer.Meta):
        fields = [*FlowSerializer.Meta.fields, "problems"]
        read_only_fields = fields

    def get_problems(self, flow: Flow) -> list[str]:
        return [str(problem) for problem in flow_problems(flow)] if flow.state != FlowState.ACTIVE else []


class TestEventSerializer(serializers.Serializer):
    event_id = serializers.UUIDField(source="event.pk")
    record = serializers.DictField(help_text="The made-up record sent.")
    held = serializers.BooleanField(help_text="The flow is a draft or paused: it waits until the flow runs.")
    delivery = DeliverySerializer()


def _settings(data: dict[str, Any]) -> dict[str, Any]:
    return {name: data[name] for name in (*EDITABLE, "cursor_field") if name in data}


class FlowViewSet(
    RolesByAction,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """Everyone with a role reads; operators pause, resume and poll; admins configure, enable and
    send test events (as on the Flows pages)."""

    serializer_class = FlowSerializer
    parser_classes = [StrictJSONParser]  # JSON in and out, as the schema says
    permission_classes = [IsAdminRole]
    action_roles = {"pause": IsOperator, "resume": IsOperator, "poll": IsOperator}
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    queryset = Flow.objects.select_related(
        "source_system",
        "target_system",
        "source_model__system",
        "target_model__system",
        "mapping__current_version",
    ).order_by("name")

    def get_serializer_class(self):
        return FlowDetailSerializer if self.action == "retrieve" else FlowSerializer

    @extend_schema(request=FlowCreateSerializer, responses={201: FlowDetailSerializer})
    def create(self, request, *args, **kwargs):
        body = FlowCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        tuning = {name: data[name] for name in TUNING if name in data}
        with refusals():
            flow = flow_create(
                actor=request.user, source_model=data["source_model"], target_model=data["target_model"],
                mapping_name=data.get("mapping_name", ""), tuning=tuning,
                **{k: v for k, v in _settings(data).items() if k not in TUNING},
            )  # fmt: skip
        return Response(FlowDetailSerializer(self.get_queryset().get(pk=flow.pk)).data, status=201)

    @extend_schema(request=FlowChangeSerializer, responses=FlowDetailSerializer)
    def partial_update(self, request, *args, **kwargs):
        flow = self.get_object()
        body = FlowChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with refusals():
            flow = flow_update(flow=flow, actor=request.user, **_settings(body.validated_data))
        return Response(FlowDetailSerializer(flow).data)

    @extend_schema(
        responses={204: None, 409: OpenApiResponse(description="Deliveries or dead letters keep it: why.")}
    )
    def destroy(self, request, *args, **kwargs):
        flow = self.get_object()
        with refusals(conflict=True):
            flow_delete(flow=flow, actor=request.user)
        return Response(status=204)

    @extend_schema(
        request=None,
        responses={
            200: FlowSerializer,
            409: OpenApiResponse(description="It is running already, or not ready: why."),
        },
        description="Switch on a draft (or paused) flow; refused, naming the fix, while its mapping has problems.",
    )
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None, format=None):
        flow = self.get_object()
        if flow.state == FlowState.ACTIVE:
            return error_response(409, "the flow is already running")
        with refusals(conflict=True):
            flow = flow_enable(flow=flow, actor=request.user)
        return Response(FlowSerializer(flow).data)

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

    @extend_schema(
        request=None,
        responses={202: FlowSerializer, 409: OpenApiResponse(description="Not a running scheduled flow.")},
        description="Ask a worker to poll a scheduled flow now instead of at its next time.",
    )
    @action(detail=True, methods=["post"])
    def poll(self, request, pk=None, format=None):
        flow = self.get_object()
        with refusals(conflict=True):
            flow_poll_now(flow=flow, actor=request.user)
        return Response(FlowSerializer(flow).data, status=202)

    @extend_schema(
        request=None,
        responses={201: TestEventSerializer},
        description="Send a record made from the source model through the real pipeline, marked as a "
        "test event; a draft or paused flow keeps it until it runs. Follow it at /api/v1/deliveries/{id}/.",
    )
    @action(detail=True, methods=["post"], url_path="test-event")
    def test_event(self, request, pk=None, format=None):
        sent = flow_test_event_send(flow=self.get_object(), actor=request.user)
        return Response(TestEventSerializer(sent).data, status=201)
