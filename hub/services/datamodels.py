"""Data model changes: each writes its audit entry in the same transaction as the change."""

from typing import Any

from django.db import transaction
from django.db.models import Max, Q

from common.paths import PathError, compile_path
from hub.models import Flow
from hub.services.audit import audit_record
from hub.services.errors import ConfigError, values_check
from mappings.models import DataModel, Field, Mapping
from mappings.schema import FIELD_TYPES, FieldSpec, infer_fields

# What an admin may change on a data model after creating it; fields have their own services.
EDITABLE = ("name", "resource_path", "id_path", "cursor_field", "description")
PATH_MAX = Field._meta.get_field("path").max_length
DESCRIPTION_MAX = Field._meta.get_field("description").max_length


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
    return problems


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
) -> DataModel:
    """A new data model of system with its fields (in the given order)."""
    name = name.strip()
    problems = field_problems(fields)
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
    )
    values_check(model, exclude=("system",))
    with transaction.atomic():
        model.save()
        Field.objects.bulk_create(
            Field(
                model=model,
                path=spec.path,
                type=spec.type,
                required=spec.required,
                description=spec.description[:DESCRIPTION_MAX],
                position=position,
            )
            for position, spec in enumerate(fields)
        )
        audit_record(
            actor=actor,
            verb="create",
            target=model,
            diff={
                "resource_path": model.resource_path,
                "id_path": model.id_path,
                "cursor_field": model.cursor_field,
                "fields": [_field_summary(spec) for spec in fields],
            },
        )
    return model


def data_model_update(*, model: DataModel, actor, **changes: str) -> DataModel:
    """Change a data model's name, resource path, id field, cursor field or description."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))} here")
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
            for spec in infer_fields(sample):
                if spec.path not in known:
                    added.append(Field(model=model, path=spec.path, type=spec.type, position=position))
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
    *, model: DataModel, path: str, type: str, actor, required: bool = False, description: str = ""
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
) -> Field:
    """Change a field's type, required flag or description (its path stays: mappings refer to it)."""
    if type is not None and type not in FIELD_TYPES:
        raise ConfigError(f'unknown type "{type}" (use one of {", ".join(FIELD_TYPES)})')
    if description is not None:
        description = description[:DESCRIPTION_MAX]
    wanted = {"type": type, "required": required, "description": description}
    diff = {
        key: [getattr(field, key), value]
        for key, value in wanted.items()
        if value is not None and getattr(field, key) != value
    }
    if not diff:
        return field
    with transaction.atomic():
        for key, (_, value) in diff.items():
            setattr(field, key, value)
        field.save(update_fields=list(diff))
        audit_record(actor=actor, verb="update_field", target=field.model, diff={"field": field.path, **diff})
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
    with transaction.atomic():
        model = field.model
        summary = _field_summary(FieldSpec(field.path, field.type, field.required, field.description))
        field.delete()
        audit_record(actor=actor, verb="remove_field", target=model, diff={"field": summary})


def _field_summary(spec: FieldSpec) -> dict:
    return {"path": spec.path, "type": spec.type, "required": spec.required}
