"""Request and response bodies on the pages that show them (a flow's deliveries, an event's
history, a dead letter): indented JSON, wrapped, never an escaped string, secrets still redacted."""

import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dlq.models import DeadLetter
from hub.models import Attempt, Delivery, DeliveryStatus, Event
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db
ORDER = {"number": "1042", "customer": {"email": "ann@example.com"}, "note": "a long line " * 40}
REQUEST = {
    "method": "POST",
    "url": "http://127.0.0.1:8102/api/invoices",
    "headers": {"Authorization": "[redacted]", "Content-Type": "application/json"},
    "body": json.dumps(ORDER),
}
RESPONSE = {
    "status": 422,
    "headers": {},
    "body": json.dumps({"errors": [{"field": "email", "code": "taken"}]}),
}
INDENTED = "{\n  &quot;number&quot;: &quot;1042&quot;,\n  &quot;customer&quot;: {"


@pytest.fixture
def letter():
    crm, books = SystemFactory(name="CRM", slug="crm"), SystemFactory(name="Books", slug="books")
    flow = flow_with_mapping(
        source_model=model_with_fields(crm, "Order", "/orders", "number! customer.email!"),
        target_model=model_with_fields(books, "Invoice", "/invoices", "number!"),
        rules=[{"target": "number", "source": "number"}], event_type="order.placed", name="Orders become invoices",
    )  # fmt: skip
    event = Event.objects.create(
        system=crm, event_type="order.placed", idempotency_key="o1042", payload=ORDER
    )
    delivery = Delivery.objects.create(event=event, flow=flow, record_key="1042", status=DeliveryStatus.DEAD,
                                       attempts=1, finished_at=timezone.now())  # fmt: skip
    Attempt.objects.create(delivery=delivery, number=1, started_at=timezone.now(), duration_ms=12,
                           outcome="rejected", error_class="rejected", request=REQUEST, response=RESPONSE)  # fmt: skip
    return DeadLetter.objects.create(delivery=delivery, flow=flow, error_class="rejected", reason="email is taken",
                                     last_response=RESPONSE, attempts=1)  # fmt: skip


def page(personas, url: str) -> str:
    client = Client()
    client.force_login(personas["auditor"])
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def assert_readable(html: str) -> None:
    assert INDENTED in html  # the request body, indented
    assert "HTTP 422" in html and "&quot;code&quot;: &quot;taken&quot;" in html  # the response body, indented
    assert "\\&quot;" not in html and '\\"' not in html  # no JSON escaped inside a string
    assert '<pre class="readable body">' in html  # wrapped (app.css .readable), not cut off
    assert "[redacted]" in html and "POST http://127.0.0.1:8102/api/invoices" in html


def test_a_flows_deliveries_show_bodies_readable(letter, personas):
    assert_readable(page(personas, reverse("flows-detail", args=[letter.flow_id])))


def test_an_events_history_shows_bodies_readable(letter, personas):
    html = page(personas, reverse("hub-history-event", args=[letter.delivery.event_id]))
    assert_readable(html)
    assert '<pre class="payload readable">' in html


def test_a_dead_letter_shows_bodies_readable(letter, personas):
    html = page(personas, reverse("dlq-detail", args=[letter.pk]))
    assert_readable(html)
    last_response = html.split("Last response", 1)[1]
    assert "HTTP 422" in last_response and "&quot;field&quot;: &quot;email&quot;" in last_response


def test_wrapping_is_the_stylesheets_rule_for_readable_text():
    from django.conf import settings

    css = (settings.BASE_DIR / "static" / "hub" / "app.css").read_text()
    assert ".readable { white-space: pre-wrap; overflow-wrap: anywhere; }" in css
