"""Schema drift: read how a system's records changed shape (with the deliveries each change holds,
per flow), and work a change through as the drift report does: update the source model, release
the held deliveries, or dismiss it. Everyone with a role reads; admins act. The same services as
the drift report (hub/services/drift.py), so the same checks and audit entries."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from connectors.models import System
from hub.api.errors import StrictJSONParser
from hub.api.fields import StrictIntegerField, TextField, read_query
from hub.api.writes import NoBodySerializer, refusals
from hub.models import Flow, SchemaDrift
from hub.roles import IsAdminRole
from hub.selectors.drift import DriftRow, drift_rows
from hub.services.drift import drift_dismiss, drift_model_update, drift_release, drift_update_words

ID_LIMIT = 2**63 - 1
DriftStatus = SchemaDrift.Status  # named for the schema (settings ENUM_NAME_OVERRIDES)


class FlowHeldSerializer(serializers.Serializer):
    flow = serializers.IntegerField(source="flow.pk")
    flow_name = serializers.CharField(source="flow.name")
    held = serializers.IntegerField(help_text="Deliveries waiting for this change to be dealt with.")
    dead_lettered = serializers.IntegerField(help_text="Deliveries dead-lettered because of it.")
    breaks = serializers.BooleanField(
        help_text="The change takes away a field this flow needs (its events are held whatever its policy)."
    )


class DriftSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="drift.pk")
    system = serializers.CharField(source="drift.system.slug", help_text="The source system's slug.")
    data_model = serializers.IntegerField(source="drift.data_model_id")
    data_model_name = serializers.CharField(source="drift.data_model.name")
    kind = serializers.ChoiceField(source="drift.kind", choices=SchemaDrift.Kind.choices)
    path = serializers.CharField(source="drift.path")
    new_path = serializers.CharField(source="drift.new_path", help_text="Where a renamed field arrives now.")
    expected_type = serializers.CharField(source="drift.expected_type")
    seen_type = serializers.CharField(source="drift.seen_type")
    first_seen_at = serializers.DateTimeField(source="drift.first_seen_at")
    last_seen_at = serializers.DateTimeField(source="drift.last_seen_at")
    events = serializers.IntegerField(source="drift.events", help_text="Events seen with this change.")
    samples = serializers.JSONField(source="drift.samples", help_text="A few values seen, redacted.")
    status = serializers.ChoiceField(source="drift.status", choices=SchemaDrift.Status.choices)
    resolved_at = serializers.DateTimeField(source="drift.resolved_at", allow_null=True)
    description = serializers.SerializerMethodField(help_text="The change in plain words.")
    update_model_would = serializers.SerializerMethodField(
        help_text="What update-model does to the source model, in words."
    )
    held = serializers.IntegerField(help_text="Deliveries held for this change, all flows.")
    flows = FlowHeldSerializer(many=True, help_text="The flows reading this model, with their held counts.")

    def get_description(self, row: DriftRow) -> str:
        return row.drift.describe()

    def get_update_model_would(self, row: DriftRow) -> str:
        return drift_update_words(row.drift)


class DriftFilterSerializer(serializers.Serializer):
    system = serializers.SlugField(required=False, max_length=100, help_text="A system's slug.")
    status = serializers.ChoiceField(required=False, choices=SchemaDrift.Status.choices)
    flow = serializers.IntegerField(
        required=False, min_value=1, max_value=ID_LIMIT, help_text="Only the changes this flow reads."
    )


class DriftReleaseSerializer(serializers.Serializer):
    flow = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=ID_LIMIT,
        help_text="Release only this flow's held deliveries; left out, every flow's.",
    )


class DriftReleasedSerializer(serializers.Serializer):
    released = serializers.IntegerField(help_text="Deliveries sent on (0 when none waited any more).")
    drift = DriftSerializer()


class DriftRefusalSerializer(serializers.Serializer):
    error = TextField()


CONFLICT = OpenApiResponse(DriftRefusalSerializer, description="Already dealt with: the service's words.")


def _row(drift: SchemaDrift) -> DriftRow:
    return next(row for row in drift_rows(system_id=drift.system_id) if row.drift.pk == drift.pk)


class DriftViewSet(viewsets.ReadOnlyModelViewSet):
    """Changes in the shape of source records, newest first, open ones before the rest."""

    serializer_class = DriftSerializer
    parser_classes = [StrictJSONParser]
    permission_classes = [IsAdminRole]
    queryset = SchemaDrift.objects.all()

    @extend_schema(parameters=[DriftFilterSerializer])
    def list(self, request, *args, **kwargs):
        filters = read_query(DriftFilterSerializer, request.query_params)
        system_id, flow = None, None
        if "system" in filters:
            system = System.objects.filter(slug=filters["system"]).first()
            if system is None:
                raise ValidationError({"system": [f"no system has the slug “{filters['system']}”"]})
            system_id = system.pk
        if "flow" in filters:
            flow = Flow.objects.filter(pk=filters["flow"]).first()
            if flow is None:
                raise ValidationError({"flow": [f"no flow has the id {filters['flow']}"]})
        rows = drift_rows(system_id=system_id, flow=flow)
        if flow is not None and system_id is not None:
            rows = [row for row in rows if row.drift.system_id == system_id]
        if "status" in filters:
            rows = [row for row in rows if row.drift.status == filters["status"]]
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(DriftSerializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        return Response(DriftSerializer(_row(self.get_object())).data)

    @extend_schema(
        request=NoBodySerializer,
        responses={200: DriftSerializer, 409: CONFLICT},
        description="Change the source model the way the records changed (a field added, renamed, "
        "retyped or made optional), as “Update the model” on the drift report.",
    )
    @action(detail=True, methods=["post"], url_path="update-model")
    def update_model(self, request, pk=None, format=None):
        drift = self.get_object()
        with refusals(conflict=True):
            drift_model_update(drift=drift, actor=request.user)
        return Response(DriftSerializer(_row(drift)).data)

    @extend_schema(
        request=DriftReleaseSerializer,
        responses=DriftReleasedSerializer,
        description="Send on the deliveries held for this change (of one flow, or all), each once.",
    )
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None, format=None):
        drift = self.get_object()
        body = DriftReleaseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        flow = None
        if body.validated_data.get("flow") is not None:
            flow = Flow.objects.filter(pk=body.validated_data["flow"]).first()
            if flow is None:
                raise ValidationError({"flow": [f"no flow has the id {body.validated_data['flow']}"]})
        released = drift_release(drift=drift, actor=request.user, flow=flow)
        return Response({"released": released, "drift": DriftSerializer(_row(drift)).data})

    @extend_schema(
        request=NoBodySerializer,
        responses={200: DriftSerializer, 409: CONFLICT},
        description="The change is harmless: stop reporting it and stop holding events for it.",
    )
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None, format=None):
        drift = self.get_object()
        with refusals(conflict=True):
            drift_dismiss(drift=drift, actor=request.user)
        return Response(DriftSerializer(_row(drift)).data)
