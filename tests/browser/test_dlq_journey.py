"""An ops user works a dead letter in the browser: inbox, detail, fix the record, replay."""

import json
import re

import pytest
from playwright.sync_api import expect

from dlq.models import DeadLetter
from hub.models import Delivery, DeliveryStatus
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.sandbox_helpers import drain_all, employee_event, hr_to_inventory_accounts, records

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_fixes_and_replays_a_dead_letter(fresh_sandbox, personas, sign_in, live_server):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
    bad = employee_event(7)
    del bad["data"]["email"]
    events_store([IncomingEvent(flow.source_system, "employee.hired", bad["id"], bad)])
    drain_all()
    letter = DeadLetter.objects.get()

    page = sign_in(personas["ops"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dead letters").click()
    expect(page.get_by_role("heading", name="Dead letters")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="emp_7")
    expect(row).to_contain_text("The mapping could not produce a valid record.")
    row.get_by_role("link", name="Open").click()
    expect(page).to_have_url(re.compile(rf"/dead-letters/{letter.pk}/$"))
    expect(page.get_by_role("heading", name="What went wrong")).to_be_visible()

    page.get_by_text("Fix and replay", exact=True).first.click()  # open the panel
    fields = page.locator("form.fix-fields")
    expect(fields.get_by_label("first_name")).to_have_value("Ann")  # prefilled from the record
    expect(fields.get_by_label("email")).to_have_value("")
    page.get_by_text("Advanced: edit the raw JSON").click()
    textarea = page.get_by_label("Corrected source record (JSON)")
    record = json.loads(textarea.input_value())
    assert "email" not in record
    textarea.fill('{"broken": ')
    page.get_by_role("button", name="Fix and replay as JSON").click()
    expect(page.locator(".field-error")).to_contain_text("not valid JSON")

    # Field by field: the email the target needs, typed beside the original.
    fields = page.locator("form.fix-fields")
    fields.get_by_label("email").fill("Seven@Example.com")
    fields.get_by_label(re.compile("What did you fix")).fill("added the missing email")
    fields.get_by_role("button", name="Fix and replay").click()

    expect(page).to_have_url(f"{live_server.url}/dead-letters/")
    expect(page.locator(".message.success")).to_contain_text("fixed and replayed")
    expect(
        page.get_by_text("No dead letters. Every delivery either succeeded or is still being retried.")
    ).to_be_visible()

    drain_all()
    assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
    assert [a["email"] for a in records(fresh_sandbox, "inventory", "accounts")] == ["seven@example.com"]
