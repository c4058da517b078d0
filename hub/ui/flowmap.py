"""The data-flow map: every system as a node, every flow as a directed edge coloured by health.

The page draws the picture in the browser (static/hub/flowmap.js, cytoscape + dagre) from the
JSON below, and asks for it again every 15 seconds so the colours follow the flows' health.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from connectors.models import System
from hub.access import readers
from hub.models import Flow, Trigger
from hub.selectors.health import HEALTH_LABELS, flows_health
from hub.services.flows import schedule_short
from hub.ui.flows import consistency

REFRESH_SECONDS = 15


def edge_label(flow: Flow) -> str:
    """'deal.won · real-time', 'every 15 min', 'employee.hired · weekdays 02:00'."""
    frequency = schedule_short(trigger=flow.trigger, minutes=flow.schedule_minutes, cron=flow.schedule_cron)
    if flow.event_type in ("", "*"):
        return frequency if flow.trigger == Trigger.SCHEDULED else f"any event · {frequency}"
    return f"{flow.event_type} · {frequency}"


def map_data() -> dict[str, Any]:
    """Nodes and edges in a fixed number of queries, whatever the number of flows."""
    systems = list(System.objects.order_by("name").only("id", "name", "slug", "kind"))
    flows = Flow.objects.select_related(
        "source_system", "target_system", "source_model", "target_model"
    ).order_by("name")
    health = flows_health(flows)
    nodes = [
        {
            "id": f"system-{system.pk}",
            "label": system.name,
            "kind": system.get_kind_display(),
            "slug": system.slug,
            "url": reverse("connectors-detail", args=[system.pk]),
        }
        for system in systems
    ]
    edges = []
    for row in health:
        flow = row.flow
        edges.append({
            "id": f"flow-{flow.pk}",
            "source": f"system-{flow.source_system_id}",
            "target": f"system-{flow.target_system_id}",
            "name": flow.name,
            "label": edge_label(flow),
            "event": flow.event_type,
            "consistency": consistency(flow),
            "what": f"{flow.source_model.name} → {flow.get_operation_display().lower()} {flow.target_model.name}",
            "health": row.state,
            "health_label": row.label,
            "reason": row.reason,
            "succeeded": row.succeeded,
            "failed": row.failed,
            "waiting": row.waiting,
            "url": reverse("flows-detail", args=[flow.pk]),
        })  # fmt: skip
    return {
        "generated_at": timezone.now().isoformat(),
        "refresh_seconds": REFRESH_SECONDS,
        "nodes": nodes,
        "edges": edges,
        "legend": [{"state": state, "label": label} for state, label in HEALTH_LABELS.items()],
    }


@readers
def flow_map(request: HttpRequest) -> HttpResponse:
    data = map_data()
    return render(request, "hub/map.html", {
        "data": data, "edge_count": len(data["edges"]), "node_count": len(data["nodes"]),
        "legend": data["legend"], "flows_by_name": data["edges"],
    })  # fmt: skip


@readers
def flow_map_data(request: HttpRequest) -> JsonResponse:
    return JsonResponse(map_data())
