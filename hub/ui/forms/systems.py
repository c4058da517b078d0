"""The guided system form. Secret inputs are write-only: never filled in, empty keeps the stored value."""

import re
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator

from connectors.models import (
    AUTH_SECRET_FIELDS,
    AuthScheme,
    SignatureEncoding,
    SignatureScheme,
    System,
    SystemKind,
)

HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
PATH_IN_PAYLOAD = re.compile(
    r"^(header:[A-Za-z0-9!#$%&'*+.^_`|~-]+|[A-Za-z0-9_$@\-]+(\[\])?(\.[A-Za-z0-9_$@\-]+(\[\])?)*)$"
)

# label and input type, one row per credential key of AUTH_SECRET_FIELDS
SECRET_INPUTS: dict[str, tuple[str, str]] = {
    "api_key": ("API key", "password"),
    "token": ("Bearer token", "password"),
    "username": ("Username", "text"),
    "password": ("Password", "password"),
    "client_id": ("Client ID", "text"),
    "client_secret": ("Client secret", "password"),
}
SECRET_NOUNS = {
    "api_key": "API key",
    "token": "bearer token",
    "username": "username",
    "password": "password",
    "client_id": "client ID",
    "client_secret": "client secret",
}
KEEP_PLACEHOLDER = "Leave empty to keep the stored value"


class WriteOnlyTextInput(forms.TextInput):
    """A text input that never shows a value, not even the one just typed (like PasswordInput)."""

    def format_value(self, value: Any) -> None:
        return None


def _secret_field(label: str, kind: str, max_length: int = 2000) -> forms.CharField:
    attrs = {"autocomplete": "new-password" if kind == "password" else "off", "spellcheck": "false"}
    widget = forms.PasswordInput(attrs=attrs) if kind == "password" else WriteOnlyTextInput(attrs=attrs)
    return forms.CharField(label=label, required=False, max_length=max_length, widget=widget)


def _float(label: str, low: float, high: float, **kwargs: Any) -> forms.FloatField:
    return forms.FloatField(
        label=label,
        validators=[MinValueValidator(low), MaxValueValidator(high)],
        error_messages={
            "invalid": "Enter a number, e.g. 2.5.",
            "min_value": f"Use at least {low:g}.",
            "max_value": f"Use at most {high:g}.",
        },
        widget=forms.NumberInput(attrs={"step": "any", "min": low, "max": high}),
        **kwargs,
    )


class SystemForm(forms.Form):
    # 1. What is it
    kind = forms.ChoiceField(label="Kind of system", choices=SystemKind.choices, initial=SystemKind.OTHER)
    name = forms.CharField(
        label="Name", max_length=100, help_text="How people here call it, e.g. “Sales CRM”."
    )
    slug = forms.CharField(
        label="Short name",
        max_length=60,
        required=False,
        help_text="Lowercase letters, digits and hyphens; part of the webhook URL. Leave empty to make one from the name.",
    )
    # 2. Where
    base_url = forms.CharField(
        label="API base URL",
        max_length=500,
        required=False,
        help_text="Where the system's REST API lives, e.g. https://api.example.com/v2. "
        "Leave empty if it only sends us webhooks.",
        widget=forms.URLInput(attrs={"placeholder": "https://", "spellcheck": "false"}),
    )
    api_version = forms.CharField(
        label="API version",
        max_length=40,
        required=False,
        help_text="Sent as the X-Api-Version header when set, e.g. 2024-06-01.",
    )
    connect_timeout = _float("Connect timeout (seconds)", 0.1, 60, initial=3.0)
    read_timeout = _float("Answer timeout (seconds)", 0.1, 300, initial=10.0)
    rate_limit_per_second = _float(
        "Rate limit per second",
        0.01,
        10000,
        required=False,
        help_text="The most the hub may send per second, across all workers. Leave empty for no limit.",
    )
    health_path = forms.CharField(
        label="Path to test the connection",
        max_length=300,
        required=False,
        help_text="A path that needs sign-in, e.g. /deals. Used by “Test connection” until the system has a data model.",
    )
    # 3. How we sign in
    auth_scheme = forms.ChoiceField(
        label="Sign-in method", choices=AuthScheme.choices, initial=AuthScheme.NONE
    )
    api_key_header = forms.CharField(
        label="Header for the API key",
        max_length=100,
        required=False,
        initial="X-Api-Key",
        help_text="The vendor's documentation names it.",
    )
    token_url = forms.CharField(
        label="Token URL",
        max_length=500,
        required=False,
        initial="/oauth/token",
        help_text="Full URL, or a path on the base URL such as /oauth/token.",
    )
    scope = forms.CharField(
        label="Scope", max_length=300, required=False, help_text="Optional; space separated."
    )
    api_key = _secret_field(*SECRET_INPUTS["api_key"])
    token = _secret_field(*SECRET_INPUTS["token"])
    username = _secret_field(*SECRET_INPUTS["username"])
    password = _secret_field(*SECRET_INPUTS["password"])
    client_id = _secret_field(*SECRET_INPUTS["client_id"])
    client_secret = _secret_field(*SECRET_INPUTS["client_secret"])
    # 4. Webhooks
    signature_scheme = forms.ChoiceField(
        label="Webhook signature", choices=SignatureScheme.choices, initial=SignatureScheme.HMAC_SHA256
    )
    signature_header = forms.CharField(
        label="Signature header", max_length=100, required=False, initial="X-Signature"
    )
    signature_encoding = forms.ChoiceField(
        label="Signature encoding", choices=SignatureEncoding.choices, initial=SignatureEncoding.HEX
    )
    signature_prefix = forms.CharField(
        label="Signature prefix",
        max_length=40,
        required=False,
        initial="sha256=",
        help_text="Text before the signature in the header, e.g. sha256=. May be empty.",
    )
    signature_tolerance_seconds = forms.IntegerField(
        label="Maximum age of a signature (seconds)",
        initial=300,
        min_value=1,
        max_value=86400,
        error_messages={"invalid": "Enter a whole number of seconds, e.g. 300."},
        help_text="Older webhooks are refused, so a captured one cannot be replayed later.",
    )
    webhook_secret = _secret_field("Webhook signing secret", "password", max_length=500)
    event_type_path = forms.CharField(
        label="Where the event type is",
        max_length=200,
        initial="type",
        help_text="A field of the payload (e.g. type or meta.event) or a header (header:X-Event-Type).",
    )
    idempotency_key_path = forms.CharField(
        label="Where the event's unique id is",
        max_length=200,
        initial="id",
        help_text="Used to ignore a webhook the vendor sends twice.",
    )
    record_path = forms.CharField(
        label="Where the record is",
        max_length=200,
        required=False,
        initial="data",
        help_text="The field holding the business record, e.g. data. Empty means the whole payload.",
    )

    def __init__(self, *args: Any, instance: System | None = None, **kwargs: Any) -> None:
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(instance)
        super().__init__(*args, **kwargs)
        for name in self.secret_names():
            if self.stored(name):
                self.fields[name].widget.attrs["placeholder"] = KEEP_PLACEHOLDER
        if instance is not None:
            self.fields[
                "slug"
            ].help_text += " Changing it changes the webhook URL: update it at the vendor too."

    @staticmethod
    def initial_from(system: System) -> dict[str, Any]:
        initial = {
            name: getattr(system, name)
            for name in (
                "kind",
                "name",
                "slug",
                "base_url",
                "api_version",
                "connect_timeout",
                "read_timeout",
                "rate_limit_per_second",
                "auth_scheme",
                "signature_scheme",
                "signature_header",
                "signature_encoding",
                "signature_prefix",
                "signature_tolerance_seconds",
                "event_type_path",
                "idempotency_key_path",
                "record_path",
            )
        }
        config = system.auth_config or {}
        initial["api_key_header"] = config.get("header", "X-Api-Key")
        initial["token_url"] = config.get("token_url", "/oauth/token")
        initial["scope"] = config.get("scope", "")
        initial["health_path"] = (system.settings or {}).get("health_path", "")
        return initial

    @staticmethod
    def secret_names() -> list[str]:
        return [*SECRET_INPUTS, "webhook_secret"]

    def stored(self, name: str) -> bool:
        """Is a value already stored for this secret input? Never the value itself."""
        if self.instance is None:
            return False
        if name == "webhook_secret":
            return bool(self.instance.secret)
        return bool((self.instance.credentials or {}).get(name))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        others = System.objects.filter(name__iexact=name)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
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
        others = System.objects.filter(slug=slug)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError("Another system already uses this short name.")
        return slug

    def clean_base_url(self) -> str:
        url = self.cleaned_data["base_url"].strip()
        if url:
            try:
                URLValidator(schemes=["http", "https"])(url)
            except forms.ValidationError:
                raise forms.ValidationError(
                    "Enter a full web address starting with http:// or https://, e.g. https://api.example.com."
                ) from None
        return url

    def clean_health_path(self) -> str:
        path = self.cleaned_data["health_path"].strip()
        if path and (not path.startswith("/") or path.startswith("//") or any(c.isspace() for c in path)):
            raise forms.ValidationError("Start the path with “/”, without spaces, e.g. /deals.")
        return path

    def _check_header(self, name: str, what: str) -> None:
        value = (self.cleaned_data.get(name) or "").strip()
        self.cleaned_data[name] = value
        if not value:
            self.add_error(name, f"Enter the name of the {what}.")
        elif not HEADER_NAME.match(value):
            self.add_error(name, "A header name has letters, digits and hyphens only, e.g. X-Api-Key.")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        scheme = data.get("auth_scheme")
        if scheme == AuthScheme.API_KEY:
            self._check_header("api_key_header", "header that carries the API key")
        if scheme == AuthScheme.OAUTH2:
            url = (data.get("token_url") or "").strip()
            data["token_url"] = url
            if not url:
                self.add_error("token_url", "Enter the token URL, e.g. /oauth/token.")
            elif not url.startswith("/") or url.startswith("//"):
                try:
                    URLValidator(schemes=["http", "https"])(url)
                except forms.ValidationError:
                    self.add_error("token_url", "Enter a full https:// address or a path starting with “/”.")
        for key in AUTH_SECRET_FIELDS.get(scheme, ()):
            if not data.get(key) and not self.stored(key):
                self.add_error(key, f"Enter the {SECRET_NOUNS[key]}; the system needs it to let us in.")
        signature = data.get("signature_scheme")
        if signature and signature != SignatureScheme.NONE:
            self._check_header("signature_header", "header that carries the signature")
            if not data.get("webhook_secret") and not self.stored("webhook_secret"):
                self.add_error(
                    "webhook_secret",
                    "Enter the signing secret the vendor shows for its webhooks, or choose “Not signed”.",
                )
        for name in ("event_type_path", "idempotency_key_path", "record_path"):
            value = (data.get(name) or "").strip()
            data[name] = value
            if value and not PATH_IN_PAYLOAD.match(value):
                self.add_error(
                    name, "Use a field name or dotted path such as data.id, or header:Header-Name."
                )
        prefix = data.get("signature_prefix") or ""
        if any(c.isspace() or not c.isprintable() for c in prefix):
            self.add_error("signature_prefix", "The prefix cannot contain spaces.")
        return data

    # -- what the services get -------------------------------------------------------------------

    def system_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        scheme = data["auth_scheme"]
        auth_config: dict[str, str] = {}
        if scheme == AuthScheme.API_KEY:
            auth_config["header"] = data["api_key_header"]
        elif scheme == AuthScheme.OAUTH2:
            auth_config["token_url"] = data["token_url"]
            if data.get("scope", "").strip():
                auth_config["scope"] = data["scope"].strip()
        settings = dict(self.instance.settings or {}) if self.instance is not None else {}
        if data.get("health_path"):
            settings["health_path"] = data["health_path"]
        else:
            settings.pop("health_path", None)
        fields = {
            name: data[name]
            for name in (
                "kind",
                "name",
                "slug",
                "base_url",
                "api_version",
                "connect_timeout",
                "read_timeout",
                "rate_limit_per_second",
                "auth_scheme",
                "signature_scheme",
                "signature_encoding",
                "signature_tolerance_seconds",
                "event_type_path",
                "idempotency_key_path",
                "record_path",
            )
        }
        fields["signature_header"] = data.get("signature_header") or (
            self.instance.signature_header if self.instance is not None else "X-Signature"
        )
        fields["signature_prefix"] = data.get("signature_prefix") or ""
        fields["auth_config"] = auth_config
        fields["settings"] = settings
        return fields

    def credentials(self) -> dict[str, str]:
        scheme = self.cleaned_data["auth_scheme"]
        return {
            k: self.cleaned_data[k] for k in AUTH_SECRET_FIELDS.get(scheme, ()) if self.cleaned_data.get(k)
        }

    def webhook_secret_value(self) -> str:
        return self.cleaned_data.get("webhook_secret") or ""


class CredentialsForm(forms.Form):
    """Replace only the secrets of a system, keeping its sign-in method."""

    webhook_secret = _secret_field("Webhook signing secret", "password", max_length=500)

    def __init__(self, *args: Any, instance: System, **kwargs: Any) -> None:
        self.instance = instance
        super().__init__(*args, **kwargs)
        for key in AUTH_SECRET_FIELDS.get(instance.auth_scheme, ()):
            self.fields[key] = _secret_field(*SECRET_INPUTS[key])
        self.order_fields([*AUTH_SECRET_FIELDS.get(instance.auth_scheme, ()), "webhook_secret"])
        for name in self.fields:
            if self.stored(name):
                self.fields[name].widget.attrs["placeholder"] = KEEP_PLACEHOLDER

    def stored(self, name: str) -> bool:
        if name == "webhook_secret":
            return bool(self.instance.secret)
        return bool((self.instance.credentials or {}).get(name))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not any(data.get(name) for name in self.fields):
            raise forms.ValidationError("Type at least one new value; empty inputs keep what is stored.")
        return data

    def credentials(self) -> dict[str, str]:
        return {k: v for k, v in self.cleaned_data.items() if k != "webhook_secret" and v}

    def webhook_secret_value(self) -> str:
        return self.cleaned_data.get("webhook_secret") or ""
