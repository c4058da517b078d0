"""Each UI door answers input over its limit with a plain form error (or a 4xx the page shows),
never a 500, a hang or a crashed worker."""

import json
import time

import pytest
from django.test import Client
from django.urls import reverse

from common.limits import LIMITS
from dlq.forms import FixReplayForm
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db

SELF_REF = json.dumps(
    {
        "components": {
            "schemas": {"A": {"properties": {k: {"$ref": "#/components/schemas/A"} for k in "abcdefg"}}}
        }
    }
)


@pytest.fixture
def admin(personas):
    client = Client(raise_request_exception=False)
    client.force_login(personas["admin"])
    return client


@pytest.fixture
def flow(personas):
    source = model_with_fields(
        SystemFactory(name="CRM", slug="crm"), "Deal", "/deals", "id! x", sample={"id": "d1"}
    )
    target = model_with_fields(SystemFactory(name="Books", slug="books"), "Invoice", "/invoices", {})
    return flow_with_mapping(
        source_model=source, target_model=target, rules=[{"target": "reference", "source": "id"}],
        actor=personas["admin"],
    )  # fmt: skip


def test_a_specification_nested_50000_deep_is_a_form_error_not_a_crashed_worker(admin):
    response = admin.post(reverse("flows-spec-import"), {"text": "[" * 50_000 + "]" * 50_000})
    assert response.status_code == 200
    assert "The document cannot be read at line 1 column 65: the document nests deeper than 64 levels." in (
        response.content.decode()
    )


def test_an_openapi_document_nested_too_deep_is_a_form_error(admin, flow):
    data = {"source": "openapi", "openapi_text": "a: " + "[" * 50_000 + "]" * 50_000, "action": "read"}
    response = admin.post(reverse("mappings-model-add"), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "This document cannot be read: line 1 column " in page
    assert "the document nests deeper than 64 levels." in page


def test_a_self_referential_openapi_document_is_answered_at_once_with_the_loop_named(admin, flow):
    started = time.monotonic()
    data = {"source": "openapi", "openapi_text": SELF_REF, "schema_name": "A", "action": "read"}
    response = admin.post(reverse("mappings-model-add"), data)
    assert time.monotonic() - started < 5
    assert response.status_code == 200 and len(response.content) < 200_000
    assert "expands to more than 2,000 fields (#/components/schemas/A refers back to itself)" in (
        response.content.decode()
    )


def test_a_preview_that_would_be_huge_is_refused_before_it_is_written(admin, flow):
    rules = [{"target": f"t{i}", "source": "x"} for i in range(500)]
    body = {"rules": rules, "record_source": "paste", "record_text": json.dumps({"x": "a" * 480_000})}
    response = admin.post(
        reverse("mappings-preview", args=[flow.mapping_id]), body, content_type="application/json"
    )
    assert response.status_code == 422
    assert len(response.content) < 1000
    assert response.json()["message"].startswith("The preview would be larger than 4 MB, too large to show")


def test_a_preview_or_save_request_over_1_mb_or_with_too_many_rules_is_refused(admin, flow):
    for name in ("mappings-preview", "mappings-save"):
        url = reverse(name, args=[flow.mapping_id])
        big = admin.post(
            url, json.dumps({"rules": [], "pad": "x" * LIMITS.mapper_request_bytes}), "application/json"
        )
        assert big.status_code == 413 and "larger than 1 MB" in big.json()["message"]
        many = [{"target": "reference", "source": "id"}] * (LIMITS.mapping_rules + 1)
        refused = admin.post(url, json.dumps({"rules": many}), content_type="application/json")
        assert refused.status_code == 400
        assert refused.json()["message"] == "This mapping has 2,001 rules; the limit is 2,000."


@pytest.mark.parametrize("text", ["(" * 900 + "a = 1" + ")" * 900, "not " * 450 + "a = 1"])
def test_a_deeply_nested_flow_filter_is_a_form_error(admin, flow, text):
    response = admin.post(reverse("flows-edit", args=[flow.pk]), {"filter_text": text, "name": flow.name})
    assert response.status_code == 200
    assert "The condition nests deeper than 16 levels (of not, all, any or parentheses)." in (
        response.content.decode()
    )


def test_a_fix_and_replay_record_over_the_limit_is_a_form_error():
    text = json.dumps({"id": "x" * LIMITS.replay_record_bytes})
    form = FixReplayForm({"record": text})
    assert not form.is_valid()
    assert form.errors["record"] == [
        "The record is longer than 1 MB, larger than any event the hub accepts; remove what the target does not need."
    ]
