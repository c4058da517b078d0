"""The rule form reads as a sentence ("Tell me when <flow> fails more than [20] % of its tries over
[15] minutes"), built from the kind's declared numbers; the channel form shows one input per
setting its kind declares, secrets write-only."""

from typing import Any

from django import forms

from hub.alerts.channels import CHANNELS, Setting
from hub.alerts.conditions import Condition, Param, duration_words
from hub.alerts.services import MAX_RENOTIFY_MINUTES, MUTE_CHOICES
from hub.models import Flow, FlowState
from hub.ui.forms.systems import WriteOnlyTextInput

LEARNED, FIXED = "learned", "fixed"


def _number_field(param: Param) -> forms.Field:
    whole = param.unit != "seconds" and param.unit != "%"
    field_class = forms.IntegerField if whole else forms.FloatField
    return field_class(
        required=not param.none_means,
        min_value=param.minimum,
        max_value=param.maximum,
        widget=forms.NumberInput(
            attrs={"class": "inline-number", "aria-label": param.unit, "step": "1" if whole else "any"}
        ),
    )


class RuleForm(forms.Form):
    flow = forms.ModelChoiceField(
        queryset=Flow.objects.exclude(state=FlowState.DRAFT).order_by("name"),
        empty_label=None,
        widget=forms.Select(attrs={"aria-label": "Flow"}),
    )
    renotify_minutes = forms.IntegerField(
        label="Remind every",
        min_value=0,
        max_value=MAX_RENOTIFY_MINUTES,
        initial=60,
        help_text="minutes while it fires and nobody has acknowledged it (0: tell once)",
        widget=forms.NumberInput(attrs={"class": "inline-number"}),
    )
    enabled = forms.BooleanField(label="Watch for it", required=False, initial=True)

    def __init__(self, *args: Any, condition: Condition, with_flow: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.condition = condition
        self.fields["renotify_minutes"].initial = condition.renotify_default
        if not with_flow:
            del self.fields["flow"]
        for param in condition.params:
            if param.none_means:
                self.fields[f"{param.field}_mode"] = forms.ChoiceField(
                    choices=[(LEARNED, param.none_choice), (FIXED, param.prefix)],
                    widget=forms.Select(attrs={"aria-label": "How long"}),
                )
                self.initial.setdefault(f"{param.field}_mode", LEARNED if param.default is None else FIXED)
            self.fields[param.field] = _number_field(param)
            self.initial.setdefault(param.field, param.default)

    @classmethod
    def initial_for(cls, rule) -> dict[str, Any]:
        initial = {"renotify_minutes": rule.renotify_minutes, "enabled": rule.enabled}
        for param in rule.condition.params:
            initial[param.field] = getattr(rule, param.field)
            if param.none_means:
                initial[f"{param.field}_mode"] = LEARNED if getattr(rule, param.field) is None else FIXED
        return initial

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for param in self.condition.params:
            mode = data.get(f"{param.field}_mode")
            if mode == LEARNED:
                data[param.field] = None
                self.errors.pop(param.field, None)
            elif mode == FIXED and data.get(param.field) is None and param.field not in self.errors:
                self.add_error(
                    param.field, f"Enter the number of {param.unit}, or choose “{param.none_choice}”."
                )
        return data

    def pieces(self) -> list[tuple[str, Any, str]]:
        """The sentence in order: ("text", words, css class) and ("field", bound field, css class)
        pieces; the number a "learned" choice makes unneeded is marked "when-fixed"."""
        out: list[tuple[str, Any, str]] = []
        for kind, value in self.condition.pieces():
            if kind == "text":
                out.append(("text", value, ""))
                continue
            param = self.condition.param(value)
            optional = "when-fixed" if param.none_means else ""
            if param.none_means:
                out.append(("field", self[f"{value}_mode"], "mode"))
            elif param.prefix:
                out.append(("text", param.prefix, ""))
            out.append(("field", self[value], optional))
            out.append(("text", param.unit, optional))
        return out

    def rule_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        values = {"renotify_minutes": data["renotify_minutes"], "enabled": data["enabled"]}
        for param in self.condition.params:
            values[param.field] = data.get(param.field)
        return values


class MuteForm(forms.Form):
    minutes = forms.TypedChoiceField(
        label="Mute for",
        coerce=int,
        choices=[(m, duration_words(m)) for m in MUTE_CHOICES],
        initial=60,
    )


def _setting_field(setting: Setting, *, stored: bool) -> forms.Field:
    if setting.secret:
        attrs = {
            "autocomplete": "new-password" if setting.input == "password" else "off",
            "spellcheck": "false",
        }
        widget = (
            forms.PasswordInput(attrs=attrs)
            if setting.input == "password"
            else WriteOnlyTextInput(attrs=attrs)
        )
    else:
        widget = forms.TextInput(attrs={"autocomplete": "off"})
    required = setting.required and not (setting.secret and stored)
    return forms.CharField(
        label=setting.label, help_text=setting.help, required=required, max_length=2000, widget=widget
    )


class ChannelForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=100, help_text="e.g. “Ops team email” or “#integrations chat”."
    )
    enabled = forms.BooleanField(label="Send alerts through it", required=False, initial=True)

    def __init__(self, *args: Any, kind: str, channel=None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = CHANNELS[kind]
        self.channel = channel
        stored = (channel.secrets or {}) if channel else {}
        for setting in self.kind.settings:
            self.fields[setting.name] = _setting_field(setting, stored=bool(stored.get(setting.name)))
        if channel:
            self.initial.update({"name": channel.name, "enabled": channel.enabled})
            self.initial.update(
                {"to": ", ".join(channel.settings.get("to") or [])} if kind == "email" else {}
            )

    def secret_inputs(self) -> list[dict[str, Any]]:
        stored = (self.channel.secrets or {}) if self.channel else {}
        return [
            {"field": self[s.name], "secret": s.secret, "stored": bool(stored.get(s.name))}
            for s in self.kind.settings
        ]

    def values(self) -> dict[str, str]:
        return {s.name: self.cleaned_data.get(s.name) or "" for s in self.kind.settings}
