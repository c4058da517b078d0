"""Forms for the flow wizard, the flow edit page and the specification import.

Every message is written for a non-technical admin and shown beside its field.
"""

import math
import re
from datetime import time
from typing import Any

from django import forms
from django.urls import reverse

from common.limits import LIMITS, MB, row_id
from connectors.base import ErrorClass
from connectors.models import System
from hub.models import DriftPolicy, Flow, Operation, Trigger
from hub.pipeline.retry import RetryPolicy
from hub.services.flows import (
    ERROR_CLASS_WORDS,
    MAX_AGE_SECONDS,
    MAX_ATTEMPTS,
    MAX_WAIT_SECONDS,
    RETRY_CHOICES,
    WEEKDAY_CRON,
    condition_text,
    cron_problem,
    duration_words,
)
from mappings.conditions import (
    ConditionError,
    FilterProblem,
    check_condition_fields,
    condition_units,
    parse_condition_text,
    validate_condition,
)
from mappings.models import DataModel

OPERATION_CHOICES = [
    (
        Operation.UPSERT,
        "Create or update: create the record the first time, update it after that (recommended)",
    ),
    (Operation.CREATE, "Create: add a new record every time"),
    (Operation.UPDATE, "Update: change the record an earlier sync created"),
    (Operation.DELETE, "Delete: remove the record an earlier sync created"),
]
TRIGGER_CHOICES = [
    (Trigger.REALTIME, "Real-time: the source system tells the hub the moment something happens (webhook)"),
    (Trigger.SCHEDULED, "On a schedule: the hub asks the source system for changes at regular times"),
]
PRESETS = [
    ("", "Choose how often…"),
    ("5", "Every 5 minutes"),
    ("15", "Every 15 minutes"),
    ("30", "Every 30 minutes"),
    ("60", "Every hour"),
    ("daily", "Every day at a set time"),
    ("weekdays", "Weekdays (Monday to Friday) at a set time"),
    ("custom", "A custom schedule (cron, for experts)"),
]
MAX_SPEC_BYTES = LIMITS.spec_bytes


class PlainForm(forms.Form):
    """Labels without the trailing colon; the templates lay labels out above fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class SourceModelForm(PlainForm):
    """A form whose fields are checked against the flow's source data model (when it is known)."""

    def __init__(self, *args: Any, source_model: DataModel | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source_model = source_model


def schedule_initial(minutes: int | None, cron: str) -> dict[str, str]:
    """The preset, time and cron text that show a stored schedule in the form."""
    if not cron:
        preset = str(minutes or 15)
        return (
            {"preset": preset, "at_time": "", "cron": ""}
            if preset in dict(PRESETS)
            else {"preset": "custom", "at_time": "", "cron": f"*/{minutes} * * * *"}
        )
    parts = cron.split()
    if len(parts) == 5 and parts[0].isdigit() and parts[1].isdigit() and parts[2:4] == ["*", "*"]:
        at = f"{int(parts[1]):02d}:{int(parts[0]):02d}"
        if parts[4] == "*":
            return {"preset": "daily", "at_time": at, "cron": ""}
        if parts[4] == WEEKDAY_CRON:
            return {"preset": "weekdays", "at_time": at, "cron": ""}
    return {"preset": "custom", "at_time": "", "cron": cron}


def _system_choice(label: str, required_message: str) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=System.objects.order_by("name"),
        label=label,
        empty_label="Choose a system…",
        error_messages={"required": required_message, "invalid_choice": "Choose one of the listed systems."},
    )


def _model_choice(label: str, required_message: str) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=DataModel.objects.none(),
        label=label,
        empty_label="Choose a data model…",
        error_messages={
            "required": required_message,
            "invalid_choice": "Choose one of the data models of the system you picked.",
        },
    )


class _SystemModelForm(PlainForm):
    """A system select and a model select limited to that system's models."""

    end = "source"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        system_id = self.chosen_system_id()
        models = self.fields[f"{self.end}_model"]
        models.queryset = (
            DataModel.objects.filter(system_id=system_id) if system_id else DataModel.objects.none()
        )
        models.label_from_instance = lambda model: model.name
        self.system = System.objects.filter(pk=system_id).first() if system_id else None
        # Picking a system refreshes the model list (and the event suggestions) in place.
        self.fields[f"{self.end}_system"].widget.attrs.update({
            "hx-get": f"{reverse('flows-add')}?partial={self.end}-options",
            "hx-target": f"#{self.end}-options",
            "hx-swap": "outerHTML",
        })  # fmt: skip

    def chosen_system_id(self) -> int | None:
        name = f"{self.end}_system"
        raw = self.data.get(name) if self.is_bound else self.initial.get(name)
        return row_id(raw)


class SourceStepForm(_SystemModelForm):
    end = "source"
    source_system = _system_choice("Source system", "Choose the system where the change happens.")
    source_model = _model_choice("What kind of record", "Choose the kind of record the flow reacts to.")
    event_type = forms.CharField(
        label="Event",
        max_length=200,
        required=False,
        help_text='The event that starts the flow, e.g. "deal.won". Leave empty or use * to react to every event.',
        widget=forms.TextInput(attrs={"placeholder": "e.g. employee.hired", "autocomplete": "off"}),
    )

    def clean_event_type(self) -> str:
        value = (self.cleaned_data.get("event_type") or "").strip() or "*"
        if re.search(r"\s", value):
            raise forms.ValidationError('An event name has no spaces, e.g. "employee.hired".')
        return value


class TargetStepForm(_SystemModelForm):
    end = "target"
    target_system = _system_choice("Target system", "Choose the system the flow writes to.")
    target_model = _model_choice("What kind of record", "Choose the kind of record the flow writes.")
    operation = forms.ChoiceField(
        label="What to do there",
        choices=OPERATION_CHOICES,
        widget=forms.RadioSelect,
        initial=Operation.UPSERT,
        error_messages={"required": "Choose what the flow does in the target system."},
    )


class TimingFields(SourceModelForm):
    """Real-time or scheduled; the schedule in plain words; the cursor field for scheduled flows."""

    trigger = forms.ChoiceField(
        label="How quickly must the target follow?",
        choices=TRIGGER_CHOICES,
        widget=forms.RadioSelect,
        initial=Trigger.REALTIME,
        error_messages={"required": "Choose real-time or on a schedule."},
    )
    preset = forms.ChoiceField(label="How often", choices=PRESETS, required=False)
    at_time = forms.TimeField(
        label="At what time",
        required=False,
        input_formats=["%H:%M"],
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": "Enter a time like 02:00."},
    )
    cron = forms.CharField(
        label="Custom schedule",
        required=False,
        max_length=100,
        help_text="Five parts: minute hour day month weekday. E.g. 30 6 * * 1 = Mondays at 06:30.",
    )
    cursor_field = forms.ChoiceField(
        label="Which field shows that a record changed",
        required=False,
        help_text="The hub remembers the highest value it has seen and next time asks only for newer records.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        source_model = self.source_model
        choices = []
        if source_model is not None:
            paths = [(f.path, f.type) for f in source_model.fields.all() if "[]" not in f.path]
            # Timestamps and numbers first: they are the fields that grow as records change.
            paths.sort(key=lambda p: (p[1] not in ("datetime", "date", "integer", "number"), 0))
            choices = [(path, f"{path} ({kind})") for path, kind in paths]
            if source_model.cursor_field and source_model.cursor_field not in dict(choices):
                choices.insert(0, (source_model.cursor_field, source_model.cursor_field))
            if not self.is_bound and not self.initial.get("cursor_field"):
                self.initial["cursor_field"] = source_model.cursor_field
        self.fields["cursor_field"].choices = [("", "Choose a field…"), *choices]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["schedule_minutes"], data["schedule_cron"] = None, ""
        if data.get("trigger") != Trigger.SCHEDULED:
            return data
        preset = data.get("preset")
        if not preset:
            self.add_error("preset", "Choose how often the hub should look for changes.")
        elif preset in ("daily", "weekdays"):
            at: time | None = data.get("at_time")
            if at is None:
                if "at_time" not in self.errors:
                    self.add_error("at_time", "Choose the time of day, e.g. 02:00.")
            else:
                data["schedule_cron"] = (
                    f"{at.minute} {at.hour} * * {'*' if preset == 'daily' else WEEKDAY_CRON}"
                )
        elif preset == "custom":
            cron = " ".join((data.get("cron") or "").split())
            problem = cron_problem(cron) if cron else "Enter the schedule, e.g. 0 2 * * 1-5."
            if problem:
                self.add_error(
                    "cron", problem[0].upper() + problem[1:] + ("" if problem.endswith(".") else ".")
                )
            data["schedule_cron"] = cron
        else:
            data["schedule_minutes"] = int(preset)
        if self.source_model is not None and not data.get("cursor_field"):
            self.add_error(
                "cursor_field", "Choose the field that changes whenever a record changes (e.g. updated_at)."
            )
        return data


class TimingStepForm(TimingFields):
    pass


def filter_parse(text: str) -> tuple[dict | None, str]:
    """The condition a filter text means, or the reason it cannot be read."""
    try:
        cond = parse_condition_text(text or "")
    except ConditionError as exc:
        message = str(exc)
        return None, message[0].upper() + message[1:] + ("" if message.endswith(".") else ".")
    problems = validate_condition(cond)
    if problems:
        return None, "; ".join(problems).capitalize() + "."
    return (cond or None), ""


def filter_units(cond: Any, model: DataModel | None) -> list[str]:
    """What the compared values count, where the source model says (money in cents...)."""
    return condition_units(cond, model.field_specs()) if cond and model is not None else []


def filter_problems(cond: Any, model: DataModel | None) -> list[FilterProblem]:
    """Fields the filter names that the source model lacks, and comparisons that can never hold."""
    if not cond or model is None:
        return []
    return check_condition_fields(cond, model.field_specs())


class FilterFields(SourceModelForm):
    filter_text = forms.CharField(
        label="Only records where… (optional)",
        required=False,
        max_length=LIMITS.filter_chars,
        widget=forms.TextInput(
            attrs={"placeholder": "e.g. stage = won and amount > 100", "autocomplete": "off"}
        ),
        help_text="Leave empty to carry every record. Compare with = != > >= < <=, in, contains, exists; "
        'join with "and" / "or"; quote text with spaces: title = "Office refit".',
    )

    def clean_filter_text(self) -> str:
        text = self.cleaned_data.get("filter_text") or ""
        cond, error = filter_parse(text)
        if error:
            raise forms.ValidationError(error)
        unknown = [
            problem.message for problem in filter_problems(cond, self.source_model) if problem.unknown_field
        ]
        if unknown:
            raise forms.ValidationError(unknown)
        self.cleaned_data["filter"] = cond
        return text.strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data.setdefault("filter", None)
        return data


class FilterStepForm(FilterFields):
    pass


UNITS = [("1", "seconds"), ("60", "minutes"), ("3600", "hours"), ("86400", "days")]


class DurationWidget(forms.MultiWidget):
    """A number and a unit: "24" "hours"."""

    def __init__(self, attrs: dict | None = None) -> None:
        number = forms.NumberInput(
            attrs={"step": "any", "min": "0", "inputmode": "decimal", "class": "amount"}
        )
        super().__init__([number, forms.Select(choices=UNITS, attrs={"class": "unit"})], attrs)

    def decompress(self, value: Any) -> list[Any]:
        """Seconds in the largest unit that holds them whole: 172800 -> 2 days, 3600 -> 1 hour,
        90 -> 90 seconds. Up to two days read best in hours (86400 -> 24 hours), as on the flow page."""
        if value in (None, ""):
            return [None, "1"]
        seconds = float(value)
        for size in (86400, 3600, 60):
            if seconds >= size * (2 if size == 86400 else 1) and seconds % size == 0:
                return [f"{seconds / size:g}", str(size)]
        return [f"{seconds:g}", "1"]


class DurationField(forms.MultiValueField):
    """A length of time typed as a number and a unit, cleaned to seconds within bounds."""

    widget = DurationWidget

    def __init__(self, *, least: float, most: float, **kwargs: Any) -> None:
        self.least, self.most = least, most
        number = forms.FloatField(error_messages={"invalid": "Enter a number, e.g. 24."})
        unit = forms.ChoiceField(choices=UNITS, error_messages={"invalid_choice": "Choose a unit."})
        super().__init__(
            fields=[number, unit],
            require_all_fields=False,
            error_messages={
                "required": "Enter a number and choose a unit, e.g. 24 hours.",
                "incomplete": "Enter a number and choose a unit, e.g. 24 hours.",
            },
            **kwargs,
        )

    def compress(self, data_list: list[Any]) -> float | None:
        if not data_list or data_list[0] in (None, ""):
            return None
        seconds = float(data_list[0]) * int(data_list[1] or 1)
        if not math.isfinite(seconds) or not self.least <= seconds <= self.most:
            raise forms.ValidationError(
                f"Enter between {duration_words(self.least)} and {duration_words(self.most)}."
            )
        return seconds


class RetryFields(PlainForm):
    """How a flow retries: attempts, how long, the waits between tries and which failures retry."""

    max_attempts = forms.IntegerField(
        label="Tries at most", min_value=1, max_value=MAX_ATTEMPTS,
        help_text="Counting the first try. After the last one a delivery goes to the dead-letter inbox.",
        error_messages={"min_value": "A delivery is tried at least once.",
                        "max_value": f"Try at most {MAX_ATTEMPTS} times; for longer outages, keep trying for longer instead."},
    )  # fmt: skip
    max_age_seconds = DurationField(
        label="Keep trying for at most", least=1, most=MAX_AGE_SECONDS,
        help_text="Counted from when the event arrived; a replay from the dead-letter inbox starts afresh.",
    )  # fmt: skip
    retry_base_seconds = DurationField(
        label="First wait", least=0.01, most=MAX_WAIT_SECONDS,
        help_text="Each following wait doubles, up to the longest wait below.",
    )  # fmt: skip
    retry_max_seconds = DurationField(
        label="Longest wait", least=0.01, most=MAX_WAIT_SECONDS,
        help_text="Each wait is a random part of this, so that retries do not all arrive at once.",
    )  # fmt: skip
    retry_on = forms.MultipleChoiceField(
        label="Which failures are tried again",
        required=False,
        choices=[(str(c), ERROR_CLASS_WORDS[c]) for c in RETRY_CHOICES],
        widget=forms.CheckboxSelectMultiple,
        help_text="Failures left unticked go straight to the dead-letter inbox. Refused credentials always "
        "pause the flow instead, so that someone can fix them.",
        error_messages={"invalid_choice": "“%(value)s” is not a kind of failure the hub knows."},
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        base, cap = data.get("retry_base_seconds"), data.get("retry_max_seconds")
        if base is not None and cap is not None and cap < base:
            self.add_error(
                "retry_max_seconds",
                f"The longest wait cannot be shorter than the first wait ({duration_words(base)}).",
            )
        return data

    def retry_rows(self) -> list[tuple[Any, str]]:
        """Each failure's checkbox with what it means, for the template."""
        return [(box, ErrorClass(box.data["value"]).description) for box in self["retry_on"]]

    def policy(self) -> RetryPolicy | None:
        """The policy the form describes, when it is valid."""
        if not self.is_valid():
            return None
        data = self.cleaned_data
        return RetryPolicy(
            base_seconds=data["retry_base_seconds"],
            max_seconds=data["retry_max_seconds"],
            max_attempts=data["max_attempts"],
            max_age_seconds=data["max_age_seconds"],
            retry_on=frozenset(data["retry_on"]),
        )

    @staticmethod
    def retry_initial(flow: Flow) -> dict[str, Any]:
        return {
            "max_attempts": flow.max_attempts,
            "max_age_seconds": flow.max_age_seconds,
            "retry_base_seconds": flow.retry_base_seconds,
            "retry_max_seconds": flow.retry_max_seconds,
            "retry_on": list(flow.retry_on or []),
        }


RETRY_SETTINGS = tuple(RetryFields.base_fields)


def _name_field() -> forms.CharField:
    return forms.CharField(
        label="Name",
        max_length=200,
        help_text='Say what it does, e.g. "New employees get an inventory account".',
        error_messages={
            "required": "Give the flow a name.",
            "max_length": "Keep the name under 200 characters.",
        },
    )


class NameStepForm(PlainForm):
    name = _name_field()
    description = forms.CharField(
        label="Description (optional)", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if Flow.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError(f'There is already a flow named "{name}". Choose another name.')
        return name


DRIFT_POLICY_WORDS = [
    (DriftPolicy.REPORT, "Carry on and tell me"),
    (DriftPolicy.EXTEND, "Add new fields to the model"),
    (DriftPolicy.HOLD, "Hold them until I approve"),
    (DriftPolicy.DEAD_LETTER, "Send them to the dead-letter inbox"),
]


class FlowEditForm(TimingFields, FilterFields, RetryFields):
    name = _name_field()
    description = forms.CharField(
        label="Description", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    event_type = SourceStepForm.base_fields["event_type"]
    operation = TargetStepForm.base_fields["operation"]
    silence_after_minutes = forms.IntegerField(
        label="Warn when no event arrives for (minutes)",
        required=False,
        min_value=1,
        help_text="Leave empty if it is normal for this flow to be quiet for long.",
    )

    drift_policy = forms.ChoiceField(
        label="When the source's records change shape",
        choices=DRIFT_POLICY_WORDS,
        widget=forms.RadioSelect,
        required=False,  # left out (a form from before the choice existed): the flow keeps its own
        help_text="A change that takes away a field this flow's mapping needs (or its polling cursor) "
        "always holds the events until you approve them, whatever you choose here, and raises an alert.",
    )

    field_order = ["name", "description", "event_type", "operation", "trigger", "preset", "at_time", "cron",
                   "cursor_field", "filter_text", "silence_after_minutes", "drift_policy",
                   *RETRY_SETTINGS]  # fmt: skip

    def __init__(self, *args: Any, flow: Flow, **kwargs: Any) -> None:
        self.flow = flow
        if not kwargs.get("data") and not args:
            kwargs["initial"] = {**self.flow_initial(flow), **kwargs.get("initial", {})}
        super().__init__(*args, source_model=flow.source_model, **kwargs)

    @staticmethod
    def flow_initial(flow: Flow) -> dict[str, Any]:
        text = condition_text(flow.filter)
        return {
            "name": flow.name,
            "description": flow.description,
            "event_type": flow.event_type,
            "operation": flow.operation,
            "trigger": flow.trigger,
            **schedule_initial(flow.schedule_minutes, flow.schedule_cron),
            "cursor_field": flow.source_model.cursor_field,
            # A filter the text syntax cannot say exactly stays as it is unless the admin retypes it.
            "filter_text": text if text is not None else "",
            "silence_after_minutes": flow.silence_after_minutes,
            "drift_policy": flow.drift_policy,
            **RetryFields.retry_initial(flow),
        }

    def clean_event_type(self) -> str:
        return SourceStepForm.clean_event_type(self)

    def clean_drift_policy(self) -> str:
        return self.cleaned_data.get("drift_policy") or self.flow.drift_policy

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if Flow.objects.filter(name__iexact=name).exclude(pk=self.flow.pk).exists():
            raise forms.ValidationError(f'There is already a flow named "{name}". Choose another name.')
        return name


class SpecImportForm(PlainForm):
    document = forms.FileField(label="Upload a specification file", required=False)
    text = forms.CharField(
        label="…or paste it here",
        required=False,
        max_length=MAX_SPEC_BYTES,
        error_messages={
            "max_length": f"This text is longer than {MAX_SPEC_BYTES // MB} MB; a specification is much smaller."
        },
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
    )
    remove_unlisted = forms.BooleanField(
        label="Also remove what the document does not list",
        required=False,
        help_text="Systems, data models, flows and alert channels missing from the document are deleted. "
        "Off: they stay as they are. You see what would go before anything does.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload = data.get("document")
        if upload:
            if upload.size > MAX_SPEC_BYTES:
                self.add_error(
                    "document",
                    f"This file is larger than {MAX_SPEC_BYTES // MB} MB; a specification is much smaller.",
                )
                return data
            try:
                data["text"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                self.add_error(
                    "document",
                    "This file is not a text (UTF-8) file. Upload the .yaml file the hub exported.",
                )
                return data
        if not (data.get("text") or "").strip() and not self.errors:
            self.add_error("text", "Upload the specification file or paste its text.")
        return data
