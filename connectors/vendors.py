"""Vendor templates: what a well-known system is, as data. One JSON file per vendor in
connectors/vendor_templates/ (adding a vendor is adding a file); `vendor_catalogue` loads and checks
them all, and `VendorTemplate.form_values` gives the register-a-system form's pre-filled inputs.

A file holds (only "name" and "category" are required; leave out what the vendor does not document):

    {"name": "Stripe", "category": "payments", "docs": "https://…",
     "base_url": "https://api.stripe.com/v1",            # {placeholders} are for the admin to fill in
     "auth": {"scheme": "bearer", "config": {}},          # config: the sign-in method's settings
     "webhook": {"scheme": "timestamped_hmac_sha256", "header": "Stripe-Signature",
                 "encoding": "hex", "prefix": ""},
     "event_type": "type", "idempotency_key": "id", "record": "data.object",   # or "header:<Name>"
     "api_version": {"in": "header", "name": "Stripe-Version", "value": "2024-06-20"},
                                  # "in": header | path ({version} or a /v1/-like part) | query
     "notes": "What the admin should know that the form cannot say.",
     "models": {"Customer": {"path": "/customers", "sample": {…}}}}
"""

import json
import logging
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError

from connectors.apiversion import VersionIn, placement_problems
from connectors.auth import AUTH_SCHEMES
from connectors.config import config_problems, declared, header_name, problems_in_words
from connectors.models import PATH_IN_PAYLOAD, SignatureEncoding, SignatureScheme, SystemKind

TEMPLATES_DIR = Path(__file__).parent / "vendor_templates"
logger = logging.getLogger(__name__)

# The catalogue's categories; each but the open standards is also a kind of system.
CATEGORIES: dict[str, str] = {
    SystemKind.CRM: "CRM",
    SystemKind.ACCOUNTING: "Accounting",
    SystemKind.PAYMENTS: "Payments",
    SystemKind.ECOMMERCE: "E-commerce",
    SystemKind.HR: "HR",
    SystemKind.HELPDESK: "Helpdesk",
    SystemKind.CODE_HOSTING: "Code hosting",
    SystemKind.MESSAGING: "Messaging",
    "webhook_standard": "Open webhook standards",
}
KEYS = {"name", "category", "docs", "base_url", "auth", "webhook", "event_type", "idempotency_key"}
KEYS |= {"record", "notes", "models", "api_version"}
API_VERSION_KEYS = {"in", "name", "value"}
# Template api_version key → the form input it fills.
API_VERSION_INPUTS = {"in": "api_version_in", "name": "api_version_name", "value": "api_version"}
WEBHOOK_KEYS = {"scheme", "header", "encoding", "prefix"}
# Template key → the form input it fills.
PAYLOAD_PATHS = {"event_type": "event_type_path", "idempotency_key": "idempotency_key_path"}
PAYLOAD_PATHS |= {"record": "record_path"}
WEBHOOK_INPUTS = {"scheme": "signature_scheme", "header": "signature_header"}
WEBHOOK_INPUTS |= {"encoding": "signature_encoding", "prefix": "signature_prefix"}


class TemplateError(ValueError):
    """A template file that cannot be used, and why."""


@dataclass(frozen=True)
class VendorTemplate:
    slug: str  # the file's name without .json
    name: str
    category: str
    data: dict[str, Any] = field(repr=False)

    @property
    def kind(self) -> str:
        return self.category if self.category in SystemKind.values else SystemKind.OTHER

    @property
    def notes(self) -> str:
        return self.data.get("notes", "")

    @property
    def models(self) -> dict[str, dict[str, Any]]:
        return self.data.get("models", {})

    def form_values(self) -> dict[str, str]:
        """The register-a-system form's inputs this template fills, as the inputs hold them (text)."""
        values = {"kind": self.kind}
        if "base_url" in self.data:
            values["base_url"] = self.data["base_url"]
        if "auth" in self.data:
            scheme = self.data["auth"]["scheme"]
            values["auth_scheme"] = scheme
            config = self.data["auth"].get("config", {})
            for item in declared(AUTH_SCHEMES[scheme].settings):
                if item.key in config:
                    values[item.name] = config[item.key]
        for key, input_name in WEBHOOK_INPUTS.items():
            if key in self.data.get("webhook", {}):
                values[input_name] = self.data["webhook"][key]
        for key, input_name in PAYLOAD_PATHS.items():
            if key in self.data:
                values[input_name] = self.data[key]
        for key, input_name in API_VERSION_INPUTS.items():
            if key in self.data.get("api_version", {}):
                values[input_name] = self.data["api_version"][key]
        return {name: str(value) for name, value in values.items()}


def _text(data: dict[str, Any], key: str, *, required: bool = False) -> None:
    if key not in data:
        if required:
            raise TemplateError(f"{key!r} is required")
        return
    if not isinstance(data[key], str) or (required and not data[key].strip()):
        raise TemplateError(f"{key!r} must be {'non-empty ' if required else ''}text")


def _one_of(value: Any, allowed: Any, what: str) -> None:
    if value not in allowed:
        raise TemplateError(f"{what} {value!r} is not one of: {', '.join(map(str, allowed))}")


def _validated(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TemplateError("the file must hold one JSON object")
    _one_of_keys(data, KEYS, "key")
    for key in ("name", "category"):
        _text(data, key, required=True)
    for key in ("docs", "base_url", "notes", *PAYLOAD_PATHS):
        _text(data, key)
    _one_of(data["category"], CATEGORIES, "category")
    for key in PAYLOAD_PATHS:
        if data.get(key):
            _check(PATH_IN_PAYLOAD, data[key], key)
    if "auth" in data:
        auth = data["auth"]
        if not isinstance(auth, dict) or "scheme" not in auth:
            raise TemplateError('"auth" must be an object with a "scheme"')
        _one_of_keys(auth, {"scheme", "config"}, "auth key")
        _one_of(auth["scheme"], [str(s) for s in AUTH_SCHEMES], "auth scheme")
        problems = config_problems(AUTH_SCHEMES[auth["scheme"]].settings, auth.get("config", {}))
        if problems:
            raise TemplateError("auth config: " + "; ".join(problems_in_words(problems)))
    if "webhook" in data:
        webhook = data["webhook"]
        if not isinstance(webhook, dict) or "scheme" not in webhook:
            raise TemplateError('"webhook" must be an object with a "scheme"')
        _one_of_keys(webhook, WEBHOOK_KEYS, "webhook key")
        _one_of(webhook["scheme"], SignatureScheme.values, "signature scheme")
        _one_of(webhook.get("encoding", SignatureEncoding.HEX), SignatureEncoding.values, "encoding")
        if "header" in webhook:
            _check(header_name, webhook["header"], "webhook header")
    if "api_version" in data:
        _api_version_checked(data["api_version"], data.get("base_url", ""))
    models = data.get("models", {})
    if not isinstance(models, dict) or not all(
        isinstance(m, dict) and isinstance(m.get("sample"), dict) for m in models.values()
    ):
        raise TemplateError('"models" must map each resource name to {"path": …, "sample": {…}}')
    return data


def _api_version_checked(version: Any, base_url: str) -> None:
    if not isinstance(version, dict) or "in" not in version:
        raise TemplateError('"api_version" must be an object with "in" (header, path or query)')
    _one_of_keys(version, API_VERSION_KEYS, "api_version key")
    _one_of(version["in"], VersionIn.values, "api_version in")
    if not all(isinstance(value, str) for value in version.values()):
        raise TemplateError('"api_version" values must be text')
    # The vendor's own {placeholders} are for the admin; only the version's is checked here.
    problems = placement_problems(
        version=version.get("value", ""),
        where=version["in"],
        name=version.get("name", ""),
        base_url=re.sub(r"\{(?!version\})[^{}]*\}", "x", base_url),
    )
    if problems:
        raise TemplateError("api_version: " + " ".join(problems.values()))


def _one_of_keys(data: dict[str, Any], allowed: set[str], what: str) -> None:
    for key in data:
        _one_of(key, sorted(allowed), what)


def _check(validator: Any, value: Any, what: str) -> None:
    try:
        validator(value)
    except ValidationError as exc:
        raise TemplateError(f"{what} {value!r}: {' '.join(exc.messages)}") from None


def template_load(path: Path) -> VendorTemplate:
    """One template file, checked; a TemplateError names the file and what is wrong in it."""
    try:
        data = _validated(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, TemplateError) as exc:
        raise TemplateError(f"vendor template {path.name}: {exc}") from None
    return VendorTemplate(slug=path.stem, name=data["name"], category=data["category"], data=data)


@dataclass(frozen=True)
class Catalogue:
    templates: dict[str, VendorTemplate]
    problems: tuple[str, ...]  # one per file left out, naming it and what is wrong


@cache
def _catalogue(directory: Path, files: tuple[tuple[str, float], ...]) -> Catalogue:
    templates, problems = [], []
    for name, _ in files:
        try:
            templates.append(template_load(directory / name))
        except TemplateError as exc:
            # A broken file leaves the vendor out rather than the register form broken.
            logger.warning("%s; it is left out of the vendor catalogue", exc)
            problems.append(str(exc))
    templates.sort(key=lambda t: (list(CATEGORIES).index(t.category), t.name))
    return Catalogue({t.slug: t for t in templates}, tuple(problems))


def catalogue_read(directory: Path | None = None) -> Catalogue:
    """The templates of the folder and the files left out. Re-read when a file is added or changed,
    so a new vendor appears without a restart."""
    directory = directory or TEMPLATES_DIR
    files = tuple(sorted((p.name, p.stat().st_mtime) for p in directory.glob("*.json")))
    return _catalogue(directory, files)


def vendor_catalogue(directory: Path | None = None) -> dict[str, VendorTemplate]:
    """Every usable vendor template by its file name, ordered by category and name."""
    return catalogue_read(directory).templates


def vendor_template(slug: str) -> VendorTemplate | None:
    return vendor_catalogue().get(slug)
