"""Channels against real receivers: a webhook on a loopback HTTP server (signed JSON chat tools
accept), email through Django's mail outbox or a mail server that is not there. A failing channel
is recorded and shown, and never stops evaluation or the other channels."""

import hashlib
import hmac
import json
import socket

import pytest
from django.db import connection

from hub.alerts.models import Alert, AlertEvent, Channel
from hub.alerts.services import channel_create, channel_test, channel_update
from hub.models import AuditEntry
from tests.alerts.helpers import SIGNING_SECRET, evaluate, minutes, only_rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def silent_flow(flow):
    only_rule(flow, "silence", window_minutes=10)
    minutes(11)
    return flow


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_webhook_posts_one_line_of_text_and_the_fields_signed_with_the_channel_secret(
    silent_flow, channels, receiver
):
    evaluate()
    [request] = receiver.requests
    body = json.loads(request["body"])
    alert = Alert.objects.get()
    assert body["text"] == (
        f"[FIRING] Deals to invoices gets no events for more than 10 minutes: no events for 11 minutes "
        f"http://127.0.0.1:8000/alerts/{alert.pk}/"
    )
    assert "\n" not in body["text"]
    assert body["status"] == "firing" and body["flow"] == "Deals to invoices" and body["alert_id"] == alert.pk
    assert body["rule"] == "gets no events for more than 10 minutes"
    expected = hmac.new(SIGNING_SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Hub-Signature-256"] == f"sha256={expected}"
    assert request["headers"]["Content-Type"] == "application/json"
    webhook = Channel.objects.get(kind="webhook")
    assert webhook.last_ok is True and webhook.last_result == "127.0.0.1 answered HTTP 200"


def test_the_email_goes_to_the_channel_addresses_with_the_alert_in_words(silent_flow, channels, mailoutbox):
    evaluate()
    [mail] = mailoutbox
    assert mail.to == ["ops@example.com"]
    assert mail.subject == "[hub] FIRING: Deals to invoices gets no events for more than 10 minutes"
    assert "Rule: tell me when it gets no events for more than 10 minutes" in mail.body
    assert "Now: no events for 11 minutes" in mail.body
    assert f"/alerts/{Alert.objects.get().pk}/" in mail.body


def test_a_failing_webhook_is_recorded_and_the_email_still_goes_out(
    silent_flow, channels, receiver, mailoutbox
):
    receiver.status = 500
    result = evaluate()
    assert result.fired and len(mailoutbox) == 1
    webhook = Channel.objects.get(kind="webhook")
    assert webhook.last_ok is False and webhook.last_result == "127.0.0.1 answered HTTP 500"
    alert = Alert.objects.get()
    failed = alert.history.get(kind="not_delivered")
    assert failed.message == "Ops chat: 127.0.0.1 answered HTTP 500"
    assert alert.history.get(kind="notified").message.startswith("told Ops email (emailed ops@")


def test_an_unreachable_webhook_or_mail_server_never_stops_evaluation(silent_flow, channels, settings):
    email, webhook = channels
    port = closed_port()
    channel_update(
        channel=webhook,
        name=webhook.name,
        values={"url": f"http://127.0.0.1:{port}/secret-token"},
        actor=None,
    )
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 2},
        }
    }
    result = evaluate()
    assert result.fired and result.notices
    results = dict(Channel.objects.values_list("kind", "last_result"))
    assert results["webhook"] == "127.0.0.1 could not be reached"
    assert results["email"].startswith("the mail server did not take it: ConnectionRefusedError")
    assert not Channel.objects.filter(last_ok=True).exists()
    assert "secret-token" not in str(list(AlertEvent.objects.values_list("message", flat=True)))


def test_with_no_channel_the_alert_says_nobody_was_told(silent_flow):
    evaluate()
    event = Alert.objects.get().history.get(kind="not_delivered")
    assert event.message == "nobody to tell: no channel is set up"


def test_send_test_reaches_the_receiver_and_is_audited(channels, receiver, mailoutbox, personas):
    email, webhook = channels
    assert channel_test(channel=webhook, actor=personas["admin"]) == (True, "127.0.0.1 answered HTTP 200")
    assert receiver.bodies()[0]["status"] == "test"
    assert receiver.bodies()[0]["text"].startswith(
        "[TEST] A test from the integration hub: channel “Ops chat” works."
    )
    assert channel_test(channel=email, actor=personas["admin"])[0] is True
    assert mailoutbox[0].subject == "[hub] Test notification"
    assert AuditEntry.objects.filter(verb="test", target_type="channel").count() == 2


def test_the_webhook_url_and_secret_are_stored_encrypted_and_never_in_the_audit_log(channels, receiver):
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM alerts_channel WHERE kind = 'webhook'")
        [(stored,)] = cursor.fetchall()
    assert "T0KEN" not in stored and SIGNING_SECRET not in stored and stored.startswith("gAAAA")
    audit = json.dumps(list(AuditEntry.objects.filter(target_type="channel").values("diff", "target_label")))
    assert "T0KEN" not in audit and SIGNING_SECRET not in audit
    assert '"secrets_set": ["signing_secret", "url"]' in audit


def test_an_empty_secret_keeps_the_stored_one_and_a_missing_signing_secret_is_made(receiver):
    channel = channel_create(kind="webhook", name="Chat", values={"url": receiver.url}, actor=None)
    made = channel.secrets["signing_secret"]
    assert len(made) >= 32
    channel_update(channel=channel, name="Chat room", values={"url": "", "signing_secret": ""}, actor=None)
    channel.refresh_from_db()
    assert channel.secrets == {"url": receiver.url, "signing_secret": made}
    assert AuditEntry.objects.filter(verb="update", target_type="channel").get().diff == {
        "name": ["Chat", "Chat room"]
    }


def test_a_failing_channel_shows_in_the_metrics(client, channels, receiver):
    from hub.alerts.services import channel_test
    from tests.metrics.test_endpoints import one, scrape

    email, webhook = channels
    assert channel_test(channel=webhook, actor=None)[0]
    receiver.stop()  # the chat tool goes away
    ok, _ = channel_test(channel=webhook, actor=None)
    assert not ok
    samples = scrape(client)
    assert one(samples, "hub_alert_channel_up", channel="Ops chat", kind="webhook") == 0
    assert one(samples, "hub_alert_channel_up", channel="Ops email", kind="email") == 1
    assert one(samples, "hub_alerts_firing") == 0
