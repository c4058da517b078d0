"""Systems through the API: the Systems page's rules and audit, credentials write-only."""

import json

import pytest
from rest_framework.test import APIClient

from connectors.models import System
from hub.models import AuditEntry
from tests.api.conftest import last_audit, statuses
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db

API_KEY = "sk-live-very-secret-1234"
SIGNING = "whsec-signing-secret-5678"
NEW_SYSTEM = {
    "name": "Sales CRM",
    "kind": "crm",
    "base_url": "https://crm.example.com/api",
    "auth_scheme": "api_key",
    "auth_config": {"header": "X-Api-Key"},
    "credentials": {"api_key": API_KEY},
    "signature_scheme": "hmac_sha256",
    "webhook_secret": SIGNING,
}


def test_it_registers_a_system_without_ever_answering_its_secrets(as_):
    api = as_("admin")
    response = api.post("/api/v1/systems/", NEW_SYSTEM, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["slug"] == "sales-crm" and body["auth_config"]["header"] == "X-Api-Key"
    assert body["credentials_set"] == ["api_key"] and body["webhook_secret_set"] is True
    system = System.objects.get(pk=body["id"])
    assert system.credentials == {"api_key": API_KEY} and system.secret == SIGNING
    for text in (
        response.content.decode(),
        api.get(f"/api/v1/systems/{system.pk}/").content.decode(),
        api.get("/api/v1/systems/").content.decode(),
        json.dumps(list(AuditEntry.objects.values_list("diff", flat=True))),
    ):
        assert API_KEY not in text and SIGNING not in text
    assert last_audit("create").target_label == "Sales CRM"


def test_it_changes_only_what_the_body_names_and_keeps_the_secrets(as_):
    api = as_("admin")
    pk = api.post("/api/v1/systems/", NEW_SYSTEM, format="json").json()["id"]
    response = api.patch(
        f"/api/v1/systems/{pk}/", {"read_timeout": 20, "api_version": "2024-06"}, format="json"
    )
    assert response.status_code == 200, response.json()
    system = System.objects.get(pk=pk)
    assert (system.read_timeout, system.api_version, system.name) == (20, "2024-06", "Sales CRM")
    assert system.credentials == {"api_key": API_KEY} and system.secret == SIGNING
    assert last_audit("update").diff["read_timeout"] == [10.0, 20.0]

    api.patch(f"/api/v1/systems/{pk}/", {"credentials": {"api_key": "sk-new-one"}}, format="json")
    system.refresh_from_db()
    assert system.credentials == {"api_key": "sk-new-one"}
    assert last_audit("update").diff["credentials_replaced"] == ["api_key"]
    assert "sk-new-one" not in json.dumps(last_audit("update").diff)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": 12}, "name"),
        ({"base_url": "not a url"}, "base_url"),
        ({"base_url": "https://{tenant}.example.com"}, "base_url"),
        ({"slug": "Not A Slug"}, "slug"),
        ({"read_timeout": "10"}, "read_timeout"),
        ({"read_timeout": 1000}, "read_timeout"),
        ({"auth_scheme": "nonsense"}, "auth_scheme"),
        ({"credentials": {"password": "x"}}, "credentials"),
        ({"auth_config": {"no_such_setting": "x"}}, "auth_config"),
        ({"credentials": {"api_key": ""}}, "credentials.api_key"),
        ({"credentials": {"api_key": "line\nbreak"}}, "credentials.api_key"),
        ({"webhook_secret": ""}, "webhook_secret"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(as_, change, field):
    response = as_("admin").post("/api/v1/systems/", {**NEW_SYSTEM, **change}, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()
    assert not System.objects.exists()


def test_a_name_taken_is_refused_as_on_the_page(as_):
    SystemFactory(name="Sales CRM")
    response = as_("admin").post("/api/v1/systems/", {**NEW_SYSTEM, "name": "sales crm"}, format="json")
    assert response.status_code == 400 and "already a system" in response.json()["fields"]["name"][0]


def test_deleting_a_system_flows_use_is_a_409_that_says_why(as_):
    source = model_with_fields(SystemFactory(), "Deal", "/deals", "id!")
    target = model_with_fields(SystemFactory(), "Invoice", "/invoices", "ref!")
    flow_with_mapping(source_model=source, target_model=target, rules=[{"target": "ref", "source": "id"}])
    response = as_("admin").delete(f"/api/v1/systems/{source.system_id}/")
    assert response.status_code == 409 and "Flows use it" in response.json()["error"]

    lone = SystemFactory()
    assert as_("admin").delete(f"/api/v1/systems/{lone.pk}/").status_code == 204
    assert not System.objects.filter(pk=lone.pk).exists()
    assert last_audit("delete").target_label == lone.name


def test_unknown_ids_are_404(as_):
    assert as_("admin").get("/api/v1/systems/999999/").status_code == 404
    assert as_("admin").patch("/api/v1/systems/999999/", {}, format="json").status_code == 404


def test_test_connection_says_what_happened_in_words(as_):
    system = SystemFactory(base_url="http://127.0.0.1:9")  # nothing listens on the discard port
    response = as_("ops").post(
        f"/api/v1/systems/{system.pk}/test-connection/", {"path": "/deals"}, format="json"
    )
    assert response.status_code == 200, response.json()
    report = response.json()
    assert report["ok"] is False and report["path"] == "/deals" and report["headline"]
    assert last_audit("test_connection").diff["path"] == "/deals"


def test_roles_match_the_systems_page(as_):
    system = SystemFactory()
    assert statuses(as_, "get", "/api/v1/systems/") == {
        "anonymous": 401, "admin": 200, "ops": 200, "auditor": 200, "publisher": 403, "outsider": 403,
    }  # fmt: skip
    writes = statuses(as_, "patch", f"/api/v1/systems/{system.pk}/", {"api_version": "v9"})
    assert writes == {
        "anonymous": 401,
        "admin": 200,
        "ops": 403,
        "auditor": 403,
        "publisher": 403,
        "outsider": 403,
    }
    test = statuses(as_, "post", f"/api/v1/systems/{system.pk}/test-connection/", {})
    assert test == {
        "anonymous": 401,
        "admin": 200,
        "ops": 200,
        "auditor": 403,
        "publisher": 403,
        "outsider": 403,
    }
    refused = as_("auditor").delete(f"/api/v1/systems/{system.pk}/")
    assert "needs the Admin role" in refused.json()["error"]


def test_a_signed_in_session_must_send_its_csrf_token(personas):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(personas["admin"])
    response = browser.post("/api/v1/systems/", NEW_SYSTEM, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["error"]
    assert not System.objects.exists()


def test_a_vendor_template_fills_what_the_body_leaves_out_and_is_remembered(as_):
    api = as_("admin")
    body = {"name": "Payments", "vendor_template": "stripe", "credentials": {"token": API_KEY}}
    response = api.post("/api/v1/systems/", body | {"webhook_secret": SIGNING}, format="json")
    assert response.status_code == 201, response.json()
    answered = response.json()
    assert answered["vendor_template"] == "stripe" and answered["base_url"] == "https://api.stripe.com/v1"
    assert (answered["signature_scheme"], answered["signature_header"]) == (
        "timestamped_hmac_sha256",
        "Stripe-Signature",
    )
    assert (answered["api_version"], answered["api_version_in"], answered["api_version_name"]) == (
        "2024-06-20",
        "header",
        "Stripe-Version",
    )
    moved = api.patch(
        f"/api/v1/systems/{answered['id']}/",
        {"api_version": "2025-01", "api_version_in": "query", "api_version_name": "version"},
        format="json",
    )
    assert moved.status_code == 200, moved.json()
    assert System.objects.get(pk=answered["id"]).api_version_in == "query"
    unknown = api.post("/api/v1/systems/", {"name": "Other", "vendor_template": "no-such"}, format="json")
    assert unknown.status_code == 400 and "template" in json.dumps(unknown.json())
