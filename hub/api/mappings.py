"""Mappings and their versions: read the rules, save a new version (checked by the mapper's own
rule validation), restore an old one, rename, and preview a record through rules. Every save is a
version with its diff and an audit entry, as in the field mapper. A mapping is made with its flow
(POST /api/v1/flows/) and goes with it."""

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from common import strictjson
from common.limits import LIMITS, MB
from hub.api.errors import StrictJSONParser, error_response
from hub.api.fields import StrictDictField, StrictIntegerField, StrictUUIDField, TextField
from hub.api.writes import RolesByAction, refusals
from hub.models import Event
from hub.roles import IsAdminRole, IsReader
from hub.services.mappings import (
    MappingVersionConflict,
    mapping_rename,
    mapping_version_restore,
    mapping_version_save,
)
from mappings.engine import RuleError, diff_rules, preview_mapping, validate_rules
from mappings.models import Mapping, MappingVersion

RULES_HELP = (
    'The rules, as the field mapper keeps them: [{"target": "email", "source": "contact.email", '
    '"transforms": [{"name": "lower"}]}, ...]. Checked as the mapper checks them.'
)


class RuleErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The rule's place (from 0); -1 for the whole mapping.")
    target = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


def _errors_json(errors: list[RuleError]) -> list[dict[str, Any]]:
    return [{"index": e.index, "target": e.target, "message": e.message} for e in errors]


class RulesField(serializers.ListField):
    """A list of rule objects; what each must hold is the mapper's validation's to say."""

    child = StrictDictField()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=LIMITS.mapping_rules, help_text=RULES_HELP, **kwargs)


class MappingVersionSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = MappingVersion
        fields = ["number", "rules", "diff", "comment", "author", "created_at"]
        read_only_fields = fields


class MappingSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="current_version.number", read_only=True, allow_null=True)
    rules = serializers.JSONField(read_only=True, help_text="The current version's rules.")
    flows = serializers.SerializerMethodField()

    class Meta:
        model = Mapping
        fields = ["id", "name", "source_model", "target_model", "version", "rules", "flows", "created_at"]
        read_only_fields = ["id", "source_model", "target_model", "created_at"]

    def get_flows(self, mapping: Mapping) -> list[int]:
        return [flow.pk for flow in mapping.flows.all()]


class RenameSerializer(serializers.Serializer):
    name = TextField(max_length=200, required=False, help_text="A new name; left out, nothing changes.")


class VersionSaveSerializer(serializers.Serializer):
    rules = RulesField()
    comment = TextField(max_length=300, allow_blank=True, default="")
    base_version = StrictIntegerField(
        required=False, min_value=0, max_value=2**31 - 1,
        help_text="The version these rules started from (0: none yet); a later save by someone else is a 409.",
    )  # fmt: skip


class VersionSavedSerializer(MappingVersionSerializer):
    saved = serializers.BooleanField(help_text="False when the rules are those of the current version.")

    class Meta(MappingVersionSerializer.Meta):
        fields = [*MappingVersionSerializer.Meta.fields, "saved"]
        read_only_fields = fields


class PreviewSerializer(serializers.Serializer):
    rules = RulesField(required=False)
    record = StrictDictField(
        required=False, help_text="The source record to try; else the event's, else the sample."
    )
    event_id = StrictUUIDField(
        required=False, help_text="One of the source system's events, to try its record."
    )


class PreviewResultSerializer(serializers.Serializer):
    output = serializers.JSONField(help_text="The target record the rules make.")
    values = serializers.JSONField(help_text="Each rule's value, by target.")
    errors = RuleErrorSerializer(many=True)
    record = serializers.JSONField(help_text="The source record used.")


class MappingViewSet(RolesByAction, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Everyone with a role reads and previews; admins save, restore and rename."""

    serializer_class = MappingSerializer
    parser_classes = [StrictJSONParser]
    permission_classes = [IsAdminRole]
    action_roles = {"preview": IsReader}
    http_method_names = ["get", "post", "patch", "head", "options"]
    queryset = (
        Mapping.objects.select_related("current_version", "source_model__system", "target_model__system")
        .prefetch_related("flows")
        .order_by("name", "pk")
    )

    @extend_schema(request=RenameSerializer, responses=MappingSerializer, description="Rename the mapping.")
    def partial_update(self, request, *args, **kwargs):
        mapping = self.get_object()
        body = RenameSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if "name" in body.validated_data:
            with refusals():
                mapping_rename(mapping=mapping, name=body.validated_data["name"], actor=request.user)
        return Response(MappingSerializer(mapping).data)

    @extend_schema(
        methods=["GET"],
        responses=MappingVersionSerializer(many=True),
        description="Every version, newest first.",
    )
    @extend_schema(
        methods=["POST"],
        request=VersionSaveSerializer,
        responses={
            201: VersionSavedSerializer,
            200: OpenApiResponse(VersionSavedSerializer, description="Nothing changed: the current version."),
            409: OpenApiResponse(description="Someone saved another version since `base_version`."),
        },
        description="Save rules as the next version.",
    )
    @action(detail=True, methods=["get", "post"])
    def versions(self, request, pk=None, format=None):
        mapping = self.get_object()
        if request.method == "GET":
            versions = self.paginate_queryset(mapping.versions.select_related("author").order_by("-number"))
            return self.get_paginated_response(MappingVersionSerializer(versions, many=True).data)
        body = VersionSaveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if errors := validate_rules(data["rules"]):
            return error_response(
                400, "the rules are not valid: fix each one named", rules=_errors_json(errors)
            )
        current, expected = mapping.current_version, data.get("base_version")
        if current and expected in (None, current.number) and not diff_rules(current.rules, data["rules"]):
            return Response({**MappingVersionSerializer(current).data, "saved": False})
        try:
            version = mapping_version_save(
                mapping=mapping, rules=data["rules"], comment=data["comment"].strip(),
                expected_version=expected, actor=request.user,
            )  # fmt: skip
        except MappingVersionConflict as exc:
            return error_response(409, f"not saved: {exc}", version=exc.number)
        return Response({**MappingVersionSerializer(version).data, "saved": True}, status=201)

    def _version(self, mapping: Mapping, number: str) -> MappingVersion:
        version = mapping.versions.select_related("author").filter(number=int(number)).first()
        if version is None:
            raise NotFound(f"{mapping.name} has no version {number}")
        return version

    @extend_schema(responses=MappingVersionSerializer)
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<number>[0-9]{1,9})", url_name="version")
    def version(self, request, pk=None, number=None, format=None):
        return Response(MappingVersionSerializer(self._version(self.get_object(), number)).data)

    @extend_schema(
        request=None,
        responses={201: MappingVersionSerializer},
        description="Save an old version's rules as the next version.",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"versions/(?P<number>[0-9]{1,9})/restore",
        url_name="version-restore",
    )
    def restore(self, request, pk=None, number=None, format=None):
        mapping = self.get_object()
        version = self._version(mapping, number)
        with refusals():
            restored = mapping_version_restore(mapping=mapping, version=version, actor=request.user)
        return Response(MappingVersionSerializer(restored).data, status=201)

    @extend_schema(
        request=PreviewSerializer,
        responses={
            200: PreviewResultSerializer,
            422: OpenApiResponse(description="The answer would be too large."),
        },
        description="Run rules (the current version's unless given) on a record, as the mapper's live "
        "preview does; changes nothing. Every problem is listed beside its rule.",
    )
    @action(detail=True, methods=["post"])
    def preview(self, request, pk=None, format=None):
        mapping = self.get_object()
        body = PreviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        record = self._record(mapping, data)
        result = preview_mapping(data["rules"] if "rules" in data else mapping.rules, record)
        answer = {
            "output": result.output,
            "values": result.values,
            "errors": _errors_json(result.errors),
            "record": record,
        }
        if strictjson.size_over(answer, LIMITS.preview_answer_bytes):
            return error_response(
                422,
                f"the preview would be larger than {LIMITS.preview_answer_bytes // MB} MB: try a smaller record",
            )
        return Response(_plain(answer))

    def _record(self, mapping: Mapping, data: dict[str, Any]) -> Any:
        source = mapping.source_model
        if "record" in data:
            return data["record"]
        if "event_id" in data:
            event = Event.objects.filter(system_id=source.system_id, pk=data["event_id"]).first()
            if event is None:
                raise ValidationError({"event_id": [f"not one of {source.system.name}'s events"]})
            return event.record()
        if source.sample is None:
            raise ValidationError(
                {"record": [f"{source.name} has no sample record: give a record or an event"]}
            )
        return source.sample


def _plain(value: Any) -> Any:
    """What a transform made, as JSON can carry it (a date as its ISO text, anything odd as text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
