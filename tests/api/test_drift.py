"""Schema drift through the API: the drift report's rows as JSON, and its three fixes (update the
model, release the held deliveries, dismiss) through the same services, audited; readers read,
admins act."""

import pytest

from hub.models import Delivery, DeliveryStatus, DriftPolicy, SchemaDrift
from hub.pipeline.ingest import IncomingEvent, events_store
from mappings.models import Field
from tests.api.conftest import last_audit, statuses
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db


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


@pytest.fixture
def coupon(flow) -> SchemaDrift:
    orders(flow, 1, 2, coupon="WINTER", password="hunter2-secret")
    return SchemaDrift.objects.get(path="coupon")


def test_it_lists_a_change_with_its_samples_and_held_deliveries(as_, flow, coupon):
    response = as_("auditor").get("/api/v1/drift/?system=shop&status=open")
    assert response.status_code == 200, response.json()
    [row] = [r for r in response.json()["results"] if r["path"] == "coupon"]
    assert row["kind"] == "added" and row["status"] == "open" and row["events"] == 2
    assert row["description"] == "new field “coupon” (string)"
    assert row["update_model_would"] == "Add “coupon” (string) to Order"
    assert row["held"] == 2
    assert row["flows"] == [
        {"flow": flow.pk, "flow_name": "Orders to invoices", "held": 2, "dead_lettered": 0, "breaks": False}
    ]
    assert "WINTER" in str(row["samples"]) and "hunter2-secret" not in str(response.json())
    assert as_("ops").get(f"/api/v1/drift/{coupon.pk}/").json()["id"] == coupon.pk
    assert as_("auditor").get(f"/api/v1/drift/?flow={flow.pk}").json()["count"] >= 1
    assert as_("auditor").get("/api/v1/drift/?status=dismissed").json()["count"] == 0


def test_it_updates_the_model_then_releases_the_held_deliveries(as_, flow, coupon):
    response = as_("admin").post(f"/api/v1/drift/{coupon.pk}/update-model/", {}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "applied"
    assert Field.objects.filter(model=flow.source_model, path="coupon", type="string").exists()
    assert last_audit("drift_apply").diff == {"change": "Add “coupon” (string) to Order"}
    again = as_("admin").post(f"/api/v1/drift/{coupon.pk}/update-model/", {}, format="json")
    assert again.status_code == 409 and "already dealt with" in again.json()["error"]

    released = as_("admin").post(f"/api/v1/drift/{coupon.pk}/release/", {"flow": flow.pk}, format="json")
    assert released.status_code == 200, released.json()
    assert released.json()["released"] == 2 and released.json()["drift"]["held"] == 0
    assert not Delivery.objects.filter(flow=flow, status=DeliveryStatus.HELD).exists()
    assert last_audit("drift_release").diff == {"released": 2, "flow": "Orders to invoices"}
    assert as_("admin").post(f"/api/v1/drift/{coupon.pk}/release/", {}, format="json").json()["released"] == 0


def test_it_dismisses_a_change_once(as_, coupon):
    response = as_("admin").post(f"/api/v1/drift/{coupon.pk}/dismiss/", format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "dismissed"
    assert last_audit("drift_dismiss").target_id == str(coupon.pk)
    again = as_("admin").post(f"/api/v1/drift/{coupon.pk}/dismiss/", {}, format="json")
    assert again.status_code == 409 and again.json()["error"] == "this change is already dismissed"


def test_readers_read_and_only_admins_act(as_, coupon):
    reads = statuses(as_, "get", "/api/v1/drift/")
    assert reads == {
        "anonymous": 401,
        "admin": 200,
        "ops": 200,
        "auditor": 200,
        "publisher": 403,
        "outsider": 403,
    }
    for verb in ("update-model", "release", "dismiss"):
        found = statuses(as_, "post", f"/api/v1/drift/{coupon.pk}/{verb}/", {})
        assert {k: v for k, v in found.items() if k != "admin"} == {
            "anonymous": 401, "ops": 403, "auditor": 403, "publisher": 403, "outsider": 403,
        }, verb  # fmt: skip
    refused = as_("ops").post(f"/api/v1/drift/{coupon.pk}/dismiss/", {}, format="json").json()["error"]
    assert refused == "This change needs the Admin role. You are signed in as an Ops user."


@pytest.mark.parametrize(
    "query",
    ["?system=nowhere", "?status=gone", "?flow=0", "?flow=x", "?flow=999999", "?system=shop&system=shop"],
)
def test_bad_filters_are_400s(as_, coupon, query):
    response = as_("auditor").get(f"/api/v1/drift/{query}")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]


@pytest.mark.parametrize("body", [{"flow": "1"}, {"flow": 0}, {"flow": 999999}, {"flow": True}])
def test_a_bad_release_is_a_400_and_releases_nothing(as_, coupon, body):
    response = as_("admin").post(f"/api/v1/drift/{coupon.pk}/release/", body, format="json")
    assert response.status_code == 400, response.json()
    assert Delivery.objects.filter(status=DeliveryStatus.HELD).count() == 2


def test_an_unknown_change_is_a_404(as_):
    assert as_("admin").get("/api/v1/drift/999999/").status_code == 404
    assert as_("admin").post("/api/v1/drift/999999/dismiss/", {}, format="json").status_code == 404
