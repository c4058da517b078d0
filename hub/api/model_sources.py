"""New data models the way the new-data-model page makes them besides a field list or a sample:
from one operation (or schema) of an API description, pasted or fetched from the system, and from
a vendor template's offer. The description is read by the page's own form (SourceForm), so its
checks and messages are the page's; the model is made by the same services (data_model_create,
data_model_from_template), so the same audit entries."""

from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from connectors.models import System
from hub.api.fields import TextField
from hub.api.writes import refusals
from hub.services.datamodels import data_model_create
from hub.services.vendor_models import data_model_from_template
from hub.ui.forms.datamodels import MAX_DOCUMENT_BYTES, SCHEMA_CHOICE, SourceForm, resource_path_for
from mappings.models import DataModel

# The page form's field names, as the API calls them.
FORM_FIELDS = {"openapi_text": "document", "openapi_path": "document_path", "operation": "operation"}


class FromApiDescriptionSerializer(serializers.Serializer):
    system = serializers.SlugRelatedField(
        slug_field="slug", queryset=System.objects.all(), help_text="The system's slug."
    )
    document = TextField(
        max_length=MAX_DOCUMENT_BYTES,
        allow_blank=True,
        default="",
        help_text="The API description (OpenAPI, JSON or YAML). Left out, the hub fetches it from the "
        "system at `document_path`, or at the usual places (/openapi.json…).",
    )
    document_path = TextField(max_length=300, allow_blank=True, default="", help_text="e.g. /openapi.json")
    operation = TextField(
        max_length=600,
        allow_blank=True,
        default="",
        help_text="The call the hub makes, e.g. “POST /crm/v3/objects/contacts”: its request sets the "
        "fields, its answer where the new record's id is.",
    )
    schema = TextField(
        max_length=300, allow_blank=True, default="", help_text="Or a schema alone (no request checks)."
    )
    name = TextField(
        max_length=100, allow_blank=True, default="", help_text="Left out: named after the records."
    )
    resource_path = TextField(
        max_length=300, allow_blank=True, default="", help_text="Left out: the operation's path."
    )
    id_path = TextField(
        max_length=200, allow_blank=True, default="", help_text="Left out: where the answer keeps the id."
    )
    cursor_field = TextField(max_length=200, allow_blank=True, default="")
    description = TextField(max_length=5000, allow_blank=True, default="")

    def validate(self, data: dict) -> dict:
        if data["operation"] and data["schema"]:
            raise ValidationError({"schema": ["Give an operation or a schema, not both."]})
        return data


class ApiOperationSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="What to send as `operation`, e.g. “POST /contacts”.")
    summary = serializers.CharField()


class ApiDescriptionPreviewSerializer(serializers.Serializer):
    document_path = serializers.CharField(
        help_text="Where the description was fetched from (empty when given)."
    )
    operations = ApiOperationSerializer(many=True, help_text="Writes first.")
    schemas = serializers.ListField(child=serializers.CharField())


class FromTemplateSerializer(serializers.Serializer):
    system = serializers.SlugRelatedField(
        slug_field="slug", queryset=System.objects.all(), help_text="The system's slug."
    )
    name = TextField(max_length=100, help_text="The template's model, e.g. Contact.")


class OfferedModelSerializer(serializers.Serializer):
    name = serializers.CharField()
    vendor = serializers.CharField()
    resource_path = serializers.CharField()
    source = serializers.ChoiceField(
        choices=["fields", "sample", "api_description"], help_text="Where its fields come from."
    )
    taken = serializers.BooleanField(help_text="The system has a data model of that name already.")


def _read(data: dict) -> SourceForm:
    """The page's form, reading the description (fetching it from the system when not given)."""
    choice = data["operation"] or (f"{SCHEMA_CHOICE}{data['schema']}" if data["schema"] else "")
    form = SourceForm(
        {
            "source": SourceForm.OPENAPI,
            "openapi_text": data["document"],
            "openapi_path": data["document_path"],
            "operation": choice,
        },
        system=data["system"],
    )
    form.is_valid()
    return form


def _refused(form: SourceForm, *, schema: bool) -> ValidationError:
    found: dict[str, list[str]] = {}
    for name, messages in form.errors.items():
        key = FORM_FIELDS.get(name, "non_field_errors")
        key = "schema" if key == "operation" and schema else key
        found.setdefault(key, []).extend(messages)
    return ValidationError(found)


def description_preview(data: dict) -> dict[str, Any] | None:
    """What the description offers, when no operation or schema was chosen; None otherwise, or
    when the description alone settles it (one schema, no operations)."""
    if data["operation"] or data["schema"]:
        return None
    form = _read(data)
    if form.document is None:
        raise _refused(form, schema=False)
    if form.fields_read is not None:
        return None
    return {
        "document_path": form.data.get("openapi_path", "") if not data["document"] else "",
        "operations": [{"key": op.key, "summary": op.summary} for op in form.operations],
        "schemas": form.schema_names,
    }


def data_model_from_description(data: dict, *, actor) -> DataModel:
    form = _read(data)
    if form.errors or form.fields_read is None:
        raise _refused(form, schema=bool(data["schema"]))
    fields, read = form.fields_read, form.operation_read
    paths = {spec.path for spec in fields}
    if read is not None:
        name = data["name"] or read.name
        resource_path = data["resource_path"] or resource_path_for(data["system"], read)
        id_path = data["id_path"] or read.id_path or "id"
    else:
        name = data["name"] or form.cleaned_data.get("schema_name", "")
        resource_path = data["resource_path"]
        id_path = data["id_path"] or next((p for p in ("id", "uuid", "key", "code") if p in paths), "id")
    cursor = data["cursor_field"] or next(
        (p for p in ("updated_at", "modified_at", "updatedAt") if p in paths), ""
    )
    with refusals():
        return data_model_create(
            system=data["system"], name=name, resource_path=resource_path, id_path=id_path,
            cursor_field=cursor, description=data["description"], fields=fields, sample=None,
            actor=actor, api_document=form.document if read else None,
            api_operation=read.operation.key if read else "",
        )  # fmt: skip


def data_model_from_offer(data: dict, *, actor) -> DataModel:
    with refusals():
        return data_model_from_template(system=data["system"], name=data["name"], actor=actor)
