"""Forms of the dead-letter pages: inbox filters, bulk actions, replay, fix and replay (field by
field from the flow's source model, or raw JSON), "it arrived", discard."""

import copy
import json
import math
import re
from typing import Any

from django import forms

from common import strictjson
from common.limits import LIMITS, MB, row_id
from common.paths import get_path, set_path
from connectors.base import ErrorClass
from connectors.models import System
from dlq.models import BulkJob
from hub.models import Flow
from hub.ui.forms.datamodels import json_form_error
from hub.ui.forms.history import TimeRangeForm
from mappings.models import Field

DISCARD_REASON_REQUIRED = "Say why you discard it: the reason is kept in the audit log."
FILTER_NAMES = ("text", "record", "flow", "system", "error_class", "pattern", "since", "until")


class InboxFilterForm(TimeRangeForm):
    field_order = ["text", "record", "flow", "system", "error_class", "since", "until"]
    text = forms.CharField(
        required=False, max_length=200, label="Text in the reason",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. email or 422"}),
    )  # fmt: skip
    record = forms.CharField(required=False, max_length=300, label="Record id")
    flow = forms.ModelChoiceField(
        queryset=Flow.objects.order_by("name"), required=False, empty_label="All flows"
    )
    system = forms.ModelChoiceField(
        queryset=System.objects.order_by("name"), required=False, empty_label="All systems",
        help_text="Letters of every flow from or to it.",
    )  # fmt: skip
    error_class = forms.ChoiceField(required=False, label="What went wrong")
    pattern = forms.CharField(required=False, max_length=300, label="Cause", widget=forms.HiddenInput)
    resolved = forms.BooleanField(required=False, label="Show resolved")
    before = forms.IntegerField(required=False, min_value=1, label="Page", widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["error_class"].choices = [("", "Any error")] + [
            (c.value, c.value.replace("_", " ").capitalize()) for c in ErrorClass
        ]

    def clean_text(self) -> str:
        return self.cleaned_data["text"].strip()

    def clean_record(self) -> str:
        return self.cleaned_data["record"].strip()

    def filters(self) -> dict[str, Any]:
        """The letter filters (`DeadLetterQuerySet.matching`), as ids, text and times."""
        data = self.cleaned_data
        found = {name: data.get(name) for name in FILTER_NAMES}
        for name in ("flow", "system"):
            found[name] = found[name].pk if found[name] else None
        return {name: value for name, value in found.items() if value not in (None, "")}

    def describe(self) -> str:
        """The filters in plain words, for a bulk job's title."""
        data, words = self.cleaned_data, []
        labels = {"flow": "flow", "system": "system", "record": "record", "text": "text"}
        for name, label in labels.items():
            if data.get(name):
                words.append(f"{label} “{data[name]}”")
        if data.get("error_class"):
            text = ErrorClass(data["error_class"]).description.rstrip(".")
            words.append(text[:1].lower() + text[1:])
        if data.get("pattern"):
            words.append(f"cause “{data['pattern']}”")
        if data.get("since"):
            words.append(f"from {data['since']:%Y-%m-%d %H:%M}")
        if data.get("until"):
            words.append(f"until {data['until']:%Y-%m-%d %H:%M}")
        return "; ".join(words) or "every open dead letter"


class BulkAllForm(forms.Form):
    """Replay or discard everything the inbox's filters match (the filters come beside it)."""

    action = forms.ChoiceField(choices=BulkJob.Action.choices)
    reason = forms.CharField(required=False, max_length=1000)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("action") == BulkJob.Action.DISCARD and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", DISCARD_REASON_REQUIRED)
        return cleaned


class OnePageForm(forms.Form):
    """A form that shares its page with others: its element ids carry its own prefix."""

    id_prefix = "form"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class ReplayForm(OnePageForm):
    id_prefix = "replay"
    note = forms.CharField(required=False, max_length=500, label="Note (optional, kept in the audit log)")


class ArrivedForm(OnePageForm):
    id_prefix = "arrived"
    target_id = forms.CharField(
        required=False, max_length=300, label="Its id in the target system (optional)",
        help_text="Given, later changes to this record update it instead of creating another.",
    )  # fmt: skip
    note = forms.CharField(required=False, max_length=500, label="Note (optional, kept in the audit log)")


NOTE_FIELD = forms.CharField(
    required=False, max_length=500, label="What did you fix? (optional, kept in the audit log)"
)


class FixReplayForm(OnePageForm):
    id_prefix = "fix"
    record = forms.CharField(
        label="Corrected source record (JSON)", strip=False, max_length=LIMITS.replay_record_bytes,
        error_messages={"max_length": f"The record is longer than {LIMITS.replay_record_bytes // MB} MB, "
                        "larger than any event the hub accepts; remove what the target does not need."},
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "mono"}),
    )  # fmt: skip
    note = NOTE_FIELD

    def clean_record(self) -> Any:
        text = self.cleaned_data["record"]
        try:
            record = strictjson.loads(text)
        except strictjson.JSONInputError as exc:
            raise json_form_error(exc) from None
        if not isinstance(record, dict):
            raise forms.ValidationError("The record must be a JSON object: { … }.", code="not_object")
        return record


TYPE_HELP = {
    "string": "text", "integer": "a whole number, e.g. 42", "number": "a number, e.g. 12.50",
    "boolean": "yes or no", "date": "a date, e.g. 2026-12-01", "datetime": "a date and time, e.g. 2026-12-01T09:30:00Z",
    "object": "a JSON object, e.g. {\"name\": \"Ann\"}", "array": "a JSON list, e.g. [1, 2]",
}  # fmt: skip
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def editable_fields(fields: list[Field]) -> list[Field]:
    """The source model's fields a person can edit one by one: not inside lists (`lines[].sku`),
    and not an object whose own fields are listed (those are edited instead)."""
    paths = {f.path for f in fields}
    return [
        f for f in fields
        if "[" not in f.path and not any(p.startswith(f"{f.path}.") or p.startswith(f"{f.path}[") for p in paths)
    ]  # fmt: skip


def _shown(value: Any, kind: str) -> str:
    """A record's value as a person edits it."""
    if value is None:
        return ""
    if kind == "boolean":
        return "true" if value is True else "false" if value is False else json.dumps(value)
    if isinstance(value, str) and kind not in ("object", "array"):
        return value
    return json.dumps(value, ensure_ascii=False)


def _typed(text: str, kind: str) -> Any:
    """The value a person typed, as the field's type; raises ValidationError in plain words."""
    if kind == "integer":
        if not _INTEGER.fullmatch(text):
            raise forms.ValidationError(f"Enter {TYPE_HELP[kind]}.", code="integer")
        return int(text)
    if kind == "number":
        if not _NUMBER.fullmatch(text):
            raise forms.ValidationError(f"Enter {TYPE_HELP[kind]}.", code="number")
        if not re.search(r"[.eE]", text):
            return int(text)
        value = float(text)
        if math.isinf(value):
            raise forms.ValidationError("This number is too large to store.", code="too_large")
        return value
    if kind == "boolean":
        return text == "true"
    if kind in ("object", "array"):
        try:
            value = strictjson.loads(text)
        except strictjson.JSONInputError as exc:
            raise json_form_error(exc) from None
        if not isinstance(value, dict if kind == "object" else list):
            raise forms.ValidationError(f"Enter {TYPE_HELP[kind]}.", code=kind)
        return value
    return text


def _remove(record: dict, path: str) -> None:
    """Drop a dotted path's value from the record (a field the person emptied)."""
    *parents, last = path.split(".")
    holder: Any = record
    for part in parents:
        holder = holder.get(part) if isinstance(holder, dict) else None
    if isinstance(holder, dict):
        holder.pop(last, None)


class FixFieldsForm(OnePageForm):
    """The source record field by field, built from the flow's source data model and prefilled
    from the record; what a person changes is written over a copy of the original."""

    id_prefix = "fields"

    note = NOTE_FIELD

    def __init__(self, *args: Any, fields: list[Field], record: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.original = record if isinstance(record, dict) else {}
        # Lists (`lines[].sku`) have no field of their own here: the raw JSON edits them.
        self.list_paths = sorted({f.path.split("[", 1)[0] for f in fields if "[" in f.path})
        self.model_fields: list[tuple[str, Field]] = []
        for index, field in enumerate(editable_fields(fields)):
            name = f"field_{index}"
            value = get_path(self.original, field.path)
            help_text = TYPE_HELP.get(field.type, field.type) + ("; required" if field.required else "")
            if field.type == "boolean":
                form_field: forms.Field = forms.ChoiceField(
                    choices=[("", "(not set)"), ("true", "Yes"), ("false", "No")], required=False
                )
            else:
                # Not stripped: an untouched value must compare equal to the original, spaces and all.
                form_field = forms.CharField(required=False, strip=False, max_length=10_000)
            form_field.label, form_field.help_text = field.path, help_text
            form_field.initial = _shown(value, field.type)
            self.fields[name] = form_field
            self.model_fields.append((name, field))
        self.order_fields([name for name, _ in self.model_fields] + ["note"])

    def rows(self) -> list[tuple[forms.BoundField, str, bool]]:
        """Each field with the original value beside it, and whether it was changed."""
        return [
            (self[name], self.fields[name].initial, (self[name].value() or "") != self.fields[name].initial)
            for name, _ in self.model_fields
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        record = copy.deepcopy(self.original)
        for name, field in self.model_fields:
            if name not in cleaned:
                continue  # its own error is shown already
            text = cleaned[name]
            if text == self.fields[name].initial:
                continue  # untouched: the original value stays exactly as it was
            if not text.strip():
                if field.required:
                    self.add_error(name, "Required by the data model: enter a value.")
                else:
                    _remove(record, field.path)
                continue
            try:
                set_path(
                    record, field.path, _typed(text.strip() if field.type != "string" else text, field.type)
                )
            except forms.ValidationError as exc:
                self.add_error(name, exc)
            except (ValueError, TypeError) as exc:  # the record's shape cannot hold this path
                self.add_error(name, f"Cannot be written into this record: {exc}")
        try:
            cleaned["record"] = strictjson.check_value(record)
        except strictjson.JSONInputError as exc:
            raise forms.ValidationError(exc.message) from None
        return cleaned


class DiscardForm(OnePageForm):
    id_prefix = "discard"
    reason = forms.CharField(
        max_length=1000, label="Why discard it? (kept in the audit log)",
        error_messages={"required": DISCARD_REASON_REQUIRED},
        widget=forms.TextInput(attrs={"placeholder": "e.g. test data, the record was deleted at the source"}),
    )  # fmt: skip


class BulkForm(forms.Form):
    ACTIONS = [("replay", "Replay selected"), ("discard", "Discard selected")]
    MOST = 500  # a page shows 50; more is a job for the bulk job

    letters = forms.TypedMultipleChoiceField(
        coerce=int, error_messages={"required": "Select at least one dead letter."}
    )
    action = forms.ChoiceField(choices=ACTIONS)
    reason = forms.CharField(required=False, max_length=1000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any id: the view keeps only letters that exist and are still open.
        raw = self.data.getlist("letters") if hasattr(self.data, "getlist") else []
        self.fields["letters"].choices = [(v, v) for v in raw if row_id(v) is not None]

    def clean_letters(self) -> list[int]:
        letters = self.cleaned_data["letters"]
        if len(letters) > self.MOST:
            raise forms.ValidationError(
                f"Select at most {self.MOST} dead letters; to work more, use “Replay all” or “Discard all”."
            )
        return letters

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("action") == "discard" and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", DISCARD_REASON_REQUIRED)
        return cleaned
