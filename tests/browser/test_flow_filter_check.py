"""An admin types a flow filter with a misspelt field: it is flagged with the closest field as they
type, and saving it is refused until the spelling is fixed."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_flags_a_misspelt_filter_field_as_typed_and_refuses_to_save_it(sign_in, personas, live_server):
    crm, books = SystemFactory(name="CRM", slug="crm"), SystemFactory(name="Books", slug="books")
    deal = model_with_fields(crm, "Deal", "/deals", "id! stage amount:integer customer.email")
    invoice = model_with_fields(books, "Invoice", "/invoices", "number! email")
    flow = flow_with_mapping(source_model=deal, target_model=invoice, name="Deals to invoices",
                             rules=[{"target": "number", "source": "id"}])  # fmt: skip
    page = sign_in(personas["admin"])
    page.goto(f"{live_server.url}/flows/{flow.pk}/edit/")
    filter_box = page.get_by_label(re.compile("Only records where"))
    echo = page.locator("#filter-echo")

    filter_box.fill("custmer.email exists")
    expect(echo.get_by_role("alert")).to_have_text(
        'There is no field "custmer.email", so no record would pass. Did you mean customer.email?'
    )
    filter_box.fill('customer.email exists and amount > "abc"')
    expect(echo).to_contain_text('amount is a whole number, so it is never greater than "abc".')
    expect(echo.get_by_role("alert")).to_have_count(0)

    filter_box.fill("custmer.email exists")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#filter-echo").get_by_role("alert")).to_contain_text("Did you mean customer.email?")
    flow.refresh_from_db()
    assert flow.filter is None

    page.get_by_label(re.compile("Only records where")).fill("customer.email exists")
    expect(page.locator("#filter-echo")).to_contain_text(
        "Only records where customer.email exists are carried"
    )
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(rf"/flows/{flow.pk}/$"))
    flow.refresh_from_db()
    assert flow.filter == {"path": "customer.email", "op": "exists"}
