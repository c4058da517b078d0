"""The drift report: how a system's records changed shape, per flow, with one-click fixes for
admins (update the model, release held events, dismiss). Everyone with a role reads it."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from connectors.models import System
from hub.access import admins_only, readers
from hub.models import Flow, SchemaDrift
from hub.selectors.drift import drift_rows
from hub.services.drift import drift_dismiss, drift_model_update, drift_release, drift_update_words
from hub.ui.feedback import change_made


def with_update_words(rows):
    """Rows with what "Update the model" would do, those holding events first."""
    for row in rows:
        row.update_words = drift_update_words(row.drift)
    return sorted(rows, key=lambda row: row.held == 0)


@readers
def system_drift(request: HttpRequest, pk: int) -> HttpResponse:
    system = get_object_or_404(System, pk=pk)
    rows = with_update_words(drift_rows(system_id=system.pk))
    return render(
        request,
        "hub/drift.html",
        {
            "system": system,
            "open_rows": [r for r in rows if r.drift.status == SchemaDrift.Status.OPEN],
            "closed_rows": [r for r in rows if r.drift.status != SchemaDrift.Status.OPEN],
            "flows_watched": Flow.objects.filter(source_system=system).order_by("name"),
        },
    )


def _back(request: HttpRequest, drift: SchemaDrift) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect("connectors-drift", pk=drift.system_id)


@require_POST
@admins_only
def drift_update_view(request: HttpRequest, pk: int) -> HttpResponse:
    drift = get_object_or_404(SchemaDrift.objects.select_related("data_model"), pk=pk)
    words = drift_update_words(drift)
    change_made(
        request,
        lambda: drift_model_update(drift=drift, actor=request.user),
        success=f"Done: {words[0].lower()}{words[1:]}. Check the mappings that read it, then release the held events.",
        refused="The model was not changed: {error}.",
    )
    return _back(request, drift)


@require_POST
@admins_only
def drift_release_view(request: HttpRequest, pk: int) -> HttpResponse:
    drift = get_object_or_404(SchemaDrift, pk=pk)
    flow = Flow.objects.filter(pk=request.POST.get("flow") or 0).first()
    released = drift_release(drift=drift, actor=request.user, flow=flow)
    if released:
        messages.success(request, f"{released} held event{'' if released == 1 else 's'} sent on.")
    else:
        messages.info(request, "No events were waiting for this change any more.")
    return _back(request, drift)


@require_POST
@admins_only
def drift_dismiss_view(request: HttpRequest, pk: int) -> HttpResponse:
    drift = get_object_or_404(SchemaDrift, pk=pk)
    change_made(
        request,
        lambda: drift_dismiss(drift=drift, actor=request.user),
        success="Dismissed: records with this change are no longer reported or held.",
    )
    return _back(request, drift)
