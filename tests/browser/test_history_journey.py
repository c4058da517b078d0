"""An auditor finds out what happened to order 1042 in the browser: search the sync history for
the order number, open the event, read where it went and what was sent and answered."""

import re

import pytest
from playwright.sync_api import expect

from hub.models import Event
from tests.history_helpers import order_1042_story

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_finds_what_happened_to_order_1042(fresh_sandbox, personas, sign_in, live_server):
    order_1042_story(fresh_sandbox, personas["ops"])
    event = Event.objects.get(record_id="ord_1042")

    page = sign_in(personas["auditor"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sync history").click()
    expect(page.get_by_role("heading", name="Sync history")).to_be_visible()
    page.get_by_label("Text in the record").fill("1042")
    page.get_by_role("button", name="Search").click()

    results = page.locator("#history-results")
    expect(results.get_by_role("row")).to_have_count(2)  # the header and order 1042's event
    row = results.get_by_role("row").filter(has_text="ord_1042")
    expect(row).to_contain_text("Orders to invoices")
    expect(row).to_contain_text("Succeeded")
    expect(row).to_contain_text("Filtered out")
    expect(page).to_have_url(re.compile(r"/history/\?.*text=1042"))

    row.get_by_role("link").first.click()
    expect(page).to_have_url(f"{live_server.url}/history/events/{event.pk}/")
    expect(page.get_by_role("heading", name="The event as received")).to_be_visible()
    invoice = page.get_by_role("region", name=re.compile("Orders to invoices"))
    expect(invoice).to_contain_text("mapping version 1")
    expect(invoice).to_contain_text("HTTP 201")
    sent, answer = invoice.locator(".attempt .grid > div").all()
    expect(sent.locator("pre.body")).to_contain_text('"customer_email": "buyer1042@example.com"')
    expect(answer.locator("pre.body")).to_contain_text('"id": "inv_')
    skipped = page.get_by_role("region", name=re.compile("Big buyers to accounts"))
    expect(skipped).to_contain_text("total_minor is at least 50000")
