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
     "models": {"Customer": {"path": "/customers", "id": "id", "sample": {…}}},
     "handshakes": [{"name": "URL verification", "method": "POST",
                     "when": {"type": "url_verification"}, "reply": "challenge"}]}

A model gives its resource path and one of: "fields" (a list of {"path", "type", "required"}), a
"sample" record, or "api_description" (the address or path of the vendor's published OpenAPI
document, with "schema": the name of the model's schema in it). "id" is where the record's id is
(default "id").

A handshake is a request a sender makes to check the webhook address, answered at once and never
stored as an event: "when" names what identifies it (a dotted path into a POST's JSON body,
"header:<Name>", or for a GET "query:<name>") and the value it must have; "reply" names the value
sent back as text ("" for an empty 200). A POST handshake is answered only after its signature
passed, as any webhook.
"""

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError

from common.paths import get_path
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
KEYS |= {"record", "notes", "models", "handshakes", "api_version"}
API_VERSION_KEYS = {"in", "name", "value"}
# Template api_version key → the form input it fills.
API_VERSION_INPUTS = {"in": "api_version_in", "name": "api_version_name", "value": "api_version"}
WEBHOOK_KEYS = {"scheme", "header", "encoding", "prefix"}
MODEL_KEYS = {"path", "id", "description", "fields", "sample", "api_description", "schema"}
MODEL_SOURCES = ("fields", "sample", "api_description")
MODEL_FIELD_KEYS = {"path", "type", "required", "description"}
# The data model field types (mappings.schema.FIELD_TYPES; connectors may not import mappings, and
# tests/connectors/test_vendor_models.py holds the two equal).
FIELD_TYPES = ("string", "integer", "number", "boolean", "date", "datetime", "object", "array")
HANDSHAKE_KEYS = {"name", "method", "when", "reply"}
HANDSHAKE_METHODS = ("GET", "POST")
HANDSHAKE_REPLY_LIMIT = 1000  # characters echoed back: a challenge is short
# Template key → the form input it fills.
PAYLOAD_PATHS = {"event_type": "event_type_path", "idempotency_key": "idempotency_key_path"}
PAYLOAD_PATHS |= {"record": "record_path"}
WEBHOOK_INPUTS = {"scheme": "signature_scheme", "header": "signature_header"}
WEBHOOK_INPUTS |= {"encoding": "signature_encoding", "prefix": "signature_prefix"}


class TemplateError(ValueError):
    """A template file that cannot be used, and why."""


def _located(where: str, *, payload: Any, headers: Mapping[str, str], query: Mapping[str, str]) -> Any:
    if where.startswith("header:"):
        return headers.get(where.removeprefix("header:"))
    if where.startswith("query:"):
        return query.get(where.removeprefix("query:"))
    return get_path(payload, where)


@dataclass(frozen=True)
class Handshake:
    """A sender's check of the webhook address (see the module's docstring)."""

    name: str
    method: str
    when: dict[str, Any]
    reply: str

    def reply_to(
        self, *, method: str, payload: Any = None, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> str | None:
        """The text to answer with when this request is this handshake, else None."""
        if method != self.method:
            return None
        seen = {where: _located(where, payload=payload, headers=headers, query=query) for where in self.when}
        if any(seen[where] != wanted for where, wanted in self.when.items()):
            return None
        if not self.reply:
            return ""
        value = _located(self.reply, payload=payload, headers=headers, query=query)
        return value[:HANDSHAKE_REPLY_LIMIT] if isinstance(value, str) else None


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

    @property
    def handshakes(self) -> tuple[Handshake, ...]:
        return tuple(
            Handshake(
                name=h["name"], method=h.get("method", "POST"), when=h["when"], reply=h.get("reply", "")
            )
            for h in self.data.get("handshakes", ())
        )

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
    if not isinstance(models, dict):
        raise TemplateError('"models" must map each model\'s name to {"path": …, "fields" or "sample": …}')
    for name, model in models.items():
        _model_checked(name, model)
    handshakes = data.get("handshakes", [])
    if not isinstance(handshakes, list):
        raise TemplateError('"handshakes" must be a list of {"name", "method", "when", "reply"}')
    for number, handshake in enumerate(handshakes):
        _handshake_checked(f"handshake {number + 1}", handshake)
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


def _model_checked(name: str, model: Any) -> None:
    what = f"model {name!r}"
    if not isinstance(model, dict) or not isinstance(model.get("path"), str):
        raise TemplateError(f'{what} must be an object with a "path" (its resource path)')
    _one_of_keys(model, MODEL_KEYS, f"{what} key")
    for key in ("id", "description", "api_description", "schema"):
        _text(model, key)
    given = [source for source in MODEL_SOURCES if source in model]
    if len(given) != 1:
        raise TemplateError(f"{what} needs exactly one of {', '.join(MODEL_SOURCES)}")
    if "sample" in model and not (isinstance(model["sample"], dict) and model["sample"]):
        raise TemplateError(f'{what}: "sample" must be a JSON object (one record)')
    if "api_description" in model and not model.get("schema"):
        raise TemplateError(f'{what}: "api_description" needs "schema", the name of its schema there')
    if "fields" in model:
        fields = model["fields"]
        if not isinstance(fields, list) or not fields:
            raise TemplateError(f'{what}: "fields" must be a non-empty list')
        for spec in fields:
            if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
                raise TemplateError(f'{what}: each field must be an object with a "path"')
            _one_of_keys(spec, MODEL_FIELD_KEYS, f"{what} field key")
            _one_of(spec.get("type", "string"), FIELD_TYPES, f"{what} field {spec['path']!r} type")
            if not isinstance(spec.get("required", False), bool):
                raise TemplateError(f'{what} field {spec["path"]!r}: "required" must be true or false')


def _handshake_checked(what: str, handshake: Any) -> None:
    if not isinstance(handshake, dict):
        raise TemplateError(f"{what} must be an object")
    _one_of_keys(handshake, HANDSHAKE_KEYS, f"{what} key")
    _text(handshake, "name", required=True)
    _text(handshake, "reply")
    method = handshake.get("method", "POST")
    _one_of(method, HANDSHAKE_METHODS, f"{what} method")
    when = handshake.get("when")
    if not isinstance(when, dict) or not when:
        raise TemplateError(f'{what}: "when" must name at least one value that identifies it')
    for where in [*when, handshake.get("reply") or ""]:
        if method == "GET" and where and not where.startswith(("query:", "header:")):
            raise TemplateError(f"{what}: a GET has no body; {where!r} must start with query: or header:")
        if method == "POST" and where.startswith("query:"):
            raise TemplateError(f"{what}: {where!r}: a POST handshake is read from its body or headers")


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
