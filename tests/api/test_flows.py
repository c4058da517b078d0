"""Flows through the API: the Flows pages' lifecycle, checks, roles and audit."""

import pytest

from hub.models import Delivery, Event, Flow, FlowState
from tests.api.conftest import last_audit, statuses
from tests.factories import SystemFactory, model_with_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def models():
    source = model_with_fields(SystemFactory(), "Deal", "/deals", "id! stage amount:number", sample={"id": 1})
    target = model_with_fields(SystemFactory(), "Invoice", "/invoices", "ref!")
    return source, target


def new_flow(as_, models, **extra) -> dict:
    source, target = models
    body = {
        "name": "Won deals",
        "source_model": source.pk,
        "target_model": target.pk,
        "event_type": "deal.won",
    }
    response = as_("admin").post("/api/v1/flows/", {**body, **extra}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_it_creates_a_draft_that_cannot_be_enabled_until_it_is_mapped(as_, models):
    flow = new_flow(as_, models, filter_text="stage = won", max_attempts=3)
    assert flow["state"] == "draft" and flow["filter"] and flow["max_attempts"] == 3
    assert "no rules" in flow["problems"][0]
    assert last_audit("create").target_label == "Won deals"
    refused = as_("admin").post(f"/api/v1/flows/{flow['id']}/enable/")
    assert refused.status_code == 409 and "no rules" in refused.json()["error"]

    rules = {"rules": [{"target": "ref", "source": "id"}]}
    as_("admin").post(f"/api/v1/mappings/{flow['mapping']}/versions/", rules, format="json")
    enabled = as_("admin").post(f"/api/v1/flows/{flow['id']}/enable/")
    assert enabled.status_code == 200 and enabled.json()["state"] == "active"
    assert last_audit("enable").diff["state"] == ["draft", "active"]
    assert as_("admin").post(f"/api/v1/flows/{flow['id']}/enable/").status_code == 409

    paused = as_("ops").post(
        f"/api/v1/flows/{flow['id']}/pause/", {"reason": "vendor upgrade"}, format="json"
    )
    assert paused.json()["state"] == "paused"
    assert as_("ops").post(f"/api/v1/flows/{flow['id']}/resume/").json()["state"] == "active"


def test_it_changes_settings_and_refuses_what_the_page_refuses(as_, models):
    flow = new_flow(as_, models)
    url = f"/api/v1/flows/{flow['id']}/"
    changed = as_("admin").patch(url, {"trigger": "scheduled", "schedule_cron": "0 7 * * 1-5"}, format="json")
    assert changed.status_code == 200 and changed.json()["schedule_cron"] == "0 7 * * 1-5"
    assert last_audit("update").diff["trigger"] == ["realtime", "scheduled"]
    for bad in (
        {"schedule_cron": "every tuesday"},
        {"filter_text": "stage = = won"},
        {"retry_on": ["no_such_class"]},
        {"max_attempts": 0},
        {"name": ""},
        {"max_attempts": "3"},
        {"filter": {"field": "stage", "op": "teleport", "value": 1}},
        {"drift_policy": "ignore"},
    ):
        response = as_("admin").patch(url, bad, format="json")
        assert response.status_code == 400, (bad, response.json())
        assert response.json()["error"]
    assert Flow.objects.get(pk=flow["id"]).schedule_cron == "0 7 * * 1-5"
    held = as_("admin").patch(url, {"drift_policy": "hold"}, format="json")
    assert held.status_code == 200 and held.json()["drift_policy"] == "hold"
    assert last_audit("update").diff["drift_policy"] == ["report", "hold"]


def test_a_second_flow_of_the_same_name_and_unknown_models_are_400s(as_, models):
    new_flow(as_, models)
    source, target = models
    again = {"name": "Won deals", "source_model": source.pk, "target_model": target.pk}
    assert "already a flow" in as_("admin").post("/api/v1/flows/", again, format="json").json()["error"]
    unknown = as_("admin").post(
        "/api/v1/flows/", {**again, "name": "x", "source_model": 99999}, format="json"
    )
    assert unknown.status_code == 400 and "source_model" in unknown.json()["fields"]


def test_a_test_event_goes_through_the_pipeline_and_waits_on_a_draft(as_, models):
    flow = new_flow(as_, models)
    response = as_("admin").post(f"/api/v1/flows/{flow['id']}/test-event/")
    assert response.status_code == 201, response.json()
    sent = response.json()
    assert sent["held"] is True and sent["record"]["id"].startswith("test-")
    event = Event.objects.get(pk=sent["event_id"])
    assert event.origin == Event.Origin.TEST and Delivery.objects.filter(event=event).count() == 1
    assert last_audit("send_test_event").diff["event"] == sent["event_id"]


def test_it_deletes_a_flow_with_its_mapping(as_, models):
    flow = new_flow(as_, models)
    assert as_("admin").delete(f"/api/v1/flows/{flow['id']}/").status_code == 204
    assert not Flow.objects.exists()
    assert last_audit("delete").target_label == "Won deals"
    assert as_("admin").delete(f"/api/v1/flows/{flow['id']}/").status_code == 404


def test_polling_a_real_time_flow_is_a_409(as_, models):
    flow = new_flow(as_, models)
    response = as_("ops").post(f"/api/v1/flows/{flow['id']}/poll/")
    assert response.status_code == 409 and "scheduled" in response.json()["error"]


def test_roles_match_the_flows_pages(as_, models):
    flow = new_flow(as_, models)
    admin_only = {
        "anonymous": 401,
        "admin": 200,
        "ops": 403,
        "auditor": 403,
        "publisher": 403,
        "outsider": 403,
    }
    assert statuses(as_, "patch", f"/api/v1/flows/{flow['id']}/", {"description": "x"}) == admin_only
    reads = {"anonymous": 401, "admin": 200, "ops": 200, "auditor": 200, "publisher": 403, "outsider": 403}
    assert statuses(as_, "get", f"/api/v1/flows/{flow['id']}/") == reads
    Flow.objects.filter(pk=flow["id"]).update(state=FlowState.ACTIVE)
    pauses = statuses(as_, "post", f"/api/v1/flows/{flow['id']}/pause/", {})
    assert pauses == {
        "anonymous": 401,
        "admin": 200,
        "ops": 200,
        "auditor": 403,
        "publisher": 403,
        "outsider": 403,
    }
    tests = statuses(as_, "post", f"/api/v1/flows/{flow['id']}/test-event/", {})
    assert tests == {**admin_only, "admin": 201}
