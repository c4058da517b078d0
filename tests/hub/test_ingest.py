"""Ingest: signatures, parsing, dedupe, one transaction, precise errors (promises 1, 2 and 7)."""

import base64
import hashlib
import hmac
import json
import time

import pytest
from django.db import IntegrityError, transaction

from connectors.models import SignatureEncoding, SignatureScheme
from connectors.signatures import sign, signed_headers
from hub.models import Delivery, DeliveryStatus, Event
from hub.pipeline.ingest import _is_repeated_key
from hub.pipeline.rows import insert_rows
from tests.factories import SystemFactory, api_token_for, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm():
    return SystemFactory(name="CRM", slug="crm")


@pytest.fixture
def deal_flow(crm):
    source = model_with_fields(crm, "Deal", "/deals", "id! stage")
    target = model_with_fields(
        SystemFactory(name="Inventory", slug="inventory"),
        "Adjustment",
        "/adjustments",
        "reference!",
    )
    return flow_with_mapping(
        source_model=source,
        target_model=target,
        event_type="deal.won",
        rules=[{"target": "reference", "source": "id"}],
    )


def post_hook(client, system, payload, *, secret=None, headers=None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = dict(headers or {})
    if secret is not False:
        headers.setdefault("X-Signature", sign(system, body))
    return client.post(f"/hooks/{system.slug}/", data=body, content_type="application/json", headers=headers)


def event_body(event_id="evt_1", event_type="deal.won", record_id="deal_1"):
    return {"id": event_id, "type": event_type, "data": {"id": record_id, "stage": "won"}}


def test_it_stores_the_event_and_one_delivery_per_subscribed_flow(client, crm, deal_flow):
    response = post_hook(client, crm, event_body())
    assert response.status_code == 202
    body = response.json()
    assert body["duplicate"] is False and body["deliveries"] == 1
    event = Event.objects.get(pk=body["event_id"])
    assert event.record_id == "deal_1"
    delivery = Delivery.objects.get(event=event)
    assert delivery.flow == deal_flow and delivery.status == DeliveryStatus.PENDING
    assert delivery.record_key == "deal_1"


def test_it_stores_a_repeated_event_once(client, crm, deal_flow):
    first = post_hook(client, crm, event_body()).json()
    for _ in range(4):
        again = post_hook(client, crm, event_body())
        assert again.status_code == 202
        assert again.json() == {"event_id": first["event_id"], "duplicate": True, "deliveries": 0}
    assert Event.objects.count() == 1
    assert Delivery.objects.count() == 1
    assert Event.objects.get().duplicates_seen == 4


def test_it_does_not_deliver_events_the_flow_does_not_subscribe_to(client, crm, deal_flow):
    response = post_hook(client, crm, event_body(event_type="deal.updated"))
    assert response.status_code == 202 and response.json()["deliveries"] == 0
    assert Event.objects.count() == 1 and Delivery.objects.count() == 0


def test_it_keeps_filtered_out_events_visible_as_skipped(client, crm, deal_flow):
    deal_flow.filter = {"path": "stage", "op": "eq", "value": "lost"}
    deal_flow.save()
    response = post_hook(client, crm, event_body())
    assert response.json()["deliveries"] == 0
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SKIPPED
    assert "filtered out" in delivery.last_error


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b"", "empty body"),
        (b"[1, 2]", "expected a JSON object"),
        (json.dumps({"id": "evt_1", "data": {}}).encode(), "missing event type"),
        (json.dumps({"type": "deal.won", "data": {}}).encode(), "missing idempotency key"),
        (
            json.dumps({"id": "e1", "type": "t" * 201, "data": {}}).encode(),
            "event type is 201 characters long",
        ),
        (
            json.dumps({"id": "k" * 301, "type": "t", "data": {}}).encode(),
            "idempotency key is 301 characters",
        ),
    ],
)
def test_it_answers_bad_bodies_with_400_and_says_why(client, crm, raw, message):
    response = post_hook(client, crm, None, raw=raw)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert Event.objects.count() == 0


def test_it_answers_404_for_an_unknown_system(client):
    response = client.post("/hooks/nope/", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert "unknown system 'nope'" in response.json()["error"]


def test_it_answers_413_for_a_body_over_the_limit(client, crm, settings):
    settings.HUB_MAX_WEBHOOK_BYTES = 1000
    response = post_hook(client, crm, {"id": "x", "type": "t", "data": {"blob": "x" * 2000}})
    assert response.status_code == 413
    assert "limit is 1000" in response.json()["error"]


def test_it_rejects_a_wrong_or_missing_signature(client, crm, deal_flow):
    wrong = post_hook(client, crm, event_body(), headers={"X-Signature": "sha256=" + "0" * 64})
    assert wrong.status_code == 401 and "does not match" in wrong.json()["error"]
    missing = post_hook(client, crm, event_body(), secret=False)
    assert missing.status_code == 401 and "missing signature header X-Signature" in missing.json()["error"]
    assert Event.objects.count() == 0


def test_it_accepts_base64_signatures_without_prefix_in_a_custom_header(client):
    system = SystemFactory(
        signature_encoding=SignatureEncoding.BASE64, signature_prefix="", signature_header="X-Shop-Hmac"
    )
    body = json.dumps(event_body()).encode()
    digest = base64.b64encode(hmac.new(b"test-webhook-secret", body, hashlib.sha256).digest()).decode()
    response = client.post(
        f"/hooks/{system.slug}/", data=body, content_type="application/json", headers={"X-Shop-Hmac": digest}
    )
    assert response.status_code == 202


def test_it_checks_timestamped_signatures_and_their_age(client):
    system = SystemFactory(
        signature_scheme=SignatureScheme.TIMESTAMPED,
        signature_header="Payments-Signature",
        signature_tolerance_seconds=300,
    )
    body = json.dumps(event_body()).encode()
    fresh = client.post(
        f"/hooks/{system.slug}/",
        data=body,
        content_type="application/json",
        headers={"Payments-Signature": sign(system, body)},
    )
    assert fresh.status_code == 202
    stale_header = sign(system, body, timestamp=int(time.time()) - 3600)
    stale = client.post(
        f"/hooks/{system.slug}/",
        data=body,
        content_type="application/json",
        headers={"Payments-Signature": stale_header},
    )
    assert stale.status_code == 401 and "stale signature" in stale.json()["error"]
    tampered = client.post(
        f"/hooks/{system.slug}/",
        data=body.replace(b"deal_1", b"deal_2"),
        content_type="application/json",
        headers={"Payments-Signature": sign(system, body)},
    )
    assert tampered.status_code == 401


def test_it_accepts_a_webhook_signed_the_standard_webhooks_way_and_refuses_a_tampered_one(client):
    system = SystemFactory(
        signature_scheme=SignatureScheme.STANDARD_WEBHOOKS,
        signature_header="webhook-signature",
        webhook_secret={"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
        idempotency_key_path="header:webhook-id",
    )
    body = json.dumps(
        {"type": "invoice.paid", "timestamp": "2026-12-07T12:00:00Z", "data": {"id": "in_1"}}
    ).encode()
    headers = signed_headers(system, body, message_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    hook = f"/hooks/{system.slug}/"
    accepted = client.post(hook, data=body, content_type="application/json", headers=headers)
    assert accepted.status_code == 202
    event = Event.objects.get()
    assert (event.event_type, event.idempotency_key, event.record_id) == (
        "invoice.paid",
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        "in_1",
    )
    tampered = client.post(
        hook, data=body.replace(b"in_1", b"in_2"), content_type="application/json", headers=headers
    )
    assert tampered.status_code == 401
    assert tampered.json()["error"] == (
        "signature in webhook-signature does not match the id, timestamp and body"
    )
    stale = signed_headers(system, body, timestamp=int(time.time()) - 3600, message_id="msg_3")
    refused = client.post(hook, data=body, content_type="application/json", headers=stale)
    assert refused.status_code == 401 and "stale signature" in refused.json()["error"]
    assert Event.objects.count() == 1


def test_it_reads_the_event_type_and_key_from_headers_when_configured(client):
    system = SystemFactory(
        event_type_path="header:X-Event-Type", idempotency_key_path="header:X-Delivery-Id", record_path=""
    )
    body = json.dumps({"id": "deal_9"}).encode()
    headers = {"X-Signature": sign(system, body), "X-Event-Type": "deal.won", "X-Delivery-Id": "d-1"}
    response = client.post(
        f"/hooks/{system.slug}/", data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 202
    event = Event.objects.get()
    assert (event.event_type, event.idempotency_key, event.record_id) == ("deal.won", "d-1", "deal_9")


# --- the publish API -------------------------------------------------------------------------


@pytest.fixture
def publisher_client(personas, crm):
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(personas['publisher'], [crm])}")
    return api


def publish(api, body):
    return api.post("/api/v1/events/", data=json.dumps(body), content_type="application/json")


def test_it_publishes_one_event_through_the_api(publisher_client, crm, deal_flow):
    response = publish(
        publisher_client,
        {"system": "crm", "type": "deal.won", "idempotency_key": "k1", "payload": {"data": {"id": "deal_1"}}},
    )
    assert response.status_code == 202, response.content
    assert response.json()["deliveries"] == 1


def test_it_publishes_a_batch_and_reports_duplicates(publisher_client, crm, deal_flow):
    events = [
        {
            "system": "crm",
            "type": "deal.won",
            "idempotency_key": f"k{i % 5}",
            "payload": {"data": {"id": f"deal_{i % 5}"}},
        }
        for i in range(8)
    ]
    response = publish(publisher_client, {"events": events})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 5 and body["duplicates"] == 3
    assert Event.objects.count() == 5 and Delivery.objects.count() == 5
    again = publish(publisher_client, {"events": events}).json()
    assert again["accepted"] == 0 and Event.objects.count() == 5


def test_it_rejects_a_batch_with_a_bad_event_and_names_it(publisher_client, crm):
    events = [
        {"system": "crm", "type": "t", "idempotency_key": "a", "payload": {}},
        {"system": "crm", "type": "t", "payload": {}},
        {"system": "ghost", "type": "t", "idempotency_key": "c", "payload": {}},
    ]
    response = publish(publisher_client, {"events": events})
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert fields == {"events[1]": "missing idempotency_key", "events[2]": "unknown system 'ghost'"}
    assert Event.objects.count() == 0


def test_it_answers_404_when_publishing_to_an_unknown_system(publisher_client):
    response = publish(
        publisher_client, {"system": "ghost", "type": "t", "idempotency_key": "a", "payload": {}}
    )
    assert response.status_code == 404


def test_it_refuses_more_than_1000_events_in_a_batch(publisher_client, crm):
    events = [{"system": "crm", "type": "t", "idempotency_key": str(i), "payload": {}} for i in range(1001)]
    assert publish(publisher_client, {"events": events}).status_code == 413


def test_it_answers_malformed_json_on_the_api_with_400(publisher_client):
    response = publisher_client.post("/api/v1/events/", data=b"{oops", content_type="application/json")
    assert response.status_code == 400 and "malformed JSON" in response.json()["error"]


def test_it_requires_a_publishing_role(client, personas, crm):
    from rest_framework.test import APIClient

    anonymous = publish(APIClient(), {"system": "crm", "type": "t", "idempotency_key": "a", "payload": {}})
    assert anonymous.status_code == 401
    api = APIClient()
    api.force_authenticate(personas["auditor"])
    forbidden = publish(api, {"system": "crm", "type": "t", "idempotency_key": "a", "payload": {}})
    assert forbidden.status_code == 403
    assert Event.objects.count() == 0


def test_it_answers_400_for_text_the_database_cannot_store(client, crm, deal_flow):
    body = json.dumps({"id": "evt_nul", "type": "deal.won", "data": {"id": "d1", "note": "a\u0000b"}})
    response = post_hook(client, crm, None, raw=body.encode())
    assert response.status_code == 400  # PostgreSQL's jsonb cannot store it, so no database does
    assert "NUL character" in response.json()["error"]
    assert Event.objects.count() == 0


# --- only a repeated idempotency key counts as a duplicate -------------------------------------


def _violation(write) -> IntegrityError:
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        write()
    return caught.value


@pytest.mark.django_db(transaction=True)
def test_it_tells_a_repeated_key_from_any_other_integrity_error(crm):
    event = Event.objects.create(system=crm, event_type="t", idempotency_key="k1", payload={})
    repeated = _violation(
        lambda: insert_rows(Event, [Event(system=crm, event_type="t", idempotency_key="k1", payload={})])
    )
    assert _is_repeated_key(repeated)
    orphan = _violation(
        lambda: insert_rows(Delivery, [Delivery(event=event, flow_id=999_999, record_key="r")])
    )
    assert not _is_repeated_key(orphan)
