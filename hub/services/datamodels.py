"""Data model changes: each writes its audit entry in the same transaction as the change."""

import re
from dataclasses import dataclass, replace
from typing import Any

from django.db import transaction
from django.db.models import Max, Q

from common.paths import PathError, compile_path
from common.urlpaths import relative_path_problem
from connectors.base import ConnectorError, ErrorClass
from connectors.netpolicy import refusal, refusal_in_words
from connectors.registry import connector_for
from hub.models import Flow
from hub.services.audit import audit_record
from hub.services.errors import ConfigError, values_check
from mappings.models import DataModel, Field, Mapping
from mappings.schema import (
    ENUM_MAX,
    FIELD_TYPES,
    FORMATS,
    FieldSpec,
    SchemaError,
    fields_from_openapi_operation,
    guess_unit,
    infer_fields,
)

KEEP = object  # a length left as it is (None removes it)
LENGTH_MAX = 1_000_000

# How the hub finds a record it may already have created: the field holding our external id, the
# query parameter that searches by it, and whether the system creates or replaces by that key.
LOOKUP = ("lookup_field", "lookup_param", "create_by_key")
# What an admin may change on a data model after creating it; fields have their own services.
EDITABLE = ("name", "resource_path", "id_path", "cursor_field", "description", *LOOKUP)
# A query parameter's name as APIs spell them: external_id, filter[external_id], $filter, q.
QUERY_PARAM = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_.\-\[\]:$~]*")
UNSUITABLE_TYPES = {"object": "a group of fields", "array": "a list"}
PATH_MAX = Field._meta.get_field("path").max_length
LOOKUP_PARAM_MAX = DataModel._meta.get_field("lookup_param").max_length
DESCRIPTION_MAX = Field._meta.get_field("description").max_length
UNIT_MAX = Field._meta.get_field("unit").max_length


def field_problems(fields: list[FieldSpec]) -> list[str]:
    """Why these fields cannot make a data model, in plain words; empty when they can."""
    problems = []
    seen: set[str] = set()
    for spec in fields:
        problems.extend(_spec_problems(spec))
        if spec.path in seen:
            problems.append(f'"{spec.path}" is listed twice')
        seen.add(spec.path)
    if not fields:
        problems.append("a data model needs at least one field")
    return problems


def _spec_problems(spec: FieldSpec) -> list[str]:
    problems = []
    try:
        compile_path(spec.path)
    except PathError as exc:
        problems.append(f"field {spec.path!r}: {exc}")
    if len(spec.path) > PATH_MAX:
        problems.append(f"a field path has at most {PATH_MAX} characters")
    if spec.type not in FIELD_TYPES:
        problems.append(f'"{spec.path}": unknown type "{spec.type}" (use one of {", ".join(FIELD_TYPES)})')
    problems.extend(f'"{spec.path}": {problem}' for problem in check_problems(spec))
    return problems


def check_problems(spec: FieldSpec) -> list[str]:
    """Why a field's checks (format, allowed values, lengths) cannot be kept, in plain words."""
    problems = []
    if spec.format and spec.format not in FORMATS:
        problems.append(f'unknown format "{spec.format}" (use one of {", ".join(FORMATS)})')
    if len(spec.enum) > ENUM_MAX:
        problems.append(f"at most {ENUM_MAX} allowed values")
    low, high = spec.min_length, spec.max_length
    if any(n is not None and (not isinstance(n, int) or not 0 <= n <= LENGTH_MAX) for n in (low, high)):
        problems.append(f"a length is a whole number of characters, from 0 to {LENGTH_MAX:,}")
    elif low is not None and high is not None and low > high:
        problems.append(f"the shortest length ({low}) is more than the longest ({high})")
    return problems


def _field_row(model: DataModel, spec: FieldSpec, position: int, paths: list[str]) -> Field:
    return Field(
        model=model,
        path=spec.path,
        type=spec.type,
        required=spec.required,
        description=spec.description[:DESCRIPTION_MAX],
        unit=spec.unit or guess_unit(spec.path, spec.type, paths),
        format=spec.format,
        enum=list(spec.enum),
        min_length=spec.min_length,
        max_length=spec.max_length,
        position=position,
    )


def query_param_problem(param: str) -> str:
    """Why `param` cannot be a query parameter's name ("" when it can), in plain words."""
    if not param:
        return ""
    if "=" in param or param.startswith("?") or "&" in param:
        return (
            f'write only the name of the query parameter, without "?", "=" or a value: e.g. '
            f"{param.lstrip('?').split('=', 1)[0].split('&', 1)[0] or 'external_id'}"
        )
    if len(param) > LOOKUP_PARAM_MAX:
        return f"a query parameter has at most {LOOKUP_PARAM_MAX} characters"
    if not QUERY_PARAM.fullmatch(param):
        return (
            f'"{param}" is not a query parameter name: use letters, digits and _ - . [ ] $ only, '
            "e.g. external_id or filter[external_id]"
        )
    return ""


def lookup_problems(
    *, fields: dict[str, str], lookup_field: str, lookup_param: str, create_by_key: bool
) -> list[str]:
    """Why this lookup cannot be declared on a model with these fields (path -> type)."""
    problems = []
    if lookup_field:
        if lookup_field not in fields:
            problems.append(f'"{lookup_field}" is not one of the fields of this data model')
        elif "[]" in lookup_field:
            problems.append(f'"{lookup_field}" is inside a list, so it cannot hold one external id')
        elif fields[lookup_field] in UNSUITABLE_TYPES:
            problems.append(
                f'"{lookup_field}" holds {UNSUITABLE_TYPES[fields[lookup_field]]}, not one value, so it '
                "cannot hold the external id"
            )
    elif lookup_param:
        problems.append("a query parameter needs the external-id field it searches: choose that field")
    elif create_by_key:
        problems.append("creating by key needs the field that holds the key: choose the external-id field")
    problem = query_param_problem(lookup_param)
    if problem:
        problems.append(problem)
    return problems


@dataclass(frozen=True)
class LookupQuery:
    """The requests a declared lookup makes, as an admin reads them: "GET /records?external_id=<value>"."""

    param: str  # the query parameter used (the model's own, or the connector's proposal)
    proposed: str  # what the connector proposes for the field
    search: str  # e.g. GET /records?external_id=<value>
    keyed_create: str  # e.g. PUT /records/<value>

    def search_for(self, value: str) -> str:
        return self.search.replace(LOOKUP_PLACEHOLDER, value)


LOOKUP_PLACEHOLDER = "<value>"


def lookup_query(
    model: DataModel, *, lookup_field: str | None = None, lookup_param: str | None = None
) -> LookupQuery:
    """How the hub would search `model` by its external-id field: the model's own settings unless
    others are given (the page previews a choice before it is saved)."""
    field = model.lookup_field if lookup_field is None else lookup_field
    param = model.lookup_param if lookup_param is None else lookup_param
    resource = model.resource_path or "/<resource>"
    proposed, keyed = field, f"PUT {resource.rstrip('/')}/{LOOKUP_PLACEHOLDER}"
    try:  # a system whose settings cannot be read yet still gets the plain REST proposal
        connector = connector_for(model.system)
        proposed = connector.lookup_parameter(field) if field else ""
        keyed_request = getattr(connector, "keyed_create_request", None)
        if keyed_request is not None:
            method, path, _ = keyed_request(resource, LOOKUP_PLACEHOLDER, {})
            keyed = f"{method} {path}" + (
                "" if LOOKUP_PLACEHOLDER in path else f" with id {LOOKUP_PLACEHOLDER}"
            )
    except Exception:  # noqa: BLE001 - a preview never fails the page
        pass
    used = param or proposed
    search = f"GET {resource}?{used}={LOOKUP_PLACEHOLDER}" if used else ""
    return LookupQuery(param=used, proposed=proposed, search=search, keyed_create=keyed)


def lookup_unfilled(model: DataModel) -> list[Mapping]:
    """The mappings that write `model` but leave its external-id field empty: the lookup then has
    nothing to search by."""
    if not model.lookup_field:
        return []
    return [
        mapping
        for mapping in Mapping.objects.filter(target_model=model).select_related("current_version")
        if not any(
            rule.get("target") == model.lookup_field for rule in mapping.rules if isinstance(rule, dict)
        )
    ]


def _field_types(specs: list[FieldSpec]) -> dict[str, str]:
    return {spec.path: spec.type for spec in specs}


def data_model_create(
    *,
    system,
    name: str,
    resource_path: str,
    id_path: str,
    cursor_field: str,
    fields: list[FieldSpec],
    sample: Any,
    actor,
    description: str = "",
    lookup_field: str = "",
    lookup_param: str = "",
    create_by_key: bool = False,
    api_document: dict | None = None,
    api_operation: str = "",
) -> DataModel:
    """A new data model of system with its fields (in the given order), and optionally the lookup
    by external id that lets the hub find a record it may already have created, and the API
    document and operation it came from (requests are then checked against them)."""
    name = name.strip()
    lookup_field, lookup_param = lookup_field.strip(), lookup_param.strip()
    problems = field_problems(fields)
    problems.extend(
        lookup_problems(
            fields=_field_types(fields),
            lookup_field=lookup_field,
            lookup_param=lookup_param,
            create_by_key=create_by_key,
        )
    )
    if not name:
        problems.insert(0, "the data model needs a name")
    if DataModel.objects.filter(system=system, name__iexact=name).exists():
        problems.insert(0, f'{system.name} already has a data model called "{name}"')
    if problems:
        raise ConfigError("; ".join(problems))
    model = DataModel(
        system=system,
        name=name,
        resource_path=resource_path.strip(),
        id_path=id_path.strip() or "id",
        cursor_field=cursor_field.strip(),
        sample=sample,
        description=description,
        lookup_field=lookup_field,
        lookup_param=lookup_param,
        create_by_key=bool(create_by_key),
        api_document=api_document if api_operation else None,
        api_operation=api_operation if api_document else "",
    )
    values_check(model, exclude=("system",))
    paths = [spec.path for spec in fields]
    with transaction.atomic():
        model.save()
        Field.objects.bulk_create(
            _field_row(model, spec, position, paths) for position, spec in enumerate(fields)
        )
        audit_record(
            actor=actor,
            verb="create",
            target=model,
            diff={
                "resource_path": model.resource_path,
                "id_path": model.id_path,
                "cursor_field": model.cursor_field,
                **({key: getattr(model, key) for key in LOOKUP} if model.lookup_field else {}),
                **({"api_operation": model.api_operation} if model.api_operation else {}),
                "fields": [_field_summary(spec) for spec in fields],
            },
        )
    return model


def data_model_update(*, model: DataModel, actor, **changes: Any) -> DataModel:
    """Change a data model's name, resource path, id field, cursor field, description or lookup."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))} here")
    for key in ("lookup_field", "lookup_param"):
        if key in changes:
            changes[key] = (changes[key] or "").strip()
    if "create_by_key" in changes:
        changes["create_by_key"] = bool(changes["create_by_key"])
    if set(changes) & set(LOOKUP):
        wanted = {key: changes.get(key, getattr(model, key)) for key in LOOKUP}
        problems = lookup_problems(fields=dict(model.fields.values_list("path", "type")), **wanted)
        if problems:
            raise ConfigError("; ".join(problems))
    if "name" in changes:
        changes["name"] = changes["name"].strip()
        if not changes["name"]:
            raise ConfigError("the data model needs a name")
        clash = DataModel.objects.filter(system_id=model.system_id, name__iexact=changes["name"])
        if clash.exclude(pk=model.pk).exists():
            raise ConfigError(f'{model.system.name} already has a data model called "{changes["name"]}"')
    diff = {
        key: [getattr(model, key), value] for key, value in changes.items() if getattr(model, key) != value
    }
    if not diff:
        return model
    values_check(
        DataModel(system_id=model.system_id, **{**{key: getattr(model, key) for key in EDITABLE}, **changes}),
        exclude=("system",),
    )
    with transaction.atomic():
        for key, (_, value) in diff.items():
            setattr(model, key, value)
        model.save(update_fields=[*diff, "updated_at"])
        audit_record(actor=actor, verb="update", target=model, diff=diff)
    return model


def data_model_sample_set(
    *, model: DataModel, sample: dict, actor, add_new_fields: bool = False
) -> list[Field]:
    """Replace the model's sample record; optionally add the fields it has that the model lacks.

    Returns the fields added. Existing fields are never changed or removed here: a sample shows
    one record, and an admin's type and required choices outrank a guess.
    """
    if not isinstance(sample, dict):
        raise ConfigError("the sample must be a JSON object")
    with transaction.atomic():
        added: list[Field] = []
        if add_new_fields:
            known = set(model.fields.values_list("path", flat=True))
            position = (model.fields.aggregate(last=Max("position"))["last"] or 0) + 1
            specs = infer_fields(sample)
            paths = [spec.path for spec in specs]
            for spec in specs:
                if spec.path not in known:
                    unit = guess_unit(spec.path, spec.type, paths)
                    added.append(
                        Field(model=model, path=spec.path, type=spec.type, unit=unit, position=position)
                    )
                    position += 1
            Field.objects.bulk_create(added)
        model.sample = sample
        model.save(update_fields=["sample", "updated_at"])
        audit_record(
            actor=actor,
            verb="update_sample",
            target=model,
            diff={"added_fields": [field.path for field in added]},
        )
    return added


def sample_fetch(*, system, resource: str) -> dict:
    """One record of `resource`, listed from `system` through its connector with its stored
    credentials; ConfigError says what went wrong and what to check."""
    resource = resource.strip()
    if problem := relative_path_problem(resource):
        raise ConfigError(problem)
    if not resource:
        raise ConfigError("write where the records live in the system's API, e.g. /contacts")
    resource = "/" + resource.lstrip("/")
    try:
        record = connector_for(system).sample(resource=resource)
    except ConnectorError as exc:
        raise ConfigError(sample_problem(exc, system, resource)) from None
    except ValueError as exc:  # a connector kind or settings the hub cannot use
        raise ConfigError(f"{system.name}'s connector settings cannot be used: {exc}") from None
    if record is None:
        raise ConfigError(
            f"{system.name} has no records at {resource} yet, so there is nothing to read the fields "
            f"from. Create one in {system.name} first, or paste a sample record instead"
        )
    return record


# Where APIs commonly publish their OpenAPI (or Swagger) description, tried in this order.
API_DESCRIPTION_PATHS = ("/openapi.json", "/openapi.yaml", "/swagger.json", "/v3/api-docs", "/api-docs")


def api_description_fetch(*, system, path: str = "") -> tuple[str, str]:
    """The OpenAPI document `system` publishes at `path`, or at the first of the usual places
    that has one, fetched with its stored credentials: (text, where it was found)."""
    path = path.strip()
    if problem := relative_path_problem(path):
        raise ConfigError(problem)
    connector = connector_for(system)
    tried = ["/" + path.lstrip("/")] if path else list(API_DESCRIPTION_PATHS)
    for where in tried:
        try:
            text = connector.document(path=where)
        except NotImplementedError:
            raise ConfigError(f"{system.name}'s kind of API cannot be asked for its description") from None
        except ConnectorError as exc:
            if path or exc.error_class not in (ErrorClass.REJECTED, ErrorClass.AUTH_FAILURE):
                raise ConfigError(sample_problem(exc, system, where)) from None
            continue  # not published there: try the next usual place
        if _looks_like_api_description(text):
            return text, where
        if path:
            raise ConfigError(
                f"what {system.name} publishes at {where} is not an OpenAPI document (it has no "
                '"openapi" or "swagger" version); check the path in its API documentation'
            )
    raise ConfigError(
        f"{system.name} publishes no API description at {', '.join(tried)}. Type where it is, or ask "
        "the vendor for the document and upload it"
    )


def _looks_like_api_description(text: str) -> bool:
    head = text[:2000]
    return any(marker in head for marker in ('"openapi"', '"swagger"', "openapi:", "swagger:"))


def sample_problem(exc: ConnectorError, system, resource: str) -> str:
    """What went wrong when listing a sample record, and what the admin can check."""
    name, kind = system.name, exc.error_class
    if kind == ErrorClass.AUTH_FAILURE:
        return (
            f"{name} refused the hub's credentials{f' (it answered {exc.status})' if exc.status else ''} "
            f"when asked for {resource}. "
            f"Check the credentials on {name}'s page (Edit), then try again"
        )
    if kind == ErrorClass.REJECTED and exc.status in (404, 410):
        return (
            f"{name} has nothing at {resource} (it answered {exc.status}). Check the path in {name}'s "
            "API documentation, e.g. /contacts, and that it is written without the system's address"
        )
    if kind == ErrorClass.MALFORMED_RESPONSE:
        return (
            f"{name}'s answer for {resource} is not a list of records in JSON ({exc.message}). Check the "
            f"path, and on {name}'s page where a list answer keeps its records"
        )
    if kind == ErrorClass.TIMEOUT:
        return (
            f"{name} did not answer within {system.read_timeout:g} seconds. Check that it is running at "
            f"{system.base_url}, or allow it more time (read timeout) on {name}'s page"
        )
    if kind == ErrorClass.UNREACHABLE:
        return (
            f"The hub could not connect to {name} at {system.base_url}. Check the address on {name}'s "
            "page and that the system is running"
        )
    if kind == ErrorClass.OUTBOUND_REFUSED:
        words = refusal(exc)
        return f"The hub may not connect to {name}: {refusal_in_words(words) if words else exc.message}"
    if kind == ErrorClass.RATE_LIMITED:
        return f"{name} asked the hub to slow down (429). Try again in a minute"
    if kind == ErrorClass.SERVER_ERROR:
        return f"{name} answered with a server error ({exc.status}) for {resource}. Try again later"
    return f"{name} did not give a record for {resource}: {exc.message}"


def data_model_users(model: DataModel) -> tuple[list[Flow], list[Mapping]]:
    """The flows and mappings that read or write this data model."""
    flows = list(
        Flow.objects.filter(Q(source_model=model) | Q(target_model=model)).select_related(
            "source_system", "target_system"
        )
    )
    mappings = list(
        Mapping.objects.filter(Q(source_model=model) | Q(target_model=model)).select_related(
            "source_model__system", "target_model__system", "current_version"
        )
    )
    return flows, mappings


def data_model_delete(*, model: DataModel, actor) -> None:
    """Delete a data model no flow or mapping uses."""
    flows, mappings = data_model_users(model)
    if flows or mappings:
        names = [flow.name for flow in flows] or [mapping.name for mapping in mappings]
        raise ConfigError(f"it is still used by {', '.join(names)}")
    with transaction.atomic():
        audit_record(
            actor=actor,
            verb="delete",
            target=model,
            diff={"fields": [_field_summary(spec) for spec in model.field_specs()]},
        )
        model.delete()


def field_add(
    *,
    model: DataModel,
    path: str,
    type: str,
    actor,
    required: bool = False,
    description: str = "",
    unit: str = "",
) -> Field:
    path = path.strip()
    spec = FieldSpec(path=path, type=type, required=required, description=description)
    problems = _spec_problems(spec) if path else ["the field needs a path, e.g. customer.email"]
    if path and model.fields.filter(path=path).exists():
        problems.append(f'the model already has a field "{path}"')
    if problems:
        raise ConfigError("; ".join(problems))
    with transaction.atomic():
        position = (model.fields.aggregate(last=Max("position"))["last"] or 0) + 1
        field = Field.objects.create(
            model=model,
            path=path,
            type=type,
            required=required,
            description=description[:DESCRIPTION_MAX],
            unit=unit.strip()[:UNIT_MAX],
            position=position,
        )
        audit_record(actor=actor, verb="add_field", target=model, diff={"field": _field_summary(spec)})
    return field


def field_update(
    *,
    field: Field,
    actor,
    type: str | None = None,
    required: bool | None = None,
    description: str | None = None,
    unit: str | None = None,
    format: str | None = None,
    enum: list | None = None,
    min_length: int | None | type[KEEP] = KEEP,
    max_length: int | None | type[KEEP] = KEEP,
) -> Field:
    """Change a field's type, required flag, description, unit or checks (format, allowed values,
    lengths; a length of None removes it). Its path stays: mappings refer to it."""
    if type is not None and type not in FIELD_TYPES:
        raise ConfigError(f'unknown type "{type}" (use one of {", ".join(FIELD_TYPES)})')
    if type in UNSUITABLE_TYPES and field.path == field.model.lookup_field:
        raise ConfigError(
            f'the hub looks {field.model.name} records up by "{field.path}", which must hold one value, '
            f"not {UNSUITABLE_TYPES[type]}: choose another external-id field first"
        )
    if description is not None:
        description = description[:DESCRIPTION_MAX]
    if unit is not None:
        unit = unit.strip()[:UNIT_MAX]
    checks = replace(
        field.spec(),
        **{"format": format} if format is not None else {},
        **{"enum": tuple(enum)} if enum is not None else {},
        **{"min_length": min_length} if min_length is not KEEP else {},
        **{"max_length": max_length} if max_length is not KEEP else {},
    )
    if problems := check_problems(checks):
        raise ConfigError("; ".join(problems))
    wanted = {"type": type, "required": required, "description": description, "unit": unit}
    diff = {
        key: [getattr(field, key), value]
        for key, value in wanted.items()
        if value is not None and getattr(field, key) != value
    }
    for key, value in (
        ("format", checks.format),
        ("enum", list(checks.enum)),
        ("min_length", checks.min_length),
        ("max_length", checks.max_length),
    ):
        if getattr(field, key) != value:
            diff[key] = [getattr(field, key), value]
    if not diff:
        return field
    with transaction.atomic():
        for key, (_, value) in diff.items():
            setattr(field, key, value)
        field.save(update_fields=list(diff))
        audit_record(actor=actor, verb="update_field", target=field.model, diff={"field": field.path, **diff})
    return field


def field_rename(*, field: Field, path: str, actor) -> Field:
    """Give a field a new path (the source renamed it). The mappings that read the old path are
    not changed: the admin sees them on the drift report and fixes them in the mapper."""
    path = path.strip()
    problems = _spec_problems(FieldSpec(path=path, type=field.type)) if path else ["the new path is empty"]
    if path and path != field.path and field.model.fields.filter(path=path).exists():
        problems.append(f'the model already has a field "{path}"')
    if problems:
        raise ConfigError("; ".join(problems))
    if path == field.path:
        return field
    with transaction.atomic():
        old = field.path
        field.path = path
        field.save(update_fields=["path"])
        model = field.model
        renamed = {
            name: path for name in ("id_path", "cursor_field", "lookup_field") if getattr(model, name) == old
        }
        for name, value in renamed.items():
            setattr(model, name, value)
        if renamed:
            model.save(update_fields=list(renamed))
        audit_record(
            actor=actor,
            verb="rename_field",
            target=model,
            diff={"field": [old, path], "model_settings": renamed},
        )
    return field


def field_order_set(*, model: DataModel, paths: list[str], actor) -> None:
    """Show the model's fields in this order; fields not listed follow in their present order."""
    fields = list(model.fields.order_by("position", "path"))
    rank = {path: index for index, path in enumerate(paths)}
    wanted = sorted(fields, key=lambda f: rank.get(f.path, len(rank)))  # stable: the rest keep their order
    if wanted == fields:
        return
    with transaction.atomic():
        for position, field in enumerate(wanted):
            field.position = position
        Field.objects.bulk_update(wanted, ["position"])
        audit_record(
            actor=actor,
            verb="reorder_fields",
            target=model,
            diff={"fields": [[f.path for f in fields], [f.path for f in wanted]]},
        )


def field_remove(*, field: Field, actor) -> None:
    """Remove a field; not the one the model is looked up by, which would leave the hub unable to
    tell whether a create arrived."""
    if field.model.lookup_field == field.path:
        raise ConfigError(
            f'the hub looks {field.model.name} records up by "{field.path}": choose another external-id '
            "field (or none) first"
        )
    with transaction.atomic():
        model = field.model
        summary = _field_summary(FieldSpec(field.path, field.type, field.required, field.description))
        field.delete()
        audit_record(actor=actor, verb="remove_field", target=model, diff={"field": summary})


def _field_summary(spec: FieldSpec) -> dict:
    return {"path": spec.path, "type": spec.type, "required": spec.required}


def data_model_api_refresh(*, model: DataModel, document: dict, actor) -> dict[str, list[str]]:
    """Read the model's operation again from a new version of its API document (the vendor's
    change): new fields are added, the types, required flags and checks of existing ones follow
    the document, fields it no longer has are removed (not the external-id field), and requests
    are checked against the new document from now on. Returns what changed, field by field."""
    if not model.api_operation:
        raise ConfigError(f"{model.name} was not imported from an API document")
    try:
        read = fields_from_openapi_operation(document, model.api_operation)
    except SchemaError as exc:
        raise ConfigError(f"the new document cannot be used: {exc}") from None
    problems = field_problems(read.fields)
    if problems:
        raise ConfigError("; ".join(problems))
    existing = {field.path: field for field in model.fields.all()}
    wanted = {spec.path: spec for spec in read.fields}
    changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    with transaction.atomic():
        position = (model.fields.aggregate(last=Max("position"))["last"] or 0) + 1
        paths = list(wanted)
        for path, spec in wanted.items():
            field = existing.get(path)
            if field is None:
                _field_row(model, spec, position, paths).save()
                position += 1
                changes["added"].append(path)
                continue
            kept = replace(spec, description=field.description or spec.description, unit=field.unit)
            if field.spec() != kept:
                for key in ("type", "required", "format", "min_length", "max_length"):
                    setattr(field, key, getattr(kept, key))
                field.enum = list(kept.enum)
                field.save()
                changes["changed"].append(path)
        for path, field in existing.items():
            if path not in wanted and path != model.lookup_field:
                field.delete()
                changes["removed"].append(path)
        model.api_document = document
        model.save(update_fields=["api_document", "updated_at"])
        audit_record(actor=actor, verb="refresh_from_api_document", target=model, diff=changes)
    return changes
