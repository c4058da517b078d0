"""What tests/api_contract (schemathesis) found the API answering with a 500 or an undocumented
shape, kept fixed here in the normal suite."""

import uuid

import pytest
from rest_framework.test import APIClient

from hub.models import FlowState
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(personas):
    client = APIClient()
    client.force_authenticate(personas["admin"])
    return client


def a_flow(rules, **kwargs):
    source = model_with_fields(SystemFactory(), "Deal", "/deals", "id!")
    target = model_with_fields(SystemFactory(), "Invoice", "/invoices", "reference!")
    return flow_with_mapping(source_model=source, target_model=target, rules=rules, **kwargs)


@pytest.fixture
def flow():
    return a_flow([{"target": "reference", "source": "id"}])


def test_actions_answer_with_a_format_suffix(api, flow):
    assert api.post(f"/api/v1/flows/{flow.pk}/pause.json").status_code == 200
    assert api.post(f"/api/v1/flows/{flow.pk}/resume.json").json()["state"] == FlowState.ACTIVE


def test_pause_reads_its_reason_and_refuses_a_body_that_is_no_object(api, flow):
    response = api.post(f"/api/v1/flows/{flow.pk}/pause/", ["a", "list"], format="json")
    assert response.status_code == 400 and response.json()["error"]
    response = api.post(f"/api/v1/flows/{flow.pk}/pause/", {"reason": "vendor maintenance"}, format="json")
    assert response.json()["paused_reason"] == "vendor maintenance"


def test_resuming_a_flow_that_cannot_run_is_a_409_that_says_why(api):
    unready = a_flow([], state=FlowState.PAUSED)
    response = api.post(f"/api/v1/flows/{unready.pk}/resume/")
    assert response.status_code == 409
    assert "no rules" in response.json()["error"]


@pytest.mark.parametrize(
    "query", ["event=not-a-uuid", "flow=99999999999999999999999", "flow=abc", "status=lost"]
)
def test_a_bad_delivery_filter_is_a_400_naming_it(api, query):
    response = api.get(f"/api/v1/deliveries/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["fields"]


def test_good_delivery_filters_still_filter(api, flow):
    response = api.get(f"/api/v1/deliveries/?flow={flow.pk}&status=pending&event={uuid.uuid4()}")
    assert response.status_code == 200 and response.json()["count"] == 0


def test_a_webhook_sent_with_the_wrong_method_gets_a_json_405(client):
    response = client.get("/hooks/crm/")
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert "POST" in response.json()["error"]


def test_an_address_no_url_matches_is_a_json_404_under_the_api_and_hooks(api, client):
    for path in ("/api/v1/dead-letters/x%C2%84/", "/api/v1/no-such-thing/", "/hooks/not a slug/"):
        response = api.get(path)
        assert response.status_code == 404 and "not an API address" in response.json()["error"]
    assert client.get("/no-such-page/")["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("query", ["system=%00", "system=", "record_id=" + "x" * 301])
def test_a_bad_event_filter_is_a_400_not_a_database_error(api, query):
    response = api.get(f"/api/v1/events/?{query}")
    assert response.status_code == 400 and response.json()["fields"]


def test_the_open_filter_of_dead_letters_is_true_or_false(api):
    assert api.get("/api/v1/dead-letters/?open=true").status_code == 200
    assert api.get("/api/v1/dead-letters/?open=null").json()["fields"] == {"open": ["must be true or false"]}


def test_text_fields_take_text_and_actions_take_json(api, flow):
    response = api.post(f"/api/v1/flows/{flow.pk}/pause/", {"reason": 0}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["fields"]
    response = api.post(f"/api/v1/flows/{flow.pk}/pause/", {"reason": "x"}, format="multipart")
    assert response.status_code == 415


@pytest.mark.parametrize(
    "path", ["/api/v1/events/?system=a&system=b", "/api/v1/deliveries/?status=dead&status=pending",
             "/api/v1/dead-letters/?text=a&text=b"],
)  # fmt: skip
def test_a_filter_given_twice_is_a_400_not_the_last_one(api, path):
    response = api.get(path)
    assert response.status_code == 400
    assert list(response.json()["fields"].values()) == [["give this parameter once"]]


def test_a_text_limit_counts_the_text_as_sent(api, flow):
    response = api.post(f"/api/v1/flows/{flow.pk}/pause/", {"reason": " " + "x" * 300}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["fields"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_machine_endpoints_answer_another_method_with_a_405(client, path):
    response = client.generic("QUERY", path)
    assert response.status_code == 405 and response["Allow"] == "GET"


def test_the_schema_describes_the_webhook_and_monitoring_endpoints(api):
    paths = api.get("/api/schema/?format=json").json()["paths"]
    assert {"/hooks/{slug}/", "/healthz", "/readyz", "/metrics"} <= set(paths)
    assert set(paths["/hooks/{slug}/"]["get"]["responses"]) == {"200", "404", "405", "503"}  # handshakes
    assert set(paths["/hooks/{slug}/"]["post"]["responses"]) == {
        "200",
        "202",
        "400",
        "401",
        "404",
        "405",
        "413",
        "503",
    }


@pytest.mark.parametrize("query", ["limit=", "offset=", "limit=5&limit=6", "offset=1&offset=2"])
def test_a_page_parameter_that_is_empty_or_given_twice_is_a_400(api, query):
    response = api.get(f"/api/v1/audit/?{query}")
    assert response.status_code == 400 and query.split("=")[0] in response.json()["fields"]


def test_an_empty_id_filter_of_dead_letters_is_a_400(api):
    response = api.get("/api/v1/dead-letters/?system=&text=")
    assert response.status_code == 400 and list(response.json()["fields"]) == ["system"]
