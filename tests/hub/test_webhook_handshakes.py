"""Senders that check a webhook address before using it get their answer from the vendor template's
handshake: Slack's url_verification (signed, the challenge echoed), Xero's intent to receive
(answered only when signed right), GitHub's ping, and Meta's GET with hub.challenge. A handshake is
never stored as an event; everything else is a webhook as before."""

import json
import time

import pytest

from connectors.models import SignatureScheme
from connectors.signatures import signed_headers
from connectors.vendors import vendor_template
from hub.models import Event
from hub.pipeline.ingest import forget_systems
from tests.factories import SystemFactory

pytestmark = pytest.mark.django_db
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture(autouse=True)
def _fresh_systems():
    forget_systems()
    yield
    forget_systems()


def system_from(template: str, **fields):
    """A system registered from the vendor template, as the register form fills it in."""
    data = vendor_template(template).data
    webhook = data.get("webhook", {"scheme": SignatureScheme.NONE})
    return SystemFactory(
        slug=template,
        vendor_template=template,
        signature_scheme=webhook["scheme"],
        signature_header=webhook.get("header", "X-Signature"),
        signature_encoding=webhook.get("encoding", "hex"),
        signature_prefix=webhook.get("prefix", ""),
        event_type_path=data.get("event_type") or "type",
        idempotency_key_path=data.get("idempotency_key") or "id",
        record_path=data.get("record", ""),
        webhook_secret={"secret": SECRET},
        **fields,
    )


def post(client, system, payload: dict, *, headers: dict | None = None, signed: bool = True):
    body = json.dumps(payload).encode()
    sent = signed_headers(system, body, timestamp=int(time.time())) if signed else {}
    return client.post(
        f"/hooks/{system.slug}/", body, content_type="application/json", headers={**sent, **(headers or {})}
    )


SLACK_CHALLENGE = {
    "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
    "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
    "type": "url_verification",
}


def test_slack_url_verification_echoes_the_challenge_and_stores_nothing(client):
    slack = system_from("slack")
    answer = post(client, slack, SLACK_CHALLENGE)
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/plain")
    assert answer.content.decode() == SLACK_CHALLENGE["challenge"]
    assert not Event.objects.exists()


def test_an_unsigned_slack_url_verification_is_refused(client):
    slack = system_from("slack")
    answer = post(client, slack, SLACK_CHALLENGE, signed=False)
    assert answer.status_code == 401 and "X-Slack-Signature" in answer.json()["error"]


def test_slack_events_after_the_handshake_are_stored_as_before(client):
    slack = system_from("slack")
    event = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "message", "text": "hi"}}
    answer = post(client, slack, event)
    assert answer.status_code == 202 and Event.objects.get().event_type == "message"


def test_the_handshake_is_only_for_systems_set_up_from_the_template(client):
    slack = system_from("slack")
    slack.vendor_template = ""
    slack.save()
    answer = post(client, slack, SLACK_CHALLENGE)
    assert answer.status_code == 400 and "missing event type" in answer.json()["error"]


def test_xero_intent_to_receive_is_answered_only_when_signed_right(client):
    xero = system_from("xero")
    intent = {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": "S0MQPBWSVFXYXLDX"}
    good = post(client, xero, intent)
    assert good.status_code == 200 and good.content == b""
    bad = post(client, xero, intent, headers={"x-xero-signature": "d3Jvbmc="})
    assert bad.status_code == 401
    assert not Event.objects.exists()


def test_github_ping_is_answered_and_not_stored(client):
    github = system_from("github")
    ping = {"zen": "Design for failure.", "hook_id": 1}
    answer = post(client, github, ping, headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-1"})
    assert answer.status_code == 200 and not Event.objects.exists()
    push = post(
        client, github, {"ref": "main"}, headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-2"}
    )
    assert push.status_code == 202 and Event.objects.get().event_type == "push"


def test_metas_get_verification_is_echoed(client):
    whatsapp = system_from("whatsapp-business")
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "meatyhamhock"}
    answer = client.get(f"/hooks/{whatsapp.slug}/", query)
    assert answer.status_code == 200 and answer.content == b"1158201444"
    assert answer["Content-Type"].startswith("text/plain") and answer["X-Content-Type-Options"] == "nosniff"
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "template, query",
    [
        ("whatsapp-business", {"hub.mode": "unsubscribe", "hub.challenge": "1"}),
        ("whatsapp-business", {}),
        ("slack", {"hub.mode": "subscribe", "hub.challenge": "1"}),
    ],
)
def test_any_other_get_is_a_json_405(client, template, query):
    system = system_from(template)
    answer = client.get(f"/hooks/{system.slug}/", query)
    assert answer.status_code == 405 and answer["Allow"] == "POST"
    assert "POST" in answer.json()["error"]
