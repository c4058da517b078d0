"""The data-flow map: every system as a node, every flow as a labelled arrow between two systems,
styled by health (colour, line style and an icon, so no state is told by colour alone).

The page draws the picture in the browser (static/hub/flowmap.js, cytoscape + dagre) from the
JSON below, and asks for it again every 15 seconds so the styles follow the flows' health.
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
# Beside each flow's name on the map and in its legend (the page's and the downloaded image's).
HEALTH_ICONS = {"ok": "✓", "failing": "✕", "paused": "‖", "silent": "⚠", "draft": "✎", "idle": "○"}


def flow_frequency(flow: Flow) -> str:
    """'real-time', 'every 15 min', 'weekdays 02:00'."""
    return schedule_short(trigger=flow.trigger, minutes=flow.schedule_minutes, cron=flow.schedule_cron)


def edge_label(flow: Flow) -> str:
    """What the map writes on a flow's arrow: 'Won deals reduce stock · real-time'."""
    return f"{flow.name} · {flow_frequency(flow)}"


def event_words(flow: Flow) -> str:
    """'deal.won', 'any event', or 'a poll' for a scheduled flow that takes every record."""
    if flow.event_type in ("", "*"):
        return "a poll" if flow.trigger == Trigger.SCHEDULED else "any event"
    return flow.event_type


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
            "frequency": flow_frequency(flow),
            "event": event_words(flow),
            "consistency": consistency(flow),
            "what": f"{flow.source_model.name} → {flow.get_operation_display().lower()} {flow.target_model.name}",
            "health": row.state,
            "health_label": row.label,
            "icon": HEALTH_ICONS[row.state],
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
        "legend": [
            {"state": state, "label": label, "icon": HEALTH_ICONS[state]}
            for state, label in HEALTH_LABELS.items()
        ],
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
