"""Data model pages: the list by system, creating a model from a sample or an OpenAPI document, and
the detail page where admins edit fields inline."""

import json
from dataclasses import replace
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.db.models import Count, Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from common.limits import row_id
from common.text import form_text
from connectors.models import System
from hub.access import admins_only, readers
from hub.models import Flow
from hub.services.datamodels import (
    api_description_fetch,
    data_model_api_refresh,
    data_model_create,
    data_model_delete,
    data_model_sample_set,
    data_model_update,
    data_model_users,
    field_add,
    field_remove,
    field_update,
    lookup_query,
    lookup_unfilled,
    sample_fetch,
)
from hub.services.errors import ConfigError
from hub.services.flows import flow_problems
from hub.services.vendor_models import data_model_from_template, offered_models
from hub.ui.feedback import change_made
from hub.ui.forms.datamodels import (
    FORMAT_CHOICES,
    SCHEMA_CHOICE,
    TYPE_CHOICES,
    DetailsForm,
    FieldAddForm,
    FieldRows,
    LookupForm,
    SampleForm,
    SourceForm,
    SystemChoiceForm,
    parse_document,
    resource_path_for,
    rows_from_specs,
    sentence,
)
from mappings.models import DataModel, Field, Mapping
from mappings.schema import FieldSpec, fields_from_openapi_operation, openapi_operations, record_names

CHECKS = ("format", "enum", "min_length", "max_length")

FIELD_ROWS = "fields"
BLANK_ROW = {"path": "", "type": "string", "required": False, "description": ""}


# --------------------------------------------------------------------------------------------------
# The list
# --------------------------------------------------------------------------------------------------


@readers
def model_list(request: HttpRequest) -> HttpResponse:
    models = DataModel.objects.annotate(field_count=Count("fields")).order_by("name")
    systems = System.objects.order_by("name").prefetch_related(Prefetch("data_models", queryset=models))
    mappings = (
        Mapping.objects.select_related("source_model__system", "target_model__system", "current_version")
        .annotate(flow_count=Count("flows"))
        .order_by("name")
    )
    return render(request, "mappings/models.html", {"systems": systems, "mappings": mappings})


# --------------------------------------------------------------------------------------------------
# Creating a data model
# --------------------------------------------------------------------------------------------------


@admins_only
def model_add(request: HttpRequest) -> HttpResponse:
    """One form: read fields from a sample or a document, edit them, then save.

    Every button posts the whole form back (with HTMX when present), so typed values survive
    "read the fields", "add a row" and "remove" without any client-side state.
    """
    if request.method != "POST":
        return _render_add(request, _blank_add_context(request))
    action = request.POST.get("action", "save")
    posted_rows = FieldRows(request.POST, prefix=FIELD_ROWS)
    rows = posted_rows.raw_rows()
    system_form = SystemChoiceForm(request.POST)
    context = {
        "system_form": SystemChoiceForm(initial={"system": request.POST.get("system")}),
        "source_form": SourceForm(initial=request.POST.dict()),
        "details_form": DetailsForm(initial=request.POST.dict()),
        "return_to": _return_to(request),
        "fetched": request.POST.get("source") == SourceForm.FETCH and bool(request.POST.get("sample")),
    }
    if action == "save":
        return _save_new_model(request, context, rows)
    if action == "read":
        system = system_form.cleaned_data["system"] if system_form.is_valid() else None
        source_form = SourceForm(request.POST, request.FILES, system=system)
        context["source_form"] = source_form
        context["fetched"] = False
        if source_form.is_valid():
            rows = rows_from_specs(source_form.fields_read)
            context["details_form"] = DetailsForm(
                initial=_suggested_details(request.POST.dict(), source_form)
            )
            context["just_read"] = True
            context["operation_read"] = source_form.operation_read
            context["fetched"] = source_form.cleaned_data["source"] == SourceForm.FETCH
    elif action == "add_row":
        rows.append(dict(BLANK_ROW))
        context["focus_row"] = len(rows) - 1
    elif action.startswith("remove:"):
        position = action.removeprefix("remove:")
        if (number := row_id(position)) is not None and number < len(rows):
            del rows[number]
    context["rows"] = FieldRows(prefix=FIELD_ROWS, initial=rows)
    return _render_add(request, context)


def _blank_add_context(request: HttpRequest) -> dict:
    system = request.GET.get("system", "")
    chosen = System.objects.filter(pk=system) if row_id(system) is not None else System.objects.all()
    return {
        "offers": [
            (each, models)
            for each in chosen.exclude(vendor_template="").order_by("name")
            if (models := offered_models(each))
        ],
        "system_form": SystemChoiceForm(initial={"system": system if row_id(system) is not None else None}),
        "source_form": SourceForm(),
        "details_form": DetailsForm(initial={"id_path": "id"}),
        "rows": FieldRows(prefix=FIELD_ROWS, initial=[]),
        "return_to": _return_to(request),
    }


@admins_only
@require_POST
def model_from_template(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Use HubSpot's Contact model": the vendor template's model, created in one step."""
    system = get_object_or_404(System, pk=pk)
    name = form_text(request.POST.get("name"), limit=100)
    try:
        model = data_model_from_template(system=system, name=name, actor=request.user)
    except ConfigError as exc:
        messages.error(request, f"The data model was not created: {sentence(exc)}")
        return redirect(reverse("mappings-model-add") + f"?system={system.pk}")
    messages.success(
        request, f"Created the data model {model.name} of {system.name} from its vendor template."
    )
    url = _return_to(request)
    return redirect(_with_new_model(url, model) if url else reverse("mappings-model-detail", args=[model.pk]))


def _return_to(request: HttpRequest) -> str:
    """The page of ours that sent the admin here to create a model (the flow wizard), if any."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    ours = url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure())
    return target if ours and target.startswith("/") else ""


def _with_new_model(url: str, model: DataModel) -> str:
    """`url` with the new model named, so the page that asked for it can choose it."""
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'new_model': model.pk})}"


def _suggested_details(posted: dict, source_form: SourceForm) -> dict:
    """Fill in what the fields just read make obvious; what the admin typed stays if it still fits."""
    details = dict(posted)
    paths = {spec.path for spec in source_form.fields_read or ()}
    if read := source_form.operation_read:
        # The operation says it all: where the records are, and where its answer keeps the id.
        details["name"] = details.get("name") or read.name
        details["resource_path"] = resource_path_for(source_form.system, read)
        details["id_path"] = read.id_path or details.get("id_path") or "id"
        paths.add(details["id_path"])
    if not details.get("name") and source_form.cleaned_data.get("schema_name"):
        details["name"] = source_form.cleaned_data["schema_name"]
    if resource := source_form.cleaned_data.get("resource"):
        if source_form.cleaned_data.get("source") == SourceForm.FETCH:
            details["resource_path"] = resource
            if not details.get("name"):
                details["name"] = " ".join(record_names(resource)).replace("_", " ").title()
    if not details.get("id_path") or details.get("id_path") not in paths:
        details["id_path"] = next(
            (p for p in ("id", "uuid", "key", "code") if p in paths), details.get("id_path")
        )
    if details.get("cursor_field") not in paths:
        details["cursor_field"] = next(
            (p for p in ("updated_at", "modified_at", "updatedAt") if p in paths), ""
        )
    return details


def _save_new_model(request: HttpRequest, context: dict, rows: list[dict]) -> HttpResponse:
    system_form = SystemChoiceForm(request.POST)
    system = system_form.cleaned_data["system"] if system_form.is_valid() else None
    source = request.POST.get("source")
    if source in (SourceForm.SAMPLE, SourceForm.FETCH) and request.POST.get("sample", "").strip():
        # A fetched record was kept on the page as the sample: saving reads it, and asks the
        # system nothing again.
        as_sample = request.POST.copy()
        as_sample["source"] = SourceForm.SAMPLE
        source_form = SourceForm(as_sample, request.FILES)
        source_valid = source_form.is_valid()
        record = source_form.record
        if source_valid and source == SourceForm.FETCH:
            source_form = SourceForm(initial=request.POST.dict())  # shown as fetched, not as pasted
    else:
        # Fields typed by hand or read from a document: the table is all that is needed.
        source_form = SourceForm(initial=request.POST.dict())
        source_valid, record = True, None
    document, operation = _chosen_operation(request.POST)
    details_form = DetailsForm(request.POST, system=system)
    row_forms = FieldRows(request.POST, prefix=FIELD_ROWS)
    context.update(
        system_form=system_form, source_form=source_form, details_form=details_form, rows=row_forms
    )
    valid = all([system_form.is_valid(), source_valid, details_form.is_valid(), row_forms.is_valid()])
    if row_forms.is_valid() and details_form.is_valid():
        details_form.check_paths_against(
            {spec.path for spec in row_forms.specs()}, id_answered=bool(operation)
        )
        valid = valid and details_form.is_valid()
    if not valid:
        context["rows_error"] = next(iter(row_forms.non_form_errors()), "")
        return _render_add(request, context)
    details = details_form.cleaned_data
    try:
        model = data_model_create(
            system=system,
            name=details["name"],
            resource_path=details["resource_path"],
            id_path=details["id_path"],
            cursor_field=details["cursor_field"],
            description=details["description"],
            fields=_with_checks(row_forms.specs(), document, operation),
            sample=record,
            actor=request.user,
            api_document=document,
            api_operation=operation,
        )
    except ConfigError as exc:
        context["form_error"] = sentence(exc)
        return _render_add(request, context)
    messages.success(request, f"Created the data model {model.name} with {len(rows)} fields.")
    url = context["return_to"]
    url = _with_new_model(url, model) if url else reverse("mappings-model-detail", args=[model.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _chosen_operation(posted) -> tuple[dict | None, str]:
    """The API document on the page and the operation chosen in it, when the model is imported
    from one: (document, "POST /contacts"), else (None, "")."""
    operation = posted.get("operation", "")
    if posted.get("source") != SourceForm.OPENAPI or not operation or operation.startswith(SCHEMA_CHOICE):
        return None, ""
    try:
        document = parse_document(posted.get("openapi_text", ""))
    except forms.ValidationError:
        return None, ""
    if operation not in {op.key for op in openapi_operations(document)}:
        return None, ""
    return document, operation


def _with_checks(specs: list[FieldSpec], document: dict | None, operation: str) -> list[FieldSpec]:
    """The fields as the admin left them in the table, with the checks (format, allowed values,
    lengths) the document declares for them: the table does not show those."""
    if document is None:
        return specs
    declared = {spec.path: spec for spec in fields_from_openapi_operation(document, operation).fields}
    return [
        replace(spec, **{key: getattr(declared[spec.path], key) for key in CHECKS})
        if spec.path in declared
        else spec
        for spec in specs
    ]


def _render_add(request: HttpRequest, context: dict) -> HttpResponse:
    context.setdefault("rows", FieldRows(prefix=FIELD_ROWS, initial=[]))
    context["has_systems"] = System.objects.exists()
    # A form with errors is answered 200: it is the page to show, and htmx swaps only 2xx answers.
    template = "mappings/model_add.html#model-form" if request.htmx else "mappings/model_add.html"
    return render(request, template, context)


# --------------------------------------------------------------------------------------------------
# The detail page
# --------------------------------------------------------------------------------------------------


def _model_or_404(pk: int) -> DataModel:
    return get_object_or_404(DataModel.objects.select_related("system"), pk=pk)


def _detail_context(model: DataModel, **extra) -> dict:
    flows, mappings = data_model_users(model)
    context = {
        "model": model,
        "fields": list(model.fields.all()),
        "type_choices": TYPE_CHOICES,
        "format_choices": FORMAT_CHOICES,
        "flows": [
            {"flow": flow, "role": "reads" if flow.source_model_id == model.pk else "writes"}
            for flow in flows
        ],
        "mappings": mappings,
        "sample_json": json.dumps(model.sample, indent=2, ensure_ascii=False)
        if model.sample is not None
        else "",
        "details_form": DetailsForm(
            instance=model,
            initial={key: getattr(model, key) for key in ("name", "resource_path", "id_path", "cursor_field")}
            | {"description": model.description},
        ),
        "add_form": FieldAddForm(prefix="new", initial={"type": "string"}),
        "lookup": lookup_query(model) if model.lookup_field else None,
        "api_title": _document_title(model),
        "lookup_unfilled": lookup_unfilled(model),
    }
    context.setdefault("sample_form", SampleForm(initial={"sample": context["sample_json"]}))
    context.setdefault("lookup_form", LookupForm(model=model, fields=context["fields"]))
    context.update(extra)
    return context


def _document_title(model: DataModel) -> str:
    """The API document's title and version, as the contract card names it ("CRM contacts v3")."""
    info = (model.api_document or {}).get("info") if model.api_operation else None
    if not isinstance(info, dict):
        return ""
    return " ".join(str(info.get(key) or "") for key in ("title", "version")).strip()[:120]


@readers
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    model = _model_or_404(pk)
    if request.htmx and request.GET.get("partial") == "lookup-preview":
        # The lookup form asks what its choice would send, before anything is saved.
        form = LookupForm(request.GET, model=model)
        return render(request, "mappings/_lookup.html#lookup-preview", {"model": model, "lookup_form": form})
    return render(
        request, "mappings/model_detail.html", _detail_context(model, **_asked_by_flow(request, model))
    )


def _asked_by_flow(request: HttpRequest, model: DataModel) -> dict:
    """Opened from a flow that cannot be enabled while this model's fields stay required: the flow,
    and the fields it leaves unmapped, so the page can name them and lead back."""
    pk = row_id(request.GET.get("flow"))
    flow = Flow.objects.filter(pk=pk, target_model=model).first() if pk is not None else None
    if flow is None:
        return {}
    unmapped = [path for problem in flow_problems(flow) for path in getattr(problem, "unmapped", ())]
    return {"asking_flow": flow, "asking_fields": unmapped}


@admins_only
@require_POST
def model_edit(request: HttpRequest, pk: int) -> HttpResponse:
    model = _model_or_404(pk)
    form = DetailsForm(request.POST, instance=model)
    if form.is_valid():
        form.check_paths_against(set(model.fields.values_list("path", flat=True)))
    if form.is_valid():
        try:
            data_model_update(model=model, actor=request.user, **form.changes())
        except ConfigError as exc:
            form.add_error(None, sentence(exc))
        else:
            # The name shows in the page title and heading too: show the whole page again.
            messages.success(request, "Saved the settings.")
            url = reverse("mappings-model-detail", args=[pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return _render_part(
        request, "model-settings", _detail_context(model, details_form=form, settings_open=True)
    )


@admins_only
@require_POST
def model_lookup(request: HttpRequest, pk: int) -> HttpResponse:
    """Declare (or clear) how the hub finds a record it may already have created."""
    model = _model_or_404(pk)
    form = LookupForm(request.POST, model=model)
    if form.is_valid():
        try:
            data_model_update(model=model, actor=request.user, **form.cleaned_data)
        except ConfigError as exc:
            form.add_error(None, sentence(exc))
        else:
            if not request.htmx:
                messages.success(request, "Saved the lookup.")
                return redirect("mappings-model-detail", pk)
            model.refresh_from_db()
            return _render_part(request, "model-lookup", _detail_context(model, lookup_saved=True))
    return _render_part(request, "model-lookup", _detail_context(model, lookup_form=form, lookup_open=True))


@admins_only
@require_POST
def model_api_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    """Read the model's operation again from the system's new API document (pasted, or fetched
    from the system with its stored credentials)."""
    model = _model_or_404(pk)
    text = request.POST.get("openapi_text", "")
    path = form_text(request.POST.get("openapi_path", ""), limit=300).strip()
    extra: dict = {"refresh_path": path}
    try:
        if not text.strip():
            text, _ = api_description_fetch(system=model.system, path=path)
        document = parse_document(text)
        extra["refreshed"] = data_model_api_refresh(model=model, document=document, actor=request.user)
    except forms.ValidationError as exc:
        extra["refresh_error"] = " ".join(exc.messages)
    except ConfigError as exc:
        extra["refresh_error"] = sentence(exc)
    if not request.htmx:
        if "refreshed" in extra:
            messages.success(request, "Updated from the new API document.")
        else:
            messages.error(request, extra["refresh_error"])
        return redirect("mappings-model-detail", pk)
    model.refresh_from_db()
    return _render_part(request, "model-contract", _detail_context(model, **extra))


@admins_only
@require_POST
def model_sample(request: HttpRequest, pk: int) -> HttpResponse:
    """Replace the sample with one pasted, or with one fetched from the system (action "fetch")."""
    model = _model_or_404(pk)
    form = SampleForm(request.POST)
    if request.POST.get("action") == "fetch":
        form = _fetched_sample_form(model, request.POST)
    added: list[Field] = []
    if form.is_valid():
        added = data_model_sample_set(
            model=model,
            sample=form.cleaned_data["sample"],
            actor=request.user,
            add_new_fields=form.cleaned_data["add_new_fields"],
        )
        form = None
    extra = {"sample_saved": form is None, "added_fields": added, "sample_open": form is not None}
    if form is not None:
        extra["sample_form"] = form
    return _render_part(request, "model-body", _detail_context(model, **extra))


def _fetched_sample_form(model: DataModel, posted) -> SampleForm:
    """The sample form filled with a record listed from the model's system, or showing why not."""
    add_new = posted.get("add_new_fields") in ("on", "true", "1")
    try:
        record = sample_fetch(system=model.system, resource=model.resource_path)
    except ConfigError as exc:
        form = SampleForm({"sample": posted.get("sample", ""), "add_new_fields": add_new})
        form.is_valid()
        form.errors.pop("sample", None)  # nothing was pasted: the fetch is what failed
        form.add_error(None, sentence(exc))
        return form
    text = json.dumps(record, indent=2, ensure_ascii=False)
    return SampleForm({"sample": text, "add_new_fields": add_new})


@admins_only
@require_POST
def model_delete(request: HttpRequest, pk: int) -> HttpResponse:
    model = _model_or_404(pk)
    deleted = change_made(
        request,
        lambda: data_model_delete(model=model, actor=request.user),
        success=f"Deleted the data model {model.name}.",
        refused=f"{model.name} cannot be deleted: {{error}}.",
    )
    url = reverse("mappings-models") if deleted else reverse("mappings-model-detail", args=[pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@admins_only
@require_POST
def field_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    model = _model_or_404(pk)
    form = FieldAddForm(request.POST, prefix="new")
    extra: dict = {}
    if form.is_valid():
        try:
            field = field_add(model=model, actor=request.user, **form.cleaned_data)
            extra["changed_field"] = field.pk
            form = None
        except ConfigError as exc:
            form.add_error("path", sentence(exc))
    if form is not None:
        extra.update(add_form=form, add_open=True)
    return _render_part(request, "fields", _detail_context(model, **extra))


@admins_only
@require_POST
def field_update_view(request: HttpRequest, pk: int) -> HttpResponse:
    field = get_object_or_404(Field.objects.select_related("model__system"), pk=pk)
    kind = request.POST.get("type", field.type)
    error = ""
    try:
        field_update(
            field=field,
            actor=request.user,
            type=kind,
            required=request.POST.get("required") in ("on", "true", "1"),
            description=form_text(request.POST.get("description", field.description), limit=300),
            unit=form_text(request.POST.get("unit", field.unit), limit=60),
            **_posted_checks(request.POST, field),
        )
    except ConfigError as exc:
        error = sentence(exc)
        field.refresh_from_db()
    if not request.htmx:
        return redirect("mappings-model-detail", field.model_id)
    context = {
        "field": field,
        "type_choices": TYPE_CHOICES,
        "format_choices": FORMAT_CHOICES,
        "row_saved": not error,
        "row_error": error,
    }
    return render(request, "mappings/model_detail.html#field-row", context)


def _posted_checks(posted, field: Field) -> dict:
    """The checks a field row posted (those it did not post stay as they are): its format, its
    allowed values written with commas, and its shortest and longest length in characters."""
    checks: dict = {}
    if "format" in posted:
        checks["format"] = form_text(posted["format"], limit=20).strip()
    # The allowed values as the row shows them: unchanged text keeps them as they are (true, null or
    # numbers from an API document stay what they are).
    if "enum" in posted and posted["enum"].strip() != ", ".join(str(value) for value in field.enum or ()):
        text = form_text(posted["enum"], limit=20_000)
        values = [value.strip() for value in text.split(",") if value.strip()]
        checks["enum"] = [
            _as_number(value) if field.type in ("integer", "number") else value for value in values
        ]
    for name in ("min_length", "max_length"):
        if name in posted:
            text = posted[name].strip()
            number = row_id(text) if text else None
            if text and number is None:
                raise ConfigError(f"a length is a whole number of characters, 0 or more, not {text[:20]!r}")
            checks[name] = number
    return checks


def _as_number(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


@admins_only
@require_POST
def field_remove_view(request: HttpRequest, pk: int) -> HttpResponse:
    field = get_object_or_404(Field.objects.select_related("model__system"), pk=pk)
    model = field.model
    try:
        field_remove(field=field, actor=request.user)
    except ConfigError as exc:
        if not request.htmx:
            messages.error(request, f'The field "{field.path}" was not removed: {sentence(exc)}')
        return _render_part(request, "fields", _detail_context(model, fields_error=sentence(exc)))
    if not request.htmx:
        messages.success(request, f'Removed the field "{field.path}".')
    return _render_part(request, "fields", _detail_context(model, removed_field=field.path))


def _render_part(request: HttpRequest, partial: str, context: dict) -> HttpResponse:
    """The named region when HTMX asked for it; otherwise back to the whole page."""
    if request.htmx:
        return render(request, f"mappings/model_detail.html#{partial}", context)
    return render(request, "mappings/model_detail.html", context)
