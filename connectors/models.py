"""Registered systems. What a person may set on a system is written once, here: the System fields
(with their labels, help and checks, which the system form takes over), the sign-in methods in
connectors/auth.py and each connector's settings in its own Config."""

from datetime import UTC
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.text import slugify

from connectors.apiversion import VersionIn, VersionPlacement, placement_problems
from connectors.auth import AUTH_SCHEMES, AuthScheme, auth_settings, token_url
from connectors.config import config_load, config_problems, header_name, problems_in_words
from connectors.crypto import EncryptedJSONField, is_unreadable
from connectors.netpolicy import outbound_allowed, refusal_in_words, url_problem
from connectors.registry import CONNECTORS, connector_class, connector_label, validate_connector


class SystemKind(models.TextChoices):
    CRM = "crm", "CRM"
    ACCOUNTING = "accounting", "Accounting"
    INVENTORY = "inventory", "Inventory"
    HR = "hr", "HR"
    ECOMMERCE = "ecommerce", "E-commerce"
    PAYMENTS = "payments", "Payments"
    HELPDESK = "helpdesk", "Helpdesk"
    CODE_HOSTING = "code_hosting", "Code hosting"
    MESSAGING = "messaging", "Messaging"
    OTHER = "other", "Other"


# Which credential keys each sign-in method needs, read from AUTH_SCHEMES; kept under this name for
# hub/services/specification.py.
AUTH_SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    scheme: tuple(method.secrets) for scheme, method in AUTH_SCHEMES.items()
}
# Stored encrypted and set only through their own write-only inputs.
SECRET_FIELDS = ("credentials", "webhook_secret")
SECRET_NAMES = {"credentials": "sign-in credentials", "webhook_secret": "webhook signing secret"}
PATH_IN_PAYLOAD = RegexValidator(
    r"^(header:[A-Za-z0-9!#$%&'*+.^_`|~-]+|[A-Za-z0-9_$@\-]+(\[\])?(\.[A-Za-z0-9_$@\-]+(\[\])?)*)$",
    "Use a field name or dotted path such as data.id, or header:Header-Name.",
)


def at_least(limit: float) -> MinValueValidator:
    return MinValueValidator(limit, "Use at least %(limit_value)s.")


def at_most(limit: float) -> MaxValueValidator:
    return MaxValueValidator(limit, "Use at most %(limit_value)s.")


def payload_path(verbose_name: str, default: str, help_text: str, blank: bool = False) -> models.CharField:
    """Where an inbound payload keeps something: a dotted path in the JSON body, or "header:<Name>"."""
    return models.CharField(
        verbose_name,
        max_length=200,
        blank=blank,
        default=default,
        validators=[PATH_IN_PAYLOAD],
        help_text=help_text,
    )


def no_spaces(value: str) -> None:
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValidationError("The prefix cannot contain spaces.")


class SignatureScheme(models.TextChoices):
    NONE = "none", "Not signed"
    HMAC_SHA256 = "hmac_sha256", "HMAC-SHA256 of the body"
    TIMESTAMPED = "timestamped_hmac_sha256", "Timestamped HMAC-SHA256 (t=…,v1=…)"
    STANDARD_WEBHOOKS = "standard_webhooks", "Standard Webhooks (webhook-id, webhook-timestamp, v1,…)"
    SLACK = "slack_v0", "Slack (v0=… over v0:timestamp:body)"
    ZENDESK = "zendesk", "Zendesk (Base64 over the timestamp header and the body)"


class SignatureEncoding(models.TextChoices):
    HEX = "hex", "Hexadecimal"
    BASE64 = "base64", "Base64"


class System(models.Model):
    """A registered business system the hub receives events from and/or writes records to."""

    name = models.CharField(
        max_length=100, unique=True, help_text="How people here call it, e.g. “Sales CRM”."
    )
    slug = models.SlugField(max_length=60, unique=True, help_text="Used in the webhook URL /hooks/<slug>/.")
    kind = models.CharField(
        "kind of system", max_length=20, choices=SystemKind.choices, default=SystemKind.OTHER
    )
    # The vendor template (connectors/vendor_templates/<slug>.json) it was set up from, if any: it
    # offers the vendor's data models and answers the vendor's webhook handshakes.
    vendor_template = models.SlugField(
        "set up from the template",
        max_length=60,
        blank=True,
        help_text="The well-known system it is, if any. Its data models are offered when you add one.",
    )
    connector = models.CharField(
        "kind of API",
        max_length=40,
        default="rest",
        validators=[validate_connector],
        help_text="How the hub talks to the system's API.",
    )
    base_url = models.URLField(
        "API base URL",
        max_length=500,
        blank=True,
        help_text="Where the system's API lives, e.g. https://api.example.com/v2. "
        "Leave empty if it only sends us webhooks.",
    )
    api_version = models.CharField(
        "API version",
        max_length=40,
        blank=True,
        help_text="The version of the system's API the hub speaks, e.g. v2 or 2024-06-01. Leave empty "
        "when the system has none.",
    )
    api_version_in = models.CharField(
        "where the API version goes",
        max_length=10,
        choices=VersionIn.choices,
        default=VersionIn.HEADER,
        help_text="In a header, in the address (put {version} in the base URL where it goes, or the "
        "hub replaces the part that looks like a version, such as /v1/), or in a query parameter.",
    )
    api_version_name = models.CharField(
        "header or query parameter name",
        max_length=100,
        blank=True,
        default="X-Api-Version",
        help_text="The name of the header or query parameter that carries the version, e.g. "
        "X-Api-Version or api-version. Not used when the version is in the address.",
    )
    auth_scheme = models.CharField(
        "sign-in method",
        max_length=40,
        choices=[(scheme.value, method.label) for scheme, method in AUTH_SCHEMES.items()],
        default=AuthScheme.NONE.value,
    )
    # Non-secret sign-in settings (the method's `settings` class in connectors/auth.py): header name
    # for API keys, OAuth2 token URL and scope.
    auth_config = models.JSONField(default=dict, blank=True)
    credentials = EncryptedJSONField(blank=True, default=dict)
    rate_limit_per_second = models.FloatField(
        "rate limit per second",
        null=True,
        blank=True,
        validators=[at_least(0.01), at_most(10000)],
        help_text="The most the hub may send per second, across all workers. Leave empty for no limit.",
    )
    max_in_flight = models.PositiveSmallIntegerField(
        "calls at once",
        null=True,
        blank=True,
        validators=[at_least(1), at_most(1000)],
        help_text="The most calls the hub keeps waiting on this system at the same time. Leave empty for "
        "the hub's default (the system's page shows it).",
    )
    connect_timeout = models.FloatField(
        "connect timeout (seconds)", default=3.0, validators=[at_least(0.1), at_most(60)]
    )
    read_timeout = models.FloatField(
        "answer timeout (seconds)", default=10.0, validators=[at_least(0.1), at_most(300)]
    )

    webhook_secret = EncryptedJSONField(blank=True, default=dict)
    signature_scheme = models.CharField(
        "webhook signature", max_length=40, choices=SignatureScheme.choices, default=SignatureScheme.NONE
    )
    signature_header = models.CharField(max_length=100, default="X-Signature", validators=[header_name])
    signature_encoding = models.CharField(
        max_length=10, choices=SignatureEncoding.choices, default=SignatureEncoding.HEX
    )
    signature_prefix = models.CharField(
        max_length=40,
        blank=True,
        default="sha256=",
        validators=[no_spaces],
        help_text="Text before the signature in the header, e.g. sha256=. May be empty.",
    )
    signature_tolerance_seconds = models.PositiveIntegerField(
        "maximum age of a signature (seconds)",
        default=300,
        validators=[MinValueValidator(1), MaxValueValidator(86400)],
        help_text="Older webhooks are refused, so a captured one cannot be replayed later.",
    )
    event_type_path = payload_path(
        "where the event type is",
        "type",
        "A field of the payload (e.g. type or meta.event) or a header (header:X-Event-Type).",
    )
    idempotency_key_path = payload_path(
        "where the event's unique id is", "id", "Used to ignore a webhook the vendor sends twice."
    )
    record_path = payload_path(
        "where the record is",
        "data",
        "The field holding the business record, e.g. data. Empty means the whole payload.",
        blank=True,
    )

    # The connector's own settings (its `Config` class); read them through connector_config().
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.slug:
            self.slug = slugify(self.name)[:60]
        super().save(*args, **kwargs)

    @property
    def secret(self) -> str:
        """The inbound webhook signing secret ("" when none is set)."""
        return (self.webhook_secret or {}).get("secret", "")

    def connector_config(self):
        """This system's settings for its connector, typed (the connector's `Config`)."""
        return config_load(connector_class(self.connector).Config, self.settings)

    def connector_label(self) -> str:
        return connector_label(self.connector)

    def auth_secrets(self):
        """The write-only credentials its sign-in method needs: key -> Secret (label, noun)."""
        method = AUTH_SCHEMES.get(self.auth_scheme)
        return method.secrets if method else {}

    def has_secret(self, name: str) -> bool:
        """Is a value stored for this credential (or for "webhook_secret")? Never the value itself."""
        if name == "webhook_secret":
            return bool(self.secret)
        return bool((self.credentials or {}).get(name))

    def secret_unreadable(self, name: str) -> bool:
        """Is what is stored for this credential (or "webhook_secret") beyond the hub's keys?"""
        return is_unreadable(self.webhook_secret if name == "webhook_secret" else self.credentials)

    def credential_status(self) -> dict[str, bool]:
        """Which credential fields are set, for display: never the values themselves."""
        return {name: self.has_secret(name) for name in self.auth_secrets()}

    def unreadable_secrets(self) -> list[str]:
        """The stored secrets none of HUB_ENCRYPTION_KEYS opens: "credentials", "webhook_secret"."""
        return [name for name in SECRET_FIELDS if is_unreadable(getattr(self, name))]

    def unreadable_problem(self) -> str:
        """What is wrong and what to do when its secrets cannot be read, in plain words ("" if they can)."""
        unreadable = self.unreadable_secrets()
        if not unreadable:
            return ""
        what = " and ".join(SECRET_NAMES[name] for name in unreadable)
        return (
            f"The hub cannot read the stored {what} of {self.name}: they were saved with an encryption "
            "key that is not in HUB_ENCRYPTION_KEYS. Add that key to HUB_ENCRYPTION_KEYS and restart, "
            "or enter the credentials again."
        )

    @property
    def calls_at_once(self) -> int:
        """How many calls to this system a worker may have waiting at the same time."""
        return self.max_in_flight or settings.HUB_MAX_IN_FLIGHT_PER_TARGET

    def outbound_urls(self) -> list[str]:
        """Where the hub calls this system: its base URL, and the token URL of OAuth2 sign-in."""
        urls = [self.base_url] if self.base_url else []
        if hasattr(auth_settings(self), "token_url"):
            urls.append(token_url(self))
        return urls

    def outbound_problem(self, *, resolve: bool = False) -> str:
        """Why the outbound policy refuses this system's address, with how to allow it ("" when it
        does not). Without `resolve` only the address itself is judged, as pages do; Test
        connection also asks DNS."""
        for url in self.outbound_urls():
            if problem := url_problem(url, resolve=resolve):
                return refusal_in_words(problem)
        return ""

    def clean_fields(self, exclude=None) -> None:
        """The field checks, and the JSON settings checked against the declared settings of the
        chosen sign-in method and connector."""
        try:
            super().clean_fields(exclude=exclude)
            errors = {}
        except ValidationError as exc:
            errors = exc.update_error_dict({})
        for name, config in self._settings_classes():
            if config is None or name in errors or name in (exclude or ()):
                continue
            if problems := config_problems(config, getattr(self, name)):
                errors[name] = problems_in_words(problems)
        if "base_url" not in errors and "base_url" not in (exclude or ()):
            try:
                outbound_allowed(self.base_url)
            except ValidationError as exc:
                errors["base_url"] = exc.messages
        for name, problem in self.version_problems().items():
            if name not in errors and name not in (exclude or ()):
                errors[name] = [problem]
        if errors:
            raise ValidationError(errors)

    def version_placement(self) -> VersionPlacement:
        """This system's API version and where its calls carry it."""
        return VersionPlacement.of(self)

    def version_problems(self) -> dict[str, str]:
        values = (self.api_version, self.api_version_in, self.api_version_name, self.base_url)
        if not all(isinstance(value, str) for value in values):
            return {}  # the fields' own checks name what is wrong
        return placement_problems(
            version=self.api_version,
            where=self.api_version_in,
            name=self.api_version_name,
            base_url=self.base_url,
        )

    def _settings_classes(self) -> list[tuple[str, type | None]]:
        method = AUTH_SCHEMES.get(self.auth_scheme)
        known = self.connector in CONNECTORS
        return [
            ("auth_config", method.settings if method else None),
            ("settings", connector_class(self.connector).Config if known else None),
        ]

    def redacted(self) -> dict[str, Any]:
        """A description safe for pages, logs, audit entries and exports: no secret values."""
        return {
            **{name: getattr(self, name) for name in SYSTEM_FIELDS},
            "credentials_set": self.credential_status(),
            "webhook_secret_set": bool(self.secret),
        }


# The fields a person sets directly (the system form, the services, the audit diff); the secrets
# have their own write-only way in.
SYSTEM_FIELDS: tuple[str, ...] = tuple(
    f.name
    for f in System._meta.concrete_fields
    if f.editable and not f.primary_key and f.name not in SECRET_FIELDS
)


class RateLimitBucket(models.Model):
    """Shared pacing state for one system when no Redis is configured (see connectors.ratelimit).
    Times are Unix seconds."""

    system = models.OneToOneField(System, on_delete=models.CASCADE, primary_key=True)
    next_free_at = models.FloatField(default=0.0)
    # The limit learned from the system's 429s: the rate right after the last decrease and when
    # that was (it recovers from there), and the end of the pause its Retry-After asked for.
    learned_rate = models.FloatField(null=True, blank=True)
    learned_at = models.FloatField(default=0.0)
    throttled_until = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"pace of system {self.system_id}"


class BreakerState(models.TextChoices):
    CLOSED = "closed", "closed"
    OPEN = "open", "open"
    HALF_OPEN = "half_open", "half-open"


class Circuit(models.Model):
    """One target system's circuit breaker, shared by every worker (see connectors.breaker).
    Times are Unix seconds."""

    system = models.OneToOneField(System, on_delete=models.CASCADE, primary_key=True, related_name="circuit")
    state = models.CharField(max_length=10, choices=BreakerState.choices, default=BreakerState.CLOSED)
    # Outcomes of the recent calls, per bucket of connectors.breaker.BUCKET_SECONDS:
    # {"<bucket start>": [answered, failed, rate limited]}. Kept as it was when the breaker opened.
    window = models.JSONField(default=dict, blank=True)
    changed_at = models.FloatField(default=0.0)
    open_until = models.FloatField(default=0.0)
    # The one call let through while half-open: who holds it, and until when before another may.
    probe_token = models.CharField(max_length=32, blank=True)
    probe_until = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"circuit of system {self.system_id}: {self.state}"


class ApiDeprecation(models.Model):
    """The latest thing a system's answers said about the end of one of its operations (its
    Deprecation, Sunset, Link and Warning headers; see connectors.deprecation)."""

    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="deprecations")
    method = models.CharField(max_length=10)
    # The resource path the hub called (the data model's, without a record id).
    path = models.CharField(max_length=300)
    deprecated = models.BooleanField(default=False)
    deprecated_since = models.DateTimeField(null=True, blank=True)
    sunset_at = models.DateTimeField(null=True, blank=True)
    link = models.URLField(max_length=500, blank=True)
    sunset_link = models.URLField(max_length=500, blank=True)
    warning = models.CharField(max_length=300, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    times_seen = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["sunset_at", "path", "method"]
        constraints = [
            models.UniqueConstraint(fields=["system", "method", "path"], name="deprecation_one_per_operation")
        ]

    def __str__(self) -> str:
        return f"{self.system}: {self.method} {self.path}"

    def days_left(self, now) -> int | None:
        """Calendar days (UTC, as the date is shown) from `now` to the switch-off; None when none
        was announced."""
        if self.sunset_at is None:
            return None
        return (self.sunset_at.astimezone(UTC).date() - now.astimezone(UTC).date()).days

    def in_words(self, now) -> str:
        """The notice as one plain sentence, for people who do not read headers."""
        said = f"{self.system} says {self.method} {self.path}"
        since = f" (since {self.deprecated_since.astimezone(UTC):%Y-%m-%d})" if self.deprecated_since else ""
        deprecated = f" is deprecated{since}" if self.deprecated else ""
        if self.sunset_at is None:
            if deprecated:
                return f"{said}{deprecated}; it has not said when it will be switched off."
            return f"{self.system} sends a warning about {self.method} {self.path}."
        days = self.days_left(now)
        joined = " and" if deprecated else ""
        if days < 0:
            return f"{said}{deprecated}{joined} was to be switched off on {self.sunset_at.astimezone(UTC):%Y-%m-%d}, {_days(-days)} ago."
        when = "today" if days == 0 else f"{_days(days)} from now"
        return f"{said}{deprecated}{joined} will be switched off on {self.sunset_at.astimezone(UTC):%Y-%m-%d}, {when}."


def _days(n: int) -> str:
    return f"{n} day{'' if n == 1 else 's'}"
