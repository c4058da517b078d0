"""A new admin creates flows in the wizard, enables them, sees them on the map and watches events
arrive, real-time and scheduled; an auditor can look but not change."""

import re

import pytest
from playwright.sync_api import expect

from hub.models import Flow, FlowState
from hub.services.mappings import mapping_version_save
from tests.factories import flow_with_mapping, model_with_fields
from tests.sandbox_helpers import control, hire_announced_to, records, sandbox_system

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
RULES = [
    {"target": "email", "source": "email", "transforms": [{"name": "lower"}]},
    {
        "target": "name",
        "transforms": [{"name": "template", "options": {"template": "{first_name} {last_name}"}}],
    },
    {"target": "role", "constant": "staff"},
]


@pytest.fixture
def hr_and_inventory(fresh_sandbox):
    hr = sandbox_system(fresh_sandbox, "hr")
    inventory = sandbox_system(fresh_sandbox, "inventory")
    model_with_fields(hr, "Employee", "/employees", "id! first_name! last_name! email! department updated_at:datetime")  # fmt: skip
    model_with_fields(inventory, "Account", "/accounts", "email! name role")  # fmt: skip
    return hr, inventory


def start_matching_worker(start_worker):
    return start_worker(workers=1)


def create_flow_in_wizard(page, live_server, *, name: str, event: str, scheduled: bool = False) -> Flow:
    page.goto(f"{live_server.url}/flows/new/")
    page.get_by_label("Source system").select_option(label="Hr")
    # Picking the system refreshes the list of its models in place.
    page.get_by_label("What kind of record").select_option(label="Employee")
    page.get_by_label("Event", exact=True).fill(event)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Target system").select_option(label="Inventory")
    page.get_by_label("What kind of record").select_option(label="Account")
    page.get_by_label(re.compile("Create or update")).check()
    page.get_by_role("button", name="Continue").click()
    if scheduled:
        page.get_by_label(re.compile("On a schedule")).check()
        page.get_by_label("How often").select_option(label="Every 15 minutes")
        expect(page.locator("#schedule-preview")).to_contain_text("Every 15 minutes. Next runs:")
        expect(page.get_by_label("Which field shows that a record changed")).to_have_value("updated_at")
    else:
        page.get_by_label(re.compile("Real-time")).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label(re.compile("Only records where")).fill("department = Operations")
    expect(page.locator("#filter-echo")).to_contain_text('department is "Operations"')
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Create flow").click()
    expect(page.get_by_role("status").first).to_contain_text(f'Flow "{name}" created as a draft')
    return Flow.objects.get(name=name)


def enable_on_detail_page(page, live_server, flow: Flow) -> None:
    page.goto(f"{live_server.url}/flows/{flow.pk}/")
    expect(page.locator("#problems")).to_contain_text("Its mapping has no rules.")
    # The admin connects the fields (in the mapper); the rules land as a new mapping version.
    mapping_version_save(mapping=flow.mapping, rules=RULES, actor=None)
    page.reload()
    page.get_by_role("button", name="Enable").click()
    expect(page.get_by_role("status").first).to_contain_text("Flow enabled")
    flow.refresh_from_db()
    assert flow.state == FlowState.ACTIVE


def test_it_creates_a_real_time_flow_sees_it_on_the_map_and_watches_an_event_arrive(
    sign_in, personas, live_server, fresh_sandbox, hr_and_inventory, start_worker
):
    worker = start_matching_worker(start_worker)
    page = sign_in(personas["admin"])
    flow = create_flow_in_wizard(
        page, live_server, name="New hires get inventory accounts", event="employee.hired"
    )
    assert flow.state == FlowState.DRAFT and flow.mapping.rules == []
    enable_on_detail_page(page, live_server, flow)

    page.goto(f"{live_server.url}/flows/map/")
    page.wait_for_function("() => window.hubFlowMap && window.hubFlowMap.nodes('.flow').length === 1")
    label = page.evaluate("() => window.hubFlowMap.nodes('.flow')[0].data('label')")
    assert label == "New hires get inventory accounts · real-time"
    with page.expect_download() as download:
        page.get_by_role("button", name="Download image").click()
    assert download.value.suggested_filename == "data-flow-map.png"

    page.goto(f"{live_server.url}/flows/{flow.pk}/")
    expect(page.locator("#deliveries")).to_contain_text("No deliveries yet")
    created = hire_announced_to(
        fresh_sandbox, live_server.url, first_name="Ann", last_name="Lee", email="Ann.Lee@Example.com",
        department="Operations",
    )  # fmt: skip
    # No reload: the deliveries region refreshes itself.
    expect(page.locator("#deliveries .badge.succeeded")).to_have_text("Succeeded", timeout=25_000)
    expect(page.locator("#deliveries")).to_contain_text(created["id"])
    assert [a["email"] for a in records(fresh_sandbox, "inventory", "accounts")] == ["ann.lee@example.com"]
    worker.kill()  # done: no need to wait for a graceful shutdown


def test_it_creates_a_scheduled_flow_and_polls_it_now(
    sign_in, personas, live_server, fresh_sandbox, hr_and_inventory, start_worker
):
    control(fresh_sandbox, "hr", "POST", "seed", json={"resource": "employees", "records": [
        {"first_name": "Ola", "last_name": "Berg", "email": "ola@example.com", "department": "Operations"},
        {"first_name": "Kim", "last_name": "Park", "email": "kim@example.com", "department": "Operations"},
        {"first_name": "Sam", "last_name": "Diaz", "email": "sam@example.com", "department": "Sales"},
    ]})  # fmt: skip
    worker = start_matching_worker(start_worker)
    page = sign_in(personas["admin"])
    flow = create_flow_in_wizard(page, live_server, name="Operations staff every 15 minutes", event="*",
                                 scheduled=True)  # fmt: skip
    assert flow.schedule_minutes == 15
    enable_on_detail_page(page, live_server, flow)
    expect(page.locator("#deliveries")).to_contain_text("after the next poll")
    page.get_by_role("button", name="Poll now").click()
    expect(page.get_by_role("status").first).to_contain_text("Asked a worker to look for changes now")
    # Two people work in Operations: two deliveries succeed; the filter skips the third.
    expect(page.locator("#deliveries .badge.succeeded")).to_have_count(2, timeout=25_000)
    expect(page.locator("#deliveries .badge.skipped")).to_have_count(1)
    assert sorted(a["email"] for a in records(fresh_sandbox, "inventory", "accounts")) == [
        "kim@example.com", "ola@example.com"]  # fmt: skip
    worker.kill()


def test_it_lets_an_auditor_look_but_not_change(
    sign_in, personas, live_server, fresh_sandbox, hr_and_inventory
):
    from mappings.models import DataModel

    flow = flow_with_mapping(source_model=DataModel.objects.get(name="Employee"), rules=RULES, name="Hires",
                             target_model=DataModel.objects.get(name="Account"), event_type="employee.hired")  # fmt: skip
    page = sign_in(personas["auditor"])
    page.goto(f"{live_server.url}/flows/")
    expect(page.get_by_role("link", name="Hires")).to_be_visible()
    expect(page.get_by_role("link", name="New flow")).to_have_count(0)
    page.get_by_role("link", name="Hires").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hires")
    for button in ("Pause", "Edit", "Delete", "Enable", "Poll now"):
        expect(page.get_by_role("button", name=button, exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    page.goto(f"{live_server.url}/flows/map/")
    page.wait_for_function("() => window.hubFlowMap && window.hubFlowMap.nodes('.flow').length === 1")
    status = page.evaluate("""async (url) => {
        const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";
        const response = await fetch(url, {method: "POST", headers: {"X-CSRFToken": csrf}});
        return response.status;
    }""", f"/flows/{flow.pk}/pause/")  # fmt: skip
    assert status == 403
    flow.refresh_from_db()
    assert flow.state == FlowState.ACTIVE
