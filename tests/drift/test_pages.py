"""The drift report: readers see each change with its flows and held events; admins fix it in one
click (update the model, release, dismiss), each audited; others are refused and nothing changes."""

import pytest
from django.test import Client
from django.urls import reverse

from hub.models import AuditEntry, Delivery, DeliveryStatus, DriftPolicy, SchemaDrift
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.services.flows import flow_update
from tests.drift.helpers import statuses
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def flow():
    shop, books = SystemFactory(name="Shop", slug="shop"), SystemFactory(name="Books", slug="books")
    return flow_with_mapping(
        source_model=model_with_fields(shop, "Order", "/orders", "id! total:number! status!"),
        target_model=model_with_fields(books, "Invoice", "/invoices", "ref! amount:number"),
        rules=[{"target": "ref", "source": "id"}, {"target": "amount", "source": "total"}],
        drift_policy=DriftPolicy.HOLD,
        name="Orders to invoices",
    )


def orders(flow, *numbers: int, **extra) -> None:
    events_store([
        IncomingEvent(flow.source_system, "order.paid", f"k{n}", {"data": {"id": f"o{n}", "total": 5, "status": "paid", **extra}})
        for n in numbers
    ])  # fmt: skip


def test_it_says_nothing_changed_in_plain_words(flow, personas):
    page = client_for(personas["auditor"]).get(reverse("connectors-drift", args=[flow.source_system_id]))
    assert page.status_code == 200
    assert "No changes seen in the records of Shop since" in page.content.decode()
    flow_page = client_for(personas["auditor"]).get(reverse("flows-detail", args=[flow.pk])).content.decode()
    assert "No changes seen in the records of Shop · Order since" in flow_page
    assert "Hold them until I approve" in flow_page


def test_it_shows_a_change_with_its_samples_and_held_events(flow, personas):
    orders(flow, 1, 2, coupon="WINTER", password="hunter2-secret")
    html = (
        client_for(personas["auditor"])
        .get(reverse("connectors-drift", args=[flow.source_system_id]))
        .content.decode()
    )
    assert "New field “coupon” (string)" in html and "WINTER" in html
    assert "hunter2-secret" not in html and "[redacted]" in html
    assert "2 events held for review" in html
    assert "Update the model" not in html  # an auditor reads only
    system_page = client_for(personas["auditor"]).get(
        reverse("connectors-detail", args=[flow.source_system_id])
    )
    assert "2 open" in system_page.content.decode()
    home = client_for(personas["auditor"]).get(reverse("home")).content.decode()
    assert "Events held for review:" in home and "2 from Shop" in home


def test_an_admin_updates_the_model_releases_and_dismisses_in_one_click_each(flow, personas):
    orders(flow, 1, 2, coupon="WINTER", password="x")
    admin = client_for(personas["admin"])
    coupon, password = SchemaDrift.objects.get(path="coupon"), SchemaDrift.objects.get(path="password")
    back = reverse("flows-detail", args=[flow.pk])
    response = admin.post(reverse("hub-drift-update", args=[coupon.pk]), {"next": back})
    assert response.status_code == 302 and response["Location"] == back
    assert flow.source_model.fields.filter(path="coupon", type="string").exists()
    admin.post(reverse("hub-drift-dismiss", args=[password.pk]))
    admin.post(reverse("hub-drift-release", args=[coupon.pk]), {"flow": flow.pk})
    assert statuses(flow) == {DeliveryStatus.PENDING: 2}
    page = admin.get(reverse("connectors-drift", args=[flow.source_system_id]), follow=True).content.decode()
    assert "Dealt with" in page and "Model updated" in page and "Dismissed" in page
    verbs = list(AuditEntry.objects.filter(actor=personas["admin"]).values_list("verb", flat=True))
    assert {"add_field", "drift_apply", "drift_dismiss", "drift_release"} <= set(verbs)
    again = admin.post(reverse("hub-drift-update", args=[coupon.pk]), follow=True).content.decode()
    assert "The model was not changed: this change was already dealt with (model updated)" in again


@pytest.mark.parametrize("persona", ["auditor", "ops"])
def test_only_admins_act(flow, personas, persona):
    orders(flow, 1, coupon="W")
    drift = SchemaDrift.objects.get()
    for name in ("hub-drift-update", "hub-drift-release", "hub-drift-dismiss"):
        assert client_for(personas[persona]).post(reverse(name, args=[drift.pk])).status_code == 403
    drift.refresh_from_db()
    assert drift.status == SchemaDrift.Status.OPEN and statuses(flow) == {DeliveryStatus.HELD: 1}


def test_the_flow_form_offers_the_policy_in_plain_words(flow, personas):
    admin = client_for(personas["admin"])
    form = admin.get(reverse("flows-edit", args=[flow.pk])).content.decode()
    for words in ("Carry on and tell me", "Add new fields to the model", "Hold them until I approve",
                  "Send them to the dead-letter inbox"):  # fmt: skip
        assert words in form
    flow_update(flow=flow, actor=personas["admin"], drift_policy=DriftPolicy.EXTEND)
    flow.refresh_from_db()
    assert flow.drift_policy == DriftPolicy.EXTEND
    assert AuditEntry.objects.get(verb="update", target_type="flow").diff["drift_policy"] == [
        "hold",
        "extend",
    ]


def test_held_events_are_kept_by_the_retention_purge_and_block_deleting_the_flow(flow, personas):
    from datetime import timedelta

    from hub.pipeline import clock
    from hub.services.errors import ConfigError
    from hub.services.flows import flow_delete
    from hub.services.retention import purgeable_events

    orders(flow, 1, coupon="W")
    orders(flow, 2)
    Delivery.objects.filter(event__idempotency_key="k2").update(status=DeliveryStatus.SUCCEEDED)  # delivered
    later = clock.now() + timedelta(days=400)
    assert [e.idempotency_key for e in purgeable_events(before=later)] == ["k2"]
    with pytest.raises(ConfigError, match="1 deliveries are held for review"):
        flow_delete(flow=flow, actor=personas["admin"])
