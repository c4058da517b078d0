"""API version moves: start a system's move to a new API version (copies of its data models and
of the mappings using them), try it on real events (the dry run, side by side), switch over,
switch back, and discard the side no flow uses. Admins only, reading too, as the page
(hub/ui/versions.py); the same services (hub/services/versions.py), so the same checks and audit
entries. A step the move's state does not allow is a 409 with the service's words."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from connectors.apiversion import VersionIn
from connectors.models import System
from hub.api.errors import StrictJSONParser
from hub.api.fields import TextField, read_query
from hub.api.writes import NoBodySerializer, refusals
from hub.models import VersionMove, VersionMoveState
from hub.roles import IsAdminOnly
from hub.services.versions import (
    DryRunEvent,
    DryRunFlow,
    affected_flows,
    version_dry_run,
    version_move_discard,
    version_move_start,
    version_switch,
    version_switch_back,
)

MAX_DOCUMENT_CHARS = 2_000_000  # as the page's form


class VersionMoveSerializer(serializers.ModelSerializer):
    system = serializers.PrimaryKeyRelatedField(read_only=True)
    system_name = serializers.CharField(source="system.name", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    is_open = serializers.BooleanField(read_only=True, help_text="Still to be switched over, or back.")
    flows = serializers.SerializerMethodField(help_text="The flows the move concerns (ids).")

    class Meta:
        model = VersionMove
        fields = [
            "id", "system", "system_name", "state", "from_version", "from_in", "from_name",
            "to_version", "to_in", "to_name", "model_pairs", "mapping_pairs", "differences",
            "dry_run_at", "created_by", "created_at", "switched_at", "is_open", "flows",
        ]  # fmt: skip
        read_only_fields = fields

    def get_flows(self, move: VersionMove) -> list[int]:
        if move.state in (VersionMoveState.DISCARDED, VersionMoveState.FINISHED):
            return []
        return [flow.pk for flow in affected_flows(move)]


class VersionMoveStartSerializer(serializers.Serializer):
    system = serializers.PrimaryKeyRelatedField(queryset=System.objects.all(), help_text="The system's id.")
    to_version = TextField(max_length=40, help_text="As the vendor writes it, e.g. v2 or 2025-01-01.")
    to_in = serializers.ChoiceField(choices=VersionIn.choices, help_text="Where the version goes.")
    to_name = TextField(
        max_length=100,
        allow_blank=True,
        default="",
        help_text="The header or query parameter's name (not used when the version is in the address).",
    )
    document = TextField(
        max_length=MAX_DOCUMENT_CHARS,
        allow_blank=True,
        default="",
        help_text="The vendor's new API description (OpenAPI, JSON or YAML): each copied model takes "
        "its fields from the schema of the same name, and the move keeps what changed.",
    )
    document_path = TextField(
        max_length=300,
        allow_blank=True,
        default="",
        help_text="Or where the system publishes it (e.g. /openapi.json), read with the new version.",
    )


class VersionMoveFilterSerializer(serializers.Serializer):
    system = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Only this system's moves."
    )
    state = serializers.ChoiceField(required=False, choices=VersionMoveState.choices)


class ChangeSerializer(serializers.Serializer):
    path = serializers.CharField()
    kind = serializers.ChoiceField(choices=["added", "removed", "changed"])
    old = serializers.JSONField(allow_null=True, help_text="null when the old payload lacks it.")
    new = serializers.JSONField(allow_null=True, help_text="null when the new payload lacks it.")


class DryRunEventSerializer(serializers.Serializer):
    event = serializers.IntegerField(help_text="The event's id.")
    event_type = serializers.CharField()
    record_id = serializers.CharField()
    received_at = serializers.DateTimeField()
    old = serializers.JSONField(allow_null=True, help_text="What the old mapping sends.")
    new = serializers.JSONField(allow_null=True, help_text="What the new mapping would send.")
    old_error = serializers.CharField()
    new_error = serializers.CharField()
    problems = serializers.ListField(
        child=serializers.CharField(), help_text="What the new target model would refuse."
    )
    changes = ChangeSerializer(many=True)


class DryRunFlowSerializer(serializers.Serializer):
    flow = serializers.IntegerField()
    flow_name = serializers.CharField()
    old_call = serializers.CharField(help_text="Where a write goes now.")
    new_call = serializers.CharField(help_text="Where it would go with the new version.")
    call_problem = serializers.CharField(help_text="Why the new version cannot be put in the address.")
    problems = serializers.ListField(child=serializers.CharField(), help_text="The flow's, on the new side.")
    differing = serializers.IntegerField(help_text="Events whose payload differs or fails on the new side.")
    events = DryRunEventSerializer(many=True)


class DryRunSerializer(serializers.Serializer):
    move = VersionMoveSerializer()
    flows = DryRunFlowSerializer(many=True)


class RefusalSerializer(serializers.Serializer):
    error = serializers.CharField()


CONFLICT = OpenApiResponse(RefusalSerializer, description="The move's state does not allow it: why.")


def _plain(value: Any) -> Any:
    """A side's value; null where that side lacks the field."""
    return value if isinstance(value, str | int | float | bool | list | dict | type(None)) else None


def _event(result: DryRunEvent) -> dict[str, Any]:
    return {
        "event": result.event.pk,
        "event_type": result.event.event_type,
        "record_id": result.event.record_id,
        "received_at": result.event.received_at,
        "old": result.old,
        "new": result.new,
        "old_error": result.old_error,
        "new_error": result.new_error,
        "problems": result.problems,
        "changes": [
            {"path": c.path, "kind": c.kind, "old": _plain(c.old), "new": _plain(c.new)}
            for c in result.changes
        ],
    }


def _flow(result: DryRunFlow) -> dict[str, Any]:
    return {
        "flow": result.flow.pk,
        "flow_name": result.flow.name,
        "old_call": result.old_call,
        "new_call": result.new_call,
        "call_problem": result.call_problem,
        "problems": result.problems,
        "differing": result.differing,
        "events": [_event(e) for e in result.events],
    }


class VersionMoveViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Moves to a new API version, newest first."""

    serializer_class = VersionMoveSerializer
    parser_classes = [StrictJSONParser]
    permission_classes = [IsAdminOnly]

    def get_queryset(self):
        moves = VersionMove.objects.select_related("system", "created_by").order_by("-created_at", "-id")
        if self.action == "list":
            filters = read_query(VersionMoveFilterSerializer, self.request.query_params)
            if "system" in filters:
                moves = moves.filter(system_id=filters["system"])
            if "state" in filters:
                moves = moves.filter(state=filters["state"])
        return moves

    @extend_schema(parameters=[VersionMoveFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=VersionMoveStartSerializer,
        responses={201: VersionMoveSerializer, 409: CONFLICT},
        description="Copy the system's current data models, and the mappings using them, for the new "
        "version. Its flows keep the old ones until the move is switched over.",
    )
    def create(self, request, *args, **kwargs):
        body = VersionMoveStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with refusals(conflict=True):
            move = version_move_start(
                system=data["system"], to_version=data["to_version"], to_in=data["to_in"],
                to_name=data["to_name"], document=data["document"], document_path=data["document_path"],
                actor=request.user,
            )  # fmt: skip
        return Response(VersionMoveSerializer(move).data, status=201)

    @extend_schema(
        request=NoBodySerializer,
        responses={200: DryRunSerializer, 409: CONFLICT},
        description="Run each affected flow's last delivered events through the old and the new "
        "mapping, side by side. Nothing is sent to any system.",
    )
    @action(detail=True, methods=["post"], url_path="dry-run")
    def dry_run(self, request, pk=None, format=None):
        move = self.get_object()
        with refusals(conflict=True):
            results = version_dry_run(move=move, actor=request.user)
        return Response({"move": VersionMoveSerializer(move).data, "flows": [_flow(r) for r in results]})

    def _step(self, service) -> Response:
        move = self.get_object()
        with refusals(conflict=True):
            service(move=move, actor=self.request.user)
        move.refresh_from_db()
        return Response(VersionMoveSerializer(move).data)

    @extend_schema(
        request=NoBodySerializer,
        responses={200: VersionMoveSerializer, 409: CONFLICT},
        description="The system uses the new version, and its flows the new mappings (after a dry run).",
    )
    @action(detail=True, methods=["post"])
    def switch(self, request, pk=None, format=None):
        return self._step(version_switch)

    @extend_schema(
        request=NoBodySerializer,
        responses={200: VersionMoveSerializer, 409: CONFLICT},
        description="Back to the old version and the old mappings.",
    )
    @action(detail=True, methods=["post"], url_path="switch-back")
    def switch_back(self, request, pk=None, format=None):
        return self._step(version_switch_back)

    @extend_schema(
        request=NoBodySerializer,
        responses={200: VersionMoveSerializer, 409: CONFLICT},
        description="Remove the side no flow uses: the new copies of a move not switched over (or "
        "switched back), or the old version's models and mappings once switched.",
    )
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None, format=None):
        return self._step(version_move_discard)
