"""The specification document over the API: export it, preview an import (a dry run) and apply one.
Admins only, as on the pages; the same service does the work (hub.services.specification)."""

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from common.limits import LIMITS
from hub.api.errors import StrictJSONParser
from hub.api.fields import TextField
from hub.roles import ADMIN, IsAdminRole
from hub.services.specification import spec_export, spec_import


class AdminsOnly(IsAdminRole):
    """Admins alone, reading too: the document is the whole configuration at once."""

    read_roles = (ADMIN,)


class ImportSerializer(serializers.Serializer):
    document = TextField(
        max_length=LIMITS.spec_bytes,
        help_text="The specification document, as the export gives it (YAML).",
    )
    remove_unlisted = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Also remove the systems, data models, flows and alert channels that a section of "
        "the document does not list.",
    )


class SpecificationValueSerializer(serializers.Serializer):
    setting = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class SpecificationChangeSerializer(serializers.Serializer):
    section = serializers.CharField(help_text="system, model, flow or channel")
    name = serializers.CharField()
    action = serializers.CharField(help_text="add, change or remove")
    about = serializers.CharField()
    values = SpecificationValueSerializer(many=True, help_text="Settings that change: before and after.")
    added = serializers.ListField(child=serializers.CharField(), help_text="Parts added inside the item.")
    removed = serializers.ListField(child=serializers.CharField(), help_text="Parts taken away inside it.")
    text = serializers.CharField()


class SpecificationReportSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    applied = serializers.BooleanField(help_text="The changes were made (never on a preview).")
    remove_unlisted = serializers.BooleanField()
    summary = serializers.CharField()
    errors = serializers.ListField(child=serializers.CharField(), help_text="Each names where it is.")
    added = SpecificationChangeSerializer(many=True)
    changed = SpecificationChangeSerializer(many=True)
    removed = SpecificationChangeSerializer(many=True)
    unchanged = serializers.IntegerField()
    notes = serializers.ListField(child=serializers.CharField())


REPORT = SpecificationReportSerializer
# Content added by hub.api.schema.document_errors: the Error shape, which the report extends.
REFUSED = OpenApiResponse(
    description="The body, or the document in it, has problems; nothing was changed. `error` says "
    "what; for a document, the rest is the report, whose `errors` name where each problem is."
)


class _Import(APIView):
    permission_classes = [AdminsOnly]
    parser_classes = [StrictJSONParser]
    dry_run = True

    def post(self, request):
        body = ImportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        report = spec_import(
            text=body.validated_data["document"],
            actor=request.user,
            dry_run=self.dry_run,
            remove_unlisted=body.validated_data["remove_unlisted"],
        )
        if report.errors:
            return Response({"error": report.summary(), **report.as_dict()}, status=400)
        return Response(report.as_dict())


class SpecificationPreview(_Import):
    @extend_schema(
        operation_id="specification_preview",
        tags=["specification"],
        summary="What an import would add, change and remove (a dry run: nothing changes)",
        request=ImportSerializer,
        responses={200: REPORT, 400: REFUSED},
    )
    def post(self, request):
        return super().post(request)


class SpecificationApply(_Import):
    dry_run = False

    @extend_schema(
        operation_id="specification_apply",
        tags=["specification"],
        summary="Import the document: all of it in one transaction, or nothing",
        request=ImportSerializer,
        responses={200: REPORT, 400: REFUSED},
    )
    def post(self, request):
        return super().post(request)


class SpecificationExport(APIView):
    permission_classes = [AdminsOnly]

    @extend_schema(
        operation_id="specification_export",
        tags=["specification"],
        summary="The whole configuration as one YAML document (secrets only as set / not set)",
        responses={
            (200, "application/yaml"): OpenApiResponse(
                response=OpenApiTypes.OBJECT, description="The document."
            )
        },
    )
    def get(self, request):
        response = HttpResponse(spec_export(), content_type="application/yaml; charset=utf-8")
        filename = f"hub-specification-{timezone.localdate():%Y-%m-%d}.yaml"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
