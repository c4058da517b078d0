"""The guided system form: a ModelForm over System's fields (labels, help and checks come from the
model), plus one input per setting that each sign-in method and each connector declares (see
connectors/config.py), plus the secrets. Nothing here names a connector or a sign-in method.

Secret inputs are write-only: never filled in, empty keeps the stored value."""

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
    URLValidator,
)
from django.db import models

from connectors.apiversion import PLACEHOLDER as VERSION_PLACEHOLDER
from connectors.auth import AUTH_SCHEMES, secret_characters
from connectors.config import Declared, config_load, config_problems, declared
from connectors.models import SYSTEM_FIELDS, SignatureEncoding, SignatureScheme, System
from connectors.registry import connector_choices, connector_configs
from connectors.signatures import SignatureError, standard_webhooks_key
from connectors.vendors import CATEGORIES, PAYLOAD_PATHS, WEBHOOK_INPUTS, vendor_catalogue

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
KEEP_PLACEHOLDER = "Leave empty to keep the stored value"
WHSEC_EXPECTED = (
    "Paste the secret exactly as the sender shows it: whsec_ followed by letters, digits, + and /."
)

# The webhook inputs in the words of someone reading the vendor's settings page, not its API manual.
PLAIN_WORDS: dict[str, dict[str, Any]] = {
    "signature_scheme": {
        "label": "Does the system sign its webhooks?",
        "choices": [
            (SignatureScheme.NONE, "No, they are not signed"),
            (SignatureScheme.HMAC_SHA256, "Yes, with a signing secret (most systems)"),
            (
                SignatureScheme.TIMESTAMPED,
                "Yes, with a signing secret and the time of sending (payment providers)",
            ),
            (
                SignatureScheme.STANDARD_WEBHOOKS,
                "Yes, the Standard Webhooks way: webhook-id, webhook-timestamp, webhook-signature (Svix)",
            ),
            (SignatureScheme.SLACK, "Yes, the Slack way: X-Slack-Signature with v0="),
            (SignatureScheme.ZENDESK, "Yes, the Zendesk way: a signature and a separate timestamp header"),
        ],
        "help": "Signed webhooks prove they really come from the system. Its webhook settings show a "
        "“signing secret” or “webhook secret” when it signs them.",
    },
    "signature_header": {
        "label": "Header that carries the signature",
        "help": "Named in the system's webhook documentation, e.g. X-Signature.",
    },
    "signature_encoding": {
        "label": "How the signature is written",
        "choices": [
            (SignatureEncoding.HEX, "Letters a-f and digits (hexadecimal)"),
            (SignatureEncoding.BASE64, "Letters, digits, + and / (Base64)"),
        ],
    },
    "signature_prefix": {"label": "Text before the signature"},
    "event_type_path": {
        "help": "The field of the webhook that names what happened, e.g. type; or a header, "
        "written header: and its name (header:X-Event-Type)."
    },
    "idempotency_key_path": {
        "help": "The field that is different for every webhook, e.g. id: a webhook sent twice is "
        "carried once."
    },
}
# Rarely changed: under "Advanced", opened by itself when one of them has an error.
ADVANCED_WHERE = (
    "api_version",
    "api_version_in",
    "api_version_name",
    "connect_timeout",
    "read_timeout",
    "rate_limit_per_second",
    "max_in_flight",
)
ADVANCED_WEBHOOK = (
    "signature_header",
    "signature_encoding",
    "signature_prefix",
    "signature_tolerance_seconds",
    "event_type_path",
    "idempotency_key_path",
    "record_path",
)


def is_standard_webhooks_secret(secret: str) -> bool:
    try:
        standard_webhooks_key(secret)
    except SignatureError:
        return False
    return True


def template_choices(
    *, kept: str = "", none: str = "Another system (fill in the form yourself)"
) -> list[tuple[str, Any]]:
    """The vendor catalogue for a select, grouped by category; `kept` stays a choice even when its
    file has gone, so saving a system does not quietly drop it."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for template in vendor_catalogue().values():
        groups.setdefault(CATEGORIES[template.category], []).append((template.slug, template.name))
    missing = (
        [(kept, f"{kept} (no such template any more)")] if kept and kept not in vendor_catalogue() else []
    )
    return [("", none), *missing, *groups.items()]


def template_form_values() -> dict[str, dict[str, Any]]:
    """Per vendor template: the inputs it fills, and its notes for the admin. Inputs the template
    leaves out go back to a new form's values, so switching templates leaves nothing of the last one
    behind (a vendor whose signature the hub cannot check keeps the safe default, not "Not signed")."""
    templates = vendor_catalogue()
    filled = {slug: template.form_values() for slug, template in templates.items()}
    names = {"base_url", "auth_scheme", *WEBHOOK_INPUTS.values(), *PAYLOAD_PATHS.values()}
    names |= {name for values in filled.values() for name in values}
    blank = SystemForm()
    start = {name: "" if blank[name].value() is None else str(blank[name].value()) for name in names}
    return {
        slug: {
            "values": {**start, **filled[slug]},
            "notes": template.notes,
            "docs": template.data.get("docs", ""),
        }
        for slug, template in templates.items()
    }


@dataclass(frozen=True)
class Choice:
    """A System field that picks an option (a sign-in method, a connector) and the JSON field that
    keeps the chosen option's declared settings."""

    field: str
    stored_in: str
    configs: Callable[[], dict[str, type]]


CHOICES = (
    Choice("auth_scheme", "auth_config", lambda: {str(k): m.settings for k, m in AUTH_SCHEMES.items()}),
    Choice("connector", "settings", connector_configs),
)


@dataclass(frozen=True)
class DeclaredInput:
    item: Declared
    owners: tuple[str, ...]  # the options that declare it, for the page script that shows only those
    choice: Choice


class WriteOnlyTextInput(forms.TextInput):
    """A text input that never shows a value, not even the one just typed (like PasswordInput)."""

    def format_value(self, value: Any) -> None:
        return None


def _secret_field(label: str, masked: bool = True, max_length: int = 2000) -> forms.CharField:
    attrs = {"autocomplete": "new-password" if masked else "off", "spellcheck": "false"}
    widget = forms.PasswordInput(attrs=attrs) if masked else WriteOnlyTextInput(attrs=attrs)
    field = forms.CharField(label=label, required=False, max_length=max_length, widget=widget)
    # secret_characters names a NUL itself, with its place: one message instead of two.
    kept = [v for v in field.validators if not isinstance(v, ProhibitNullCharactersValidator)]
    field.validators = [*kept, secret_characters]
    return field


def _setting_field(item: Declared) -> forms.Field:
    """The input for one declared setting; whether it is required depends on the chosen option, so
    `clean` decides that."""
    common = {"label": item.setting.label, "help_text": item.setting.help, "required": False}
    if item.setting.choices:
        return forms.ChoiceField(choices=[(c, c) for c in item.setting.choices], **common)
    if item.type is int:
        return forms.IntegerField(**common)
    if item.type is bool:
        return forms.BooleanField(**common)
    return forms.CharField(max_length=500, widget=forms.TextInput(attrs={"spellcheck": "false"}), **common)


def _union(by_owner: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, tuple[str, ...]]]:
    """One input per name across the options; options that share a name must declare it alike."""
    found: dict[str, tuple[Any, tuple[str, ...]]] = {}
    for owner, items in by_owner.items():
        for name, item in items.items():
            first, owners = found.get(name, (item, ()))
            if first != item:
                raise ImproperlyConfigured(
                    f"{owner!r} declares the input {name!r} unlike {owners[0]!r}: give one another name"
                )
            found[name] = (first, (*owners, owner))
    return found


def _formfield(model_field: models.Field, **kwargs: Any) -> forms.Field | None:
    """Model fields as inputs. A number's bounds come from the model's validators alone (their
    messages explain a value out of range) and reach the browser as min and max."""
    if model_field.name == "connector":  # the registry's kinds; the model's validator refuses others
        field = model_field.formfield(widget=forms.Select(choices=connector_choices), **kwargs)
        field.widget.attrs.pop("maxlength", None)
        return field
    if not isinstance(model_field, models.FloatField | models.IntegerField):
        return model_field.formfield(**kwargs)
    whole = isinstance(model_field, models.IntegerField)
    invalid = "Enter a whole number, e.g. 300." if whole else "Enter a number, e.g. 2.5."
    field = model_field.formfield(
        min_value=None, max_value=None, error_messages={"invalid": invalid}, **kwargs
    )
    lows = [v.limit_value for v in model_field.validators if isinstance(v, MinValueValidator)]
    highs = [v.limit_value for v in model_field.validators if isinstance(v, MaxValueValidator)]
    if lows:
        field.widget.attrs["min"] = max(lows)
    if highs:
        field.widget.attrs["max"] = min(highs)
    return field


class SystemForm(forms.ModelForm):
    slug = forms.CharField(
        label="Short name",
        max_length=60,
        required=False,
        help_text="Lowercase letters, digits and hyphens; part of the webhook URL. Leave empty to make one from the name.",
    )
    webhook_secret = _secret_field("Webhook signing secret", max_length=500)

    class Meta:
        model = System
        # The JSON settings are not inputs: they are built from the declared inputs (see CHOICES).
        fields = [name for name in SYSTEM_FIELDS if name not in {choice.stored_in for choice in CHOICES}]
        field_classes = {"base_url": forms.CharField}  # not URLField: it would quietly add https://
        widgets = {"base_url": forms.URLInput(attrs={"placeholder": "https://", "spellcheck": "false"})}
        formfield_callback = _formfield

    def __init__(self, *args: Any, instance: System | None = None, **kwargs: Any) -> None:
        # A copy: validating fills in the instance, and the services compare it with the stored one.
        super().__init__(*args, instance=copy.copy(instance), **kwargs)
        if instance is None:
            self.initial.setdefault("signature_scheme", SignatureScheme.HMAC_SHA256)
            self.fields["template"] = forms.ChoiceField(
                label="Which system is it?",
                required=False,
                choices=template_choices(),
                help_text="Choosing a well-known system fills in its address, sign-in method and how its "
                "webhooks are signed and read. You can change each value afterwards.",
            )
            self.order_fields(["template"])
            del self.fields["vendor_template"]  # the chooser above sets it
        else:
            self.fields["vendor_template"] = forms.ChoiceField(
                label="Set up from the template",
                required=False,
                choices=template_choices(
                    kept=self.instance.vendor_template, none="None (not a well-known system)"
                ),
                help_text="The well-known system it is: its data models are offered when you add one, and "
                "its webhook handshakes are answered.",
            )
            self.fields[
                "slug"
            ].help_text += " Changing it changes the webhook URL: update it at the vendor too."
        self.fields["signature_header"].required = False  # only needed when webhooks are signed
        # A client that does not send where the version goes keeps what is stored (or the default).
        self.fields["api_version_in"].required = False
        for name, words in PLAIN_WORDS.items():
            field = self.fields[name]
            field.label = words.get("label", field.label)
            field.help_text = words.get("help", field.help_text)
            if "choices" in words:
                field.choices = words["choices"]
        self.declared: dict[str, DeclaredInput] = {}
        for choice in CHOICES:
            self._add_declared(choice)
        secrets = _union({str(scheme): method.secrets for scheme, method in AUTH_SCHEMES.items()})
        self.secrets = {name: owners for name, (_, owners) in secrets.items()}
        for name, (secret, _) in secrets.items():
            self._add(name, _secret_field(secret.label, secret.masked))
        for name in [*self.secrets, "webhook_secret"]:
            if self.stored(name):
                self.fields[name].widget.attrs["placeholder"] = KEEP_PLACEHOLDER

    def _add(self, name: str, field: forms.Field) -> None:
        if name in self.fields:
            raise ImproperlyConfigured(
                f"the system form already has an input {name!r}; give the setting an input_name"
            )
        self.fields[name] = field

    def _add_declared(self, choice: Choice) -> None:
        configs = choice.configs()
        chosen = getattr(self.instance, choice.field)
        stored = (
            config_load(configs[chosen], getattr(self.instance, choice.stored_in))
            if chosen in configs
            else None
        )
        inputs = _union({owner: {d.name: d for d in declared(config)} for owner, config in configs.items()})
        for name, (item, owners) in inputs.items():
            self._add(name, _setting_field(item))
            # The stored value where the chosen option declares it, else the default.
            self.initial.setdefault(name, getattr(stored, item.key) if chosen in owners else item.default)
            self.declared[name] = DeclaredInput(item, owners, choice)

    def stored(self, name: str) -> bool:
        return self.instance.has_secret(name)

    # -- checks ----------------------------------------------------------------------------------

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if System.objects.filter(name__iexact=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("There is already a system with this name. Choose another name.")
        return name

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"].strip()
        if not slug:
            return ""
        if not SLUG.match(slug):
            raise forms.ValidationError(
                "Use lowercase letters, digits and single hyphens only, e.g. sales-crm."
            )
        if System.objects.filter(slug=slug).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("Another system already uses this short name.")
        return slug

    def clean_api_version_in(self) -> str:
        return self.cleaned_data.get("api_version_in") or self.instance.api_version_in

    def clean_base_url(self) -> str:
        url = self.cleaned_data["base_url"].strip()
        if url:
            if placeholders := [p for p in PLACEHOLDER.findall(url) if p != VERSION_PLACEHOLDER]:
                raise forms.ValidationError(
                    f"Replace {', '.join(placeholders)} with your own value, e.g. your account's name."
                )
            try:
                URLValidator(schemes=["http", "https"])(url.replace(VERSION_PLACEHOLDER, "v1"))
            except forms.ValidationError:
                raise forms.ValidationError(
                    "Enter a full web address starting with http:// or https://, e.g. https://api.example.com."
                ) from None
        return url

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "template" in self.fields:
            self.instance.vendor_template = data.get("template") or ""
        for choice in CHOICES:
            self._clean_declared(choice)
        self._clean_secrets()
        self._clean_signature()
        return data

    def _clean_declared(self, choice: Choice) -> None:
        """Check the chosen option's settings and keep them on the instance."""
        config = choice.configs().get(self.cleaned_data.get(choice.field))
        if config is None:
            return  # the choice itself has an error that says why
        items = declared(config)
        values = {item.key: self._declared_value(item.name) for item in items}
        problems = config_problems(config, values)
        for item in items:
            if item.name not in self.errors:
                for message in problems.get(item.key, ()):
                    self.add_error(item.name, message)
        if not problems:
            setattr(self.instance, choice.stored_in, values)

    def _declared_value(self, name: str) -> Any:
        field = self.fields[name]
        if field.widget.value_omitted_from_data(self.data, self.files, self.add_prefix(name)):
            return self.get_initial_for_field(field, name)  # a client that does not send it keeps it
        return self.cleaned_data.get(name)

    def _clean_secrets(self) -> None:
        method = AUTH_SCHEMES.get(self.cleaned_data.get("auth_scheme"))
        for key, secret in (method.secrets if method else {}).items():
            if not self.cleaned_data.get(key) and not self.stored(key) and key not in self.errors:
                self.add_error(key, f"Enter the {secret.noun}; the system needs it to let us in.")

    def _clean_signature(self) -> None:
        data = self.cleaned_data
        if data.get("signature_scheme", SignatureScheme.NONE) == SignatureScheme.NONE:
            # Unused while webhooks are not signed: an emptied input keeps what is stored.
            data["signature_header"] = data.get("signature_header") or self.instance.signature_header
            return
        if not data.get("signature_header") and "signature_header" not in self.errors:
            self.add_error("signature_header", "Enter the name of the header that carries the signature.")
        if (
            data.get("signature_scheme") == SignatureScheme.STANDARD_WEBHOOKS
            and "webhook_secret" not in self.errors
        ):
            kept = "" if self.instance.secret_unreadable("webhook_secret") else self.instance.secret
            if data.get("webhook_secret") and not is_standard_webhooks_secret(data["webhook_secret"]):
                self.add_error("webhook_secret", WHSEC_EXPECTED)
            elif not data.get("webhook_secret") and kept and not is_standard_webhooks_secret(kept):
                self.add_error(
                    "webhook_secret", "The stored signing secret is not of that form. " + WHSEC_EXPECTED
                )
        if (
            not data.get("webhook_secret")
            and not self.stored("webhook_secret")
            and "webhook_secret" not in self.errors
        ):
            self.add_error(
                "webhook_secret",
                "Enter the signing secret the vendor shows for its webhooks, or choose “Not signed”.",
            )

    # -- what the page and the services get -------------------------------------------------------

    def declared_inputs(self, choice_field: str) -> dict[str, Any]:
        """The declared inputs of one choice, for the page: the usual ones and those under "More"."""
        rows = [
            {
                "field": self[name],
                "owners": " ".join(found.owners),
                "required": bool(found.item.setting.required),
                "advanced": found.item.setting.advanced,
            }
            for name, found in self.declared.items()
            if found.choice.field == choice_field
        ]
        more = [row for row in rows if row["advanced"]]
        return {
            "choice": choice_field,
            "inputs": [row for row in rows if not row["advanced"]],
            "more": more,
            "more_owners": " ".join(sorted({o for row in more for o in row["owners"].split()})),
            "more_open": any(row["field"].errors for row in more),
        }

    def advanced_open(self, names: tuple[str, ...]) -> bool:
        """An "Advanced" part opens by itself when one of its inputs has an error to show."""
        return any(name in self.errors for name in names)

    def secret_inputs(self) -> list[dict[str, Any]]:
        return [
            {
                "field": self[name],
                "owners": " ".join(owners),
                "stored": self.stored(name),
                "unreadable": self.instance.secret_unreadable(name),
            }
            for name, owners in self.secrets.items()
        ]

    def system_fields(self) -> dict[str, Any]:
        """The system's new field values, for system_create and system_update."""
        return {name: getattr(self.instance, name) for name in SYSTEM_FIELDS}

    def credentials(self) -> dict[str, str]:
        method = AUTH_SCHEMES[self.cleaned_data["auth_scheme"]]
        return {k: self.cleaned_data[k] for k in method.secrets if self.cleaned_data.get(k)}

    def webhook_secret_value(self) -> str:
        return self.cleaned_data.get("webhook_secret") or ""


class CredentialsForm(forms.Form):
    """Replace only the secrets of a system, keeping its sign-in method."""

    webhook_secret = _secret_field("Webhook signing secret", max_length=500)

    def __init__(self, *args: Any, instance: System, **kwargs: Any) -> None:
        self.instance = instance
        super().__init__(*args, **kwargs)
        secrets = instance.auth_secrets()
        for key, secret in secrets.items():
            self.fields[key] = _secret_field(secret.label, secret.masked)
        self.order_fields([*secrets, "webhook_secret"])
        for name in self.fields:
            if self.stored(name):
                self.fields[name].widget.attrs["placeholder"] = KEEP_PLACEHOLDER

    def stored(self, name: str) -> bool:
        return self.instance.has_secret(name)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not any(data.get(name) for name in self.fields):
            raise forms.ValidationError("Type at least one new value; empty inputs keep what is stored.")
        for name in self.fields:
            if self.instance.secret_unreadable(name) and not data.get(name) and self._in_use(name):
                self.add_error(name, "The stored value cannot be read any more: type it again.")
        secret = data.get("webhook_secret")
        if self.instance.signature_scheme == SignatureScheme.STANDARD_WEBHOOKS and secret:
            if not is_standard_webhooks_secret(secret):
                self.add_error("webhook_secret", WHSEC_EXPECTED)
        return data

    def _in_use(self, name: str) -> bool:
        if name == "webhook_secret":
            return self.instance.signature_scheme != SignatureScheme.NONE
        return True

    def credentials(self) -> dict[str, str]:
        return {k: v for k, v in self.cleaned_data.items() if k != "webhook_secret" and v}

    def webhook_secret_value(self) -> str:
        return self.cleaned_data.get("webhook_secret") or ""
