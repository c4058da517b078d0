"""Search forms of the sync history and the audit log: filters read from the query string, a
time range in local time, and the export format."""

from django import forms

from connectors.models import System
from hub.models import DeliveryStatus, Flow
from hub.selectors.audit import AuditFilters, audit_choices
from hub.selectors.exports import FORMATS
from hub.selectors.history import MIN_TEXT, HistoryFilters

LOCAL_TIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class TimeRangeForm(forms.Form):
    since = forms.DateTimeField(required=False, label="From", widget=LOCAL_TIME)
    until = forms.DateTimeField(required=False, label="Until", widget=LOCAL_TIME)

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            self.add_error("until", "“Until” must be later than “From”.")
        return data


class HistoryFilterForm(TimeRangeForm):
    filters_class = HistoryFilters
    field_order = ["text", "record", "flow", "system", "status", "since", "until"]
    text = forms.CharField(
        required=False,
        max_length=200,
        label="Text in the record",
        help_text="An order number, an email address… anywhere in the event as received.",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. 1042 or ann@example.com"}),
    )
    record = forms.CharField(
        required=False,
        max_length=300,
        label="Record id",
        help_text="The id in the source system or the one it got in the target.",
    )
    flow = forms.ModelChoiceField(
        queryset=Flow.objects.order_by("name"), required=False, empty_label="All flows"
    )
    system = forms.ModelChoiceField(
        queryset=System.objects.order_by("name"), required=False, empty_label="All systems"
    )
    status = forms.ChoiceField(required=False, choices=[("", "Any outcome"), *DeliveryStatus.choices])

    def clean_text(self) -> str:
        text = self.cleaned_data["text"].strip()
        if text and len(text) < MIN_TEXT:
            raise forms.ValidationError(f"Type at least {MIN_TEXT} characters.")
        return text

    def filters(self) -> HistoryFilters:
        data = self.cleaned_data
        return HistoryFilters(
            flow_id=data["flow"].pk if data.get("flow") else None,
            system_id=data["system"].pk if data.get("system") else None,
            status=data.get("status", ""),
            since=data.get("since"),
            until=data.get("until"),
            record=data.get("record", "").strip(),
            text=data.get("text", ""),
        )


class AuditFilterForm(TimeRangeForm):
    filters_class = AuditFilters
    field_order = ["target_type", "actor", "verb", "since", "until"]
    target_type = forms.ChoiceField(required=False, label="Object type")
    actor = forms.ChoiceField(required=False, label="Who")
    verb = forms.ChoiceField(required=False, label="Action")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        choices = audit_choices()
        for name, every in (("target_type", "All objects"), ("actor", "Everyone"), ("verb", "All actions")):
            self.fields[name].choices = [("", every)] + [
                (value, value.replace("_", " ")) for value in choices[name]
            ]

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        return AuditFilters(
            target_type=data.get("target_type", ""),
            actor=data.get("actor", ""),
            verb=data.get("verb", ""),
            since=data.get("since"),
            until=data.get("until"),
        )


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=[(name, name.upper()) for name in FORMATS])
