"""Systems pages: everyone with a role reads; admins register, change and delete; operators test."""

import time
from datetime import UTC, datetime

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from connectors import ratelimit
from connectors.auth import auth_settings
from connectors.breaker import COOLDOWN_SECONDS, FAILURE_RATE, MIN_CALLS, WINDOW_SECONDS, circuit_status
from connectors.config import declared
from connectors.deprecation import SUNSET_SOON_DAYS
from connectors.kinds import KIND_DEFAULTS, kind_defaults
from connectors.models import SignatureEncoding, SignatureScheme, System
from connectors.signatures import SLACK_TIMESTAMP_HEADER, standard_webhooks_headers, zendesk_timestamp_header
from connectors.vendors import vendor_template
from hub.access import admins_only, operators_only, readers
from hub.models import Flow
from hub.selectors.drift import drift_open_count
from hub.selectors.health import flows_health
from hub.services.systems import (
    system_create,
    system_delete,
    system_delete_blockers,
    system_test_connection,
    system_test_path,
    system_update,
)
from hub.services.versions import latest_move, open_move
from hub.ui.feedback import change_made
from hub.ui.forms.systems import (
    ADVANCED_WEBHOOK,
    ADVANCED_WHERE,
    CredentialsForm,
    SystemForm,
    template_form_values,
)
from mappings.models import DataModel


def _count(model, field: str):
    """A correlated COUNT subquery: one number per system row without multiplying joins."""
    rows = model.objects.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(n=Count("pk"))
    return Coalesce(Subquery(rows.values("n")[:1]), 0)


@readers
def system_list(request):
    systems = System.objects.annotate(
        model_count=_count(DataModel, "system"),
        flows_out=_count(Flow, "source_system"),
        flows_in=_count(Flow, "target_system"),
    ).order_by("name")
    return render(request, "connectors/list.html", {"systems": systems})


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@admins_only
def system_add(request):
    # ?template=<vendor> opens the form filled in for that vendor (the page script does the same
    # when the admin picks one).
    templates = template_form_values()
    chosen = templates.get(request.GET.get("template", ""))
    initial = {**chosen["values"], "template": request.GET["template"]} if chosen else None
    form = SystemForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            system = system_create(
                fields=form.system_fields(),
                credentials=form.credentials(),
                webhook_secret=form.webhook_secret_value(),
                actor=request.user,
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(
                request, f"{system.name} is registered. Test the connection to make sure it works."
            )
            return redirect("connectors-detail", pk=system.pk)
    context = _form_context(form, None)
    context["vendor_templates"] = templates
    context["vendor_template"] = templates.get(form["template"].value() or "")
    return render(request, "connectors/form.html", context)


@admins_only
def system_edit(request, pk: int):
    system = get_object_or_404(System, pk=pk)
    form = SystemForm(request.POST or None, instance=system)
    if request.method == "POST" and form.is_valid():
        try:
            system_update(
                system=system,
                fields=form.system_fields(),
                credentials=form.credentials(),
                webhook_secret=form.webhook_secret_value(),
                actor=request.user,
            )
        except ValidationError as exc:
            system.refresh_from_db()
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Saved the changes to {system.name}.")
            return redirect("connectors-detail", pk=system.pk)
    return render(request, "connectors/form.html", _form_context(form, system))


def _form_context(form: SystemForm, system: System | None) -> dict:
    return {
        "form": form,
        "system": system,
        "connector_inputs": form.declared_inputs("connector"),
        "auth_inputs": form.declared_inputs("auth_scheme"),
        "secrets": form.secret_inputs(),
        "webhook_secret": {
            "field": form["webhook_secret"],
            "stored": form.stored("webhook_secret"),
            "unreadable": bool(system) and system.secret_unreadable("webhook_secret"),
        },
        "hooks_base": settings.HUB_INGEST_URL.rstrip("/") + "/hooks/",
        "where_advanced": ADVANCED_WHERE,
        "where_advanced_open": form.advanced_open(ADVANCED_WHERE),
        "webhook_advanced": ADVANCED_WEBHOOK,
        "webhook_advanced_open": form.advanced_open(ADVANCED_WEBHOOK),
        # A new system starts from what most systems of its kind expect; an existing one keeps its own.
        "kind_defaults": None if system else {str(kind): kind_defaults(kind) for kind in KIND_DEFAULTS},
    }


@admins_only
def system_credentials(request, pk: int):
    system = get_object_or_404(System, pk=pk)
    form = CredentialsForm(request.POST or None, instance=system)
    if request.method == "POST" and form.is_valid():
        system_update(
            system=system,
            fields={},
            credentials=form.credentials(),
            webhook_secret=form.webhook_secret_value(),
            actor=request.user,
        )
        messages.success(request, f"Replaced the secrets of {system.name}.")
        return redirect("connectors-detail", pk=system.pk)
    fields = [
        {"field": form[name], "stored": form.stored(name), "unreadable": system.secret_unreadable(name)}
        for name in form.fields
    ]
    return render(request, "connectors/credentials.html", {"form": form, "system": system, "fields": fields})


def signature_in_words(system: System) -> str:
    """How a vendor must sign its webhooks to this system's URL, in one sentence."""
    encoding = "Base64" if system.signature_encoding == SignatureEncoding.BASE64 else "hexadecimal"
    if system.signature_scheme == SignatureScheme.NONE:
        return "Webhooks are not signed: anyone who knows the URL can send events. Prefer a signed scheme."
    if system.signature_scheme == SignatureScheme.TIMESTAMPED:
        return (
            f"Each webhook carries a {system.signature_header} header of the form t=<unix time>,v1=<signature>: "
            f"an HMAC-SHA256 of the time, a dot and the body, {encoding}, made with the signing secret. "
            f"Webhooks older than {system.signature_tolerance_seconds} seconds are refused."
        )
    if system.signature_scheme == SignatureScheme.STANDARD_WEBHOOKS:
        id_header, timestamp_header = standard_webhooks_headers(system)
        return (
            f"Webhooks are signed the Standard Webhooks way: {id_header}, {timestamp_header} and "
            f"{system.signature_header} (v1,<signature>), an HMAC-SHA256 in Base64 of the id, the time and "
            f"the body, made with the whsec_ signing secret. Webhooks older than "
            f"{system.signature_tolerance_seconds} seconds are refused."
        )
    if system.signature_scheme == SignatureScheme.SLACK:
        return (
            f"Webhooks are signed the Slack way: {system.signature_header} holds v0=<signature>, an HMAC-SHA256 "
            f"in hexadecimal of v0:<time>:<body> made with the signing secret, the time being in "
            f"{SLACK_TIMESTAMP_HEADER}. Webhooks older than {system.signature_tolerance_seconds} seconds are refused."
        )
    if system.signature_scheme == SignatureScheme.ZENDESK:
        return (
            f"Webhooks are signed the Zendesk way: {system.signature_header} holds an HMAC-SHA256 in Base64 "
            f"of the time and the body, made with the signing secret, the time being in "
            f"{zendesk_timestamp_header(system)}. Webhooks older than {system.signature_tolerance_seconds} "
            "seconds are refused."
        )
    prefix = f", after “{system.signature_prefix}”" if system.signature_prefix else ""
    return (
        f"Each webhook carries an HMAC-SHA256 of its body, {encoding}, made with the signing secret, "
        f"in the {system.signature_header} header{prefix}."
    )


def _detail_context(system: System, report=None) -> dict:
    models = list(system.data_models.annotate(field_count=Count("fields")).order_by("name"))
    flows = Flow.objects.filter(Q(source_system=system) | Q(target_system=system)).select_related(
        "source_system", "target_system"
    )
    health = flows_health(flows)
    for item in health:
        item.url = reverse("flows-detail", args=[item.flow.pk])
    for model in models:
        model.url = reverse("mappings-model-detail", args=[model.pk])
    credentials = [
        {"label": secret.label, "set": system.has_secret(name), "unreadable": system.secret_unreadable(name)}
        for name, secret in system.auth_secrets().items()
    ]
    sign_in = auth_settings(system)
    sign_in_settings = [
        {"label": item.setting.label, "value": getattr(sign_in, item.key)}
        for item in declared(type(sign_in))
        if getattr(sign_in, item.key) not in ("", None)
    ]
    return {
        "system": system,
        "webhook_url": settings.HUB_INGEST_URL.rstrip("/") + reverse("hooks-receive", args=[system.slug]),
        "signature_words": signature_in_words(system),
        "vendor": vendor_template(system.vendor_template) if system.vendor_template else None,
        "credentials": credentials,
        "sign_in_settings": sign_in_settings,
        "models": models,
        "model_add_url": reverse("mappings-model-add") + f"?system={system.pk}",
        "flows_out": [h for h in health if h.flow.source_system_id == system.pk],
        "flows_in": [h for h in health if h.flow.target_system_id == system.pk],
        "delete_blockers": system_delete_blockers(system),
        "test_path": system_test_path(system),
        "report": report,
        "deprecations": _deprecations_in_words(system),
        "version_move": open_move(system) or latest_move(system),
        "drift_open": drift_open_count(system_id=system.pk),
        **_calls_context(system),
    }


def _deprecations_in_words(system: System) -> list:
    now = timezone.now()
    notices = list(system.deprecations.all())
    for notice in notices:
        notice.words = notice.in_words(now)
        notice.soon = notice.sunset_at is not None and notice.days_left(now) < SUNSET_SOON_DAYS
    return notices


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


BREAKER_RULE = (
    f"The circuit breaker opens when {MIN_CALLS} or more calls within {WINDOW_SECONDS} seconds got "
    f"an outcome and at least {FAILURE_RATE:.0%} of them could not connect, timed out, answered with a "
    f"server error or left the outcome unknown. It then rests {COOLDOWN_SECONDS:g} seconds, "
    "and one call probes: its success closes the breaker, its failure opens it again. "
    "Every worker sees the same breaker."
)


def _calls_context(system: System) -> dict:
    """How calls to the system go now, as every worker sees it: the circuit breaker and the pace."""
    now = time.time()
    breaker = circuit_status(system.pk, now=now)
    pace = ratelimit.pace(system, now=now)
    learned = pace.current is not None and (pace.configured is None or pace.current < pace.configured)
    return {
        "breaker": breaker,
        "breaker_since": _moment(breaker.since) if breaker.since else None,
        "breaker_open_until": _moment(breaker.open_until),
        "breaker_open_in": max(0, round(breaker.open_until - now)),
        "breaker_rule": BREAKER_RULE,
        "window_seconds": WINDOW_SECONDS,
        "pace": pace,
        "pace_learned": learned,
        "pace_learned_at": _moment(pace.learned_at) if learned and pace.learned_at else None,
        "paused_until": _moment(pace.paused_until) if pace.paused_until > now else None,
    }


@readers
def system_detail(request, pk: int):
    system = get_object_or_404(System, pk=pk)
    if request.htmx:
        return render(request, "connectors/detail.html#calls", {"system": system, **_calls_context(system)})
    return render(request, "connectors/detail.html", _detail_context(system))


@require_POST
@operators_only
def system_test(request, pk: int):
    system = get_object_or_404(System, pk=pk)
    path = request.POST.get("path", "")[:300]
    report = system_test_connection(system=system, path=path, actor=request.user)
    if request.htmx:
        return render(request, "connectors/detail.html#test-result", {"system": system, "report": report})
    return render(request, "connectors/detail.html", _detail_context(system, report))


@require_POST
@admins_only
def system_remove(request, pk: int):
    system = get_object_or_404(System, pk=pk)
    name = system.name
    deleted = change_made(
        request,
        lambda: system_delete(system=system, actor=request.user),
        success=f"Deleted {name}.",
        refused=f"{name} was not deleted. {{error}}",
    )
    target = reverse("connectors-list") if deleted else reverse("connectors-detail", args=[pk])
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": target})
    return redirect(target)
