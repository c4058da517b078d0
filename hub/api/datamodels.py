"""Data models and their fields: create (from a field list, or from a sample record), read, change,
delete; add, change, reorder and remove fields; replace the sample. The same services as the
Data models pages, so the same checks and audit entries."""

from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from connectors.models import System
from hub.api.errors import StrictJSONParser
from hub.api.fields import StrictBooleanField, StrictDictField, StrictIntegerField, TextField, read_query
from hub.api.model_sources import (
    ApiDescriptionPreviewSerializer,
    FromApiDescriptionSerializer,
    FromTemplateSerializer,
    data_model_from_description,
    data_model_from_offer,
    description_preview,
)
from hub.api.writes import RolesByAction, changed_only, refusals
from hub.roles import IsAdminRole
from hub.services.datamodels import (
    EDITABLE,
    data_model_create,
    data_model_delete,
    data_model_sample_set,
    data_model_update,
    field_add,
    field_order_set,
    field_remove,
    field_update,
    sample_fetch,
)
from mappings.models import DataModel, Field
from mappings.schema import ENUM_MAX, FIELD_TYPES, FORMATS, FieldSpec, SchemaError, infer_fields

MAX_FIELDS = 2000  # a request's field list; a model with more is not one a person maps


@extend_schema_field(
    {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}], "nullable": True}
)
class AllowedValueField(serializers.Field):
    """One value a field may hold: text, a number, true/false or null (never a list or object)."""

    default_error_messages = {"invalid": "Give text, a number, true or false, or null."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str | int | float | bool) or (isinstance(data, str) and len(data) > 500):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class FieldChecks(serializers.Serializer):
    """What the target accepts beyond the type; a delivery that breaks one is never sent."""

    format = serializers.ChoiceField(
        choices=[("", "none"), *((f, f) for f in FORMATS)], allow_blank=True, required=False
    )
    enum = serializers.ListField(
        child=AllowedValueField(), max_length=ENUM_MAX, required=False,
        help_text="The only values allowed; empty allows any.",
    )  # fmt: skip
    min_length = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=1_000_000)
    max_length = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=1_000_000)


CHECKS = tuple(FieldChecks().fields)


class FieldSerializer(FieldChecks):
    id = serializers.IntegerField(read_only=True)
    path = TextField(max_length=300, help_text="Where the value is, e.g. customer.email or lines[].sku.")
    type = serializers.ChoiceField(choices=FIELD_TYPES, default="string")
    required = StrictBooleanField(default=False)
    description = TextField(max_length=300, allow_blank=True, default="")
    unit = TextField(max_length=60, allow_blank=True, default="", help_text="e.g. in cents (minor units).")
    position = serializers.IntegerField(read_only=True)


class FieldChangeSerializer(FieldChecks):
    """A field's path stays (mappings refer to it); the rest may change."""

    type = serializers.ChoiceField(choices=FIELD_TYPES, required=False)
    required = StrictBooleanField(required=False)
    description = TextField(max_length=300, allow_blank=True, required=False)
    unit = TextField(max_length=60, allow_blank=True, required=False)


class DataModelSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    system = serializers.SlugRelatedField(
        slug_field="slug", queryset=System.objects.all(), help_text="The system's slug."
    )
    name = TextField(max_length=100)
    resource_path = TextField(max_length=300, allow_blank=True, default="", help_text="e.g. /customers")
    id_path = TextField(max_length=200, allow_blank=True, default="id")
    cursor_field = TextField(max_length=200, allow_blank=True, default="")
    description = TextField(max_length=5000, allow_blank=True, default="")
    lookup_field = TextField(max_length=200, allow_blank=True, default="")
    lookup_param = TextField(max_length=200, allow_blank=True, default="")
    create_by_key = StrictBooleanField(default=False)
    fields = FieldSerializer(
        many=True, required=False, max_length=MAX_FIELDS,
        help_text="The fields in order; when left out, they are read from `sample`.",
    )  # fmt: skip
    sample = StrictDictField(
        required=False, allow_null=True, help_text="One record of this kind (the mapper previews with it)."
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class DataModelChangeSerializer(serializers.Serializer):
    name = TextField(max_length=100, required=False)
    resource_path = TextField(max_length=300, allow_blank=True, required=False)
    id_path = TextField(max_length=200, allow_blank=True, required=False)
    cursor_field = TextField(max_length=200, allow_blank=True, required=False)
    description = TextField(max_length=5000, allow_blank=True, required=False)
    lookup_field = TextField(max_length=200, allow_blank=True, required=False)
    lookup_param = TextField(max_length=200, allow_blank=True, required=False)
    create_by_key = StrictBooleanField(required=False)


class SampleSerializer(serializers.Serializer):
    sample = StrictDictField(required=False, help_text="The new sample record; leave out with `fetch`.")
    fetch = StrictBooleanField(
        default=False, help_text="Read one record from the system at the model's resource path instead."
    )
    add_new_fields = StrictBooleanField(
        default=False, help_text="Add the fields it has that the model lacks."
    )


class SampleResultSerializer(serializers.Serializer):
    added_fields = serializers.ListField(child=serializers.CharField())
    sample = serializers.DictField()


class FieldOrderSerializer(serializers.Serializer):
    paths = serializers.ListField(
        child=TextField(max_length=300), max_length=MAX_FIELDS,
        help_text="Field paths in the order wanted; fields left out follow in their present order.",
    )  # fmt: skip


class DataModelFilterSerializer(serializers.Serializer):
    system = serializers.SlugField(required=False, max_length=60, help_text="Only this system's models.")


def _fields_of(body: dict[str, Any]) -> list[FieldSpec]:
    if body.get("fields"):
        return [
            FieldSpec(
                f["path"],
                f["type"],
                f["required"],
                f["description"],
                f["unit"],
                format=f.get("format", ""),
                enum=tuple(f.get("enum", ())),
                min_length=f.get("min_length"),
                max_length=f.get("max_length"),
            )  # fmt: skip
            for f in body["fields"]
        ]
    if body.get("sample"):
        try:
            return infer_fields(body["sample"])
        except SchemaError as exc:
            raise ValidationError({"sample": [str(exc)]}) from None
    raise ValidationError({"fields": ["Give the fields, or a sample record to read them from."]})


class DataModelViewSet(
    RolesByAction,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """Everyone with a role reads; admins change (as on the Data models pages)."""

    serializer_class = DataModelSerializer
    parser_classes = [StrictJSONParser]
    permission_classes = [IsAdminRole]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        models = (
            DataModel.objects.select_related("system")
            .prefetch_related("fields")
            .order_by("system__name", "name")
        )
        if self.action == "list":
            filters = read_query(DataModelFilterSerializer, self.request.query_params)
            if "system" in filters:
                models = models.filter(system__slug=filters["system"])
        return models

    def get_serializer_class(self):
        return DataModelChangeSerializer if self.action == "partial_update" else DataModelSerializer

    @extend_schema(parameters=[DataModelFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={201: DataModelSerializer})
    def create(self, request, *args, **kwargs):
        body = DataModelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with refusals():
            model = data_model_create(
                system=data["system"], name=data["name"], resource_path=data["resource_path"],
                id_path=data["id_path"], cursor_field=data["cursor_field"], fields=_fields_of(data),
                sample=data.get("sample"), description=data["description"], lookup_field=data["lookup_field"],
                lookup_param=data["lookup_param"], create_by_key=data["create_by_key"], actor=request.user,
            )  # fmt: skip
        return Response(DataModelSerializer(model).data, status=201)

    @extend_schema(
        request=FromApiDescriptionSerializer,
        responses={
            201: DataModelSerializer,
            200: OpenApiResponse(
                ApiDescriptionPreviewSerializer,
                description="No operation or schema given: what the description offers, to choose from.",
            ),
        },
        description="A data model from one operation (or schema) of the system's API description, "
        "pasted or fetched from the system, as on the new-data-model page.",
    )
    @action(detail=False, methods=["post"], url_path="from-api-description")
    def from_api_description(self, request, format=None):
        body = FromApiDescriptionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        preview = description_preview(body.validated_data)
        if preview is not None:
            return Response(ApiDescriptionPreviewSerializer(preview).data)
        model = data_model_from_description(body.validated_data, actor=request.user)
        return Response(DataModelSerializer(model).data, status=201)

    @extend_schema(
        request=FromTemplateSerializer,
        responses={201: DataModelSerializer},
        description="The vendor template's model (see GET /api/v1/systems/{id}/template-models/), "
        "created in one step.",
    )
    @action(detail=False, methods=["post"], url_path="from-template")
    def from_template(self, request, format=None):
        body = FromTemplateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model = data_model_from_offer(body.validated_data, actor=request.user)
        return Response(DataModelSerializer(model).data, status=201)

    @extend_schema(request=DataModelChangeSerializer, responses=DataModelSerializer)
    def partial_update(self, request, *args, **kwargs):
        model = self.get_object()
        body = DataModelChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with refusals():
            data_model_update(model=model, actor=request.user, **changed_only(body.validated_data, EDITABLE))
        return Response(DataModelSerializer(model).data)

    @extend_schema(
        responses={204: None, 409: OpenApiResponse(description="Flows or mappings use it: which.")}
    )
    def destroy(self, request, *args, **kwargs):
        model = self.get_object()
        with refusals(conflict=True):
            data_model_delete(model=model, actor=request.user)
        return Response(status=204)

    @extend_schema(
        request=FieldSerializer, responses={201: FieldSerializer}, description="Add a field at the end."
    )
    @action(detail=True, methods=["post"], url_path="fields")
    def fields(self, request, pk=None, format=None):
        model = self.get_object()
        body = FieldSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        given = dict(body.validated_data)
        checks = {key: given.pop(key) for key in CHECKS if key in given}
        with refusals(), transaction.atomic():
            field = field_add(model=model, actor=request.user, **given)
            if checks:
                field = field_update(field=field, actor=request.user, **checks)
        return Response(FieldSerializer(field).data, status=201)

    @extend_schema(request=FieldOrderSerializer, responses=DataModelSerializer)
    @action(detail=True, methods=["post"], url_path="field-order")
    def field_order(self, request, pk=None, format=None):
        model = self.get_object()
        body = FieldOrderSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        known = set(model.fields.values_list("path", flat=True))
        if unknown := [path for path in body.validated_data["paths"] if path not in known]:
            raise ValidationError({"paths": [f"{model.name} has no field {', '.join(unknown[:5])}"]})
        field_order_set(model=model, paths=body.validated_data["paths"], actor=request.user)
        return Response(DataModelSerializer(self.get_object()).data)  # read again: the order changed

    @extend_schema(
        request=SampleSerializer,
        responses=SampleResultSerializer,
        description="Replace the sample record with one given or read from the system; optionally add "
        "the fields it has that the model lacks (existing fields never change here).",
    )
    @action(detail=True, methods=["post"])
    def sample(self, request, pk=None, format=None):
        model = self.get_object()
        body = SampleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data["fetch"] == ("sample" in data):
            raise ValidationError({"sample": ["Give a sample record, or ask to fetch one (not both)."]})
        with refusals():
            record = (
                sample_fetch(system=model.system, resource=model.resource_path)
                if data["fetch"]
                else data["sample"]
            )
            added = data_model_sample_set(
                model=model, sample=record, actor=request.user, add_new_fields=data["add_new_fields"]
            )
        return Response({"added_fields": [field.path for field in added], "sample": record})


class FieldFilterSerializer(serializers.Serializer):
    model = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Only this model's fields."
    )


class FieldViewSet(
    RolesByAction, mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet
):
    """One field of a data model: read, change (not its path), remove. Add one with
    POST /api/v1/models/{id}/fields/."""

    serializer_class = FieldSerializer
    parser_classes = [StrictJSONParser]
    permission_classes = [IsAdminRole]
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_queryset(self):
        fields = Field.objects.select_related("model__system").order_by("model_id", "position", "path")
        if self.action == "list":
            filters = read_query(FieldFilterSerializer, self.request.query_params)
            if "model" in filters:
                fields = fields.filter(model_id=filters["model"])
        return fields

    @extend_schema(parameters=[FieldFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=FieldChangeSerializer, responses=FieldSerializer)
    def partial_update(self, request, *args, **kwargs):
        field = self.get_object()
        body = FieldChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with refusals():
            field = field_update(field=field, actor=request.user, **body.validated_data)
        return Response(FieldSerializer(field).data)

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="The model is looked up by it.")})
    def destroy(self, request, *args, **kwargs):
        field = self.get_object()
        with refusals(conflict=True):
            field_remove(field=field, actor=request.user)
        return Response(status=204)
