"""The data-flow map: its page, its JSON (systems, flows, labels, health) and who may see it."""

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from hub.models import Delivery, DeliveryStatus, Event, FlowState, Trigger
from hub.ui.flowmap import edge_label
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db
RULES = [{"target": "email", "source": "email"}]
KINDS = ["crm", "accounting", "inventory", "hr", "ecommerce", "payments", "inventory", "other"]


def map_fixture(systems: int = 8, flows: int = 30, prefix: str = "") -> list:
    """`systems` systems and `flows` flows between them, with parallel and two-way flows and every health."""
    nodes = [
        SystemFactory(name=f"{prefix}System {n}", slug=f"{prefix}sys-{n}", kind=KINDS[n % len(KINDS)])
        for n in range(systems)
    ]
    models = [model_with_fields(s, "Record", "/records", "email!") for s in nodes]
    made = []
    for n in range(flows):
        source, target = n % systems, (n * 3 + 1) % systems
        state = FlowState.PAUSED if n % 9 == 4 else FlowState.DRAFT if n % 11 == 6 else FlowState.ACTIVE
        scheduled = n % 5 == 0
        flow = flow_with_mapping(
            source_model=models[source], target_model=models[target], rules=RULES, name=f"{prefix}Flow {n:02d}",
            event_type="*" if scheduled else f"record.e{n % 4}", state=state,
            trigger=Trigger.SCHEDULED if scheduled else Trigger.REALTIME,
            schedule_minutes=15 if scheduled else None,
        )  # fmt: skip
        if state == FlowState.ACTIVE and n % 3 == 0:
            event = Event.objects.create(
                system=nodes[source], event_type="x", idempotency_key=f"{prefix}k{n}", payload={}
            )
            status = DeliveryStatus.RETRYING if n % 6 == 0 else DeliveryStatus.SUCCEEDED
            Delivery.objects.create(
                event=event, flow=flow, record_key="r", status=status, finished_at=timezone.now()
            )
        made.append(flow)
    return made


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
        "source": f"system-{crm.pk}", "target": f"system-{inventory.pk}", "label": "deal.won · real-time",
        "health": "ok", "url": reverse("flows-detail", args=[won.pk]), "succeeded": 1,
    } == edges["Won deals reduce stock"]  # fmt: skip
    assert edges["Sweep"]["label"] == "every 15 min" and edges["Sweep"]["health"] == "paused"
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


def test_it_labels_edges_with_event_frequency_and_consistency(pipeline):
    _, _, won, sweep = pipeline
    assert edge_label(won) == "deal.won · real-time"
    assert edge_label(sweep) == "every 15 min"
    sweep.event_type, sweep.schedule_minutes, sweep.schedule_cron = "deal.won", None, "0 2 * * 1-5"
    assert edge_label(sweep) == "deal.won · weekdays 02:00"
    won.event_type = "*"
    assert edge_label(won) == "any event · real-time"


def test_it_draws_eight_systems_and_thirty_flows_in_a_fixed_number_of_queries(
    client, personas, django_assert_max_num_queries
):
    client.force_login(personas["ops"])
    map_fixture(systems=2, flows=3, prefix="small-")
    client.get(reverse("flows-map-data"))
    with django_assert_max_num_queries(10) as few:
        client.get(reverse("flows-map-data"))
    flows = map_fixture(systems=8, flows=30)
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
