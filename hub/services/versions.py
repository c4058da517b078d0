"""Moving a system to a new API version, as guided steps an admin can undo:

1. `version_move_start`: copy the system's data models (of its current version) and the mappings
   that use them under the new version, or read the vendor's new API description into the copies
   and keep what changed per model;
2. `version_dry_run`: run recent real events through the old and the new mapping, sending nothing;
3. `version_switch`: the system's version and every flow using the old models move to the copies,
   in one transaction;
4. `version_switch_back`: the same, the other way; `version_move_discard` removes the copies an
   admin no longer wants (those of the side the flows do not use).

Every step writes its audit entry in its own transaction."""

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connectors.apiversion import NoPlaceForVersion, VersionIn, VersionPlacement, placement_problems
from connectors.models import System
from hub.models import Delivery, DeliveryStatus, Event, Flow, VersionMove, VersionMoveState
from hub.services.audit import audit_record
from hub.services.datamodels import api_description_fetch
from hub.services.errors import ConfigError
from hub.services.flows import flow_problems
from hub.services.mappings import mapping_version_save
from hub.services.systems import system_update
from mappings.engine import MappingError
from mappings.models import DataModel, Field, Mapping
from mappings.schema import FieldSpec, SchemaError, fields_from_openapi, openapi_schema_names, validate_record

DRY_RUN_EVENTS = 20
# Copied as they are; the name and version are the copy's own.
MODEL_OWN = {"id", "system", "name", "api_version", "created_at", "updated_at"}
FIELD_OWN = {"id", "model"}


def versioned_name(name: str, old: str, new: str, limit: int = 100) -> str:
    """ "Contact" -> "Contact (v2)"; "Contact (v1)" -> "Contact (v2)"."""
    suffix = f" ({old})"
    base = name[: -len(suffix)] if old and name.endswith(suffix) else name
    tail = f" ({new})"
    return base[: limit - len(tail)] + tail


def current_models(system: System):
    """The system's data models of the version it speaks now (or of no version in particular),
    without those a switch left behind (a system that had no version leaves its old ones unnamed)."""
    left_behind = [
        int(old)
        for pairs in system.version_moves.filter(state=VersionMoveState.SWITCHED).values_list(
            "model_pairs", flat=True
        )
        for old in pairs
    ]
    return (
        system.data_models.filter(api_version__in=["", system.api_version])
        .exclude(pk__in=left_behind)
        .order_by("name")
    )


def open_move(system: System) -> VersionMove | None:
    """The move still waiting to be switched over (or switched over again)."""
    states = (VersionMoveState.PREPARED, VersionMoveState.SWITCHED_BACK)
    return system.version_moves.filter(state__in=states).first()


def latest_move(system: System) -> VersionMove | None:
    return system.version_moves.exclude(state=VersionMoveState.DISCARDED).first()


# --------------------------------------------------------------------------------------------------
# 1. The new version's copies
# --------------------------------------------------------------------------------------------------


def version_move_start(
    *,
    system: System,
    to_version: str,
    to_in: str,
    to_name: str,
    actor,
    document: str = "",
    document_path: str = "",
) -> VersionMove:
    """Copy the system's current data models and the mappings using them under `to_version`. With
    an API description (pasted as `document`, or fetched from the system at `document_path` in
    the new version), each copy takes its fields from the schema of the same name, and the move
    keeps what changed."""
    to_version, to_name = to_version.strip(), to_name.strip()
    if not to_version:
        raise ConfigError("enter the new API version, e.g. v2 or 2025-01-01")
    if to_version == system.api_version:
        raise ConfigError(f"{system.name} already uses version {to_version}")
    if to_in not in VersionIn.values:
        raise ConfigError(
            "choose where the version goes: in a header, in the address or in a query parameter"
        )
    if problems := placement_problems(
        version=to_version, where=to_in, name=to_name, base_url=system.base_url
    ):
        raise ConfigError(" ".join(problems.values()))
    if open_move(system) is not None:
        raise ConfigError(
            f"{system.name} is already being moved to another version: finish or discard that first"
        )
    placement = VersionPlacement(to_version, to_in, to_name)
    if document_path and not document:
        document, _ = api_description_fetch(system=_speaking(system, placement), path=document_path)
    schemas = _schema_names(document) if document else {}
    old_version = system.api_version
    with transaction.atomic():
        System.objects.select_for_update().get(pk=system.pk)
        if open_move(system) is not None:
            raise ConfigError(f"{system.name} is already being moved to another version")
        move = VersionMove.objects.create(
            system=system,
            from_version=old_version,
            from_in=system.api_version_in,
            from_name=system.api_version_name,
            to_version=to_version,
            to_in=to_in,
            to_name=to_name,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        models = list(current_models(system).prefetch_related("fields"))
        if not models:
            raise ConfigError(f"{system.name} has no data models to copy; add them first")
        for old in models:
            new = _model_copy(old, old_version, to_version)
            move.model_pairs[str(old.pk)] = new.pk
            if document:
                move.differences[new.name] = _fields_from_document(new, document, schemas)
            if old_version and not old.api_version:
                old.api_version = old_version  # the models it had are now the old version's
                old.save(update_fields=["api_version", "updated_at"])
        for mapping in Mapping.objects.filter(
            Q(source_model__in=models) | Q(target_model__in=models)
        ).select_related("current_version"):
            move.mapping_pairs[str(mapping.pk)] = _mapping_copy(mapping, move, actor).pk
        move.save(update_fields=["model_pairs", "mapping_pairs", "differences"])
        audit_record(
            actor=actor,
            verb="version_start",
            target=system,
            diff={
                "api_version": [old_version, to_version],
                "where": [system.api_version_in, to_in],
                "copied_models": sorted(m.name for m in models),
                "copied_mappings": len(move.mapping_pairs),
                "from_document": bool(document),
            },
        )
    return move


def _speaking(system: System, placement: VersionPlacement) -> System:
    """The system as if it already spoke the new version (not saved): for reading its description."""
    speaking = copy.copy(system)
    speaking.api_version, speaking.api_version_in = placement.version, placement.where
    speaking.api_version_name = placement.name
    return speaking


def _schema_names(document: str) -> dict[str, str]:
    try:
        names = openapi_schema_names(document)
    except SchemaError as exc:
        raise ConfigError(f"the API description cannot be read: {exc}") from None
    return {_plain_name(name): name for name in names}


def _plain_name(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def _model_copy(old: DataModel, old_version: str, new_version: str) -> DataModel:
    name = versioned_name(old.name, old.api_version or old_version, new_version)
    if DataModel.objects.filter(system_id=old.system_id, name__iexact=name).exists():
        raise ConfigError(f"a data model named “{name}” already exists; rename or delete it first")
    values = {
        f.name: getattr(old, f.name) for f in DataModel._meta.concrete_fields if f.name not in MODEL_OWN
    }
    new = DataModel.objects.create(system_id=old.system_id, name=name, api_version=new_version, **values)
    Field.objects.bulk_create(
        Field(
            model=new,
            **{f.name: getattr(row, f.name) for f in Field._meta.concrete_fields if f.name not in FIELD_OWN},
        )
        for row in old.fields.all()
    )
    return new


def _fields_from_document(model: DataModel, document: str, schemas: dict[str, str]) -> dict[str, Any]:
    """Give the copy the fields of its schema in the new document; what changed, for the page."""
    base = model.name.rsplit(" (", 1)[0]
    schema = schemas.get(_plain_name(base))
    if schema is None:
        return {"schema": "", "added": [], "removed": [], "changed": []}
    try:
        specs = fields_from_openapi(document, schema)
    except SchemaError as exc:
        raise ConfigError(f"the schema {schema} cannot be read: {exc}") from None
    before = {f.path: f for f in model.fields.all()}
    after = {spec.path: spec for spec in specs}
    model.fields.all().delete()
    Field.objects.bulk_create(
        _field_row(model, spec, before.get(spec.path), n) for n, spec in enumerate(specs)
    )
    return {
        "schema": schema,
        "added": [path for path in after if path not in before],
        "removed": [path for path in before if path not in after],
        "changed": [
            [path, before[path].type, spec.type]
            for path, spec in after.items()
            if path in before and before[path].type != spec.type
        ],
    }


def _field_row(model: DataModel, spec: FieldSpec, kept: Field | None, position: int) -> Field:
    return Field(
        model=model,
        path=spec.path,
        type=spec.type,
        required=spec.required,
        description=spec.description or (kept.description if kept else ""),
        unit=spec.unit or (kept.unit if kept else ""),
        format=spec.format,
        enum=list(spec.enum),
        min_length=spec.min_length,
        max_length=spec.max_length,
        position=position,
    )


def _mapping_copy(mapping: Mapping, move: VersionMove, actor) -> Mapping:
    pairs = move.model_pairs
    new = Mapping.objects.create(
        name=versioned_name(mapping.name, "", move.to_version, limit=200),
        source_model_id=pairs.get(str(mapping.source_model_id), mapping.source_model_id),
        target_model_id=pairs.get(str(mapping.target_model_id), mapping.target_model_id),
    )
    version = mapping.current_version
    if version is not None:
        mapping_version_save(
            mapping=new,
            rules=version.rules,
            actor=actor,
            comment=f"copied from {mapping.name} v{version.number} for API version {move.to_version}",
        )
    return new


# --------------------------------------------------------------------------------------------------
# Which flows, models and mappings a move concerns
# --------------------------------------------------------------------------------------------------


def _pairs(move: VersionMove, *, back: bool = False) -> tuple[dict[int, int], dict[int, int]]:
    """(model id -> model id, mapping id -> mapping id), old to new (or new to old when `back`)."""
    models = {int(old): new for old, new in move.model_pairs.items()}
    mappings = {int(old): new for old, new in move.mapping_pairs.items()}
    if back:
        return {v: k for k, v in models.items()}, {v: k for k, v in mappings.items()}
    return models, mappings


def flows_on(models: dict[int, int], mappings: dict[int, int]):
    """The flows that use any of these models or mappings (the keys)."""
    return (
        Flow.objects.filter(
            Q(source_model_id__in=models) | Q(target_model_id__in=models) | Q(mapping_id__in=mappings)
        )
        .select_related("source_system", "target_system", "source_model", "target_model", "mapping")
        .order_by("name")
    )


def affected_flows(move: VersionMove) -> list[Flow]:
    """The flows the move switches (those on the side they do not use yet)."""
    return list(flows_on(*_pairs(move, back=move.state == VersionMoveState.SWITCHED)))


def _moved(flow: Flow, models: dict[int, int], mappings: dict[int, int]) -> Flow:
    """The flow as it would be on the other side (not saved)."""
    moved = copy.copy(flow)
    moved.source_model = DataModel.objects.get(pk=models.get(flow.source_model_id, flow.source_model_id))
    moved.target_model = DataModel.objects.get(pk=models.get(flow.target_model_id, flow.target_model_id))
    moved.mapping = Mapping.objects.select_related("current_version").get(
        pk=mappings.get(flow.mapping_id, flow.mapping_id)
    )
    return moved


# --------------------------------------------------------------------------------------------------
# 2. The dry run
# --------------------------------------------------------------------------------------------------


@dataclass
class Change:
    path: str
    old: Any
    new: Any

    @property
    def kind(self) -> str:
        if self.old is _MISSING:
            return "added"
        if self.new is _MISSING:
            return "removed"
        return "changed"


class _Missing:
    def __repr__(self) -> str:
        return "—"


_MISSING = _Missing()


@dataclass
class DryRunEvent:
    event: Event
    old: dict | None
    new: dict | None
    old_error: str = ""
    new_error: str = ""
    problems: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every field of either payload, side by side, the differing ones marked."""
        old, new = dict(_leaves(self.old or {})), dict(_leaves(self.new or {}))
        changed = {c.path: c.kind for c in self.changes}
        return [
            {
                "path": path,
                "old": old.get(path, _MISSING),
                "new": new.get(path, _MISSING),
                "kind": changed.get(path, ""),
            }
            for path in sorted({*old, *new})
        ]


@dataclass
class DryRunFlow:
    flow: Flow
    old_call: str
    new_call: str
    events: list[DryRunEvent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # of the flow on the new side, as enabling checks
    call_problem: str = ""  # why the new version cannot be put in the address, when it cannot

    @property
    def differing(self) -> int:
        return sum(1 for e in self.events if e.changes or e.new_error or e.problems)


def version_dry_run(*, move: VersionMove, actor, limit: int = DRY_RUN_EVENTS) -> list[DryRunFlow]:
    """Run each affected flow's last `limit` delivered events through the old and the new mapping.
    Nothing is sent to any system."""
    if move.state not in (VersionMoveState.PREPARED, VersionMoveState.SWITCHED_BACK):
        raise ConfigError("a dry run is for a move not switched over yet")
    models, mappings = _pairs(move)
    new_placement = VersionPlacement(move.to_version, move.to_in, move.to_name)
    results = []
    for flow in flows_on(models, mappings):
        moved = _moved(flow, models, mappings)
        target = flow.target_system
        new_call, call_problem = _call(
            target,
            new_placement if target.pk == move.system_id else target.version_placement(),
            moved.target_model,
        )
        result = DryRunFlow(
            flow=flow,
            old_call=_call(target, target.version_placement(), flow.target_model)[0],
            new_call=new_call,
            call_problem=call_problem,
            problems=[str(p) for p in flow_problems(moved)],
        )
        target_fields = moved.target_model.field_specs()
        for delivery in _recent_deliveries(flow, limit):
            result.events.append(_side_by_side(delivery, flow, moved, target_fields))
        results.append(result)
    with transaction.atomic():
        move.dry_run_at = timezone.now()
        move.save(update_fields=["dry_run_at"])
        audit_record(
            actor=actor,
            verb="version_dry_run",
            target=move.system,
            diff={
                "to_version": move.to_version,
                "flows": {
                    r.flow.name: {"events": len(r.events), "differing": r.differing, "problems": r.problems}
                    for r in results
                },
            },
        )
    return results


def _recent_deliveries(flow: Flow, limit: int) -> list[Delivery]:
    return list(
        Delivery.objects.filter(flow=flow, status=DeliveryStatus.SUCCEEDED, event__purged_at__isnull=True)
        .exclude(event__origin=Event.Origin.TEST)
        .select_related("event__system")
        .order_by("-finished_at", "-id")[:limit]
    )


def _side_by_side(delivery: Delivery, flow: Flow, moved: Flow, target_fields: list[FieldSpec]) -> DryRunEvent:
    record = delivery.source_record()
    old, old_error = _mapped(flow.mapping, record)
    new, new_error = _mapped(moved.mapping, record)
    problems = [issue.message for issue in validate_record(new, target_fields)] if new is not None else []
    return DryRunEvent(
        event=delivery.event,
        old=old,
        new=new,
        old_error=old_error,
        new_error=new_error,
        problems=problems,
        changes=payload_changes(old or {}, new or {}),
    )


def _mapped(mapping: Mapping, record: Any) -> tuple[dict | None, str]:
    version = mapping.current_version
    if version is None:
        return None, "the mapping has no rules yet"
    if not isinstance(record, dict):
        return None, f"the event's record is a {type(record).__name__}, not an object"
    try:
        return version.compiled.apply(record), ""
    except MappingError as exc:
        return None, str(exc)


def _call(system: System, placement: VersionPlacement, model: DataModel) -> tuple[str, str]:
    """Where a write of `model` goes, in words (the address and any version header), and why it
    cannot go anywhere ("" when it can)."""
    if not system.base_url:
        return "(no API base URL)", ""
    try:
        where = placement.address(system.base_url, model.resource_path)
    except NoPlaceForVersion as exc:
        return "", str(exc)
    headers = placement.headers()
    return where + "".join(f" with {name}: {value}" for name, value in headers.items()), ""


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def payload_changes(old: dict, new: dict) -> list[Change]:
    """What differs between two payloads, field by field."""
    before, after = dict(_leaves(old)), dict(_leaves(new))
    return [
        Change(path, before.get(path, _MISSING), after.get(path, _MISSING))
        for path in sorted({*before, *after})
        if before.get(path, _MISSING) != after.get(path, _MISSING)
    ]


# --------------------------------------------------------------------------------------------------
# 3 and 4. Switching over and back
# --------------------------------------------------------------------------------------------------


def version_switch(*, move: VersionMove, actor) -> VersionMove:
    """The system speaks the new version and every flow on the old models uses the copies, at once."""
    if move.state not in (VersionMoveState.PREPARED, VersionMoveState.SWITCHED_BACK):
        raise ConfigError("this move is not waiting to be switched over")
    if move.dry_run_at is None:
        raise ConfigError("try the dry run first: it shows what the new version would send")
    return _switch(move, actor, back=False)


def version_switch_back(*, move: VersionMove, actor) -> VersionMove:
    """The system speaks the old version again and its flows use the old models and mappings."""
    if move.state != VersionMoveState.SWITCHED:
        raise ConfigError("this move has not been switched over")
    if latest_move(move.system) != move:
        raise ConfigError("a later version move exists: switch that one back first")
    return _switch(move, actor, back=True)


def _switch(move: VersionMove, actor, *, back: bool) -> VersionMove:
    models, mappings = _pairs(move, back=back)
    version, where, name = (
        (move.from_version, move.from_in, move.from_name)
        if back
        else (move.to_version, move.to_in, move.to_name)
    )
    with transaction.atomic():
        system = System.objects.select_for_update().get(pk=move.system_id)
        locked = VersionMove.objects.select_for_update().get(pk=move.pk)
        if locked.state != move.state:
            raise ConfigError("someone else switched this move meanwhile; reload the page")
        flows = list(flows_on(models, mappings).select_for_update(of=("self",)))
        moved_flows = [_moved(flow, models, mappings) for flow in flows]
        problems = [f"{m.name}: {'; '.join(found)}" for m in moved_flows if (found := flow_problems(m))]
        if problems and not back:
            raise ConfigError(
                "fix these first, in the new version's mappings or data models: " + " · ".join(problems)
            )
        placement = VersionPlacement(version, where, name)
        unplaced = _unplaced(system, placement, moved_flows, models)
        if unplaced:
            raise ConfigError(unplaced)
        system_update(
            system=system,
            fields={"api_version": version, "api_version_in": where, "api_version_name": name},
            actor=actor,
        )
        changes = {}
        for flow, moved in zip(flows, moved_flows, strict=True):
            changes[flow.name] = {"mapping": [flow.mapping.name, moved.mapping.name]}
            flow.source_model, flow.target_model, flow.mapping = (
                moved.source_model,
                moved.target_model,
                moved.mapping,
            )
            flow.save(update_fields=["source_model", "target_model", "mapping", "updated_at"])
        move.state = VersionMoveState.SWITCHED_BACK if back else VersionMoveState.SWITCHED
        move.switched_at = timezone.now()
        move.save(update_fields=["state", "switched_at"])
        audit_record(
            actor=actor,
            verb="version_switch_back" if back else "version_switch",
            target=system,
            diff={
                "api_version": [move.to_version, version] if back else [move.from_version, version],
                "flows": changes,
            },
        )
    return move


def _unplaced(system: System, placement: VersionPlacement, flows: list[Flow], models: dict[int, int]) -> str:
    """Why the version cannot be put in some address the flows call ("" when it can everywhere)."""
    if placement.where != VersionIn.PATH or not system.base_url:
        return ""
    own = [m for f in flows for m in (f.source_model, f.target_model) if m.system_id == system.pk]
    for model in {m.pk: m for m in own}.values():
        try:
            placement.address(system.base_url, model.resource_path)
        except NoPlaceForVersion as exc:
            return f"{model.name}: {exc}. Put {{version}} in the base URL or the model's path"
    return ""


def version_move_discard(*, move: VersionMove, actor) -> None:
    """Remove the side of a move its flows do not use: the new version's copies of a move not
    switched over (or switched back), or the old version's models and mappings once switched."""
    if move.state not in (
        VersionMoveState.PREPARED,
        VersionMoveState.SWITCHED_BACK,
        VersionMoveState.SWITCHED,
    ):
        raise ConfigError("this move's copies were already removed")
    old_side = move.state == VersionMoveState.SWITCHED
    if old_side and latest_move(move.system) != move:
        raise ConfigError("a later version move exists")
    models, mappings = _pairs(move, back=old_side)
    unused_models, unused_mappings = list(models.values()), list(mappings.values())
    with transaction.atomic():
        if flows_on(dict.fromkeys(unused_models), dict.fromkeys(unused_mappings)).exists():
            raise ConfigError("flows still use them")
        names = sorted(DataModel.objects.filter(pk__in=unused_models).values_list("name", flat=True))
        Mapping.objects.filter(pk__in=unused_mappings).delete()
        DataModel.objects.filter(pk__in=unused_models).delete()
        move.state = VersionMoveState.FINISHED if old_side else VersionMoveState.DISCARDED
        move.save(update_fields=["state"])
        audit_record(
            actor=actor,
            verb="version_remove_old" if old_side else "version_discard",
            target=move.system,
            diff={
                "api_version": move.from_version if old_side else move.to_version,
                "removed_models": names,
                "removed_mappings": len(unused_mappings),
            },
        )
