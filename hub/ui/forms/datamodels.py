"""Forms for data models: where the fields come from (a sample or an OpenAPI document), the
editable table of fields, and the model's settings. Errors are written for a non-technical admin
and say where the problem is ("line 3 column 5: Expecting ',' delimiter")."""

import json
import re
from typing import Any
from urllib.parse import urlsplit

import yaml
from django import forms
from django.urls import reverse

from common import strictjson, strictyaml
from common.limits import LIMITS, MB
from common.paths import PathError, compile_path
from common.urlpaths import relative_path_problem
from connectors.models import System
from hub.services.datamodels import (
    EDITABLE,
    UNSUITABLE_TYPES,
    api_description_fetch,
    lookup_query,
    query_param_problem,
    sample_fetch,
)
from hub.services.errors import ConfigError
from mappings.models import DataModel
from mappings.schema import (
    FIELD_TYPES,
    FORMAT_WORDS,
    FORMATS,
    ApiOperation,
    FieldSpec,
    OperationImport,
    SchemaError,
    fields_from_openapi,
    fields_from_openapi_operation,
    infer_fields,
    openapi_operations,
    openapi_schema_names,
    record_names,
    required_on_create,
)

TYPE_LABELS = {
    "string": "Text",
    "integer": "Whole number",
    "number": "Number",
    "boolean": "True / false",
    "date": "Date",
    "datetime": "Date and time",
    "object": "Group of fields",
    "array": "List",
}
TYPE_CHOICES = [(kind, TYPE_LABELS.get(kind, kind)) for kind in FIELD_TYPES]
FORMAT_CHOICES = [("", "Any way")] + [(kind, FORMAT_WORDS[kind].capitalize()) for kind in FORMATS]
MAX_DOCUMENT_BYTES = LIMITS.openapi_bytes
SCHEMA_CHOICE = "schema:"  # an operation choice that is a schema alone: "schema:Order"
WRITE_ORDER = {"POST": 0, "PUT": 1, "PATCH": 2}


def sentence(problem: object) -> str:
    """A message from the engine ("the path is empty") as a sentence on a form ("The path is empty.")."""
    text = str(problem).strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else f"{text}."


def json_form_error(exc: strictjson.JSONInputError) -> forms.ValidationError:
    return forms.ValidationError(f"This is not valid JSON: {exc.located}", code="invalid_json")


def parse_json_object(text: str, what: str = "record") -> dict:
    """A JSON object from text typed by a person; raises forms.ValidationError saying where it breaks."""
    if not text.strip():
        raise forms.ValidationError(f'Paste a {what} in JSON, e.g. {{"id": 1, "email": "ann@example.com"}}')
    try:
        value = strictjson.loads(text)
    except strictjson.JSONInputError as exc:
        raise json_form_error(exc) from None
    if isinstance(value, list):
        raise forms.ValidationError(f"Paste one {what}: a JSON object in {{ }}, not a list [ ].")
    if not isinstance(value, dict):
        raise forms.ValidationError(f"Paste one {what}: a JSON object in {{ }}.")
    return value


def parse_document(text: str) -> dict:
    """An OpenAPI document from JSON or YAML text; raises forms.ValidationError saying where it breaks."""
    if not text.strip():
        raise forms.ValidationError("Upload an OpenAPI document or paste it below.")
    if len(text) > MAX_DOCUMENT_BYTES:
        raise forms.ValidationError(
            f"This document is longer than {MAX_DOCUMENT_BYTES // MB} MB; is it really one OpenAPI document?"
        )
    if text.lstrip().startswith(("{", "[")):
        try:
            document = strictjson.loads(text)
        except strictjson.JSONInputError as exc:
            raise json_form_error(exc) from None
    else:
        try:
            document = strictyaml.loads(text)
        except strictyaml.YAMLInputError as exc:
            raise forms.ValidationError(f"This document cannot be read: {exc.located}.") from None
        except yaml.YAMLError as exc:
            raise forms.ValidationError(f"This is not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(document, dict):
        raise forms.ValidationError(
            "This is not an OpenAPI document: it should be an object with components."
        )
    return document


def _read_upload(upload) -> tuple[str, str]:
    """(text, problem) of an uploaded document."""
    if upload.size > MAX_DOCUMENT_BYTES:
        return (
            "",
            f"The file is larger than {MAX_DOCUMENT_BYTES // MB} MB; is it really one OpenAPI document?",
        )
    try:
        return upload.read().decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        return "", "The file is not text (UTF-8); upload the .json or .yaml file."


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return problem
    return f"line {mark.line + 1} column {mark.column + 1}: {problem}"


class SourceForm(forms.Form):
    """Where the fields of a new data model come from."""

    FETCH, SAMPLE, OPENAPI = "fetch", "sample", "openapi"

    source = forms.ChoiceField(
        choices=[
            (FETCH, "Fetch a record from the system"),
            (SAMPLE, "Paste a sample record"),
            (OPENAPI, "Import an OpenAPI document"),
        ],
        widget=forms.RadioSelect,
        initial=FETCH,
        label="Start from",
    )
    resource = forms.CharField(
        required=False,
        max_length=300,
        label="Where the records are in the system's API",
        widget=forms.TextInput(attrs={"placeholder": "e.g. /contacts", "spellcheck": "false"}),
        help_text="The hub asks the system for one record there, with the credentials it keeps for it.",
    )
    sample = forms.CharField(
        required=False,
        label="Sample record (JSON)",
        widget=forms.Textarea(
            attrs={
                "rows": 12,
                "spellcheck": "false",
                "placeholder": '{\n  "id": "deal_1",\n  "amount": 12.5,\n  "customer": {"email": "ann@example.com"}\n}',
            }
        ),
        help_text="One record as the system sends it, e.g. from its API documentation or a webhook.",
    )
    openapi_file = forms.FileField(
        required=False,
        label="OpenAPI document (JSON or YAML file)",
        widget=forms.ClearableFileInput(
            attrs={"accept": ".json,.yaml,.yml,application/json,application/yaml"}
        ),
    )
    openapi_text = forms.CharField(
        required=False,
        label="…or paste the document",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
    )
    openapi_path = forms.CharField(
        required=False,
        max_length=300,
        label="…or let the hub fetch it from the system",
        widget=forms.TextInput(attrs={"placeholder": "e.g. /openapi.json", "spellcheck": "false"}),
        help_text="With no file and nothing pasted, the hub asks the system for its API description "
        "here, or, left empty, at the usual places (/openapi.json, /swagger.json…).",
    )
    # Text with a drop-down: the choices come from the document, and a name it lacks gets a precise
    # message from clean() instead of Django's generic "select a valid choice".
    operation = forms.CharField(
        required=False,
        label="What this data model is for",
        widget=forms.Select(),
        help_text="The call the hub makes to the system, e.g. POST /contacts to create a contact: its "
        "request sets the fields, and its answer where the new record's id is.",
    )
    # A schema alone (the older way, still offered in the same drop-down as "schema:<name>").
    schema_name = forms.CharField(required=False, label="Schema", widget=forms.HiddenInput())

    def __init__(self, *args: Any, system: System | None = None, **kwargs: Any) -> None:
        """`system` is the one chosen on the page: where a record is fetched from."""
        super().__init__(*args, **kwargs)
        self.system = system
        self.schema_names: list[str] = []
        self.operations: list[ApiOperation] = []
        self.operation_read: OperationImport | None = None
        self.document: dict | None = None
        self.fields_read: list[FieldSpec] | None = None
        self.record: dict | None = None
        self.upload_problem = ""
        if self.is_bound:
            self.data = self.data.copy()
            upload = self.files.get("openapi_file")
            if upload:
                # A file input empties on every round trip: keep the document as text on the page.
                self.data["openapi_text"], self.upload_problem = _read_upload(upload)
        text = self.data.get("openapi_text") if self.is_bound else self.initial.get("openapi_text")
        if text:  # offer the operations of a document read earlier, so the choice survives a round trip
            try:
                self._list(parse_document(text))
            except (forms.ValidationError, SchemaError):
                pass
        self._offer_schemas()

    def _list(self, document: dict) -> None:
        """The document's operations (writes first: a target is written to) and schemas."""
        self.operations = sorted(openapi_operations(document), key=lambda op: WRITE_ORDER.get(op.method, 9))
        try:
            self.schema_names = openapi_schema_names(document)
        except SchemaError:
            if not self.operations:
                raise
            self.schema_names = []

    def _offer_schemas(self) -> None:
        # Picking an operation reads its fields at once (the form posts itself back with HTMX).
        self.fields["operation"].widget.attrs.update(
            {
                "hx-post": reverse("mappings-model-add"),
                "hx-trigger": "change",
                "hx-vals": '{"action": "read"}',
                "hx-target": "#model-form",
                "hx-swap": "outerHTML",
                "hx-encoding": "multipart/form-data",
            }
        )
        choices: list = [("", "Choose an operation…")]
        if self.operations:
            choices.append(("Operations", [(op.key, op.label) for op in self.operations]))
        if self.schema_names:
            schemas = [(f"{SCHEMA_CHOICE}{n}", n) for n in self.schema_names]
            choices.append(("Or a schema alone (no request checks)", schemas))
        self.fields["operation"].widget.choices = choices

    def clean_openapi_file(self) -> None:
        if self.upload_problem:
            raise forms.ValidationError(self.upload_problem)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("source") == self.OPENAPI and not self.upload_problem:
            self._read_openapi(data)
        elif data.get("source") == self.SAMPLE:
            self._read_sample(data)
        elif data.get("source") == self.FETCH:
            self._fetch_sample(data)
        return data

    def _fetch_sample(self, data: dict) -> None:
        if self.system is None:
            self.add_error("resource", "Choose the system above first: the record is fetched from it.")
            return
        try:
            self.record = sample_fetch(system=self.system, resource=data.get("resource", ""))
        except ConfigError as exc:
            self.add_error("resource", sentence(exc))
            return
        data["resource"] = "/" + data["resource"].strip().lstrip("/")
        # Kept on the page as the sample, so saving needs no second call to the system.
        self.data["sample"] = json.dumps(self.record, indent=2, ensure_ascii=False)
        self.fields_read = self._fields_of(self.record)
        if not self.fields_read:
            self.add_error("resource", "The record the system gave has no fields; try another path.")

    def _read_sample(self, data: dict) -> None:
        try:
            self.record = parse_json_object(data.get("sample", ""), "sample record")
        except forms.ValidationError as exc:
            self.add_error("sample", exc)
            return
        self.fields_read = self._fields_of(self.record)
        if not self.fields_read:
            self.add_error("sample", "This record has no fields; paste a record with some values.")

    def _fields_of(self, record: dict) -> list[FieldSpec]:
        """A sample's fields, required where the record had a value, except those the system fills
        in itself on create (its id, its timestamps)."""
        words = (self.data.get(key, "") for key in ("name", "resource_path", "resource"))
        return required_on_create(infer_fields(record), record_names=record_names(*words))

    def _read_openapi(self, data: dict) -> None:
        text = self.data.get("openapi_text", "")
        if not text.strip() and not self.files.get("openapi_file") and self.system is not None:
            try:
                text, found_at = api_description_fetch(system=self.system, path=data.get("openapi_path", ""))
            except ConfigError as exc:
                self.add_error("openapi_path", sentence(exc))
                return
            # Kept on the page as if pasted, so choosing a schema needs no second call.
            self.data["openapi_text"], self.data["openapi_path"] = text, found_at
        where = "openapi_file" if self.files.get("openapi_file") else "openapi_text"
        try:
            document = parse_document(text)
            self._list(document)
        except forms.ValidationError as exc:
            self.add_error(where, exc)
            return
        except SchemaError as exc:
            self.add_error(where, sentence(exc))
            return
        self.document = document
        self._offer_schemas()
        choice = self.data.get("operation", "") or ""
        name = choice.removeprefix(SCHEMA_CHOICE) if choice.startswith(SCHEMA_CHOICE) else ""
        name = name or (self.data.get("schema_name", "") if not choice else "")
        if choice and not name:
            self._read_operation(document, choice, data)
            return
        if not name and not self.operations and len(self.schema_names) == 1:
            name = self.schema_names[0]
        if not name:
            self.add_error(
                "operation",
                "Choose what this data model is for: the operation the hub calls, e.g. "
                + (self.operations[0].label if self.operations else "POST /contacts")
                + ".",
            )
            return
        if name not in self.schema_names:
            available = ", ".join(self.schema_names)
            self.add_error("operation", f'The document has no schema "{name}" (it has: {available}).')
            return
        data["schema_name"] = self.data["schema_name"] = name
        data["operation"] = self.data["operation"] = f"{SCHEMA_CHOICE}{name}"
        try:
            self.fields_read = fields_from_openapi(document, name)
        except SchemaError as exc:
            self.add_error("operation", sentence(exc))
            return
        if not self.fields_read:
            self.add_error("operation", f'The schema "{name}" has no properties; choose another one.')

    def _read_operation(self, document: dict, key: str, data: dict) -> None:
        if key not in {op.key for op in self.operations}:
            self.add_error("operation", f'The document has no operation "{key}"; choose one from the list.')
            return
        try:
            self.operation_read = fields_from_openapi_operation(document, key)
        except SchemaError as exc:
            self.add_error("operation", sentence(exc))
            return
        data["operation"] = key
        self.fields_read = self.operation_read.fields


def resource_path_for(system: System | None, read: OperationImport) -> str:
    """Where an operation's records are, on the system's base URL: the operation's path without
    its trailing {id}, after the document's server path unless the base URL ends with it already."""
    path = re.sub(r"(/\{[^}]*\})+/?$", "", read.operation.path) or "/"
    base = urlsplit(system.base_url).path.rstrip("/") if system is not None else ""
    if read.server_path and not base.endswith(read.server_path):
        path = read.server_path + path
    return path


class DetailsForm(forms.Form):
    """The settings of a data model (shared by the create page and the detail page's edit form)."""

    name = forms.CharField(
        max_length=100, help_text="What the system calls these records, e.g. Deal or Customer."
    )
    resource_path = forms.CharField(
        max_length=300,
        required=False,
        label="Resource path",
        help_text="Where these records live in the system's API, e.g. /deals.",
    )
    id_path = forms.CharField(
        max_length=200,
        initial="id",
        label="ID field",
        help_text="The field that identifies a record (for a create, where the system's answer keeps the new "
        "record's id).",
    )
    cursor_field = forms.CharField(
        max_length=200,
        required=False,
        label="Cursor field",
        help_text="For scheduled flows: a field that grows when a record changes, e.g. updated_at.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, system: System | None = None, instance: DataModel | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.system = system
        self.instance = instance

    def clean_resource_path(self) -> str:
        value = self.cleaned_data["resource_path"].strip()
        if problem := relative_path_problem(value):
            raise forms.ValidationError(problem)
        if value and not value.startswith("/"):
            value = f"/{value}"
        return value

    def clean_id_path(self) -> str:
        return _path_field(self.cleaned_data["id_path"])

    def clean_cursor_field(self) -> str:
        value = self.cleaned_data["cursor_field"].strip()
        return _path_field(value) if value else ""

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        system = self.system or (self.instance.system if self.instance else None)
        if system is not None:
            clash = DataModel.objects.filter(system=system, name__iexact=name)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise forms.ValidationError(f'{system.name} already has a data model called "{name}".')
        return name

    def check_paths_against(self, paths: set[str], *, id_answered: bool = False) -> None:
        """The id and cursor fields must be among the model's fields; not the id when it is where
        the system's answer keeps it (`id_answered`): a create's body does not have one."""
        for name in ("cursor_field",) if id_answered else ("id_path", "cursor_field"):
            value = self.cleaned_data.get(name)
            if value and value not in paths:
                self.add_error(name, f'"{value}" is not one of the fields of this data model.')

    def changes(self) -> dict:
        return {key: self.cleaned_data[key] for key in EDITABLE if key in self.cleaned_data}


def _path_field(value: str) -> str:
    value = value.strip()
    try:
        compile_path(value)
    except PathError as exc:
        raise forms.ValidationError(sentence(exc)) from None
    return value


class LookupForm(forms.Form):
    """The lookup by external id: which field holds our id for a record, the query that searches
    by it (proposed by the system's connector), and whether the system creates or replaces by it."""

    # Text with a drop-down, so a field the model lacks gets a precise message (not "invalid choice").
    lookup_field = forms.CharField(
        required=False,
        label="Field that holds our id for each record",
        widget=forms.Select(),
        help_text="The mapping fills it with the source record's id (or the event key), e.g. external_id.",
    )
    lookup_param = forms.CharField(
        required=False,
        max_length=200,
        label="Query parameter that searches by it",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
        help_text="Leave empty to use the proposal shown; change it if the system's API documentation "
        "names another search parameter.",
    )
    create_by_key = forms.BooleanField(
        required=False,
        label="The system creates or replaces a record by this key (PUT)",
        help_text="Tick only if the API documentation says that writing to the record's own address "
        "with our id creates it, or replaces it when it is there.",
    )

    def __init__(self, *args: Any, model: DataModel, fields: list | None = None, **kwargs: Any) -> None:
        """`fields` are the model's fields when the caller has them already (saves a query)."""
        if not args and "data" not in kwargs:
            kwargs.setdefault("initial", {key: getattr(model, key) for key in self.base_fields})
        super().__init__(*args, **kwargs)
        self.model = model
        self.paths = (
            {f.path: f.type for f in fields}
            if fields is not None
            else dict(model.fields.values_list("path", "type"))
        )
        suitable = [
            path for path, kind in self.paths.items() if "[]" not in path and kind not in UNSUITABLE_TYPES
        ]
        # Fields named like an external id first: the likely choice.
        suitable.sort(key=lambda path: ("extern" not in path.lower() and "ref" not in path.lower(), 0))
        self.fields["lookup_field"].widget.choices = [
            ("", "None (not set up)"),
            *((path, path) for path in suitable),
        ]
        query = self.query()
        if query.proposed:
            self.fields["lookup_param"].widget.attrs["placeholder"] = query.proposed

    def chosen(self, name: str) -> str:
        value = self.data.get(name) if self.is_bound else self.initial.get(name)
        return str(value or "").strip()

    def query(self):
        """The requests the lookup as chosen on the form would make."""
        field = self.chosen("lookup_field")
        param = self.chosen("lookup_param")
        return lookup_query(
            self.model,
            lookup_field=field if field in self.paths else "",
            lookup_param="" if query_param_problem(param) else param,
        )

    def clean_lookup_field(self) -> str:
        value = self.cleaned_data["lookup_field"].strip()
        if not value:
            return ""
        if value not in self.paths:
            raise forms.ValidationError(
                f'"{value}" is not one of the fields of {self.model.name}; choose one from the list.'
            )
        if "[]" in value:
            raise forms.ValidationError(f'"{value}" is inside a list, so it cannot hold one external id.')
        if self.paths[value] in UNSUITABLE_TYPES:
            raise forms.ValidationError(
                f'"{value}" holds {UNSUITABLE_TYPES[self.paths[value]]}, not one value; choose a text or '
                "number field."
            )
        return value

    def clean_lookup_param(self) -> str:
        value = self.cleaned_data["lookup_param"].strip()
        problem = query_param_problem(value)
        if problem:
            raise forms.ValidationError(sentence(problem))
        return value

    def clean(self) -> dict:
        data = super().clean()
        if "lookup_field" in self.errors or data.get("lookup_field"):
            return data
        if data.get("create_by_key"):
            self.add_error("lookup_field", "Choose the field that holds the key: the PUT needs it.")
        elif data.get("lookup_param"):
            self.add_error("lookup_field", "Choose the field this query parameter searches by.")
        return data


class SystemChoiceForm(forms.Form):
    system = forms.ModelChoiceField(
        queryset=System.objects.order_by("name"), empty_label="Choose a system…", label="System"
    )


class FieldRowForm(forms.Form):
    """One row of the editable field table."""

    path = forms.CharField(max_length=300, widget=forms.TextInput(attrs={"spellcheck": "false"}))
    type = forms.ChoiceField(choices=TYPE_CHOICES)
    required = forms.BooleanField(required=False)
    description = forms.CharField(max_length=300, required=False)

    def clean_path(self) -> str:
        return _path_field(self.cleaned_data["path"])

    def spec(self) -> FieldSpec:
        data = self.cleaned_data
        return FieldSpec(data["path"], data["type"], data["required"], data.get("description", ""))


class BaseFieldRows(forms.BaseFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return
        seen: set[str] = set()
        for form in self.forms:
            path = form.cleaned_data.get("path")
            if path in seen:
                form.add_error("path", f'"{path}" is listed twice.')
            seen.add(path)
        if not seen:
            raise forms.ValidationError(
                "A data model needs at least one field: read them from a sample first."
            )

    def specs(self) -> list[FieldSpec]:
        return [form.spec() for form in self.forms]

    def raw_rows(self) -> list[dict]:
        """The rows as typed, valid or not, to show them again."""
        return [
            {
                "path": form["path"].value() or "",
                "type": form["type"].value() or "string",
                "required": bool(form["required"].value()),
                "description": form["description"].value() or "",
            }
            for form in self.forms
        ]


FieldRows = forms.formset_factory(
    FieldRowForm, formset=BaseFieldRows, extra=0, max_num=1000, absolute_max=1000
)


def rows_from_specs(specs: list[FieldSpec]) -> list[dict]:
    return [
        {"path": spec.path, "type": spec.type, "required": spec.required, "description": spec.description}
        for spec in specs
    ]


class FieldAddForm(FieldRowForm):
    pass


class SampleForm(forms.Form):
    sample = forms.CharField(
        label="Sample record (JSON)", widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"})
    )
    add_new_fields = forms.BooleanField(
        required=False, initial=True, label="Add the fields this record has that the model does not"
    )

    def clean_sample(self) -> dict:
        return parse_json_object(self.cleaned_data["sample"], "sample record")
