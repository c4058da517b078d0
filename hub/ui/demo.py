"""The Demo systems page: the sandbox systems the demo registers, whether they are up, their demo
credentials (admins, on a click) and one-click activity in each. Ops may look; admins act."""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST, require_safe

from connectors.sandbox import DEMO_CREDENTIALS
from hub.access import admins_only, operators_only
from hub.demo_actions import (
    ACTIONS,
    CREDENTIAL_LABELS,
    DemoActionError,
    demo_action_run,
    demo_systems,
    sandbox_start_command,
    sandbox_status,
)
from hub.models import Flow


def _demo_system(slug: str):
    system = next((s for s in demo_systems() if s.slug == slug), None)
    if system is None:
        raise Http404(f"no demo system is registered as “{slug}”")
    return system


def _page(request: HttpRequest, extra: dict | None = None, status: int = 200) -> HttpResponse:
    systems = demo_systems()
    statuses = [sandbox_status(system) for system in systems]
    ingest_url = settings.HUB_INGEST_URL.rstrip("/")
    return render(request, "hub/demo.html", {
        "statuses": statuses, "any_running": any(s.running for s in statuses),
        "start_command": sandbox_start_command(systems, ingest_url), "ingest_url": ingest_url,
        **(extra or {}),
    }, status=status)  # fmt: skip


@require_safe
@operators_only
def demo_systems_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_safe
@admins_only
def demo_credentials(request: HttpRequest, slug: str) -> HttpResponse:
    """The sandbox's own demo credentials (public in its source), never the secrets the hub stores."""
    system = _demo_system(slug)
    shown = [(CREDENTIAL_LABELS.get(name, name), value) for name, value in DEMO_CREDENTIALS[slug].items()]
    return render(request, "hub/demo.html#credentials", {"system": system, "credentials": shown})


@require_POST
@admins_only
def demo_act(request: HttpRequest, slug: str) -> HttpResponse:
    system = _demo_system(slug)
    context, status = _action_result(system, request.POST.get("action", ""))
    if request.htmx:
        return render(request, "hub/demo.html#action-result", context, status=status)
    return _page(request, {**context, "result_slug": system.slug}, status=status)


def _action_result(system, action_name: str) -> tuple[dict, int]:
    """What to show after an action: its outcome, or why it could not be carried out."""
    action = ACTIONS.get(action_name)
    if action is None:
        choices = ", ".join(ACTIONS)
        return {
            "system": system,
            "error": f"Choose what should happen in {system.name}: one of {choices}.",
        }, 400
    try:
        outcome = demo_action_run(system=system, action_name=action.name)
    except DemoActionError as exc:
        # The request was right; the sandbox was not there: said in place, like Test connection.
        return {"system": system, "error": f"{action.label} did not work: {exc}."}, 200
    context = {"system": system, "outcome": outcome}
    if outcome.event is not None:
        context["deliveries"] = outcome.event.deliveries.select_related("flow").order_by("flow__name")
    if not outcome.event_type:  # broken: the flows that deliver to it will show it
        context["flows_in"] = Flow.objects.filter(target_system=system).order_by("name")
    return context, 200
