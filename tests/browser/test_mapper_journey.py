"""An admin builds a data model from a sample, maps it in the visual mapper and saves a version."""

import json
import re

import pytest
from playwright.sync_api import expect

from mappings.models import DataModel
from tests.factories import crm_and_books, flow_with_mapping, model_with_fields

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAMPLE = {"id": "deal_1", "amount": 12.5, "currency": "EUR", "customer": {"email": "Ann@Example.com"}}


def test_it_builds_a_model_and_maps_it_by_click_drag_and_keyboard(sign_in, personas, live_server):
    crm, books = crm_and_books()
    invoice = model_with_fields(
        books, "Invoice", "/invoices", "number! customer_email! total_minor:integer currency"
    )
    page = sign_in(personas["admin"])

    # A data model from a pasted sample: fields are read, shown for editing, then saved.
    page.goto(f"{live_server.url}/models/")
    page.get_by_role("link", name="Create a data model for CRM").click()
    page.get_by_text("Other ways: paste a sample record").click()
    page.get_by_label("Paste a sample record").check()
    page.get_by_label("Sample record (JSON)").fill(json.dumps(SAMPLE, indent=2))
    page.get_by_role("button", name="Read the fields").click()
    expect(page.get_by_text("Read 5 fields")).to_be_visible()
    expect(page.get_by_label("Field path, row 5")).to_have_value("customer.email")
    page.get_by_label("id is required").check()
    page.get_by_label("Name", exact=True).fill("Deal")
    page.get_by_role("button", name="Create data model").click()
    expect(page.get_by_role("heading", name="Deal", exact=True)).to_be_visible()
    deal = DataModel.objects.get(system=crm, name="Deal")
    assert deal.fields.get(path="id").required

    mapping = flow_with_mapping(
        source_model=deal,
        target_model=invoice,
        rules=[{"target": "currency", "source": "currency"}],
        actor=personas["admin"],
    ).mapping
    page.goto(f"{live_server.url}/models/mappings/{mapping.pk}/")
    warning = page.locator("#required-summary")
    expect(warning).to_have_text("2 required fields are not mapped yet: number, customer_email")

    def source(path):
        return page.get_by_role("button", name=f"Source field {path}", exact=True)

    def target(path, required=False):
        return page.get_by_role(
            "button", name=f"Target field {path}{' (required)' if required else ''}", exact=True
        )

    def line(source_path, target_path):
        return page.locator(f'#mapper-lines path[data-source="{source_path}"][data-target="{target_path}"]')

    # By click: the source, then the target.
    source("customer.email").click()
    expect(source("customer.email")).to_have_attribute("aria-pressed", "true")
    target("customer_email", required=True).click()
    expect(line("customer.email", "customer_email")).to_have_count(1)
    expect(warning).to_have_text("1 required field is not mapped yet: number")

    # By drag: the source dropped on the target.
    source("amount").drag_to(target("total_minor"))
    expect(line("amount", "total_minor")).to_have_count(1)
    output = page.locator("#preview-output")
    expect(output).to_contain_text('"total_minor": 12.5')

    # A transform with an option, from the plain-language list; the preview follows.
    page.get_by_role("button", name="Edit the rule for total_minor").click()
    page.locator("#t-total_minor-add").select_option(label="Money to minor units")
    page.locator("#t-total_minor-s0-currency").fill("EUR")
    expect(output).to_contain_text('"total_minor": 1250')
    expect(page.locator("#t-total_minor .rule-result")).to_have_text("→ 1250")

    # By keyboard: Enter on the source, then Enter on the target; the warning goes away.
    source("id").focus()
    page.keyboard.press("Enter")
    target("number", required=True).focus()
    page.keyboard.press("Enter")
    expect(line("id", "number")).to_have_count(1)
    expect(warning).to_be_hidden()
    expect(output).to_contain_text('"number": "deal_1"')

    # Save, then read version 2 in the history.
    page.get_by_label("What did you change? (optional)").fill("first real mapping")
    page.get_by_role("button", name="Save as version 2").click()
    expect(page.locator("#save-status")).to_contain_text("Saved as version 2.")
    expect(page.locator("#version-badge")).to_have_text("Version 2")
    page.get_by_role("link", name="See the history").click()
    version = page.locator("#v2")
    expect(version).to_contain_text("“first real mapping”")
    expect(version.get_by_role("row", name=re.compile("total_minor"))).to_contain_text(
        'total_minor ← amount, then Money to minor units (currency: "EUR")'
    )
    expect(version.get_by_role("row", name=re.compile("customer_email"))).to_contain_text("Added")
    mapping.refresh_from_db()
    assert mapping.current_version.number == 2


def test_it_tells_the_second_of_two_editors_that_someone_saved_meanwhile(sign_in, personas, live_server):
    crm, books = crm_and_books()
    deal = model_with_fields(crm, "Deal", "/deals", "id! currency",
                             sample={"id": "deal_1", "currency": "EUR"})  # fmt: skip
    invoice = model_with_fields(books, "Invoice", "/invoices", "number! currency")
    mapping = flow_with_mapping(source_model=deal, target_model=invoice, actor=personas["admin"],
                                rules=[{"target": "currency", "source": "currency"}]).mapping  # fmt: skip
    first = sign_in(personas["admin"])
    second = first.context.new_page()
    for page in (first, second):
        page.goto(f"{live_server.url}/models/mappings/{mapping.pk}/")
        expect(page.locator("#version-badge")).to_have_text("Version 1")

    def map_id_to_number(page):
        page.get_by_role("button", name="Source field id", exact=True).click()
        page.get_by_role("button", name="Target field number (required)", exact=True).click()
        page.get_by_role("button", name="Save as version 2").click()

    map_id_to_number(first)
    expect(first.locator("#save-status")).to_contain_text("Saved as version 2.")
    map_id_to_number(second)
    expect(second.locator("#save-status")).to_have_text(
        "Not saved: alice-admin saved version 2 while you were editing. "
        "Open the history to see their change, then reload this page."
    )
    assert list(mapping.versions.values_list("number", flat=True).order_by("number")) == [1, 2]


def test_it_matches_same_named_fields_and_takes_a_suggested_pair_in_one_click(sign_in, personas, live_server):
    crm, books = crm_and_books()
    sample = {"id": "c_7", "firstName": "Ann", "lastName": "Lee", "contact": {"email": "ann@example.com"},
              "currency": "EUR"}  # fmt: skip
    person = model_with_fields(crm, "Contact", "/contacts", "id! firstName lastName contact.email currency",
                               sample=sample)  # fmt: skip
    customer = model_with_fields(books, "Customer", "/customers", "email! currency! full_name external_id")
    mapping = flow_with_mapping(source_model=person, target_model=customer, rules=[],
                                actor=personas["admin"]).mapping  # fmt: skip
    page = sign_in(personas["admin"])
    page.goto(f"{live_server.url}/models/mappings/{mapping.pk}/")
    verdict = page.locator("#preview-problems")
    expect(verdict).to_contain_text(
        "The target would refuse this record: email, currency are required but not mapped yet."
    )
    expect(verdict).not_to_contain_text("Every rule ran")

    page.get_by_role("button", name="Match same-named fields (2)").click()
    for source_path, target_path in (("contact.email", "email"), ("currency", "currency")):
        expect(
            page.locator(f'#mapper-lines path[data-source="{source_path}"][data-target="{target_path}"]')
        ).to_have_count(1)
    expect(page.locator("#required-summary")).to_be_hidden()
    expect(verdict).to_have_text(
        "Every rule ran without a problem, every required field is filled, and Books accepts the record as it is."
    )
    expect(page.get_by_role("button", name=re.compile("Match same-named fields"))).to_be_hidden()

    suggestions = page.locator("#suggestion-list")
    expect(suggestions).to_contain_text("full_name ← firstName + lastName")
    page.get_by_role("button", name="Use firstName + lastName for full_name").click()
    expect(page.locator("#preview-output")).to_contain_text('"full_name": "Ann Lee"')
    page.get_by_role("button", name="Use id for external_id").click()
    expect(page.locator("#preview-output")).to_contain_text('"external_id": "c_7"')
    expect(page.locator("#mapper-suggestions")).to_be_hidden()

    page.get_by_role("button", name="Save as version 2").click()
    expect(page.locator("#save-status")).to_contain_text("Saved as version 2.")
    mapping.refresh_from_db()
    assert {rule["target"]: rule.get("source") for rule in mapping.rules} == {
        "email": "contact.email", "currency": "currency", "full_name": "firstName", "external_id": "id",
    }  # fmt: skip
