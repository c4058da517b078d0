from typing import Any

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.text import slugify

from connectors.crypto import EncryptedJSONField


class SystemKind(models.TextChoices):
    CRM = "crm", "CRM"
    ACCOUNTING = "accounting", "Accounting"
    INVENTORY = "inventory", "Inventory"
    HR = "hr", "HR"
    ECOMMERCE = "ecommerce", "E-commerce"
    PAYMENTS = "payments", "Payments"
    OTHER = "other", "Other"


class AuthScheme(models.TextChoices):
    NONE = "none", "No authentication"
    API_KEY = "api_key", "API key in a header"
    BEARER = "bearer", "Bearer token"
    BASIC = "basic", "Username and password (Basic)"
    OAUTH2 = "oauth2_client_credentials", "OAuth2 client credentials"


# Which credential keys each scheme needs; the forms and the connector read this one table.
AUTH_SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    AuthScheme.NONE: (),
    AuthScheme.API_KEY: ("api_key",),
    AuthScheme.BEARER: ("token",),
    AuthScheme.BASIC: ("username", "password"),
    AuthScheme.OAUTH2: ("client_id", "client_secret"),
}


class SignatureScheme(models.TextChoices):
    NONE = "none", "Not signed"
    HMAC_SHA256 = "hmac_sha256", "HMAC-SHA256 of the body"
    TIMESTAMPED = "timestamped_hmac_sha256", "Timestamped HMAC-SHA256 (t=…,v1=…)"


class SignatureEncoding(models.TextChoices):
    HEX = "hex", "Hexadecimal"
    BASE64 = "base64", "Base64"


class System(models.Model):
    """A registered business system the hub receives events from and/or writes records to."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=60, unique=True, help_text="Used in the webhook URL /hooks/<slug>/.")
    kind = models.CharField(max_length=20, choices=SystemKind.choices, default=SystemKind.OTHER)
    connector = models.CharField(max_length=40, default="rest")
    base_url = models.URLField(max_length=500, blank=True)
    api_version = models.CharField(max_length=40, blank=True)
    auth_scheme = models.CharField(max_length=40, choices=AuthScheme.choices, default=AuthScheme.NONE)
    # Non-secret auth settings: header name for API keys, OAuth2 token URL and scope.
    auth_config = models.JSONField(default=dict, blank=True)
    credentials = EncryptedJSONField(blank=True, default=dict)
    rate_limit_per_second = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.01)], help_text="Leave empty for no limit."
    )
    connect_timeout = models.FloatField(default=3.0, validators=[MinValueValidator(0.1)])
    read_timeout = models.FloatField(default=10.0, validators=[MinValueValidator(0.1)])

    webhook_secret = EncryptedJSONField(blank=True, default=dict)
    signature_scheme = models.CharField(
        max_length=40, choices=SignatureScheme.choices, default=SignatureScheme.NONE
    )
    signature_header = models.CharField(max_length=100, default="X-Signature")
    signature_encoding = models.CharField(
        max_length=10, choices=SignatureEncoding.choices, default=SignatureEncoding.HEX
    )
    signature_prefix = models.CharField(max_length=40, blank=True, default="sha256=")
    signature_tolerance_seconds = models.PositiveIntegerField(default=300)
    # Where an inbound payload keeps its event type and idempotency key: a dotted path in the JSON
    # body, or "header:<Name>".
    event_type_path = models.CharField(max_length=200, default="type")
    idempotency_key_path = models.CharField(max_length=200, default="id")
    record_path = models.CharField(
        max_length=200,
        blank=True,
        default="data",
        help_text="Where the record sits in the payload; empty = whole payload.",
    )

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

    def credential_status(self) -> dict[str, bool]:
        """Which credential fields are set, for display: never the values themselves."""
        stored = self.credentials or {}
        return {name: bool(stored.get(name)) for name in AUTH_SECRET_FIELDS.get(self.auth_scheme, ())}

    def redacted(self) -> dict[str, Any]:
        """A description safe for pages, logs, audit entries and exports: no secret values."""
        return {
            "name": self.name,
            "slug": self.slug,
            "kind": self.kind,
            "connector": self.connector,
            "base_url": self.base_url,
            "api_version": self.api_version,
            "auth_scheme": self.auth_scheme,
            "auth_config": self.auth_config,
            "credentials_set": self.credential_status(),
            "rate_limit_per_second": self.rate_limit_per_second,
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "signature_scheme": self.signature_scheme,
            "signature_header": self.signature_header,
            "signature_encoding": self.signature_encoding,
            "signature_prefix": self.signature_prefix,
            "signature_tolerance_seconds": self.signature_tolerance_seconds,
            "webhook_secret_set": bool(self.secret),
            "event_type_path": self.event_type_path,
            "idempotency_key_path": self.idempotency_key_path,
            "record_path": self.record_path,
        }


class RateLimitBucket(models.Model):
    """Shared pacing state for one system when no Redis is configured (see connectors.ratelimit)."""

    system = models.OneToOneField(System, on_delete=models.CASCADE, primary_key=True)
    next_free_at = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"pace of system {self.system_id}"
