"""The dashboards' data: one JSON endpoint per flow and per system, fetched by
static/hub/dashboard.js for the range the reader picked and again every few seconds."""

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404

from connectors.models import System
from hub.access import readers
from hub.models import Flow
from hub.selectors.dashboards import UnknownRange, flow_dashboard, system_dashboard


def _answer(build, subject, request: HttpRequest) -> JsonResponse:
    try:
        return JsonResponse(build(subject, request.GET.get("range", "day")))
    except UnknownRange as exc:
        return JsonResponse({"error": str(exc)}, status=400)


@readers
def flow_metrics(request: HttpRequest, pk: int) -> JsonResponse:
    return _answer(flow_dashboard, get_object_or_404(Flow, pk=pk), request)


@readers
def system_metrics(request: HttpRequest, pk: int) -> JsonResponse:
    return _answer(system_dashboard, get_object_or_404(System, pk=pk), request)
