"""The data-flow map: its page, its JSON (systems, flows, labels, health) and who may see it."""

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from hub.models import Delivery, DeliveryStatus, Event, FlowState, Trigger
from hub.ui.flowmap import edge_label
from tests.factories import SystemFactory, flow_with_mapping, flows_for_map, model_with_fields

pytestmark = pytest.mark.django_db
RULES = [{"target": "email", "source": "email"}]


@pytest.fixture
def pipeline():
    crm = SystemFactory(name="CRM", slug="crm", kind="crm")
    inventory = SystemFactory(name="Inventory", slug="inventory", kind="inventory")
    deal = model_with_fields(crm, "Deal", "/deals", "id! email!")
    adjustment = model_with_fields(inventory, "Adjustment", "/adjustments", "email!")
    won = flow_with_mapping(source_model=deal, target_model=adjustment, rules=RULES, event_type="deal.won",
                            name="Won deals reduce stock")  # fmt: skip
    sweep = flow_with_mapping(source_model=deal, target_model=adjustment, rules=RULES, name="Sweep",
                              trigger=Trigger.SCHEDULED, schedule_minutes=15, state=FlowState.PAUSED)  # fmt: skip
    return crm, inventory, won, sweep


@pytest.mark.parametrize("who, status", [("admin", 200), ("ops", 200), ("auditor", 200), ("outsider", 403)])
def test_it_shows_the_map_to_every_role(client, personas, pipeline, who, status):
    client.force_login(personas[who])
    assert client.get(reverse("flows-map")).status_code == status
    assert client.get(reverse("flows-map-data")).status_code == status


def test_it_sends_anonymous_visitors_to_sign_in(client, pipeline):
    assert client.get(reverse("flows-map")).status_code == 302
    assert client.get(reverse("flows-map-data")).status_code == 302


def test_it_describes_systems_and_flows_with_health_in_the_json(client, personas, pipeline):
    crm, inventory, won, sweep = pipeline
    event = Event.objects.create(system=crm, event_type="deal.won", idempotency_key="e1", payload={})
    Delivery.objects.create(event=event, flow=won, record_key="d1", status=DeliveryStatus.SUCCEEDED,
                            finished_at=timezone.now())  # fmt: skip
    client.force_login(personas["auditor"])
    data = client.get(reverse("flows-map-data")).json()
    nodes = {n["id"]: n for n in data["nodes"]}
    assert nodes[f"system-{crm.pk}"]["label"] == "CRM" and nodes[f"system-{crm.pk}"]["kind"] == "CRM"
    assert nodes[f"system-{inventory.pk}"]["kind"] == "Inventory"
    edges = {e["name"]: e for e in data["edges"]}
    assert edges["Won deals reduce stock"] | {
        "source": f"system-{crm.pk}", "target": f"system-{inventory.pk}",
        "label": "Won deals reduce stock · real-time", "frequency": "real-time", "event": "deal.won",
        "health": "ok", "icon": "✓", "url": reverse("flows-detail", args=[won.pk]), "succeeded": 1,
    } == edges["Won deals reduce stock"]  # fmt: skip
    assert edges["Sweep"]["label"] == "Sweep · every 15 min" and edges["Sweep"]["health"] == "paused"
    assert edges["Sweep"]["event"] == "a poll" and edges["Sweep"]["icon"] == "‖"
    assert {item["state"] for item in data["legend"]} == {
        "ok",
        "failing",
        "paused",
        "silent",
        "draft",
        "idle",
    }
    assert data["refresh_seconds"] == 15


def test_it_links_nodes_to_the_system_pages(client, personas, pipeline):
    crm = pipeline[0]
    client.force_login(personas["admin"])
    node = next(n for n in client.get(reverse("flows-map-data")).json()["nodes"] if n["label"] == "CRM")
    assert node["url"] == reverse("connectors-detail", args=[crm.pk])


def test_it_labels_edges_with_the_flow_name_and_its_consistency(pipeline):
    _, _, won, sweep = pipeline
    assert edge_label(won) == "Won deals reduce stock · real-time"
    assert edge_label(sweep) == "Sweep · every 15 min"
    sweep.schedule_minutes, sweep.schedule_cron = None, "0 2 * * 1-5"
    assert edge_label(sweep) == "Sweep · weekdays 02:00"


def test_every_health_has_its_own_icon_in_the_legend(client, personas, pipeline):
    client.force_login(personas["auditor"])
    legend = client.get(reverse("flows-map-data")).json()["legend"]
    icons = {item["state"]: item["icon"] for item in legend}
    assert len(set(icons.values())) == len(icons) == 6
    assert icons["draft"] != icons["idle"]
    page = client.get(reverse("flows-map")).content.decode()
    for item in legend:
        assert (
            f'<span class="swatch {item["state"]}" data-state="{item["state"]}"><span class="swatch-icon" '
            f'aria-hidden="true">{item["icon"]}</span>{item["label"]}</span>'
        ) in page


def test_it_draws_eight_systems_and_thirty_flows_in_a_fixed_number_of_queries(
    client, personas, django_assert_max_num_queries
):
    client.force_login(personas["ops"])
    flows_for_map(systems=2, flows=3, prefix="small-")
    client.get(reverse("flows-map-data"))
    with django_assert_max_num_queries(10) as few:
        client.get(reverse("flows-map-data"))
    flows = flows_for_map(systems=8, flows=30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        data = client.get(reverse("flows-map-data")).json()
    with django_assert_max_num_queries(len(few.captured_queries) + 1):
        page = client.get(reverse("flows-map")).content.decode()
    assert len(data["nodes"]) == 10 and len(data["edges"]) == 33
    ids = [e["id"] for e in data["edges"]]
    assert len(set(ids)) == len(ids)  # parallel flows stay separate edges
    pairs = [(e["source"], e["target"]) for e in data["edges"]]
    assert len(set(pairs)) < len(pairs)
    assert {e["health"] for e in data["edges"]} >= {"ok", "failing", "paused", "draft", "idle"}
    assert all(f.name in page for f in flows)  # the list view under the map


def test_it_draws_with_vendored_scripts_only(client, personas, pipeline):
    client.force_login(personas["admin"])
    page = client.get(reverse("flows-map")).content.decode()
    for script in ("vendor/cytoscape.min.js", "vendor/cytoscape-dagre.min.js", "hub/flowmap.js"):
        assert f'src="/static/{script}"' in page
        assert (Path(settings.BASE_DIR) / "static" / script).exists()
    assert "cdn" not in page.lower()
    assert 'id="flowmap-data"' in page and 'id="map-png"' in page and reverse("flows-spec-export") in page


def test_it_offers_a_way_forward_when_there_is_nothing_to_draw(client, personas):
    client.force_login(personas["admin"])
    page = client.get(reverse("flows-map")).content.decode()
    assert "Nothing to draw yet" in page
    assert "cytoscape" not in page
