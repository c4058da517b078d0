"""Systems: register, change, delete and test them. Every change writes its audit entry in the same
transaction, and the audit diff is built from `System.redacted()`: secret values never leave here."""

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone
from django.utils.text import slugify

from common.urlpaths import relative_path_problem
from connectors.auth import AUTH_SCHEMES, AuthScheme, secret_characters
from connectors.base import CheckResult, Connector, ConnectorError, ErrorClass
from connectors.crypto import is_unreadable
from connectors.deprecation import DeprecationNotice
from connectors.models import SYSTEM_FIELDS, ApiDeprecation, SignatureScheme, System
from connectors.netpolicy import places_of, refusal_in_words
from connectors.redaction import Redactor
from connectors.registry import connector_for
from connectors.services import deprecations_record
from hub.models import Event, Flow
from hub.services.audit import audit_record
from hub.services.datamodels import lookup_query
from hub.services.errors import ConfigError
from mappings.models import DataModel, Mapping

# Test connection searches each declared lookup for a value no record can have: any record listed
# means the system ignores the search, and a lost create could not be found by it.
LOOKUP_CHECK_PREFIX = "hub-lookup-check-"


def system_slug_suggest(*, name: str, exclude_pk: int | None = None) -> str:
    """A free slug made from `name`: "Sales CRM" -> "sales-crm", then "sales-crm-2" and so on."""
    base = slugify(name)[:54].strip("-") or "system"
    taken = set(
        System.objects.exclude(pk=exclude_pk).filter(slug__startswith=base).values_list("slug", flat=True)
    )
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def _merge_credentials(
    scheme: str, stored: dict[str, Any], given: dict[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """Keep only the credentials the scheme uses; a given (non-empty) value replaces the stored one.
    Stored credentials the hub cannot decrypt are kept as they are until new ones are given: the
    right key may still open them."""
    method = AUTH_SCHEMES.get(scheme)
    wanted = tuple(method.secrets) if method else ()
    if is_unreadable(stored) and wanted and not any(given.get(name) for name in wanted):
        return stored, []
    merged = {name: given.get(name) or stored.get(name) for name in wanted}
    replaced = sorted(name for name in wanted if given.get(name))
    return {k: v for k, v in merged.items() if v}, replaced


def _refuse_control_characters(secrets: dict[str, str]) -> None:
    """Whatever typed them (a form, a script, the shell), secrets with a line break or another
    control character are refused, naming the input."""
    problems = {}
    for name, value in secrets.items():
        try:
            secret_characters(value or "")
        except ValidationError as exc:
            problems[name] = exc.messages
    if problems:
        raise ValidationError(problems)


def _refuse_moving_kept_secrets(system: System, places_before: frozenset[str], replaced: list[str]) -> None:
    """Stored credentials follow a system only to where they were entered for: pointing it at
    another host keeps them only when they are typed again, so nobody who can edit an address (an
    admin, an imported specification) can send them somewhere new unseen."""
    method = AUTH_SCHEMES.get(system.auth_scheme)
    kept = [name for name in (method.secrets if method else ()) if name not in replaced]
    if not kept or not (system.credentials or {}):
        return
    urls = system.outbound_urls()
    if not all(urlsplit(url).hostname for url in urls):
        return  # not a usable address: full_clean says so
    new_places = places_of(urls) - places_before
    if new_places:
        where = ", ".join(sorted(new_places))
        raise ValidationError(
            {
                "base_url": (
                    f"This sends the stored credentials to a new place ({where}). Enter the "
                    "credentials again to confirm they belong there."
                )
            }
        )


def _save(system: System) -> None:
    system.full_clean(exclude=["credentials", "webhook_secret"])
    try:
        with transaction.atomic():
            system.save()
    except IntegrityError as exc:  # a concurrent save took the name or slug between check and write
        raise ValidationError(
            {"name": "Another system with this name or short name was just saved."}
        ) from exc


def system_create(
    *, fields: dict[str, Any], credentials: dict[str, str], webhook_secret: str = "", actor
) -> System:
    """Register a system. `credentials` holds the secret values for its auth scheme."""
    unknown = set(fields) - set(SYSTEM_FIELDS)
    if unknown:
        raise ValueError(f"not system fields: {', '.join(sorted(unknown))}")
    _refuse_control_characters({**credentials, "webhook_secret": webhook_secret})
    system = System(**fields)
    if not system.slug:
        system.slug = system_slug_suggest(name=system.name)
    system.credentials, _ = _merge_credentials(system.auth_scheme, {}, credentials)
    system.webhook_secret = {"secret": webhook_secret} if webhook_secret else {}
    with transaction.atomic():
        _save(system)
        audit_record(actor=actor, verb="create", target=system, diff={"created": system.redacted()})
    return system


def system_update(
    *,
    system: System,
    fields: dict[str, Any],
    credentials: dict[str, str] | None = None,
    webhook_secret: str = "",
    actor,
) -> System:
    """Change a system. Empty credential values and an empty `webhook_secret` keep what is stored."""
    unknown = set(fields) - set(SYSTEM_FIELDS)
    if unknown:
        raise ValueError(f"not system fields: {', '.join(sorted(unknown))}")
    _refuse_control_characters({**(credentials or {}), "webhook_secret": webhook_secret})
    before = system.redacted()
    places_before = places_of(system.outbound_urls())
    for name, value in fields.items():
        setattr(system, name, value)
    if not system.slug:
        system.slug = system_slug_suggest(name=system.name, exclude_pk=system.pk)
    system.credentials, replaced = _merge_credentials(
        system.auth_scheme, system.credentials or {}, credentials or {}
    )
    _refuse_moving_kept_secrets(system, places_before, replaced)
    if webhook_secret:
        system.webhook_secret = {"secret": webhook_secret}
    elif system.signature_scheme == SignatureScheme.NONE and is_unreadable(system.webhook_secret):
        system.webhook_secret = {}  # unused, and unreadable: nothing left to keep
    after = system.redacted()
    diff: dict[str, Any] = {
        name: [before[name], after[name]] for name in after if before.get(name) != after[name]
    }
    if replaced:
        diff["credentials_replaced"] = replaced
    if webhook_secret:
        diff["webhook_secret_replaced"] = True
    with transaction.atomic():
        _save(system)
        audit_record(actor=actor, verb="update", target=system, diff=diff)
    return system


def system_delete_blockers(system: System) -> list[str]:
    """Why the system cannot be deleted, in plain words (empty when it can)."""
    reasons = []
    flows = list(
        Flow.objects.filter(Q(source_system=system) | Q(target_system=system)).values_list("name", flat=True)[
            :6
        ]
    )
    if flows:
        shown = ", ".join(f"“{name}”" for name in flows[:5]) + (" and more" if len(flows) > 5 else "")
        reasons.append(f"Flows use it: {shown}. Delete or change those flows first.")
    else:
        mappings = list(
            Mapping.objects.filter(
                Q(source_model__system=system) | Q(target_model__system=system)
            ).values_list("name", flat=True)[:6]
        )
        if mappings:
            reasons.append("Mappings use its data models: " + ", ".join(f"“{m}”" for m in mappings[:5]) + ".")
    if Event.objects.filter(system=system).exists():
        reasons.append("It has sent events, and the hub keeps their history, so it has to stay registered.")
    return reasons


def system_delete(*, system: System, actor) -> None:
    """Delete a system no flow, mapping or event history depends on; its data models go with it."""
    reasons = system_delete_blockers(system)
    if reasons:
        raise ConfigError(" ".join(reasons))
    try:
        with transaction.atomic():
            audit_record(actor=actor, verb="delete", target=system, diff={"deleted": system.redacted()})
            system.delete()
    except ProtectedError as exc:
        raise ConfigError("Other configuration still refers to this system, so it was not deleted.") from exc


@dataclass
class ConnectionReport:
    """What "Test connection" found, in plain words for the page and as facts for the audit log."""

    ok: bool
    headline: str
    path: str
    reachable: bool | None = None
    authenticated: bool | None = None
    status: int | None = None
    duration_ms: float | None = None
    notes: list[str] = field(default_factory=list)
    technical: str = ""
    lookups: list["LookupCheck"] = field(default_factory=list)
    deprecation: DeprecationNotice | None = None  # what the answer said about its retirement

    @property
    def level(self) -> str:
        return "ok" if self.ok else ("warn" if self.reachable else "bad")

    def as_audit(self) -> dict[str, Any]:
        facts = {
            "path": self.path,
            "ok": self.ok,
            "reachable": self.reachable,
            "authenticated": self.authenticated,
            "status": self.status,
            "duration_ms": round(self.duration_ms or 0, 1),
        }
        if self.lookups:
            facts["lookups"] = {check.model: check.level for check in self.lookups}
        return facts


@dataclass
class LookupCheck:
    """What searching one data model by its external-id field found: ok, warn or bad, in words."""

    model: str
    model_pk: int
    level: str
    text: str


def system_test_path(system: System) -> str:
    """The path Test connection tries: the first data model's resource, the configured test path, or /."""
    resource = (
        system.data_models.exclude(resource_path="")
        .order_by("name")
        .values_list("resource_path", flat=True)
        .first()
    )
    return resource or system.connector_config().health_path or "/"


def system_test_connection(*, system: System, path: str | None = None, actor) -> ConnectionReport:
    """Call the system through its connector's `check()` and tell what happened; audited."""
    path = (path or "").strip() or system_test_path(system)
    report = _check(system, path)
    # A refused path is shown and audited as typed, but without its control characters: PostgreSQL
    # cannot store a NUL in text or JSON.
    report.path = "".join(c if c.isprintable() else "\ufffd" for c in report.path)
    if report.deprecation is not None:
        report.notes.append(_deprecation_heard(system, report.path, report.deprecation))
    if report.reachable and report.authenticated is not False:
        report.lookups = _check_lookups(system)
    with transaction.atomic():
        audit_record(actor=actor, verb="test_connection", target=system, diff=report.as_audit())
    return report


def _check(system: System, path: str) -> ConnectionReport:
    refused = _untestable(system, path)
    if refused:
        return refused
    redactor = Redactor.for_system(system)
    started = time.perf_counter()
    try:
        result = connector_for(system).check(path=path)
    except Exception as exc:  # whatever happens, the admin gets words, not a 500
        elapsed = (time.perf_counter() - started) * 1000
        return ConnectionReport(
            ok=False,
            path=path,
            duration_ms=elapsed,
            headline="The test could not be run: " + redactor.text(str(exc))[:300],
        )
    report = ConnectionReport(
        ok=bool(result.reachable and result.authenticated),
        path=path,
        reachable=result.reachable,
        authenticated=result.authenticated,
        status=result.status,
        duration_ms=result.duration_ms,
        technical=redactor.text(result.message)[:500],
        headline="",
    )
    report.deprecation = result.deprecation
    _explain(report, system, result)
    return report


def _deprecation_heard(system: System, path: str, notice: DeprecationNotice) -> str:
    """Keep what the test's answer said about the system retiring `path`, and say it in words."""
    now = timezone.now()
    deprecations_record(seen=[(system.pk, "GET", path, notice)], now=now)
    heard = ApiDeprecation.objects.get(system=system, method="GET", path=path[:300])
    return heard.in_words(now) + (f" It adds: “{notice.warning}”." if notice.warning else "")


def _check_lookups(system: System) -> list[LookupCheck]:
    """Search each data model that declares a lookup for a value no record has: an empty answer
    shows the search works; records in it show the system ignores the search parameter."""
    models = list(system.data_models.exclude(lookup_field="").order_by("name"))
    if not models:
        return []
    redactor = Redactor.for_system(system)
    try:
        connector = connector_for(system)
    except Exception as exc:  # settings the connector cannot read: say so once per model
        problem = redactor.text(str(exc))[:300]
        return [
            LookupCheck(m.name, m.pk, "bad", f"{m.name}: the lookup could not be run: {problem}")
            for m in models
        ]
    return [_check_lookup(connector, model, redactor) for model in models]


def _check_lookup(connector: Connector, model: DataModel, redactor: Redactor) -> LookupCheck:
    def check(level: str, text: str) -> LookupCheck:
        return LookupCheck(model.name, model.pk, level, f"{model.name}: {text}")

    field_name = model.lookup_field
    if not model.resource_path:
        return check(
            "bad",
            f"the lookup by {field_name} cannot run: the data model has no resource path (e.g. /customers). "
            "Set it on the data model's page.",
        )
    query = lookup_query(model)
    value = LOOKUP_CHECK_PREFIX + secrets.token_hex(4)
    searched = query.search_for(value).removeprefix("GET ")
    try:
        result = connector.lookup(
            resource=model.resource_path,
            param=query.param,
            field=field_name,
            value=value,
            id_path=model.id_path or "id",
        )
    except ConnectorError as exc:
        return check(
            "bad",
            f"the lookup by {field_name} failed (searched {searched}): {redactor.text(exc.message)[:300]}",
        )
    except Exception as exc:  # whatever happens, the admin gets words, not a 500
        return check("bad", f"the lookup by {field_name} could not be run: {redactor.text(str(exc))[:300]}")
    if result.listed or result.target_ids:
        listed = max(result.listed, len(result.target_ids))
        return check(
            "warn",
            f"the system ignored ?{query.param}=…: searching {searched} returned {listed} "
            f"record{'s' if listed != 1 else ''} although none can match, so the hub cannot tell whether "
            "a create arrived. Check the query parameter on the data model's page.",
        )
    return check("ok", f"lookup by {field_name} works (searched {searched}: no match, as expected).")


def _untestable(system: System, path: str) -> ConnectionReport | None:
    """Why there is nothing to try, or None."""
    if is_unreadable(system.credentials):
        return ConnectionReport(
            ok=False,
            path=path,
            headline="Not tested: " + system.unreadable_problem(),
            notes=[
                "Use “Replace secrets” to enter the credentials again, or ask whoever runs the hub "
                "to set the encryption key they were saved with."
            ],
        )
    if not system.base_url:
        return ConnectionReport(
            ok=False,
            path=path,
            headline="There is nothing to connect to: this system has no API base URL.",
            notes=["Add the base URL under Edit → Where, if the hub should call this system."],
        )
    if not path.startswith("/") or path.startswith("//"):
        return ConnectionReport(
            ok=False, path=path, headline="The path to test must start with “/”, e.g. /deals."
        )
    if problem := relative_path_problem(path):
        return ConnectionReport(ok=False, path=path, headline=problem)
    if problem := system.outbound_problem(resolve=True):
        # Said before any connection is tried, so the answer is the same whatever listens there.
        return ConnectionReport(ok=False, path=path, headline=f"Not tested: {problem}")
    return None


def _explain(report: ConnectionReport, system: System, result: CheckResult) -> None:
    """The report's headline and notes, in plain words."""
    took = f"It took {result.duration_ms:.0f} ms."
    tried = f"Tried: GET {system.base_url.rstrip('/') + report.path}"
    if result.refused:  # the address changed after the check above, or a redirect led there
        report.headline = f"Not connected: {refusal_in_words(result.refused)}"
        return
    if not result.reachable:
        timed_out = "timed out" in result.message
        report.headline = (
            f"Could not reach {system.base_url}: it did not answer within the timeout."
            if timed_out
            else f"Could not reach {system.base_url}: nothing answered there."
        )
        report.notes.append("Check the base URL, and that the system is running and reachable from the hub.")
    elif result.authenticated is False:
        report.headline = f"Reached the system, but the credentials were refused ({result.status}). {took}"
        report.notes.append("Replace the credentials with ones the system accepts.")
    elif result.authenticated:
        _explain_connected(report, system, took)
    elif result.status:
        report.headline = f"Reached the system, but {_answer_in_words(result.status, report.path)} {took}"
    else:
        report.reachable = False
        report.headline = "The request could not be sent. Check the base URL."
        report.notes.append(tried)
        return
    report.notes.append(tried + (f" → {result.status}" if result.status else ""))


def _explain_connected(report: ConnectionReport, system: System, took: str) -> None:
    if system.auth_scheme == AuthScheme.NONE:
        report.headline = f"Connected: the system answered. {took}"
        return
    report.headline = f"Connected, and the credentials were accepted. {took}"
    if report.path == "/":
        report.notes.append(
            "The start page of an API often needs no sign-in, so this does not prove the credentials "
            "work. Try a path with records, e.g. /deals."
        )


def _answer_in_words(status: int, path: str) -> str:
    if status == 404:
        return f"it has nothing at {path} (404). Check the path."
    if status == 429:
        return f"it asked us to slow down (429): {ErrorClass.RATE_LIMITED.description}"
    if status >= 500:
        return f"it answered with a server error ({status})."
    return f"it answered {status} for {path}."
