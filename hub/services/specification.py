"""The data-flow specification: the whole configuration as one readable YAML document.

Systems (without secrets, with the vendor template they were set up from), data models with their
fields and lookups, flows with their mapping rules, retry policy and alert rules, and the alert
channels. `spec_export()` writes it with a stable key order, so two exports of the same
configuration are identical and a change shows as a small diff in version control.

`spec_import()` reads it back by natural keys (system slug; model system + name; flow name; channel
name). It checks only the document's shape (sections, keys, types, names it refers to); every change
is then made by the same services the pages and the API call, which judge the values, refuse with
their own words and write their own audit entries. The whole import runs in one transaction: a dry
run, or any refusal, rolls it back, so a dry run reports exactly what a real run would do or refuse.
Each entry runs in its own savepoint, undone when it changed nothing, so importing a document the hub
already matches writes no audit entry and no mapping version.

Inside an item the document names, the document is the whole truth: fields of a model, mapping rules
and alert rules it does not list are removed (a key left out altogether leaves them alone). Whole
systems, models, flows and channels it does not list are removed only when asked (`remove_unlisted`),
and only for the sections the document has. Stored secrets are never exported nor changed.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from common import strictjson, strictyaml
from connectors.models import AUTH_SECRET_FIELDS, System
from hub.alerts.channels import CHANNELS
from hub.alerts.models import AlertRule, Channel
from hub.alerts.services import (
    RULE_FIELDS as ALERT_RULE_FIELDS,
)
from hub.alerts.services import (
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    channel_create,
    channel_delete,
    channel_update,
)
from hub.models import Flow, FlowState, Operation, Trigger
from hub.services.audit import audit_record
from hub.services.datamodels import (
    data_model_create,
    data_model_delete,
    data_model_update,
    field_add,
    field_order_set,
    field_remove,
    field_update,
)
from hub.services.errors import ConfigError, validation_message
from hub.services.flows import condition_text, flow_create, flow_delete, flow_state_set, flow_update
from hub.services.mappings import mapping_rename, mapping_version_save
from hub.services.systems import system_create, system_delete, system_update
from mappings.conditions import ConditionError, parse_condition_text
from mappings.models import DataModel, Field
from mappings.schema import FieldSpec

FORMAT = 1
SET, NOT_SET = "set", "not set"


@dataclass(frozen=True)
class _Kind:
    """The type a document key must have; None always fits (the key then takes its default)."""

    label: str
    types: tuple[type, ...]

    def fits(self, value: Any) -> bool:
        if value is None or object in self.types:
            return True
        if isinstance(value, bool):  # YAML true/false are not numbers here
            return bool in self.types
        return isinstance(value, self.types)


TEXT = _Kind("text", (str,))
NUMBER = _Kind("a number", (int, float))
WHOLE = _Kind("a whole number", (int,))
FLAG = _Kind("true or false", (bool,))
MAPPING = _Kind("a mapping", (dict,))
LIST = _Kind("a list", (list,))
CONDITION = _Kind("text or a mapping", (str, dict))
ANY = _Kind("anything", (object,))

# Each section's keys in the document's order, with their types.
SYSTEM_SHAPE = {
    "slug": TEXT, "name": TEXT, "kind": TEXT, "connector": TEXT, "base_url": TEXT, "api_version": TEXT,
    "api_version_in": TEXT, "api_version_name": TEXT,
    "auth_scheme": TEXT, "auth_config": MAPPING, "credentials": ANY, "rate_limit_per_second": NUMBER,
    "max_in_flight": WHOLE, "connect_timeout": NUMBER, "read_timeout": NUMBER, "webhook_secret": ANY,
    "signature_scheme": TEXT,
    "signature_header": TEXT, "signature_encoding": TEXT, "signature_prefix": TEXT,
    "signature_tolerance_seconds": WHOLE, "event_type_path": TEXT, "idempotency_key_path": TEXT,
    "record_path": TEXT, "vendor_template": TEXT, "settings": MAPPING,
}  # fmt: skip
# A new System field is one line above: the export reads it from System.redacted(), the import
# hands it to system_create/system_update.
SECRET_STATUS_KEYS = ("credentials", "webhook_secret")  # shown as set / not set; never imported
MODEL_SETTINGS = ("resource_path", "id_path", "cursor_field", "description")
# The lookup by external id (see hub.services.datamodels.LOOKUP); set once the fields exist.
LOOKUP_SHAPE = {"lookup_field": TEXT, "lookup_param": TEXT, "create_by_key": FLAG}
MODEL_SHAPE = {
    "system": TEXT, "name": TEXT, **dict.fromkeys(MODEL_SETTINGS, TEXT), **LOOKUP_SHAPE, "fields": LIST,
}  # fmt: skip
FIELD_SHAPE = {"path": TEXT, "type": TEXT, "required": FLAG, "description": TEXT, "unit": TEXT}
# What the target accepts beyond the type (mappings.contracts); written only when set.
FIELD_CHECKS = {"format": TEXT, "enum": LIST, "min_length": WHOLE, "max_length": WHOLE}
FIELD_SHAPE |= FIELD_CHECKS
FLOW_SHAPE = {
    "name": TEXT, "description": TEXT, "source_system": TEXT, "source_model": TEXT, "event_type": TEXT,
    "target_system": TEXT, "target_model": TEXT, "operation": TEXT, "trigger": TEXT, "schedule_minutes": WHOLE,
    "schedule_cron": TEXT, "filter": CONDITION, "state": TEXT, "settings": MAPPING, "mapping": MAPPING,
    "alert_rules": LIST,
}  # fmt: skip

# A flow's policies: exported as they are stored, imported through flow_create(tuning=) and
# flow_update, so a new one (a name in hub.services.flows.TUNING) is one line here.
SETTINGS_SHAPE = {
    "max_attempts": WHOLE, "max_age_seconds": WHOLE, "retry_base_seconds": NUMBER, "retry_max_seconds": NUMBER,
    "retry_on": LIST, "silence_after_minutes": WHOLE, "poll_page_size": WHOLE, "drift_policy": TEXT,
}  # fmt: skip
ALERT_RULE_SHAPE = {
    "kind": TEXT, "threshold": NUMBER, "window_minutes": WHOLE, "renotify_minutes": WHOLE, "enabled": FLAG
}  # fmt: skip
CHANNEL_SHAPE = {"name": TEXT, "kind": TEXT, "enabled": FLAG, "settings": MAPPING, "secrets": ANY}
FLOW_SETTINGS = tuple(SETTINGS_SHAPE)
MAPPING_SHAPE = {"name": TEXT, "rules": LIST}
SYSTEM_KEYS, MODEL_KEYS, FIELD_KEYS = tuple(SYSTEM_SHAPE), tuple(MODEL_SHAPE), tuple(FIELD_SHAPE)
FLOW_KEYS, MAPPING_KEYS = tuple(FLOW_SHAPE), tuple(MAPPING_SHAPE)
# "alert_rules" at the top is what format 1 first reserved; rules now live in their flow's entry.
SECTIONS = ("format", "systems", "models", "flows", "channels", "alert_rules")
ITEMS = ("systems", "models", "flows", "channels")
FLOW_ENDS = ("source_system", "source_model", "target_system", "target_model")
FLOW_RELATED = ("source_system", "source_model", "target_system", "target_model", "mapping__current_version")
IMPORT_COMMENT = "specification import"

HEADER = """\
# Integration hub: data-flow specification (format {format})
# Exported {when}.
#
# The whole configuration: systems, data models with their fields, flows with their mapping
# rules, retry policy and alert rules, and alert channels. Secrets are never included:
# credentials, webhook secrets and channel secrets show only "set" or "not set", and an import
# never changes them. Import with the "Import specification" page, the API or
# `manage.py spec_import FILE --dry-run`: it shows what would be added, changed and removed first.
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


class _InlineList(list):
    """A short list written on one line, e.g. a flow's retry_on: [server_error, timeout]."""


def _inline_list_representer(dumper: yaml.SafeDumper, value: _InlineList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)


_Dumper.add_representer(str, _text_representer)
_Dumper.add_representer(_Inline, _inline_representer)
_Dumper.add_representer(_InlineList, _inline_list_representer)


def spec_document() -> dict[str, Any]:
    """The configuration as plain data, in the document's order."""
    systems = list(System.objects.order_by("slug"))
    models = list(
        DataModel.objects.select_related("system").prefetch_related("fields").order_by("system__slug", "name")
    )
    flows = list(Flow.objects.select_related(*FLOW_RELATED).prefetch_related("alert_rules").order_by("name"))
    return {
        "format": FORMAT,
        "systems": [_system_entry(system) for system in systems],
        "models": [_model_entry(model) for model in models],
        "flows": [_flow_entry(flow) for flow in flows],
        "channels": [_channel_entry(channel) for channel in Channel.objects.order_by("name")],
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
        "lookup_field": model.lookup_field,
        "lookup_param": model.lookup_param,
        "create_by_key": model.create_by_key,
        "fields": [
            _Inline(_field_entry(f)) for f in sorted(model.fields.all(), key=lambda f: (f.position, f.path))
        ],
    }


def _field_entry(f: Field) -> dict[str, Any]:
    entry = {"path": f.path, "type": f.type, "required": f.required}
    if f.description:
        entry["description"] = f.description
    if f.unit:
        entry["unit"] = f.unit
    for key in FIELD_CHECKS:
        if getattr(f, key) not in (None, "", []):
            entry[key] = getattr(f, key)
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
    entry["settings"]["retry_on"] = _InlineList(sorted(flow.retry_on or []))
    entry["mapping"] = {"name": flow.mapping.name, "rules": flow.mapping.rules}
    entry["alert_rules"] = [_Inline(_alert_rule_entry(rule)) for rule in _alert_rules(flow)]
    return entry


def _alert_rules(flow: Flow) -> list[AlertRule]:
    """The flow's rules in the document's order, which is also how an import pairs them up."""
    return sorted(flow.alert_rules.all(), key=lambda rule: (rule.kind, rule.pk))


def _alert_rule_entry(rule: AlertRule) -> dict[str, Any]:
    entry = {"kind": rule.kind}
    entry.update({name: getattr(rule, name) for name in ALERT_RULE_FIELDS})
    return entry


def _channel_entry(channel: Channel) -> dict[str, Any]:
    kind = CHANNELS.get(channel.kind)
    secret_names = [setting.name for setting in kind.settings if setting.secret] if kind else []
    return {
        "name": channel.name,
        "kind": channel.kind,
        "enabled": channel.enabled,
        "settings": channel.settings,
        "secrets": {name: SET if (channel.secrets or {}).get(name) else NOT_SET for name in secret_names},
    }


# --------------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------------


ADD, CHANGE, REMOVE = "add", "change", "remove"
ACTION_WORDS = {ADD: "create", CHANGE: "update", REMOVE: "remove"}


@dataclass
class ItemChange:
    """One system, model, flow or channel the import adds, changes or removes, and how."""

    section: str  # system, model, flow, channel
    name: str  # as the document names it: slug, system/name, name
    action: str  # ADD, CHANGE, REMOVE
    about: str = ""  # a few words on a new or removed item
    values: list[tuple[str, Any, Any]] = field(default_factory=list)  # setting, before, after
    added: list[str] = field(default_factory=list)  # parts added inside the item
    removed: list[str] = field(default_factory=list)  # parts taken away inside the item
    target: Any = field(default=None, repr=False, compare=False)  # the stored row, for the audit entry

    def __str__(self) -> str:
        text = f"{ACTION_WORDS[self.action]} {self.section} '{self.name}'"
        if self.about:
            text += f" ({self.about})"
        details = [f"{key} {_shown(before)} → {_shown(after)}" for key, before, after in self.values]
        details += [f"add {part}" for part in self.added]
        details += [f"remove {part}" for part in self.removed]
        return f"{text}: {', '.join(details)}" if details else text

    @property
    def rows(self) -> list[tuple[str, str, str]]:
        """The changed settings as a page shows them: setting, before, after, in short text."""
        return [(key, _plain(before), _plain(after)) for key, before, after in self.values]

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "action": self.action,
            "about": self.about,
            "values": [
                {"setting": key, "before": before, "after": after} for key, before, after in self.values
            ],
            "added": self.added,
            "removed": self.removed,
            "text": str(self),
        }


@dataclass
class SpecReport:
    """What an import found: errors (nothing applied), or the changes it made or would make."""

    dry_run: bool = False
    remove_unlisted: bool = False
    errors: list[str] = field(default_factory=list)
    changes: list[ItemChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unchanged: int = 0
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def of(self, action: str) -> list[ItemChange]:
        return [change for change in self.changes if change.action == action]

    @property
    def added(self) -> list[ItemChange]:
        return self.of(ADD)

    @property
    def changed(self) -> list[ItemChange]:
        return self.of(CHANGE)

    @property
    def removed(self) -> list[ItemChange]:
        return self.of(REMOVE)

    def summary(self) -> str:
        if self.errors:
            return f"{len(self.errors)} problems found; nothing was changed."
        if not self.changes:
            return "No changes: the hub already matches this document."
        verb = "would change" if self.dry_run else "changed"
        return f"{len(self.changes)} {'item' if len(self.changes) == 1 else 'items'} {verb}; {self.unchanged} already up to date."

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "applied": self.applied,
            "remove_unlisted": self.remove_unlisted,
            "summary": self.summary(),
            "errors": self.errors,
            "added": [change.as_dict() for change in self.added],
            "changed": [change.as_dict() for change in self.changed],
            "removed": [change.as_dict() for change in self.removed],
            "unchanged": self.unchanged,
            "notes": self.notes,
        }


class _RollBack(Exception):
    """Undoes the whole import: a dry run, or a run in which a service refused an entry."""


class _Unchanged(Exception):
    """Undoes one entry's savepoint: the services were called, but the item came out as it was, so
    whatever they wrote (audit entries of no-op saves) goes."""


def spec_import(*, text: str, actor, dry_run: bool = False, remove_unlisted: bool = False) -> SpecReport:
    """Check the document's shape, then make its changes through the services in one transaction,
    kept only when every entry was accepted and this is not a dry run. With `remove_unlisted`, the
    systems, models, flows and channels a section of the document does not list are removed."""
    report = SpecReport(dry_run=dry_run, remove_unlisted=remove_unlisted)
    doc = _load(text, report)
    if doc is None:
        return report
    importer = _Importer(doc, report, actor)
    importer.check()
    if report.errors:
        return report
    try:
        with transaction.atomic():
            importer.apply()
            if remove_unlisted:
                importer.remove_unlisted()
            if report.errors or dry_run:
                raise _RollBack
    except _RollBack:
        pass
    if report.errors:
        report.changes.clear()
        report.notes.clear()
    report.applied = not dry_run and not report.errors and bool(report.changes)
    return report


def _load(text: str, report: SpecReport) -> dict | None:
    doc = _read(text, report)
    if doc is None:
        return None
    report.errors.extend(_sections_problems(doc))
    return None if report.errors else doc


def _read(text: str, report: SpecReport) -> dict | None:
    if not isinstance(text, str) or not text.strip():
        report.errors.append("The document is empty.")
        return None
    try:
        doc = strictyaml.loads(text, aliases=False)
    except strictyaml.YAMLInputError as exc:
        report.errors.append(f"The document cannot be read at {exc.located}.")
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "it is not valid YAML"
        report.errors.append(f"The document cannot be read{where}: {problem}.")
        return None
    if not isinstance(doc, dict):
        report.errors.append("The document must be a YAML mapping with systems, models and flows.")
        return None
    try:
        strictjson.check_value(doc)
    except strictjson.JSONInputError as exc:
        report.errors.append(f"The document holds a value that cannot be stored: {exc.message}.")
        return None
    return doc


def _sections_problems(doc: dict) -> list[str]:
    problems = []
    unknown = [str(key) for key in doc if key not in SECTIONS]
    if unknown:
        problems.append(f"Unknown section {', '.join(unknown)} (expected: {', '.join(SECTIONS)}).")
    if doc.get("format", FORMAT) != FORMAT:
        problems.append(f"format: this hub reads format {FORMAT}, not {doc.get('format')!r}.")
    for section in (*ITEMS, "alert_rules"):
        if doc.get(section) is not None and not isinstance(doc[section], list):
            problems.append(f"{section}: must be a list.")
    if doc.get("alert_rules"):
        problems.append("alert_rules: a flow's alert rules go in its own entry, as flows[].alert_rules.")
    return problems


def _plain(value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    else:
        text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 60 else text[:57] + "…"


class _Importer:
    """Checks the document's shape, then applies it entry by entry through the services."""

    def __init__(self, doc: dict, report: SpecReport, actor) -> None:
        self.doc = doc
        self.report = report
        self.errors = report.errors
        self.actor = actor
        # Natural keys the document defines, so later entries may refer to new ones.
        self.system_slugs: set[str] = set()
        self.model_keys: set[tuple[str, str]] = set()
        self.flow_names: set[str] = set()
        self.channel_names: set[str] = set()
        self.filters: dict[int, dict | None] = {}  # flows' filters, read from the text syntax

    def _entries(self, section: str) -> list[tuple[int, Any]]:
        return list(enumerate(self.doc.get(section) or []))

    # ---- the document's shape ---------------------------------------------------------------

    def check(self) -> None:
        for index, entry in self._entries("systems"):
            self._check_system(f"systems[{index}]", entry)
        for index, entry in self._entries("models"):
            self._check_model(f"models[{index}]", entry)
        for index, entry in self._entries("flows"):
            self._check_flow(index, entry)
        for index, entry in self._entries("channels"):
            where = f"channels[{index}]"
            if self._shape(where, entry, CHANNEL_SHAPE, ("name", "kind")):
                self._once(f"{where}.name", entry["name"], self.channel_names, f"channel '{entry['name']}'")

    def _shape(self, where: str, entry: Any, shape: dict[str, _Kind], required: tuple[str, ...] = ()) -> bool:
        """Known keys, required keys present, each value of its key's type."""
        if not isinstance(entry, dict):
            self.errors.append(f"{where}: must be a mapping of settings.")
            return False
        before = len(self.errors)
        unknown = [str(key) for key in entry if key not in shape]
        if unknown:
            self.errors.append(
                f"{where}: unknown setting {', '.join(unknown)} (allowed: {', '.join(shape)})."
            )
        for key in required:
            if entry.get(key) in (None, ""):
                self.errors.append(f"{where}.{key}: is required.")
        for key, kind in shape.items():
            if entry.get(key) not in (None, "") and not kind.fits(entry[key]):
                self.errors.append(f"{where}.{key}: must be {kind.label}.")
        return len(self.errors) == before

    def _once(self, where: str, key: Any, seen: set, what: str) -> bool:
        if key in seen:
            self.errors.append(f"{where}: {what} appears twice in the document.")
            return False
        seen.add(key)
        return True

    def _system_known(self, slug: str) -> bool:
        return slug in self.system_slugs or System.objects.filter(slug=slug).exists()

    def _model_known(self, slug: str, name: str) -> bool:
        return (slug, name) in self.model_keys or DataModel.objects.filter(
            system__slug=slug, name=name
        ).exists()

    def _check_system(self, where: str, entry: Any) -> None:
        if self._shape(where, entry, SYSTEM_SHAPE, ("slug", "name")):
            self._once(f"{where}.slug", entry["slug"], self.system_slugs, f"system '{entry['slug']}'")

    def _check_model(self, where: str, entry: Any) -> None:
        if not self._shape(where, entry, MODEL_SHAPE, ("system", "name")):
            return
        slug, name = entry["system"], entry["name"]
        if not self._system_known(slug):
            self.errors.append(f"{where}.system: no system '{slug}' (in this document or in the hub).")
            return
        if self._once(f"{where}.name", (slug, name), self.model_keys, f"model '{name}' of system '{slug}'"):
            paths: set[str] = set()
            for index, spec in enumerate(entry.get("fields") or []):
                at = f"{where}.fields[{index}]"
                if self._shape(at, spec, FIELD_SHAPE, ("path",)):
                    self._once(f"{at}.path", spec["path"], paths, f"field '{spec['path']}'")

    def _check_flow(self, index: int, entry: Any) -> None:
        where = f"flows[{index}]"
        if not self._shape(where, entry, FLOW_SHAPE, ("name", *FLOW_ENDS)):
            return
        if not self._once(f"{where}.name", entry["name"], self.flow_names, f"flow '{entry['name']}'"):
            return
        for end in ("source", "target"):
            slug, model = entry[f"{end}_system"], entry[f"{end}_model"]
            if not self._system_known(slug):
                self.errors.append(f"{where}.{end}_system: no system '{slug}'.")
            elif not self._model_known(slug, model):
                self.errors.append(f"{where}.{end}_model: no model '{model}' in system '{slug}'.")
        self._shape(f"{where}.settings", entry.get("settings") or {}, SETTINGS_SHAPE)
        self._shape(f"{where}.mapping", entry.get("mapping") or {}, MAPPING_SHAPE)
        for number, rule in enumerate(entry.get("alert_rules") or []):
            self._shape(f"{where}.alert_rules[{number}]", rule, ALERT_RULE_SHAPE, ("kind",))
        self.filters[index] = self._filter(where, entry.get("filter"))

    def _filter(self, where: str, raw: Any) -> dict | None:
        """A filter in the text syntax becomes its structure; the flow services judge the structure."""
        if not isinstance(raw, str):
            return raw or None
        try:
            return parse_condition_text(raw) or None
        except ConditionError as exc:
            self.errors.append(f"{where}.filter: {exc}.")
            return None

    # ---- applying, through the services -----------------------------------------------------

    def apply(self) -> None:
        for index, entry in self._entries("systems"):
            self._run(f"systems[{index}] '{entry['slug']}'", self._system, entry)
        for index, entry in self._entries("models"):
            self._run(f"models[{index}] '{entry['system']}/{entry['name']}'", self._model, entry)
        for index, entry in self._entries("flows"):
            self._run(f"flows[{index}] '{entry['name']}'", self._flow, entry, self.filters[index])
        for index, entry in self._entries("channels"):
            self._run(f"channels[{index}] '{entry['name']}'", self._channel, entry)

    def _run(self, where: str, change: Callable[..., ItemChange | None], *args: Any) -> None:
        """One entry in its own savepoint: a refusal undoes only that entry's changes and is
        reported; an entry that changed nothing is undone too, so it leaves no trace."""
        try:
            with transaction.atomic():
                item = change(*args)
                if item is None:
                    raise _Unchanged
        except _Unchanged:
            self.report.unchanged += 1
        except ConfigError as exc:
            self.errors.append(f"{where}: {exc}")
        except ValidationError as exc:
            self.errors.append(f"{where}: {validation_message(exc)}")
        else:
            self.report.changes.append(item)
            audit_diff = {"created": True} if item.action == ADD else item.as_dict()
            if item.action != REMOVE:
                audit_record(actor=self.actor, verb="import", target=item.target, diff=audit_diff)

    def _added(self, section: str, name: str, target: Any, about: str = "") -> ItemChange:
        return ItemChange(section=section, name=name, action=ADD, about=about, target=target)

    def _changed(self, section: str, name: str, target: Any, before: dict, after: dict) -> ItemChange | None:
        """What differs between two document entries of one item; None when nothing does."""
        item = ItemChange(section=section, name=name, action=CHANGE, target=target)
        for key in {**before, **after}:
            old, new = before.get(key), after.get(key)
            if old == new:
                continue
            parts = PARTS.get(key)
            if parts is None:
                item.values.append((key, old, new))
            else:
                _parts_diff(item, parts, old or [], new or [])
        return item if (item.values or item.added or item.removed) else None

    def _system(self, entry: dict) -> ItemChange | None:
        slug = entry["slug"]
        fields = {key: value for key, value in entry.items() if key not in SECRET_STATUS_KEYS}
        fields = {
            key: ({} if value is None and key in ("auth_config", "settings") else value)
            for key, value in fields.items()
        }
        system = System.objects.filter(slug=slug).first()
        if system is None:
            system = system_create(fields=fields, credentials={}, actor=self.actor)
            self._note_secrets(entry, system)
            return self._added("system", slug, system, system.name)
        before = _system_entry(system)
        # system_update audits every call, so it is called only for what differs.
        changed = {key: value for key, value in fields.items() if getattr(system, key) != value}
        if changed:
            system_update(system=system, fields=changed, actor=self.actor)
        system = System.objects.get(pk=system.pk)
        return self._changed("system", slug, system, before, _system_entry(system))

    def _note_secrets(self, entry: dict, system: System) -> None:
        wanted = entry.get("credentials")
        if (
            AUTH_SECRET_FIELDS.get(system.auth_scheme)
            or (isinstance(wanted, dict) and SET in wanted.values())
            or entry.get("webhook_secret") == SET
        ):
            self.report.notes.append(
                f"System '{system.slug}' is new: secrets are never imported, so enter its credentials and "
                "webhook secret on its page before its flows can run."
            )

    def _model(self, entry: dict) -> None:
        slug, name = entry["system"], entry["name"]
        specs = [_field_spec(spec) for spec in entry.get("fields") or []]
        model = DataModel.objects.select_related("system").filter(system__slug=slug, name=name).first()
        if model is None:
            system = System.objects.filter(slug=slug).first()
            if system is None:
                return None  # the system's own entry was refused, and the report says why
            settings = {key: DataModel._meta.get_field(key).get_default() for key in MODEL_SETTINGS}
            model = data_model_create(
                system=system, name=name, fields=specs, sample=None, actor=self.actor,
                **{**settings, **_given(entry, MODEL_SETTINGS)}, **_lookup_given(entry),
            )  # fmt: skip
            return self._added("model", f"{slug}/{name}", model, f"{len(specs)} fields")
        before = _model_entry(model)
        data_model_update(model=model, actor=self.actor, **_given(entry, MODEL_SETTINGS))
        lookup = _lookup_given(entry)
        wanted_paths = {spec.path for spec in specs} if entry.get("fields") is not None else None
        if wanted_paths is not None and model.lookup_field and model.lookup_field not in wanted_paths:
            # The document removes the field the model is looked up by: let go of it first.
            data_model_update(
                model=model, actor=self.actor, lookup_field="", lookup_param="", create_by_key=False
            )
        if wanted_paths is not None:
            self._fields_set(model, specs)
        if lookup:  # after the fields, so that a lookup may name a field the document adds
            data_model_update(model=model, actor=self.actor, **lookup)
        model = DataModel.objects.select_related("system").get(pk=model.pk)
        return self._changed("model", f"{slug}/{name}", model, before, _model_entry(model))

    def _fields_set(self, model: DataModel, specs: list[FieldSpec]) -> None:
        """Make the model's fields the document's, in its order."""
        stored = {f.path: f for f in model.fields.all()}
        wanted = {spec.path for spec in specs}
        for path, stored_field in stored.items():
            if path not in wanted:
                field_remove(field=stored_field, actor=self.actor)
        for spec in specs:
            given = {
                "type": spec.type,
                "required": spec.required,
                "description": spec.description,
                "unit": spec.unit,
            }
            checks = {
                "format": spec.format,
                "enum": list(spec.enum),
                "min_length": spec.min_length,
                "max_length": spec.max_length,
            }
            if spec.path in stored:
                field_update(field=stored[spec.path], actor=self.actor, **given, **checks)
                continue
            added = field_add(model=model, path=spec.path, actor=self.actor, **given)
            if any(value not in (None, "", []) for value in checks.values()):
                field_update(field=added, actor=self.actor, **checks)
        field_order_set(model=model, paths=[spec.path for spec in specs], actor=self.actor)

    def _flow(self, entry: dict, condition: dict | None) -> ItemChange | None:
        ends = _flow_ends(entry)
        if ends is None:
            return None  # the entry of one of its models was refused, and the report says why
        name, mapping = entry["name"], entry.get("mapping") or {}
        flow = Flow.objects.select_related(*FLOW_RELATED).filter(name=name).first()
        before = _flat(_flow_entry(flow)) if flow else None
        flow = self._flow_settle(flow, entry, ends, condition, mapping.get("name") or "")
        rules = mapping.get("rules")
        if rules is not None and rules != flow.mapping.rules:
            mapping_version_save(mapping=flow.mapping, rules=rules, actor=self.actor, comment=IMPORT_COMMENT)
        if entry.get("alert_rules") is not None:
            self._alert_rules_set(flow, entry["alert_rules"])
        state = entry.get("state") or FlowState.ACTIVE
        flow_state_set(flow=flow, state=state, actor=self.actor, reason="paused by a specification import")
        flow = Flow.objects.select_related(*FLOW_RELATED).get(pk=flow.pk)
        if before is not None:
            return self._changed("flow", name, flow, before, _flat(_flow_entry(flow)))
        about = (
            f"{entry['source_system']}/{entry['source_model']} → {entry['target_system']}/"
            f"{entry['target_model']}, {flow.state}, {len(flow.mapping.rules)} mapping rules"
        )
        return self._added("flow", name, flow, about)

    def _alert_rules_set(self, flow: Flow, wanted: list[dict]) -> None:
        """Make the flow's alert rules the document's: rules of a kind pair up in order, the ones
        left over on either side are added or removed."""
        stored: dict[str, list[AlertRule]] = {}
        for rule in _alert_rules(flow):
            stored.setdefault(rule.kind, []).append(rule)
        for spec in wanted:
            values = {key: spec[key] for key in ALERT_RULE_FIELDS if key in spec}
            if values.get("enabled") is None:
                values.pop("enabled", None)
            same_kind = stored.get(spec["kind"]) or []
            if same_kind:
                alert_rule_update(rule=same_kind.pop(0), actor=self.actor, **values)
            else:
                alert_rule_create(flow=flow, kind=spec["kind"], actor=self.actor, **values)
        for left_over in stored.values():
            for rule in left_over:
                alert_rule_delete(rule=rule, actor=self.actor)

    def _channel(self, entry: dict) -> ItemChange | None:
        name, kind = entry["name"], entry["kind"]
        values = {key: _setting_text(value) for key, value in (entry.get("settings") or {}).items()}
        enabled = entry.get("enabled") is not False
        channel = Channel.objects.filter(name=name).first()
        if channel is None:
            needed = [s.label for s in getattr(CHANNELS.get(kind), "settings", ()) if s.secret and s.required]
            if needed:
                raise ConfigError(
                    f"its {', '.join(needed).lower()} is a secret, and secrets are never imported: add the "
                    "channel on the Alerts page, then import the document again"
                )
            channel = channel_create(kind=kind, name=name, values=values, enabled=enabled, actor=self.actor)
            return self._added("channel", name, channel, channel.kind_label)
        if channel.kind != kind:
            raise ConfigError(
                f"it is a {channel.kind} channel in the hub and a {kind} channel in the document; a "
                "channel's kind cannot change: give the new one another name"
            )
        before = _channel_entry(channel)
        channel = channel_update(channel=channel, name=name, values=values, enabled=enabled, actor=self.actor)
        return self._changed("channel", name, channel, before, _channel_entry(channel))

    # ---- what the document does not list ---------------------------------------------------------

    def remove_unlisted(self) -> None:
        """Remove what a section of the document leaves out; a section the document lacks is left
        alone. Flows go first, so the models and systems they used can follow."""
        flows = [entry for _, entry in self._entries("flows")]
        # What a listed model or flow refers to counts as listed: removing it would take them along.
        ends = {
            (flow[f"{end}_system"], flow[f"{end}_model"]) for flow in flows for end in ("source", "target")
        }
        models = {(entry["system"], entry["name"]) for _, entry in self._entries("models")} | ends
        listed = {
            "flows": {flow["name"] for flow in flows},
            "models": models,
            "systems": {entry["slug"] for _, entry in self._entries("systems")}
            | {slug for slug, _ in models},
            "channels": {entry["name"] for _, entry in self._entries("channels")},
        }
        present = {section for section in ITEMS if self.doc.get(section) is not None}
        if "flows" in present:
            for flow in Flow.objects.exclude(name__in=listed["flows"]).order_by("name"):
                self._remove(f"flow '{flow.name}'", "flow", flow.name, flow_delete, flow=flow)
        if "models" in present:
            for model in DataModel.objects.select_related("system").order_by("system__slug", "name"):
                key = (model.system.slug, model.name)
                if key not in listed["models"]:
                    self._remove(
                        f"model '{key[0]}/{key[1]}'", "model", "/".join(key), data_model_delete, model=model
                    )
        if "systems" in present:
            for system in System.objects.exclude(slug__in=listed["systems"]).order_by("slug"):
                self._remove(f"system '{system.slug}'", "system", system.slug, system_delete, system=system)
        if "channels" in present:
            for channel in Channel.objects.exclude(name__in=listed["channels"]).order_by("name"):
                self._remove(
                    f"channel '{channel.name}'", "channel", channel.name, channel_delete, channel=channel
                )

    def _remove(self, where: str, section: str, name: str, service: Callable, **given: Any) -> None:
        def removal() -> ItemChange:
            service(actor=self.actor, **given)
            return ItemChange(section=section, name=name, action=REMOVE, about="not in the document")

        self._run(f"{where} (not in the document)", removal)

    def _flow_settle(
        self, flow: Flow | None, entry: dict, ends: tuple, condition: dict | None, mapping_name: str
    ) -> Flow:
        """Create the flow, or bring its settings and mapping name in line with the entry."""
        source, target = ends
        settings = {
            "description": entry.get("description") or "",
            "event_type": entry.get("event_type") or "*",
            "operation": entry.get("operation") or Operation.UPSERT,
            "trigger": entry.get("trigger") or Trigger.REALTIME,
            "schedule_minutes": entry.get("schedule_minutes"),
            "schedule_cron": entry.get("schedule_cron") or "",
            "filter": condition,
        }
        tuning = entry.get("settings") or {}
        if flow is None:
            return flow_create(
                actor=self.actor, name=entry["name"], source_model=source, target_model=target,
                mapping_name=mapping_name, tuning=tuning, **settings,
            )  # fmt: skip
        moved = {
            key: model for key, model in (("source_model", source), ("target_model", target))
            if getattr(flow, f"{key}_id") != model.pk
        }  # fmt: skip
        flow_update(flow=flow, actor=self.actor, **settings, **tuning, **moved)
        if mapping_name:
            mapping_rename(mapping=flow.mapping, name=mapping_name, actor=self.actor)
        return flow


def _given(entry: dict, keys: tuple[str, ...]) -> dict[str, str]:
    """The entry's values for these text keys, an empty value standing for ""."""
    return {key: entry[key] or "" for key in keys if key in entry}


def _lookup_given(entry: dict) -> dict[str, Any]:
    """The entry's lookup settings, an empty value standing for none."""
    given = _given(entry, ("lookup_field", "lookup_param"))
    if "create_by_key" in entry:
        given["create_by_key"] = bool(entry["create_by_key"])
    return given


def _field_spec(spec: dict) -> FieldSpec:
    return FieldSpec(
        path=spec["path"],
        type=spec.get("type") or "string",
        required=bool(spec.get("required")),
        description=spec.get("description") or "",
        unit=spec.get("unit") or "",
        format=spec.get("format") or "",
        enum=tuple(spec.get("enum") or ()),
        min_length=spec.get("min_length"),
        max_length=spec.get("max_length"),
    )


def _flow_ends(entry: dict) -> tuple[DataModel, DataModel] | None:
    source, target = (
        DataModel.objects.select_related("system")
        .filter(system__slug=entry[f"{end}_system"], name=entry[f"{end}_model"])
        .first()
        for end in ("source", "target")
    )
    return (source, target) if source and target else None


def _flat(entry: dict) -> dict[str, Any]:
    """A flow's document entry with its settings and mapping as top-level keys, for diffs."""
    flat = {key: value for key, value in entry.items() if key not in ("settings", "mapping")}
    flat.update(entry["settings"])
    flat.update({f"mapping.{key}": value for key, value in entry["mapping"].items()})
    return flat


def _setting_text(value: Any) -> str:
    """A channel setting as its form input holds it: lists comma-separated."""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class _Parts:
    """A list inside an item whose members the preview names one by one (fields, rules)."""

    noun: str
    key: Callable[[dict], str]


def _rule_key(rule: Any) -> str:
    return str(rule.get("target", "")) if isinstance(rule, dict) else repr(rule)


PARTS = {
    "fields": _Parts("field", lambda spec: spec["path"]),
    "mapping.rules": _Parts("mapping rule for", _rule_key),
    "alert_rules": _Parts("alert rule", lambda rule: rule["kind"]),
}


def _keyed(parts: _Parts, members: list) -> dict[str, Any]:
    """Members by key; a repeated key is told apart by its number (the second "silence" rule)."""
    keyed: dict[str, Any] = {}
    for member in members:
        key = parts.key(member)
        unique, number = key, 2
        while unique in keyed:
            unique, number = f"{key} #{number}", number + 1
        keyed[unique] = member
    return keyed


def _parts_diff(item: ItemChange, parts: _Parts, before: list, after: list) -> None:
    old, new = _keyed(parts, before), _keyed(parts, after)
    added = [f"{parts.noun} '{key}'" for key in new if key not in old]
    removed = [f"{parts.noun} '{key}'" for key in old if key not in new]
    item.added += added
    item.removed += removed
    for key in new:
        if key in old and old[key] != new[key]:
            changed = {k: [old[key].get(k), v] for k, v in new[key].items() if old[key].get(k) != v}
            changed |= {k: [v, None] for k, v in old[key].items() if k not in new[key]}
            for setting, (was, now) in changed.items():
                item.values.append((f"{parts.noun} '{key}' {setting}", was, now))
    if not (added or removed) and list(old) != list(new):
        item.values.append((f"order of {parts.noun}s", ", ".join(old), ", ".join(new)))
