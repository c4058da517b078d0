"""The visual field mapper: the page, its live preview and save endpoints, and the version history.

The page hands the browser everything it needs as JSON (fields, rules, the transform catalogue);
static/hub/mapper.js keeps the rules array as its state and posts it back as JSON. The preview
changes nothing, so every reader may run it; saving and restoring are for admins.
"""

import uuid
from typing import Any

from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.dateformat import format as date_format
from django.utils.timezone import localtime
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from common import strictjson
from common.limits import LIMITS, MB
from common.paths import PathError, get_path
from hub.access import admins_only, readers
from hub.models import Event
from hub.pipeline.attempt import contract_verdict
from hub.roles import ADMIN, has_role
from hub.services.errors import ConfigError
from hub.services.mappings import MappingVersionConflict, mapping_version_restore, mapping_version_save
from hub.ui.forms.datamodels import TYPE_LABELS
from mappings.engine import RuleError, describe_rule, diff_rules, preview_mapping, validate_rules
from mappings.models import DataModel, Mapping, MappingVersion
from mappings.suggest import mapping_suggestions
from mappings.transforms import catalogue

RECENT_EVENTS = 20
MAX_REQUEST_BYTES = LIMITS.mapper_request_bytes


class _Encoder(DjangoJSONEncoder):
    """Whatever a transform produced must reach the page; never fail the preview on an odd type."""

    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def _mapping_or_404(pk: int) -> Mapping:
    return get_object_or_404(
        Mapping.objects.select_related("source_model__system", "target_model__system", "current_version"),
        pk=pk,
    )


def _fields_json(model: DataModel) -> list[dict]:
    return [
        {
            "path": field.path,
            "type": field.type,
            "type_label": TYPE_LABELS.get(field.type, field.type),
            "required": field.required,
            "description": field.description,
            "unit": field.unit,
        }
        for field in model.fields.all()
    ]


def _suggestions_json(source: DataModel, target: DataModel) -> list[dict]:
    suggestions = mapping_suggestions(
        sources=source.field_specs(),
        targets=target.field_specs(),
        source_id_path=source.id_path,
        target_id_path=target.id_path,
        source_names=(source.name, source.system.name),
    )
    return [suggestion.as_json() for suggestion in suggestions]


@readers
def mapper(request: HttpRequest, pk: int) -> HttpResponse:
    mapping = _mapping_or_404(pk)
    source, target = mapping.source_model, mapping.target_model
    prefetch_related_objects([source, target], "fields")  # read for the columns and the suggestions
    events = Event.objects.for_system(source.system).only("id", "event_type", "received_at")[:RECENT_EVENTS]
    version = mapping.current_version
    can_edit = has_role(request.user, [ADMIN])
    config = {
        "rules": mapping.rules,
        "version": version.number if version else 0,
        "source": {
            "name": str(source),
            "fields": _fields_json(source),
            "has_sample": source.sample is not None,
        },
        "target": {"name": str(target), "fields": _fields_json(target)},
        "transforms": catalogue(),
        "suggestions": _suggestions_json(source, target) if can_edit else [],
        "events": [
            {
                "id": str(event.pk),
                "label": f"{event.event_type} · {date_format(localtime(event.received_at), 'j M, H:i')}",
            }
            for event in events
        ],
        "can_edit": can_edit,
        "urls": {
            "preview": reverse("mappings-preview", args=[mapping.pk]),
            "save": reverse("mappings-save", args=[mapping.pk]) if can_edit else None,
        },
    }
    flows = list(mapping.flows.all())
    context = {"mapping": mapping, "version": version, "config": config, "flows": flows, "can_edit": can_edit}
    return render(request, "mappings/mapper.html", context)


# --------------------------------------------------------------------------------------------------
# Preview and save: JSON in, JSON out
# --------------------------------------------------------------------------------------------------


def _json_body(request: HttpRequest) -> tuple[dict | None, JsonResponse | None]:
    if len(request.body) > MAX_REQUEST_BYTES:
        return None, JsonResponse(
            {"message": f"This request is larger than {MAX_REQUEST_BYTES // MB} MB; try a smaller record."},
            status=413,
        )
    try:
        body = strictjson.loads(request.body or b"{}")
    except strictjson.JSONInputError as exc:
        return None, JsonResponse(
            {"message": f'The request must be JSON: {{"rules": [...]}} ({exc.located}).'}, status=400
        )
    if not isinstance(body, dict):
        return None, JsonResponse(
            {"message": 'The request must be a JSON object: {"rules": [...]}.'}, status=400
        )
    rules = body.get("rules")
    if isinstance(rules, list) and len(rules) > LIMITS.mapping_rules:
        message = f"This mapping has {len(rules):,} rules; the limit is {LIMITS.mapping_rules:,}."
        return None, JsonResponse({"message": message}, status=400)
    return body, None


def _error_json(error: RuleError) -> dict:
    """An engine error, with the problem alone as well, since the page shows it beside its rule."""
    prefix = f"Rule {error.index + 1} ({error.target}): " if error.target else f"Rule {error.index + 1}: "
    problem = error.message.removeprefix(prefix) if error.index >= 0 else error.message
    return {"index": error.index, "target": error.target, "message": error.message, "problem": problem}


def _preview_record(mapping: Mapping, body: dict) -> tuple[Any, str]:
    """(record, problem): the record the admin chose to try the mapping on."""
    source = mapping.source_model
    choice = body.get("record_source", "sample")
    if choice == "event":
        try:
            event_id = uuid.UUID(str(body.get("event_id")))
        except ValueError:
            return None, "Choose an event from the list."
        event = Event.objects.select_related("system").filter(system_id=source.system_id, pk=event_id).first()
        if event is None:
            return None, f"That event is not one of {source.system.name}'s events (it may have been removed)."
        return event.record(), ""
    if choice == "paste":
        text = body.get("record_text")
        if not isinstance(text, str) or not text.strip():
            return None, 'Paste a record in JSON, e.g. {"id": 1, "email": "ann@example.com"}.'
        try:
            return strictjson.loads(text), ""
        except strictjson.JSONInputError as exc:
            return None, f"This is not valid JSON: {exc.located}"
    if source.sample is None:
        return None, f"{source.name} has no sample record: pick an event or paste a record."
    return source.sample, ""


def _contract_json(mapping: Mapping, result, rules: Any) -> dict:
    """The verdict the checks before sending would give this record: the same function as a
    delivery's. A rule that failed already says so beside it, and is not blamed twice."""
    failed = {error.index for error in result.errors}
    target = mapping.target_model
    violations = contract_verdict(
        model=target, mapped=result.output, rules=rules if isinstance(rules, list) else []
    )
    return {
        "against": target.system.name,
        "violations": [
            {
                "index": -1 if v.rule is None else v.rule,
                "field": v.field,
                "problem": v.problem,
                "message": v.message,
            }
            for v in violations
            if v.rule is None or v.rule not in failed
        ],
    }


def _source_values(mapping: Mapping, record: Any) -> dict[str, Any]:
    values = {}
    for path in mapping.source_model.fields.values_list("path", flat=True):
        try:
            values[path] = get_path(record, path)
        except PathError:
            continue
    return values


@readers
@require_POST
def preview(request: HttpRequest, pk: int) -> JsonResponse:
    mapping = _mapping_or_404(pk)
    body, problem = _json_body(request)
    if problem:
        return problem
    record, record_problem = _preview_record(mapping, body)
    if record_problem:
        return JsonResponse({"record_error": record_problem})
    rules = body.get("rules", [])
    result = preview_mapping(rules, record)
    answer = {
        "output": result.output,
        "values": result.values,
        "errors": [_error_json(error) for error in result.errors],
        "record": record,
        "source_values": _source_values(mapping, record),
        "contract": _contract_json(mapping, result, rules),
    }
    # Rules may copy one large value many times: measured before it is written out, not after.
    if strictjson.size_over(answer, LIMITS.preview_answer_bytes):
        message = (
            f"The preview would be larger than {LIMITS.preview_answer_bytes // MB} MB, too large to show: "
            "try it on a smaller record, or with fewer rules copying large values."
        )
        return JsonResponse({"message": message}, status=422)
    return JsonResponse(answer, encoder=_Encoder)


def _refusal(rules: Any) -> JsonResponse | None:
    """Why these rules cannot be saved, answered with each problem beside its rule; None if they can."""
    errors = validate_rules(rules)
    if not errors:
        return None
    general = [error.message for error in errors if error.index < 0]
    message = (
        f"Not saved: {' '.join(general)}"
        if general
        else "Not saved: fix the problems marked beside the rules, then save again."
    )
    return JsonResponse({"message": message, "errors": [_error_json(error) for error in errors]}, status=400)


def _unchanged(mapping: Mapping, rules: Any, expected: int | None) -> bool:
    """The rules are those of the version the editor started from, so there is nothing to save.

    When another version was saved meanwhile, the service answers with the conflict instead.
    """
    current = mapping.current_version
    return current is not None and expected in (None, current.number) and not diff_rules(current.rules, rules)


@admins_only
@require_POST
def save(request: HttpRequest, pk: int) -> JsonResponse:
    mapping = _mapping_or_404(pk)
    body, problem = _json_body(request)
    if problem:
        return problem
    rules = body.get("rules")
    refusal = _refusal(rules)
    if refusal:
        return refusal
    base = body.get("base_version")
    expected = base if isinstance(base, int) else None
    if _unchanged(mapping, rules, expected):
        number = mapping.current_version.number
        return JsonResponse(
            {"saved": False, "version": number, "message": f"Nothing has changed since version {number}."}
        )
    comment = body.get("comment") if isinstance(body.get("comment"), str) else ""
    try:
        version = mapping_version_save(
            mapping=mapping,
            rules=rules,
            actor=request.user,
            comment=comment.strip()[:300],
            expected_version=expected,
        )
    except MappingVersionConflict as exc:
        message = f"Not saved: {exc}. Open the history to see their change, then reload this page."
        return JsonResponse({"message": message, "version": exc.number}, status=409)
    except ConfigError as exc:
        return JsonResponse({"message": f"Not saved: {exc}"}, status=400)
    return JsonResponse(
        {
            "saved": True,
            "version": version.number,
            "message": f"Saved as version {version.number}.",
            "history_url": reverse("mappings-history", args=[mapping.pk]),
        }
    )


# --------------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------------

CHANGE_WORDS = {"added": "Added", "removed": "Removed", "changed": "Changed"}
CHANGE_BADGES = {"added": "ok", "removed": "bad", "changed": "warn"}


def _change_rows(version: MappingVersion) -> list[dict]:
    return [
        {
            "target": change.get("target", ""),
            "change": CHANGE_WORDS.get(change.get("change"), change.get("change", "")),
            "badge": CHANGE_BADGES.get(change.get("change"), "info"),
            "before": describe_rule(change["before"]) if change.get("before") else "",
            "after": describe_rule(change["after"]) if change.get("after") else "",
        }
        for change in version.diff or ()
        if isinstance(change, dict)
    ]


@readers
def history(request: HttpRequest, pk: int) -> HttpResponse:
    mapping = _mapping_or_404(pk)
    versions = mapping.versions.select_related("author").order_by("-number")
    rows = [{"version": version, "changes": _change_rows(version)} for version in versions]
    context = {
        "mapping": mapping,
        "rows": rows,
        "current": mapping.current_version_id,
        "can_edit": has_role(request.user, [ADMIN]),
    }
    return render(request, "mappings/history.html", context)


@admins_only
@require_POST
def restore(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    mapping = _mapping_or_404(pk)
    version = get_object_or_404(MappingVersion, mapping=mapping, number=number)
    if version.pk == mapping.current_version_id:
        messages.info(request, f"Version {number} is already the current version.")
    else:
        try:
            restored = mapping_version_restore(mapping=mapping, version=version, actor=request.user)
        except ConfigError as exc:
            messages.error(request, f"Version {number} cannot be restored: {exc}")
        else:
            messages.success(request, f"Restored version {number}: it is now version {restored.number}.")
    url = reverse("mappings-history", args=[mapping.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
