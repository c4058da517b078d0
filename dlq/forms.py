"""Forms of the dead-letter pages: inbox filters, bulk actions, replay, fix and replay, discard."""

from typing import Any

from django import forms

from common import strictjson
from connectors.base import ErrorClass
from hub.models import Flow
from hub.ui.forms.datamodels import json_form_error

DISCARD_REASON_REQUIRED = "Say why you discard it: the reason is kept in the audit log."


class InboxFilterForm(forms.Form):
    flow = forms.ModelChoiceField(
        queryset=Flow.objects.order_by("name"), required=False, empty_label="All flows"
    )
    error_class = forms.ChoiceField(required=False, label="Error")
    resolved = forms.BooleanField(required=False, label="Show resolved")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["error_class"].choices = [("", "All errors")] + [
            (c.value, c.value.replace("_", " ").capitalize()) for c in ErrorClass
        ]


class ReplayForm(forms.Form):
    note = forms.CharField(required=False, max_length=500, label="Note (optional, kept in the audit log)")


class FixReplayForm(forms.Form):
    record = forms.CharField(
        label="Corrected source record (JSON)", strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "mono"}),
    )  # fmt: skip
    note = forms.CharField(
        required=False, max_length=500, label="What did you fix? (optional, kept in the audit log)"
    )

    def clean_record(self) -> Any:
        text = self.cleaned_data["record"]
        try:
            record = strictjson.loads(text)
        except strictjson.JSONInputError as exc:
            raise json_form_error(exc) from None
        if not isinstance(record, dict):
            raise forms.ValidationError("The record must be a JSON object: { … }.", code="not_object")
        return record


class DiscardForm(forms.Form):
    reason = forms.CharField(
        max_length=1000, label="Why discard it? (kept in the audit log)",
        error_messages={"required": DISCARD_REASON_REQUIRED},
        widget=forms.TextInput(attrs={"placeholder": "e.g. test data, the record was deleted at the source"}),
    )  # fmt: skip


class BulkForm(forms.Form):
    ACTIONS = [("replay", "Replay selected"), ("discard", "Discard selected")]

    letters = forms.TypedMultipleChoiceField(
        coerce=int, error_messages={"required": "Select at least one dead letter."}
    )
    action = forms.ChoiceField(choices=ACTIONS)
    reason = forms.CharField(required=False, max_length=1000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any id: the view keeps only letters that exist and are still open.
        raw = self.data.getlist("letters") if hasattr(self.data, "getlist") else []
        self.fields["letters"].choices = [(v, v) for v in raw if str(v).isdigit()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("action") == "discard" and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", DISCARD_REASON_REQUIRED)
        return cleaned
