"""Move to a new API version: one page per system that guides an admin through the steps of
hub/services/versions.py (choose and copy, dry run, switch over, switch back), showing where the
move stands."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from connectors.apiversion import VersionIn
from connectors.models import System
from hub.access import admins_only
from hub.models import VersionMove, VersionMoveState
from hub.services.errors import ConfigError
from hub.services.versions import (
    DRY_RUN_EVENTS,
    affected_flows,
    current_models,
    latest_move,
    open_move,
    version_dry_run,
    version_move_discard,
    version_move_start,
    version_switch,
    version_switch_back,
)
from hub.ui.feedback import change_made
from mappings.models import DataModel, Mapping

STEPS = ("Choose the new version", "Try it on real events", "Switch over", "Switch back if needed")


class VersionMoveForm(forms.Form):
    to_version = forms.CharField(
        label="New API version", max_length=40, help_text="As the vendor writes it, e.g. v2 or 2025-01-01."
    )
    to_in = forms.ChoiceField(label="Where the version goes", choices=VersionIn.choices)
    to_name = forms.CharField(
        label="Header or query parameter name",
        max_length=100,
        required=False,
        help_text="Not used when the version is in the address.",
    )
    source = forms.ChoiceField(
        label="Where the new version's data models come from",
        initial="copy",
        choices=[
            ("copy", "Copy the current data models; I will change what the new version changed"),
            ("document", "Read the vendor's new API description (OpenAPI) and show me what changed"),
        ],
    )
    document_path = forms.CharField(
        label="Where the system publishes it",
        max_length=300,
        required=False,
        help_text="A path on the system's address, e.g. /openapi.json; read with the new version.",
    )
    document = forms.CharField(
        label="Or paste the document",
        required=False,
        max_length=2_000_000,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("source") == "document" and not (data.get("document_path") or data.get("document")):
            self.add_error("document_path", "Type where the description is, or paste it below.")
        return data


def _step(move: VersionMove | None) -> int:
    if move is None or move.state in (VersionMoveState.DISCARDED, VersionMoveState.FINISHED):
        return 1
    if move.state == VersionMoveState.SWITCHED:
        return 4
    return 3 if move.dry_run_at else 2


def _page(request, system: System, *, form=None, dry_run=None, status: int = 200):
    move = open_move(system) or latest_move(system)
    step = _step(move)
    settled = move is not None and move.state in (VersionMoveState.DISCARDED, VersionMoveState.FINISHED)
    if form is None and step == 1:
        form = VersionMoveForm(
            initial={"to_in": system.api_version_in, "to_name": system.api_version_name, "source": "copy"}
        )
    models, mapping_rows = [], []
    if move is not None and not settled:
        pairs = {int(k): v for k, v in move.model_pairs.items()}
        by_id = DataModel.objects.in_bulk([*pairs, *pairs.values()])
        models = [
            {
                "old": by_id.get(old),
                "new": by_id.get(new),
                "differences": move.differences.get(by_id[new].name),
            }
            for old, new in pairs.items()
            if new in by_id
        ]
        mappings = Mapping.objects.in_bulk(
            [int(k) for k in move.mapping_pairs] + list(move.mapping_pairs.values())
        )
        mapping_rows = [
            {"old": mappings.get(int(old)), "new": mappings.get(new)}
            for old, new in move.mapping_pairs.items()
        ]
    context = {
        "system": system,
        "move": None if settled else move,
        "step": step,
        "steps": [(n, label, n < step) for n, label in enumerate(STEPS, start=1)],
        "form": form,
        "current_models": list(current_models(system)),
        "placement_words": system.version_placement().in_words(),
        "models": models,
        "mapping_rows": mapping_rows,
        "flows": affected_flows(move) if move is not None and not settled else [],
        "dry_run": dry_run,
        "history": system.version_moves.all()[:10],
        "dry_run_events": DRY_RUN_EVENTS,
    }
    if request.htmx and dry_run is not None:
        return render(request, "connectors/version_move.html#version-move", context, status=status)
    return render(request, "connectors/version_move.html", context, status=status)


@admins_only
def version_move_page(request, pk: int):
    system = get_object_or_404(System, pk=pk)
    if request.method != "POST":
        return _page(request, system)
    form = VersionMoveForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        document = data["document"] if data["source"] == "document" else ""
        path = data["document_path"] if data["source"] == "document" else ""
        try:
            version_move_start(
                system=system,
                to_version=data["to_version"],
                to_in=data["to_in"],
                to_name=data["to_name"],
                actor=request.user,
                document=document,
                document_path=path,
            )
        except ConfigError as exc:
            form.add_error(None, str(exc)[:1].upper() + str(exc)[1:])
        else:
            return redirect("connectors-version", pk=system.pk)
    return _page(request, system, form=form, status=400)


def _move(system_pk: int, move_pk: int) -> VersionMove:
    return get_object_or_404(VersionMove.objects.select_related("system"), pk=move_pk, system_id=system_pk)


@admins_only
@require_POST
def version_dry_run_view(request, pk: int, move_pk: int):
    move = _move(pk, move_pk)
    try:
        results = version_dry_run(move=move, actor=request.user)
    except ConfigError as exc:
        messages.error(request, str(exc))
        return redirect("connectors-version", pk=pk)
    return _page(request, move.system, dry_run=results)


def _act(request, pk: int, move_pk: int, service, *, success: str, refused: str):
    """One step that changes the move (`service(move=, actor=)`), said in words on the page."""
    move = _move(pk, move_pk)
    words = {"system": move.system.name, "to": move.to_version, "back_to": move.from_version or "no version"}
    change_made(
        request,
        lambda: service(move=move, actor=request.user),
        success=success.format(**words),
        refused=refused,
    )
    return redirect(reverse("connectors-version", args=[pk]))


@admins_only
@require_POST
def version_switch_view(request, pk: int, move_pk: int):
    return _act(
        request,
        pk,
        move_pk,
        version_switch,
        success="{system} now uses API version {to}, and its flows the new mappings.",
        refused="Not switched: {error}.",
    )


@admins_only
@require_POST
def version_switch_back_view(request, pk: int, move_pk: int):
    return _act(
        request,
        pk,
        move_pk,
        version_switch_back,
        success="{system} is back on API version {back_to}, and its flows on the old mappings.",
        refused="Not switched back: {error}.",
    )


@admins_only
@require_POST
def version_discard_view(request, pk: int, move_pk: int):
    return _act(
        request,
        pk,
        move_pk,
        version_move_discard,
        success="Removed the data models and mappings the flows no longer use.",
        refused="Nothing removed: {error}.",
    )
