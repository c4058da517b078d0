"""Ops on the alerts page in the browser: the firing alert comes first; acknowledge it, mute it,
and read its history; the failing chat channel is in plain sight."""

import re

import pytest
from playwright.sync_api import expect

from hub.alerts.models import Alert
from hub.alerts.services import channel_create
from tests.alerts.helpers import Receiver, evaluate, minutes, only_rule
from tests.factories import crm_and_books, flow_with_mapping, model_with_fields

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver():
    box = Receiver()
    yield box
    box.stop()


def test_ops_acknowledge_and_mute_a_firing_alert(personas, sign_in, live_server, receiver):
    crm, books = crm_and_books()
    deals = model_with_fields(crm, "Deal", "/deals", "id! amount:number")
    invoices = model_with_fields(books, "Invoice", "/invoices", "total:number!")
    rules = [{"target": "total", "source": "amount"}]
    quiet = flow_with_mapping(
        source_model=deals, target_model=invoices, rules=rules, event_type="deal.won", name="Won deals"
    )
    busy = flow_with_mapping(
        source_model=deals, target_model=invoices, rules=rules, event_type="deal.lost", name="Lost deals"
    )
    only_rule(quiet, "silence", window_minutes=10)
    only_rule(busy, "error_rate", threshold=20, window_minutes=15)
    channel_create(kind="webhook", name="Ops chat", values={"url": receiver.url}, actor=None)
    receiver.status = 500
    minutes(11)
    evaluate()
    alert = Alert.objects.get()

    page = sign_in(personas["ops"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Channel “Ops chat” is failing.")
    firing = page.get_by_role("region", name=re.compile("Firing now"))
    row = firing.get_by_role("row").filter(has_text="Won deals")
    expect(row).to_contain_text("gets no events for more than 10 minutes")
    expect(row).to_contain_text("no events for 11 minutes")

    row.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".message.success")).to_contain_text("Acknowledged")
    row = page.get_by_role("row").filter(has_text="Won deals")
    expect(row).to_contain_text("Acknowledged by oscar-ops")
    expect(row.get_by_role("button", name="Acknowledge")).to_have_count(0)

    row.get_by_label(re.compile("Mute alert")).select_option(label="4 hours")
    row.get_by_role("button", name="Mute for").click()
    expect(page.locator(".message.success")).to_contain_text("Muted")
    row = page.get_by_role("row").filter(has_text="Won deals")
    expect(row).to_contain_text("Muted until")
    expect(row.get_by_role("button", name="Unmute")).to_be_visible()

    row.get_by_role("link", name="gets no events for more than 10 minutes").click()
    expect(page).to_have_url(f"{live_server.url}/alerts/{alert.pk}/")
    history = page.get_by_role("region", name="History")
    for what in ("Fired", "Notification failed", "Acknowledged", "Muted"):
        expect(history.get_by_text(what, exact=True)).to_be_visible()
    expect(history).to_contain_text("muted for 4 hours")
    expect(history).to_contain_text("Ops chat: 127.0.0.1 answered HTTP 500")
