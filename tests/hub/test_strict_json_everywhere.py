"""Every door that takes JSON from outside uses the one strict reader: a precise 400 or form
error for NaN, lone surrogates, absurd numbers and deep nesting, never a 500, nothing stored."""

import json

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from connectors.signatures import sign
from hub.models import Delivery, Event
from tests.common.test_strictjson import NASTY
from tests.factories import SystemFactory, api_token_for, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db

# The body shapes the old reader let through to the database or the stack.
BAD_BODIES = [raw for raw, _ in NASTY if raw.startswith((b"{", b"["))]


@pytest.fixture
def crm():
    return SystemFactory(name="CRM", slug="crm")


@pytest.fixture
def flow(crm, personas):
    source = model_with_fields(crm, "Deal", "/deals", "id!", sample={"id": "d1"})
    target = model_with_fields(SystemFactory(name="Books", slug="books"), "Invoice", "/invoices", {})
    return flow_with_mapping(
        source_model=source,
        target_model=target,
        rules=[{"target": "reference", "source": "id"}],
        actor=personas["admin"],
    )


def signed_post(client, system, body: bytes):
    return client.post(
        f"/hooks/{system.slug}/",
        data=body,
        content_type="application/json",
        headers={"X-Signature": sign(system, body)},
    )


@pytest.mark.parametrize(("raw", "reason"), NASTY)
def test_a_correctly_signed_webhook_with_bad_json_gets_a_400_that_says_why(client, crm, flow, raw, reason):
    response = signed_post(client, crm, raw)
    assert response.status_code == 400, response.content
    assert reason in response.json()["error"]
    assert Event.objects.count() == 0 and Delivery.objects.count() == 0


@pytest.mark.parametrize(("raw", "reason"), NASTY)
def test_the_publish_api_answers_bad_json_with_a_400_that_says_why(personas, crm, raw, reason):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(personas['publisher'], [crm])}")
    response = api.post("/api/v1/events/", data=raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert reason in response.json()["error"]
    assert Event.objects.count() == 0


@pytest.mark.parametrize("raw", BAD_BODIES)
def test_the_mapper_preview_refuses_bad_json_without_a_500(personas, flow, raw):
    client = Client()
    client.force_login(personas["admin"])
    response = client.post(
        reverse("mappings-preview", args=[flow.mapping_id]), data=raw, content_type="application/json"
    )
    assert response.status_code == 400
    pasted = client.post(
        reverse("mappings-preview", args=[flow.mapping_id]),
        data=json.dumps(
            {"rules": [], "record_source": "paste", "record_text": raw.decode("utf-8", "replace")}
        ),
        content_type="application/json",
    )
    assert pasted.status_code == 200 and "This is not valid JSON" in pasted.text


@pytest.mark.parametrize(("raw", "reason"), [(r, why) for r, why in NASTY if r.startswith(b"{")])
def test_a_pasted_sample_with_bad_json_gets_a_form_error(personas, crm, raw, reason):
    client = Client()
    client.force_login(personas["admin"])
    response = client.post(
        reverse("mappings-model-add"),
        {"action": "read", "system": crm.pk, "source": "sample", "sample": raw.decode("utf-8", "replace")},
    )
    assert response.status_code in (200, 400)
    assert "This is not valid JSON" in response.text
