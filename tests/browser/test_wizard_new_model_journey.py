"""In the flow wizard, the target system has no data model for what the flow must write: the admin
creates it from there by fetching a record from the system, comes back to the same step with it
chosen, finishes the flow, follows the Enable refusal to the data model, and sees an event arrive."""

import re

import pytest
from playwright.sync_api import expect

from hub.models import Flow, FlowState
from hub.services.mappings import mapping_version_save
from mappings.models import DataModel
from tests.factories import model_with_fields
from tests.sandbox_helpers import control, hire_announced_to, records, sandbox_system

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
RULES = [
    {"target": "email", "source": "email", "transforms": [{"name": "lower"}]},
    {
        "target": "name",
        "transforms": [{"name": "template", "options": {"template": "{first_name} {last_name}"}}],
    },
]


def test_it_creates_the_missing_target_model_from_the_wizard_and_finishes_the_flow(
    sign_in, personas, live_server, fresh_sandbox, start_worker
):
    hr = sandbox_system(fresh_sandbox, "hr")
    crm = sandbox_system(fresh_sandbox, "crm")
    model_with_fields(hr, "Employee", "/employees", "id! first_name! last_name! email! department")
    control(fresh_sandbox, "crm", "POST", "seed", json={"resource": "customers", "records": [
        {"name": "Ann Lee", "email": "ann@example.com", "phone": "+33 1 23 45 67 89", "company": "Lee & Co"}]})  # fmt: skip
    worker = start_worker(workers=1)
    page = sign_in(personas["admin"])

    page.goto(f"{live_server.url}/flows/new/")
    page.get_by_label("Source system").select_option(label="Hr")
    page.get_by_label("What kind of record").select_option(label="Employee")
    page.get_by_label("Event", exact=True).fill("employee.hired")
    page.get_by_role("button", name="Continue").click()

    # The CRM has no data model yet: the wizard offers to create one right there.
    page.get_by_label("Target system").select_option(label="Crm")
    expect(page.locator("#target-options")).to_contain_text("Crm has no data models yet.")
    page.get_by_label(re.compile("Create: add a new record")).check()
    page.get_by_role("button", name="Create a data model for Crm").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("New data model")
    expect(page.get_by_label("System", exact=True)).to_have_value(str(crm.pk))
    resource = page.get_by_label("Where the records are in the system's API")
    resource.fill("/customer")  # a typo: the system's answer is named
    page.get_by_role("button", name="Read the fields").click()
    expect(page.locator("#id_resource_error")).to_contain_text(
        "Crm has nothing at /customer (it answered 404)"
    )
    resource.fill("/customers")
    page.get_by_role("button", name="Read the fields").click()
    expect(page.get_by_role("status").filter(has_text="Read 7 fields")).to_be_visible()
    expect(page.get_by_label("email is required")).to_be_checked()
    expect(page.get_by_label("id is required", exact=True)).not_to_be_checked()
    expect(page.get_by_label("created_at is required")).not_to_be_checked()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Customer")
    page.get_by_role("button", name="Create data model").click()

    # Back on the same step, with what was chosen kept and the new model chosen.
    expect(page.get_by_role("status").first).to_contain_text("Created the data model Customer with 7 fields.")
    expect(page.locator("ol.steps [aria-current=step]")).to_contain_text("Target")
    customer = DataModel.objects.get(name="Customer")
    expect(page.get_by_label("What kind of record")).to_have_value(str(customer.pk))
    expect(page.get_by_label(re.compile("Create: add a new record"))).to_be_checked()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label(re.compile("Real-time")).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Name", exact=True).fill("Hires become CRM customers")
    page.get_by_role("button", name="Create flow").click()
    expect(page.get_by_role("status").first).to_contain_text('Flow "Hires become CRM customers" created')
    flow = Flow.objects.get(name="Hires become CRM customers")
    assert (flow.target_model, flow.operation) == (customer, "create")

    # The admin maps name and email. The sample had a phone and a company, which the CRM does not
    # need: the refusal says so and leads to the data model, where they are marked not required.
    mapping_version_save(mapping=flow.mapping, rules=RULES, actor=None)
    page.goto(f"{live_server.url}/flows/{flow.pk}/")
    expect(page.locator("#problems")).to_contain_text(
        "Required fields of the Customer data model are not mapped: phone, company."
    )
    page.get_by_role("link", name="mark them not required in the Customer data model").click()
    expect(page.get_by_role("status").first).to_contain_text(
        "The flow Hires become CRM customers does not fill phone, company."
    )
    for path in ("phone", "company"):
        row = page.locator("tr", has=page.get_by_label(f"{path} is required"))
        page.get_by_label(f"{path} is required").uncheck()
        expect(row.get_by_role("status")).to_have_text("Saved")
    page.get_by_role("link", name="go back to the flow").click()
    page.get_by_role("button", name="Enable").click()
    expect(page.get_by_role("status").first).to_contain_text("Flow enabled")
    flow.refresh_from_db()
    assert flow.state == FlowState.ACTIVE

    hire_announced_to(
        fresh_sandbox,
        live_server.url,
        first_name="Bo",
        last_name="Ek",
        email="Bo.Ek@Example.com",
        department="Sales",
    )
    expect(page.locator("#deliveries .badge.succeeded")).to_have_text("Succeeded", timeout=25_000)
    assert [(c["name"], c["email"]) for c in records(fresh_sandbox, "crm", "customers")][-1] == (
        "Bo Ek",
        "bo.ek@example.com",
    )
    worker.kill()
