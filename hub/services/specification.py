"""The data-flow specification: the whole configuration as one readable YAML document.

Systems (without secrets), data models with their fields, flows with their mapping rules, and
alert rules. `spec_export()` writes it with a stable key order, so two exports of the same
configuration are identical and a change shows as a small diff in version control.
`spec_import()` reads it back: it validates the whole document first and changes nothing when
anything is wrong; otherwise it creates and updates by natural keys (system slug; model system +
name; flow name). It never deletes, never touches stored secrets, and saves a new mapping
version only when a flow's rules changed.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from common.paths import PathError, compile_path
from connectors.models import AUTH_SECRET_FIELDS, System
from hub.models import Flow, FlowState, Operation, Trigger
from hub.services.audit import audit_record
from hub.services.flows import condition_text, cron_problem
from hub.services.mappings import mapping_version_save
from mappings.conditions import ConditionError, parse_condition_text, validate_condition
from mappings.engine import validate_rules
from mappings.models import DataModel, Field, Mapping
from mappings.schema import FIELD_TYPES

FORMAT = 1
SET, NOT_SET = "set", "not set"

SYSTEM_KEYS = (
    "slug", "name", "kind", "connector", "base_url", "api_version", "auth_scheme", "auth_config", "credentials",
    "rate_limit_per_second", "connect_timeout", "read_timeout", "webhook_secret", "signature_scheme",
    "signature_header", "signature_encoding", "signature_prefix", "signature_tolerance_seconds", "event_type_path",
    "idempotency_key_path", "record_path",
)  # fmt: skip
SECRET_STATUS_KEYS = ("credentials", "webhook_secret")  # shown as set / not set; never imported
MODEL_KEYS = ("system", "name", "resource_path", "id_path", "cursor_field", "description", "fields")
FIELD_KEYS = ("path", "type", "required", "description")
FLOW_KEYS = (
    "name", "description", "source_system", "source_model", "event_type", "target_system", "target_model",
    "operation", "trigger", "schedule_minutes", "schedule_cron", "filter", "state", "settings", "mapping",
)  # fmt: skip
FLOW_SETTINGS = (
    "max_attempts", "max_age_seconds", "retry_base_seconds", "retry_max_seconds", "silence_after_minutes",
    "poll_page_size",
)  # fmt: skip
MAPPING_KEYS = ("name", "rules")
SECTIONS = ("format", "systems", "models", "flows", "alert_rules")

HEADER = """\
# Integration hub: data-flow specification (format {format})
# Exported {when}.
#
# The whole configuration: systems, data models with their fields, flows and their mapping
# rules. Secrets are never included: credentials and webhook secrets show only "set" or
# "not set", and an import never changes them. Import with the "Import specification" page or
# `manage.py spec_import FILE --dry-run`; an import creates and updates, it never deletes.
# alert_rules is reserved for alert rules and is empty until they can be configured.
"""


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line text, so descriptions stay readable and diff line by line."""


def _text_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


class _Inline(dict):
    """A small mapping written on one line, e.g. a model's field: {path: id, type: string, required: true}."""


def _inline_representer(dumper: yaml.SafeDumper, value: _Inline) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=True)


_Dumper.add_representer(str, _text_representer)
_Dumper.add_representer(_Inline, _inline_representer)


def spec_document() -> dict[str, Any]:
    """The configuration as plain data, in the document's order."""
    systems = list(System.objects.order_by("slug"))
    models = list(
        DataModel.objects.select_related("system").prefetch_related("fields").order_by("system__slug", "name")
    )
    flows = list(
        Flow.objects.select_related(
            "source_system", "source_model", "target_system", "target_model", "mapping__current_version"
        ).order_by("name")
    )
    return {
        "format": FORMAT,
        "systems": [_system_entry(system) for system in systems],
        "models": [_model_entry(model) for model in models],
        "flows": [_flow_entry(flow) for flow in flows],
        "alert_rules": [],
    }


def spec_export(*, now: datetime | None = None) -> str:
    when = timezone.localtime(now or timezone.now()).strftime("%Y-%m-%d %H:%M %Z")
    body = yaml.dump(
        spec_document(),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return HEADER.format(format=FORMAT, when=when) + body


def _system_entry(system: System) -> dict[str, Any]:
    shown = system.redacted()
    entry = {}
    for key in SYSTEM_KEYS:
        if key == "credentials":
            entry[key] = {
                name: SET if is_set else NOT_SET for name, is_set in shown["credentials_set"].items()
            }
        elif key == "webhook_secret":
            entry[key] = SET if shown["webhook_secret_set"] else NOT_SET
        else:
            entry[key] = shown[key]
    return entry


def _model_entry(model: DataModel) -> dict[str, Any]:
    return {
        "system": model.system.slug,
        "name": model.name,
        "resource_path": model.resource_path,
        "id_path": model.id_path,
        "cursor_field": model.cursor_field,
        "description": model.description,
        "fields": [
            _Inline(_field_entry(f)) for f in sorted(model.fields.all(), key=lambda f: (f.position, f.path))
        ],
    }


def _field_entry(f: Field) -> dict[str, Any]:
    entry = {"path": f.path, "type": f.type, "required": f.required}
    if f.description:
        entry["description"] = f.description
    return entry


def _flow_entry(flow: Flow) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": flow.name,
        "description": flow.description,
        "source_system": flow.source_system.slug,
        "source_model": flow.source_model.name,
        "event_type": flow.event_type,
        "target_system": flow.target_system.slug,
        "target_model": flow.target_model.name,
        "operation": flow.operation,
        "trigger": flow.trigger,
    }
    if flow.trigger == Trigger.SCHEDULED:
        if flow.schedule_cron:
            entry["schedule_cron"] = flow.schedule_cron
        else:
            entry["schedule_minutes"] = flow.schedule_minutes
    # The filter reads best in the text syntax; the structure is kept when text cannot say it exactly.
    text = condition_text(flow.filter)
    entry["filter"] = (text or None) if text is not None else flow.filter
    entry["state"] = flow.state
    entry["settings"] = {name: getattr(flow, name) for name in FLOW_SETTINGS}
    entry["mapping"] = {"name": flow.mapping.name, "rules": flow.mapping.rules}
    return entry


# --------------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------------


@dataclass
class SpecReport:
    """What an import found: errors (nothing applied), or the changes it made or would make."""

    dry_run: bool = False
    errors: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unchanged: int = 0
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        if self.errors:
            return f"{len(self.errors)} problems found; nothing was changed."
        if not self.changes:
            return "Nothing to change: the hub already matches this document."
        verb = "would change" if self.dry_run else "changed"
        return f"{len(self.changes)} {'item' if len(self.changes) == 1 else 'items'} {verb}; {self.unchanged} already up to date."


@dataclass
class _Item:
    """One validated entry of the document, with what applying it means."""

    where: str
    key: Any
    values: dict[str, Any]
    existing: Any = None
    diff: dict[str, list] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def spec_import(*, text: str, actor, dry_run: bool = False) -> SpecReport:
    """Validate the whole document, then (unless dry_run) apply it in one transaction."""
    report = SpecReport(dry_run=dry_run)
    doc = _load(text, report)
    if doc is None:
        return report
    planner = _Planner(doc, report)
    planner.check()
    if report.errors:
        report.changes.clear()
        report.notes.clear()
        return report
    if not dry_run and report.changes:
        with transaction.atomic():
            planner.apply(actor)
        report.applied = True
    return report


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed: much faster


def _safe_load(text: str) -> Any:
    """YAML without anchors and aliases: a specification never needs them, and refusing them rules
    out documents that expand to an enormous (or self-referencing) structure."""
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a specification", event.start_mark
            )
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)


def _load(text: str, report: SpecReport) -> dict | None:
    if not isinstance(text, str) or not text.strip():
        report.errors.append("The document is empty.")
        return None
    try:
        doc = _safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "it is not valid YAML"
        report.errors.append(f"The document cannot be read{where}: {problem}.")
        return None
    if not isinstance(doc, dict):
        report.errors.append("The document must be a YAML mapping with systems, models and flows.")
        return None
    unknown = [str(key) for key in doc if key not in SECTIONS]
    if unknown:
        report.errors.append(f"Unknown section {', '.join(unknown)} (expected: {', '.join(SECTIONS)}).")
    if doc.get("format", FORMAT) != FORMAT:
        report.errors.append(f"format: this hub reads format {FORMAT}, not {doc.get('format')!r}.")
    for section in ("systems", "models", "flows", "alert_rules"):
        if doc.get(section) is not None and not isinstance(doc[section], list):
            report.errors.append(f"{section}: must be a list.")
    if doc.get("alert_rules"):
        report.errors.append("alert_rules: alert rules cannot be imported yet; leave the list empty.")
    return None if report.errors else doc


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 60 else text[:57] + "…"


def _clean_errors(where: str, exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [f"{where}.{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items()]
    return [f"{where}: {' '.join(exc.messages)}"]


class _Planner:
    def __init__(self, doc: dict, report: SpecReport) -> None:
        self.doc = doc
        self.report = report
        self.errors = report.errors
        self.systems: list[_Item] = []
        self.models: list[_Item] = []
        self.flows: list[_Item] = []
        # Natural keys the document defines, so later sections may refer to new entries.
        self.system_slugs: set[str] = set()
        self.model_fields: dict[tuple[str, str], dict[str, bool]] = {}

    # ---- validation -----------------------------------------------------------------------

    def check(self) -> None:
        for index, entry in enumerate(self.doc.get("systems") or []):
            self._check_system(f"systems[{index}]", entry)
        for index, entry in enumerate(self.doc.get("models") or []):
            self._check_model(f"models[{index}]", entry)
        for index, entry in enumerate(self.doc.get("flows") or []):
            self._check_flow(f"flows[{index}]", entry)

    def _entry(self, where: str, entry: Any, keys: tuple[str, ...], required: tuple[str, ...]) -> bool:
        if not isinstance(entry, dict):
            self.errors.append(f"{where}: must be a mapping of settings.")
            return False
        unknown = [str(key) for key in entry if key not in keys]
        if unknown:
            self.errors.append(f"{where}: unknown setting {', '.join(unknown)} (allowed: {', '.join(keys)}).")
        missing = [key for key in required if entry.get(key) in (None, "")]
        for key in missing:
            self.errors.append(f"{where}.{key}: is required.")
        for key in required:
            if key not in missing and not isinstance(entry[key], str):
                self.errors.append(f"{where}.{key}: must be text.")
                missing.append(key)
        return not unknown and not missing

    def _check_system(self, where: str, entry: Any) -> None:
        if not self._entry(where, entry, SYSTEM_KEYS, ("slug", "name")):
            return
        slug = entry["slug"]
        if slug in self.system_slugs:
            self.errors.append(f"{where}.slug: system '{slug}' appears twice in the document.")
            return
        self.system_slugs.add(slug)
        existing = System.objects.filter(slug=slug).first()
        system = existing or System()
        before = {key: getattr(system, key) for key in SYSTEM_KEYS if key not in SECRET_STATUS_KEYS}
        for key, value in entry.items():
            if key in SECRET_STATUS_KEYS:
                continue
            setattr(system, key, value)
        if not isinstance(system.auth_config, dict):
            self.errors.append(f"{where}.auth_config: must be a mapping (e.g. header: X-Api-Key).")
            return
        try:
            system.full_clean(
                exclude=["credentials", "webhook_secret"], validate_unique=False, validate_constraints=False
            )
        except ValidationError as exc:
            self.errors.extend(_clean_errors(where, exc))
            return
        clash = System.objects.filter(name=system.name).exclude(slug=slug).first()
        if clash:
            self.errors.append(
                f"{where}.name: the name '{system.name}' is already used by system '{clash.slug}'."
            )
            return
        values = {key: getattr(system, key) for key in before}
        item = _Item(where, slug, values, existing)
        if existing:
            item.diff = {key: [before[key], values[key]] for key in values if before[key] != values[key]}
            self._count(item, f"update system '{slug}'")
        else:
            self.report.changes.append(f"create system '{slug}' ({system.name})")
            wanted = entry.get("credentials") or {}
            needed = AUTH_SECRET_FIELDS.get(system.auth_scheme, ())
            if (
                needed
                or (isinstance(wanted, dict) and SET in wanted.values())
                or entry.get("webhook_secret") == SET
            ):
                self.report.notes.append(
                    f"System '{slug}' is new: secrets are never imported, so enter its credentials and "
                    "webhook secret on its page before its flows can run."
                )
        self.systems.append(item)

    def _system_known(self, slug: str) -> bool:
        return slug in self.system_slugs or System.objects.filter(slug=slug).exists()

    def _check_model(self, where: str, entry: Any) -> None:
        if not self._entry(where, entry, MODEL_KEYS, ("system", "name")):
            return
        slug, name = entry["system"], entry["name"]
        if not self._system_known(slug):
            self.errors.append(f"{where}.system: no system '{slug}' (in this document or in the hub).")
            return
        if (slug, name) in self.model_fields:
            self.errors.append(
                f"{where}.name: model '{name}' of system '{slug}' appears twice in the document."
            )
            return
        existing = DataModel.objects.filter(system__slug=slug, name=name).first()
        model = existing or DataModel(name=name)
        before = {
            key: getattr(model, key) for key in ("resource_path", "id_path", "cursor_field", "description")
        }
        for key in before:
            if key in entry:
                setattr(model, key, "" if entry[key] is None else entry[key])
        try:
            model.full_clean(exclude=["system"], validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            self.errors.extend(_clean_errors(where, exc))
            return
        fields = self._check_fields(where, entry.get("fields"))
        if fields is None:
            return
        self.model_fields[(slug, name)] = {f["path"]: f["required"] for f in fields}
        values = {key: getattr(model, key) for key in before}
        item = _Item(where, (slug, name), values, existing, extra={"fields": fields})
        if existing:
            item.diff = {key: [before[key], values[key]] for key in values if before[key] != values[key]}
            stored = [
                _field_entry(f) for f in sorted(existing.fields.all(), key=lambda f: (f.position, f.path))
            ]
            if stored != [{k: v for k, v in f.items() if k != "description" or v} for f in fields]:
                item.diff["fields"] = [f"{len(stored)} fields", _fields_diff(stored, fields)]
            self._count(item, f"update model '{name}' of system '{slug}'")
        else:
            self.report.changes.append(f"create model '{name}' in system '{slug}' with {len(fields)} fields")
        self.models.append(item)

    def _check_fields(self, where: str, fields: Any) -> list[dict] | None:
        if fields is None:
            return []
        if not isinstance(fields, list):
            self.errors.append(f"{where}.fields: must be a list.")
            return None
        clean, seen, ok = [], set(), True
        for index, spec in enumerate(fields):
            at = f"{where}.fields[{index}]"
            if not self._entry(at, spec, FIELD_KEYS, ("path",)):
                ok = False
                continue
            path = spec["path"]
            try:
                compile_path(path)
            except PathError as exc:
                self.errors.append(f"{at}.path: {exc}")
                ok = False
            if path in seen:
                self.errors.append(f"{at}.path: field '{path}' appears twice.")
                ok = False
            seen.add(path)
            kind = spec.get("type", "string")
            if kind not in FIELD_TYPES:
                self.errors.append(
                    f"{at}.type: unknown type {_shown(kind)} (use one of: {', '.join(FIELD_TYPES)})."
                )
                ok = False
            required = spec.get("required", False)
            if not isinstance(required, bool):
                self.errors.append(f"{at}.required: must be true or false.")
                ok = False
            description = spec.get("description") or ""
            if not isinstance(description, str) or len(description) > 300:
                self.errors.append(f"{at}.description: must be text of at most 300 characters.")
                ok = False
            clean.append({"path": path, "type": kind, "required": required, "description": description})
        return clean if ok else None

    def _model_known(self, slug: str, name: str) -> bool:
        return (slug, name) in self.model_fields or DataModel.objects.filter(
            system__slug=slug, name=name
        ).exists()

    def _required_fields(self, slug: str, name: str) -> list[str]:
        if (slug, name) in self.model_fields:
            return [path for path, required in self.model_fields[(slug, name)].items() if required]
        return list(
            Field.objects.filter(model__system__slug=slug, model__name=name, required=True).values_list(
                "path", flat=True
            )
        )

    def _check_flow(self, where: str, entry: Any) -> None:
        required = ("name", "source_system", "source_model", "target_system", "target_model")
        if not self._entry(where, entry, FLOW_KEYS, required):
            return
        name = entry["name"]
        if any(item.key == name for item in self.flows):
            self.errors.append(f"{where}.name: flow '{name}' appears twice in the document.")
            return
        ends_ok = True
        for end in ("source", "target"):
            slug, model = entry[f"{end}_system"], entry[f"{end}_model"]
            if not self._system_known(slug):
                self.errors.append(f"{where}.{end}_system: no system '{slug}'.")
                ends_ok = False
            elif not self._model_known(slug, model):
                self.errors.append(f"{where}.{end}_model: no model '{model}' in system '{slug}'.")
                ends_ok = False
        existing = (
            Flow.objects.select_related(
                "source_system", "source_model", "target_system", "target_model", "mapping__current_version"
            )
            .filter(name=name)
            .first()
        )
        flow = existing or Flow()
        start_errors = len(self.errors)
        if existing and ends_ok:
            for end in ("source", "target"):
                now = (getattr(existing, f"{end}_system").slug, getattr(existing, f"{end}_model").name)
                if now != (entry[f"{end}_system"], entry[f"{end}_model"]):
                    self.errors.append(
                        f"{where}.{end}_model: flow '{name}' already reads {now[1]} of '{now[0]}'; a flow's "
                        "systems and models cannot change. Give it a new name to create a new flow."
                    )
        values: dict[str, Any] = {"name": name}
        values["description"] = entry.get("description") or ""
        values["event_type"] = str(entry.get("event_type") or "*")
        values["operation"] = entry.get("operation", Operation.UPSERT)
        values["trigger"] = entry.get("trigger", Trigger.REALTIME)
        values["schedule_minutes"] = entry.get("schedule_minutes")
        values["schedule_cron"] = entry.get("schedule_cron") or ""
        values["state"] = entry.get("state", FlowState.ACTIVE)
        if values["operation"] not in Operation.values:
            self.errors.append(
                f"{where}.operation: unknown operation {_shown(values['operation'])} "
                f"(use one of: {', '.join(Operation.values)})."
            )
        if values["trigger"] not in Trigger.values:
            self.errors.append(
                f"{where}.trigger: must be realtime or scheduled, not {_shown(values['trigger'])}."
            )
        if values["state"] not in FlowState.values:
            self.errors.append(
                f"{where}.state: must be one of {', '.join(FlowState.values)}, not {_shown(values['state'])}."
            )
        if values["trigger"] == Trigger.SCHEDULED:
            if values["schedule_cron"]:
                problem = cron_problem(str(values["schedule_cron"]))
                if problem:
                    self.errors.append(f"{where}.schedule_cron: {problem}.")
                values["schedule_minutes"] = None
            elif (
                not isinstance(values["schedule_minutes"], int)
                or isinstance(values["schedule_minutes"], bool)
                or values["schedule_minutes"] < 1
            ):
                self.errors.append(
                    f"{where}.schedule_minutes: a scheduled flow needs schedule_minutes "
                    "(a whole number of minutes) or schedule_cron."
                )
        else:
            values["schedule_minutes"], values["schedule_cron"] = None, ""
        values["filter"] = self._filter(where, entry.get("filter"))
        settings = entry.get("settings") or {}
        if not isinstance(settings, dict):
            self.errors.append(f"{where}.settings: must be a mapping.")
            settings = {}
        unknown = [str(key) for key in settings if key not in FLOW_SETTINGS]
        if unknown:
            self.errors.append(
                f"{where}.settings: unknown setting {', '.join(unknown)} "
                f"(allowed: {', '.join(FLOW_SETTINGS)})."
            )
        probe = Flow(**{key: getattr(flow, key) for key in FLOW_SETTINGS})
        for key in FLOW_SETTINGS:
            if key in settings:
                setattr(probe, key, settings[key])
        probe.name, probe.event_type, probe.description = name, values["event_type"], values["description"]
        try:
            probe.full_clean(
                exclude=[
                    "source_system",
                    "source_model",
                    "target_system",
                    "target_model",
                    "mapping",
                    "operation",
                    "trigger",
                    "state",
                    "filter",
                    "schedule_minutes",
                    "schedule_cron",
                ],
                validate_unique=False,
                validate_constraints=False,
            )
        except ValidationError as exc:
            self.errors.extend(_clean_errors(where, exc))
        for key in (*FLOW_SETTINGS, "name", "event_type", "description"):
            values[key] = getattr(probe, key)
        mapping_name, rules = self._mapping(where, entry.get("mapping"), name)
        if len(self.errors) > start_errors or not ends_ok:
            return
        if values["state"] == FlowState.ACTIVE:
            problems = _mapping_problems(
                rules,
                values["operation"],
                self._required_fields(entry["target_system"], entry["target_model"]),
            )
            if problems:
                self.errors.append(f"{where}.state: the flow cannot be active: {'; '.join(problems)}.")
                return
        values.update({key: entry[key] for key in required})
        item = _Item(where, name, values, existing, extra={"mapping_name": mapping_name, "rules": rules})
        if existing:
            current = {
                key: getattr(existing, key)
                for key in values
                if hasattr(existing, key) and key not in required[1:]
            }
            item.diff = {key: [current[key], values[key]] for key in current if current[key] != values[key]}
            if existing.mapping.name != mapping_name:
                item.diff["mapping.name"] = [existing.mapping.name, mapping_name]
            if existing.mapping.rules != rules:
                item.diff["mapping.rules"] = ["(a new mapping version)", f"{len(rules)} rules"]
            self._count(item, f"update flow '{name}'")
        else:
            self.report.changes.append(
                f"create flow '{name}' ({entry['source_system']}/{entry['source_model']} → "
                f"{entry['target_system']}/{entry['target_model']}, {values['state']}) with {len(rules)} mapping rules"
            )
        self.flows.append(item)

    def _filter(self, where: str, raw: Any) -> dict | None:
        if raw in (None, "", {}):
            return None
        if isinstance(raw, str):
            try:
                return parse_condition_text(raw) or None
            except ConditionError as exc:
                self.errors.append(f"{where}.filter: {exc}.")
                return None
        problems = validate_condition(raw)
        for problem in problems:
            self.errors.append(f"{where}.filter: {problem}.")
        return raw

    def _mapping(self, where: str, raw: Any, flow_name: str) -> tuple[str, list]:
        if raw is None:
            return flow_name, []
        if not isinstance(raw, dict):
            self.errors.append(f"{where}.mapping: must be a mapping with name and rules.")
            return flow_name, []
        unknown = [str(key) for key in raw if key not in MAPPING_KEYS]
        if unknown:
            self.errors.append(
                f"{where}.mapping: unknown setting {', '.join(unknown)} (allowed: name, rules)."
            )
        name = raw.get("name") or flow_name
        if not isinstance(name, str) or len(name) > 200:
            self.errors.append(f"{where}.mapping.name: must be text of at most 200 characters.")
        rules = raw.get("rules") if raw.get("rules") is not None else []
        for error in validate_rules(rules):
            self.errors.append(f"{where}.mapping.rules: {error.message}")
        return str(name), rules if isinstance(rules, list) else []

    def _count(self, item: _Item, label: str) -> None:
        if item.diff:
            shown = ", ".join(
                f"{key} {_shown(before)} → {_shown(after)}"
                if not key.startswith(("fields", "mapping.rules"))
                else f"{key}: {after}"
                for key, (before, after) in item.diff.items()
            )
            self.report.changes.append(f"{label}: {shown}")
        else:
            self.report.unchanged += 1

    # ---- applying -------------------------------------------------------------------------

    def apply(self, actor) -> None:
        for item in self.systems:
            if item.existing and not item.diff:
                continue
            system = item.existing or System()
            for key, value in item.values.items():
                setattr(system, key, value)
            system.save()
            audit_record(actor=actor, verb="import", target=system, diff=item.diff or {"created": True})
        for item in self.models:
            if item.existing and not item.diff:
                continue
            slug, name = item.key
            model = item.existing or DataModel(system=System.objects.get(slug=slug), name=name)
            for key, value in item.values.items():
                setattr(model, key, value)
            model.save()
            if "fields" in item.diff or not item.existing:
                _fields_sync(model, item.extra["fields"])
            audit_record(
                actor=actor,
                verb="import",
                target=model,
                diff={k: v for k, v in item.diff.items()} if item.existing else {"created": True},
            )
        for item in self.flows:
            if item.existing and not item.diff:
                continue
            self._apply_flow(item, actor)

    def _apply_flow(self, item: _Item, actor) -> None:
        values = dict(item.values)
        rules, mapping_name = item.extra["rules"], item.extra["mapping_name"]
        source = DataModel.objects.get(
            system__slug=values.pop("source_system"), name=values.pop("source_model")
        )
        target = DataModel.objects.get(
            system__slug=values.pop("target_system"), name=values.pop("target_model")
        )
        flow = item.existing
        if flow is None:
            mapping = Mapping.objects.create(name=mapping_name, source_model=source, target_model=target)
            if rules:
                mapping_version_save(
                    mapping=mapping, rules=rules, actor=actor, comment="specification import"
                )
            flow = Flow(
                source_system=source.system,
                source_model=source,
                target_system=target.system,
                target_model=target,
                mapping=mapping,
            )
        else:
            mapping = flow.mapping
            if mapping.name != mapping_name:
                mapping.name = mapping_name
                mapping.save(update_fields=["name"])
            if mapping.rules != rules:
                mapping_version_save(
                    mapping=mapping, rules=rules, actor=actor, comment="specification import"
                )
        if values["state"] == FlowState.PAUSED and flow.state != FlowState.PAUSED:
            flow.paused_reason = "paused by a specification import"
        elif values["state"] != FlowState.PAUSED:
            flow.paused_reason = ""
        for key, value in values.items():
            setattr(flow, key, value)
        flow.save()
        audit_record(
            actor=actor, verb="import", target=flow, diff=item.diff if item.existing else {"created": True}
        )


def _fields_diff(stored: list[dict], wanted: list[dict]) -> str:
    before = {f["path"]: f for f in stored}
    after = {f["path"]: {k: v for k, v in f.items() if k != "description" or v} for f in wanted}
    added = [path for path in after if path not in before]
    removed = [path for path in before if path not in after]
    changed = [path for path in after if path in before and before[path] != after[path]]
    parts = []
    for label, paths in (("added", added), ("removed", removed), ("changed", changed)):
        if paths:
            parts.append(f"{label} {', '.join(paths)}")
    return "; ".join(parts) or "reordered"


def _fields_sync(model: DataModel, wanted: list[dict]) -> None:
    """Make the model's fields exactly the document's, in its order."""
    stored = {f.path: f for f in model.fields.all()}
    keep = {spec["path"] for spec in wanted}
    model.fields.exclude(path__in=keep).delete()
    for position, spec in enumerate(wanted):
        current = stored.get(spec["path"]) or Field(model=model, path=spec["path"])
        current.type, current.required = spec["type"], spec["required"]
        current.description, current.position = spec["description"], position
        current.save()


def _mapping_problems(rules: list, operation: str, required: list[str]) -> list[str]:
    """The same checks as hub.services.config.flow_problems, on rules that are not saved yet."""
    if not rules:
        return [] if operation == Operation.DELETE else ["its mapping has no rules"]
    problems = [error.message for error in validate_rules(rules)]
    mapped = {rule.get("target") for rule in rules if isinstance(rule, dict)}
    # A required list or object counts as mapped when a rule writes inside it ("lines[].sku").
    missing = [
        path
        for path in required
        if path not in mapped
        and "[]" not in path
        and not any(t and t.startswith((path + ".", path + "[")) for t in mapped)
    ]
    if missing and operation in (Operation.CREATE, Operation.UPSERT):
        problems.append("required target fields are not mapped: " + ", ".join(missing))
    return problems
