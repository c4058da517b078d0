"""Sync history: one search answers "what happened to order 1042?", every filter narrows it,
pages never stop silently, one event's page shows everything that happened to it, and only
readers get in."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hub.models import Event
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.selectors.history import PAGE_SIZE
from tests.history_helpers import order_1042_story, order_event, orders_paid, shop_flows

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def search(user, **params) -> str:
    return client_for(user).get(reverse("hub-history"), params).content.decode()


@pytest.fixture
def story(fresh_sandbox, personas):
    return order_1042_story(fresh_sandbox, personas["ops"])


def event_of(order: int) -> Event:
    return Event.objects.get(record_id=f"ord_{order}")


def test_it_finds_an_order_by_its_number_anywhere_in_the_payload(story, personas):
    page = search(personas["auditor"], text="1042")
    assert reverse("hub-history-event", args=[event_of(1042).pk]) in page
    assert reverse("hub-history-event", args=[event_of(77).pk]) not in page
    assert "Orders to invoices" in page and "Succeeded" in page and "Filtered out" in page


def test_it_finds_an_order_by_the_customers_email_whatever_the_case(story, personas):
    page = search(personas["auditor"], text="BUYER1042@example")
    assert reverse("hub-history-event", args=[event_of(1042).pk]) in page
    assert reverse("hub-history-event", args=[event_of(1043).pk]) not in page


def test_it_finds_text_with_letters_beyond_ascii(fresh_sandbox, personas):
    invoices, _ = shop_flows(fresh_sandbox)
    events_store(
        [
            IncomingEvent(
                invoices.source_system, "order.paid", "e1", order_event(1, email="jürgen@example.com")
            )
        ]
    )
    page = search(personas["auditor"], text="JÜRGEN@")
    assert reverse("hub-history-event", args=[event_of(1).pk]) in page


def test_it_finds_an_order_by_its_source_or_its_target_record_id(story, personas):
    target_id = event_of(1042).deliveries.get(flow=story["invoices"]).target_id
    for record in ("ord_1042", target_id):
        page = search(personas["ops"], record=record)
        assert reverse("hub-history-event", args=[event_of(1042).pk]) in page, record
        assert reverse("hub-history-event", args=[event_of(77).pk]) not in page, record


@pytest.mark.parametrize(
    ("params", "orders"),
    [
        ({"status": "dead"}, set()),  # the dead letter was replayed and succeeded
        ({"status": "succeeded"}, {77, 1042, 1043}),
        ({"status": "skipped"}, {77, 1042, 1043}),
        ({"text": "1043", "status": "succeeded"}, {1043}),
    ],
)
def test_it_filters_by_delivery_status(story, personas, params, orders):
    page = search(personas["auditor"], **params)
    shown = {n for n in (77, 1042, 1043) if reverse("hub-history-event", args=[event_of(n).pk]) in page}
    assert shown == orders


def test_it_filters_by_flow_and_by_system_on_either_side(story, personas):
    accounts = story["accounts"]
    other = search(personas["auditor"], system=accounts.target_system_id)
    assert reverse("hub-history-event", args=[event_of(1042).pk]) in other  # delivered (filtered) there
    source = search(personas["auditor"], system=accounts.source_system_id)
    assert reverse("hub-history-event", args=[event_of(1042).pk]) in source
    assert "No event matches" in search(personas["auditor"], flow=accounts.pk, status="succeeded")


def test_it_filters_by_time_range(story, personas):
    received = event_of(1042).received_at
    before = timezone.localtime(received - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    after = timezone.localtime(received + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    assert reverse("hub-history-event", args=[event_of(1042).pk]) in search(
        personas["auditor"], since=before, until=after
    )
    assert "No event matches" in search(personas["auditor"], since=after)
    page = search(personas["auditor"], since=after, until=before)
    assert "“Until” must be later than “From”." in page and "Nothing searched yet" in page


def test_it_asks_for_three_characters_of_text(story, personas):
    page = search(personas["auditor"], text="10")
    assert "Type at least 3 characters." in page


def test_it_pages_through_every_result_without_a_silent_cap(fresh_sandbox, personas):
    invoices, _ = shop_flows(fresh_sandbox)
    orders_paid(invoices, *(order_event(n) for n in range(1, PAGE_SIZE * 2 + 6)))
    client = client_for(personas["auditor"])
    seen, after, pages = [], "", 0
    while True:
        response = client.get(
            reverse("hub-history"), {"text": "example.com", "after": after} if after else {}
        )
        page = response.context["page"]
        seen += [event.pk for event in page.events]
        pages += 1
        if not page.older:
            assert "No older events." in response.content.decode()
            break
        assert "Older events →" in response.content.decode()
        after = page.older
    assert pages == 3
    assert len(seen) == len(set(seen)) == PAGE_SIZE * 2 + 5


def test_it_refreshes_only_the_results_for_htmx(story, personas):
    response = client_for(personas["auditor"]).get(
        reverse("hub-history"),
        {"text": "1042"},
        headers={"HX-Request": "true", "HX-Target": "history-results"},
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="history-results">')
    assert "<nav" not in body.split("history-results", 1)[0]


def test_an_events_page_tells_its_whole_story(story, personas):
    event = event_of(1043)
    page = client_for(personas["auditor"]).get(reverse("hub-history-event", args=[event.pk])).content.decode()
    assert "The event as received" in page and "not an email" in page  # the payload as received
    assert "Filtered out" in page and "total_minor is at least 50000" in page  # why not sent there
    assert "mapping version 1" in page
    assert "HTTP 422" in page and "HTTP 201" in page  # what came back at each attempt
    assert (
        "Dead letter" in page and "Replayed" in page and "oscar-ops" in page and "typo in the email" in page
    )
    assert "Record corrected by an operator" in page
    invoice_id = event.deliveries.get(flow=story["invoices"]).target_id
    assert invoice_id in page


def test_bodies_are_shown_indented_not_escaped_inside_json(story, personas):
    event = event_of(1042)
    page = client_for(personas["auditor"]).get(reverse("hub-history-event", args=[event.pk])).content.decode()
    assert "\\&quot;" not in page and '\\"' not in page
    assert json.dumps({"number": "1042"})[1:-1].replace('"', "&quot;") in page


def test_an_events_page_costs_a_fixed_number_of_queries(story, personas, django_assert_max_num_queries):
    client = client_for(personas["auditor"])
    url = reverse("hub-history-event", args=[event_of(1043).pk])
    with django_assert_max_num_queries(12):
        assert client.get(url).status_code == 200


def test_a_search_page_costs_a_fixed_number_of_queries(
    fresh_sandbox, personas, django_assert_max_num_queries
):
    invoices, _ = shop_flows(fresh_sandbox)
    orders_paid(invoices, *(order_event(n) for n in range(1, 30)))
    client = client_for(personas["auditor"])
    with django_assert_max_num_queries(12):
        assert client.get(reverse("hub-history"), {"text": "example"}).status_code == 200


@pytest.mark.parametrize("who", ["publisher", "outsider"])
def test_only_readers_see_the_history(story, personas, who):
    client = client_for(personas[who])
    assert client.get(reverse("hub-history")).status_code == 403
    assert client.get(reverse("hub-history-event", args=[event_of(1042).pk])).status_code == 403
    assert client.get(reverse("hub-history-export"), {"format": "csv"}).status_code == 403


def test_it_says_when_an_event_has_no_flow_and_when_its_payload_was_purged(fresh_sandbox, personas):
    invoices, _ = shop_flows(fresh_sandbox)
    orders_paid(invoices, order_event(5))
    Event.objects.update(event_type="order.refunded")  # as if no flow listened for it
    event = Event.objects.get()
    event.deliveries.all().delete()
    Event.objects.update(payload={}, purged_at=timezone.now())
    page = client_for(personas["auditor"]).get(reverse("hub-history-event", args=[event.pk])).content.decode()
    assert "No flow takes this event" in page
    assert "Emptied by retention" in page


def test_the_navigation_leads_readers_to_the_history_and_the_audit_log(personas):
    page = client_for(personas["auditor"]).get(reverse("home")).content.decode()
    assert reverse("hub-history") in page and "Sync history" in page
    assert reverse("hub-audit") in page and "Audit log" in page
