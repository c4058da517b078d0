"""A new admin opens Demo systems, wins a deal in the CRM with one click, sees what happened and
follows the link to the event the hub received, in a real browser against the real sandbox."""

import re

import pytest
from playwright.sync_api import expect

from connectors.sandbox import DEMO_CREDENTIALS
from tests.sandbox_helpers import demo_on_sandbox

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_makes_something_happen_in_a_demo_system_and_finds_the_event(
    sign_in, personas, live_server, fresh_sandbox
):
    demo_on_sandbox(fresh_sandbox, live_server.url)
    page = sign_in(personas["admin"])
    page.get_by_role("link", name="Demo systems").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Demo systems")
    crm = page.locator("#demo-crm")
    expect(crm.get_by_text("Up", exact=True)).to_be_visible()

    expect(crm.get_by_text(DEMO_CREDENTIALS["crm"]["api_key"])).to_have_count(0)
    crm.get_by_role("button", name="Show credentials").click()
    expect(crm.get_by_text(DEMO_CREDENTIALS["crm"]["api_key"])).to_be_visible()

    crm.get_by_role("button", name="Win a deal").click()
    result = crm.locator(".action-result")
    expect(result).to_contain_text(re.compile(r"Deal deal_\d+ “.+” was won in the CRM"))
    expect(result).to_contain_text("The hub received the webhook deal.won and passed it to 2 flows")
    expect(result.get_by_role("link", name="Won deals reduce stock")).to_be_visible()
    deal_id = re.search(r"deal_\d+", result.inner_text()).group(0)

    result.get_by_role("link", name="See the event in the sync history").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"deal.won · {deal_id}")
    expect(page.get_by_text("Webhook", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Won deals checked against stock")).to_be_visible()
